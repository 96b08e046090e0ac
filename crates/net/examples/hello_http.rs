//! The smallest HTTP/1.1 keep-alive responder (every request gets the same 200 with a 13-byte
//! body), to load a model with `wrk` and compare models on the engine alone, without file I/O:
//! `cargo run --release -p bingfa-net --example hello_http -- --model epoll --workers 2`
//! then `wrk -t2 -c50 -d5s http://127.0.0.1:PORT/`. Not an HTTP implementation (bingfa-http is).

use bingfa_net::{Config, ConnInfo, Context, Model, Protocol, Session};

const RESPONSE: &[u8] =
    b"HTTP/1.1 200 OK\r\nContent-Length: 13\r\nContent-Type: text/plain\r\n\r\nHello, world\n";

struct Hello;
struct HelloSession;

impl Session for HelloSession {
    fn on_data(&mut self, input: &[u8], cx: &mut Context) -> usize {
        // Answer every complete request head in the buffer (pipelining included).
        let mut used = 0;
        while let Some(end) = input[used..].windows(4).position(|w| w == b"\r\n\r\n") {
            cx.write(RESPONSE);
            used += end + 4;
        }
        used
    }
}

impl Protocol for Hello {
    type Session = HelloSession;
    fn new_session(&self, _: &ConnInfo) -> HelloSession {
        HelloSession
    }
}

fn main() {
    let mut config = Config::new("http", "127.0.0.1:0".parse().unwrap());
    let args: Vec<String> = std::env::args().skip(1).collect();
    for pair in args.chunks(2) {
        let value = pair.get(1).map(String::as_str).unwrap_or_default();
        match pair[0].as_str() {
            "--model" => config.model = value.parse::<Model>().unwrap_or_else(|e| panic!("{e}")),
            "--workers" => config.workers = value.parse().expect("--workers N"),
            "--bind" => config.bind = vec![value.parse().expect("--bind IP:PORT")],
            "--edge" => config.edge_triggered = value == "true",
            other => panic!("unknown option {other}"),
        }
    }
    if let Err(e) = bingfa_net::serve(config, Hello) {
        eprintln!("hello_http: {e}");
        std::process::exit(1);
    }
}
