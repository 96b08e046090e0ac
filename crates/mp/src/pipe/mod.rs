//! `Pipe`: Python's `multiprocessing.Pipe`. Each direction is a [lane](lane): a ring of
//! `[seq][len][postcard bytes]` records in shared memory, so a message moves with a `memcpy`
//! and a counter store, without a system call while the reader is awake. Beside the lanes, a
//! Unix stream socket (duplex) or an OS pipe (simplex) is the reader's doorbell (one byte,
//! rung only when the reader sleeps) and tells each side when the other is gone: the kernel
//! closes it with a dead process. A sender SIGKILLed in the middle of a message can tear only
//! its lane record, which the lane detects and reports as [`IpcError::Torn`].
//!
//! Ends travel to children as spawn arguments. Moving an end into `spawn` closes the parent's
//! copy, which is what makes EOF work: a reader gets [`IpcError::Eof`] once every writer is gone.

mod end;
mod lane;

use std::marker::PhantomData;
use std::os::fd::{AsRawFd, RawFd};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{de::DeserializeOwned, Deserialize, Deserializer, Serialize, Serializer};

use crate::error::IpcError;
use crate::handle::Tracked;
use crate::{codec, sys};
use end::End;

/// Largest message a pipe carries: 1 GiB. Larger sends fail with `MessageTooLarge` before
/// anything is written; a record claiming more is reported as corrupt.
pub const MAX_MESSAGE: usize = 1 << 30;

/// Creates pipes.
pub struct Pipe;

impl Pipe {
    /// Two connected ends; each can send and receive (Python's `Pipe()`).
    pub fn duplex<T>() -> Result<(Connection<T>, Connection<T>), IpcError> {
        let (a, b) = Tracked::create_pair(sys::socketpair)?;
        let (ab, ba) = (
            Arc::new(lane::new_segment()?),
            Arc::new(lane::new_segment()?),
        );
        Ok((
            Connection::from_end(End::new(a, Some(ab.clone()), Some(ba.clone()))),
            Connection::from_end(End::new(b, Some(ba), Some(ab))),
        ))
    }

    /// A one-way pipe `(receiver, sender)` (Python's `Pipe(duplex=False)`).
    pub fn simplex<T>() -> Result<(Receiver<T>, Sender<T>), IpcError> {
        let (r, w) = Tracked::create_pair(sys::pipe)?;
        let lane = Arc::new(lane::new_segment()?);
        Ok((
            Receiver {
                end: End::new(r, None, Some(lane.clone())),
                _t: PhantomData,
            },
            Sender {
                end: End::new(w, Some(lane), None),
                _t: PhantomData,
            },
        ))
    }
}

macro_rules! sending {
    () => {
        /// Send one message; returns once it is handed to the kernel.
        pub fn send(&mut self, value: &T) -> Result<(), IpcError>
        where
            T: Serialize,
        {
            self.end.send(value)
        }

        /// Send raw bytes as one message (pair with `recv_bytes`).
        pub fn send_bytes(&mut self, bytes: &[u8]) -> Result<(), IpcError> {
            self.end.send_bytes(bytes)
        }
    };
}

macro_rules! receiving {
    () => {
        /// Receive one message, blocking. `Err(Eof)` once the other end is closed and drained.
        pub fn recv(&mut self) -> Result<T, IpcError>
        where
            T: DeserializeOwned,
        {
            self.end.recv_with(None, |b| Ok(codec::decode(b)?))
        }

        /// Receive one message, waiting at most `timeout` (`Err(Timeout)`).
        pub fn recv_timeout(&mut self, timeout: Duration) -> Result<T, IpcError>
        where
            T: DeserializeOwned,
        {
            self.end
                .recv_with(Some(Instant::now() + timeout), |b| Ok(codec::decode(b)?))
        }

        /// Receive one message as raw bytes.
        pub fn recv_bytes(&mut self) -> Result<Vec<u8>, IpcError> {
            self.end.recv_with(None, |b| Ok(b.to_vec()))
        }

        /// Receive one message as raw bytes, waiting at most `timeout` (`Err(Timeout)`; a
        /// message whose body was still arriving is kept for the next receive).
        pub fn recv_bytes_timeout(&mut self, timeout: Duration) -> Result<Vec<u8>, IpcError> {
            self.end
                .recv_with(Some(Instant::now() + timeout), |b| Ok(b.to_vec()))
        }

        /// Receive one message's raw bytes into `buf`, replacing its contents and reusing its
        /// allocation (Python's `recv_bytes_into`). Returns the message length.
        pub fn recv_bytes_into(&mut self, buf: &mut Vec<u8>) -> Result<usize, IpcError> {
            self.end.recv_into(buf)
        }

        /// Is there something to read (a message, or EOF) within `timeout`?
        pub fn poll(&self, timeout: Duration) -> Result<bool, IpcError> {
            self.end.poll(timeout)
        }
    };
}

macro_rules! handle_impls {
    ($ty:ident) => {
        impl<T> $ty<T> {
            /// Close this end now; later calls on it return `Err(Closed)`.
            pub fn close(&mut self) {
                self.end.close();
            }

            /// True once `close()` was called on this end.
            pub fn is_closed(&self) -> bool {
                self.end.fd.is_none()
            }
        }

        impl<T> AsRawFd for $ty<T> {
            fn as_raw_fd(&self) -> RawFd {
                self.end.fd.as_ref().map_or(-1, |f| f.as_raw_fd())
            }
        }

        impl<T> Serialize for $ty<T> {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                self.end.serialize(s)
            }
        }

        impl<'de, T> Deserialize<'de> for $ty<T> {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                Ok($ty {
                    end: End::deserialize(d)?,
                    _t: PhantomData,
                })
            }
        }
    };
}

/// A duplex end.
#[derive(Debug)]
pub struct Connection<T> {
    end: End,
    _t: PhantomData<fn(T) -> T>,
}

impl<T> Connection<T> {
    fn from_end(end: End) -> Self {
        Connection {
            end,
            _t: PhantomData,
        }
    }
    sending!();
    receiving!();
}
handle_impls!(Connection);

/// The sending end of a simplex pipe.
#[derive(Debug)]
pub struct Sender<T> {
    end: End,
    _t: PhantomData<fn(T)>,
}

impl<T> Sender<T> {
    sending!();
}
handle_impls!(Sender);

/// The receiving end of a simplex pipe.
#[derive(Debug)]
pub struct Receiver<T> {
    end: End,
    _t: PhantomData<fn() -> T>,
}

impl<T> Receiver<T> {
    receiving!();
}
handle_impls!(Receiver);
