//! Finding and calling the child's function: it is named by its offset from an anchor
//! function of this binary (the same in every process running it, whatever the load address),
//! called through a trampoline that decodes the arguments, and its result or panic is encoded
//! as the [`Outcome`] the parent's `join` reads.

use std::panic::{catch_unwind, AssertUnwindSafe};

use serde::{de::DeserializeOwned, Deserialize, Serialize};

use crate::codec;

use super::Run;

/// What a child sends back.
#[derive(Serialize, Deserialize)]
pub(super) enum Outcome<R> {
    Ok(R),
    Panic(String),
    Codec(String),
}

/// Signature of the monomorphised trampoline that decodes arguments and calls the function.
pub(super) type Entry = fn(usize, &[u8]) -> (Vec<u8>, i32);

#[inline(never)]
fn anchor() {}

/// A function's address as an offset from [`anchor`]: the same number names the same function in
/// any process running this binary (a re-executed child has another load address).
pub(crate) fn offset_of(addr: usize) -> usize {
    addr.wrapping_sub(anchor as fn() as usize)
}

/// The address of the function recorded by [`offset_of`], in this process.
pub(crate) fn addr_of(off: usize) -> usize {
    (anchor as fn() as usize).wrapping_add(off)
}

pub(crate) fn panic_message(p: Box<dyn std::any::Any + Send>) -> String {
    if let Some(s) = p.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = p.downcast_ref::<String>() {
        s.clone()
    } else {
        "non-string panic payload".to_string()
    }
}

fn finish<R: Serialize>(r: Result<std::thread::Result<R>, postcard::Error>) -> (Vec<u8>, i32) {
    let outcome = match r {
        Err(e) => Outcome::Codec(format!("decoding arguments in the child: {e}")),
        Ok(Err(p)) => Outcome::Panic(panic_message(p)),
        Ok(Ok(v)) => Outcome::Ok(v),
    };
    let code = if matches!(outcome, Outcome::Ok(_)) {
        0
    } else {
        1
    };
    match codec::encode(&outcome) {
        Ok(b) => (b, code),
        Err(e) => {
            let o = Outcome::<R>::Codec(format!("encoding the result in the child: {e}"));
            (codec::encode(&o).unwrap_or_default(), 1)
        }
    }
}

pub(super) fn fn_entry<A: DeserializeOwned, R: Serialize>(
    func: usize,
    args: &[u8],
) -> (Vec<u8>, i32) {
    // SAFETY: `func` is the address of an `fn(A) -> R` of this very binary, recorded by the
    // parent for exactly this instantiation of the trampoline.
    let f = unsafe { std::mem::transmute::<usize, fn(A) -> R>(func) };
    finish(codec::decode::<A>(args).map(|a| catch_unwind(AssertUnwindSafe(|| f(a)))))
}

pub(super) fn run_entry<T: Run>(_func: usize, args: &[u8]) -> (Vec<u8>, i32) {
    finish(codec::decode::<T>(args).map(|t| catch_unwind(AssertUnwindSafe(|| t.run()))))
}
