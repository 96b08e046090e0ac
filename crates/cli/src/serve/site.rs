//! `serve`'s built-in site: a private temporary directory with the landing page (which shows
//! the services' real addresses, written once they are known) and a README, removed at exit.

use anyhow::Context as _;
use bingfa_net::Model;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// The built-in site, in a private temporary directory removed at exit.
pub(super) struct Site(pub(super) PathBuf);

const INDEX: &str = include_str!("../site/index.html");

impl Site {
    pub(super) fn new() -> anyhow::Result<Site> {
        let dir = std::env::temp_dir().join(format!("bingfa-site-{}", std::process::id()));
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        // Readable by the services whatever user they run as; nothing secret in it.
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755))?;
        std::fs::write(
            dir.join("README.txt"),
            "This is bingfa's built-in site: the landing page (index.html) and this file.\n\
             Serve your own directory with `bingfa serve --root DIR`.\n",
        )?;
        Ok(Site(dir))
    }

    pub(super) fn write_index(
        &self,
        model: Model,
        tls: bool,
        chat: SocketAddr,
        web: SocketAddr,
        ftp: SocketAddr,
    ) -> anyhow::Result<()> {
        let page = INDEX
            .replace("{{MODEL}}", &model.to_string())
            .replace(
                "{{WEB_URL}}",
                &format!("{}://{web}/", if tls { "https" } else { "http" }),
            )
            .replace("{{CHAT_ADDR}}", &chat.to_string())
            .replace("{{CHAT_HOST}}", &chat.ip().to_string())
            .replace("{{CHAT_PORT}}", &chat.port().to_string())
            .replace("{{FTP_ADDR}}", &ftp.to_string())
            .replace("{{FTP_HOST}}", &ftp.ip().to_string())
            .replace("{{FTP_PORT}}", &ftp.port().to_string());
        write_atomically(&self.0.join("index.html"), page.as_bytes())
    }
}

fn write_atomically(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path)?;
    Ok(())
}

impl Drop for Site {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
