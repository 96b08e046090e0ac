//! Names across servers: the claim in Redis, and how a member's session reaches it.
//!
//! A session claims its name in the server's local [`Roster`] first (unique within the server,
//! across its processes), then asks the *name service* for the room-wide claim. The service
//! runs beside the uplink, in the one process that holds the server's Redis connections (the
//! parent under `fork`/`prefork`), so a server has one set of Redis connections however many
//! processes and members it has. Sessions reach it over an abstract Unix socket, made before
//! the server forks, one short request at a time (a claim blocks its member's loop for a
//! local round trip plus a Redis one; claims are rare next to lines).
//!
//! The same thread renews the server's heartbeat and reaps dead servers every [`TICK`].
//! While Redis is unreachable it answers "local": the local claim stands (the server keeps
//! serving its own members), and the heartbeat claims the name in Redis again once it is back.

use super::{scripts, wire};
use crate::roster::{Remote, RemoteNames, Roster};
use std::collections::HashSet;
use std::io::{BufRead, BufReader, Write};
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixListener, UnixStream};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long a server's heartbeat lives in Redis: a SIGKILLed server's members are reported
/// `left` between this and this plus [`TICK`] after it died.
pub const TTL: Duration = Duration::from_secs(3);
/// How often the heartbeat is renewed and dead servers are looked for.
pub const TICK: Duration = Duration::from_millis(500);
/// How long one Redis command may take before the link is considered down.
const IO_TIMEOUT: Duration = Duration::from_secs(1);

/// A session's way to the name service; cheap to clone, valid in every process of the server.
#[derive(Clone)]
pub struct Client {
    addr: Arc<[u8]>,
    /// The process that runs the service. When it is gone (a `fork`/`prefork` parent killed
    /// outright) its children still hold the listening socket, so a connect would succeed
    /// and the answer never come: ask nothing then, and let each claim stand locally at once
    /// instead of waiting out a timeout per member while the workers shut down.
    owner: libc::pid_t,
}

impl Client {
    fn ask(&self, req: &str) -> std::io::Result<String> {
        // SAFETY: signal 0 only checks that the process exists.
        if unsafe { libc::kill(self.owner, 0) } != 0
            && std::io::Error::last_os_error().raw_os_error() == Some(libc::ESRCH)
        {
            return Err(std::io::ErrorKind::NotConnected.into());
        }
        let addr = SocketAddr::from_abstract_name(&self.addr)?;
        let mut s = UnixStream::connect_addr(&addr)?;
        s.set_read_timeout(Some(IO_TIMEOUT * 3))?;
        s.write_all(req.as_bytes())?;
        let mut line = String::new();
        BufReader::new(s).read_line(&mut line)?;
        Ok(line)
    }
}

/// Redis cannot be reached (or the service is gone): [`Remote::Local`], and `who` is `None`.
impl RemoteNames for Client {
    fn claim(&self, id: u64, name: &str) -> Remote {
        match self.ask(&format!("C {id} {name}\n")) {
            Ok(l) if l.starts_with('T') => Remote::Taken,
            Ok(l) if l.starts_with('O') => Remote::Online(parse_online(&l[1..])),
            _ => Remote::Local,
        }
    }

    /// Waits for the release, so the member's `left`, published after it, never reaches a
    /// server that would still find the name taken. If it fails, the heartbeat drops the
    /// record (it is no longer in the local roster).
    fn release(&self, id: u64, name: &str) {
        let _ = self.ask(&format!("R {id} {name}\n"));
    }

    /// The whole room, or `None` while Redis cannot be reached.
    fn who(&self) -> Option<Vec<(u64, String)>> {
        match self.ask("W\n") {
            Ok(l) if l.starts_with('O') => Some(parse_online(&l[1..])),
            _ => None,
        }
    }
}

fn parse_online(s: &str) -> Vec<(u64, String)> {
    s.trim_end_matches('\n')
        .split('\t')
        .filter_map(|m| {
            let (id, name) = m.trim_start().split_once(' ')?;
            Some((id.parse().ok()?, name.to_string()))
        })
        .collect()
}

/// The service's end: the listening socket until [`Service::start`].
pub struct Service {
    listener: UnixListener,
    client: Client,
}

