//! The admin socket's session: each line (`announce TEXT`, or just `TEXT`) is published as an
//! announcement, which every member gets as exactly `* admin: TEXT` in the room's one order;
//! the tool gets `* announced` back once the hub has it. Only local processes of the server's
//! user can connect (the socket is 0600); the peer's credentials are logged.

use crate::event::{Event, TOPIC};
use bingfa_net::{Context, Session};

pub struct AdminSession {
    max_line: usize,
}

impl AdminSession {
    pub fn new(max_line: usize) -> Self {
        AdminSession { max_line }
    }
}

/// The text of an admin line, or what is wrong with it.
pub fn announcement(line: &[u8], max_line: usize) -> Result<String, &'static str> {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    if line.len() > max_line {
        return Err("! announcement too long\n");
    }
    let text = std::str::from_utf8(line).map_err(|_| "! invalid UTF-8\n")?;
    let text = text.strip_prefix("announce ").unwrap_or(text).trim();
    if text.is_empty() {
        return Err("! nothing to announce\n");
    }
    Ok(text.to_string())
}

impl Session for AdminSession {
    fn on_open(&mut self, cx: &mut Context) {
        if let Some(c) = cx.info().cred {
            tracing::info!(pid = c.pid, uid = c.uid, "admin connection");
        }
    }

    fn on_data(&mut self, input: &[u8], cx: &mut Context) -> usize {
        let Some(i) = input.iter().position(|&b| b == b'\n') else {
            if input.len() > self.max_line + 1 {
                cx.write(b"! announcement too long\n");
                cx.close();
                return input.len();
            }
            return 0;
        };
        match announcement(&input[..i], self.max_line) {
            Ok(text) => {
                cx.publish(TOPIC, &Event::Announce(text).encode());
                cx.write(b"* announced\n");
            }
            Err(e) => cx.write(e.as_bytes()),
        }
        i + 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines() {
        assert_eq!(announcement(b"announce hi all", 100), Ok("hi all".into()));
        assert_eq!(announcement(b"hi all\r", 100), Ok("hi all".into()));
        assert!(announcement(b"announce ", 100).is_err());
        assert!(announcement(&[0xff], 100).is_err());
        assert!(announcement(b"toolong", 3).is_err());
    }
}
