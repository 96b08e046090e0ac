#!/usr/bin/env bash
# Makes the README's pictures: a screenshot of the chat page (headless Chromium, with a terminal
# member and an announcement in the room) and the lab's efficiency chart. Writes
# docs/images/chat.png and docs/images/efficiency.svg.
#
#   scripts/docs-images.sh          # needs chromium (apt-get install chromium) and python3
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib/bench.sh
command -v chromium >/dev/null || { echo "docs-images: chromium is missing (apt-get install chromium)" >&2; exit 1; }
bench_bin
ONLY=${ONLY:-all}   # chat | efficiency | all
WORK=$(mktemp -d /tmp/bingfa-docs.XXXXXX)
PIDS=()
cleanup() {
  for p in "${PIDS[@]:-}"; do [ -n "$p" ] && kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

"$BIN" chat serve --bind 127.0.0.1:0 --web 127.0.0.1:0 --admin-socket "$WORK/admin.sock" \
  >"$WORK/chat.out" 2>"$WORK/chat.err" &
PIDS+=($!)
for _ in $(seq 100); do [ "$(grep -c listening "$WORK/chat.out" || true)" -ge 2 ] && break; sleep 0.1; done
CHAT=$(awk '/^chat listening on/ {print $4}' "$WORK/chat.out")
WEB=$(awk '/^web listening on/ {print $4}' "$WORK/chat.out")

# A terminal member who talks once the browser member (alice) has joined, and an announcement.
python3 - "$CHAT" "$BIN" "$WORK/admin.sock" <<'PY' &
import socket, subprocess, sys, time
host, port = sys.argv[1].rsplit(":", 1)
s = socket.create_connection((host, int(port)), timeout=30)
f = s.makefile("rw", newline="\n")
f.readline(); f.write("bob\n"); f.flush()
deadline = time.time() + 30
while time.time() < deadline:
    line = f.readline()
    if line.startswith("* alice joined"):
        break
for text in ["hi alice, welcome to the room", "the FTP server is on the landing page too"]:
    time.sleep(0.4); f.write(text + "\n"); f.flush()
time.sleep(0.4)
subprocess.run([sys.argv[2], "chat", "announce", "--admin-socket", sys.argv[3],
                "maintenance at noon: the room stays up"], check=True)
time.sleep(0.5)
f.write("/who\n"); f.flush()
time.sleep(20)
PY
PIDS+=($!)

# Chromium loads the page and joins as alice (?name=); the shot is taken over the DevTools
# protocol once the exchange has happened (headless --screenshot fires at load, too early).
python3 -c 'import websockets' 2>/dev/null || python3 -m pip install --quiet websockets
python3 - "http://$WEB/?name=alice" "$PWD/docs/images/chat.png" "$WORK" <<'PY'
import asyncio, base64, json, re, subprocess, sys, time, urllib.request
import websockets
url, out, work = sys.argv[1:4]
chrome = subprocess.Popen(
    ["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
     "--hide-scrollbars", "--window-size=900,640", "--remote-debugging-port=0",
     "--remote-debugging-address=127.0.0.1", f"--user-data-dir={work}/chrome", "about:blank"],
    stderr=subprocess.PIPE, text=True)
try:
    port = None
    deadline = time.time() + 30
    while port is None and time.time() < deadline:
        m = re.search(r"ws://127.0.0.1:(\d+)/", chrome.stderr.readline())
        port = m and m.group(1)
    pages = json.load(urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list"))
    target = next(p for p in pages if p["type"] == "page")["webSocketDebuggerUrl"]

    async def shoot():
        async with websockets.connect(target, max_size=None) as ws:
            async def call(i, method, params=None):
                await ws.send(json.dumps({"id": i, "method": method, "params": params or {}}))
                while True:
                    msg = json.loads(await asyncio.wait_for(ws.recv(), 30))
                    if msg.get("id") == i:
                        return msg.get("result", {})
            await call(1, "Page.navigate", {"url": url})
            await asyncio.sleep(5)
            shot = await call(2, "Page.captureScreenshot", {"format": "png"})
            open(out, "wb").write(base64.b64decode(shot["data"]))
    asyncio.run(shoot())
finally:
    chrome.kill()
    chrome.wait()
PY
echo "wrote docs/images/chat.png"

[ "$ONLY" = chat ] && exit 0
"$BIN" lab efficiency --rounds 3 --chart "$PWD/docs/images/efficiency.svg" >"$WORK/eff.txt"
cat "$WORK/eff.txt"
echo "wrote docs/images/efficiency.svg"
