"""FTP under the soak: worker threads that upload random files and download them back (and the
served files), checking SHA-256 both ways, some over explicit FTPS (AUTH TLS, PROT P, with
the data connection resuming the control session as the server requires), some in one
session after another, some with a new session per transfer. Each worker deletes what it
uploaded, so the disk use stays bounded.
"""

import ftplib
import hashlib
import io
import random
import threading
import time


class ReusingFTP_TLS(ftplib.FTP_TLS):
    """Data connections resume the control connection's TLS session (README, TLS)."""

    def ntransfercmd(self, cmd, rest=None):
        conn, size = ftplib.FTP.ntransfercmd(self, cmd, rest)
        if self._prot_p:
            conn = self.context.wrap_socket(conn, server_hostname=self.host,
                                            session=self.sock.session)
        return conn, size


class Ftp:
    def __init__(self, run, addr, tls, files, workers, tls_workers, pause):
        self.run, self.addr, self.tls, self.files = run, addr, tls, files
        self.pause = pause
        self.threads = [threading.Thread(target=self._worker, args=(i, i < tls_workers),
                                         daemon=True)
                        for i in range(workers)]

    def load(self):
        for t in self.threads:
            t.start()

    def _session(self, secure):
        if secure:
            f = ReusingFTP_TLS(context=self.tls, timeout=60)
        else:
            f = ftplib.FTP(timeout=60)
        f.connect(*self.addr)
        if secure:
            f.auth()
        f.login("anonymous", "soak@")
        if secure:
            f.prot_p()
        return f

    def _worker(self, i, secure):
        rnd = random.Random(i)
        n = 0
        kind = "ftps" if secure else "ftp"
        while not self.run.stopping:
            f = None
            try:
                f = self._session(secure)
                self.run.count(f"{kind} sessions")
                for _ in range(rnd.choice([1, 1, 3, 8])):
                    if self.run.stopping:
                        break
                    n += 1
                    self._transfer(f, f"up-{i}-{n}.bin", rnd, kind)
                    time.sleep(rnd.uniform(0, 2 * self.pause))
                f.quit()
            except (OSError, EOFError, ftplib.Error) as e:
                self.run.fail(f"{kind}: worker {i}: {e!r}")
                time.sleep(1)
            finally:
                if f is not None:
                    f.close()

    def _transfer(self, f, name, rnd, kind):
        size = rnd.choice([0, 1, 1000, 1000, 65_536, 65_536, 300_000, 2_000_000])
        data = rnd.randbytes(size)
        f.storbinary(f"STOR {name}", io.BytesIO(data), blocksize=65_536)
        if name not in f.nlst():
            self.run.fail(f"{kind}: {name} is missing from NLST after its STOR")
        back = io.BytesIO()
        f.retrbinary(f"RETR {name}", back.write)
        if hashlib.sha256(back.getvalue()).digest() != hashlib.sha256(data).digest():
            self.run.fail(f"{kind}: {name}: downloaded {len(back.getvalue())} bytes differ "
                          f"from the {size} uploaded")
        if f.size(name) != size:
            self.run.fail(f"{kind}: SIZE {name} is not {size}")
        f.delete(name)
        served = rnd.choice(list(self.files))
        want, sha = self.files[served]
        got = io.BytesIO()
        f.retrbinary(f"RETR {served}", got.write)
        if hashlib.sha256(got.getvalue()).hexdigest() != sha:
            self.run.fail(f"{kind}: RETR {served} differs from the file")
        self.run.count(f"{kind} files checked", 2)
        self.run.count(f"{kind} bytes checked", 2 * size + len(want))

    def finish(self, timeout=90):
        end = time.monotonic() + timeout
        for t in self.threads:
            t.join(max(0.1, end - time.monotonic()))
            if t.is_alive():
                self.run.fail("ftp: a worker did not finish its transfer within "
                              f"{timeout} s of the end")
