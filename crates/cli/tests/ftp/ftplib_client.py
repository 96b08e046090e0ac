"""Python's ftplib against `bingfa ftp serve` (driven by crates/cli/tests/ftp.rs).

usage: ftplib_client.py SCENARIO HOST PORT TREE PASSWORD

With FTPLIB_CAFILE=PEM in the environment every session is FTP over TLS (ftplib.FTP_TLS:
AUTH TLS, then PBSZ 0 + PROT P after the login, so every data connection is TLS too), the
server's certificate verified against PEM; the scenarios and their checks are the same.

The tree is the one `Tree::new` makes: TREE/pub (anonymous, read-only), TREE/ann (ann's home,
writable), TREE/bob (bob's, read-only), TREE/secret outside them all. Every check is exact;
a failure raises, and the traceback is the test's message.
"""
import ftplib
import io
import os
import random
import socket
import ssl
import stat
import sys
import time

scenario, HOST, PORT, TREE, PASSWORD = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5]


CAFILE = os.environ.get("FTPLIB_CAFILE")
CTX = ssl.create_default_context(cafile=CAFILE) if CAFILE else None


class ReusingFTP_TLS(ftplib.FTP_TLS):
    """FTP_TLS whose data connections resume the control connection's TLS session, as the
    server requires by default (`--tls-session-reuse required`, vsftpd's require_ssl_reuse);
    stock ftplib makes a fresh handshake and gets 522. The README shows this recipe."""

    def ntransfercmd(self, cmd, rest=None):
        conn, size = ftplib.FTP.ntransfercmd(self, cmd, rest)
        if self._prot_p:
            conn = self.context.wrap_socket(conn, server_hostname=self.host, session=self.sock.session)
        return conn, size


def new():
    """A control connection, over TLS when FTPLIB_CAFILE is set."""
    f = ReusingFTP_TLS(context=CTX) if CTX else ftplib.FTP()
    f.connect(HOST, PORT, timeout=20)
    assert f.getwelcome() == "220 bingfa FTP server ready.", f.getwelcome()
    return f


def login(f, *args):
    """Log in (FTP_TLS sends AUTH TLS first), then protect the data connections."""
    r = f.login(*args)
    if CTX:
        assert isinstance(f.sock, ssl.SSLSocket), "control connection not TLS"
        assert f.prot_p() == "200 Protection level set to Private."
    return r


def data_sock(f, s):
    """A data connection opened by hand: over TLS (resuming the control session) under PROT P."""
    if CTX:
        return CTX.wrap_socket(s, server_hostname=HOST, session=f.sock.session)
    return s


def connect(user="ann", password=PASSWORD):
    f = new()
    assert login(f, user, password) == "230 Login successful."
    return f


def ls_line(path, name):
    st = os.lstat(path)
    if stat.S_ISLNK(st.st_mode):
        try:
            real = os.path.realpath(path)
            inside = real.startswith(os.path.realpath(os.path.dirname(path)) + os.sep) or False
        except OSError:
            inside = False
        if inside:
            st = os.stat(path)
    when = time.strftime("%b %e %H:%M", time.gmtime(st.st_mtime))
    return "%s %4d ftp      ftp      %12d %s %s" % (stat.filemode(st.st_mode), st.st_nlink, st.st_size, when, name)


def retr(f, cmd):
    b = io.BytesIO()
    f.retrbinary(cmd, b.write)
    return b.getvalue()


def expect_error(code, fn, *args):
    try:
        fn(*args)
    except ftplib.all_errors as e:
        assert str(e).startswith(code), "expected %s, got %s" % (code, e)
        return str(e)
    raise AssertionError("expected %s, got success" % code)


