//! The FTP control line as the server reads it: Telnet commands removed (never growing the line,
//! and escaping what remains then removing again gives it back), then the verb and argument,
//! and the `PORT` / `EPRT` arguments, whose accepted addresses print back to the same address.
use bingfa_ftp::cmd::data::{parse_eprt, parse_port};
use bingfa_ftp::session::telnet;
use std::net::SocketAddr;

fn escape(line: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    for &b in line {
        out.push(b);
        if b == 0xff {
            out.push(0xff);
        }
    }
    out
}

fn main() {
    bingfa_fuzz::set_limits(1 << 20, 16 << 20);
    afl::fuzz!(|data: &[u8]| {
        let clean = telnet(data);
        assert!(clean.len() <= data.len());
        if !data.contains(&0xff) {
            let skip = data.iter().take_while(|&&b| b >= 0x80).count();
            assert_eq!(clean, &data[skip..]);
        }
        assert_eq!(
            telnet(&escape(&clean)),
            clean,
            "Telnet escaping does not round-trip"
        );
        let Ok(line) = std::str::from_utf8(&clean) else {
            return;
        };
        let arg = line.split_once(' ').map_or("", |(_, a)| a);
        if let Some(a) = parse_port(arg) {
            let SocketAddr::V4(v4) = a else {
                panic!("PORT gave {a}")
            };
            let o = v4.ip().octets();
            let back = format!(
                "{},{},{},{},{},{}",
                o[0],
                o[1],
                o[2],
                o[3],
                a.port() >> 8,
                a.port() & 0xff
            );
            assert_eq!(parse_port(&back), Some(a));
        }
        if let Some(a) = parse_eprt(arg) {
            let back = match a {
                SocketAddr::V4(v) => format!("|1|{}|{}|", v.ip(), v.port()),
                SocketAddr::V6(v) => format!("|2|{}|{}|", v.ip(), v.port()),
            };
            assert_eq!(parse_eprt(&back), Some(a));
        }
    });
}
