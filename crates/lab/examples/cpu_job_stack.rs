//! Why `lab efficiency` once showed 10 threads 3.1× faster than one line on 2 cores: the old
//! CPU job forced its counters through memory (`black_box` on each step), so its speed depended
//! on where its stack slots fell. This runs the old loop and today's (`bingfa_lab::efficiency::
//! cpu_job`, counters in registers) at several stack depths, in the main thread and in a spawned
//! one, and prints each run's thread CPU time (the best of 5), so the effect and its absence can
//! be seen on any machine:
//!
//! ```sh
//! cargo run --release -p bingfa-lab --example cpu_job_stack
//! ```

use bingfa_lab::efficiency::cpu_job;

const ITERS: u64 = 50_000_000;

/// The CPU job as it was: each step goes through a stack slot.
#[inline(never)]
fn old_cpu_job(iters: u64) -> u64 {
    let (mut x, mut y, mut c) = (0u64, 0u64, 0u64);
    while c < iters {
        x = std::hint::black_box(x + 1);
        y = std::hint::black_box(y + 1);
        c += 1;
    }
    x + y
}

/// Today's job, kept out of line so that its frame sits right below the caller's padding.
#[inline(never)]
fn new_cpu_job(iters: u64) -> u64 {
    cpu_job(iters)
}

/// This thread's CPU time in microseconds.
fn thread_cpu_us() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: a valid clock id and a pointer to a live timespec.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    ts.tv_sec as u64 * 1_000_000 + ts.tv_nsec as u64 / 1000
}

/// Run `job` below `N` bytes of padding: the best of 5 runs, and the padding's address mod 64.
#[inline(never)]
fn padded<const N: usize>(job: fn(u64) -> u64) -> (u64, usize) {
    let pad = [0u8; N];
    std::hint::black_box(&pad);
    let best = (0..5)
        .map(|_| {
            let t = thread_cpu_us();
            std::hint::black_box(job(ITERS));
            thread_cpu_us() - t
        })
        .min()
        .unwrap_or(0);
    std::hint::black_box(&pad);
    (best, &pad as *const _ as usize % 64)
}

fn table(thread: &str) {
    for (name, job) in [
        ("old (memory)", old_cpu_job as fn(u64) -> u64),
        ("new (registers)", new_cpu_job),
    ] {
        let runs = [
            padded::<0>(job),
            padded::<8>(job),
            padded::<16>(job),
            padded::<24>(job),
            padded::<32>(job),
            padded::<40>(job),
            padded::<48>(job),
            padded::<56>(job),
        ];
        let ms: Vec<String> = runs
            .iter()
            .map(|(us, _)| format!("{:.1}", *us as f64 / 1000.0))
            .collect();
        println!("| {thread} | {name} | {} |", ms.join(" | "));
    }
}

fn main() {
    println!("CPU ms for {ITERS} iterations, by bytes of stack padding above the job:");
    println!("| thread | loop | 0 | 8 | 16 | 24 | 32 | 40 | 48 | 56 |");
    println!("|---|---|---|---|---|---|---|---|---|---|");
    table("main");
    std::thread::spawn(|| table("spawned"))
        .join()
        .expect("the spawned thread");
}
