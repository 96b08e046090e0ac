//! The decoder against the RFC's examples and every rule that fails a connection.

use super::*;
use crate::ws::frame::{encode, encode_masked, Opcode};

const MASK: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

/// Decode everything, collecting events; stops at the first error.
fn all(d: &mut Decoder, mut input: &[u8]) -> Result<Vec<Event>, WsError> {
    let mut out = Vec::new();
    loop {
        let (n, r) = d.decode(input);
        input = &input[n..];
        match r? {
            Some(ev) => out.push(ev),
            None if n == 0 || input.is_empty() => return Ok(out),
            None => {}
        }
    }
}

fn masked(op: Opcode, fin: bool, payload: &[u8]) -> Vec<u8> {
    encode_masked(op, fin, payload, MASK)
}

#[test]
fn rfc_masked_hello() {
    // RFC 6455 §5.7: a single-frame masked text message containing "Hello".
    let frame = [
        0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58,
    ];
    let mut d = Decoder::new(1024);
    assert_eq!(
        d.decode(&frame),
        (11, Ok(Some(Event::Text("Hello".into()))))
    );
}

#[test]
fn byte_by_byte_is_the_same_as_all_at_once() {
    let frame = masked(Opcode::Text, true, "héllo wörld".as_bytes());
    let mut d = Decoder::new(1024);
    let mut got = None;
    // Header bytes wait (unconsumed) until the header is whole; payload bytes go at once.
    let mut pending = Vec::new();
    for b in &frame {
        pending.push(*b);
        let (n, r) = d.decode(&pending);
        pending.drain(..n);
        if let Some(ev) = r.unwrap() {
            got = Some(ev);
        }
        if pending.len() > 6 {
            panic!(
                "a header is at most 6 bytes here, {} pending",
                pending.len()
            );
        }
    }
    assert!(pending.is_empty());
    assert_eq!(got, Some(Event::Text("héllo wörld".into())));
}

#[test]
fn unmasked_client_frame_is_1002() {
    // RFC 6455 §5.7's unmasked "Hello" is what a server sends, never a client.
    let mut d = Decoder::new(1024);
    let err = all(&mut d, &[0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f]).unwrap_err();
    assert_eq!(err.code(), 1002);
    // Failed stays failed.
    assert_eq!(
        d.decode(&masked(Opcode::Text, true, b"x"))
            .1
            .unwrap_err()
            .code(),
        1002
    );
    // A client decoder takes it.
    let mut c = Decoder::client(1024);
    assert_eq!(
        all(&mut c, &[0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f]).unwrap(),
        [Event::Text("Hello".into())]
    );
}

#[test]
fn sixteen_and_sixty_four_bit_lengths() {
    let mut d = Decoder::new(1 << 20);
    let mid = "a".repeat(300);
    let big = "b".repeat(70_000);
    let input = [
        masked(Opcode::Text, true, mid.as_bytes()),
        masked(Opcode::Text, true, big.as_bytes()),
    ]
    .concat();
    assert_eq!(input[1], 0x80 | 126);
    assert_eq!(
        all(&mut d, &input).unwrap(),
        [Event::Text(mid), Event::Text(big)]
    );
}

#[test]
fn fragments_with_a_ping_between_them() {
    // RFC 6455 §5.4: control frames may be injected in the middle of a fragmented message.
    let input = [
        masked(Opcode::Text, false, b"Hel"),
        masked(Opcode::Ping, true, b"are you there"),
        masked(Opcode::Continuation, false, b"l"),
        masked(Opcode::Continuation, true, b"o"),
    ]
    .concat();
    let mut d = Decoder::new(1024);
    assert_eq!(
        all(&mut d, &input).unwrap(),
        [
            Event::Ping(b"are you there".to_vec()),
            Event::Text("Hello".into())
        ]
    );
}

#[test]
fn a_utf8_character_split_across_fragments_is_fine() {
    let e = "é".as_bytes();
    let input = [
        masked(Opcode::Text, false, &e[..1]),
        masked(Opcode::Continuation, true, &e[1..]),
    ]
    .concat();
    assert_eq!(
        all(&mut Decoder::new(16), &input).unwrap(),
        [Event::Text("é".into())]
    );
}

