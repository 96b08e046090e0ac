//! Orphans and zombies, and how bingfa-mp avoids leaving zombies behind.
//!
//! - A zombie is a child that has exited but was not yet waited for. We show one with a raw
//!   `fork()`, then reap it with `waitpid`.
//! - An orphan is a child whose parent died first: it is re-parented (to init or a subreaper).
//! - With `bingfa_mp::Process`, finished or dropped children are reaped automatically.
//!
//! Run: `cargo run -p bingfa-mp --example orphan_zombie`

use std::time::Duration;

use bingfa_mp::{parent_process, Pipe, Process, Sender};

fn state_of(pid: i32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            s.rsplit_once(')')
                .map(|(_, r)| r.split_whitespace().next().unwrap_or("?").to_string())
        })
        .unwrap_or_else(|| "gone".into())
}

fn orphan(mut tx: Sender<(u32, u32)>) {
    let parent = parent_process().unwrap();
    std::thread::sleep(Duration::from_millis(300)); // our parent dies meanwhile
                                                    // SAFETY: getppid just asks the kernel for our parent's pid; it cannot fail and touches
                                                    // no memory of ours.
    let now = unsafe { libc::getppid() } as u32;
    let _ = tx.send(&(parent.pid, now));
}

fn middle(tx: Sender<(u32, u32)>) {
    // Start the grandchild and exit at once, orphaning it.
    let p = Process::builder().spawn(orphan, tx).unwrap();
    std::mem::forget(p);
    // SAFETY: _exit ends this process right away, skipping destructors: that is the point
    // here, as dropping `p` would wait for the grandchild instead of leaving it orphaned.
    unsafe { libc::_exit(0) };
}

fn main() {
    let _rt = bingfa_mp::init();

    println!("1. a zombie, made by hand with fork():");
    // SAFETY: after fork the child is a copy of a process that may have other threads, so it
    // must only call async-signal-safe functions. Ours calls nothing but _exit.
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        // SAFETY: _exit is async-signal-safe and runs none of the parent's cleanup (which
        // belongs to the parent's copy of everything, not ours).
        unsafe { libc::_exit(0) };
    }
    std::thread::sleep(Duration::from_millis(100));
    println!(
        "   child {pid} exited; its state is now {} (Z = zombie)",
        state_of(pid)
    );
    // SAFETY: `pid` is our own child, and a null status pointer tells waitpid we don't want
    // the exit status, so it writes nothing.
    unsafe { libc::waitpid(pid, std::ptr::null_mut(), 0) };
    println!("   after waitpid: {}", state_of(pid));

    println!("2. bingfa-mp children are reaped without waitpid in your code:");
    let p = Process::builder().spawn(|_: ()| (), ()).unwrap();
    let pid = p.pid() as i32;
    drop(p);
    std::thread::sleep(Duration::from_millis(300));
    println!("   dropped child {pid}: {}", state_of(pid));

    println!("3. an orphan:");
    let (mut rx, tx) = Pipe::simplex::<(u32, u32)>().unwrap();
    Process::builder().spawn(middle, tx).unwrap().join().ok();
    let (was, now) = rx.recv_timeout(Duration::from_secs(5)).unwrap();
    println!("   grandchild's parent was {was}; after it died, its parent is {now}");
}
