//! Terminal mode: raw mode with the [`Editor`](super::editor::Editor) on the last line.
//! Incoming lines are printed above it: clear the prompt line, print the message, redraw the
//! prompt with the half-typed text and cursor where they were. A guard restores the terminal
//! however the loop ends (return, error or panic). Lines are laid out by [`super::render`]:
//! wrapped here, continuation rows indented, notices and errors styled apart.

use super::editor::{Edit, Editor};
use super::render::{self, Kind};
use super::{ClientError, Event, Outcome};
use crossterm::cursor::MoveToColumn;
use crossterm::event::{self, Event as TermEvent, KeyEventKind};
use crossterm::style::{Attribute, Color, Print, SetAttribute, SetForegroundColor};
use crossterm::terminal::{self, Clear, ClearType};
use crossterm::{execute, queue};
use std::io::Write;
use std::net::TcpStream;
use std::sync::mpsc::{self, TryRecvError};
use std::time::Duration;

const PROMPT: &str = "> ";

/// Leaves raw mode when dropped.
struct RawMode;

impl RawMode {
    fn enter() -> std::io::Result<RawMode> {
        terminal::enable_raw_mode()?;
        Ok(RawMode)
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        let _ = terminal::disable_raw_mode();
    }
}

fn redraw(out: &mut impl Write, ed: &Editor) -> std::io::Result<()> {
    let width = terminal::size().map(|(w, _)| w as usize).unwrap_or(80);
    let (text, col) = ed.view(PROMPT.len(), width);
    queue!(
        out,
        MoveToColumn(0),
        Clear(ClearType::CurrentLine),
        Print(PROMPT),
        Print(text),
        MoveToColumn(col as u16)
    )?;
    out.flush()
}

/// Print a whole line above the prompt (raw mode needs the `\r`), wrapped by us, styled by
/// its kind.
fn above(out: &mut impl Write, line: &str) -> std::io::Result<()> {
    let width = terminal::size().map(|(w, _)| w as usize).unwrap_or(80);
    queue!(out, MoveToColumn(0), Clear(ClearType::CurrentLine))?;
    let kind = render::kind(line);
    let styled = kind != Kind::Text && render::styles();
    if styled {
        queue!(out, SetAttribute(Attribute::Bold))?;
        if render::colours() {
            let c = if kind == Kind::Notice {
                Color::Cyan
            } else {
                Color::Red
            };
            queue!(out, SetForegroundColor(c))?;
        }
    }
    for (i, row) in render::rows(line, width).iter().enumerate() {
        if i > 0 {
            queue!(out, Print("\r\n"), Clear(ClearType::CurrentLine))?;
        }
        queue!(out, Print(row))?;
    }
    if styled {
        queue!(out, SetAttribute(Attribute::Reset))?;
    }
    queue!(out, Print("\r\n"))
}

pub(super) fn run(mut sock: TcpStream, rx: mpsc::Receiver<Event>) -> Result<Outcome, ClientError> {
    let mut stdout = std::io::stdout();
    let mut ed = Editor::default();
    let outcome = {
        let _raw = RawMode::enter()?;
        redraw(&mut stdout, &ed)?;
        'main: loop {
            // Everything that arrived, then the keyboard for a short while.
            loop {
                match rx.try_recv() {
                    Ok(Event::Line(l)) => {
                        above(&mut stdout, &l)?;
                        redraw(&mut stdout, &ed)?;
                    }
                    Ok(Event::Closed) | Err(TryRecvError::Disconnected) => {
                        break 'main Outcome::ServerClosed
                    }
                    Ok(Event::Input(_)) => {}
                    Err(TryRecvError::Empty) => break,
                }
            }
            if !event::poll(Duration::from_millis(30))? {
                continue;
            }
            match event::read()? {
                TermEvent::Key(k) if k.kind != KeyEventKind::Release => match ed.key(k) {
                    Edit::Changed => redraw(&mut stdout, &ed)?,
                    Edit::Submit(line) => {
                        // Leave what was sent on screen, as a shell does.
                        above(&mut stdout, &format!("{PROMPT}{line}"))?;
                        redraw(&mut stdout, &ed)?;
                        sock.write_all(format!("{line}\n").as_bytes())?;
                    }
                    Edit::Quit => break 'main Outcome::UserQuit,
                    Edit::None => {}
                },
                TermEvent::Resize(..) => redraw(&mut stdout, &ed)?,
                _ => {}
            }
        }
    };
    // Raw mode is off again here; the prompt line is replaced by the farewell.
    let msg = match outcome {
        Outcome::ServerClosed => "connection closed by server",
        _ => "bye",
    };
    execute!(
        stdout,
        MoveToColumn(0),
        Clear(ClearType::CurrentLine),
        Print(msg),
        Print("\n")
    )?;
    let _ = sock.shutdown(std::net::Shutdown::Both);
    Ok(outcome)
}
