//! The Redis backplane: one room across many servers (`bingfa chat serve --backplane URL`).
//!
//! It is a [`bingfa_net::Uplink`]: the server's hub (or, under `fork`/`prefork`, its relay)
//! offers every publication to it instead of fanning it out, and fans out what comes back from
//! the room's Redis channel, so every server shows the same sequence, its own members' lines
//! included. Names are claimed room-wide in Redis (see `names.rs`), and a server whose
//! heartbeat expires has its members reported `left` by whichever server reaps it first.
//!
//! Reading order: `wire.rs` (the channel's payload), `link.rs` (pub/sub, lost and restored),
//! `scripts.rs` (the atomic name operations), `names.rs` (claims, heartbeat, reaping).

mod link;
pub mod names;
mod scripts;
pub mod wire;

pub use link::{LOST, MAX_QUEUE, RESTORED};

use crate::roster::Roster;
use bingfa_net::{Downlink, Message, Uplink};
use std::sync::{Arc, Mutex};

/// Why a backplane could not be made.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The `--backplane` URL is not a Redis URL.
    #[error("bad --backplane URL: {0}")]
    Url(#[from] redis::RedisError),
    /// The name service's socket could not be bound.
    #[error("cannot start the backplane's name service: {0}")]
    Io(#[from] std::io::Error),
}

/// The server's link to the room across servers: an [`Uplink`] for the hub, and the name service the roster claims names through.
pub struct Backplane {
    link: Arc<link::Link>,
    /// For retiring this server from the room when it stops.
    retire: (redis::Client, String, String, String),
    retired: Arc<Mutex<bool>>,
    /// Started with the link.
    names: Mutex<Option<(names::Service, names::Names)>>,
    client: names::Client,
}

impl Backplane {
    /// A backplane for room `room` on the Redis at `url`; `roster` is the server's local table
    /// (whose members the heartbeat keeps claimed). Nothing connects until the server runs.
    pub fn new(url: &str, room: &str, roster: Roster) -> Result<Self, Error> {
        let client = redis::Client::open(url)?;
        let sid = wire::new_sid();
        let prefix = format!("bingfa:chat:{room}");
        let channel = format!("{prefix}:stream");
        let service = names::Service::bind()?;
        let retire = (client.clone(), prefix.clone(), sid.clone(), channel.clone());
        let names = names::Names::new(client.clone(), prefix, sid.clone(), channel.clone(), roster);
        Ok(Backplane {
            retired: names.retired(),
            retire,
            link: Arc::new(link::Link::new(client, sid, channel)),
            client: service.client(),
            names: Mutex::new(Some((service, names))),
        })
    }

    /// For the roster: room-wide claims, releases and `/who`.
    pub fn names_client(&self) -> names::Client {
        self.client.clone()
    }
}

impl Drop for Backplane {
    /// The server's hub or relay let go of it: the server is stopping. Its members' farewells
    /// are in the queue; see them published before the process exits.
    fn drop(&mut self) {
        self.link.flush(std::time::Duration::from_secs(2));
        // Leave nothing behind: this server's heartbeat, its place among the servers, and
        // (with a `left`) any member record a lost release left. Best effort: if Redis is
        // away, the others reap it once it answers again, or the heartbeat expires.
        let mut retired = self.retired.lock().unwrap_or_else(|e| e.into_inner());
        *retired = true;
        let (client, prefix, sid, channel) = &self.retire;
        let t = std::time::Duration::from_secs(1);
        if let Ok(mut c) = client.get_connection_with_timeout(t) {
            let _ = c.set_read_timeout(Some(t));
            let _: redis::RedisResult<i64> = redis::Script::new(scripts::RETIRE)
                .arg(prefix)
                .arg(sid)
                .arg(channel)
                .arg(crate::event::TOPIC)
                .invoke(&mut c);
        }
    }
}

impl Uplink for Backplane {
    fn send(&self, msg: &Message) -> bool {
        self.link.send(msg)
    }

    fn start(&self, down: Downlink) -> std::io::Result<()> {
        if let Some((service, names)) = self.names.lock().unwrap_or_else(|e| e.into_inner()).take()
        {
            service.start(names)?;
        }
        self.link.start(down)
    }
}
