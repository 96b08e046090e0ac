//! PORT PASV EPRT EPSV: preparing the data connection for the next transfer.
//!
//! No bounce attacks: an active address must be the control connection's client and a port
//! of 1024 or more, else `501`. Passive listeners come from bingfa-net (`listen_with`): a random
//! port of `--passive-ports`, the `--passive-address` announced, and only the client's IP
//! admitted. A new PASV/PORT replaces (aborts) one prepared and unused.

use crate::reply::reply;
use crate::state::{Data, PasvKind, State};
use bingfa_net::{Context, Passive};
use std::net::{IpAddr, SocketAddr};

fn clear(s: &mut State, cx: &mut Context) {
    if let Data::Passive { id, .. } = std::mem::replace(&mut s.data, Data::None) {
        cx.channel_abort(id);
    }
}

/// After `EPSV ALL` only EPSV may set up a data connection; answers 501 if refused.
fn epsv_only(s: &State, cx: &mut Context) -> bool {
    if s.epsv_all {
        reply(cx, 501, "EPSV ALL in effect: only EPSV.");
    }
    s.epsv_all
}

fn set_active(s: &mut State, addr: Option<SocketAddr>, cx: &mut Context) {
    if epsv_only(s, cx) {
        return;
    }
    match addr {
        Some(a) if a.ip().to_canonical() == s.peer.ip().to_canonical() && a.port() >= 1024 => {
            clear(s, cx);
            s.data = Data::Active(a);
            reply(cx, 200, "PORT command successful. Consider using PASV.");
        }
        Some(_) => {
            crate::log::refused(s.peer.ip(), crate::log::Refusal::Bounce);
            reply(
                cx,
                501,
                "Illegal PORT command: only your own address, port 1024 or above.",
            )
        }
        None => reply(cx, 501, "Syntax error in PORT arguments."),
    }
}

/// `h1,h2,h3,h4,p1,p2`.
pub fn parse_port(arg: &str) -> Option<SocketAddr> {
    let n: Vec<u8> = arg
        .trim()
        .split(',')
        .map(|x| x.trim().parse::<u8>())
        .collect::<Result<_, _>>()
        .ok()?;
    if n.len() != 6 {
        return None;
    }
    let ip = IpAddr::from([n[0], n[1], n[2], n[3]]);
    Some(SocketAddr::new(ip, u16::from(n[4]) << 8 | u16::from(n[5])))
}

/// `|1|127.0.0.1|6275|` (any delimiter, RFC 2428).
pub fn parse_eprt(arg: &str) -> Option<SocketAddr> {
    let d = arg.chars().next()?;
    let f: Vec<&str> = arg.split(d).collect();
    if f.len() != 5 {
        return None;
    }
    let ip: IpAddr = f[2].parse().ok()?;
    match (f[1], ip) {
        ("1", IpAddr::V4(_)) | ("2", IpAddr::V6(_)) => {}
        _ => return None,
    }
    Some(SocketAddr::new(ip, f[3].parse().ok()?))
}

pub(crate) fn port(s: &mut State, arg: &str, cx: &mut Context) {
    set_active(s, parse_port(arg), cx);
}

pub(crate) fn eprt(s: &mut State, arg: &str, cx: &mut Context) {
    set_active(s, parse_eprt(arg), cx);
}

pub(crate) fn pasv(s: &mut State, kind: PasvKind, cx: &mut Context) {
    if kind == PasvKind::Pasv && epsv_only(s, cx) {
        return;
    }
    if kind == PasvKind::Pasv
        && s.local.ip().to_canonical().is_ipv6()
        && s.shared.cfg.passive_address.is_none()
    {
        return reply(cx, 425, "PASV needs IPv4; use EPSV.");
    }
    clear(s, cx);
    let id = cx.listen_with(Passive {
        ports: s.shared.cfg.passive_ports.clone(),
        announce: s.shared.cfg.passive_address,
    });
    // PROT P: TLS from the first byte, so a client that starts its handshake at once (curl)
    // is answered at once; see `Data::Passive::tls`.
    let tls = s.protection.private();
    if tls {
        cx.channel_tls(id);
    }
    // The reply goes out with the address, on `Listening` (see transfer::on_channel).
    s.data = Data::Passive { id, kind, tls };
}

pub(crate) fn epsv(s: &mut State, arg: &str, cx: &mut Context) {
    if arg.eq_ignore_ascii_case("ALL") {
        s.epsv_all = true;
        return reply(cx, 200, "EPSV ALL ok.");
    }
    pasv(s, PasvKind::Epsv, cx);
}

/// The `227`/`229` reply for a bound passive listener.
pub(crate) fn listening(kind: PasvKind, addr: SocketAddr, cx: &mut Context) {
    match (kind, addr.ip().to_canonical()) {
        (PasvKind::Pasv, IpAddr::V4(ip)) => {
            let o = ip.octets();
            let p = addr.port();
            reply(
                cx,
                227,
                &format!(
                    "Entering Passive Mode ({},{},{},{},{},{}).",
                    o[0],
                    o[1],
                    o[2],
                    o[3],
                    p >> 8,
                    p & 0xff
                ),
            );
        }
        (PasvKind::Pasv, IpAddr::V6(_)) => reply(cx, 425, "PASV needs IPv4; use EPSV."),
        (PasvKind::Epsv, _) => reply(
            cx,
            229,
            &format!("Entering Extended Passive Mode (|||{}|).", addr.port()),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parsing() {
        assert_eq!(
            parse_port("127,0,0,1,4,1"),
            Some("127.0.0.1:1025".parse().unwrap())
        );
        assert_eq!(parse_port("127,0,0,1,4"), None);
        assert_eq!(parse_port("127,0,0,1,4,256"), None);
        assert_eq!(
            parse_eprt("|1|127.0.0.1|6275|"),
            Some("127.0.0.1:6275".parse().unwrap())
        );
        assert_eq!(
            parse_eprt("|2|::1|6275|"),
            Some("[::1]:6275".parse().unwrap())
        );
        assert_eq!(parse_eprt("|2|127.0.0.1|6275|"), None);
        assert_eq!(parse_eprt("|1|127.0.0.1|x|"), None);
    }
}
