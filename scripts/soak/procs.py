"""Samples of every bingfa process (serve and all its descendants) from /proc: RSS, open
descriptors, threads and CPU, per process and summed per service, and the growth bounds the
verdict applies to them.
"""

import os
import time

TICK = os.sysconf("SC_CLK_TCK")
PAGE_KIB = os.sysconf("SC_PAGE_SIZE") // 1024


def _stat(pid):
    with open(f"/proc/{pid}/stat") as f:
        rest = f.read().rsplit(")", 1)[1].split()
    # Fields after the name: state ppid ... utime(14) stime(15) ... rss(24) (1-based in proc(5)).
    return int(rest[1]), int(rest[11]) + int(rest[12]), int(rest[21])


def tree(root):
    """pid -> ppid of `root` and every descendant."""
    parent = {}
    for p in os.listdir("/proc"):
        if p.isdigit():
            try:
                parent[int(p)] = _stat(p)[0]
            except (OSError, IndexError, ValueError):
                pass
    keep, todo = {root: parent.get(root, 0)}, [root]
    while todo:
        cur = todo.pop()
        for pid, pp in parent.items():
            if pp == cur and pid not in keep:
                keep[pid] = pp
                todo.append(pid)
    return keep


def service_of(pid, root, procs):
    """`serve`, or the service (http, chat, ftp) whose process tree holds `pid`."""
    if pid == root:
        return "serve"
    while procs.get(pid, root) != root:
        pid = procs[pid]
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().split(b"\0")[1].decode()
    except (OSError, IndexError):
        return "?"


class Sampler:
    """Each `sample()` appends one row per live process and returns the per-service sums."""

    def __init__(self, root):
        self.root = root
        self.rows = []  # (t, phase, service, pid, rss_kib, fds, threads, cpu_ticks)
        self.last_ticks = {}

    def sample(self, t, phase):
        procs = tree(self.root)
        sums = {}
        for pid in procs:
            try:
                _, ticks, rss = _stat(pid)
                with open(f"/proc/{pid}/status") as f:
                    threads = next(int(l.split()[1]) for l in f if l.startswith("Threads:"))
                fds = len(os.listdir(f"/proc/{pid}/fd"))
            except (OSError, StopIteration, ValueError, IndexError):
                continue  # it ended between the listing and the read
            svc = service_of(pid, self.root, procs)
            self.rows.append((round(t, 1), phase, svc, pid, rss * PAGE_KIB, fds, threads, ticks))
            s = sums.setdefault(svc, {"rss_kib": 0, "fds": 0, "threads": 0, "ticks": 0,
                                      "procs": 0})
            s["rss_kib"] += rss * PAGE_KIB
            s["fds"] += fds
            s["threads"] += threads
            s["ticks"] += ticks
            s["procs"] += 1
        return sums

    def write_csv(self, path):
        with open(path, "w") as f:
            f.write("t_s,phase,service,pid,rss_kib,fds,threads,cpu_ticks\n")
            for r in self.rows:
                f.write(",".join(str(x) for x in r) + "\n")


def series(rows):
    """service -> list of (t, phase, rss_kib, fds, threads, cpu_pct), summed over its processes
    at each sample; CPU % is the service's ticks since the previous sample (processes that
    ended in between are not counted, so fork's short-lived children show up only while alive)."""
    by = {}
    for t, phase, svc, pid, rss, fds, thr, ticks in rows:
        d = by.setdefault(svc, {}).setdefault(t, [phase, 0, 0, 0, {}])
        d[1] += rss
        d[2] += fds
        d[3] += thr
        d[4][pid] = ticks
    out = {}
    for svc, at in by.items():
        pts, prev, prev_t = [], {}, None
        for t in sorted(at):
            phase, rss, fds, thr, ticks = at[t]
            cpu = 0.0
            if prev_t is not None and t > prev_t:
                used = sum(v - prev.get(p, v) for p, v in ticks.items())
                cpu = 100.0 * used / TICK / (t - prev_t)
            pts.append((t, phase, rss, fds, thr, cpu))
            prev, prev_t = ticks, t
        out[svc] = pts
    return out


