//! A WebSocket echo server on the room's own sans-IO RFC 6455 core (`bingfa_chat::ws`: the
//! handshake check, the streaming decoder, the frame encoder), driven by any bingfa-net model.
//! It exists for conformance: `scripts/autobahn.sh` points Autobahn|Testsuite's fuzzingclient
//! at it under several models. Every text and binary message comes back as it came (one
//! frame), pings get pongs, a close is answered with the same code, and a protocol error is
//! answered with the decoder's close code, as the web face does.
//!
//! `cargo run -p bingfa-chat --example ws_echo -- --model epoll --bind 127.0.0.1:0`
//! prints `ws listening on IP:PORT` when it is ready.

use bingfa_chat::web::http::{self, Request};
use bingfa_chat::ws::{self, code, frame, Decoder, Event, Opcode};
use bingfa_net::{Config, ConnInfo, Context, Model, Protocol, Session};

/// The largest message echoed: Autobahn's section 9 sends messages of up to 16 MiB.
const MAX_MESSAGE: usize = 20 << 20;
/// The longest request head before the upgrade.
const MAX_HEAD: usize = 8 * 1024;

enum Phase {
    Http,
    Ws,
    Closed,
}

struct EchoSession {
    phase: Phase,
    decoder: Decoder,
}

impl EchoSession {
    /// Before the upgrade: one request head; a valid upgrade gets 101, anything else a status.
    fn handshake(&mut self, input: &[u8], cx: &mut Context) -> usize {
        let (req, len) = match Request::parse(input, MAX_HEAD) {
            Ok(None) => return 0,
            Ok(Some(parsed)) => parsed,
            Err(e) => return self.refuse(e.status(), "bad request head", input.len(), cx),
        };
        let headers = req.headers.clone();
        let lookup = |name: &str| {
            headers
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.as_str())
        };
        match ws::check_upgrade(&req.method, req.minor, lookup) {
            Ok(accept) => {
                cx.write_vec(ws::handshake::response_101(&accept));
                self.phase = Phase::Ws;
                len
            }
            Err(e) => self.refuse(e.status(), &e.to_string(), input.len(), cx),
        }
    }

    fn refuse(&mut self, status: u16, why: &str, used: usize, cx: &mut Context) -> usize {
        cx.write_vec(http::error(status, "", why));
        cx.close();
        self.phase = Phase::Closed;
        used
    }

    /// After the upgrade: decode everything given; echo each message as it completes.
    fn frames(&mut self, input: &[u8], cx: &mut Context) -> usize {
        let mut used = 0;
        while used < input.len() && matches!(self.phase, Phase::Ws) {
            let (n, event) = self.decoder.decode(&input[used..]);
            used += n;
            match event {
                Ok(Some(event)) => self.echo(event, cx),
                Ok(None) if n == 0 => break,
                Ok(None) => {}
                Err(e) => {
                    cx.write_vec(frame::encode(
                        Opcode::Close,
                        true,
                        &frame::close_payload(e.code(), ""),
                    ));
                    self.finish(cx);
                }
            }
        }
        // Once closed, what else arrives is dropped (RFC 6455 §5.5.1).
        if matches!(self.phase, Phase::Closed) {
            return input.len();
        }
        used
    }

    fn echo(&mut self, event: Event, cx: &mut Context) {
        match event {
            Event::Text(text) => cx.write_vec(frame::encode(Opcode::Text, true, text.as_bytes())),
            Event::Binary(bytes) => cx.write_vec(frame::encode(Opcode::Binary, true, &bytes)),
            Event::Ping(payload) => cx.write_vec(frame::encode(Opcode::Pong, true, &payload)),
            Event::Pong(_) => {}
            Event::Close(status) => {
                // Echo the peer's code (§5.5.1); a close without one is answered with none.
                let payload = match status {
                    Some((c, _)) => frame::close_payload(c, ""),
                    None => Vec::new(),
                };
                cx.write_vec(frame::encode(Opcode::Close, true, &payload));
                self.finish(cx);
            }
        }
    }

    fn finish(&mut self, cx: &mut Context) {
        self.phase = Phase::Closed;
        cx.close();
    }
}

impl Session for EchoSession {
    fn on_data(&mut self, input: &[u8], cx: &mut Context) -> usize {
        match self.phase {
            Phase::Http => {
                let used = self.handshake(input, cx);
                // Frames pipelined behind the upgrade request are decoded at once.
                if used > 0 && used < input.len() && matches!(self.phase, Phase::Ws) {
                    return used + self.frames(&input[used..], cx);
                }
                used
            }
            Phase::Ws => self.frames(input, cx),
            Phase::Closed => input.len(),
        }
    }

    fn on_shutdown(&mut self, cx: &mut Context) {
        if matches!(self.phase, Phase::Ws) {
            let payload = frame::close_payload(code::GOING_AWAY, "");
            cx.write_vec(frame::encode(Opcode::Close, true, &payload));
        }
        self.finish(cx);
    }
}

struct WsEcho;

impl Protocol for WsEcho {
    type Session = EchoSession;
    fn new_session(&self, _: &ConnInfo) -> EchoSession {
        EchoSession {
            phase: Phase::Http,
            decoder: Decoder::new(MAX_MESSAGE),
        }
    }
}

fn main() {
    // A child started by re-exec (bingfa-mp's spawn) enters here and never returns.
    let _mp = bingfa_mp::init();
    let mut config = Config::new("ws", "127.0.0.1:0".parse().unwrap());
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        if flag == "--edge-triggered" {
            config.edge_triggered = true;
            continue;
        }
        let value = args
            .next()
            .unwrap_or_else(|| panic!("{flag} needs a value"));
        match flag.as_str() {
            "--model" => {
                config.model = value.parse::<Model>().unwrap_or_else(|e| panic!("{e}"));
            }
            "--workers" => config.workers = value.parse().expect("--workers N"),
            "--bind" => config.bind = vec![value.parse().expect("--bind IP:PORT")],
            other => panic!("unknown option {other}"),
        }
    }
    // Section 9 echoes 16 MiB messages: the whole echo is queued at once.
    config.limits.max_outbound = 2 * MAX_MESSAGE + (1 << 20);
    config.limits.idle_timeout = None;
    if let Err(e) = bingfa_net::serve(config, WsEcho) {
        eprintln!("ws_echo: {e}");
        std::process::exit(1);
    }
}
