"""HTTPS under the soak: kept-alive connections and new connections that check every body's
SHA-256 (and a range and a conditional request), at a bounded rate, plus short wrk bursts
(when wrk is installed) whose errors and non-2xx answers fail the run.
"""

import asyncio
import hashlib
import os
import random
import re
import shutil
import subprocess


def make_files(root):
    """The served files: name -> (bytes, sha256)."""
    rnd = random.Random(22)
    files = {}
    for name, size in [("small.txt", 700), ("page.html", 12_000), ("mid.bin", 200_000),
                       ("big.bin", 3_000_000)]:
        data = rnd.randbytes(size) if name.endswith(".bin") else (
            ("soak " * (size // 5 + 1))[:size]).encode()
        with open(os.path.join(root, name), "wb") as f:
            f.write(data)
        files[name] = (data, hashlib.sha256(data).hexdigest())
    return files


async def read_response(r):
    """Status, headers (lower-case) and body of one response (Content-Length framing; the
    server sends no chunked bodies for files)."""
    status = await r.readline()
    if not status:
        raise EOFError("connection closed before a response")
    code = int(status.split()[1])
    headers = {}
    while True:
        line = await r.readline()
        if line in (b"\r\n", b"\n", b""):
            break
        k, _, v = line.decode("latin-1").partition(":")
        headers[k.strip().lower()] = v.strip()
    # A 304 may carry the Content-Length of the 200 it stands for, but never a body.
    n = 0 if code == 304 else int(headers.get("content-length", "0"))
    body = await r.readexactly(n) if n else b""
    return code, headers, body


class Http:
    def __init__(self, run, addr, tls, files, keepalive, rate):
        self.run, self.addr, self.tls, self.files = run, addr, tls, files
        self.keepalive, self.rate = keepalive, rate
        self.tasks = []
        self.wrk = None

    def load(self, wrk_every, wrk_secs, wrk_conns):
        self.tasks = [asyncio.create_task(self._kept(i)) for i in range(self.keepalive)]
        self.tasks.append(asyncio.create_task(self._fresh()))
        if shutil.which("wrk") and wrk_every:
            self.wrk_task = asyncio.create_task(self._wrk(wrk_every, wrk_secs, wrk_conns))
        elif wrk_every:
            self.run.log("http: wrk not installed; the wrk bursts are skipped")

    def weighted(self):
        """Mostly small files; the 3 MB one seldom (the driver's SHA-256 and TLS cost, on a
        shared machine, is what bounds the load)."""
        w = {"small.txt": 8, "page.html": 6, "mid.bin": 5, "big.bin": 1}
        return [n for n in self.files for _ in range(w.get(n, 1))]

    async def _one(self, r, w, name, keep=True):
        """One checked request on an open connection: a GET of the whole file, a range, or a
        conditional GET that must be 304."""
        data, sha = self.files[name]
        kind = random.choice(["get", "get", "get", "range", "cond"])
        extra = "" if keep else "Connection: close\r\n"
        if kind == "range":
            a = random.randrange(len(data))
            b = min(len(data) - 1, a + random.randrange(4096))
            extra += f"Range: bytes={a}-{b}\r\n"
        if kind == "cond":
            tag = self.etags.get(name, '"none"')
            extra += f"If-None-Match: {tag}\r\n"
        w.write(f"GET /{name} HTTP/1.1\r\nHost: localhost\r\n{extra}\r\n".encode())
        await w.drain()
        code, h, body = await asyncio.wait_for(read_response(r), 30)
        if "etag" in h and code == 200:
            self.etags[name] = h["etag"]
        if kind == "range":
            ok = code == 206 and body == data[a:b + 1]
        elif kind == "cond" and name in self.etags:
            ok = code in (200, 304) and (code == 304 or hashlib.sha256(body).hexdigest() == sha)
        else:
            ok = code == 200 and hashlib.sha256(body).hexdigest() == sha
        if not ok:
            self.run.fail(f"http: {kind} /{name} answered {code} with a body of {len(body)} "
                          f"bytes that does not match the file")
        self.run.count("http requests checked")
        self.run.count("http bytes checked", len(body))
        return h.get("connection", "").lower() != "close"

    etags = {}

    async def _kept(self, i):
        """A kept-alive connection: requests one after another at this connection's share of
        the rate; reconnects when the server closes it (its idle timeout)."""
        names = self.weighted()
        while not self.run.stopping:
            try:
                r, w = await asyncio.open_connection(*self.addr, ssl=self.tls,
                                                     server_hostname="localhost")
            except OSError as e:
                self.run.fail(f"http: keep-alive connect: {e!r}")
                await asyncio.sleep(1)
                continue
            self.run.count("http connections")
            try:
                for _ in range(random.randint(20, 200)):
                    if self.run.stopping:
                        break
                    if not await self._one(r, w, random.choice(names)):
                        break  # the server said it closes this one
                    await asyncio.sleep(random.expovariate(self.rate / self.keepalive))
            except (OSError, EOFError, asyncio.IncompleteReadError, asyncio.TimeoutError,
                    ValueError, IndexError) as e:
                self.run.fail(f"http: keep-alive request: {e!r}")
            finally:
                w.close()

    async def _fresh(self):
        """New connections, one request each (Connection: close), a tenth of the rate."""
        names = self.weighted()
        while not self.run.stopping:
            await asyncio.sleep(random.expovariate(max(1.0, self.rate / 10)))
            try:
                r, w = await asyncio.open_connection(*self.addr, ssl=self.tls,
                                                     server_hostname="localhost")
                self.run.count("http connections")
                try:
                    await self._one(r, w, random.choice(names), keep=False)
                    if await asyncio.wait_for(r.read(1), 10):
                        self.run.fail("http: bytes after a Connection: close response")
                finally:
                    w.close()
            except (OSError, EOFError, asyncio.IncompleteReadError, asyncio.TimeoutError,
                    ValueError, IndexError) as e:
                self.run.fail(f"http: new-connection request: {e!r}")

    async def _wrk(self, every, secs, conns):
        """`wrk -t1 -c CONNS -d SECS` on the small file every `every` s, niced."""
        url = f"https://localhost:{self.addr[1]}/small.txt"
        while not self.run.stopping:
            await asyncio.sleep(every)
            if self.run.stopping:
                break
            self.wrk = await asyncio.create_subprocess_exec(
                "nice", "-n", "10", "wrk", "-t1", f"-c{conns}", f"-d{secs}s", "--timeout", "10s",
                url, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
            out = (await self.wrk.communicate())[0].decode(errors="replace")
            self.wrk = None
            m = re.search(r"(\d+) requests in", out)
            reqs = int(m.group(1)) if m else 0
            self.run.count("wrk requests", reqs)
            bad = re.search(r"Socket errors:.*|Non-2xx or 3xx responses: \d+", out)
            if not m or bad:
                self.run.fail(f"http: wrk burst: {bad.group(0) if bad else out.strip()[-200:]}")
            else:
                rps = re.search(r"Requests/sec:\s*([\d.]+)", out)
                self.run.log(f"http: wrk burst {reqs} requests, {rps.group(1) if rps else '?'}/s")

    wrk_task = None

    async def finish(self):
        if self.wrk_task:
            # A burst under way ends by itself within its few seconds; the wait is cut short.
            if self.wrk is None:
                self.wrk_task.cancel()
            await asyncio.gather(self.wrk_task, return_exceptions=True)
        for t in self.tasks:
            try:
                await asyncio.wait_for(t, 60)
            except asyncio.TimeoutError:
                self.run.fail("http: a load task did not finish within 60 s of the end")
                t.cancel()

    def kill(self):
        if self.wrk and self.wrk.returncode is None:
            self.wrk.kill()
