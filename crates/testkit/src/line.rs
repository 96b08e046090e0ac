//! [`LineClient`]: a blocking TCP client that speaks in `\n`-ended lines (the chat room's line
//! face, the test protocols of bingfa-net). Every read is bounded by the socket's timeout, so
//! a server that stays silent fails the test instead of hanging it.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// How long a line may take to arrive.
pub const READ_LIMIT: Duration = Duration::from_secs(10);

/// A line client. See the module documentation.
pub struct LineClient {
    r: BufReader<TcpStream>,
    w: TcpStream,
}

impl LineClient {
    /// Connects within 5 s; reads time out after [`READ_LIMIT`].
    pub fn connect(addr: SocketAddr) -> LineClient {
        let s = TcpStream::connect_timeout(&addr, Duration::from_secs(5))
            .unwrap_or_else(|e| panic!("connect to {addr}: {e}"));
        LineClient::from_stream(s)
    }

    /// A client on a connection made otherwise (from a chosen source address, say); reads
    /// time out after [`READ_LIMIT`].
    pub fn from_stream(s: TcpStream) -> LineClient {
        s.set_read_timeout(Some(READ_LIMIT)).unwrap();
        LineClient {
            w: s.try_clone().unwrap(),
            r: BufReader::new(s),
        }
    }

    /// Sends `line` and a `\n`.
    pub fn send(&mut self, line: &str) {
        self.w.write_all(format!("{line}\n").as_bytes()).unwrap();
    }

    /// Sends bytes as they are.
    pub fn send_raw(&mut self, bytes: &[u8]) {
        self.w.write_all(bytes).unwrap();
    }

    /// The next line, without its `\n`; panics on a timeout or an error.
    pub fn line(&mut self) -> String {
        let mut s = String::new();
        self.r.read_line(&mut s).expect("read (timed out?)");
        s.strip_suffix('\n').unwrap_or(&s).to_string()
    }

    /// Reads lines until one starts with `prefix`; returns it (panics if the server closes).
    pub fn until(&mut self, prefix: &str) -> String {
        loop {
            let l = self.line();
            assert!(!l.is_empty(), "closed while waiting for {prefix:?}");
            if l.starts_with(prefix) {
                return l;
            }
        }
    }

    /// The next line is `want`.
    pub fn expect(&mut self, want: &str) {
        assert_eq!(self.line(), want);
    }

    /// The server closed: nothing more arrives (a reset counts as closed).
    pub fn expect_closed(&mut self) {
        let mut rest = Vec::new();
        match self.r.read_to_end(&mut rest) {
            Ok(_) => assert!(rest.is_empty(), "{:?}", String::from_utf8_lossy(&rest)),
            Err(e) => assert_eq!(e.kind(), std::io::ErrorKind::ConnectionReset),
        }
    }

    /// Nothing arrives within `t`.
    pub fn expect_silence(&mut self, t: Duration) {
        self.r.get_ref().set_read_timeout(Some(t)).unwrap();
        let mut s = String::new();
        let r = self.r.read_line(&mut s);
        assert!(r.is_err(), "unexpected line {s:?}");
        self.r.get_ref().set_read_timeout(Some(READ_LIMIT)).unwrap();
    }

    /// The socket (to shut it down, or to change its timeouts).
    pub fn stream(&self) -> &TcpStream {
        &self.w
    }

    /// The client's own port.
    pub fn local_port(&self) -> u16 {
        self.w.local_addr().unwrap().port()
    }
}