def session():
    # Anonymous: read-only view of pub.
    f = new()
    assert login(f) == "230 Login successful."  # anonymous / anonymous@
    assert f.pwd() == "/"
    lines = []
    f.retrlines("LIST", lines.append)
    pub = os.path.join(TREE, "pub")
    want = [ls_line(os.path.join(pub, n), n) for n in ["hello.txt", "out", "sub"]]
    assert lines == want, (lines, want)
    assert f.nlst() == ["hello.txt", "out", "sub"], f.nlst()
    facts = dict(f.mlsd())
    assert facts["."]["type"] == "cdir"
    assert facts["hello.txt"]["type"] == "file" and facts["hello.txt"]["size"] == "12", facts
    assert facts["sub"]["type"] == "dir"
    assert "out" not in facts, "a link leading outside tells nothing"
    # ftplib's listings left TYPE A: SIZE is refused there (the wire size is not the file's).
    expect_error("550", f.size, "hello.txt")
    f.voidcmd("TYPE I")
    assert f.size("hello.txt") == 12
    mtime = time.strftime("%Y%m%d%H%M%S", time.gmtime(os.stat(os.path.join(pub, "hello.txt")).st_mtime))
    assert f.sendcmd("MDTM hello.txt") == "213 " + mtime
    assert f.cwd("sub") == "250 Directory successfully changed."
    assert f.pwd() == "/sub"
    assert retr(f, "RETR inner.txt") == b"inner"
    assert f.sendcmd("CDUP") == "250 Directory successfully changed."
    assert f.sendcmd("XPWD") == '257 "/" is the current directory.'
    expect_error("550", f.storbinary, "STOR nope.txt", io.BytesIO(b"x"))
    expect_error("550", f.mkd, "nope")
    expect_error("550", f.delete, "hello.txt")
    assert not os.path.exists(os.path.join(pub, "nope.txt"))
    feat = f.sendcmd("FEAT").split("\n")
    assert feat[0] == "211-Features:" and feat[-1] == "211 End", feat
    for x in ["EPRT", "EPSV", "MDTM", "PASV", "REST STREAM", "SIZE", "UTF8"]:
        assert " " + x in feat, (x, feat)
    # RFC 4217's features exactly when the server has a certificate (the TLS runs give one).
    for x in ["AUTH TLS", "PBSZ", "PROT"]:
        assert (" " + x in feat) == bool(CTX), (x, feat)
    assert f.sendcmd("SYST") == "215 UNIX Type: L8"
    assert f.sendcmd("OPTS UTF8 ON") == "200 Always in UTF8 mode."
    assert f.sendcmd("HELP").startswith("214-")
    st = f.sendcmd("STAT").split("\n")
    assert st[0] == "211-FTP server status:" and st[-1] == "211 End of status", st
    assert f.sendcmd("STAT hello.txt").split("\n")[1] == " " + ls_line(os.path.join(pub, "hello.txt"), "hello.txt")
    assert f.sendcmd("NOOP") == "200 NOOP ok."
    assert f.sendcmd("TYPE I") == "200 Switching to Binary mode."
    assert f.sendcmd("STRU F").startswith("200") and f.sendcmd("MODE S").startswith("200")
    expect_error("504", f.sendcmd, "MODE B")
    assert f.sendcmd("ALLO 100").startswith("202")
    assert f.quit() == "221 Goodbye."

    # bob: his own home, read-only.
    f = connect("bob")
    assert f.nlst() == ["bob.txt"]
    expect_error("550", f.storbinary, "STOR x", io.BytesIO(b"x"))
    f.quit()

    # ann: changes, all beneath her home.
    ann = os.path.join(TREE, "ann")
    f = connect("ann")
    assert f.mkd("dir") == "/dir"
    assert os.path.isdir(os.path.join(ann, "dir"))
    expect_error("550", f.mkd, "dir")
    f.storbinary("STOR dir/a.txt", io.BytesIO(b"abc"))
    assert f.rename("dir/a.txt", "b.txt") == "250 Rename successful."
    assert open(os.path.join(ann, "b.txt"), "rb").read() == b"abc"
    expect_error("503", f.sendcmd, "RNTO c.txt")
    expect_error("550", f.rename, "missing", "c.txt")
    expect_error("550", f.rmd, "/")
    assert f.sendcmd("XMKD d2").startswith('257 "/d2"')
    assert f.sendcmd("XRMD d2").startswith("250")
    assert f.rmd("dir") == "250 Remove directory operation successful."
    assert f.delete("b.txt") == "250 Delete operation successful."
    expect_error("550", f.delete, "b.txt")
    # UTF-8 names.
    name = "日本語 ü.txt"
    f.storbinary("STOR " + name, io.BytesIO("ü\n".encode()))
    assert open(os.path.join(ann, name), "rb").read() == "ü\n".encode()
    assert name in f.nlst()
    f.delete(name)
    # Every way of opening a data connection.
    f.storbinary("STOR d.bin", io.BytesIO(b"0123456789"))
    f.set_pasv(True)
    assert retr(f, "RETR d.bin") == b"0123456789"  # PASV
    f.set_pasv(False)
    assert retr(f, "RETR d.bin") == b"0123456789"  # PORT
    f.set_pasv(True)
    # EPSV by hand (ftplib uses it only over IPv6).
    port = int(f.sendcmd("EPSV").split("|||")[1].split("|")[0])
    s = socket.create_connection((HOST, port), timeout=10)
    assert f.sendcmd("RETR d.bin").startswith("150 ")
    s = data_sock(f, s)
    got = b""
    while True:
        b = s.recv(65536)
        if not b:
            break
        got += b
    s.close()
    assert got == b"0123456789" and f.voidresp() == "226 Transfer complete."
    # EPRT by hand.
    ls = socket.create_server((HOST, 0))
    ls.settimeout(10)
    assert f.sendcmd("EPRT |1|%s|%d|" % (HOST, ls.getsockname()[1])).startswith("200 ")
    assert f.sendcmd("RETR d.bin").startswith("150 ")
    s, _ = ls.accept()
    s = data_sock(f, s)
    got = b""
    while True:
        b = s.recv(65536)
        if not b:
            break
        got += b
    s.close()
    ls.close()
    assert got == b"0123456789" and f.voidresp() == "226 Transfer complete."
    f.delete("d.bin")
    f.quit()
    assert sorted(os.listdir(ann)) == ["out"], os.listdir(ann)


