//! Password checks off the event loop. Argon2 costs ~25 ms and 19 MiB per check on purpose;
//! run inline, every login would stall all the other sessions of an event-loop worker. A small
//! pool of threads (one per CPU, so concurrent logins queue instead of each taking 19 MiB)
//! verifies; the session polls the answer from its timer (bingfa-net has no other wake-up for
//! a session) and defers its input meanwhile.
//!
//! The pool is per process and started on first use: a `fork` or `prefork` child starts its
//! own (threads do not survive fork), recognised by the pid it was started in.

use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::Mutex;

type Job = (String, String, Sender<bool>);

static POOL: Mutex<Option<(u32, Sender<Job>)>> = Mutex::new(None);

fn start() -> Sender<Job> {
    let (tx, rx) = channel::<Job>();
    let rx = std::sync::Arc::new(Mutex::new(rx));
    let n = std::thread::available_parallelism()
        .map_or(2, |n| n.get())
        .min(8);
    for i in 0..n {
        let rx = rx.clone();
        std::thread::Builder::new()
            .name(format!("ftp-verify-{i}"))
            .spawn(move || loop {
                let job = rx.lock().expect("verify queue").recv();
                let Ok((hash, password, answer)) = job else {
                    return;
                };
                let _ = answer.send(crate::users::verify(&hash, &password));
            })
            .expect("spawn a password-check thread");
    }
    tx
}

/// Queue a check of `password` against `hash`; the answer arrives on the receiver.
pub fn verify(hash: &str, password: &str) -> Receiver<bool> {
    let (answer, rx) = channel();
    let pid = std::process::id();
    let mut pool = POOL.lock().unwrap_or_else(|e| e.into_inner());
    let tx = match &*pool {
        Some((p, tx)) if *p == pid => tx.clone(),
        _ => {
            let tx = start();
            *pool = Some((pid, tx.clone()));
            tx
        }
    };
    drop(pool);
    let _ = tx.send((hash.to_string(), password.to_string(), answer));
    rx
}

#[cfg(test)]
mod tests {
    #[test]
    fn answers_from_the_pool() {
        let h = crate::users::hash("pw");
        let good = super::verify(&h, "pw");
        let bad = super::verify(&h, "nope");
        assert!(good.recv().unwrap());
        assert!(!bad.recv().unwrap());
    }
}
