"""The soak's driver: start `bingfa serve` with every service over TLS, drive all of it at once
for the given time (chat.py, httpload.py, ftpload.py, hostile.py, and the SIGHUP reloads of
serve.py), sample every process (procs.py), then check and report: the verdict, a CSV of the
samples and an SVG of the curves (svg.py). Exit status 0 only if nothing failed.

Run through scripts/soak.sh, which builds the binary and guarantees nothing is left running.
"""

import argparse
import asyncio
import json
import os
import signal
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import chat  # noqa: E402
import ftpload  # noqa: E402
import hostile  # noqa: E402
import httpload  # noqa: E402
import procs  # noqa: E402
import serve as serve_mod  # noqa: E402
import svg  # noqa: E402
from common import Run  # noqa: E402


def duration(s):
    mult = {"s": 1, "m": 60, "h": 3600}
    return float(s[:-1]) * mult[s[-1]] if s[-1] in mult else float(s)


def parse():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("duration", type=duration, help="load time: SECONDS, or Ns, Nm, Nh")
    p.add_argument("--bin", required=True, help="the bingfa binary")
    p.add_argument("--model", default="epoll")
    p.add_argument("--workers", type=int, default=0)
    p.add_argument("--members", type=int, default=1000, help="chat places used (the room's "
                   "default cap is 1000): 2 references, the stable members, the churn slots, "
                   "the never-reader and one hostile")
    p.add_argument("--churn", type=int, default=20, help="chat members that come and go")
    p.add_argument("--rate", type=float, default=4.0, help="chat messages per second, total")
    p.add_argument("--http-rate", type=float, default=40.0, help="checked HTTP requests/s")
    p.add_argument("--keepalive", type=int, default=6, help="kept-alive HTTP connections")
    p.add_argument("--ftp-workers", type=int, default=4, help="FTP transfer threads ...")
    p.add_argument("--ftps-workers", type=int, default=2, help="... of which over FTPS")
    p.add_argument("--ftp-pause", type=float, default=1.0, help="mean pause between transfers")
    p.add_argument("--slowloris", type=int, default=4)
    p.add_argument("--nameless", type=int, default=12, help="name-less chat connections held "
                   "(below the per-address limit, 32 here)")
    p.add_argument("--reload-every", type=float, default=30.0)
    p.add_argument("--sample-every", type=float, default=5.0)
    p.add_argument("--wrk-every", type=float, default=60.0, help="0: no wrk bursts")
    p.add_argument("--wrk-secs", type=int, default=5)
    p.add_argument("--wrk-conns", type=int, default=8)
    p.add_argument("--out", required=True, help="directory for the log, CSV, SVG, summary")
    p.add_argument("--work", required=True, help="scratch directory (certificates, the served "
                   "root, serve's output and process group id), made and removed by soak.sh")
    return p.parse_args()


async def soak(a, run, workdir):
    root = os.path.join(workdir, "root")
    os.makedirs(root)
    files = httpload.make_files(root)
    certs = serve_mod.Certs(workdir)
    srv = serve_mod.Serve(run, a.bin, a.model, root, certs, workdir,
                          ["--workers", str(a.workers)])
    run.log(f"ready: {srv.addrs}")
    sampler = procs.Sampler(srv.proc.pid)
    state = {"phase": "idle", "load_start": None, "load_end": None}
    tls = certs.context()
    http = hostile_ = None
    stop_early = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, lambda s=sig: (run.fail(f"interrupted by signal {s}"),
                                                    stop_early.set()))

    async def sampling():
        while True:
            sums = sampler.sample(run.now(), state["phase"])
            state["last"] = sums
            if not srv.alive():
                run.fail(f"bingfa serve exited by itself ({srv.proc.returncode}) during "
                         f"the {state['phase']} phase; see serve.stderr")
                stop_early.set()
                return
            await asyncio.sleep(a.sample_every)

    try:
        idle = None
        for _ in range(3):
            idle = sampler.sample(run.now(), "idle")
            await asyncio.sleep(1)
        sampler_task = asyncio.create_task(sampling())
        state["phase"] = "join"
        room = chat.Room(run, srv.addrs["chat"], srv.addrs["web-tls"], tls, a.members,
                         a.rate, a.churn)
        if not await room.start():
            raise RuntimeError("the chat members could not all join")
        state["phase"], state["load_start"] = "load", run.now()
        http = httpload.Http(run, srv.addrs["https"], tls, files, a.keepalive, a.http_rate)
        ftp = ftpload.Ftp(run, srv.addrs["ftp"], tls, files, a.ftp_workers, a.ftps_workers,
                          a.ftp_pause)
        hostile_ = hostile.Hostile(run, srv.addrs, tls, a.slowloris, a.nameless)
        room.load()
        http.load(a.wrk_every, a.wrk_secs, a.wrk_conns)
        ftp.load()
        hostile_.load()
        reloader = threading.Thread(target=serve_mod.reload_loop,
                                    args=(run, srv, certs, a.reload_every), daemon=True)
        reloader.start()
        end = time.monotonic() + a.duration
        next_note = time.monotonic() + 30
        while time.monotonic() < end and not stop_early.is_set():
            await asyncio.sleep(0.5)
            if time.monotonic() >= next_note:
                next_note += 30
                s = state.get("last", {})
                mem = ", ".join(f"{k} {v['rss_kib'] // 1024} MiB/{v['fds']} fd"
                                for k, v in sorted(s.items()))
                with open("/proc/loadavg") as f:
                    la = " ".join(f.read().split()[:3])
                run.log(f"progress: {dict(run.counters)}; {mem}; failures {len(run.failures)}; "
                        f"load average {la}")
        state["phase"], state["load_end"] = "finish", run.now()
        run.stopping = True
        run.log("load phase over: finishing the clients and checking")
        await hostile_.finish()
        await room.finish()
        await http.finish()
        await asyncio.to_thread(ftp.finish)
        await asyncio.to_thread(reloader.join, 60)
        sampler_task.cancel()
        # Every client is gone: each service's descriptors and threads go back to idle.
        state["phase"] = "drained"
        deadline, bad = time.monotonic() + 30, ["not sampled"]
        peaks = procs.load_peaks(sampler.rows)
        while time.monotonic() < deadline and bad:
            bad = procs.check_drain(run, idle, sampler.sample(run.now(), "drained"), peaks)
            await asyncio.sleep(1)
        for b in bad:
            run.fail(f"30 s after the clients left, {b}")
        already = not srv.alive()
        rc = srv.stop()
        if already:
            pass  # reported by the sampler when it happened
        elif rc != 0:
            run.fail(f"bingfa serve exited with {rc} at SIGTERM (None: did not stop within "
                     f"30 s, killed); see serve.stderr")
        else:
            run.log("bingfa serve exited 0 at SIGTERM")
        return sampler, state, room
    finally:
        if http:
            http.kill()
        srv.kill()


