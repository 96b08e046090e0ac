//! AUTH PBSZ PROT: FTP over TLS as RFC 4217 has it ("explicit" FTPS). The TLS is bingfa-net's
//! session layer: `AUTH TLS` answers `234` in the clear and asks the layer to switch
//! (`start_tls`); the session learns the handshake is done from `on_secure`. `PROT P` makes
//! each later data connection TLS (`channel_tls`, when a transfer takes it: see
//! `transfer::open_data`). An implicit-FTPS listener is secure from its first byte, so `AUTH`
//! there gets `503` and `PBSZ`/`PROT` work at once.
//!
//! With [`TlsPolicy::Required`] a login needs a secure control connection and every transfer
//! a protected data connection; `PROT C` is refused (`534`, "denied for policy reasons").
//! A protected data connection must resume the control connection's TLS session, else `522`
//! ([`reuse_refused`]; `--tls-session-reuse optional` relaxes it).

use crate::config::TlsPolicy;
use crate::reply::reply;
use crate::state::{Protection, State};
use bingfa_net::Context;

pub(crate) fn auth(s: &mut State, arg: &str, cx: &mut Context) {
    if s.shared.cfg.tls == TlsPolicy::Off {
        return reply(cx, 502, "TLS is not offered.");
    }
    // (No command arrives between `start_tls` and `on_secure`: the input after AUTH is the
    // handshake, and `on_secure` comes before the first decrypted line. So `Plain` is the
    // whole state, and PBSZ/PROT, which need TLS, are never set here to be reset.)
    if s.protection.secure() {
        return reply(cx, 503, "Already using TLS.");
    }
    match arg.trim().to_ascii_uppercase().as_str() {
        // TLS-C and SSL are the names of drafts before RFC 4217; clients still send them.
        "TLS" | "TLS-C" | "SSL" => {
            reply(cx, 234, "AUTH TLS successful.");
            cx.start_tls();
        }
        "" => reply(cx, 501, "AUTH needs a mechanism: AUTH TLS."),
        _ => reply(cx, 504, "AUTH TLS is the only mechanism."),
    }
}

pub(crate) fn pbsz(s: &mut State, arg: &str, cx: &mut Context) {
    if !s.protection.secure() {
        return reply(
            cx,
            503,
            "PBSZ needs a secure control connection: AUTH TLS first.",
        );
    }
    if arg.trim().parse::<u64>().is_err() {
        return reply(cx, 501, "PBSZ needs a number.");
    }
    // TLS is a stream: there is no buffer size to agree, and 0 is the only answer. (Again
    // after PROT: the level stays.)
    if s.protection == Protection::Secure {
        s.protection = Protection::Clear;
    }
    reply(cx, 200, "PBSZ=0");
}

pub(crate) fn prot(s: &mut State, arg: &str, cx: &mut Context) {
    if !s.protection.secure() {
        return reply(
            cx,
            503,
            "PROT needs a secure control connection: AUTH TLS first.",
        );
    }
    if !s.protection.sized() {
        return reply(cx, 503, "PBSZ first.");
    }
    match arg.trim().to_ascii_uppercase().as_str() {
        "P" => {
            s.protection = Protection::Private;
            reply(cx, 200, "Protection level set to Private.");
        }
        "C" if s.shared.cfg.tls == TlsPolicy::Required => {
            reply(cx, 534, "Clear data connections are not allowed: PROT P.")
        }
        "C" => {
            s.protection = Protection::Clear;
            reply(cx, 200, "Protection level set to Clear.");
        }
        "S" | "E" => reply(cx, 536, "Only PROT C and P are supported."),
        _ => reply(cx, 504, "Unknown protection level."),
    }
}

/// Under [`TlsPolicy::Required`]: whether the control connection may log in (`530` if not).
pub(crate) fn may_login(s: &State, cx: &mut Context) -> bool {
    let ok = s.protection.secure() || s.shared.cfg.tls != TlsPolicy::Required;
    if !ok {
        reply(cx, 530, "TLS required: AUTH TLS first.");
    }
    ok
}

/// A protected data connection whose TLS handshake did not resume the control connection's
/// session (`--tls-session-reuse required`, the default, as vsftpd's `require_ssl_reuse`):
/// another process on the client's address may have taken the passive port first. The check
/// itself is bingfa-net's TLS layer's (`TlsConfig::require_data_session_reuse`).
pub(crate) fn reuse_refused(cx: &mut Context) {
    reply(
        cx,
        522,
        "Data connection refused: its TLS session must resume the control connection's.",
    );
}

/// Under [`TlsPolicy::Required`]: whether a transfer may use the data connection (`521` if
/// it would be in the clear).
pub(crate) fn may_transfer(s: &State, cx: &mut Context) -> bool {
    let ok = s.protection.private() || s.shared.cfg.tls != TlsPolicy::Required;
    if !ok {
        reply(cx, 521, "Data connections must be encrypted: PROT P.");
    }
    ok
}
