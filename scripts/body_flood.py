#!/usr/bin/env python3
"""Issue 8 item 2, measured: N connections each send a GET with a body of SIZE bytes and then
stall; prints the server's resident memory (VmRSS of PID and its children) before and after.

    scripts/body_flood.py HOST:PORT PID [N=1000] [SIZE=1048576] [SENT=SIZE-1]

Each client sends SENT bytes of the body (by default all but the last byte, so every request
stays unfinished: the worst case for a server that buffers bodies).

Raise the descriptor limit first (ulimit -n 4096) for both this script and the server.
"""
import os
import socket
import sys
import time


def rss_kib(pid):
    """Resident KiB of pid and every descendant (fork/prefork children included)."""
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        try:
            with open(f"/proc/{p}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
            for t in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{t}/children") as f:
                    todo += [int(c) for c in f.read().split()]
        except FileNotFoundError:
            pass
    return total


def main():
    host, port = sys.argv[1].rsplit(":", 1)
    pid = int(sys.argv[2])
    n = int(sys.argv[3]) if len(sys.argv) > 3 else 1000
    size = int(sys.argv[4]) if len(sys.argv) > 4 else 1 << 20
    sent = int(sys.argv[5]) if len(sys.argv) > 5 else size - 1
    print(f"before: {rss_kib(pid)} KiB")
    head = f"GET /hello.txt HTTP/1.1\r\nHost: t\r\nContent-Length: {size}\r\n\r\n".encode()
    body = b"x" * sent
    conns = []
    for _ in range(n):
        s = socket.create_connection((host, int(port)), timeout=30)
        s.sendall(head + body)
        conns.append(s)
    time.sleep(2)
    print(f"after {n} x {sent} of {size} B bodies, stalled: {rss_kib(pid)} KiB")
    for s in conns:
        s.close()


if __name__ == "__main__":
    main()
