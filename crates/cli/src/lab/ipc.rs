//! `bingfa lab ipc`: bingfa-mp's IPC beside CPython's multiprocessing.

use bingfa_lab::{ipc, table};

#[derive(clap::Args)]
pub(super) struct Args {
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
    /// Fewer iterations: a smoke run, not a measurement.
    #[arg(long)]
    quick: bool,
    /// Don't run the CPython anchor.
    #[arg(long)]
    no_python: bool,
}

pub(super) fn run(a: Args) -> anyhow::Result<()> {
    let Args {
        json,
        quick,
        no_python,
    } = a;
    let load_before = ipc::load_average();
    let pb = bingfa_lab::progress::spinner("ipc");
    let figs = ipc::run(ipc::Options { quick, no_python });
    pb.finish_and_clear();
    let load_after = ipc::load_average();
    if json {
        println!("{}", serde_json::to_string_pretty(&figs)?);
        return Ok(());
    }
    let mut rows = vec![vec![
        "measure".to_string(),
        "bingfa".into(),
        "ipc-channel".into(),
        "CPython".into(),
        "ratio".into(),
        "target".into(),
    ]];
    for f in &figs {
        rows.push(vec![
            f.what.to_string(),
            table::human(f.bingfa, f.unit),
            f.ipc_channel
                .map_or("-".into(), |c| table::human(c, f.unit)),
            f.cpython.map_or("-".into(), |c| table::human(c, f.unit)),
            f.speedup().map_or("-".into(), |s| format!("{s:.1}×")),
            f.target.map_or("-".into(), |t| format!("≥ {t}×")),
        ]);
    }
    print!("{}", table::render(&rows));
    println!("load average (1 5 15 min): {load_before} before, {load_after} after");
    Ok(())
}