def main():
    a = parse()
    os.makedirs(a.out, exist_ok=True)
    run = Run(os.path.join(a.out, "soak.log"))
    workdir = a.work
    run.log(f"soak: {a.duration:.0f} s under --model {a.model}")
    try:
        sampler, state, room = asyncio.run(soak(a, run, workdir))
    except Exception as e:  # noqa: BLE001 - the reason goes into the verdict
        run.fail(f"the soak itself stopped: {e!r}")
        print("FAIL", *run.failures, sep="\n  ", file=sys.stderr)
        return 1
    srs = procs.series(sampler.rows)
    summary = procs.check(run, srs, state["load_start"], state["load_end"])
    sampler.write_csv(os.path.join(a.out, "samples.csv"))
    marks = [(state["load_start"], "load"),
             (state["load_start"] + procs.warmup_span(state["load_end"] - state["load_start"]),
              "warm-up over"), (state["load_end"], "end")]
    bounds = {}
    for svc, s in summary.items():
        for k, v in s.get("limits", {}).items():
            bounds.setdefault(k, {})[svc] = v
    verdict = "PASS" if not run.failures else "FAIL"
    svg.render(os.path.join(a.out, "soak.svg"),
               f"bingfa serve --model {a.model}: "
               f"{f'{a.duration / 60:.0f} min' if a.duration >= 120 else f'{a.duration:.0f} s'} "
               f"soak ({verdict}; {a.members} chat places)",
               srs, marks, bounds)
    with open("/proc/loadavg") as f:
        loadavg = f.read().split()[:3]
    out = {"model": a.model, "duration_s": a.duration, "verdict": verdict,
           "failures": run.failures, "counters": dict(run.counters), "services": summary,
           "never_reader_dropped": room.slow_kicked, "loadavg_at_end": loadavg,
           "driver_cpu_s": round(sum(os.times()[:2]), 1),
           "bounds": {"rss": f"+{procs.RSS_PCT}% + {procs.RSS_MIB} MiB over the warm-up peak",
                      "fds": f"+{procs.FDS_PCT}% + {procs.FDS_ABS} over the warm-up peak",
                      "threads": f"+{procs.THREADS_ABS} over the warm-up peak",
                      "drain": f"idle + {procs.DRAIN_FDS} fds; threads <= the load's peak"}}
    with open(os.path.join(a.out, "summary.json"), "w") as f:
        json.dump(out, f, indent=1, default=str)
    print(json.dumps(out, indent=1, default=str))
    if run.failures:
        # The server's own end first: the clients' errors after it are its consequences.
        first = sorted(run.failures, key=lambda f: "bingfa serve" not in f)
        print(f"FAIL ({len(run.failures)}):", *first[:30], sep="\n  ", file=sys.stderr)
        return 1
    print(f"PASS: {a.duration:.0f} s under --model {a.model}; results in {a.out}",
          file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
