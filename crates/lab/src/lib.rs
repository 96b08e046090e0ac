//! bingfa-lab: the course's experiments and the side-by-side benchmarks of the models, each
//! figure measured beside its anchor (CPython, nginx, …) in the same run.

pub mod chart;
pub mod chat;
pub mod efficiency;
pub mod ftp;
pub mod ipc;
pub mod load;
pub mod models;
pub mod pool_bench;
pub mod progress;
pub mod python;
pub mod spawn;
pub mod stats;
pub mod table;