#[test]
fn fragmentation_errors_are_1002() {
    let cases: Vec<Vec<u8>> = vec![
        masked(Opcode::Continuation, true, b"orphan"),
        [
            masked(Opcode::Text, false, b"a"),
            masked(Opcode::Text, true, b"b"),
        ]
        .concat(),
        masked(Opcode::Ping, false, b"fragmented ping"),
        masked(Opcode::Ping, true, &[0; 126]),
        // RSV1 set without an extension.
        {
            let mut f = masked(Opcode::Text, true, b"x");
            f[0] |= 0x40;
            f
        },
        // Reserved opcode 3 and 0xB.
        vec![0x83, 0x80, 0, 0, 0, 0],
        vec![0x8B, 0x80, 0, 0, 0, 0],
        // Close with a one-byte payload, and with code 1005 (never on the wire).
        masked(Opcode::Close, true, &[0x03]),
        masked(Opcode::Close, true, &1005u16.to_be_bytes()),
        masked(Opcode::Close, true, &999u16.to_be_bytes()),
    ];
    for (i, input) in cases.iter().enumerate() {
        let err = all(&mut Decoder::new(1024), input).unwrap_err();
        assert_eq!(err.code(), 1002, "case {i}: {err}");
    }
}

#[test]
fn invalid_utf8_is_1007() {
    let err = all(
        &mut Decoder::new(64),
        &masked(Opcode::Text, true, &[0xff, 0xfe]),
    )
    .unwrap_err();
    assert_eq!(err, WsError::InvalidUtf8);
    assert_eq!(err.code(), 1007);
    let mut close = 1000u16.to_be_bytes().to_vec();
    close.push(0xc3);
    let err = all(&mut Decoder::new(64), &masked(Opcode::Close, true, &close)).unwrap_err();
    assert_eq!(err.code(), 1007);
    // Binary is not checked.
    assert_eq!(
        all(
            &mut Decoder::new(64),
            &masked(Opcode::Binary, true, &[0xff])
        )
        .unwrap(),
        [Event::Binary(vec![0xff])]
    );
}

#[test]
fn oversize_is_1009_from_the_header_alone() {
    let mut d = Decoder::new(10);
    // Only the header of a 2^40-byte frame: refused before any payload arrives.
    let mut hdr = vec![0x82, 0x80 | 127];
    hdr.extend_from_slice(&(1u64 << 40).to_be_bytes());
    hdr.extend_from_slice(&MASK);
    let err = all(&mut d, &hdr).unwrap_err();
    assert_eq!(err, WsError::TooBig(1 << 40));
    assert_eq!(err.code(), 1009);
    // Fragments count together.
    let input = [
        masked(Opcode::Text, false, b"123456"),
        masked(Opcode::Continuation, true, b"78901"),
    ]
    .concat();
    assert_eq!(all(&mut Decoder::new(10), &input).unwrap_err().code(), 1009);
    // Exactly the limit is fine.
    assert_eq!(
        all(
            &mut Decoder::new(10),
            &masked(Opcode::Text, true, b"1234567890")
        )
        .unwrap(),
        [Event::Text("1234567890".into())]
    );
    // The top bit of a 64-bit length is a protocol error.
    let mut hdr = vec![0x82, 0x80 | 127];
    hdr.extend_from_slice(&(1u64 << 63).to_be_bytes());
    assert_eq!(all(&mut Decoder::new(10), &hdr).unwrap_err().code(), 1002);
}

#[test]
fn close_ping_pong_payloads() {
    let mut close = 1001u16.to_be_bytes().to_vec();
    close.extend_from_slice("gone 👋".as_bytes());
    let input = [
        masked(Opcode::Ping, true, b""),
        masked(Opcode::Pong, true, b"p"),
        masked(Opcode::Close, true, b""),
        masked(Opcode::Close, true, &close),
        masked(Opcode::Close, true, &4000u16.to_be_bytes()),
    ]
    .concat();
    assert_eq!(
        all(&mut Decoder::new(64), &input).unwrap(),
        [
            Event::Ping(vec![]),
            Event::Pong(b"p".to_vec()),
            Event::Close(None),
            Event::Close(Some((1001, "gone 👋".into()))),
            Event::Close(Some((4000, String::new()))),
        ]
    );
}

#[test]
fn an_empty_text_message_and_an_incomplete_header() {
    let mut d = Decoder::new(64);
    assert_eq!(
        d.decode(&masked(Opcode::Text, true, b"")),
        (6, Ok(Some(Event::Text(String::new()))))
    );
    // Two bytes announcing a 16-bit length, but the length itself not yet here: nothing used.
    assert_eq!(d.decode(&[0x81, 0x80 | 126, 0x00]), (0, Ok(None)));
    // The server's own (unmasked) encoding round-trips through a client decoder.
    let mut c = Decoder::client(64);
    assert_eq!(
        c.decode(&encode(Opcode::Text, true, b"hi")),
        (4, Ok(Some(Event::Text("hi".into()))))
    );
}