def transfers():
    ann = os.path.join(TREE, "ann")
    rnd = random.Random(10)
    big = rnd.randbytes(5 * 1024 * 1024 + 123)
    f = connect("ann")
    for pasv in (True, False):
        f.set_pasv(pasv)
        assert f.storbinary("STOR big.bin", io.BytesIO(big)) == "226 Transfer complete."
        assert open(os.path.join(ann, "big.bin"), "rb").read() == big
        assert f.size("big.bin") == len(big)
        assert retr(f, "RETR big.bin") == big
    f.set_pasv(True)
    # REST + RETR: the rest of the file.
    assert retr(f, "RETR big.bin") == big
    f.sendcmd("TYPE I")
    b = io.BytesIO()
    f.retrbinary("RETR big.bin", b.write, rest=1000000)
    assert b.getvalue() == big[1000000:]
    # An interrupted upload resumed with REST + STOR, then with APPE.
    part = big[:2000000]
    f.storbinary("STOR r.bin", io.BytesIO(part))
    f.storbinary("STOR r.bin", io.BytesIO(big[1500000:]), rest=1500000)
    assert open(os.path.join(ann, "r.bin"), "rb").read() == big
    f.storbinary("STOR a.bin", io.BytesIO(big[:3]))
    f.storbinary("APPE a.bin", io.BytesIO(big[3:10]))
    assert open(os.path.join(ann, "a.bin"), "rb").read() == big[:10]
    # STOU: a new name beside the existing one.
    f.voidcmd("TYPE I")
    conn, _ = f.ntransfercmd("STOU a.bin")
    conn.sendall(b"unique")
    conn.close()
    assert f.voidresp() == "226 Transfer complete."
    assert open(os.path.join(ann, "a.bin.1"), "rb").read() == b"unique"
    # ASCII: LF on disk, CRLF on the wire, both ways.
    open(os.path.join(ann, "t.txt"), "wb").write(b"one\ntwo\n\nthree")
    f.sendcmd("TYPE A")
    conn = f.transfercmd("RETR t.txt")
    wire = b""
    while True:
        b = conn.recv(65536)
        if not b:
            break
        wire += b
    conn.close()
    f.voidresp()
    assert wire == b"one\r\ntwo\r\n\r\nthree", wire
    f.storlines("STOR u.txt", io.BytesIO(b"x\ny\r\nz\n"))
    assert open(os.path.join(ann, "u.txt"), "rb").read() == b"x\ny\nz\n"
    f.sendcmd("TYPE I")
    for n in ["big.bin", "r.bin", "a.bin", "a.bin.1", "t.txt", "u.txt"]:
        f.delete(n)
    # A listing far bigger than a socket buffer (about 1.1 MiB): spooled, arrives whole.
    many = os.path.join(ann, "many")
    os.mkdir(many)
    names = sorted("%04d-%s" % (i, "n" * 200) for i in range(4000))
    for n in names:
        open(os.path.join(many, n), "wb").close()
    lines = []
    f.retrlines("LIST many", lines.append)
    assert lines == [ls_line(os.path.join(many, n), n) for n in names], len(lines)
    assert f.nlst("many") == names
    assert len(dict(f.mlsd("many"))) == 4001
    for n in names:
        os.unlink(os.path.join(many, n))
    f.rmd("many")
    f.quit()
    assert sorted(os.listdir(ann)) == ["out"], os.listdir(ann)


{"session": session, "transfers": transfers}[scenario]()
print("ok")
