//! The transfer log (`--xferlog PATH`): one line per download or upload, when it ends
//! (complete or not), in the wu-ftpd/vsftpd `xferlog` format (`man 5 xferlog`), so the tools
//! that read vsftpd's log read this one. Fourteen fields, separated by single spaces:
//!
//! ```text
//! Sun Dec  6 14:06:15 2026 1 127.0.0.1 6 /pub/a_b.txt b _ o r alice ftp 0 * c
//! ```
//!
//! current-time (`Www Mmm dd hh:mm:ss yyyy`, local time; five of the space-separated words),
//! transfer-time (whole seconds, at least 1, as vsftpd writes), remote-host (the address),
//! bytes, filename (the path as the client sees it, from its root), transfer-type (`a`scii,
//! `b`inary), special-action-flag (`_`: none), direction (`o`utgoing, `i`ncoming),
//! access-mode (`a`nonymous, `r`eal), username, service-name (`ftp`), authentication-method
//! (`0`: none), authenticated-user-id (`*`), completion-status (`c`omplete, `i`ncomplete).
//!
//! As vsftpd does, a space in the file name or user name is written `_`, and every control
//! character (C0, DEL, C1) and bidi control `?`, so one transfer is one line and the fields
//! stay where the tools look for them. Bytes are those that crossed the data connection;
//! an incomplete binary download (sent by `sendfile`, which does not say how far it got)
//! logs 0. Listings are not logged (vsftpd logs none either).
//!
//! Each line is one `write(2)` on an `O_APPEND` descriptor ([`bingfa_net::linelog::LineLog`]):
//! fork and prefork children append to one file without interleaving, and SIGUSR1 reopens it.

use bingfa_net::linelog::LineLog;
use std::net::IpAddr;
use std::time::{Instant, SystemTime};

/// Which way the file went.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Direction {
    /// A download (RETR).
    Out,
    /// An upload (STOR, APPE, STOU).
    In,
}

/// One transfer being logged; the line is written when it is dropped, with [`Record::bytes`]
/// and [`Record::complete`] as they are then, so every way a transfer ends (226, 426, ABOR,
/// a failed write, the control connection gone) writes exactly one line.
pub(crate) struct Record {
    log: LineLog,
    started: Instant,
    peer: IpAddr,
    path: String,
    ascii: bool,
    direction: Direction,
    anonymous: bool,
    user: String,
    /// Bytes that crossed the data connection so far.
    pub(crate) bytes: u64,
    /// Set when the transfer's `226` is sent.
    pub(crate) complete: bool,
}

impl Record {
    /// Starts the record of a transfer of `path` (the client's view) by `user` from `peer`.
    pub(crate) fn new(
        log: LineLog,
        peer: IpAddr,
        user: &str,
        anonymous: bool,
        path: &str,
        ascii: bool,
        direction: Direction,
    ) -> Record {
        Record {
            log,
            started: Instant::now(),
            peer,
            path: path.to_string(),
            ascii,
            direction,
            anonymous,
            user: user.to_string(),
            bytes: 0,
            complete: false,
        }
    }

    fn line(&self, now: SystemTime) -> String {
        let secs = (self.started.elapsed().as_secs_f64().round() as u64).max(1);
        format!(
            "{} {secs} {} {} {} {} _ {} {} {} ftp 0 * {}\n",
            ctime(now),
            self.peer.to_canonical(),
            self.bytes,
            field(&self.path),
            if self.ascii { 'a' } else { 'b' },
            match self.direction {
                Direction::Out => 'o',
                Direction::In => 'i',
            },
            if self.anonymous { 'a' } else { 'r' },
            field(&self.user),
            if self.complete { 'c' } else { 'i' },
        )
    }
}

impl Drop for Record {
    fn drop(&mut self) {
        self.log.write_line(self.line(SystemTime::now()).as_bytes());
    }
}

/// A peer-supplied string as one xferlog field: spaces `_`, controls and bidi controls `?`
/// (vsftpd's `_` and `?`), empty as `-`.
pub(crate) fn field(s: &str) -> String {
    if s.is_empty() {
        return "-".into();
    }
    s.chars()
        .map(|c| match c {
            ' ' => '_',
            c if c.is_control() || is_bidi(c) => '?',
            c => c,
        })
        .collect()
}

fn is_bidi(c: char) -> bool {
    matches!(c, '\u{200e}' | '\u{200f}' | '\u{061c}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// `Www Mmm dd hh:mm:ss yyyy` in local time (ctime(3) without its newline; the day padded
/// with a space), as vsftpd writes it.
fn ctime(t: SystemTime) -> String {
    let secs = t
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs()) as libc::time_t;
    // SAFETY: a zeroed tm is a valid out-parameter; localtime_r only writes it.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    // SAFETY: both pointers are valid for the call; localtime_r is thread-safe.
    if unsafe { libc::localtime_r(&secs, &mut tm) }.is_null() {
        return "Thu Jan  1 00:00:00 1970".into();
    }
    const DAYS: [&str; 7] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    format!(
        "{} {} {:>2} {:02}:{:02}:{:02} {}",
        DAYS[tm.tm_wday.clamp(0, 6) as usize],
        MONTHS[tm.tm_mon.clamp(0, 11) as usize],
        tm.tm_mday,
        tm.tm_hour,
        tm.tm_min,
        tm.tm_sec,
        tm.tm_year + 1900
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_keep_one_line_and_their_places() {
        assert_eq!(field("a b.txt"), "a_b.txt");
        assert_eq!(field("x\r\ny\u{1b}[31m\u{85}\u{202e}z"), "x??y?[31m??z");
        assert_eq!(field(""), "-");
        assert_eq!(field("日本.txt"), "日本.txt");
    }

    #[test]
    fn ctime_is_ctimes_shape() {
        let t = ctime(SystemTime::now());
        let words: Vec<&str> = t.split_whitespace().collect();
        assert_eq!(words.len(), 5, "{t}");
        assert_eq!(t.len(), 24, "{t}");
    }
}
