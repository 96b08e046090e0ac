//! Parent and child PIDs (the course's first `os.fork()` / `Process` exercise).
//!
//! Run: `cargo run -p bingfa-mp --example parent_child`

use bingfa_mp::{current_process, parent_process, Process, StartMethod};

fn report(label: String) -> (u32, u32) {
    let me = current_process();
    let parent = parent_process().expect("a child has a parent");
    println!(
        "[{label}] I am {} (pid {}), my parent is {} (pid {})",
        me.name, me.pid, parent.name, parent.pid
    );
    (me.pid, parent.pid)
}

fn main() {
    let _rt = bingfa_mp::init();
    let me = current_process();
    println!("[parent] I am {} (pid {})", me.name, me.pid);
    for method in [StartMethod::Spawn, StartMethod::Fork] {
        let child = Process::builder()
            .name(format!("child-{method:?}").to_lowercase())
            .start_method(method)
            .spawn(report, format!("{method:?}"))
            .expect("start child");
        let pid = child.pid();
        let (child_pid, its_parent) = child.join().expect("child ran");
        assert_eq!((child_pid, its_parent), (pid, me.pid));
        println!("[parent] {method:?} child {pid} finished and was reaped");
    }
}
