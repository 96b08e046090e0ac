//! What `/metrics` says: one service's counters, read from shared memory at each scrape, in
//! the OpenMetrics text format as the `prometheus-client` crate writes it. Every sample carries
//! a `service` label (`http`, `chat`, `ftp`), so the endpoints of several services merge into
//! one (`merge.rs`, under `bingfa serve`). The names are documented in docs/GUIDE.md.

use bingfa_chat::ChatStats;
use bingfa_ftp::FtpStats;
use bingfa_http::stats::Stats as HttpStats;
use bingfa_net::Tally;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

/// The protocol's own counters.
#[derive(Clone)]
pub(crate) enum Protocol {
    Http(HttpStats),
    Chat(ChatStats),
    Ftp(FtpStats),
}

/// Everything one service's endpoint reports: made before the server starts, so every process
/// of it (and the responder) shares the same memory.
#[derive(Clone)]
pub(crate) struct Sources {
    /// The `service` label.
    pub service: &'static str,
    pub tally: Tally,
    pub protocol: Protocol,
}

/// The content type of what [`render`] returns.
pub(crate) const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

type Labels = Vec<(&'static str, &'static str)>;

fn counter(r: &mut Registry, name: &str, help: &str, v: u64) {
    let c = Counter::<u64>::default();
    c.inc_by(v);
    r.register(name, help, c);
}

fn gauge(r: &mut Registry, name: &str, help: &str, v: u64) {
    let g = Gauge::<i64>::default();
    g.set(i64::try_from(v).unwrap_or(i64::MAX));
    r.register(name, help, g);
}

fn counters(r: &mut Registry, name: &str, help: &str, rows: &[(Labels, u64)]) {
    let f = Family::<Labels, Counter>::default();
    for (labels, v) in rows {
        f.get_or_create(labels).inc_by(*v);
    }
    r.register(name, help, f);
}

/// The exposition of `s` now.
pub(crate) fn render(s: &Sources) -> String {
    let mut r = Registry::with_prefix_and_labels(
        "bingfa",
        [("service".into(), s.service.into())].into_iter(),
    );
    let t = s.tally.snapshot();
    gauge(
        &mut r,
        "connections_open",
        "Connections holding a place now",
        t.open,
    );
    counter(
        &mut r,
        "connections_accepted",
        "Connections admitted under the limits",
        t.accepted,
    );
    counter(
        &mut r,
        "connections_refused",
        "Connections turned away: over a limit, out of descriptors, or failing their setup",
        t.refused,
    );
    counter(
        &mut r,
        "received_bytes",
        "Bytes read from clients (connections and data channels)",
        t.bytes_in,
    );
    counter(
        &mut r,
        "sent_bytes",
        "Bytes written to clients (connections and data channels)",
        t.bytes_out,
    );
    match &s.protocol {
        Protocol::Http(h) => {
            let h = h.snapshot();
            let classes = ["1xx", "2xx", "3xx", "4xx", "5xx"];
            let rows: Vec<(Labels, u64)> = classes
                .iter()
                .zip(h.by_class)
                .map(|(c, v)| (vec![("class", *c)], v))
                .collect();
            counters(
                &mut r,
                "http_responses",
                "HTTP responses sent, by status class (interim 100 Continue in 1xx)",
                &rows,
            );
        }
        Protocol::Chat(c) => {
            let c = c.snapshot();
            gauge(
                &mut r,
                "chat_members",
                "Members in the room on this server now",
                c.members,
            );
            counter(
                &mut r,
                "chat_messages",
                "Messages members sent into the room",
                c.messages,
            );
            counter(
                &mut r,
                "chat_messages_delivered",
                "Member messages written to another member's connection",
                c.delivered,
            );
        }
        Protocol::Ftp(f) => {
            let f = f.snapshot();
            counters(
                &mut r,
                "ftp_logins",
                "FTP logins by outcome: ok, failed (wrong name or password), refused (banned, TLS required)",
                &[
                    (vec![("outcome", "ok")], f.logins_ok),
                    (vec![("outcome", "failed")], f.logins_failed),
                    (vec![("outcome", "refused")], f.logins_refused),
                ],
            );
            let mut rows = Vec::new();
            for (d, dir) in ["up", "down"].into_iter().enumerate() {
                rows.push((
                    vec![("direction", dir), ("outcome", "complete")],
                    f.complete[d],
                ));
                rows.push((
                    vec![("direction", dir), ("outcome", "aborted")],
                    f.aborted[d],
                ));
            }
            counters(
                &mut r,
                "ftp_transfers",
                "FTP file transfers by direction and outcome (listings not included)",
                &rows,
            );
            counters(
                &mut r,
                "ftp_transfer_bytes",
                "Bytes of completed FTP file transfers, by direction",
                &[
                    (vec![("direction", "up")], f.bytes[0]),
                    (vec![("direction", "down")], f.bytes[1]),
                ],
            );
        }
    }
    let mut out = String::new();
    prometheus_client::encoding::text::encode(&mut out, &r).expect("writing to a String");
    out
}
