//! The Hub: publish/subscribe between sessions, the way chat rooms broadcast.
//!
//! Inside one process (thread, threadpool, select, poll, epoll, async, iterative) it is an
//! in-memory topic table. Across processes (fork, prefork) every worker's hub holds a *link* to
//! the relay in the parent (`relay.rs`): `publish` sends the message up the link only, and the
//! relay sends it down every link, the publisher's included, in the order it received them. So
//! every process delivers the same sequence, and a session's messages reach every subscriber in
//! the order they were published, wherever the subscribers live.
//!
//! # Bounds and the overflow policy
//! Each subscriber (one per connection that subscribed) has a queue of at most
//! [`Limits::hub_queue_bytes`](crate::Limits::hub_queue_bytes). Its connection takes messages
//! from it while less than [`Limits::high_water`](crate::Limits::high_water) bytes wait to be
//! written, so a reader that keeps up never has more than that plus a loop turn's worth queued.
//! Publishing never blocks and never waits for a subscriber: when a queue would pass its bound,
//! that subscriber is marked *overflowed* and its connection is closed by its driver (a receiver
//! too slow to keep up is disconnected; the others carry on, in order). Drivers give each
//! connection a bounded share of a loop turn, so a burst from one publisher is at most a turn's
//! worth of input (64 KiB) per subscriber before the subscribers get to run. Across processes
//! the relay holds publishers back instead while a worker is far behind on its link (its
//! publication waits in [`Hub::try_publish`], reading its own link meanwhile), and cuts off
//! only a worker that stopped reading (see `relay.rs` and `link.rs`).
//!
//! # A lost link
//! A worker whose link to the relay is gone (the relay closed it because the worker stopped
//! reading, or a read or write failed) can no longer reach the other processes: its members
//! would go on talking among themselves while the rest of the room never hears them, a split
//! nobody would notice. So the worker's loop, on finding the link gone, logs an error and shuts
//! that worker down ([`Hub::link_lost`], called by `model/reactor/`): its connections get
//! `on_shutdown` and close, and under `prefork` the parent starts a fresh worker with a fresh
//! link in its place (under `fork` the child only ever had one connection). Until then the hub
//! delivers within the process only, so the closing sessions' farewells reach nobody outside.
//!
//! # An uplink
//! With an [`Uplink`](crate::Uplink) (a Redis backplane; see `uplink.rs`) the in-process hub
//! forwards publications to it and delivers only what comes back down, in the uplink's order;
//! while the uplink refuses (down, or its bounded queue full), it delivers locally. Under
//! `fork`/`prefork` the relay does the forwarding and workers' hubs are unchanged.

mod frame;
pub(crate) mod link;
pub(crate) mod relay;
pub(crate) mod uplink;

use crate::session::{ConnId, Message};
use crate::wake::Waker;
use std::collections::{HashMap, VecDeque};
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// Inbox entries an empty inbox keeps room for; a bigger one is freed.
const KEEP_QUEUE: usize = 64;

/// The biggest message (topic + body) the hub carries: what fits in a relay frame.
pub const MAX_MESSAGE: usize = frame::MAX_FRAME - 10;

/// Why [`Hub::try_publish`] or [`Injector::publish`] refused a message.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PublishError {
    /// Topic and body together are over [`MAX_MESSAGE`] bytes (or the topic alone over 65,535);
    /// the size in bytes.
    #[error("a hub message of {0} bytes is over the {MAX_MESSAGE}-byte limit")]
    TooLarge(usize),
}

/// Publishes into a server's hub from outside any session (a console, an admin tool), into
/// the same one order as the sessions' messages, under every model. Get one from
/// [`Server::injector`](crate::Server::injector) before running the server; it can be moved to
/// another thread. Its messages have `from == 0`, which is never a connection's id.
///
/// In-process models: it holds the server's hub. `fork`/`prefork`: it holds one end of a
/// publish-only link whose other end the parent's relay reads like a worker's link, so the
/// announcement takes its place in the relay's order. Publishing blocks only until the relay
/// (or, in-process, the hub lock) takes it.
#[derive(Clone)]
pub struct Injector {
    pub(crate) hub: Hub,
}

