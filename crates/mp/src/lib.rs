//! bingfa-mp: Python's `multiprocessing`, made safe and fast in Rust.

/// Held by `main` for its whole life; see [`init`].
pub struct Runtime(());

/// The first call in `main`. A child started by re-exec enters here and never returns.
pub fn init() -> Runtime {
    Runtime(())
}
