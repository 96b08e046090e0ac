//! The sans-IO rig (cargo feature `rig`, for tests): one session driven by hand in simulated
//! time, the way quinn-proto's tests drive a connection with `Pair`. The test plays the driver:
//! it feeds bytes, moves the clock, fires timers, reports channel events, finishes the
//! blocking-pool tasks the session watches, and reads back the [`Action`]s the session queued
//! and the bytes it wrote. No socket, no thread, no real clock:
//! a protocol's behaviour is tested in its own crate, fast and deterministic.
//!
//! The rig keeps what a driver keeps about a connection, from the actions as they are queued:
//! the unconsumed input, the named timers' deadlines, the tasks watched, whether input is
//! paused, whether the session closed. The actions themselves are kept, in order, until the test takes them.

use crate::blocking::TaskWatch;
use crate::context::{Action, Context, Timer};
use crate::session::{ConnId, ConnInfo, Session};
use std::time::{Duration, Instant};

/// A session and its [`Context`], driven by hand. See the module documentation.
pub struct Rig<S> {
    session: S,
    cx: Context,
    /// The simulated clock: set as the context's time before every callback.
    now: Instant,
    /// Input the session has not consumed yet, as a driver keeps it.
    input: Vec<u8>,
    /// Actions queued and not taken yet, in order.
    actions: Vec<Action>,
    /// Armed timers, in the order they were armed.
    timers: Vec<(Timer, Instant)>,
    /// Blocking-pool tasks the session asked to be told about, not yet told.
    watching: Vec<TaskWatch>,
    paused: bool,
    closed: bool,
}

/// What the session wrote, and everything else it asked for (see [`Rig::take_output`]).
#[derive(Debug, Default)]
pub struct Output {
    /// The bytes of every `Write` and `SendFile` (the file's range read), in order.
    pub written: Vec<u8>,
    /// Every other action, in order.
    pub other: Vec<Action>,
}

impl Output {
    /// The written bytes as text (lossy UTF-8).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.written).into_owned()
    }

    /// Whether the session asked to close the connection.
    pub fn closes(&self) -> bool {
        self.other.iter().any(|a| matches!(a, Action::Close))
    }
}

/// A TCP connection's facts for a rig: `127.0.0.1:1` connected to `127.0.0.1:2`.
pub fn loopback(id: ConnId) -> ConnInfo {
    ConnInfo {
        id,
        peer: "127.0.0.1:1".parse().expect("an address"),
        local: "127.0.0.1:2".parse().expect("an address"),
        cred: None,
    }
}

impl<S: Session> Rig<S> {
    /// A rig for `session` on the connection `info`, the clock at the real present. Nothing is
    /// called yet: [`Rig::open`] is the driver's first callback.
    pub fn new(session: S, info: ConnInfo) -> Self {
        let now = Instant::now();
        let mut cx = Context::new(info);
        cx.set_now(now);
        Rig {
            session,
            cx,
            now,
            input: Vec::new(),
            actions: Vec::new(),
            timers: Vec::new(),
            watching: Vec::new(),
            paused: false,
            closed: false,
        }
    }

    /// [`Rig::new`], then `on_open`.
    pub fn opened(session: S, info: ConnInfo) -> Self {
        let mut rig = Self::new(session, info);
        rig.open();
        rig
    }

    /// The session under test.
    pub fn session(&self) -> &S {
        &self.session
    }

    /// The session under test, to change or to call outside the contract.
    pub fn session_mut(&mut self) -> &mut S {
        &mut self.session
    }

    /// The context the session sees (its connection facts, time, shutdown flag).
    pub fn context(&self) -> &Context {
        &self.cx
    }

    /// Runs one callback against the context at the rig's time, and collects what it queued.
    /// Every other driving method goes through here.
    pub fn call<R>(&mut self, f: impl FnOnce(&mut S, &mut Context) -> R) -> R {
        self.cx.set_now(self.now);
        let r = f(&mut self.session, &mut self.cx);
        self.collect();
        r
    }

    /// `on_open`.
    pub fn open(&mut self) {
        self.call(|s, cx| s.on_open(cx));
    }

    /// One `on_data` with exactly `bytes`, as they are; returns how many the session consumed.
    /// Nothing is kept: for the exact counts. [`Rig::feed`] is the driver's loop.
    pub fn data(&mut self, bytes: &[u8]) -> usize {
        self.call(|s, cx| s.on_data(bytes, cx))
    }

    /// Appends `bytes` to the input and calls `on_data` as a driver does: again while the
    /// session consumes something, input remains, input is not paused and it has not closed.
    /// What is not consumed stays for the next feed (or for [`Rig::pump`] after a resume).
    pub fn feed(&mut self, bytes: &[u8]) {
        self.input.extend_from_slice(bytes);
        self.pump();
    }

