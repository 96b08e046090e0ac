"""The chat room under the soak: members on the line face (plain TCP) and the web face
(WebSocket over TLS), joins and leaves, one member that never reads, refused control-byte
lines, and the exactly-once check of every message.

How delivery is checked. Two reference members on the line face join first and never send:
the first one's sequence of message ids is the room's one order. Every message carries its
id, and a digest of id, sender and text, so a corrupted or misattributed line is caught on
arrival. At the end:
- every message sent is in the reference sequence exactly once, and nothing else is;
- the second reference saw the same sequence, in the same order;
- every member present for the whole run saw exactly that sequence minus its own messages;
- every member that came and went saw a contiguous run of it (minus its own), starting no
  later than the first message after the reference saw it join.
"""

import array
import asyncio
import hashlib
import random
import socket
import ssl
import time

from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import ConnectionClosed

WORDS = ["alpha", "beta", "gamma", "δέλτα", "ünïcödé", "中文", "✓", "naïve", "soak",
         "bingfa", "epoll", "prefork", "async", "x" * 40, "0123456789"]


def digest(mid, name, payload):
    return hashlib.sha256(f"{mid}|{name}|{payload}".encode()).hexdigest()[:10]


def has_control(s):
    return any((ord(c) < 32 and c != "\t") or ord(c) == 127 for c in s)


class Member:
    """One member. `face` is "line" or "web"; `received` holds the ids of the messages it got."""

    def __init__(self, room, name, face, src_ip="127.0.0.1"):
        self.room, self.name, self.face, self.src_ip = room, name, face, src_ip
        self.received = array.array("I")
        self.own = 0
        self.state = "new"  # new, in, leaving, gone
        self.send_lock = asyncio.Lock()
        self.reader = None
        self.joined_at_ref = None

    async def join(self, timeout=60):
        run = self.room.run
        try:
            await asyncio.wait_for(self._join(), timeout)
        except (OSError, asyncio.TimeoutError, ConnectionClosed, ssl.SSLError) as e:
            run.fail(f"chat: {self.name} ({self.face}) could not join: {e!r}")
            return False
        self.state = "in"
        self.reader = asyncio.create_task(self._read())
        run.count("chat joins")
        return True

    async def _join(self):
        r = self.room
        if self.face == "line":
            self.r, self.w = await asyncio.open_connection(
                *r.line_addr, local_addr=(self.src_ip, 0), limit=1 << 20)
        else:
            host, port = r.web_addr
            self.ws = await ws_connect(f"wss://{host}:{port}/ws", ssl=r.tls,
                                       origin=f"https://{host}:{port}", ping_interval=None,
                                       open_timeout=30, max_size=1 << 20)
        await self._send_raw(self.name)
        while True:
            line = await self._recv()
            if line is None:
                raise OSError("closed while choosing a name")
            if line.startswith("* you are "):
                return
            if line.startswith("! "):
                raise OSError(f"refused: {line}")

    async def _recv(self):
        if self.face == "line":
            b = await self.r.readline()
            return b.decode().rstrip("\n").rstrip("\r") if b else None
        try:
            m = await self.ws.recv()
        except ConnectionClosed:
            return None
        return m.rstrip("\n")

    async def _send_raw(self, text):
        if self.face == "line":
            self.w.write(text.encode() + b"\n")
            await self.w.drain()
        else:
            await self.ws.send(text)

    async def say(self, mid, payload):
        """Send message `mid` if still in the room (under the send lock, so a message is never
        written after `/quit`). Returns False if the member has left."""
        async with self.send_lock:
            if self.state != "in":
                return False
            self.room.sent[mid] = self.name
            self.own += 1
            text = f"m{mid}:{digest(mid, self.name, payload)} {payload}"
            try:
                await self._send_raw(text)
            except (OSError, ConnectionClosed) as e:
                self.room.run.fail(f"chat: {self.name} could not send: {e!r}")
            return True

    async def _read(self):
        room, run = self.room, self.room.run
        while True:
            try:
                line = await self._recv()
            except (OSError, ValueError) as e:
                if self.state == "in":
                    run.fail(f"chat: {self.name} ({self.face}) read error: {e!r}")
                break
            if line is None:
                if self.state == "in":
                    run.fail(f"chat: {self.name} ({self.face}) was disconnected by the server")
                break
            room.deliveries += 1
            if line.startswith("* "):
                if self is room.ref:
                    room.notice(line)
                continue
            if line.startswith("! "):
                run.fail(f"chat: well-behaved {self.name} got an error line: {line[:120]!r}")
                continue
            name, sep, text = line.partition(": ")
            head, _, payload = text.partition(" ")
            try:
                mid_s, dg = head[1:].split(":")
                mid = int(mid_s)
                ok = (sep and head.startswith("m") and dg == digest(mid, name, payload)
                      and room.sent.get(mid) == name and not has_control(line))
            except ValueError:
                ok = False
            if not ok:
                run.fail(f"chat: {self.name} got a corrupted or unknown line: {line[:160]!r}")
                continue
            self.received.append(mid)
        self.state = "gone"

    async def quit(self, timeout=30):
        """`/quit`, then read to the end: the reader sees the room until the server closes."""
        async with self.send_lock:
            if self.state != "in":
                return
            self.state = "leaving"
            try:
                await self._send_raw("/quit")
            except (OSError, ConnectionClosed) as e:
                self.room.run.fail(f"chat: {self.name} could not send /quit: {e!r}")
        try:
            await asyncio.wait_for(asyncio.shield(self.reader), timeout)
        except asyncio.TimeoutError:
            self.room.run.fail(f"chat: {self.name}: the server did not close within "
                               f"{timeout} s of /quit")
            self.reader.cancel()
        self.close()

    def close(self):
        if self.face == "line":
            self.w.close()
        else:
            asyncio.ensure_future(self.ws.close())