impl Injector {
    /// Publish `body` on `topic`, as [`Hub::try_publish`] does.
    pub fn publish(&self, topic: &str, body: &[u8]) -> Result<(), PublishError> {
        self.hub.try_publish(Message {
            topic: topic.into(),
            from: 0,
            body: body.into(),
        })
    }
}

/// A handle to the hub; cheap to clone, shared by every connection of a process.
#[derive(Clone, Default)]
pub struct Hub {
    inner: Arc<Inner>,
}

#[derive(Default)]
pub(crate) struct Inner {
    topics: Mutex<HashMap<Arc<str>, Vec<Arc<Subscriber>>>>,
    /// The worker's end of its relay link (fork/prefork), used for publishing. Kept open
    /// even once lost: the worker's loop reads the same descriptor until it sees the loss, and
    /// closing it here could let another socket take its number under the loop's feet.
    link: Mutex<Option<UnixStream>>,
    /// The link is gone: publish within the process only.
    lost: AtomicBool,
    /// Bytes written up the link since the loop last read it: they all come back down, so the
    /// loop reads up to that much more next time (see `LinkReader::read`).
    published: AtomicUsize,
    /// What was read from the link and not yet delivered: a publication that waits on the
    /// relay reads ahead into it (see `link.rs`), the loop delivers from it.
    backlog: link::Backlog,
    /// In-process models with a backplane: publications go up, the order comes back down.
    uplink: std::sync::OnceLock<uplink::SharedUplink>,
}

/// One connection's inbox.
pub(crate) struct Subscriber {
    id: ConnId,
    cap: usize,
    state: Mutex<SubState>,
    notified: AtomicBool,
    waker: Waker,
}

#[derive(Default)]
struct SubState {
    /// One pointer per message: every subscriber shares the publisher's one `Message`, so a
    /// broadcast to N inboxes costs N pointers and N reference counts on one cache line (not
    /// two `Arc`s per entry: the topic's and the body's).
    queue: VecDeque<Arc<Message>>,
    bytes: usize,
    overflowed: bool,
}

impl Subscriber {
    pub(crate) fn new(id: ConnId, cap: usize, waker: Waker) -> Arc<Self> {
        Arc::new(Subscriber {
            id,
            cap: cap.max(1),
            state: Mutex::default(),
            notified: AtomicBool::new(false),
            waker,
        })
    }

    fn push(&self, msg: &Arc<Message>) {
        {
            let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
            if st.overflowed {
                return;
            }
            if st.bytes + msg.body.len() > self.cap {
                st.overflowed = true;
                st.queue.clear();
                st.bytes = 0;
                drop(st);
                // Always wake for the overflow: a connection above high water takes nothing,
                // so the batch flag below may still be set from a wake-up it never answered.
                self.notified.store(true, Ordering::Release);
                (self.waker)();
                return;
            } else {
                st.bytes += msg.body.len();
                st.queue.push_back(msg.clone());
            }
        }
        // Wake the owning loop once per batch, not once per message. Read before swapping:
        // while a batch is pending (the usual case in a burst) that is a plain load, not a
        // locked write to a line the owning thread also writes.
        if !self.notified.load(Ordering::Acquire) && !self.notified.swap(true, Ordering::AcqRel) {
            (self.waker)();
        }
    }

    pub(crate) fn overflowed(&self) -> bool {
        self.state
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .overflowed
    }

    /// The next message wakes the owner again (see `Conn::rearm_mail`).
    pub(crate) fn rearm(&self) {
        self.notified.store(false, Ordering::Release);
    }

    /// Messages (or an overflow) wait to be taken. A loop adopting a connection checks this:
    /// a wake-up sent while the connection was moving between threads went to its old owner.
    pub(crate) fn pending(&self) -> bool {
        let st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        st.overflowed || !st.queue.is_empty()
    }

