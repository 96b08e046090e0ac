//! The real FTP servers the client is tested against, each started fresh per test on a free
//! loopback port with its own root directory, and killed on drop: pyftpdlib (a user with a
//! password that needs percent-encoding) and vsftpd (anonymous with write access), each also
//! with TLS required (explicit AUTH TLS; vsftpd also implicit), on a certificate made with
//! rcgen at start.

use std::io::{BufRead, BufReader, Read};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A directory removed on drop.
pub(crate) struct TempDir(pub PathBuf);

impl TempDir {
    pub(crate) fn new(tag: &str) -> TempDir {
        static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let p = std::env::temp_dir().join(format!("bingfa-ftpc-{tag}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
    pub(crate) fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A running server; killed on drop.
pub(crate) struct Server {
    child: Child,
    pub port: u16,
    /// What goes between `ftp://` and the host: `user:pass@` or nothing.
    pub userinfo: String,
    pub root: TempDir,
    pub name: &'static str,
    /// `ftp`, or `ftps` for implicit TLS.
    pub scheme: &'static str,
    /// With TLS: the certificate to trust (`--cacert`) and its key, in a directory of their own.
    pub tls: Option<Cert>,
}

/// A self-signed certificate for 127.0.0.1 and localhost, written as `cert.pem` and
/// `key.pem`.
pub(crate) struct Cert {
    pub dir: TempDir,
}

impl Cert {
    pub(crate) fn new() -> Cert {
        let made = rcgen::generate_simple_self_signed(vec![
            "127.0.0.1".to_string(),
            "localhost".to_string(),
        ])
        .unwrap();
        let dir = TempDir::new("cert");
        std::fs::write(dir.path().join("cert.pem"), made.cert.pem()).unwrap();
        std::fs::write(dir.path().join("key.pem"), made.key_pair.serialize_pem()).unwrap();
        Cert { dir }
    }
    /// A self-signed certificate for `localhost` only, marked as a CA (basicConstraints
    /// CA:TRUE), as `openssl req -x509` makes them by default.
    pub(crate) fn ca_flagged() -> Cert {
        let mut params = rcgen::CertificateParams::new(vec!["localhost".to_string()]).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        let dir = TempDir::new("cert");
        std::fs::write(dir.path().join("cert.pem"), cert.pem()).unwrap();
        std::fs::write(dir.path().join("key.pem"), key.serialize_pem()).unwrap();
        Cert { dir }
    }
    pub(crate) fn cert(&self) -> PathBuf {
        self.dir.path().join("cert.pem")
    }
    pub(crate) fn key(&self) -> PathBuf {
        self.dir.path().join("key.pem")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    /// `ftp[s]://[userinfo]127.0.0.1:PORT/path`.
    pub(crate) fn url(&self, path: &str) -> String {
        format!(
            "{}://{}127.0.0.1:{}/{path}",
            self.scheme, self.userinfo, self.port
        )
    }
    pub(crate) fn file(&self, rel: &str) -> PathBuf {
        self.root.path().join(rel)
    }
}

/// The pyftpdlib user's password: '@', ' ' and ':' must be percent-encoded in a URL.
pub(crate) const PY_PASSWORD: &str = "p@ss w:rd";
pub(crate) const PY_PASSWORD_ENCODED: &str = "p%40ss%20w%3Ard";

/// argv: root, password, and with TLS the certificate and key files.
const PY_SERVER: &str = r#"
import sys, logging
from pyftpdlib.authorizers import DummyAuthorizer
from pyftpdlib.handlers import FTPHandler
from pyftpdlib.servers import FTPServer
logging.basicConfig(level=logging.ERROR)
a = DummyAuthorizer()
a.add_user("ann", sys.argv[2], sys.argv[1], perm="elradfmwMT")
h = FTPHandler
if len(sys.argv) > 3:
    from pyftpdlib.handlers import TLS_FTPHandler as h
    h.certfile = sys.argv[3]
    h.keyfile = sys.argv[4]
    h.tls_control_required = True
    h.tls_data_required = True
h.authorizer = a
s = FTPServer(("127.0.0.1", 0), h)
print("ready", s.address[1], flush=True)
s.serve_forever()
"#;

/// Starts pyftpdlib, or explains why it cannot.
pub(crate) fn pyftpdlib() -> Result<Server, String> {
    start_pyftpdlib(None)
}

/// pyftpdlib's TLS_FTPHandler with TLS required on control and data connections.
pub(crate) fn pyftpdlib_tls() -> Result<Server, String> {
    start_pyftpdlib(Some(Cert::new()))
}

fn python_has(module: &str) -> bool {
    Command::new("python3")
        .args(["-c", &format!("import {module}")])
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

fn start_pyftpdlib(tls: Option<Cert>) -> Result<Server, String> {
    if !python_has("pyftpdlib") {
        return Err(
            "python3 with pyftpdlib is not installed (python3 -m pip install pyftpdlib)".into(),
        );
    }
    if tls.is_some() && !python_has("OpenSSL") {
        return Err(
            "python3 with pyopenssl is not installed (python3 -m pip install pyopenssl)".into(),
        );
    }
    let root = TempDir::new("py");
    let mut cmd = Command::new("python3");
    cmd.args(["-c", PY_SERVER])
        .arg(root.path())
        .arg(PY_PASSWORD);
    if let Some(c) = &tls {
        cmd.arg(c.cert()).arg(c.key());
    }
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("python3: {e}"))?;
    // The ready line, read on a thread so a hung start hits the timeout below.
    let out = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(out).read_line(&mut line);
        let _ = tx.send(line);
    });
    let line = match rx.recv_timeout(Duration::from_secs(20)) {
        Ok(l) => l,
        Err(_) => {
            let _ = child.kill();
            let _ = child.wait();
            panic!("pyftpdlib did not start within 20 s");
        }
    };
    let port: u16 = line
        .trim()
        .strip_prefix("ready ")
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("pyftpdlib ready line: {line:?}"));
    Ok(Server {
        child,
        port,
        userinfo: format!("ann:{PY_PASSWORD_ENCODED}@"),
        root,
        name: "pyftpdlib",
        scheme: "ftp",
        tls,
    })
}

const VSFTPD: &str = "/usr/sbin/vsftpd";

/// Starts vsftpd (anonymous, writable), or explains why it cannot.
pub(crate) fn vsftpd() -> Result<Server, String> {
    start_vsftpd(None)
}

/// vsftpd with explicit TLS required for the anonymous login and every data connection (a
/// plaintext client is refused), and TLS session reuse on data connections required
/// (`require_ssl_reuse`, vsftpd's default, stated here so the test says what it checks).
/// `strict_ssl_read_eof` and `strict_ssl_write_shutdown` make it fail an upload that ends
/// without the client's close_notify (426) and a download the client does not close with
/// one, so the tests see that the client ends its TLS data connections properly.
pub(crate) fn vsftpd_tls() -> Result<Server, String> {
    start_vsftpd(Some((Cert::new(), false)))
}

/// `vsftpd_tls` on the given certificate.
pub(crate) fn vsftpd_tls_with(cert: Cert) -> Result<Server, String> {
    start_vsftpd(Some((cert, false)))
}

/// The same with implicit TLS (`ftps://`): TLS from the first byte.
pub(crate) fn vsftpd_implicit() -> Result<Server, String> {
    start_vsftpd(Some((Cert::new(), true)))
}

fn start_vsftpd(tls: Option<(Cert, bool)>) -> Result<Server, String> {
    if !Path::new(VSFTPD).exists() {
        return Err(format!(
            "{VSFTPD} is not installed (apt-get install vsftpd)"
        ));
    }
    let implicit = tls.as_ref().is_some_and(|(_, i)| *i);
    for _attempt in 0..5 {
        let root = TempDir::new("vs");
        // With run_as_launching_user vsftpd neither chroots nor drops privileges, so it runs
        // as root in CI and accepts a writable anonymous root.
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let conf = root.path().with_extension("conf");
        std::fs::write(
            &conf,
            format!(
                "listen=YES\nlisten_ipv6=NO\nlisten_address=127.0.0.1\nlisten_port={port}\n\
                 background=NO\nrun_as_launching_user=YES\nanonymous_enable=YES\n\
                 no_anon_password=YES\nanon_root={}\nlocal_enable=NO\nwrite_enable=YES\n\
                 anon_upload_enable=YES\nanon_mkdir_write_enable=YES\n\
                 anon_other_write_enable=YES\nanon_umask=022\nseccomp_sandbox=NO\n\
                 isolate=NO\nisolate_network=NO\nxferlog_enable=NO\n\
                 vsftpd_log_file=/dev/null\n{}",
                root.path().display(),
                tls_conf(tls.as_ref())
            ),
        )
        .unwrap();
        let mut child = Command::new(VSFTPD)
            .arg(&conf)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("{VSFTPD}: {e}"))?;
        let end = Instant::now() + Duration::from_secs(10);
        let ready = loop {
            if let Ok(Some(_)) = child.try_wait() {
                break false; // the port was taken between our probe and its bind
            }
            if greets(port, implicit) {
                break true;
            }
            if Instant::now() > end {
                let _ = child.kill();
                let _ = child.wait();
                panic!("vsftpd did not greet within 10 s");
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let _ = std::fs::remove_file(&conf);
        if ready {
            return Ok(Server {
                child,
                port,
                userinfo: String::new(),
                root,
                name: "vsftpd",
                scheme: if implicit { "ftps" } else { "ftp" },
                tls: tls.map(|(c, _)| c),
            });
        }
    }
    panic!("vsftpd failed to start 5 times");
}

/// vsftpd's TLS settings: the certificate, TLS required for the anonymous login and data.
fn tls_conf(tls: Option<&(Cert, bool)>) -> String {
    let Some((cert, implicit)) = tls else {
        return String::new();
    };
    format!(
        "ssl_enable=YES\nrsa_cert_file={}\nrsa_private_key_file={}\nallow_anon_ssl=YES\n\
         force_anon_logins_ssl=YES\nforce_anon_data_ssl=YES\nrequire_ssl_reuse=YES\n\
         strict_ssl_read_eof=YES\nstrict_ssl_write_shutdown=YES\n\
         implicit_ssl={}\n",
        cert.cert().display(),
        cert.key().display(),
        if *implicit { "YES" } else { "NO" }
    )
}

/// Whether the server answers: its plain greeting, or with implicit TLS (where it waits for
/// our handshake) an accepted connection.
fn greets(port: u16, implicit: bool) -> bool {
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    if implicit {
        return true;
    }
    let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
    let mut b = [0u8; 4];
    s.read_exact(&mut b).is_ok() && &b == b"220 "
}