class Room:
    def __init__(self, run, line_addr, web_addr, tls, members, rate, churn):
        self.run, self.line_addr, self.web_addr, self.tls = run, line_addr, web_addr, tls
        self.n_members, self.rate, self.n_churn = members, rate, churn
        self.sent = {}  # id -> sender name
        self.next_id = 1
        self.deliveries = 0
        self.ref_saids = 0  # messages the reference had when the last notice arrived
        self.join_pos = {}  # name -> the reference's message count when `* NAME joined` came
        self.left_seen = set()
        self.stable, self.churned, self.present = [], [], []
        self.ref = self.ref2 = None
        self.tasks = []
        self.slow_kicked = False

    def notice(self, line):
        at = len(self.ref.received)
        if line.endswith(" joined"):
            self.join_pos[line[2:-7]] = at
        elif line.endswith(" left"):
            self.left_seen.add(line[2:-5])

    async def start(self):
        """Join the references, then every stable member (half on each face), paced so at
        most a few wait to choose a name at once (the room's per-address lobby limit)."""
        run = self.run
        self.ref = Member(self, "ref1", "line")
        self.ref2 = Member(self, "ref2", "line")
        for m in (self.ref, self.ref2):
            if not await m.join():
                return False
        # Places: references, stable members, churn slots, the never-reader, one hostile.
        n = self.n_members - 2 - self.n_churn - 2
        gate = asyncio.Semaphore(8)

        async def one(i):
            m = Member(self, f"s{i}", "web" if i % 2 else "line",
                       src_ip=f"127.0.1.{1 + i % 200}")
            async with gate:
                if await m.join():
                    self.stable.append(m)
        t = time.monotonic()
        await asyncio.gather(*(one(i) for i in range(n)))
        run.log(f"chat: {len(self.stable) + 2} members joined in {time.monotonic() - t:.1f} s "
                f"({sum(m.face == 'web' for m in self.stable)} on the web face)")
        self.present = list(self.stable)
        return len(self.stable) == n

    def load(self):
        self.tasks = [asyncio.create_task(self._senders()),
                      asyncio.create_task(self._never_reader())]
        self.tasks += [asyncio.create_task(self._churn(i)) for i in range(self.n_churn)]
        self.tasks += [asyncio.create_task(self._control_bytes())]

    async def _senders(self):
        """`rate` messages a second in total, each from a random member present."""
        while not self.run.stopping:
            await asyncio.sleep(random.expovariate(self.rate))
            who = [m for m in self.present if m.state == "in"]
            if not who:
                continue
            m = random.choice(who)
            mid = self.next_id
            self.next_id += 1
            payload = " ".join(random.choices(WORDS, k=random.randint(1, 12)))
            if not await m.say(mid, payload):
                continue
            self.run.count("chat messages sent")

    async def _churn(self, slot):
        gen = 0
        await asyncio.sleep(random.uniform(0, 5))
        while not self.run.stopping:
            gen += 1
            m = Member(self, f"c{slot}g{gen}", random.choice(["line", "web"]),
                       src_ip=f"127.0.2.{1 + slot % 200}")
            if not await m.join():
                await asyncio.sleep(5)
                continue
            self.present.append(m)
            await asyncio.sleep(random.uniform(3, 20))
            await m.quit()
            self.present.remove(m)
            self.churned.append(m)
            self.run.count("chat leaves")
            await asyncio.sleep(random.uniform(0.5, 4))

    async def _never_reader(self):
        """A member that joins and never reads, with a small receive buffer: the room must
        drop it (`! too slow`) without holding anyone up. Its connection is held until the
        end; whether it was dropped yet depends on how much the room said meanwhile."""
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.setblocking(False)
        try:
            await asyncio.get_running_loop().sock_connect(s, self.line_addr)
            await asyncio.get_running_loop().sock_sendall(s, b"sleeper\n")
            while not self.run.stopping:
                await asyncio.sleep(1)
                if "sleeper" in self.left_seen and not self.slow_kicked:
                    self.slow_kicked = True
                    self.run.log("chat: the never-reading member was dropped by the room")
        finally:
            s.close()

    async def _control_bytes(self):
        """Every ~10 s a hostile member sends a line with a control byte (ESC on the line face,
        BEL on the web face); the room must answer `! ` and pass it to no one (the members'
        digest check would see it)."""
        n = 0
        while not self.run.stopping:
            await asyncio.sleep(random.uniform(5, 15))
            n += 1
            face = "line" if n % 2 else "web"
            m = Member(self, f"hostile{n}", face, src_ip="127.0.0.3")
            try:
                await asyncio.wait_for(m._join(), 30)
                bad = "look \x1b[2J here" if face == "line" else "ring \x07 bell"
                await m._send_raw(bad)

                async def refused():
                    while True:
                        line = await m._recv()
                        if line is None:
                            return "closed"
                        if line.startswith("! "):
                            return line
                got = await asyncio.wait_for(refused(), 15)
                if not got.startswith("! "):
                    self.run.fail(f"chat: a control-byte line on the {face} face got {got!r}, "
                                  f"not a `! ` refusal")
                else:
                    self.run.count("control-byte lines refused")
                await m._send_raw("/quit")
            except (OSError, asyncio.TimeoutError, ConnectionClosed) as e:
                self.run.fail(f"chat: the control-byte member on the {face} face: {e!r}")
            finally:
                try:
                    m.close()
                except AttributeError:
                    pass

    async def finish(self):
        """Stop the load, wait for every message to arrive everywhere, check, leave."""
        run = self.run
        for t in self.tasks:
            try:
                await asyncio.wait_for(t, 40)
            except asyncio.TimeoutError:
                run.fail("chat: a load task did not finish within 40 s of the end")
                t.cancel()
        total = len(self.sent)
        everyone = [self.ref, self.ref2] + self.stable
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if all(len(m.received) >= total - m.own for m in everyone):
                break
            await asyncio.sleep(0.5)
        self.verify()
        await asyncio.gather(*(m.quit() for m in everyone))

    def verify(self):
        run, ref = self.run, self.ref.received
        sent = set(self.sent)
        got = set(ref)
        run.count("chat messages checked", len(sent))
        if len(got) != len(ref):
            run.fail(f"chat: the reference member got {len(ref) - len(got)} duplicate messages")
        if got != sent:
            lost, extra = sorted(sent - got), sorted(got - sent)
            run.fail(f"chat: {len(lost)} messages lost (e.g. {lost[:5]}), {len(extra)} "
                     f"unexpected (e.g. {extra[:5]}) at the reference member")
        if self.ref2.received != ref:
            run.fail(f"chat: the two references disagree ({len(self.ref2.received)} vs "
                     f"{len(ref)} messages, or their order)")
        pos = {mid: i for i, mid in enumerate(ref)}
        checked = 2 * len(ref)
        for m in self.stable:
            want = array.array("I", (i for i in ref if self.sent[i] != m.name))
            if m.received != want:
                have = set(m.received)
                miss = len(set(want) - have)
                dup = len(m.received) - len(have)
                run.fail(f"chat: {m.name} ({m.face}) got {len(m.received)} messages, expected "
                         f"{len(want)}: {miss} missing, {dup} duplicated, or out of order")
            checked += len(want)
        for m in self.churned:
            checked += len(m.received)
            self._verify_churner(m, ref, pos)
        run.count("chat deliveries checked", checked)

    def _verify_churner(self, m, ref, pos):
        run = self.run
        if not m.received:
            return
        try:
            ps = [pos[i] for i in m.received]
        except KeyError:
            run.fail(f"chat: {m.name} got a message the reference never saw")
            return
        run_ = [i for i in range(ps[0], ps[-1] + 1) if self.sent[ref[i]] != m.name]
        if ps != run_:
            run.fail(f"chat: {m.name} ({m.face}) got {len(ps)} messages that are not one "
                     f"contiguous run of the room's order (lost, duplicated or reordered)")
        j = self.join_pos.get(m.name)
        if j is not None:
            first = next((i for i in range(j, len(ref)) if self.sent[ref[i]] != m.name), None)
            if first is not None and first < ps[0]:
                run.fail(f"chat: {m.name} missed message {ref[first]}, which came after "
                         f"its join")