    /// Take up to `max` messages; `Err(())` once the subscriber has overflowed.
    pub(crate) fn take(&self, max: usize, out: &mut Vec<Arc<Message>>) -> Result<(), ()> {
        self.notified.store(false, Ordering::Release);
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if st.overflowed {
            return Err(());
        }
        let n = max.min(st.queue.len());
        let taken: usize = st.queue.iter().take(n).map(|m| m.body.len()).sum();
        st.bytes -= taken;
        out.extend(st.queue.drain(..n));
        if st.queue.is_empty() && st.queue.capacity() > KEEP_QUEUE {
            // A burst (a join storm: every member's `joined` to every member) is over: an idle
            // member keeps no room for thousands of entries.
            st.queue = VecDeque::new();
        }
        Ok(())
    }
}

impl Hub {
    /// An in-memory hub for one process.
    pub fn new() -> Self {
        Hub::default()
    }

    /// A hub whose publications go through the relay on the other end of `link`.
    pub(crate) fn with_link(link: UnixStream) -> Self {
        let hub = Hub::new();
        *hub.inner.link.lock().unwrap_or_else(|e| e.into_inner()) = Some(link);
        hub
    }

    /// Publish to every subscriber of `msg.topic`, in every process of the server. A message
    /// too big for a relay frame is dropped (and logged); [`Hub::try_publish`] says so instead.
    pub fn publish(&self, msg: Message) {
        if let Err(e) = self.try_publish(msg) {
            tracing::warn!("hub: {e}; message dropped");
        }
    }

    /// [`Hub::publish`], refusing a message over [`MAX_MESSAGE`] bytes (topic and body) rather
    /// than sending a relay frame the relay would reject (which would cut the link).
    pub fn try_publish(&self, msg: Message) -> Result<(), PublishError> {
        let size = msg.topic.len() + msg.body.len();
        if size > MAX_MESSAGE || msg.topic.len() > u16::MAX as usize {
            return Err(PublishError::TooLarge(size));
        }
        let mut link = self.inner.link.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(stream) = link.as_mut() {
            if !self.inner.lost.load(Ordering::Acquire) {
                // Blocking write: this is the backpressure. The relay never blocks on anyone,
                // but while some worker is far behind on its link it stops reading the others
                // (see `relay.rs`), so a publisher waits here, its loop takes no more client
                // input, and the room goes at the pace of its slowest worker.
                let frame = frame::encode(&msg);
                use std::os::fd::AsRawFd;
                match link::write_up(stream.as_raw_fd(), &frame, &self.inner.backlog) {
                    Ok(()) => {
                        self.inner
                            .published
                            .fetch_add(frame.len(), Ordering::Relaxed);
                        return Ok(());
                    }
                    Err(e) => {
                        // The loop finds the same loss on its read side and stops the worker.
                        self.inner.lost.store(true, Ordering::Release);
                        tracing::error!("hub: publishing to the relay failed ({e}); this worker is cut off from the others");
                    }
                }
            }
        }
        drop(link);
        if let Some(up) = self.inner.uplink.get() {
            if up.send(&msg) {
                return Ok(()); // delivered when it comes back down, in the uplink's order
            }
        }
        self.deliver_local(&msg);
        Ok(())
    }

    /// A handle that does not keep the hub alive: an uplink's downlink holds one, since the hub
    /// holds the uplink (a strong handle both ways would be a cycle, and the uplink would never
    /// be dropped, nor see the server stop).
    pub(crate) fn downgrade(&self) -> std::sync::Weak<Inner> {
        Arc::downgrade(&self.inner)
    }

    pub(crate) fn upgrade(weak: &std::sync::Weak<Inner>) -> Option<Hub> {
        weak.upgrade().map(|inner| Hub { inner })
    }

    /// Forward publications to `up` from now on (in-process models; set once).
    pub(crate) fn set_uplink(&self, up: uplink::SharedUplink) {
        let _ = self.inner.uplink.set(up);
    }

