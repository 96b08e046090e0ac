"""CPython anchor for `bingfa lab ipc`: the same measurements with multiprocessing.

Prints one JSON object whose keys match the Rust side. Each figure is the median of REPEAT
runs. Usage: python3 ipc_bench.py [--quick]
"""
import json
import multiprocessing as mp
import statistics
import sys
import time

QUICK = "--quick" in sys.argv
# --once: one round; `lab ipc` alternates rounds with the Rust side and takes medians.
REPEAT = 1 if "--once" in sys.argv else (3 if QUICK else 5)


def median_of(fn):
    return statistics.median(fn() for _ in range(REPEAT))


def queue_producer(q, ready, go, n):
    ready.send(True)
    go.recv()
    for i in range(n):
        q.put(i)
    q.put(None)


def queue_msgs_per_s():
    n = 20_000 if QUICK else 100_000
    q = mp.Queue()
    ready_r, ready_w = mp.Pipe(duplex=False)
    go_r, go_w = mp.Pipe(duplex=False)
    p = mp.Process(target=queue_producer, args=(q, ready_w, go_r, n))
    p.start()
    ready_r.recv()
    t = time.perf_counter()
    go_w.send(True)
    while q.get() is not None:
        pass
    dt = time.perf_counter() - t
    p.join()
    return n / dt


def pipe_producer(w, ready, go, n):
    ready.send(True)
    go.recv()
    for i in range(n):
        w.send(i)
    w.send(None)


def pipe_msgs_per_s():
    n = 50_000 if QUICK else 200_000
    r, w = mp.Pipe(duplex=False)
    ready_r, ready_w = mp.Pipe(duplex=False)
    go_r, go_w = mp.Pipe(duplex=False)
    p = mp.Process(target=pipe_producer, args=(w, ready_w, go_r, n))
    p.start()
    w.close()
    ready_r.recv()
    t = time.perf_counter()
    go_w.send(True)
    while r.recv() is not None:
        pass
    dt = time.perf_counter() - t
    p.join()
    return n / dt


def echo(c):
    while True:
        try:
            x = c.recv()
        except EOFError:
            return
        c.send(x)


def pipe_roundtrip_us():
    n = 5_000 if QUICK else 20_000
    a, b = mp.Pipe()
    p = mp.Process(target=echo, args=(b,))
    p.start()
    b.close()
    for i in range(1000):
        a.send(i)
        a.recv()
    t = time.perf_counter()
    for i in range(n):
        a.send(i)
        a.recv()
    dt = time.perf_counter() - t
    a.close()
    p.join()
    return dt / n * 1e6


def queue_echo(inbox, outbox):
    while True:
        x = inbox.get()
        if x is None:
            return
        outbox.put(x)


def queue_roundtrip_us():
    n = 2_000 if QUICK else 10_000
    there, back = mp.Queue(), mp.Queue()
    p = mp.Process(target=queue_echo, args=(there, back))
    p.start()
    for i in range(1000):
        there.put(i)
        back.get()
    t = time.perf_counter()
    for i in range(n):
        there.put(i)
        back.get()
    dt = time.perf_counter() - t
    there.put(None)
    p.join()
    return dt / n * 1e6


MPMC = 4


def mpmc_producer(q, start, n):
    start.wait()
    for i in range(n):
        q.put(i)
    q.put(None)


def mpmc_consumer(q, start):
    start.wait()
    while q.get() is not None:
        pass


def queue_mpmc_msgs_per_s():
    n = 40_000 if QUICK else 200_000
    q = mp.Queue()
    start = mp.Barrier(2 * MPMC + 1)
    consumers = [mp.Process(target=mpmc_consumer, args=(q, start)) for _ in range(MPMC)]
    producers = [
        mp.Process(target=mpmc_producer, args=(q, start, n // MPMC)) for _ in range(MPMC)
    ]
    for p in consumers + producers:
        p.start()
    start.wait()
    t = time.perf_counter()
    for p in consumers:
        p.join()
    dt = time.perf_counter() - t
    for p in producers:
        p.join()
    return n // MPMC * MPMC / dt


def bulk_sink(r, ready, n):
    ready.send(True)
    buf = bytearray(1 << 20)
    for _ in range(n):
        r.recv_bytes_into(buf)


def pipe_bulk_bytes_per_s():
    n = 64 if QUICK else 256
    chunk = b"x" * (1 << 20)
    r, w = mp.Pipe(duplex=False)
    ready_r, ready_w = mp.Pipe(duplex=False)
    p = mp.Process(target=bulk_sink, args=(r, ready_w, n))
    p.start()
    r.close()
    ready_r.recv()
    t = time.perf_counter()
    for _ in range(n):
        w.send_bytes(chunk)
    p.join()
    dt = time.perf_counter() - t
    return n * len(chunk) / dt


def noop():
    pass


def start_join_per_s(method):
    ctx = mp.get_context(method)
    n = 5 if QUICK else 20
    if method == "fork":
        n *= 10
    t = time.perf_counter()
    for _ in range(n):
        p = ctx.Process(target=noop)
        p.start()
        p.join()
    return n / (time.perf_counter() - t)


if __name__ == "__main__":
    # Same start method as bingfa's default (spawn) for the message benchmarks.
    mp.set_start_method("spawn")
    out = {
        "queue_msgs_per_s": median_of(queue_msgs_per_s),
        "queue_mpmc_msgs_per_s": median_of(queue_mpmc_msgs_per_s),
        "queue_roundtrip_us": median_of(queue_roundtrip_us),
        "pipe_msgs_per_s": median_of(pipe_msgs_per_s),
        "pipe_roundtrip_us": median_of(pipe_roundtrip_us),
        "pipe_bulk_bytes_per_s": median_of(pipe_bulk_bytes_per_s),
        "spawn_start_join_per_s": median_of(lambda: start_join_per_s("spawn")),
        "fork_start_join_per_s": median_of(lambda: start_join_per_s("fork")),
        "python": sys.version.split()[0],
    }
    print(json.dumps(out))
