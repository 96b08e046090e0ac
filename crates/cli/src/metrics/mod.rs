//! `--metrics ADDR`: a Prometheus endpoint (`GET /metrics`, OpenMetrics text) for each service
//! and for `bingfa serve` as a whole.
//!
//! The counters live in shared memory made before the server starts (bingfa-net's `Tally` for
//! connections and bytes, each protocol's own for the rest), so every process of every model
//! counts into the same place. The endpoint is served by a small process of its own, forked
//! from the service's process right after those counters are made and before the server binds
//! or starts a thread of its own: so it is forked single-threaded, it holds none of the
//! server's listeners, and it never forks again, so it may use threads freely, while the
//! server's process stays as the models need it (`fork` and `prefork` must not fork a
//! multi-threaded process). It reads the shared counters at each scrape. It dies with the
//! service (`PR_SET_PDEATHSIG`) and is killed and reaped when the service returns.
//!
//! Under `bingfa serve` each service exposes its endpoint on a private loopback port and the
//! supervisor serves the one `--metrics` address, merging the services' answers per scrape
//! (`merge.rs`); every sample carries a `service` label.

pub(crate) mod expose;
pub(crate) mod merge;
pub(crate) mod responder;

use anyhow::Context as _;
pub(crate) use expose::{Protocol, Sources};
use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;

/// The metrics endpoint's process; killed and reaped when dropped.
pub(crate) struct Exporter {
    pid: libc::pid_t,
}

/// A service's `--metrics ADDR`: the connection tally it hands its server (`tally_slot`, the
/// server configuration's) and the endpoint over that and `protocol`'s counters; nothing
/// without the flag. Call before the server is bound and before any thread (see [`start`]).
pub(crate) fn start_service(
    addr: Option<SocketAddr>,
    service: &'static str,
    tally_slot: &mut Option<bingfa_net::Tally>,
    protocol: impl FnOnce() -> anyhow::Result<Protocol>,
) -> anyhow::Result<Option<Exporter>> {
    let Some(addr) = addr else {
        return Ok(None);
    };
    let tally = bingfa_net::Tally::new().context("--metrics: shared memory")?;
    *tally_slot = Some(tally.clone());
    let protocol = protocol()?;
    start(
        addr,
        Sources {
            service,
            tally,
            protocol,
        },
    )
    .map(Some)
}

/// Bind `addr`, print `metrics listening on IP:PORT`, and serve `sources` from a process of
/// its own (see the module docs). Call before the server is bound and before any thread.
pub(crate) fn start(addr: SocketAddr, sources: Sources) -> anyhow::Result<Exporter> {
    let listener =
        TcpListener::bind(addr).with_context(|| format!("--metrics: cannot listen on {addr}"))?;
    let local = listener.local_addr()?;
    let parent = std::process::id() as libc::pid_t;
    use std::io::Write;
    // Flushed before the fork, or the child would hold (and later write) a copy of it.
    let _ = std::io::stdout().flush();
    // SAFETY: fork(2) takes no pointers. The child runs only this crate's responder (its own
    // listener, threads it starts itself, reads of atomics in shared memory) and ends with
    // `_exit`, never returning into the caller: it touches no lock another thread of the
    // parent could hold, and the callers fork before starting threads of their own.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(std::io::Error::last_os_error()).context("--metrics: cannot fork");
    }
    if pid == 0 {
        // SAFETY: prctl, getppid and _exit take integers only. Dying with the parent: when
        // the service is killed outright, no endpoint is left behind reporting for it.
        unsafe {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            if libc::getppid() != parent {
                libc::_exit(0);
            }
        }
        let render: Arc<responder::Render> =
            Arc::new(move || Ok((expose::render(&sources), expose::CONTENT_TYPE)));
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            responder::serve(listener, render)
        }));
        drop(r);
        // SAFETY: ends the child without running the parent's destructors or exit handlers.
        unsafe { libc::_exit(1) };
    }
    drop(listener);
    announce(local);
    Ok(Exporter { pid })
}

/// The ready line, as every listener prints it.
pub(crate) fn announce(addr: SocketAddr) {
    use std::io::Write;
    println!("metrics listening on {addr}");
    let _ = std::io::stdout().flush();
}

impl Drop for Exporter {
    fn drop(&mut self) {
        let mut status = 0;
        // SAFETY: waitpid and kill take integers and a live int. Only a child of ours that
        // is still unreaped is signalled (a `fork` model parent reaps any child that exits,
        // so it may be gone already: then its pid is not ours to signal).
        unsafe {
            if libc::waitpid(self.pid, &mut status, libc::WNOHANG) == 0 {
                libc::kill(self.pid, libc::SIGKILL);
                libc::waitpid(self.pid, &mut status, 0);
            }
        }
    }
}

/// `bingfa serve --metrics ADDR`: serve the merge of the services' endpoints at `addr` on
/// threads of this (supervisor) process, which never forks a service itself (it spawns them
/// with exec). Returns the bound address.
pub(crate) fn start_merged(addr: SocketAddr, services: Vec<SocketAddr>) -> anyhow::Result<()> {
    let listener =
        TcpListener::bind(addr).with_context(|| format!("--metrics: cannot listen on {addr}"))?;
    let local = listener.local_addr()?;
    let render: Arc<responder::Render> = Arc::new(move || {
        let bodies = services
            .iter()
            .map(|a| merge::scrape(*a))
            .collect::<Result<Vec<_>, _>>()?;
        Ok((merge::merge(&bodies), expose::CONTENT_TYPE))
    });
    std::thread::Builder::new()
        .name("metrics".into())
        .spawn(move || responder::serve(listener, render))?;
    announce(local);
    Ok(())
}
