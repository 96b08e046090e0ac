"""Shared state of one soak run: the failures seen, the counters every driver adds to, the log.

Every driver reports into one `Run`: `fail(reason)` records a failure (the run's verdict is
FAIL if there is any), `count(name, n)` adds to the figures the summary prints. Kept in one
object so the verdict and the BENCHMARKS table come from the same numbers.
"""

import collections
import sys
import threading
import time


class Run:
    def __init__(self, log_path):
        self.t0 = time.monotonic()
        self.failures = []
        self.counters = collections.Counter()
        self.lock = threading.Lock()  # FTP workers are threads
        self.log_file = open(log_path, "a", buffering=1)
        self.stopping = False  # set when the load phase ends: drivers finish what they do

    def now(self):
        return time.monotonic() - self.t0

    def log(self, msg):
        line = f"[{self.now():8.1f}s] {msg}"
        self.log_file.write(line + "\n")
        print(line, file=sys.stderr, flush=True)

    def fail(self, reason):
        with self.lock:
            self.failures.append(f"{self.now():.1f}s: {reason}")
            # A failure that repeats (one per message) is logged a few times, counted always.
            if len(self.failures) <= 50:
                self.log(f"FAIL: {reason}")

    def count(self, name, n=1):
        with self.lock:
            self.counters[name] += n