impl Service {
    /// Bind the service's abstract socket (before the server forks, so every process reaches it).
    pub fn bind() -> std::io::Result<Service> {
        let name = format!("bingfa-chat-names-{}", wire::new_sid()).into_bytes();
        let listener = UnixListener::bind_addr(&SocketAddr::from_abstract_name(&name)?)?;
        Ok(Service {
            listener,
            client: Client {
                addr: Arc::from(name),
                owner: std::process::id() as libc::pid_t,
            },
        })
    }

    /// The roster's way to this service (its [`RemoteNames`]).
    pub fn client(&self) -> Client {
        self.client.clone()
    }

    /// Serve claims, and keep the heartbeat, on threads of their own.
    pub fn start(self, ctx: Names) -> std::io::Result<()> {
        let (tx, rx) = mpsc::channel::<(String, UnixStream)>();
        let listener = self.listener;
        std::thread::Builder::new()
            .name("names-accept".into())
            .spawn(move || {
                for s in listener.incoming().flatten() {
                    let _ = s.set_read_timeout(Some(IO_TIMEOUT));
                    let mut line = String::new();
                    if BufReader::new(&s).read_line(&mut line).is_ok()
                        && tx.send((line, s)).is_err()
                    {
                        return;
                    }
                }
            })?;
        std::thread::Builder::new()
            .name("names".into())
            .spawn(move || ctx.run(rx))?;
        Ok(())
    }
}

/// What the service thread works with.
pub struct Names {
    /// The Redis the names live in.
    pub client: redis::Client,
    /// The room's key prefix (`bingfa:chat:ROOM`).
    pub prefix: String,
    /// This server's id among the room's servers.
    pub sid: String,
    /// The room's pub/sub channel (reaping publishes `left` for a dead server's members there).
    pub channel: String,
    /// This server's members (whom the heartbeat keeps claimed).
    pub roster: Roster,
    conn: Option<redis::Connection>,
    retry_at: Instant,
    /// Members whose room-wide claim was answered (won, or stood locally while Redis was
    /// down). Only they are claimed again by the heartbeat: a member between its local claim
    /// and its room-wide one must not get a record early, or it and a member claiming just
    /// then would each find the other in its snapshot and neither would see `joined`.
    confirmed: HashSet<u64>,
    /// Set (under its lock) once the server retired from the room: no heartbeat after that,
    /// or it would put back what the retirement removed.
    retired: Arc<std::sync::Mutex<bool>>,
}

impl Names {
    /// The service's state for the room at `prefix` on `client`, as server `sid`.
    pub fn new(
        client: redis::Client,
        prefix: String,
        sid: String,
        channel: String,
        roster: Roster,
    ) -> Self {
        Names {
            client,
            prefix,
            sid,
            channel,
            roster,
            conn: None,
            retry_at: Instant::now(),
            confirmed: HashSet::new(),
            retired: Arc::default(),
        }
    }

    /// The flag the server's retirement sets; hold its lock while retiring.
    pub fn retired(&self) -> Arc<std::sync::Mutex<bool>> {
        self.retired.clone()
    }

