//! The Redis backplane's payload (`SID FROM TOPIC\n` + body), which anyone who reaches the
//! Redis can publish: decoding never reads past the payload, a decoded message re-encodes to
//! one that decodes the same, and an admissible one carries an event that re-encodes to its
//! exact body with a valid name and clean text.
use bingfa_chat::backplane::wire::{admissible, decode, encode};
use bingfa_chat::event::Event;
use bingfa_chat::name::is_valid;

const ME: &str = "00000000000000aa";

fn main() {
    bingfa_fuzz::set_limits(1 << 20, 16 << 20);
    afl::fuzz!(|data: &[u8]| {
        let Some(m) = decode(ME, data) else { return };
        assert!(m.body.len() < data.len());
        assert!(!m.topic.contains(['\n', ' ']));
        // Our own id space: encoding with our sid and decoding keeps `from`.
        let again = decode(ME, &encode(ME, &m)).expect("re-encoded payload does not decode");
        assert_eq!(
            (&*again.topic, again.from, &*again.body),
            (&*m.topic, m.from, &*m.body)
        );
        if admissible(&m) {
            let e = Event::decode(&m.body).unwrap();
            assert_eq!(e.encode(), &*m.body, "admissible event does not round-trip");
            match e {
                Event::Joined(n) | Event::Left(n) | Event::Said(n, _) => assert!(is_valid(&n)),
                Event::Announce(t) => assert!(!t.contains(['\n', '\r', '\u{1b}'])),
                Event::Notice(_) => panic!("a notice from Redis was admitted"),
            }
        }
    });
}
