//! Wrappers: a session that runs another session inside it (the TLS layer, chat's WebSocket
//! face, the chat room's choice of session per listener) writes only the callbacks it changes,
//! and every other callback reaches the inner session.
//!
//! Why a trait and not forwarding by hand: a wrapper that forwards each callback itself drops,
//! without a word, the one it forgets, and every callback added to [`Session`] after it was
//! written (the TLS layer dropped `on_secure`; the web face and the room dropped `on_hangup`).
//! A [`Wrapper`] is a [`Session`] through the blanket impl below, and each callback it does not
//! override goes to the inner session through [`Wrapper::forward`].
//!
//! The rule: a callback added to [`Session`] is added here too, in [`Wrapper`] (its default
//! forwards) and in the blanket impl (which calls it); the test
//! `every_session_callback_is_forwarded` compares both lists with the trait in `session.rs`
//! and fails until they match. A wrapper overrides a callback only to change what it does,
//! and then says in a comment why.

use super::{ChannelEvent, ChannelId, Context, Message, Session, TaskId, Timer};

/// A session wrapping another: every callback it does not override is forwarded to
/// [`Wrapper::inner_mut`] through [`Wrapper::forward`]. Implement this instead of [`Session`]
/// (the blanket impl makes every `Wrapper` a `Session`).
///
/// Where there is no inner session to call ([`Wrapper::forward`] gives `None`: not opened
/// yet, or the wrapper already ended the connection itself), a default does what a session
/// that never overrode the callback would: `on_eof` and `on_shutdown` close, `on_data`
/// consumes (drops) the input, the others do nothing.
pub trait Wrapper: Send + 'static {
    /// The session inside (`dyn Session` for a wrapper that holds one of several kinds).
    type Inner: Session + ?Sized;

    /// The inner session, once it was opened (`None` before, or if it never will be).
    fn inner_mut(&mut self) -> Option<&mut Self::Inner>;

    /// Run `f`, one callback of the inner session, and return what it returned; `None` when the
    /// inner session takes no callbacks now. The default runs it on the wrapper's own context.
    /// A layer that changes what the inner session does (encrypts its writes, frames its lines)
    /// runs it against a context of its own and carries the actions over.
    fn forward<R>(
        &mut self,
        cx: &mut Context,
        f: impl FnOnce(&mut Self::Inner, &mut Context) -> R,
    ) -> Option<R> {
        self.inner_mut().map(|s| f(s, cx))
    }

    /// [`Session::on_open`].
    fn on_open(&mut self, cx: &mut Context) {
        self.forward(cx, |s, cx| s.on_open(cx));
    }

    /// [`Session::on_data`]; with no inner session the input is dropped.
    fn on_data(&mut self, input: &[u8], cx: &mut Context) -> usize {
        self.forward(cx, |s, cx| s.on_data(input, cx))
            .unwrap_or(input.len())
    }

    /// [`Session::on_eof`]; with no inner session, close after flushing.
    fn on_eof(&mut self, cx: &mut Context) {
        if self.forward(cx, |s, cx| s.on_eof(cx)).is_none() {
            cx.close();
        }
    }

    /// [`Session::on_hangup`].
    fn on_hangup(&mut self, cx: &mut Context) {
        self.forward(cx, |s, cx| s.on_hangup(cx));
    }

    /// [`Session::on_message`].
    fn on_message(&mut self, msg: &Message, cx: &mut Context) {
        self.forward(cx, |s, cx| s.on_message(msg, cx));
    }

    /// [`Session::on_timer`].
    fn on_timer(&mut self, timer: Timer, cx: &mut Context) {
        self.forward(cx, |s, cx| s.on_timer(timer, cx));
    }

    /// [`Session::on_task_done`].
    fn on_task_done(&mut self, task: TaskId, cx: &mut Context) {
        self.forward(cx, |s, cx| s.on_task_done(task, cx));
    }

    /// [`Session::on_drained`].
    fn on_drained(&mut self, cx: &mut Context) {
        self.forward(cx, |s, cx| s.on_drained(cx));
    }

    /// [`Session::on_secure`].
    fn on_secure(&mut self, cx: &mut Context) {
        self.forward(cx, |s, cx| s.on_secure(cx));
    }

    /// [`Session::on_channel`].
    fn on_channel(&mut self, id: ChannelId, ev: ChannelEvent<'_>, cx: &mut Context) {
        self.forward(cx, |s, cx| s.on_channel(id, ev, cx));
    }

    /// [`Session::on_idle`].
    fn on_idle(&mut self, cx: &mut Context) {
        self.forward(cx, |s, cx| s.on_idle(cx));
    }

    /// [`Session::on_overflow`].
    fn on_overflow(&mut self, cx: &mut Context) {
        self.forward(cx, |s, cx| s.on_overflow(cx));
    }

    /// [`Session::on_shutdown`]; with no inner session, close after flushing.
    fn on_shutdown(&mut self, cx: &mut Context) {
        if self.forward(cx, |s, cx| s.on_shutdown(cx)).is_none() {
            cx.close();
        }
    }

    /// [`Session::on_farewell`].
    fn on_farewell(&mut self, cx: &mut Context) {
        self.forward(cx, |s, cx| s.on_farewell(cx));
    }

    /// [`Session::on_close`]: straight to the inner session (there is no context to run it on).
    fn on_close(&mut self) {
        if let Some(s) = self.inner_mut() {
            s.on_close();
        }
    }
}

