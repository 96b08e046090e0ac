//! Shared `Array`s (Python's `Array('i', range(10))` and `Array('c', b'hello')`): a child
//! squares the numbers in place and upper-cases the text; the parent sees both changes.
//!
//! `cargo run -p bingfa-mp --example shared_array [-- --fork]`

use bingfa_mp::{Array, Process, StartMethod};

fn child((nums, text): (Array<i32>, Array<u8>)) {
    for x in nums.lock().unwrap().iter_mut() {
        *x *= *x;
    }
    let up = text.value().to_ascii_uppercase();
    text.set_value(&up);
}

/// Returns (numbers, text) after the child ran.
pub(crate) fn run(m: StartMethod) -> (Vec<i32>, String) {
    let nums = Array::from_slice(&(0..10).collect::<Vec<i32>>()).unwrap();
    // Room for more than the text, as a C buffer: the value is what precedes the first NUL.
    let text = Array::<u8>::new(32).unwrap();
    text.set_value(b"hello, shared memory");
    Process::builder()
        .start_method(m)
        .spawn(child, (nums.clone(), text.clone()))
        .unwrap()
        .join()
        .unwrap();
    (nums.to_vec(), text.to_string())
}

#[allow(dead_code)]
fn main() {
    let _rt = bingfa_mp::init();
    let m = if std::env::args().any(|a| a == "--fork") {
        StartMethod::Fork
    } else {
        StartMethod::Spawn
    };
    let (nums, text) = run(m);
    println!("numbers: {nums:?}");
    println!("text:    {text}");
}
