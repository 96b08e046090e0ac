//! What the FTP client reads from a (possibly hostile) server: replies and listing lines.
//! Replies stay within MAX_LINE per line and MAX_LINES lines and never read past the input;
//! a parsed listing entry's name is a non-empty piece of its line.
use bingfa_ftp::client::{parse_list_line, parse_mlsd_line, read_reply};

fn main() {
    bingfa_fuzz::set_limits(1 << 20, 32 << 20);
    afl::fuzz!(|data: &[u8]| {
        let mut r = std::io::BufReader::with_capacity(7, data);
        let mut replies = 0;
        while let Ok(rep) = read_reply(&mut r) {
            replies += 1;
            assert!((100..600).contains(&rep.code));
            assert!(!rep.lines.is_empty() && rep.lines.len() <= 10_001);
            for l in &rep.lines {
                // Lossy decoding may triple a byte (U+FFFD); never more.
                assert!(l.len() <= 3 * 8 * 1024);
            }
            assert!(replies <= data.len());
        }
        let text = String::from_utf8_lossy(data);
        for line in text.lines() {
            for e in [parse_list_line(line), parse_mlsd_line(line)]
                .into_iter()
                .flatten()
            {
                assert!(!e.name.is_empty() && e.name != "." && e.name != "..");
                assert!(line.contains(&e.name), "name {:?} not in {line:?}", e.name);
            }
        }
    });
}
