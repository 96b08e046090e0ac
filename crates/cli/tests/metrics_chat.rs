//! `--metrics` for the chat room, under every model: members and messages delivered, counted
//! across processes under fork and prefork (see `metrics.rs`).

#[path = "support/openmetrics.rs"]
mod openmetrics;
#[path = "support/procs.rs"]
mod procs;
#[path = "support/tools.rs"]
mod tools;

use bingfa_net::Model;
use bingfa_testkit::LineClient;
use openmetrics::*;

mod chat {
    use super::*;

    /// Members join (three; one under `iterative`, which serves one at a time), the first
    /// sends `K` messages: the members gauge, messages, and deliveries == K × the others; then
    /// everyone quits and the gauge is back at zero.
    pub(crate) fn counts(model: Model, edge: bool) {
        const K: u64 = 4;
        if !have_parser() {
            return;
        }
        let tag = format!("chat-metrics-{}", std::process::id());
        let admin = std::env::temp_dir().join(format!("{tag}-{model}-{edge}.sock"));
        let admin_s = admin.display().to_string();
        let server = start(
            model,
            edge,
            &[
                "chat",
                "serve",
                "--bind",
                "127.0.0.1:0",
                "--admin-socket",
                &admin_s,
            ],
            &["chat"],
        );
        let (addr, metrics) = (server.addr("chat"), server.addr("metrics"));
        let n = if model.concurrent() { 3 } else { 1 };
        let mut members: Vec<LineClient> = Vec::new();
        for i in 0..n {
            let mut c = LineClient::connect(addr);
            c.until("* welcome");
            c.send(&format!("m{i}"));
            c.until("* you are");
            members.push(c);
        }
        // Everyone has seen everyone join before the messages, so each gets all K.
        for (i, c) in members.iter_mut().enumerate() {
            for j in i + 1..n {
                c.until(&format!("* m{j} joined"));
            }
        }
        for k in 0..K {
            members[0].send(&format!("hello {k}"));
        }
        for c in members.iter_mut().skip(1) {
            for k in 0..K {
                c.expect(&format!("m0: hello {k}"));
            }
        }
        let counts = |m: &Scrape| {
            (
                value(m, "chat", "bingfa_chat_members", "gauge", &[]),
                value(m, "chat", "bingfa_chat_messages_total", "counter", &[]),
                value(
                    m,
                    "chat",
                    "bingfa_chat_messages_delivered_total",
                    "counter",
                    &[],
                ),
                value(m, "chat", "bingfa_connections_open", "gauge", &[]),
                value(
                    m,
                    "chat",
                    "bingfa_connections_accepted_total",
                    "counter",
                    &[],
                ),
            )
        };
        let n = n as u64;
        settle(metrics, &(n, K, K * (n - 1), n, n), counts);
        for mut c in members {
            c.send("/quit");
            c.until("* bye");
            c.expect_closed();
        }
        settle(metrics, &(0, K, K * (n - 1), 0, n), counts);
        stop_clean(server, &admin_s);
    }
}

bingfa_testkit::for_each_model! {
    #[test] fn chat_counts() { chat::counts(M, E) }
}