    /// The link to the relay is gone: from now on deliver within this process only. Returns
    /// how many of this process's connections are subscribed to something (they are the
    /// members cut off from the rest of the room).
    pub(crate) fn link_lost(&self) -> usize {
        self.inner.lost.store(true, Ordering::Release);
        let topics = self.inner.topics.lock().unwrap_or_else(|e| e.into_inner());
        let ids: std::collections::HashSet<ConnId> =
            topics.values().flatten().map(|s| s.id).collect();
        ids.len()
    }

    /// Hand a message to this process's subscribers.
    pub(crate) fn deliver_local(&self, msg: &Message) {
        let topics = self.inner.topics.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(subs) = topics.get(&msg.topic) {
            let msg = Arc::new(msg.clone());
            let msg = &msg;
            for s in subs {
                s.push(msg);
            }
        }
    }

    pub(crate) fn subscribe(&self, topic: &Arc<str>, sub: &Arc<Subscriber>) {
        let mut topics = self.inner.topics.lock().unwrap_or_else(|e| e.into_inner());
        let subs = topics.entry(topic.clone()).or_default();
        if !subs.iter().any(|s| s.id == sub.id) {
            subs.push(sub.clone());
        }
    }

    pub(crate) fn unsubscribe(&self, topic: &str, sub: &Subscriber) {
        let mut topics = self.inner.topics.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(subs) = topics.get_mut(topic) {
            subs.retain(|s| s.id != sub.id);
            if subs.is_empty() {
                topics.remove(topic);
            }
        }
    }

    /// Local subscribers of `topic` (in this process).
    pub fn local_subscribers(&self, topic: &str) -> usize {
        let topics = self.inner.topics.lock().unwrap_or_else(|e| e.into_inner());
        topics.get(topic).map_or(0, Vec::len)
    }

    /// Bytes published up the link since the last call.
    pub(crate) fn take_published(&self) -> usize {
        self.inner.published.swap(0, Ordering::Relaxed)
    }

    /// The buffer the loop's [`LinkReader`](link::LinkReader) delivers from.
    pub(crate) fn backlog(&self) -> link::Backlog {
        self.inner.backlog.clone()
    }

    pub(crate) fn link_fd(&self) -> Option<std::os::fd::RawFd> {
        use std::os::fd::AsRawFd;
        self.inner
            .link
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .map(|s| s.as_raw_fd())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(from: u64, body: &[u8]) -> Message {
        Message {
            topic: Arc::from("t"),
            from,
            body: Arc::from(body),
        }
    }

    #[test]
    fn delivers_in_order_and_wakes_once_per_batch() {
        let hub = Hub::new();
        let wakes = Arc::new(AtomicUsize::new(0));
        let w = wakes.clone();
        let sub = Subscriber::new(
            7,
            1024,
            Arc::new(move || {
                w.fetch_add(1, Ordering::SeqCst);
            }),
        );
        hub.subscribe(&Arc::from("t"), &sub);
        for i in 0..10u8 {
            hub.publish(msg(1, &[i]));
        }
        assert_eq!(wakes.load(Ordering::SeqCst), 1);
        let mut out = Vec::new();
        sub.take(100, &mut out).unwrap();
        assert_eq!(
            out.iter().map(|m| m.body[0]).collect::<Vec<_>>(),
            (0..10).collect::<Vec<_>>()
        );
        hub.unsubscribe("t", &sub);
        assert_eq!(hub.local_subscribers("t"), 0);
    }

    #[test]
    fn a_full_inbox_overflows_only_its_subscriber() {
        let hub = Hub::new();
        let slow = Subscriber::new(1, 100, Arc::new(|| {}));
        let fast = Subscriber::new(2, 100, Arc::new(|| {}));
        hub.subscribe(&Arc::from("t"), &slow);
        hub.subscribe(&Arc::from("t"), &fast);
        let mut out = Vec::new();
        for _ in 0..20 {
            hub.publish(msg(3, &[0; 10]));
            fast.take(100, &mut out).unwrap();
        }
        assert_eq!(out.len(), 20);
        assert!(
            slow.take(100, &mut Vec::new()).is_err(),
            "the slow one overflowed"
        );
    }
}
