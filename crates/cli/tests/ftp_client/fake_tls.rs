//! A scripted FTPS server (explicit TLS, rustls on a certificate made with rcgen) with two
//! files. `cut.bin` is cut short: the data connection sends part of it and closes without TLS
//! close_notify, and the control connection then claims success (226); only a client that
//! insists on close_notify notices that the end of the data was never authenticated.
//! `ok.txt` is served properly, and only after `PROT P`. With `login_first` the server
//! refuses PBSZ before USER (530), as some servers do, and wants it after the login.

use super::servers::Cert;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::{ServerConfig, ServerConnection, StreamOwned};
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::time::Duration;

/// The file the server offers, and how much of it it sends before cutting.
pub(crate) const NAME: &str = "cut.bin";
pub(crate) const SIZE: usize = 100_000;
pub(crate) const SENT: usize = 40_000;
pub(crate) const OK_NAME: &str = "ok.txt";
pub(crate) const OK_TEXT: &[u8] = b"served whole, over TLS\n";

/// Starts the server on a free port with `cert`; it serves until the test process ends.
pub(crate) fn start(cert: &Cert, login_first: bool) -> u16 {
    let chain = vec![CertificateDer::from_pem_file(cert.cert()).unwrap()];
    let key = PrivateKeyDer::from_pem_file(cert.key()).unwrap();
    let config =
        ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .unwrap();
    let config = Arc::new(config);
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for s in l.incoming().flatten() {
            let config = config.clone();
            std::thread::spawn(move || {
                let _ = session(s, config, login_first);
            });
        }
    });
    port
}

fn tls(s: TcpStream, config: &Arc<ServerConfig>) -> StreamOwned<ServerConnection, TcpStream> {
    StreamOwned::new(ServerConnection::new(config.clone()).unwrap(), s)
}

fn session(s: TcpStream, config: Arc<ServerConfig>, login_first: bool) -> std::io::Result<()> {
    s.set_read_timeout(Some(Duration::from_secs(20)))?;
    let mut plain = s.try_clone()?;
    plain.write_all(b"220 fake FTPS\r\n")?;
    let mut line = String::new();
    BufReader::new(&mut plain).read_line(&mut line)?;
    if !line.eq_ignore_ascii_case("AUTH TLS\r\n") {
        return plain.write_all(b"530 TLS first\r\n");
    }
    plain.write_all(b"234 go ahead\r\n")?;
    let mut ctl = BufReader::new(tls(s, &config));
    let mut data: Option<TcpListener> = None;
    let (mut logged_in, mut pbsz, mut prot_p) = (false, false, false);
    loop {
        let mut line = String::new();
        if ctl.read_line(&mut line)? == 0 {
            return Ok(());
        }
        let line = line.trim_end();
        let (cmd, arg) = line.split_once(' ').unwrap_or((line, ""));
        let reply = match cmd.to_ascii_uppercase().as_str() {
            "PBSZ" if login_first && !logged_in => "530 log in first".to_string(),
            "PBSZ" => {
                pbsz = true;
                "200 PBSZ=0".into()
            }
            "PROT" if !pbsz => "503 PBSZ first".into(),
            "PROT" => {
                prot_p = arg == "P";
                "200 ok".into()
            }
            "TYPE" => "200 ok".into(),
            "USER" => {
                logged_in = true;
                "230 in".into()
            }
            "FEAT" => "211 no features".into(),
            "SIZE" if arg == OK_NAME => format!("213 {}", OK_TEXT.len()),
            "SIZE" => format!("213 {SIZE}"),
            "EPSV" => {
                let d = TcpListener::bind("127.0.0.1:0")?;
                let p = d.local_addr()?.port();
                data = Some(d);
                format!("229 Entering Extended Passive Mode (|||{p}|)")
            }
            "RETR" if arg == OK_NAME && !prot_p => "521 PROT P required".into(),
            "RETR" if arg == OK_NAME => {
                let Some(d) = data.take() else {
                    ctl.get_mut().write_all(b"425 EPSV first\r\n")?;
                    continue;
                };
                ctl.get_mut().write_all(b"150 here it comes\r\n")?;
                ctl.get_mut().flush()?;
                let (ds, _) = d.accept()?;
                let mut ds = tls(ds, &config);
                ds.write_all(OK_TEXT)?;
                ds.conn.send_close_notify();
                ds.flush()?;
                "226 done".into()
            }
            "RETR" if arg == NAME => {
                let Some(d) = data.take() else {
                    ctl.get_mut().write_all(b"425 EPSV first\r\n")?;
                    continue;
                };
                ctl.get_mut().write_all(b"150 here it comes\r\n")?;
                ctl.get_mut().flush()?;
                let (ds, _) = d.accept()?;
                let mut ds = tls(ds, &config);
                ds.write_all(&vec![0x5A; SENT])?;
                ds.flush()?;
                // The cut: TCP closed with no close_notify (no send_close_notify).
                let tcp = ds.sock;
                tcp.shutdown(std::net::Shutdown::Both)?;
                drop(tcp);
                "226 all done (not really)".into()
            }
            "QUIT" => {
                ctl.get_mut().write_all(b"221 bye\r\n")?;
                return Ok(());
            }
            _ => "502 not implemented".into(),
        };
        let w = ctl.get_mut();
        w.write_all(format!("{reply}\r\n").as_bytes())?;
        w.flush()?;
    }
}
