//! The FTP client's commands: `ls URL`, `get URL [FILE]`, `put FILE URL` and `shell URL`, on
//! bingfa_ftp::client. URLs are `ftp://[user[:password]@]host[:port]/path`; the password may
//! instead come from BINGFA_FTP_PASSWORD or, on a terminal, a prompt. No user means anonymous.
//! `--tls` is explicit FTPS (AUTH TLS), an `ftps://` URL implicit FTPS (port 990); `--cacert`
//! and `--insecure` choose what is trusted instead of the system's CAs.

mod ls_time;
mod part;
mod shell;
mod transfer;

use anyhow::Context as _;
use bingfa_ftp::client::{
    display_name, local_name, Client, Entry, FtpUrl, Kind, Options, TlsOptions, Trust,
};
use std::io::IsTerminal as _;
use std::path::PathBuf;
use std::time::Duration;

/// The environment variable a password may come from when the URL has none.
pub(crate) const PASSWORD_ENV: &str = "BINGFA_FTP_PASSWORD";

#[derive(clap::Subcommand, Debug)]
pub(crate) enum ClientCommand {
    /// List a remote directory: `ls ftp://host/dir/`.
    Ls(LsArgs),
    /// Download URL to FILE (default: the URL's file name, sanitised). A URL ending in '/'
    /// downloads every file of that directory into FILE (a directory, default '.'); a file
    /// that cannot be fetched is reported and skipped, and the exit status is then 1.
    /// Writes NAME.part and renames it when complete (a length other than the server's SIZE
    /// is an error that keeps it); an existing NAME.part is resumed.
    Get(GetArgs),
    /// Upload FILE to URL (a URL ending in '/' keeps FILE's name). Source first, like cp.
    Put(PutArgs),
    /// An interactive prompt: ls cd pwd get put mkdir rmdir rm rename help quit. Reads
    /// commands from stdin when it is not a terminal, and then exits 1 if any failed.
    Shell(ShellArgs),
}

/// Options shared by every client command.
#[derive(clap::Args, Debug, Clone)]
pub(crate) struct ConnArgs {
    /// Active mode: the server connects back to us (EPRT, falling back to PORT).
    #[arg(long)]
    pub active: bool,
    /// Seconds to wait for connecting and for any read or write.
    #[arg(long, default_value_t = 30, value_name = "SECONDS")]
    pub timeout: u64,
    /// Explicit FTP over TLS: AUTH TLS, then PBSZ 0 and PROT P, so the login and every data
    /// connection are encrypted. Fails if the server refuses. (ftps:// URLs are implicit TLS.)
    #[arg(long)]
    pub tls: bool,
    /// Trust only the certificates in this PEM file (a CA, or a self-signed server
    /// certificate) instead of the system's CAs.
    #[arg(long, value_name = "PEM", conflicts_with = "insecure")]
    pub cacert: Option<PathBuf>,
    /// Do not verify the server's certificate (testing only: the session can be read and
    /// changed by anyone on the path).
    #[arg(long)]
    pub insecure: bool,
}

impl ConnArgs {
    /// The TLS options for `url`: implicit for ftps://, explicit with --tls, else none.
    fn tls(&self, url: &FtpUrl) -> anyhow::Result<Option<TlsOptions>> {
        if !url.implicit_tls && !self.tls {
            if self.cacert.is_some() || self.insecure {
                anyhow::bail!("--cacert and --insecure are for TLS: add --tls or use ftps://");
            }
            return Ok(None);
        }
        let trust = match (&self.cacert, self.insecure) {
            (Some(p), _) => Trust::CaFile(p.clone()),
            (None, true) => {
                eprintln!(
                    "WARNING: --insecure: the server's certificate is NOT verified; anyone \
                     on the path can read and change this session, password included"
                );
                Trust::Insecure
            }
            (None, false) => Trust::System,
        };
        Ok(Some(TlsOptions {
            implicit: url.implicit_tls,
            trust,
        }))
    }
}

#[derive(clap::Args, Debug)]
pub(crate) struct LsArgs {
    /// ftp[s]://[user[:password]@]host[:port]/dir
    pub url: String,
    /// Long form: type, size, modification time, name.
    #[arg(short = 'l', long)]
    pub long: bool,
    #[command(flatten)]
    pub conn: ConnArgs,
}

#[derive(clap::Args, Debug)]
pub(crate) struct GetArgs {
    /// ftp[s]://[user[:password]@]host[:port]/path
    pub url: String,
    /// Where to save (a file, or an existing directory).
    pub file: Option<PathBuf>,
    /// Also resume from FILE itself when it exists (a NAME.part is always resumed).
    #[arg(short = 'c', long)]
    pub resume: bool,
    #[command(flatten)]
    pub conn: ConnArgs,
}

