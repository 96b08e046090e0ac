//! The room's messages through Redis pub/sub: one connection publishes, one subscribes, each
//! on a thread of its own, and the subscription is the room's one order.
//!
//! State: the link is *up* while the subscription stands. Only then does [`Link::send`] take
//! messages (into a bounded queue the publisher drains in pipelined batches); otherwise the hub
//! or relay delivers them within this server. Going down is said once to this server's members
//! (`* room link lost, messages stay local`), coming back once (`* room link restored`); the
//! subscriber reconnects with exponential backoff (100 ms to 2 s).
//!
//! A slow Redis link is bounded: past [`MAX_QUEUE`] bytes waiting to be published the link is
//! treated as lost (its connection dropped, the members told, messages local) and reconnected,
//! rather than growing without end or blocking a loop.

use super::wire;
use crate::event::{Event, TOPIC};
use bingfa_net::{Downlink, Message};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::time::Duration;

/// The notice members see when the Redis link is lost (messages stay on this server).
pub const LOST: &str = "room link lost, messages stay local";
/// The notice members see when the Redis link is back.
pub const RESTORED: &str = "room link restored";
/// Bytes waiting to be published before the Redis link counts as lost.
pub const MAX_QUEUE: usize = 8 * 1024 * 1024;
const IO_TIMEOUT: Duration = Duration::from_secs(1);

#[derive(Default)]
struct Queue {
    msgs: VecDeque<Message>,
    bytes: usize,
}

pub(super) struct Link {
    client: redis::Client,
    sid: String,
    channel: String,
    up: AtomicBool,
    /// The members were told the link is lost and not yet that it is back.
    told_lost: AtomicBool,
    /// `send` found the queue full: the publisher drops the link.
    overflowed: AtomicBool,
    /// Counts losses: the publisher's connection from before a loss is stale (a restarted
    /// Redis closed it) and is replaced before the next batch, not found dead by it.
    losses: AtomicU64,
    /// The publisher holds a batch it has not finished publishing.
    publishing: AtomicBool,
    /// Serialises going down and coming back (each said once, in order).
    turn: Mutex<()>,
    queue: Mutex<Queue>,
    ready: Condvar,
    down: OnceLock<Downlink>,
}

impl Link {
    pub(super) fn new(client: redis::Client, sid: String, channel: String) -> Self {
        Link {
            client,
            sid,
            channel,
            up: AtomicBool::new(false),
            told_lost: AtomicBool::new(false),
            overflowed: AtomicBool::new(false),
            losses: AtomicU64::new(0),
            publishing: AtomicBool::new(false),
            turn: Mutex::new(()),
            queue: Mutex::default(),
            ready: Condvar::new(),
            down: OnceLock::new(),
        }
    }

