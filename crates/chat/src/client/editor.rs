//! A one-line editor: the text being typed and its cursor, changed by keys and drawn as a
//! window that fits the terminal's width. No I/O here, so it is tested directly.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

/// What a key asks the caller to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Edit {
    /// Redraw the line (it or the cursor changed).
    Changed,
    /// Enter: send this line; the editor is now empty.
    Submit(String),
    /// Ctrl-C, or Ctrl-D on an empty line.
    Quit,
    /// Nothing to do.
    None,
}

#[derive(Debug, Default)]
pub(super) struct Editor {
    buf: Vec<char>,
    cursor: usize,
}

impl Editor {
    #[cfg(test)]
    pub(super) fn text(&self) -> String {
        self.buf.iter().collect()
    }

    pub(super) fn key(&mut self, k: KeyEvent) -> Edit {
        let ctrl = k.modifiers.contains(KeyModifiers::CONTROL);
        match k.code {
            KeyCode::Char('c') if ctrl => Edit::Quit,
            KeyCode::Char('d') if ctrl && self.buf.is_empty() => Edit::Quit,
            KeyCode::Char('d') if ctrl => self.delete(),
            KeyCode::Char('a') if ctrl => self.go(0),
            KeyCode::Char('e') if ctrl => self.go(self.buf.len()),
            KeyCode::Char('u') if ctrl => {
                self.buf.drain(..self.cursor);
                self.go(0)
            }
            KeyCode::Char(_) if ctrl => Edit::None,
            KeyCode::Char(c) => {
                self.buf.insert(self.cursor, c);
                self.cursor += 1;
                Edit::Changed
            }
            KeyCode::Enter => {
                self.cursor = 0;
                Edit::Submit(std::mem::take(&mut self.buf).into_iter().collect())
            }
            KeyCode::Backspace if self.cursor > 0 => {
                self.cursor -= 1;
                self.buf.remove(self.cursor);
                Edit::Changed
            }
            KeyCode::Delete => self.delete(),
            KeyCode::Left => self.go(self.cursor.saturating_sub(1)),
            KeyCode::Right => self.go((self.cursor + 1).min(self.buf.len())),
            KeyCode::Home => self.go(0),
            KeyCode::End => self.go(self.buf.len()),
            _ => Edit::None,
        }
    }

    fn go(&mut self, to: usize) -> Edit {
        self.cursor = to;
        Edit::Changed
    }

    fn delete(&mut self) -> Edit {
        if self.cursor < self.buf.len() {
            self.buf.remove(self.cursor);
            Edit::Changed
        } else {
            Edit::None
        }
    }

    /// The part of the line to show in `width` columns after a prompt of `prompt` columns,
    /// and the cursor's column. Scrolls horizontally so the cursor is always visible
    /// (one column per character: wide characters may shift it, which only costs looks).
    pub(super) fn view(&self, prompt: usize, width: usize) -> (String, usize) {
        let room = width.saturating_sub(prompt + 1).max(1);
        let start = self.cursor.saturating_sub(room);
        let end = (start + room).min(self.buf.len());
        (
            self.buf[start..end].iter().collect(),
            prompt + self.cursor - start,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn press(e: &mut Editor, keys: &str) {
        for c in keys.chars() {
            e.key(KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE));
        }
    }

    fn code(e: &mut Editor, c: KeyCode) -> Edit {
        e.key(KeyEvent::new(c, KeyModifiers::NONE))
    }

    fn ctrl(e: &mut Editor, c: char) -> Edit {
        e.key(KeyEvent::new(KeyCode::Char(c), KeyModifiers::CONTROL))
    }

    #[test]
    fn typing_editing_and_submitting() {
        let mut e = Editor::default();
        press(&mut e, "helo");
        code(&mut e, KeyCode::Left);
        press(&mut e, "l");
        assert_eq!(e.text(), "hello");
        code(&mut e, KeyCode::Home);
        code(&mut e, KeyCode::Delete);
        press(&mut e, "j");
        code(&mut e, KeyCode::End);
        code(&mut e, KeyCode::Backspace);
        press(&mut e, "y ✓");
        assert_eq!(code(&mut e, KeyCode::Enter), Edit::Submit("jelly ✓".into()));
        assert_eq!(e.text(), "");
        press(&mut e, "abc");
        code(&mut e, KeyCode::Left);
        assert_eq!(ctrl(&mut e, 'u'), Edit::Changed);
        assert_eq!(e.text(), "c");
    }

    #[test]
    fn quitting_keys() {
        let mut e = Editor::default();
        press(&mut e, "x");
        code(&mut e, KeyCode::Left);
        assert_eq!(
            ctrl(&mut e, 'd'),
            Edit::Changed,
            "Ctrl-D deletes on a non-empty line"
        );
        assert_eq!(ctrl(&mut e, 'd'), Edit::Quit);
        assert_eq!(ctrl(&mut e, 'c'), Edit::Quit);
    }

    #[test]
    fn the_view_scrolls_to_keep_the_cursor_visible() {
        let mut e = Editor::default();
        press(&mut e, "abcdefghij");
        // Prompt of 2 columns in a 10-column terminal: 7 columns of text.
        assert_eq!(e.view(2, 10), ("defghij".into(), 9));
        code(&mut e, KeyCode::Home);
        assert_eq!(e.view(2, 10), ("abcdefg".into(), 2));
        assert_eq!(e.view(2, 80), ("abcdefghij".into(), 2));
    }
}