    /// Offers the input kept back to the session again (a driver does so when input resumes).
    pub fn pump(&mut self) {
        while !self.input.is_empty() && !self.paused && !self.closed {
            let input = std::mem::take(&mut self.input);
            let n = self.call(|s, cx| s.on_data(&input, cx)).min(input.len());
            self.input = input;
            self.input.drain(..n);
            if n == 0 {
                break;
            }
        }
    }

    /// The input not consumed yet.
    pub fn pending_input(&self) -> &[u8] {
        &self.input
    }

    /// The rig's time.
    pub fn now(&self) -> Instant {
        self.now
    }

    /// Moves the clock by `by`; every timer due by then fires (`on_timer`), earliest first,
    /// as a driver's tick does.
    pub fn advance(&mut self, by: Duration) {
        self.now += by;
        while let Some((t, _)) = self.next_timer().filter(|&(_, at)| at <= self.now) {
            self.fire_timer(t);
        }
    }

    /// Fires the timer `t` now, due or not (and set or not): it is gone unless the session
    /// sets it again.
    pub fn fire_timer(&mut self, t: Timer) {
        self.timers.retain(|(n, _)| *n != t);
        self.call(|s, cx| s.on_timer(t, cx));
    }

    /// When the timer `t` is due, if it is set.
    pub fn timer(&self, t: Timer) -> Option<Instant> {
        self.timers.iter().find(|(n, _)| *n == t).map(|&(_, at)| at)
    }

    /// The timer due first (the first armed among equals), if any is set.
    pub fn next_timer(&self) -> Option<(Timer, Instant)> {
        self.timers
            .iter()
            .copied()
            .reduce(|a, b| if b.1 < a.1 { b } else { a })
    }

    /// How many blocking-pool tasks the session watches and has not been told of.
    pub fn watching(&self) -> usize {
        self.watching.len()
    }

    /// Waits (real time, up to `timeout`) for the first task the session watches to end, then
    /// tells the session (`on_task_done`), as a driver's wake-up does. False if none is watched
    /// or it did not end in time.
    pub fn finish_task(&mut self, timeout: Duration) -> bool {
        if self.watching.is_empty() {
            return false;
        }
        if !self.watching[0].wait(timeout) {
            return false;
        }
        let w = self.watching.remove(0);
        let id = w.id();
        self.call(|s, cx| s.on_task_done(id, cx));
        true
    }

    /// Reports `ev` on the data channel `id`, as a driver does when its socket has news: the
    /// test plays the peer and the driver's socket work (bound, connected, bytes in, drained,
    /// closed). What the session sends back on the channel is in the actions taken.
    pub fn channel(&mut self, id: crate::ChannelId, ev: crate::ChannelEvent<'_>) {
        self.call(|s, cx| s.on_channel(id, ev, cx));
    }

    /// The idle timeout as a driver carries it out: `on_idle`, then the connection closes
    /// (after what the session queued). The rig keeps no activity clock: the test says when.
    pub fn idle(&mut self) {
        self.call(|s, cx| {
            s.on_idle(cx);
            cx.close();
        });
    }

    /// Whether the session paused its input (`PauseInput(true)` last).
    pub fn paused(&self) -> bool {
        self.paused
    }

    /// Whether the session asked to close or abort the connection.
    pub fn closed(&self) -> bool {
        self.closed
    }

    /// Raises the server's shutdown flag, without a callback (what the session sees from then
    /// on through [`Context::shutting_down`]).
    pub fn set_shutting_down(&mut self) {
        self.cx.set_shutting_down();
    }

    /// Graceful shutdown as a driver begins it: the flag, then `on_shutdown`.
    pub fn shut_down(&mut self) {
        self.set_shutting_down();
        self.call(|s, cx| s.on_shutdown(cx));
    }

    /// Whether actions are waiting to be taken.
    pub fn has_actions(&self) -> bool {
        !self.actions.is_empty()
    }

    /// The actions queued since the last take, in order.
    pub fn take_actions(&mut self) -> Vec<Action> {
        std::mem::take(&mut self.actions)
    }

    /// The actions queued since the last take, writes gathered into bytes.
    pub fn take_output(&mut self) -> Output {
        let mut out = Output::default();
        for a in self.take_actions() {
            match a {
                Action::Write(b) => out.written.extend_from_slice(&b),
                Action::SendFile { file, offset, len } => {
                    use std::os::unix::fs::FileExt;
                    let mut buf = vec![0; len as usize];
                    file.read_exact_at(&mut buf, offset)
                        .expect("the range a session sends exists");
                    out.written.extend_from_slice(&buf);
                }
                other => out.other.push(other),
            }
        }
        out
    }

