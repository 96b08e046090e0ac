"""CPython side of `bingfa lab efficiency`: the course's efficiency test (效率测试).

Ten CPU-bound jobs and ten IO-bound jobs, each run in one line (one after the other), on 10
threads, on 10 processes, on a Pool of cpu_count() workers, and (IO only) as 10 asyncio
coroutines. The GIL shows as threads that do not speed up CPU-bound work.

The jobs are the same as the Rust side's (crates/lab/src/efficiency.rs), sized for CPython:
- CPU: the course's `count` loop, CPU_ITERS iterations of three additions;
- IO: IO_STEPS times: wait IO_WAIT seconds (a network round trip), write 16 KiB to the job's own
  file and read it back.
Each mode runs ROUNDS times, timed on the wall clock and in CPU time (this process and the
children it reaped, user + system); prints one JSON object
{"wall": {"cpu": {mode: [secs...]}, "io": {...}}, "cpu_time": {same shape}, ...}.
Usage: python3 efficiency.py [--quick] [--rounds N]
"""
import asyncio
import json
import multiprocessing as mp
import os
import resource
import shutil
import sys
import tempfile
import threading
import time

QUICK = "--quick" in sys.argv
ROUNDS = int(sys.argv[sys.argv.index("--rounds") + 1]) if "--rounds" in sys.argv else 3
JOBS = 10
CPU_ITERS = 200_000 if QUICK else 2_000_000
IO_STEPS = 3 if QUICK else 10
IO_WAIT = 0.02
BLOCK = b"x" * 16384
# One scratch directory, made by the main process and named to its children in the environment:
# under the spawn start method every child re-imports this module, and a directory made here
# by each of them would be left behind (one per child process and pool worker).
DIR = os.environ.get("BINGFA_EFF_DIR")
if DIR is None:
    DIR = tempfile.mkdtemp(prefix="bingfa-eff-py-")
    os.environ["BINGFA_EFF_DIR"] = DIR


def cpu_job(_i=0):
    x = y = c = 0
    while c < CPU_ITERS:
        x += 1
        y += 1
        c += 1
    return x + y


def io_job(i=0):
    path = os.path.join(DIR, f"job-{i}-{os.getpid()}-{threading.get_ident()}")
    for _ in range(IO_STEPS):
        time.sleep(IO_WAIT)
        with open(path, "wb") as f:
            f.write(BLOCK)
        with open(path, "rb") as f:
            f.read()
    os.unlink(path)
    return i


async def io_coroutine(i):
    path = os.path.join(DIR, f"co-{i}")
    for _ in range(IO_STEPS):
        await asyncio.sleep(IO_WAIT)
        # Small file operations stay synchronous, as they do on the Rust side.
        with open(path, "wb") as f:
            f.write(BLOCK)
        with open(path, "rb") as f:
            f.read()
    os.unlink(path)
    return i


def one_line(job):
    for i in range(JOBS):
        job(i)


def threads(job):
    ts = [threading.Thread(target=job, args=(i,)) for i in range(JOBS)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()


def processes(job):
    ctx = mp.get_context("spawn")
    ps = [ctx.Process(target=job, args=(i,)) for i in range(JOBS)]
    for p in ps:
        p.start()
    for p in ps:
        p.join()


def pool(job):
    with mp.get_context("spawn").Pool(mp.cpu_count()) as p:
        p.map(job, range(JOBS), chunksize=1)


def coroutines(_job):
    async def main():
        await asyncio.gather(*(io_coroutine(i) for i in range(JOBS)))

    asyncio.run(main())


MODES = [("one line", one_line), ("10 threads", threads), ("10 processes", processes),
         ("pool", pool), ("coroutines", coroutines)]


def cpu_seconds():
    """User + system seconds of this process and of the children it has reaped."""
    total = 0.0
    for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN):
        r = resource.getrusage(who)
        total += r.ru_utime + r.ru_stime
    return total


def timed(f, job):
    """(wall seconds, CPU seconds) of one run; every child is joined inside it."""
    c = cpu_seconds()
    t = time.perf_counter()
    f(job)
    return time.perf_counter() - t, cpu_seconds() - c


def main():
    out = {"wall": {"cpu": {}, "io": {}}, "cpu_time": {"cpu": {}, "io": {}},
           "cpu_iters": CPU_ITERS, "io_steps": IO_STEPS, "pool_size": mp.cpu_count()}
    for kind, job in (("cpu", cpu_job), ("io", io_job)):
        for name, f in MODES:
            if name == "coroutines" and kind == "cpu":
                continue
            runs = [timed(f, job) for _ in range(ROUNDS)]
            out["wall"][kind][name] = [w for w, _ in runs]
            out["cpu_time"][kind][name] = [c for _, c in runs]
    print(json.dumps(out))


if __name__ == "__main__":
    try:
        main()
    finally:
        shutil.rmtree(DIR, ignore_errors=True)
