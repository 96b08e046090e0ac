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
//! worth of input (64 KiB) per subscriber before the subscribers get to run. The relay applies
//! the same rule per worker link (see `relay.rs`).

use crate::relay;
use crate::session::{ConnId, Message};
use std::collections::{HashMap, VecDeque};
use std::io::Write;
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

/// A handle to the hub; cheap to clone, shared by every connection of a process.
#[derive(Clone, Default)]
pub struct Hub {
    inner: Arc<Inner>,
}

#[derive(Default)]
struct Inner {
    topics: Mutex<HashMap<Arc<str>, Vec<Arc<Subscriber>>>>,
    /// The worker's end of its relay link (fork/prefork), used for publishing.
    link: Mutex<Option<UnixStream>>,
}

pub(crate) type Waker = Arc<dyn Fn() + Send + Sync>;

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
    queue: VecDeque<Message>,
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

    fn push(&self, msg: &Message) {
        {
            let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
            if st.overflowed {
                return;
            }
            if st.bytes + msg.body.len() > self.cap {
                st.overflowed = true;
                st.queue.clear();
                st.bytes = 0;
            } else {
                st.bytes += msg.body.len();
                st.queue.push_back(msg.clone());
            }
        }
        // Wake the owning loop once per batch, not once per message.
        if !self.notified.swap(true, Ordering::AcqRel) {
            (self.waker)();
        }
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
    pub(crate) fn take(&self, max: usize, out: &mut Vec<Message>) -> Result<(), ()> {
        self.notified.store(false, Ordering::Release);
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if st.overflowed {
            return Err(());
        }
        let n = max.min(st.queue.len());
        let taken: usize = st.queue.iter().take(n).map(|m| m.body.len()).sum();
        st.bytes -= taken;
        out.extend(st.queue.drain(..n));
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

    /// Publish to every subscriber of `msg.topic`, in every process of the server.
    pub fn publish(&self, msg: Message) {
        let mut link = self.inner.link.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(stream) = link.as_mut() {
            // Blocking write: the relay never blocks on anyone (it queues per link), so this
            // only waits for the relay to be scheduled.
            if stream.write_all(&relay::encode(&msg)).is_ok() {
                return;
            }
            // The relay is gone (the parent is shutting down): keep working within the process.
            *link = None;
        }
        drop(link);
        self.deliver_local(&msg);
    }

    /// Hand a message to this process's subscribers.
    pub(crate) fn deliver_local(&self, msg: &Message) {
        let topics = self.inner.topics.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(subs) = topics.get(&msg.topic) {
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
    use std::sync::atomic::AtomicUsize;

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
