#!/usr/bin/env python3
"""Out of descriptors: how a server behaves once it cannot accept (issue 8, item 1).

Starts the bingfa-net test server (the `models` test binary in server mode) with
RLIMIT_NOFILE 64 and the echo protocol, connects 160 clients and holds them, then samples the
server's CPU (utime+stime of it and its children, from /proc) for 3 s, measures its stderr
log, and counts the clients that were refused (got the refusal or EOF) instead of hanging.

    cargo build -p bingfa-net --tests
    python3 scripts/fd-exhaustion.py "$(ls -t target/debug/deps/models-* | grep -v '\\.d$' | head -1)" epoll
"""
import os, socket, subprocess, sys, time, re
binary, model = sys.argv[1], sys.argv[2]
spec = f"{model};false;echo;0;1000;2;;false;false;0;64"
env = dict(os.environ, BINGFA_NET_TEST_SERVER=spec)
p = subprocess.Popen([binary, "--exact", "server_main", "--nocapture", "-q", "--test-threads=1"],
                     env=env, stdout=subprocess.PIPE, stderr=open("/tmp/netwt-exh.err", "wb"), text=True)
addr = None
while addr is None:
    line = p.stdout.readline()
    m = re.search(r"echo listening on ([\d.]+):(\d+)", line)
    if m: addr = (m.group(1), int(m.group(2)))
def cpu():
    t = 0
    for pid in [p.pid] + [int(x) for x in subprocess.run(["pgrep", "-P", str(p.pid)], capture_output=True, text=True).stdout.split()]:
        try:
            f = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
            t += int(f[11]) + int(f[12])
        except FileNotFoundError: pass
    return t
socks = []
for i in range(160):
    s = socket.create_connection(addr, timeout=5); socks.append(s)
time.sleep(0.5)
c0 = cpu(); t0 = time.time(); time.sleep(3); c1 = cpu(); t1 = time.time()
answered = 0
for s in socks:
    s.settimeout(0.05)
    try:
        if s.recv(100) is not None: answered += 1
    except OSError: pass
err = os.path.getsize("/tmp/netwt-exh.err")
lines = open("/tmp/netwt-exh.err", errors="replace").read().count("Too many open files")
hz = os.sysconf("SC_CLK_TCK")
print(f"{model}: server CPU {100*(c1-c0)/hz/(t1-t0):.0f}% over {t1-t0:.1f}s; log {err} bytes, {lines} 'Too many open files' lines; {answered}/160 clients refused (the refusal or EOF; the rest were admitted and are silent)")
p.terminate(); p.wait(timeout=10)
