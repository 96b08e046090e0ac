//! The TLS layer's mid-stream upgrade ([`Context::start_tls`]) and TLS data channels
//! ([`Context::channel_tls`]), driven by hand, no sockets: a tiny FTP-like inner session,
//! rustls clients for the control connection and for each data channel, and a harness playing
//! the driver (it carries the actions to the clients and answers with the events a driver
//! gives). One timeline records both sides in order: what the inner session saw (`line …`,
//! `secure`, `ch1 data …`) and what the driver was asked to do (`drv …`).

mod harness;

use super::channel::MAX_INBOX;
use super::test_util::{client, client_with, pattern, receive};
use super::*;
use harness::{GREETING, H, HEAD, KIB};
use std::io::Write;

/// Index of the first entry equal to `what`.
fn pos(log: &[String], what: &str) -> usize {
    log.iter()
        .position(|l| l == what)
        .unwrap_or_else(|| panic!("no {what:?} in {log:#?}"))
}

/// Index of the last entry starting with `prefix`.
fn last(log: &[String], prefix: &str) -> usize {
    log.iter()
        .rposition(|l| l.starts_with(prefix))
        .unwrap_or_else(|| panic!("no {prefix:?} in {log:#?}"))
}

fn count(log: &[String], prefix: &str) -> usize {
    log.iter().filter(|l| l.starts_with(prefix)).count()
}

#[test]
fn plaintext_pipelined_behind_auth_is_never_a_command() {
    // A command before AUTH in the same input is still one (the driver calls again).
    let mut h = H::new(0);
    h.send_clear(b"NOOP\r\nAUTH\r\nUSER evil\r\n");
    assert!(h.input.is_empty(), "all of it was taken (as the handshake)");
    assert!(h.closed, "the handshake failed: the connection closes");
    let said = [GREETING, b"200 NOOP\r\n234 go\r\n"].concat();
    assert_eq!(&h.clear[..said.len()], &said[..]);
    // After that, only rustls's alert (decode_error): a TLS record, no reply to USER.
    let alert = &h.clear[said.len()..];
    assert_eq!(alert, [0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x32]);
    let log = h.log();
    let lines: Vec<&String> = log.iter().filter(|l| l.starts_with("line ")).collect();
    assert_eq!(
        lines,
        ["line NOOP", "line AUTH"],
        "USER never reached the session"
    );
    assert_eq!(count(&log, "secure"), 0);
    let n = h.s.on_data(b"PWD\r\n", &mut h.cx);
    assert_eq!(n, 5, "input after failure is dropped");
    assert_eq!(count(&h.log(), "line "), 2);
}

#[test]
fn a_client_hello_pipelined_behind_auth_is_the_handshake() {
    // An eager client sends its ClientHello right behind AUTH, in the same segment.
    let mut h = H::new(0);
    let mut c = client(&h.made, &[]);
    let mut input = b"AUTH\r\n".to_vec();
    while c.wants_write() {
        c.write_tls(&mut input).unwrap();
    }
    h.send_clear(&input);
    assert!(!h.closed);
    let said = [GREETING, b"234 go\r\n"].concat();
    assert_eq!(&h.clear[..said.len()], &said[..]);
    // Then the server's first flight, answered in the same call.
    let flight = h.clear.split_off(said.len());
    assert_eq!(flight[0], 0x16, "a handshake record");
    receive(&mut c, &flight, &mut h.plain);
    h.ctl = Some(c);
    h.run();
    assert!(!h.ctl.as_ref().unwrap().is_handshaking());
    h.send("NOOP");
    assert_eq!(h.plain, b"200 NOOP\r\n");
    let log = h.log();
    assert_eq!(count(&log, "line "), 2);
    assert!(pos(&log, "secure") < pos(&log, "line NOOP"));
}