    /// Wait (at most `limit`) until what was queued has been published: a server that stops
    /// still gets its members' last words (`* NAME left`) out to the other servers.
    pub(super) fn flush(&self, limit: Duration) {
        let deadline = std::time::Instant::now() + limit;
        while std::time::Instant::now() < deadline && self.up.load(Ordering::Acquire) {
            let idle = {
                let q = self.queue.lock().unwrap_or_else(|e| e.into_inner());
                q.msgs.is_empty() && !self.publishing.load(Ordering::Acquire)
            };
            if idle {
                return;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// The uplink's `send`: never blocks beyond the queue's lock.
    pub(super) fn send(&self, msg: &Message) -> bool {
        if !self.up.load(Ordering::Acquire) || self.overflowed.load(Ordering::Acquire) {
            return false;
        }
        let mut q = self.queue.lock().unwrap_or_else(|e| e.into_inner());
        if q.bytes + msg.body.len() > MAX_QUEUE {
            self.overflowed.store(true, Ordering::Release);
            self.ready.notify_one();
            return false;
        }
        q.bytes += msg.body.len();
        q.msgs.push_back(msg.clone());
        self.ready.notify_one();
        true
    }

    pub(super) fn start(self: &Arc<Self>, down: Downlink) -> std::io::Result<()> {
        let _ = self.down.set(down);
        let me = self.clone();
        std::thread::Builder::new()
            .name("backplane-sub".into())
            .spawn(move || me.subscriber())?;
        let me = self.clone();
        std::thread::Builder::new()
            .name("backplane-pub".into())
            .spawn(move || me.publisher())?;
        Ok(())
    }

    fn deliver(&self, msg: Message) {
        if let Some(d) = self.down.get() {
            d.deliver(msg);
        }
    }

    fn notice(&self, text: &str) {
        self.deliver(Message {
            topic: Arc::from(TOPIC),
            from: 0,
            body: Arc::from(Event::Notice(text.into()).encode()),
        });
    }

    /// Down, and said once. The notice goes down before `send` starts refusing, so in-process
    /// a message delivered locally because of the loss never comes before it.
    fn lost(&self, why: &dyn std::fmt::Display) {
        let _turn = self.turn.lock().unwrap_or_else(|e| e.into_inner());
        if self.up.load(Ordering::Acquire) {
            tracing::warn!("backplane: the Redis link is lost ({why}); messages stay local");
            self.told_lost.store(true, Ordering::Release);
            self.notice(LOST);
            self.losses.fetch_add(1, Ordering::AcqRel);
            self.up.store(false, Ordering::Release);
        }
    }

    /// Only the subscriber calls this: the notice goes first, then messages go up again.
    fn restored(&self) {
        let _turn = self.turn.lock().unwrap_or_else(|e| e.into_inner());
        if !self.up.load(Ordering::Acquire) {
            if self.told_lost.swap(false, Ordering::AcqRel) {
                tracing::info!("backplane: the Redis link is restored");
                self.notice(RESTORED);
            }
            self.up.store(true, Ordering::Release);
        }
    }

    fn connect(&self) -> redis::RedisResult<redis::Connection> {
        let c = self.client.get_connection_with_timeout(IO_TIMEOUT)?;
        c.set_write_timeout(Some(IO_TIMEOUT))?;
        c.set_read_timeout(Some(IO_TIMEOUT))?;
        Ok(c)
    }

    fn subscriber(self: Arc<Self>) {
        let mut backoff = Duration::from_millis(100);
        let mut ever_up = false;
        loop {
            match self.subscribed(&mut ever_up) {
                Ok(()) => backoff = Duration::from_millis(100),
                Err(e) => {
                    if !ever_up && backoff == Duration::from_millis(100) {
                        // Members who join meanwhile are served locally, untold (nothing
                        // was lost yet); the log says it.
                        tracing::warn!("backplane: Redis does not answer ({e}); serving this server's members only until it does");
                    }
                    self.lost(&e);
                    std::thread::sleep(backoff);
                    backoff = (backoff * 2).min(Duration::from_secs(2));
                }
            }
        }
    }

    /// One subscription, until it fails (`Err`) or the link was dropped elsewhere (`Ok`).
    fn subscribed(&self, ever_up: &mut bool) -> redis::RedisResult<()> {
        let mut conn = self.connect()?;
        let mut ps = conn.as_pubsub();
        ps.subscribe(&self.channel)?;
        // Short reads, so a link dropped by the publisher is noticed here too.
        ps.set_read_timeout(Some(Duration::from_millis(250)))?;
        self.restored();
        *ever_up = true;
        loop {
            match ps.get_message() {
                Ok(m) => match wire::decode(&self.sid, m.get_payload_bytes()) {
                    Some(msg) if wire::admissible(&msg) => self.deliver(msg),
                    Some(msg) => tracing::warn!(
                        body = %String::from_utf8_lossy(&msg.body).escape_debug(),
                        "backplane: a message from Redis breaks the room's rules; dropped"
                    ),
                    None => tracing::warn!("backplane: an unreadable message from Redis; dropped"),
                },
                Err(e) if e.is_timeout() => {
                    if !self.up.load(Ordering::Acquire) {
                        return Ok(());
                    }
                }
                Err(e) => return Err(e),
            }
        }
    }

    fn publisher(self: Arc<Self>) {
        // The connection, and the loss count when it was made.
        let mut conn: Option<(redis::Connection, u64)> = None;
        loop {
            let batch: Vec<Message> = {
                let mut q = self.queue.lock().unwrap_or_else(|e| e.into_inner());
                while q.msgs.is_empty() && !self.overflowed.load(Ordering::Acquire) {
                    q = self
                        .ready
                        .wait_timeout(q, Duration::from_millis(500))
                        .unwrap_or_else(|e| e.into_inner())
                        .0;
                }
                q.bytes = 0;
                self.publishing.store(!q.msgs.is_empty(), Ordering::Release);
                q.msgs.drain(..).collect()
            };
            if self.overflowed.load(Ordering::Acquire) {
                conn = None;
                self.lost(&format_args!("over {MAX_QUEUE} bytes wait to be published"));
                self.overflowed.store(false, Ordering::Release);
            }
            if batch.is_empty() {
                continue;
            }
            if conn.as_ref().map(|c| c.1) != Some(self.losses.load(Ordering::Acquire)) {
                conn = None;
            }
            let r = (|| {
                if conn.is_none() {
                    let n = self.losses.load(Ordering::Acquire);
                    conn = Some((self.connect()?, n));
                }
                let mut pipe = redis::pipe();
                for m in &batch {
                    pipe.cmd("PUBLISH")
                        .arg(&self.channel)
                        .arg(wire::encode(&self.sid, m))
                        .ignore();
                }
                pipe.query::<()>(&mut conn.as_mut().expect("connected above").0)
            })();
            if let Err(e) = r {
                conn = None;
                self.lost(&e);
                // They may not have reached Redis: this server's members still get them.
                for m in batch {
                    self.deliver(m);
                }
            }
            self.publishing.store(false, Ordering::Release);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(len: usize) -> Message {
        Message {
            topic: Arc::from(TOPIC),
            from: 1,
            body: Arc::from(vec![b'x'; len]),
        }
    }

    #[test]
    fn refuses_while_down_and_past_its_bound() {
        let client = redis::Client::open("redis://127.0.0.1:1").unwrap();
        let link = Link::new(client, "00aa".into(), "c".into());
        assert!(!link.send(&msg(10)), "down: the hub delivers locally");
        link.up.store(true, Ordering::Release);
        assert!(link.send(&msg(MAX_QUEUE / 2)));
        assert!(link.send(&msg(MAX_QUEUE / 2)));
        assert!(!link.send(&msg(1)), "a slow Redis link is bounded");
        assert!(link.overflowed.load(Ordering::Acquire));
        assert!(
            !link.send(&msg(1)),
            "and refuses until the publisher drops it"
        );
    }
}
