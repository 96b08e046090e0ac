//! The course's echo server under any model: `cargo run -p bingfa-net --example echo_server --
//! --model epoll --workers 2 --bind 127.0.0.1:0`. Echoes each line; prints the ready line.

use bingfa_net::{Config, ConnInfo, Context, Model, Protocol, Session};

struct Echo;
struct EchoSession;

impl Session for EchoSession {
    fn on_data(&mut self, input: &[u8], cx: &mut Context) -> usize {
        // Echo every complete line in one go (pipelined input is answered in one write).
        match input.iter().rposition(|&b| b == b'\n') {
            Some(i) => {
                cx.write(&input[..=i]);
                i + 1
            }
            None => 0,
        }
    }
}

impl Protocol for Echo {
    type Session = EchoSession;
    fn new_session(&self, _: &ConnInfo) -> EchoSession {
        EchoSession
    }
}

fn main() {
    let mut config = Config::new("echo", "127.0.0.1:0".parse().unwrap());
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    while i + 1 < args.len() {
        match args[i].as_str() {
            "--model" => {
                config.model = args[i + 1]
                    .parse::<Model>()
                    .unwrap_or_else(|e| panic!("{e}"))
            }
            "--workers" => config.workers = args[i + 1].parse().expect("--workers N"),
            "--bind" => config.bind = vec![args[i + 1].parse().expect("--bind IP:PORT")],
            "--edge" => config.edge_triggered = args[i + 1] == "true",
            other => panic!("unknown option {other}"),
        }
        i += 2;
    }
    config.limits.idle_timeout = None;
    if let Err(e) = bingfa_net::serve(config, Echo) {
        eprintln!("echo_server: {e}");
        std::process::exit(1);
    }
}
