"""CPython anchor for the pool rows of `bingfa lab ipc`: Pool.apply_async and
Pool.map(chunksize=1) throughput on a trivial task, a pool of cpu_count() workers.

Start method: spawn, the same as bingfa-mp's default (`--fork` to compare; the steady-state
rate is the same within noise, because the pool is warmed up before the clock starts). Each
figure is the median of REPEAT runs. Prints one JSON object.
Usage: python3 pool_bench.py [--quick] [--fork]
"""
import json
import multiprocessing as mp
import statistics
import sys
import time

QUICK = "--quick" in sys.argv
# --once: one round; `lab ipc` alternates rounds with the Rust side and takes medians.
REPEAT = 1 if "--once" in sys.argv else (3 if QUICK else 5)
N = 20_000 if QUICK else 100_000
METHOD = "fork" if "--fork" in sys.argv else "spawn"


def inc(x):
    return x + 1


def warm_pool():
    pool = mp.get_context(METHOD).Pool(mp.cpu_count())
    pool.map(inc, range(1000 * mp.cpu_count()), chunksize=1)
    return pool


def apply_async_tasks_per_s():
    with warm_pool() as pool:
        t = time.perf_counter()
        results = [pool.apply_async(inc, (i,)) for i in range(N)]
        for i, r in enumerate(results):
            assert r.get() == i + 1
        return N / (time.perf_counter() - t)


def map_chunksize1_tasks_per_s():
    with warm_pool() as pool:
        t = time.perf_counter()
        out = pool.map(inc, range(N), chunksize=1)
        dt = time.perf_counter() - t
        assert len(out) == N and out[-1] == N
        return N / dt


def main():
    print(
        json.dumps(
            {
                "pool_apply_async_tasks_per_s": statistics.median(
                    apply_async_tasks_per_s() for _ in range(REPEAT)
                ),
                "pool_map_chunksize1_tasks_per_s": statistics.median(
                    map_chunksize1_tasks_per_s() for _ in range(REPEAT)
                ),
                "start_method": METHOD,
            }
        )
    )


if __name__ == "__main__":
    main()