    fn run(mut self, rx: mpsc::Receiver<(String, UnixStream)>) {
        let mut next_tick = Instant::now();
        loop {
            if Instant::now() >= next_tick {
                self.tick();
                next_tick = Instant::now() + TICK;
            }
            match rx.recv_timeout(next_tick.saturating_duration_since(Instant::now())) {
                Ok((req, mut s)) => {
                    if let Some(reply) = self.handle(&req) {
                        let _ = s.write_all(reply.as_bytes());
                    }
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => return,
            }
        }
    }

    /// Run `f` on the Redis connection, (re)connecting at most every [`TICK`] while it is down.
    fn redis<T>(
        &mut self,
        f: impl FnOnce(&mut redis::Connection, &Self) -> redis::RedisResult<T>,
    ) -> Option<T> {
        if self.conn.is_none() {
            if Instant::now() < self.retry_at {
                return None;
            }
            self.retry_at = Instant::now() + TICK;
            let c = self.client.get_connection_with_timeout(IO_TIMEOUT).ok()?;
            c.set_read_timeout(Some(IO_TIMEOUT)).ok()?;
            c.set_write_timeout(Some(IO_TIMEOUT)).ok()?;
            self.conn = Some(c);
        }
        let mut conn = self.conn.take()?;
        match f(&mut conn, self) {
            Ok(v) => {
                self.conn = Some(conn);
                Some(v)
            }
            Err(e) => {
                tracing::warn!("backplane names: {e}; claims stay local until Redis answers again");
                None
            }
        }
    }

    fn handle(&mut self, req: &str) -> Option<String> {
        let req = req.trim_end_matches('\n');
        let (kind, rest) = req.split_at(req.len().min(1));
        let rest = rest.trim_start();
        match kind {
            "C" => {
                let (id, name) = rest.split_once(' ')?;
                let got: Option<Option<Vec<String>>> = self.redis(|c, me| {
                    redis::Script::new(scripts::CLAIM)
                        .arg(&me.prefix)
                        .arg(crate::name::key(name))
                        .arg(&me.sid)
                        .arg(id)
                        .arg(name)
                        .invoke(c)
                });
                let won = !matches!(got, Some(None));
                if let (true, Ok(id)) = (won, id.parse()) {
                    self.confirmed.insert(id);
                }
                Some(match got {
                    None => "L\n".into(),
                    Some(None) => "T\n".into(),
                    Some(Some(records)) => self.online(records),
                })
            }
            "R" => {
                let (id, name) = rest.split_once(' ')?;
                if let Ok(id) = id.parse() {
                    self.confirmed.remove(&id);
                }
                self.redis(|c, me| {
                    redis::Script::new(scripts::RELEASE)
                        .arg(&me.prefix)
                        .arg(crate::name::key(name))
                        .arg(&me.sid)
                        .arg(id)
                        .invoke::<i64>(c)
                });
                Some("K\n".into())
            }
            "W" => {
                let got: Option<Vec<String>> = self.redis(|c, me| {
                    redis::cmd("HVALS")
                        .arg(format!("{}:members", me.prefix))
                        .query(c)
                });
                Some(got.map_or_else(|| "L\n".into(), |r| self.online(r)))
            }
            _ => None,
        }
    }

    /// `O ID NAME\tID NAME…` in join order, ids in this server's view; records with names
    /// the room would refuse are left out.
    fn online(&self, records: Vec<String>) -> String {
        let mut rows: Vec<(u64, u64, String)> = records
            .iter()
            .filter_map(|r| {
                let mut it = r.splitn(4, ' ');
                let seq = it.next()?.parse().ok()?;
                let (sid, id, name) = (it.next()?, it.next()?.parse().ok()?, it.next()?);
                // Anyone who reaches the Redis can write here: a record whose name breaks
                // the room's rule is not shown (`wire::admissible` says why).
                if !crate::name::is_valid(name) {
                    return None;
                }
                Some((seq, wire::gid(&self.sid, sid, id), name.to_string()))
            })
            .collect();
        rows.sort();
        let list: Vec<String> = rows
            .into_iter()
            .map(|(_, id, n)| format!("{id} {n}"))
            .collect();
        format!("O {}\n", list.join("\t"))
    }

    /// Renew the heartbeat (claiming again what a restarted Redis forgot), then reap servers
    /// whose heartbeat expired.
    fn tick(&mut self) {
        let retired = self.retired.clone();
        let retired = retired.lock().unwrap_or_else(|e| e.into_inner());
        if *retired {
            return;
        }
        let mut members = self.roster.local_members();
        members.retain(|(id, _)| self.confirmed.contains(id));
        let ids: HashSet<u64> = members.iter().map(|(id, _)| *id).collect();
        self.confirmed.retain(|id| ids.contains(id));
        let ttl = TTL.as_millis() as u64;
        self.redis(|c, me| {
            let mut s = redis::Script::new(scripts::HEARTBEAT);
            let mut inv = s.prepare_invoke();
            inv.arg(&me.prefix).arg(&me.sid).arg(ttl);
            for (id, name) in &members {
                inv.arg(crate::name::key(name)).arg(format!("{id} {name}"));
            }
            let r = inv.invoke::<i64>(c);
            s = redis::Script::new(scripts::REAP);
            r?;
            let n: i64 = s
                .arg(&me.prefix)
                .arg(&me.sid)
                .arg(&me.channel)
                .arg(crate::event::TOPIC)
                .invoke(c)?;
            if n > 0 {
                tracing::info!(
                    "backplane: a server's heartbeat expired; {n} of its members reported left"
                );
            }
            Ok(())
        });
    }
}
