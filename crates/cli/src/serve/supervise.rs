//! `serve`'s supervision: starting each service (a re-executed `bingfa` child) and relaying
//! its ready lines, passing SIGUSR1 and SIGHUP on, noticing a service that ends by itself, and
//! stopping them all (SIGTERM, a grace period, SIGKILL).

use anyhow::{bail, Context as _};
use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// How long a service has to print its ready line.
const START: Duration = Duration::from_secs(30);
/// How long the services have to stop after SIGTERM before they are killed.
const GRACE: Duration = Duration::from_secs(15);

/// A started service.
pub(super) struct Service {
    pub(super) name: &'static str,
    pub(super) child: Child,
}

static STOP: AtomicBool = AtomicBool::new(false);
/// SIGUSR1 came (logrotate): the HTTP service is to reopen its access log, the FTP service
/// its transfer log.
static REOPEN: AtomicBool = AtomicBool::new(false);

pub(super) extern "C" fn on_signal(_: libc::c_int) {
    STOP.store(true, Ordering::SeqCst);
}

pub(super) extern "C" fn on_usr1(_: libc::c_int) {
    REOPEN.store(true, Ordering::SeqCst);
}

/// SIGHUP came: every service is to re-read its certificate (each reloads on its own SIGHUP).
static RELOAD: AtomicBool = AtomicBool::new(false);

pub(super) extern "C" fn on_hup(_: libc::c_int) {
    RELOAD.store(true, Ordering::SeqCst);
}

/// Start `bingfa ARGS` as service `name` with `stdin`, relay its ready lines (one per
/// `services` entry, in that order) and return the announced addresses. A service started
/// with `--metrics` announces its private endpoint first: kept in `endpoints`, not relayed.
pub(super) fn start(
    services: &mut Vec<Service>,
    endpoints: &mut Vec<SocketAddr>,
    name: &'static str,
    stdin: Stdio,
    args: &[String],
    expect: &[&str],
    binds: &[SocketAddr],
) -> anyhow::Result<Vec<SocketAddr>> {
    let exe = std::env::current_exe().context("finding this binary")?;
    let mut cmd = Command::new(exe);
    cmd.args(args).stdin(stdin).stdout(Stdio::piped());
    // SAFETY: prctl is async-signal-safe. The service dies with the supervisor.
    unsafe {
        cmd.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM, 0, 0, 0);
            Ok(())
        });
    }
    let mut child = cmd
        .spawn()
        .with_context(|| format!("starting the {name} service"))?;
    let out = child.stdout.take().expect("piped");
    services.push(Service { name, child });
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            // Relay everything the service prints (but its private metrics endpoint: the one
            // `metrics` line is the supervisor's); the supervisor parses the ready lines.
            if !line.starts_with("metrics listening on ") {
                println!("{line}");
            }
            let _ = std::io::stdout().flush();
            let _ = tx.send(line);
        }
    });
    let where_ = binds
        .iter()
        .map(|b| b.to_string())
        .collect::<Vec<_>>()
        .join(" and ");
    let mut addrs = Vec::new();
    let end = Instant::now() + START;
    let metrics = args.iter().any(|a| a == "--metrics");
    let mut endpoint: Option<SocketAddr> = None;
    while addrs.len() < expect.len() || (metrics && endpoint.is_none()) {
        let svc = services.last_mut().expect("pushed above");
        if let Ok(Some(st)) = svc.child.try_wait() {
            bail!("the {name} service could not start on {where_} ({st}); see its error above");
        }
        if Instant::now() > end {
            bail!("the {name} service did not become ready on {where_} within {START:?}");
        }
        if STOP.load(Ordering::SeqCst) {
            bail!("interrupted while starting the {name} service");
        }
        let Ok(line) = rx.recv_timeout(Duration::from_millis(50)) else {
            continue;
        };
        if let Some(addr) = line.strip_prefix("metrics listening on ") {
            endpoint = Some(addr.trim().parse().context("a ready line's address")?);
            continue;
        }
        let Some(want) = expect.get(addrs.len()) else {
            continue;
        };
        if let Some(addr) = line.strip_prefix(&format!("{want} listening on ")) {
            addrs.push(addr.trim().parse().context("a ready line's address")?);
        }
    }
    endpoints.extend(endpoint);
    Ok(addrs)
}

/// Wait until asked to stop (Ok) or until a service ends by itself (Err naming it). SIGHUP
/// is passed on to every service when they serve TLS (each reloads its certificate files);
/// without TLS they have no SIGHUP handler, so it is only logged.
pub(super) fn supervise(
    services: &mut [Service],
    tls: bool,
    reopen: &[&str],
) -> anyhow::Result<()> {
    loop {
        if STOP.load(Ordering::SeqCst) {
            return Ok(());
        }
        if REOPEN.swap(false, Ordering::SeqCst) {
            for s in services.iter().filter(|s| reopen.contains(&s.name)) {
                // SAFETY: signalling our own child, which has not been reaped.
                unsafe { libc::kill(s.child.id() as i32, libc::SIGUSR1) };
            }
        }
        if RELOAD.swap(false, Ordering::SeqCst) {
            if !tls {
                tracing::info!("SIGHUP: no certificate to reload (serving without TLS)");
            }
            for s in services.iter().filter(|_| tls) {
                // SAFETY: signalling our own child, which has not been reaped.
                unsafe { libc::kill(s.child.id() as i32, libc::SIGHUP) };
            }
        }
        for s in services.iter_mut() {
            if let Ok(Some(st)) = s.child.try_wait() {
                bail!("the {} service stopped by itself ({st})", s.name);
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// SIGTERM every service still running, wait up to the grace period, SIGKILL what is left.
/// True if every service exited 0 (or had already been reported).
pub(super) fn stop(services: &mut [Service]) -> bool {
    for s in services.iter_mut() {
        if matches!(s.child.try_wait(), Ok(None)) {
            // SAFETY: signalling our own child, which has not been reaped.
            unsafe { libc::kill(s.child.id() as i32, libc::SIGTERM) };
        }
    }
    let end = Instant::now() + GRACE;
    let mut clean = true;
    for s in services.iter_mut() {
        let st: Option<ExitStatus> = loop {
            match s.child.try_wait() {
                Ok(Some(st)) => break Some(st),
                Ok(None) if Instant::now() < end => std::thread::sleep(Duration::from_millis(20)),
                _ => break None,
            }
        };
        match st {
            Some(st) if st.success() => {}
            Some(st) => {
                tracing::warn!("the {} service ended with {st}", s.name);
                clean = false;
            }
            None => {
                tracing::warn!(
                    "the {} service did not stop within {GRACE:?}; killed",
                    s.name
                );
                let _ = s.child.kill();
                let _ = s.child.wait();
                clean = false;
            }
        }
    }
    clean
}
