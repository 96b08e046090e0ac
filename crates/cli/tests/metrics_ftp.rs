//! `--metrics` for FTP, under every model: logins by outcome and transfers by direction and
//! outcome (see `metrics.rs`).

#[path = "support/openmetrics.rs"]
mod openmetrics;
#[path = "support/procs.rs"]
mod procs;
#[path = "support/tools.rs"]
mod tools;

use bingfa_net::Model;
use openmetrics::*;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

mod ftp {
    use super::*;

    /// A control connection, read reply by reply.
    struct Control {
        r: BufReader<TcpStream>,
        w: TcpStream,
    }

    impl Control {
        fn connect(addr: SocketAddr) -> Control {
            let s = TcpStream::connect(addr).unwrap();
            s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
            let mut c = Control {
                r: BufReader::new(s.try_clone().unwrap()),
                w: s,
            };
            assert!(c.reply().starts_with("220"));
            c
        }

        /// One reply (a multi-line one whole); its last line.
        fn reply(&mut self) -> String {
            let mut line = String::new();
            self.r.read_line(&mut line).unwrap();
            if line.as_bytes().get(3) == Some(&b'-') {
                let end = format!("{} ", &line[..3]);
                loop {
                    line.clear();
                    self.r.read_line(&mut line).unwrap();
                    if line.starts_with(&end) || line.is_empty() {
                        break;
                    }
                }
            }
            line.trim_end().to_string()
        }

        fn cmd(&mut self, c: &str) -> String {
            self.w.write_all(format!("{c}\r\n").as_bytes()).unwrap();
            self.reply()
        }

        fn pasv(&mut self) -> TcpStream {
            let r = self.cmd("PASV");
            assert!(r.starts_with("227"), "{r}");
            let inner = &r[r.find('(').unwrap() + 1..r.find(')').unwrap()];
            let n: Vec<u16> = inner.split(',').map(|x| x.parse().unwrap()).collect();
            let ip = std::net::Ipv4Addr::new(n[0] as u8, n[1] as u8, n[2] as u8, n[3] as u8);
            let s = TcpStream::connect((ip, n[4] * 256 + n[5])).unwrap();
            s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
            s
        }
    }

    /// A failed login, a good one, an upload and a download: exact counts of each outcome,
    /// and the bytes of both transfers.
    pub(crate) fn counts(model: Model, edge: bool) {
        if !have_parser() {
            return;
        }
        let root = Dir::new("ftp");
        let tag = root.0.display().to_string();
        let server = start(
            model,
            edge,
            &[
                "ftp",
                "serve",
                "--bind",
                "127.0.0.1:0",
                "--root",
                &tag,
                "--anonymous",
                "write",
                "--login-delay-ms",
                "10",
            ],
            &["ftp"],
        );
        let (addr, metrics) = (server.addr("ftp"), server.addr("metrics"));
        let mut c = Control::connect(addr);
        assert!(c.cmd("USER nobody").starts_with("331"));
        assert!(c.cmd("PASS wrong").starts_with("530"));
        assert!(c.cmd("USER anonymous").starts_with("331"));
        assert!(c.cmd("PASS me@example.com").starts_with("230"));
        assert!(c.cmd("TYPE I").starts_with("200"));
        let body: Vec<u8> = (0..50_000u32).map(|i| (i % 251) as u8).collect();
        let mut data = c.pasv();
        assert!(c.cmd("STOR up.bin").starts_with("150"));
        data.write_all(&body).unwrap();
        drop(data);
        assert!(c.reply().starts_with("226"));
        assert_eq!(std::fs::read(root.0.join("up.bin")).unwrap(), body);
        let mut data = c.pasv();
        assert!(c.cmd("RETR up.bin").starts_with("150"));
        let mut got = Vec::new();
        data.read_to_end(&mut got).unwrap();
        assert_eq!(got, body);
        assert!(c.reply().starts_with("226"));
        let n = body.len() as u64;
        let counts = |m: &Scrape| {
            let login = |o| {
                value(
                    m,
                    "ftp",
                    "bingfa_ftp_logins_total",
                    "counter",
                    &[("outcome", o)],
                )
            };
            let xfer = |d, o| {
                value(
                    m,
                    "ftp",
                    "bingfa_ftp_transfers_total",
                    "counter",
                    &[("direction", d), ("outcome", o)],
                )
            };
            let bytes = |d| {
                value(
                    m,
                    "ftp",
                    "bingfa_ftp_transfer_bytes_total",
                    "counter",
                    &[("direction", d)],
                )
            };
            // Both data connections' bytes are in the service's bytes too.
            let more = |name| value(m, "ftp", name, "counter", &[]) > n;
            (
                [login("ok"), login("failed"), login("refused")],
                [xfer("up", "complete"), xfer("up", "aborted")],
                [xfer("down", "complete"), xfer("down", "aborted")],
                [bytes("up"), bytes("down")],
                [
                    more("bingfa_received_bytes_total"),
                    more("bingfa_sent_bytes_total"),
                ],
            )
        };
        settle(
            metrics,
            &([1, 1, 0], [1, 0], [1, 0], [n, n], [true, true]),
            counts,
        );
        assert!(c.cmd("QUIT").starts_with("221"));
        stop_clean(server, &tag);
    }
}

bingfa_testkit::for_each_model! {
    #[test] fn ftp_counts() { ftp::counts(M, E) }
}
