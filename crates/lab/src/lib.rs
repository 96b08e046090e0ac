//! bingfa-lab: the course's experiments and the side-by-side benchmarks of the models, each
//! figure measured beside its anchor (CPython, nginx, …) in the same run.

pub mod chat;
pub mod ipc;
pub mod pool_bench;
pub mod python;
pub mod table;
