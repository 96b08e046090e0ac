//! The member commands, one file each: a line starting with `/` is a command, never a
//! message. Unknown ones get a `! ` line (and are not said to the room).

pub mod help;
pub mod quit;
pub mod who;

/// A member's `/command`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// `/who`: who is online.
    Who,
    /// `/help`: the commands.
    Help,
    /// `/quit`: leave the room.
    Quit,
    /// Any other `/word` (refused, named in the answer).
    Unknown(String),
}

impl Command {
    /// `None`: not a command (a message).
    pub fn parse(line: &str) -> Option<Command> {
        let rest = line.strip_prefix('/')?;
        let word = rest.split_whitespace().next().unwrap_or("");
        Some(match word {
            "who" => Command::Who,
            "help" => Command::Help,
            "quit" => Command::Quit,
            other => Command::Unknown(other.to_string()),
        })
    }
}

/// The reply to an unknown command.
pub fn unknown(word: &str) -> String {
    format!("! unknown command /{word} (try /help)\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse() {
        assert_eq!(Command::parse("/who"), Some(Command::Who));
        assert_eq!(Command::parse("/help me"), Some(Command::Help));
        assert_eq!(Command::parse("/quit"), Some(Command::Quit));
        assert_eq!(Command::parse("/x"), Some(Command::Unknown("x".into())));
        assert_eq!(Command::parse("hello /who"), None);
    }
}