#[test]
fn upgrade_then_commands_and_file_ranges_are_encrypted() {
    let len = 600 * KIB + 7;
    let file = pattern(len);
    let mut h = H::new(len);
    h.send_clear(b"FILE\r\n");
    let mut clear = [GREETING, &file, b"226 sent\r\n"].concat();
    assert!(h.clear == clear, "a range in the clear is the driver's own");
    assert_eq!(count(&h.log(), &format!("drv sendfile 0 {len}")), 1);
    h.secure();
    clear.extend_from_slice(b"234 go\r\n");
    assert!(h.clear == clear);
    h.send("NOOP");
    h.send("FILE");
    // (`receive` fails the test on any byte the client cannot decrypt.)
    assert!(h.plain == [b"200 NOOP\r\n", &file[..], b"226 sent\r\n"].concat());
    assert!(h.clear == clear, "nothing more in the clear");
    let log = h.log();
    assert_eq!(count(&log, "secure"), 1);
    assert!(pos(&log, "secure") < pos(&log, "line NOOP"));
    assert_eq!(count(&log, "drv sendfile"), 1, "after start_tls, encrypted");
}

#[test]
fn tls_channel_download() {
    let len = 2 * 1024 * KIB;
    let mut h = H::new(len);
    h.secure();
    let id = h.pasv(true);
    assert_eq!(id, 1);
    h.send("RETR");
    let want = [HEAD, &pattern(len)[..]].concat();
    let ch = &h.chans[&id];
    assert!(!ch.client.as_ref().unwrap().is_handshaking());
    assert_eq!(ch.plain.len(), want.len());
    assert!(ch.plain == want, "head and file intact, in order");
    assert!(ch.notified, "then close_notify");
    assert_eq!(
        ch.at_close,
        Some((want.len(), true)),
        "ChannelClose after the last ciphertext"
    );
    let log = h.log();
    // The inner session paused the channel at Connected; the layer resumed the driver so
    // the handshake could run, before anything was written on the channel.
    let paused = pos(&log, "drv chpause 1 true");
    assert!(pos(&log, "ch1 connected") < paused);
    let resumed = pos(&log, "drv chpause 1 false");
    let first_write = log
        .iter()
        .position(|l| l.starts_with("drv chwrite 1"))
        .unwrap();
    assert!(pos(&log, "line RETR") < resumed && resumed < first_write);
    assert_eq!(
        count(&log, "ch1 drained"),
        0,
        "closed, not drained: {log:#?}"
    );
    assert!(last(&log, "drv chwrite 1") < pos(&log, "drv chclose 1"));
    assert_eq!(
        last(&log, "ch1 "),
        pos(&log, "ch1 closed"),
        "Closed ends it"
    );
    assert!(pos(&log, "drv chclose 1") < pos(&log, "ch1 closed"));
    assert_eq!(h.plain, b"227 2121\r\n150 retr\r\n");
}

#[test]
fn tls_channel_drained_only_when_all_is_out() {
    let len = 3 * 512 * KIB + 5;
    let mut h = H::new(len);
    h.secure();
    let id = h.pasv(true);
    h.send("RETRD");
    let want = [HEAD, &pattern(len)[..]].concat();
    assert!(h.chans[&id].plain == want);
    assert_eq!(h.chans[&id].at_close, Some((want.len(), true)));
    let log = h.log();
    assert_eq!(count(&log, "ch1 drained"), 1, "{log:#?}");
    let drained = pos(&log, "ch1 drained");
    // The write before it carried the last of the file.
    let before = &log[last(&log[..drained], "drv chwrite 1")];
    assert!(before.ends_with(&format!("-> {}", want.len())), "{before}");
    assert!(drained < pos(&log, "drv chclose 1"));
    assert_eq!(last(&log, "ch1 "), pos(&log, "ch1 closed"));
}

#[test]
fn tls_active_channel_queued_before_it_connects() {
    let len = 700 * KIB;
    let mut h = H::new(len);
    h.secure();
    h.send("PORT");
    // Nothing goes to a channel still connecting but the order to read it (the handshake).
    let log = h.log();
    assert_eq!(count(&log, "drv chwrite 1"), 0);
    assert!(pos(&log, "drv connect 1") < pos(&log, "drv chpause 1 false"));
    h.chan(1).client = Some(client_with(&h.ccfg));
    h.events.push_back((1, harness::Ev::Connected));
    h.run();
    let want = [HEAD, &pattern(len)[..]].concat();
    assert!(h.chans[&1].plain == want);
    assert_eq!(h.chans[&1].at_close, Some((want.len(), true)));
    let log = h.log();
    assert!(pos(&log, "ch1 connected") < pos(&log, "ch1 closed"));
    assert_eq!(count(&log, "ch1 "), 2, "{log:#?}");
}

