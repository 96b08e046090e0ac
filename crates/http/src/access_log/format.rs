//! The access log's line formats: nginx's `combined` and one JSON object per line, with the
//! peer's bytes escaped (nginx's `\xHH` escaping; JSON's `\uXXXX`) and the time made once a
//! second per thread.

use super::Entry;
use std::io::Write as _;
use std::time::{SystemTime, UNIX_EPOCH};

/// nginx's default log escaping: `"`, `\`, bytes below 0x20 and above 0x7e become `\xHH`.
pub fn escape(out: &mut Vec<u8>, s: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for &b in s {
        if !(0x20..=0x7e).contains(&b) || b == b'"' || b == b'\\' {
            out.extend_from_slice(&[b'\\', b'x', HEX[(b >> 4) as usize], HEX[(b & 15) as usize]]);
        } else {
            out.push(b);
        }
    }
}

fn or_dash(s: Option<&[u8]>) -> &[u8] {
    match s {
        Some(s) if !s.is_empty() => s,
        _ => b"-",
    }
}

pub(super) fn combined(out: &mut Vec<u8>, e: &Entry) {
    match e.peer {
        Some(ip) => {
            let _ = write!(out, "{ip}");
        }
        None => out.push(b'-'),
    }
    out.extend_from_slice(b" - - [");
    with_time(|t| out.extend_from_slice(t.local.as_bytes()));
    out.extend_from_slice(b"] \"");
    escape(out, or_dash(Some(e.request)));
    let _ = write!(out, "\" {} {} \"", e.status, e.body_bytes);
    escape(out, or_dash(e.referer));
    out.extend_from_slice(b"\" \"");
    escape(out, or_dash(e.user_agent));
    out.extend_from_slice(b"\"\n");
}

pub(super) fn json(out: &mut Vec<u8>, e: &Entry) {
    out.extend_from_slice(b"{\"time_iso8601\":\"");
    with_time(|t| out.extend_from_slice(t.iso.as_bytes()));
    out.extend_from_slice(b"\",\"remote_addr\":\"");
    if let Some(ip) = e.peer {
        let _ = write!(out, "{ip}");
    }
    out.extend_from_slice(b"\",\"remote_user\":\"\",\"request\":\"");
    json_escape(out, e.request);
    let _ = write!(
        out,
        "\",\"status\":{},\"body_bytes_sent\":{},\"http_referer\":\"",
        e.status, e.body_bytes
    );
    json_escape(out, e.referer.unwrap_or_default());
    out.extend_from_slice(b"\",\"http_user_agent\":\"");
    json_escape(out, e.user_agent.unwrap_or_default());
    out.extend_from_slice(b"\"}\n");
}

/// A JSON string's content with nothing but printable ASCII in it: `"` and `\` escaped,
/// controls and every non-ASCII character as `\uXXXX`, and a byte that isn't UTF-8 as the
/// text `\xHH` (JSON has no bytes; the log stays valid JSON and shows what came).
pub fn json_escape(out: &mut Vec<u8>, s: &[u8]) {
    for chunk in s.utf8_chunks() {
        for c in chunk.valid().chars() {
            match c {
                '"' => out.extend_from_slice(b"\\\""),
                '\\' => out.extend_from_slice(b"\\\\"),
                ' '..='~' => out.push(c as u8),
                _ => {
                    let mut units = [0u16; 2];
                    for u in c.encode_utf16(&mut units) {
                        let _ = write!(out, "\\u{u:04x}");
                    }
                }
            }
        }
        for &b in chunk.invalid() {
            let _ = write!(out, "\\\\x{b:02X}");
        }
    }
}

/// The current time as nginx's `$time_local` and `$time_iso8601`, made once a second per
/// thread.
struct Times {
    secs: u64,
    local: String,
    iso: String,
}

