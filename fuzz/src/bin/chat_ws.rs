//! The WebSocket frame decoder (server side, masking required). Fed whole and in chunks, it
//! must yield the same events; it never consumes more than it was given; messages stay within
//! max_message and control payloads within 125 bytes; every event re-encodes to frames that
//! decode to the same event.
use bingfa_chat::ws::{encode_masked, Decoder, Event, Opcode};

const MAX: usize = 300;

/// All events until the first error, the bytes arriving `step` at a time into a buffer that
/// keeps what the decoder did not consume, as a session's read buffer does.
fn run(input: &[u8], step: usize) -> (Vec<Event>, bool) {
    let mut d = Decoder::new(MAX);
    let mut events = Vec::new();
    let mut buf = Vec::new();
    for chunk in input.chunks(step) {
        buf.extend_from_slice(chunk);
        loop {
            let (used, r) = d.decode(&buf);
            assert!(used <= buf.len(), "consumed {used} of {}", buf.len());
            buf.drain(..used);
            match r {
                Err(_) => return (events, true),
                Ok(Some(e)) => events.push(e),
                Ok(None) if used == 0 || buf.is_empty() => break,
                Ok(None) => {}
            }
        }
    }
    (events, false)
}

fn check(e: &Event) {
    match e {
        Event::Text(t) => assert!(t.len() <= MAX),
        Event::Binary(b) => assert!(b.len() <= MAX),
        Event::Ping(p) | Event::Pong(p) => assert!(p.len() <= 125),
        Event::Close(Some((_, r))) => assert!(r.len() <= 123),
        Event::Close(None) => {}
    }
    let frame = match e {
        Event::Text(t) => encode_masked(Opcode::Text, true, t.as_bytes(), [1, 2, 3, 4]),
        Event::Binary(b) => encode_masked(Opcode::Binary, true, b, [5, 6, 7, 8]),
        Event::Ping(p) => encode_masked(Opcode::Ping, true, p, [9, 9, 9, 9]),
        Event::Pong(p) => encode_masked(Opcode::Pong, true, p, [0, 0, 0, 0]),
        Event::Close(_) => return,
    };
    let (used, r) = Decoder::new(MAX).decode(&frame);
    assert_eq!(used, frame.len());
    assert_eq!(
        r.as_ref().ok().and_then(|x| x.as_ref()),
        Some(e),
        "re-encoded event differs"
    );
}

fn main() {
    bingfa_fuzz::set_limits(1 << 20, 16 << 20);
    afl::fuzz!(|data: &[u8]| {
        let (step, input) = bingfa_fuzz::chunks(data);
        let (whole, whole_err) = run(input, input.len().max(1));
        let (parts, parts_err) = run(input, step);
        assert_eq!(whole, parts, "whole and chunked decoding differ");
        assert_eq!(whole_err, parts_err);
        whole.iter().for_each(check);
    });
}