#[derive(clap::Args, Debug)]
pub(crate) struct PutArgs {
    /// The local file to upload.
    pub file: PathBuf,
    /// ftp[s]://[user[:password]@]host[:port]/path (ending in '/' to keep FILE's name).
    pub url: String,
    /// Resume: append what the server's copy (SIZE) lacks instead of uploading it all.
    #[arg(short = 'c', long)]
    pub resume: bool,
    #[command(flatten)]
    pub conn: ConnArgs,
}

#[derive(clap::Args, Debug)]
pub(crate) struct ShellArgs {
    /// ftp[s]://[user[:password]@]host[:port]/[start directory]
    pub url: String,
    #[command(flatten)]
    pub conn: ConnArgs,
}

pub(crate) fn run(cmd: ClientCommand) -> anyhow::Result<()> {
    match cmd {
        ClientCommand::Ls(a) => {
            let url = FtpUrl::parse(&a.url)?;
            let mut c = connect(&url, &a.conn)?;
            let entries = c.list(&url.path)?;
            print_entries(&entries, a.long);
            c.quit();
            Ok(())
        }
        ClientCommand::Get(a) => {
            let url = FtpUrl::parse(&a.url)?;
            let mut c = connect(&url, &a.conn)?;
            if url.is_dir() {
                let dir = a.file.unwrap_or_else(|| PathBuf::from("."));
                transfer::download_dir(&mut c, &url.path, &dir)?;
            } else {
                let name = local_name(url.file_name())
                    .with_context(|| format!("no usable file name in {:?}", url.path))?;
                let local = match a.file {
                    None => PathBuf::from(name),
                    Some(p) if p.is_dir() => p.join(name),
                    Some(p) => p,
                };
                transfer::download(&mut c, &url.path, &local, a.resume)?;
            }
            c.quit();
            Ok(())
        }
        ClientCommand::Put(a) => {
            let url = FtpUrl::parse(&a.url)?;
            let remote = if url.is_dir() {
                let name = a
                    .file
                    .file_name()
                    .and_then(|n| n.to_str())
                    .with_context(|| format!("{} has no UTF-8 file name", a.file.display()))?;
                format!("{}{name}", url.path)
            } else {
                url.path.clone()
            };
            let mut c = connect(&url, &a.conn)?;
            transfer::upload(&mut c, &a.file, &remote, a.resume)?;
            c.quit();
            Ok(())
        }
        ClientCommand::Shell(a) => {
            let url = FtpUrl::parse(&a.url)?;
            let c = connect(&url, &a.conn)?;
            shell::run(c, &url)
        }
    }
}

/// Connects, logs in (finding the password) and negotiates.
fn connect(url: &FtpUrl, conn: &ConnArgs) -> anyhow::Result<Client> {
    let opts = Options {
        timeout: Duration::from_secs(conn.timeout.max(1)),
        active: conn.active,
        tls: conn.tls(url)?,
    };
    let authority = url.authority();
    let mut c = Client::connect(&url.host, url.port, opts)
        .with_context(|| format!("connecting to {authority}"))?;
    let password = match (&url.user, &url.password) {
        (_, Some(p)) => Some(p.clone()),
        (None, None) => None,
        (Some(user), None) => match std::env::var(PASSWORD_ENV) {
            Ok(p) => Some(p),
            Err(_) if std::io::stdin().is_terminal() => Some(
                rpassword::prompt_password(format!("Password for {user}@{authority}: "))
                    .context("reading the password")?,
            ),
            Err(_) => None,
        },
    };
    c.login(url.user.as_deref(), password.as_deref())
        .with_context(|| {
            format!(
                "logging in to {authority} as {}",
                url.user.as_deref().unwrap_or("anonymous")
            )
        })?;
    c.negotiate()?;
    Ok(c)
}

/// Prints a listing: names (directories with a trailing '/'), or the long form. Names and
/// times are escaped so a hostile listing cannot send terminal control sequences.
fn print_entries(entries: &[Entry], long: bool) {
    for e in entries {
        let name = display_name(&e.name);
        let slash = if e.kind == Kind::Dir { "/" } else { "" };
        if long {
            let kind = match e.kind {
                Kind::File => '-',
                Kind::Dir => 'd',
                Kind::Link => 'l',
                Kind::Other => '?',
            };
            let size = e.size.map_or("-".to_string(), |s| s.to_string());
            // An unparsable time is shown as sent, escaped like every string from the server.
            let when = e
                .modified
                .as_deref()
                .map_or("-".into(), |t| display_name(&ls_time::show(t)));
            println!("{kind} {size:>12} {when:<12} {name}{slash}");
        } else {
            println!("{name}{slash}");
        }
    }
}
