//! The `NAME.part` file a download is written to. It is opened without following a symbolic
//! link (O_NOFOLLOW), and kept only when it is a regular file of the user's own with no other
//! hard link: in a directory others can write to (a shared download directory, /tmp), a
//! planted `NAME.part` link would otherwise make the client write the server's bytes through
//! it into any file the user can write, and a planted FIFO would block the open for ever.

use anyhow::bail;
use bingfa_ftp::client::display_name;
use std::fs::{File, OpenOptions};
use std::os::unix::fs::{MetadataExt as _, OpenOptionsExt as _};
use std::path::{Path, PathBuf};

/// `local` with `.part` appended to its file name.
pub(super) fn part_path(local: &Path) -> PathBuf {
    let mut s = local.as_os_str().to_owned();
    s.push(".part");
    PathBuf::from(s)
}

/// A path for messages: the name may come from a server listing, so it is escaped.
pub(super) fn shown(p: &Path) -> String {
    display_name(&p.display().to_string())
}

/// Opens (creating it when missing, never truncating) the `.part` file `part` for writing,
/// or refuses it: a symbolic link, anything but a regular file, a file of another user, a
/// file with other hard links.
pub(super) fn open(part: &Path) -> anyhow::Result<File> {
    let refuse = |why: &str| -> anyhow::Result<File> {
        bail!(
            "refusing to write to {}: {why}; remove it or download elsewhere",
            shown(part)
        )
    };
    // O_NONBLOCK: opening a FIFO for writing would otherwise wait for a reader; here it fails
    // with ENXIO (or succeeds and is refused below). It does not change how a regular file
    // is written.
    let f = OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(false)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(part);
    let f = match f {
        Ok(f) => f,
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) => {
            return refuse("it is a symbolic link");
        }
        Err(e) if e.raw_os_error() == Some(libc::ENXIO) => {
            return refuse("it is not a regular file");
        }
        Err(e) => return Err(anyhow::Error::new(e).context(format!("creating {}", shown(part)))),
    };
    let m = f.metadata()?;
    if !m.file_type().is_file() {
        return refuse("it is not a regular file");
    }
    // SAFETY: geteuid has no preconditions and cannot fail.
    let me = unsafe { libc::geteuid() };
    if m.uid() != me {
        return refuse(&format!("it belongs to another user (uid {})", m.uid()));
    }
    if m.nlink() > 1 {
        return refuse("it has other hard links");
    }
    Ok(f)
}
