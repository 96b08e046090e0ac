//! Servo's ipc-channel measured as a Rust peer of bingfa-mp in `lab ipc`: the same u64
//! messages, the same round trip, a child started the same way (bingfa's spawn, which only
//! carries the one-shot server's name; every message then goes through ipc-channel).
//!
//! ipc-channel moves each message through a Unix socket (serde + bincode, descriptors passed
//! with SCM_RIGHTS), so every send and receive is a system call; it has no spin.

use std::time::Instant;

use bingfa_mp::Process;
use ipc_channel::ipc::{self, IpcOneShotServer, IpcReceiver, IpcSender};

/// What the child hands back to the parent: its inbox's sender and its outbox's receiver.
type Link = (IpcSender<Option<u64>>, IpcReceiver<Option<u64>>);

fn child(name: String) {
    let boot = IpcSender::<Link>::connect(name).expect("connecting to the one-shot server");
    let (in_tx, in_rx) = ipc::channel::<Option<u64>>().expect("ipc channel");
    let (out_tx, out_rx) = ipc::channel::<Option<u64>>().expect("ipc channel");
    boot.send((in_tx, out_rx)).expect("sending the link");
    // First message says what to do: Some(n) = send n messages then None; None = echo.
    match in_rx.recv() {
        Ok(Some(n)) => {
            for i in 0..n {
                out_tx.send(Some(i)).expect("send");
            }
            out_tx.send(None).expect("send");
        }
        Ok(None) => {
            while let Ok(Some(x)) = in_rx.recv() {
                if out_tx.send(Some(x)).is_err() {
                    break;
                }
            }
        }
        Err(_) => {}
    }
}

fn start() -> (
    Process<()>,
    IpcSender<Option<u64>>,
    IpcReceiver<Option<u64>>,
) {
    let (server, name) = IpcOneShotServer::<Link>::new().expect("one-shot server");
    let p = Process::builder()
        .spawn(child, name)
        .expect("starting the ipc-channel peer");
    let (_, (tx, rx)) = server.accept().expect("the peer's link");
    (p, tx, rx)
}

/// Mean round trip of a u64 through a pair of ipc-channels, in microseconds.
pub(super) fn roundtrip_us(n: u64) -> f64 {
    let (p, tx, rx) = start();
    tx.send(None).unwrap();
    for i in 0..1000 {
        tx.send(Some(i)).unwrap();
        rx.recv().unwrap();
    }
    let t = Instant::now();
    for i in 0..n {
        tx.send(Some(i)).unwrap();
        assert_eq!(rx.recv().unwrap(), Some(i));
    }
    let dt = t.elapsed();
    tx.send(None).unwrap();
    p.join().unwrap();
    dt.as_secs_f64() / n as f64 * 1e6
}

/// u64 messages per second, one sending process, one receiving.
pub(super) fn msgs_per_s(n: u64) -> f64 {
    let (p, tx, rx) = start();
    let t = Instant::now();
    tx.send(Some(n)).unwrap();
    let mut got = 0;
    while rx.recv().unwrap().is_some() {
        got += 1;
    }
    let dt = t.elapsed();
    assert_eq!(got, n);
    p.join().unwrap();
    n as f64 / dt.as_secs_f64()
}
