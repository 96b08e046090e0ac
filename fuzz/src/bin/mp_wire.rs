//! bingfa-mp's frame decoder and payload codec on corrupt input from the peer process: bytes
//! written to one end of a socket pair are read back with `recv_frame`. It must return an
//! error or a frame whose payload came from the input (never allocating what a corrupt length
//! announces), and a payload that decodes re-encodes to bytes that decode the same.
use bingfa_mp::fuzzing::{decode, encode, recv_frame};
use std::io::Write;
use std::os::unix::net::UnixStream;

fn main() {
    // An inline frame is at most 64 KiB; anything bigger is a memfd. A corrupt header must not
    // allocate the 4 GiB its length field can say.
    bingfa_fuzz::set_limits(1 << 20, 16 << 20);
    afl::fuzz!(|data: &[u8]| {
        if data.len() > 60_000 {
            return; // must fit the socket buffer: we write it all before reading
        }
        let (mut a, b) = UnixStream::pair().unwrap();
        a.write_all(data).unwrap();
        drop(a);
        while let Ok(Some((payload, fds))) = recv_frame(&b) {
            assert!(fds.is_empty(), "descriptors from nowhere");
            assert!(payload.len() <= data.len(), "payload longer than the input");
            if let Ok(v) = decode::<(u32, String, Vec<u8>, Option<i64>)>(&payload) {
                let bytes = encode(&v).unwrap();
                assert!(bytes.len() <= payload.len());
                assert_eq!(
                    decode::<(u32, String, Vec<u8>, Option<i64>)>(&bytes).unwrap(),
                    v
                );
            }
        }
    });
}