fn with_time(f: impl FnOnce(&Times)) {
    thread_local! {
        static CACHE: std::cell::RefCell<Times> = const {
            std::cell::RefCell::new(Times { secs: u64::MAX, local: String::new(), iso: String::new() })
        };
    }
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    CACHE.with(|c| {
        let mut c = c.borrow_mut();
        if c.secs != secs {
            let (local, iso) = format_times(secs as libc::time_t);
            *c = Times { secs, local, iso };
        }
        f(&c);
    });
}

/// `06/Dec/2026:09:27:45 +0100` and `2026-12-06T09:27:45+01:00`, in the local time zone.
pub fn format_times(t: libc::time_t) -> (String, String) {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    // SAFETY: a zeroed tm is a valid out-parameter; localtime_r fills it.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    // SAFETY: valid pointers to a time_t and a tm.
    unsafe { libc::localtime_r(&t, &mut tm) };
    let off = tm.tm_gmtoff / 60;
    let sign = if off < 0 { '-' } else { '+' };
    let (oh, om) = (off.abs() / 60, off.abs() % 60);
    let (y, mo, d) = (tm.tm_year + 1900, tm.tm_mon, tm.tm_mday);
    let (h, mi, s) = (tm.tm_hour, tm.tm_min, tm.tm_sec);
    let local = format!(
        "{d:02}/{}/{y}:{h:02}:{mi:02}:{s:02} {sign}{oh:02}{om:02}",
        MONTHS[mo.clamp(0, 11) as usize]
    );
    let iso = format!(
        "{y}-{:02}-{d:02}T{h:02}:{mi:02}:{s:02}{sign}{oh:02}:{om:02}",
        mo + 1
    );
    (local, iso)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::access_log::Format;

    fn line(format: Format, e: &Entry) -> String {
        let mut v = Vec::new();
        match format {
            Format::Combined => combined(&mut v, e),
            Format::Json => json(&mut v, e),
        }
        String::from_utf8(v).unwrap()
    }

    #[test]
    fn escapes_as_nginx_does() {
        let mut v = Vec::new();
        escape(&mut v, b"a\"b\\c\x1b[31m\x7f\xff\xc3\xa9 ok");
        assert_eq!(v, b"a\\x22b\\x5Cc\\x1B[31m\\x7F\\xFF\\xC3\\xA9 ok");
        let mut v = Vec::new();
        json_escape(&mut v, b"a\"b\\c\n\x1b\xc3\xa9\xf0\x9f\x98\x80\xff");
        assert_eq!(
            String::from_utf8(v).unwrap(),
            r#"a\"b\\c\u000a\u001b\u00e9\ud83d\ude00\\xFF"#
        );
    }

    #[test]
    fn lines() {
        let e = Entry {
            peer: Some("127.0.0.1".parse().unwrap()),
            request: b"GET /a\"b HTTP/1.1",
            status: 200,
            body_bytes: 12,
            referer: None,
            user_agent: Some(b"curl/8\n"),
        };
        let l = line(Format::Combined, &e);
        let (head, tail) = l.split_once(" [").unwrap();
        assert_eq!(head, "127.0.0.1 - -");
        let (_, tail) = tail.split_once("] ").unwrap();
        assert_eq!(
            tail,
            "\"GET /a\\x22b HTTP/1.1\" 200 12 \"-\" \"curl/8\\x0A\"\n"
        );
        let j = line(Format::Json, &e);
        let v: serde_json::Value = serde_json::from_str(&j).unwrap();
        assert_eq!(v["request"], "GET /a\"b HTTP/1.1");
        assert_eq!(v["status"], 200);
        assert_eq!(v["http_user_agent"], "curl/8\n");
        assert_eq!(v["http_referer"], "");
        assert!(j.is_ascii() && j.ends_with("}\n") && j.matches('\n').count() == 1);
    }

    #[test]
    fn times() {
        // The zone is the machine's (TZ is not set here: tests share the environment).
        let (local, iso) = format_times(784111777);
        assert_eq!(local.len(), "06/Nov/1994:08:49:37 +0000".len(), "{local}");
        assert_eq!(iso.len(), "1994-11-06T08:49:37+00:00".len(), "{iso}");
    }
}