# The bounds (BENCHMARKS.md, Soak, states the same). Warm-up: the load's first quarter, at
# least 15 s and at most 120 s; its peak is the reference.
RSS_PCT, RSS_MIB = 25, 16        # RSS after warm-up <= peak during warm-up * 1.25 + 16 MiB
FDS_PCT, FDS_ABS = 25, 64        # descriptors after warm-up <= warm-up peak * 1.25 + 64
THREADS_ABS = 8                  # threads after warm-up <= warm-up peak + 8
DRAIN_FDS = 8                    # after the clients leave: descriptors back to idle + 8,
#                                  threads no more than the load's peak (pools start lazily)


def warmup_span(load_secs):
    return min(120.0, max(15.0, load_secs / 4))


def check(run, srs, load_start, load_end):
    """Apply the bounds to each service's series; returns a summary per service."""
    warm_end = load_start + warmup_span(load_end - load_start)
    summary = {}
    for svc, pts in sorted(srs.items()):
        idle = [p for p in pts if p[1] == "idle"]
        warm = [p for p in pts if p[1] == "load" and p[0] <= warm_end]
        after = [p for p in pts if p[1] == "load" and p[0] > warm_end]
        drained = [p for p in pts if p[1] == "drained"]
        s = {"peak_rss_kib": max(p[2] for p in pts), "peak_fds": max(p[3] for p in pts),
             "peak_threads": max(p[4] for p in pts),
             "peak_cpu": max(p[5] for p in pts)}
        if idle:
            s["idle"] = idle[-1][2:5]
        if drained:
            s["drained"] = drained[-1][2:5]
        if warm and after:
            ref_rss = max(p[2] for p in warm)
            ref_fds = max(p[3] for p in warm)
            ref_thr = max(p[4] for p in warm)
            s["warm_rss_kib"], s["final_rss_kib"] = ref_rss, after[-1][2]
            lim_rss = ref_rss * (100 + RSS_PCT) / 100 + RSS_MIB * 1024
            lim_fds = ref_fds * (100 + FDS_PCT) / 100 + FDS_ABS
            s["limits"] = {"rss": (warm_end, lim_rss), "fds": (warm_end, lim_fds),
                           "threads": (warm_end, ref_thr + THREADS_ABS)}
            for t, _, rss, fds, thr, _ in after:
                if rss > lim_rss:
                    run.fail(f"{svc}: RSS {rss // 1024} MiB at {t:.0f} s is over the bound "
                             f"{lim_rss / 1024:.0f} MiB (warm-up peak {ref_rss // 1024} MiB "
                             f"+ {RSS_PCT}% + {RSS_MIB} MiB)")
                    break
            for t, _, rss, fds, thr, _ in after:
                if fds > lim_fds:
                    run.fail(f"{svc}: {fds} descriptors at {t:.0f} s, over the bound "
                             f"{lim_fds:.0f} (warm-up peak {ref_fds} + {FDS_PCT}% + {FDS_ABS})")
                    break
            for t, _, rss, fds, thr, _ in after:
                if thr > ref_thr + THREADS_ABS:
                    run.fail(f"{svc}: {thr} threads at {t:.0f} s, over the bound "
                             f"{ref_thr + THREADS_ABS} (warm-up peak {ref_thr} + {THREADS_ABS})")
                    break
        elif svc != "serve":
            run.fail(f"{svc}: too few samples to judge growth (warm-up {len(warm)}, "
                     f"after {len(after)})")
        summary[svc] = s
    return summary


def load_peaks(rows):
    """service -> most threads it had at one sample of the load phase."""
    srs = series(rows)
    return {svc: max([p[4] for p in pts if p[1] == "load"] or [0]) for svc, pts in srs.items()}


def check_drain(run, idle, now, peak_threads):
    """After every client left: each service's descriptors back near idle, its threads no
    more than during the load. `idle` and `now` are per-service sums from `Sampler.sample`.
    Returns the failures text."""
    bad = []
    for svc, base in idle.items():
        cur = now.get(svc)
        if cur is None:
            bad.append(f"{svc}: no process left")
            continue
        if cur["fds"] > base["fds"] + DRAIN_FDS:
            bad.append(f"{svc}: {cur['fds']} descriptors after the clients left, idle was "
                       f"{base['fds']} (bound +{DRAIN_FDS})")
        if cur["threads"] > max(base["threads"], peak_threads.get(svc, 0)):
            bad.append(f"{svc}: {cur['threads']} threads after the clients left, more than "
                       f"the load's peak {peak_threads.get(svc)}")
    return bad