    /// Drains the context into the rig, keeping a driver's view of the connection up to date.
    /// Writes right after writes coalesce, across callbacks too, as they do in one `Context`:
    /// the actions taken are what the context would hold had nothing drained it in between.
    fn collect(&mut self) {
        for a in self.cx.take_actions() {
            match &a {
                Action::SetTimer(t, at) => {
                    self.timers.retain(|(n, _)| n != t);
                    if let Some(at) = at {
                        self.timers.push((*t, *at));
                    }
                }
                Action::Watch(w) => self.watching.push(w.clone()),
                Action::PauseInput(p) => self.paused = *p,
                Action::Close | Action::Abort => self.closed = true,
                _ => {}
            }
            if let (Action::Write(more), Some(Action::Write(buf))) = (&a, self.actions.last_mut()) {
                buf.extend_from_slice(more);
                continue;
            }
            self.actions.push(a);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TICK: Timer = Timer("tick");

    /// Echoes lines; `t` sets a 5 s timer that writes `tick`; `p` pauses input; `j` runs a job
    /// on the blocking pool and writes its answer when told it ended.
    #[derive(Default)]
    struct Lines(Option<crate::blocking::Task<&'static str>>);

    impl Session for Lines {
        fn on_data(&mut self, input: &[u8], cx: &mut Context) -> usize {
            let Some(end) = input.iter().position(|&b| b == b'\n') else {
                return 0;
            };
            match &input[..end] {
                b"t" => cx.set_timer(TICK, Duration::from_secs(5)),
                b"p" => cx.pause_input(true),
                b"j" => self.0 = Some(cx.spawn_blocking(|_| "done")),
                line => cx.write(line),
            }
            end + 1
        }

        fn on_timer(&mut self, _t: Timer, cx: &mut Context) {
            cx.write(b"tick");
        }

        fn on_channel(
            &mut self,
            id: crate::ChannelId,
            ev: crate::ChannelEvent<'_>,
            cx: &mut Context,
        ) {
            if let crate::ChannelEvent::Data(b) = ev {
                cx.channel_write(id, b);
            }
        }

        fn on_idle(&mut self, cx: &mut Context) {
            cx.write(b"bye");
        }

        fn on_task_done(&mut self, task: crate::TaskId, cx: &mut Context) {
            let t = self.0.take().expect("a task");
            assert_eq!(t.id(), task);
            cx.write(t.try_take().expect("not lost").expect("ended").as_bytes());
        }
    }

    #[test]
    fn a_driver_loop_in_simulated_time() {
        let mut r = Rig::opened(Lines::default(), loopback(1));
        r.feed(b"a\nb\nc");
        assert!(
            matches!(&r.take_actions()[..], [Action::Write(b)] if b == b"ab"),
            "writes of two callbacks coalesce"
        );
        assert_eq!(r.pending_input(), b"c");
        r.feed(b"\nt\n");
        assert_eq!(r.take_output().text(), "c");
        let due = r.now() + Duration::from_secs(5);
        assert_eq!(r.timer(TICK), Some(due));
        r.advance(Duration::from_secs(4));
        assert!(!r.has_actions(), "not due yet");
        r.advance(Duration::from_secs(1));
        assert_eq!(r.take_output().text(), "tick");
        assert_eq!(r.timer(TICK), None, "a fired timer is gone");
        r.feed(b"j\n");
        assert_eq!(r.watching(), 1);
        assert!(r.finish_task(Duration::from_secs(20)), "the job ends");
        assert_eq!(r.take_output().text(), "done");
        assert_eq!(r.watching(), 0);
        r.feed(b"p\nd\n");
        assert!(r.paused());
        assert_eq!(r.pending_input(), b"d\n");
        assert_eq!(r.data(b"e\n"), 2, "one call, exactly these bytes");
        r.take_actions();
        r.channel(7, crate::ChannelEvent::Data(b"up"));
        assert!(
            matches!(&r.take_actions()[..], [Action::ChannelWrite(7, b)] if b == b"up"),
            "a channel event reaches the session"
        );
        r.shut_down();
        assert!(r.context().shutting_down());
        assert!(r.take_output().closes(), "the default on_shutdown closes");
        assert!(r.closed());
    }

    #[test]
    fn the_idle_timeout_says_goodbye_then_closes() {
        let mut r = Rig::opened(Lines::default(), loopback(1));
        r.idle();
        let out = r.take_output();
        assert_eq!(out.text(), "bye");
        assert!(out.closes() && r.closed());
    }
}