/// The client's upload. Written before the handshake ends, it follows the client's Finished
/// (TLS 1.3 clients send at once).
fn upload(h: &mut H, id: ChannelId, data: &[u8]) {
    let c = h.chan(id).client.as_mut().unwrap();
    c.writer().write_all(data).unwrap();
}

/// The end of the upload: close_notify, then the client shuts down its side.
fn end_upload(h: &mut H, id: ChannelId) {
    let ch = h.chan(id);
    ch.client.as_mut().unwrap().send_close_notify();
    ch.fin = true;
}

#[test]
fn tls_channel_upload_paused_and_resumed() {
    let mut h = H::new(0);
    h.secure();
    let id = h.pasv(true);
    h.send(&format!("HOLD {}", 300 * KIB));
    h.send("STOR");
    assert!(!h.chans[&id].client.as_ref().unwrap().is_handshaking());
    let data = pattern(1024 * KIB);
    upload(&mut h, id, &data);
    end_upload(&mut h, id);
    h.run();
    // The inner session paused at 300 KiB: the driver is told at once, the rest waits in the
    // kernel, no Data comes meanwhile.
    let log = h.log();
    let hold = pos(&log, "ch1 hold");
    assert_eq!(log[hold + 1], "drv chpause 1 true");
    assert_eq!(last(&log, "ch1 data"), hold - 1, "no Data while paused");
    let got = h.upload().len();
    assert!((300 * KIB..1024 * KIB).contains(&got), "{got}");
    assert!(h.chans[&id].paused);
    assert!(
        !h.chans[&id].wire.is_empty(),
        "the rest waits in the kernel"
    );
    assert!(h.held_at_pause.iter().all(|&n| n <= MAX_INBOX));
    h.send("RESUME");
    assert_eq!(h.upload().len(), data.len());
    assert!(h.upload() == data, "every byte, in order");
    let log = h.log();
    assert!(count(&log, "ch1 data") > 3, "several reads: {log:#?}");
    assert_eq!(
        count(&log, "ch1 eof"),
        1,
        "one Eof (close_notify, then TCP EOF)"
    );
    assert!(last(&log, "ch1 data") < pos(&log, "ch1 eof"));
    assert!(h.plain.ends_with(b"226 got 1048576\r\n"));
    assert!(h.chans[&id].notified, "our close_notify back");
    assert_eq!(last(&log, "ch1 "), pos(&log, "ch1 closed"));
}

#[test]
fn a_pause_from_before_channel_tls_holds_the_plaintext() {
    // FTP pauses a passive channel at Connected. Made TLS without being resumed, the channel
    // is read for the handshake; the upload behind the client's Finished is held, not given,
    // and the driver stops reading as soon as the handshake is done.
    let mut h = H::new(0);
    h.secure();
    let id = h.pasv(true);
    let data = pattern(1024 * KIB);
    upload(&mut h, id, &data);
    h.send("STORP");
    assert!(!h.chans[&id].client.as_ref().unwrap().is_handshaking());
    let log = h.log();
    assert!(pos(&log, "line STORP") < pos(&log, "drv chpause 1 false"));
    assert_eq!(
        count(&log, "ch1 data") + count(&log, "ch1 eof"),
        0,
        "{log:#?}"
    );
    assert!(h.chans[&id].paused, "the driver stopped reading");
    let held = h.held(id);
    assert!(held > 0, "the read with the Finished brought some upload");
    // Never more than one read (256 KiB) past the layer's bound.
    assert!(held <= MAX_INBOX + 256 * KIB, "{held}");
    assert_eq!(*h.held_at_pause.last().unwrap(), held);
    assert!(
        !h.chans[&id].wire.is_empty(),
        "the rest waits in the kernel"
    );
    end_upload(&mut h, id);
    h.send("RESUME");
    let log = h.log();
    assert!(
        pos(&log, "line RESUME") < pos(&log, "ch1 data 262144"),
        "{log:#?}"
    );
    assert!(h.upload() == data);
    assert_eq!(count(&log, "ch1 eof"), 1);
}

