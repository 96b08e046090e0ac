//! The hub's uplink: an ordering point outside the server (a Redis backplane) that takes the
//! place of the in-process hub's and the relay's own order.
//!
//! Without an uplink a server is its own ordering point: the in-process hub (one lock) or, under
//! `fork`/`prefork`, the relay in the parent. With one, that same point (the hub, or the relay)
//! *forwards* every publication to the uplink instead of fanning it out, and fans out only what
//! the uplink hands back through its [`Downlink`], in the uplink's order. So several servers
//! sharing one uplink deliver one sequence, and a server shows even its own sessions' messages
//! in the order the uplink returns them. Nothing else changes: sessions, drivers, the relay's
//! links and every overflow rule stay as they are.
//!
//! bingfa-net knows nothing of what is carried or of Redis: an uplink is any [`Uplink`]
//! (bingfa-chat implements one on Redis pub/sub). It is one per server, never per process or
//! connection: under `fork`/`prefork` it lives in the parent beside the relay.
//!
//! When the uplink is down, [`Uplink::send`] says so (`false`) and the hub or relay fans the
//! message out locally, as if there were no uplink: the server keeps serving its own sessions.
//! Telling them (a protocol's "link lost" line) is the uplink's business: it may hand any
//! message down, from any thread, at any time.

use super::frame;
use super::Hub;
use crate::session::Message;
use std::io::{self, Write};
use std::os::unix::net::UnixStream;
use std::sync::{Arc, Mutex};

/// An ordering point outside the server. Implementations must be cheap and non-blocking in
/// [`Uplink::send`] (it runs on a loop thread or in the relay's loop): queue, bounded.
pub trait Uplink: Send + Sync + 'static {
    /// Take a publication towards the ordering point. `false`: not taken (the link is down or
    /// its bounded queue is full); the caller then delivers it within this server.
    fn send(&self, msg: &Message) -> bool;

    /// Start carrying: from now on every message of the one order goes to `down`, in order
    /// (and any message the uplink wants to say itself). Called once, when the server runs.
    fn start(&self, down: Downlink) -> io::Result<()>;
}

/// Where an uplink hands the ordered stream back: the in-process hub, or (fork/prefork) a
/// source link into the parent's relay, which fans it out to every worker. Clone freely.
#[derive(Clone)]
pub struct Downlink {
    to: To,
}

#[derive(Clone)]
enum To {
    /// Weak: the hub holds the uplink, which holds this.
    Hub(std::sync::Weak<super::Inner>),
    Relay(Arc<Mutex<UnixStream>>),
}

impl Downlink {
    pub(crate) fn hub(hub: Hub) -> Self {
        Downlink {
            to: To::Hub(hub.downgrade()),
        }
    }

    pub(crate) fn relay(theirs: UnixStream) -> Self {
        Downlink {
            to: To::Relay(Arc::new(Mutex::new(theirs))),
        }
    }

    /// Deliver `msg` to every subscriber of its topic in this server (every process of it).
    pub fn deliver(&self, msg: Message) {
        match &self.to {
            To::Hub(weak) => {
                if let Some(hub) = Hub::upgrade(weak) {
                    hub.deliver_local(&msg);
                }
            }
            To::Relay(link) => {
                if msg.topic.len() + msg.body.len() > super::MAX_MESSAGE {
                    tracing::warn!("uplink: a message over the hub's limit dropped");
                    return;
                }
                // Blocking write: the relay reads it in its loop and never blocks on anyone.
                let mut s = link.lock().unwrap_or_else(|e| e.into_inner());
                if let Err(e) = s.write_all(&frame::encode(&msg)) {
                    tracing::debug!("uplink: the relay is gone ({e})");
                }
            }
        }
    }
}

/// An uplink handed to [`Server::set_uplink`](crate::Server::set_uplink), kept until `run`.
pub(crate) type SharedUplink = Arc<dyn Uplink>;

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::hub::Subscriber;
    use std::sync::atomic::{AtomicBool, Ordering};

    /// Holds what it is sent until `flush`, then hands it down in reverse: an order of its own.
    #[derive(Default)]
    pub(crate) struct Backwards {
        pub(crate) up: AtomicBool,
        pub(crate) held: Mutex<Vec<Message>>,
        down: Mutex<Option<Downlink>>,
    }

    impl Uplink for Backwards {
        fn send(&self, msg: &Message) -> bool {
            if !self.up.load(Ordering::SeqCst) {
                return false;
            }
            self.held.lock().unwrap().push(msg.clone());
            true
        }
        fn start(&self, down: Downlink) -> io::Result<()> {
            *self.down.lock().unwrap() = Some(down);
            Ok(())
        }
    }

    impl Backwards {
        pub(crate) fn flush(&self) {
            let down = self.down.lock().unwrap().clone().unwrap();
            for m in self.held.lock().unwrap().drain(..).rev() {
                down.deliver(m);
            }
        }
    }

    pub(crate) fn msg(body: &[u8]) -> Message {
        Message {
            topic: Arc::from("t"),
            from: 1,
            body: Arc::from(body),
        }
    }

    fn bodies(sub: &Subscriber) -> Vec<u8> {
        let mut out = Vec::new();
        sub.take(100, &mut out).unwrap();
        out.iter().map(|m| m.body[0]).collect()
    }

    #[test]
    fn the_hub_delivers_in_the_uplinks_order_and_locally_while_it_is_down() {
        let hub = Hub::new();
        let up = Arc::new(Backwards::default());
        up.up.store(true, Ordering::SeqCst);
        hub.set_uplink(up.clone());
        up.start(Downlink::hub(hub.clone())).unwrap();
        let sub = Subscriber::new(7, 1024, Arc::new(|| {}));
        hub.subscribe(&Arc::from("t"), &sub);
        hub.publish(msg(&[1]));
        hub.publish(msg(&[2]));
        assert_eq!(
            bodies(&sub),
            Vec::<u8>::new(),
            "nothing until it comes back"
        );
        up.flush();
        assert_eq!(
            bodies(&sub),
            vec![2, 1],
            "the uplink's order, not the publish order"
        );
        up.up.store(false, Ordering::SeqCst);
        hub.publish(msg(&[3]));
        assert_eq!(bodies(&sub), vec![3], "down: delivered locally at once");
    }
}
