"""`bingfa serve` under the soak: a private CA and leaf certificate (re-issued for each SIGHUP
reload), the server started on port 0 in its own process group, its ready lines read, the
reload checked on every TLS face, and the graceful stop whose exit code is part of the verdict.
"""

import hashlib
import os
import signal
import socket
import ssl
import subprocess
import threading
import time

# The ready lines `bingfa serve --tls-cert ...` prints, one per listener.
FACES = ("chat", "web-tls", "ftp", "https")


class Certs:
    """A CA the clients trust, and a leaf for localhost / 127.0.0.1 that `issue` replaces."""

    def __init__(self, d):
        self.dir = d
        self.ca, self.ca_key = f"{d}/ca.pem", f"{d}/ca.key"
        self.cert, self.key = f"{d}/leaf.pem", f"{d}/leaf.key"
        self.serial = 0
        openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                "-nodes", "-keyout", self.ca_key, "-out", self.ca, "-days", "3",
                "-subj", "/CN=bingfa soak CA")
        self.issue()

    def issue(self):
        """A new key and certificate, written beside the live ones and renamed over them (the
        server reads both at SIGHUP, after both renames). Returns the new leaf's SHA-256."""
        self.serial += 1
        ext = f"{self.dir}/ext.cnf"
        with open(ext, "w") as f:
            f.write("subjectAltName=DNS:localhost,IP:127.0.0.1\n")
        key, csr, crt = f"{self.key}.new", f"{self.dir}/leaf.csr", f"{self.cert}.new"
        openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                "-keyout", key, "-out", csr, "-subj", f"/CN=localhost soak {self.serial}")
        openssl("x509", "-req", "-in", csr, "-CA", self.ca, "-CAkey", self.ca_key,
                "-set_serial", str(1000 + self.serial), "-out", crt, "-days", "2",
                "-extfile", ext)
        os.rename(key, self.key)
        os.rename(crt, self.cert)
        return self.fingerprint()

    def fingerprint(self):
        with open(self.cert) as f:
            return hashlib.sha256(ssl.PEM_cert_to_DER_cert(f.read())).hexdigest()

    def context(self):
        ctx = ssl.create_default_context(cafile=self.ca)
        return ctx


def openssl(*args):
    subprocess.run(["openssl", *args], check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)


class Serve:
    """The `bingfa serve` process (group leader of every service it starts)."""

    def __init__(self, run, binary, model, root, certs, workdir, extra):
        self.run = run
        self.addrs = {}
        args = [binary, "serve", "--model", model, "--root", root, "--ftp-anonymous", "write",
                "--tls-cert", certs.cert, "--tls-key", certs.key,
                "--http-bind", "127.0.0.1:0", "--chat-bind", "127.0.0.1:0",
                "--web-bind", "127.0.0.1:0", "--ftp-bind", "127.0.0.1:0",
                # Room for the hostile name-less flood from its own address, and the members'
                # paced joins from theirs (the limit is per address).
                "--chat-max-per-ip", "32", *extra]
        # The scratch directory's name is this machine's: logged as $WORK.
        run.log("starting: " + " ".join(args).replace(workdir, "$WORK"))
        self.out = open(f"{workdir}/serve.stdout", "w")
        self.err = open(f"{workdir}/serve.stderr", "w")
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=self.err,
                                     stdin=subprocess.DEVNULL, start_new_session=True, text=True)
        with open(f"{workdir}/serve.pgid", "w") as f:
            f.write(str(self.proc.pid))
        self.ready = threading.Event()
        threading.Thread(target=self._read, daemon=True).start()
        if not self.ready.wait(60):
            raise RuntimeError(f"serve did not print its ready lines within 60 s "
                               f"(got {sorted(self.addrs)}; see {workdir}/serve.stderr)")

    def _read(self):
        for line in self.proc.stdout:
            self.out.write(line)
            self.out.flush()
            face, sep, addr = line.strip().partition(" listening on ")
            if sep:
                host, _, port = addr.rpartition(":")
                self.addrs[face] = (host, int(port))
                if all(f in self.addrs for f in FACES):
                    self.ready.set()

    def alive(self):
        return self.proc.poll() is None

    def services(self):
        """pid -> name of serve's direct children (the http, chat and ftp services)."""
        out = {}
        for pid in os.listdir("/proc"):
            if not pid.isdigit():
                continue
            try:
                with open(f"/proc/{pid}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
                if ppid != self.proc.pid:
                    continue
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    argv = f.read().split(b"\0")
                out[int(pid)] = argv[1].decode() if len(argv) > 1 else "?"
            except (OSError, IndexError, ValueError):
                pass
        return out

    def hup(self):
        """SIGHUP to `bingfa serve`, as an operator sends it: serve passes it on to every
        service, each of which re-reads its certificate. Returns the services' pids."""
        svcs = self.services()
        self.proc.send_signal(signal.SIGHUP)
        return svcs

    def stop(self, grace=30):
        """SIGTERM and wait: the exit code, or None if it had to be killed."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(grace)
        except subprocess.TimeoutExpired:
            self.kill()
            return None

    def kill(self):
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            pass


def peer_fingerprint_tls(addr, ctx):
    """SHA-256 of the certificate a plain TLS listener (HTTPS, the chat page) presents now."""
    with socket.create_connection(addr, timeout=10) as s:
        with ctx.wrap_socket(s, server_hostname="localhost") as t:
            return hashlib.sha256(t.getpeercert(binary_form=True)).hexdigest()


def peer_fingerprint_ftp(addr, ctx):
    """...and the one FTP's AUTH TLS presents."""
    import ftplib
    f = ftplib.FTP_TLS(context=ctx, timeout=10)
    f.connect(addr[0], addr[1])
    try:
        f.auth()
        return hashlib.sha256(f.sock.getpeercert(binary_form=True)).hexdigest()
    finally:
        f.close()


def reload_loop(run, serve, certs, every):
    """Every `every` s: a new certificate, SIGHUP, then each TLS face must present it within
    10 s (new connections get it; open ones, the members and transfers, carry on)."""
    ctx = certs.context()
    faces = [("https", peer_fingerprint_tls), ("web-tls", peer_fingerprint_tls),
             ("ftp", peer_fingerprint_ftp)]
    while not run.stopping:
        for _ in range(int(every * 10)):
            if run.stopping:
                return
            time.sleep(0.1)
        want = certs.issue()
        svcs = serve.hup()
        run.count("reloads")
        for face, probe in faces:
            deadline, got = time.monotonic() + 10, None
            while time.monotonic() < deadline:
                try:
                    got = probe(serve.addrs[face], ctx)
                except (OSError, EOFError) as e:
                    got = f"error {e!r}"
                if got == want:
                    break
                time.sleep(0.3)
            if got != want:
                run.fail(f"SIGHUP reload #{certs.serial - 1}: {face} still presents {got} "
                         f"10 s after the signal, not the new certificate {want[:16]} "
                         f"(signalled {svcs})")
        run.log(f"reload #{certs.serial - 1}: every TLS face presents the new certificate")