#[test]
fn garbage_instead_of_a_client_hello_on_a_channel() {
    let mut h = H::new(0);
    h.secure();
    let id = h.pasv(false);
    h.chan(id)
        .wire
        .extend_from_slice(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    h.send("STOR");
    let log = h.log();
    let closed = pos(&log, "drv chclose 1");
    assert!(
        closed < pos(&log, "ch1 closed"),
        "the driver's Closed reaches the inner"
    );
    assert_eq!(count(&log, "ch1 data") + count(&log, "ch1 eof"), 0);
    let raw = &h.chans[&id].raw;
    assert!(
        raw.is_empty() || raw[0] == 0x15,
        "at most an alert: {raw:?}"
    );
    h.send("NOOP");
    assert!(h.plain.ends_with(b"150 stor\r\n200 NOOP\r\n"));
}

#[test]
fn eof_mid_handshake_is_no_end_of_upload() {
    let mut h = H::new(0);
    h.secure();
    let id = h.pasv(true);
    // The client sends its ClientHello and goes away before finishing the handshake.
    let ch = h.chan(id);
    let mut c = ch.client.take().unwrap();
    while c.wants_write() {
        c.write_tls(&mut ch.wire).unwrap();
    }
    ch.fin = true;
    h.send("STOR");
    assert!(
        !h.chans[&id].raw.is_empty(),
        "the server's first flight went out"
    );
    let log = h.log();
    assert!(pos(&log, "drv chclose 1") < pos(&log, "ch1 closed"));
    assert_eq!(
        count(&log, "ch1 eof"),
        0,
        "an upload cut short is not complete"
    );
    assert_eq!(count(&log, "ch1 data"), 0);
    h.send("NOOP");
    assert!(h.plain.ends_with(b"200 NOOP\r\n"));
}

/// A data connection must resume the control connection's TLS session (vsftpd's
/// `require_ssl_reuse`): every download of the client's own resumes (tickets are reused and
/// replenished, however many), and someone else's fresh handshake on the passive port gets
/// nothing of the file; the inner session is told (`PermissionDenied`: FTP's `522`).
#[test]
fn data_channels_must_resume_the_control_session() {
    let len = 100 * KIB;
    let mut h = H::new(len);
    h.secure();
    let want = [HEAD, &pattern(len)[..]].concat();
    for round in 0..6 {
        let id = h.pasv(true);
        h.send("RETR");
        let ch = &h.chans[&id];
        assert!(ch.plain == want, "round {round}: the whole file");
        assert_eq!(ch.at_close, Some((want.len(), true)), "round {round}");
    }
    // A stranger: the same certificate trusted, but a configuration (a session cache) of
    // its own, so a fresh handshake.
    h.send("PASV");
    let id = *h.chans.keys().last().unwrap();
    h.chan(id).client = Some(client(&h.made, &[]));
    h.events.push_back((id, harness::Ev::Connected));
    h.run();
    h.send("RETR");
    let ch = &h.chans[&id];
    assert!(
        !ch.plain.windows(HEAD.len()).any(|w| w == HEAD),
        "nothing of the transfer reached the stranger"
    );
    assert!(ch.plain.len() < 64, "{}", ch.plain.len());
    let log = h.log();
    assert_eq!(
        count(&log, &format!("ch{id} error PermissionDenied")),
        1,
        "{log:#?}"
    );
    assert!(pos(&log, &format!("drv chabort {id}")) > 0);
}

/// `require_data_session_reuse(false)`: a fresh handshake is accepted.
#[test]
fn data_session_reuse_optional() {
    let len = 10 * KIB;
    let mut h = H::with_reuse(len, false);
    h.secure();
    h.send("PASV");
    let id = *h.chans.keys().last().unwrap();
    h.chan(id).client = Some(client(&h.made, &[]));
    h.events.push_back((id, harness::Ev::Connected));
    h.run();
    h.send("RETR");
    assert!(h.chans[&id].plain == [HEAD, &pattern(len)[..]].concat());
}
