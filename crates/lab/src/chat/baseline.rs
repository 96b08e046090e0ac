//! The baseline room: the architecture of tokio's `examples/chat.rs`, written small. A task per
//! peer, an unbounded mpsc channel per peer, and a broadcast that locks the shared map and
//! iterates every peer's sender. It speaks the subset of the room protocol `lab chat` uses:
//! `* ` name prompt, the name line, a `* ` welcome, `* NAME joined` / `* NAME left` to the
//! others, and `NAME: TEXT` to everyone but the sender. No limits, like the example: a slow
//! reader's channel grows without bound.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

type Tx = mpsc::UnboundedSender<Arc<str>>;

#[derive(Default)]
struct Shared {
    peers: HashMap<SocketAddr, Tx>,
}

impl Shared {
    /// Send `line` to every peer but `from` (as the example's `broadcast`).
    fn broadcast(&self, from: SocketAddr, line: &str) {
        let line: Arc<str> = line.into();
        for (addr, tx) in &self.peers {
            if *addr != from {
                let _ = tx.send(line.clone());
            }
        }
    }
}

/// Serve on `bind` until killed, printing `chat listening on IP:PORT` when ready.
pub fn serve(bind: SocketAddr) -> std::io::Result<()> {
    // The example's `#[tokio::main]`: a multi-threaded runtime, one worker per core.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let listener = TcpListener::bind(bind).await?;
        println!("chat listening on {}", listener.local_addr()?);
        let state = Arc::new(Mutex::new(Shared::default()));
        loop {
            let (stream, addr) = listener.accept().await?;
            let state = state.clone();
            tokio::spawn(async move {
                let _ = peer(state, stream, addr).await;
            });
        }
    })
}

async fn peer(
    state: Arc<Mutex<Shared>>,
    stream: TcpStream,
    addr: SocketAddr,
) -> std::io::Result<()> {
    let _ = stream.set_nodelay(true);
    let (r, mut w) = stream.into_split();
    let mut lines = BufReader::new(r).lines();
    w.write_all(b"* please enter your name\n").await?;
    let Some(name) = lines.next_line().await? else {
        return Ok(());
    };
    let (tx, mut rx) = mpsc::unbounded_channel::<Arc<str>>();
    {
        let mut s = state.lock().unwrap();
        s.broadcast(addr, &format!("* {name} joined\n"));
        s.peers.insert(addr, tx);
    }
    w.write_all(format!("* you are {name}\n").as_bytes())
        .await?;
    let result = async {
        loop {
            tokio::select! {
                // A line for this peer: write it out.
                Some(line) = rx.recv() => w.write_all(line.as_bytes()).await?,
                // A line from this peer: broadcast it.
                line = lines.next_line() => match line? {
                    Some(text) => {
                        state.lock().unwrap().broadcast(addr, &format!("{name}: {text}\n"));
                    }
                    None => break,
                },
            }
        }
        Ok::<(), std::io::Error>(())
    }
    .await;
    let mut s = state.lock().unwrap();
    s.peers.remove(&addr);
    s.broadcast(addr, &format!("* {name} left\n"));
    result
}