impl<W: Wrapper> Session for W {
    fn on_open(&mut self, cx: &mut Context) {
        Wrapper::on_open(self, cx)
    }
    fn on_data(&mut self, input: &[u8], cx: &mut Context) -> usize {
        Wrapper::on_data(self, input, cx)
    }
    fn on_eof(&mut self, cx: &mut Context) {
        Wrapper::on_eof(self, cx)
    }
    fn on_hangup(&mut self, cx: &mut Context) {
        Wrapper::on_hangup(self, cx)
    }
    fn on_message(&mut self, msg: &Message, cx: &mut Context) {
        Wrapper::on_message(self, msg, cx)
    }
    fn on_timer(&mut self, timer: Timer, cx: &mut Context) {
        Wrapper::on_timer(self, timer, cx)
    }
    fn on_task_done(&mut self, task: TaskId, cx: &mut Context) {
        Wrapper::on_task_done(self, task, cx)
    }
    fn on_drained(&mut self, cx: &mut Context) {
        Wrapper::on_drained(self, cx)
    }
    fn on_secure(&mut self, cx: &mut Context) {
        Wrapper::on_secure(self, cx)
    }
    fn on_channel(&mut self, id: ChannelId, ev: ChannelEvent<'_>, cx: &mut Context) {
        Wrapper::on_channel(self, id, ev, cx)
    }
    fn on_idle(&mut self, cx: &mut Context) {
        Wrapper::on_idle(self, cx)
    }
    fn on_overflow(&mut self, cx: &mut Context) {
        Wrapper::on_overflow(self, cx)
    }
    fn on_shutdown(&mut self, cx: &mut Context) {
        Wrapper::on_shutdown(self, cx)
    }
    fn on_farewell(&mut self, cx: &mut Context) {
        Wrapper::on_farewell(self, cx)
    }
    fn on_close(&mut self) {
        Wrapper::on_close(self)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::ConnInfo;
    use std::sync::{Arc, Mutex};

    /// The callbacks named in the block of `src` that starts with `start` (up to its closing
    /// brace at the start of a line).
    fn callbacks(src: &str, start: &str) -> Vec<String> {
        let block = &src[src.find(start).unwrap_or_else(|| panic!("no {start}"))..];
        let block = &block[..block.find("\n}\n").expect("end of block")];
        let mut names: Vec<String> = block
            .lines()
            .filter_map(|l| l.trim_start().strip_prefix("fn on_"))
            .map(|rest| format!("on_{}", rest.split(['(', '<']).next().unwrap_or("")))
            .collect();
        names.sort();
        names
    }

    const SESSION: &str = include_str!("../session.rs");
    const WRAP: &str = include_str!("wrap.rs");

    #[test]
    fn every_session_callback_is_forwarded() {
        let contract = contract();
        assert!(contract.len() >= 14, "{contract:?}");
        assert_eq!(callbacks(WRAP, "pub trait Wrapper"), contract, "Wrapper");
        assert_eq!(
            callbacks(WRAP, "impl<W: Wrapper> Session for W"),
            contract,
            "the blanket impl"
        );
    }

    /// Records every callback it gets (the wrappers' tests run it inside theirs).
    pub(crate) struct Log {
        log: Arc<Mutex<Vec<&'static str>>>,
        /// Pause input at the open (a layer passes `on_hangup` on only to a paused session).
        pause: bool,
    }

    impl Log {
        /// A recorder and its record.
        pub(crate) fn new(pause: bool) -> (Log, Arc<Mutex<Vec<&'static str>>>) {
            let log = Arc::new(Mutex::new(Vec::new()));
            (
                Log {
                    log: log.clone(),
                    pause,
                },
                log,
            )
        }

        fn push(&self, what: &'static str) {
            self.log.lock().unwrap().push(what);
        }
    }

    /// Every callback of the contract, sorted by name (from `session.rs` itself).
    pub(crate) fn contract() -> Vec<String> {
        callbacks(SESSION, "pub trait Session")
    }

    impl Session for Log {
        fn on_open(&mut self, cx: &mut Context) {
            self.push("on_open");
            if self.pause {
                cx.pause_input(true);
            }
        }
        fn on_data(&mut self, input: &[u8], _cx: &mut Context) -> usize {
            self.push("on_data");
            input.len() - 1
        }
        fn on_eof(&mut self, _cx: &mut Context) {
            self.push("on_eof");
        }
        fn on_hangup(&mut self, _cx: &mut Context) {
            self.push("on_hangup");
        }
        fn on_message(&mut self, _msg: &Message, _cx: &mut Context) {
            self.push("on_message");
        }
        fn on_timer(&mut self, _timer: Timer, _cx: &mut Context) {
            self.push("on_timer");
        }
        fn on_task_done(&mut self, _task: TaskId, _cx: &mut Context) {
            self.push("on_task_done");
        }
        fn on_drained(&mut self, _cx: &mut Context) {
            self.push("on_drained");
        }
        fn on_secure(&mut self, _cx: &mut Context) {
            self.push("on_secure");
        }
        fn on_channel(&mut self, _id: ChannelId, _ev: ChannelEvent<'_>, _cx: &mut Context) {
            self.push("on_channel");
        }
        fn on_idle(&mut self, _cx: &mut Context) {
            self.push("on_idle");
        }
        fn on_overflow(&mut self, _cx: &mut Context) {
            self.push("on_overflow");
        }
        fn on_shutdown(&mut self, _cx: &mut Context) {
            self.push("on_shutdown");
        }
        fn on_farewell(&mut self, _cx: &mut Context) {
            self.push("on_farewell");
        }
        fn on_close(&mut self) {
            self.push("on_close");
        }
    }

    /// The least a wrapper writes: where its inner session is.
    struct Bare(Option<Log>);

    impl Wrapper for Bare {
        type Inner = Log;
        fn inner_mut(&mut self) -> Option<&mut Log> {
            self.0.as_mut()
        }
    }

    fn cx() -> Context {
        Context::new(ConnInfo {
            id: 1,
            peer: "127.0.0.1:1".parse().unwrap(),
            local: "127.0.0.1:2".parse().unwrap(),
            cred: None,
        })
    }

    /// Every callback of the contract, once, on `s` (as a `Session`: what drivers see).
    fn every_callback(s: &mut impl Session) -> usize {
        let mut cx = cx();
        let msg = Message {
            topic: "t".into(),
            from: 2,
            body: Arc::from(&b"m"[..]),
        };
        s.on_open(&mut cx);
        let used = s.on_data(b"abc", &mut cx);
        s.on_eof(&mut cx);
        s.on_hangup(&mut cx);
        s.on_message(&msg, &mut cx);
        s.on_timer(Timer("t"), &mut cx);
        s.on_task_done(7, &mut cx);
        s.on_drained(&mut cx);
        s.on_secure(&mut cx);
        s.on_channel(0, ChannelEvent::Eof, &mut cx);
        s.on_idle(&mut cx);
        s.on_overflow(&mut cx);
        s.on_shutdown(&mut cx);
        s.on_farewell(&mut cx);
        s.on_close();
        used
    }

    #[test]
    fn a_wrapper_forwards_what_it_does_not_override() {
        let (inner, log) = Log::new(false);
        let mut w = Bare(Some(inner));
        assert_eq!(every_callback(&mut w), 2, "the inner session's count");
        let mut got = log.lock().unwrap().clone();
        assert_eq!(got.len(), contract().len(), "each once: {got:?}");
        assert!(got.contains(&"on_secure"));
        got.sort();
        assert_eq!(got, contract());
    }

    #[test]
    fn without_an_inner_session_the_defaults_drop_input_and_close() {
        let mut w = Bare(None);
        let mut cx = cx();
        assert_eq!(Session::on_data(&mut w, b"abc", &mut cx), 3);
        Session::on_eof(&mut w, &mut cx);
        Session::on_shutdown(&mut w, &mut cx);
        Session::on_timer(&mut w, Timer("t"), &mut cx);
        Session::on_task_done(&mut w, 7, &mut cx);
        let acts: Vec<_> = cx.take_actions().collect();
        assert_eq!(acts.len(), 2, "{acts:?}");
        assert!(acts.iter().all(|a| matches!(a, crate::Action::Close)));
    }
}
