//! A response ready now, or one whose making is blocking work — a directory listing, which
//! for 100,000 entries is a `readdir` pass, a sort and megabytes of rendering — that must not
//! run on the event loop. The session hands a [`Answer::Later`] to bingfa-net's blocking pool
//! and answers when it is ready; [`Answer::wait`] makes it in place (tests, embedding).

use crate::response::Response;
use bingfa_net::blocking::Cancel;

/// The job that makes a deferred response; it may stop early once cancelled (the connection
/// is gone and nobody will read the result).
pub type Job = Box<dyn FnOnce(&Cancel) -> Response + Send>;

/// The answer to a request: ready now, or a job for the blocking pool (a directory listing).
pub enum Answer {
    /// The response, made in place.
    Now(Response),
    /// The job that makes the response, off the event loop.
    Later(Job),
}

impl Answer {
    /// The response, made here and now if it was deferred.
    pub fn wait(self) -> Response {
        match self {
            Answer::Now(r) => r,
            Answer::Later(job) => job(&Cancel::never()),
        }
    }
}

impl From<Response> for Answer {
    fn from(r: Response) -> Answer {
        Answer::Now(r)
    }
}
