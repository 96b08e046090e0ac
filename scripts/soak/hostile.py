"""Hostile clients from the red-team cases, kept within limits so they test the defences and
not the machine: slowloris on HTTPS, a crowd of name-less connections on the chat's line
port (from their own address, below the per-address limit), and garbage bytes to every port.
Each must end with the server closing the connection (or refusing in words), within a bound;
the well-behaved clients meanwhile must see nothing of it.
"""

import asyncio
import random


class Hostile:
    def __init__(self, run, addrs, tls, slowloris, nameless):
        self.run, self.addrs, self.tls = run, addrs, tls
        self.n_slow, self.n_nameless = slowloris, nameless
        self.tasks = []
        self.writers = set()

    def load(self):
        self.tasks = [asyncio.create_task(self._slowloris(i)) for i in range(self.n_slow)]
        self.tasks += [asyncio.create_task(self._nameless(i)) for i in range(self.n_nameless)]
        self.tasks.append(asyncio.create_task(self._garbage()))
        self.tasks.append(asyncio.create_task(self._guesses()))

    async def _closed_within(self, r, secs):
        """Read (and drop) until the server closes; False if it has not after `secs`."""
        try:
            async with asyncio.timeout(secs):
                while await r.read(4096):
                    pass
            return True
        except (asyncio.TimeoutError, TimeoutError):
            return False
        except OSError:
            return True  # reset: closed too

    async def _slowloris(self, i):
        """A request head dribbled a byte every 2 s: the HTTP server's head timeout (10 s)
        must close it, well before the head could be done."""
        while not self.run.stopping:
            try:
                r, w = await asyncio.open_connection(*self.addrs["https"], ssl=self.tls,
                                                     server_hostname="localhost",
                                                     local_addr=("127.0.0.4", 0))
            except OSError as e:
                self.run.fail(f"hostile: slowloris could not even connect: {e!r}")
                await asyncio.sleep(5)
                continue
            self.run.count("hostile connections")
            head = b"GET / HTTP/1.1\r\nHost: localhost\r\nX-" + b"a" * 200

            async def dribble():
                try:
                    for b in head:
                        w.write(bytes([b]))
                        await w.drain()
                        await asyncio.sleep(2)
                except OSError:
                    pass
            d = asyncio.create_task(dribble())
            if not await self._closed_within(r, 60):
                self.run.fail("hostile: a slowloris connection was still open after 60 s")
            d.cancel()
            w.close()
            await asyncio.sleep(random.uniform(0, 2))

    async def _nameless(self, i):
        """A connection to the room's line port that never says a name: closed by the name
        timeout (20 s) with a `! ` line, or refused at once if the address is at its limit."""
        while not self.run.stopping:
            try:
                r, w = await asyncio.open_connection(*self.addrs["chat"],
                                                     local_addr=("127.0.0.2", 0))
            except OSError as e:
                self.run.fail(f"hostile: name-less connect: {e!r}")
                await asyncio.sleep(5)
                continue
            self.run.count("hostile connections")
            if not await self._closed_within(r, 45):
                self.run.fail("hostile: a name-less chat connection was open after 45 s")
            w.close()
            await asyncio.sleep(random.uniform(0, 3))

    async def _guess(self):
        """One wrong FTP login: `530` expected, whatever the user."""
        r, w = await asyncio.open_connection(*self.addrs["ftp"], local_addr=("127.0.0.6", 0))
        try:
            async with asyncio.timeout(60):
                await r.readline()  # 220
                w.write(b"USER root\r\nPASS guess\r\n")
                await w.drain()
                await r.readline()  # 331
                reply = await r.readline()
            if not reply.startswith(b"530"):
                self.run.fail(f"hostile: a wrong FTP password got {reply[:80]!r}, not 530")
            self.run.count("hostile connections")
        finally:
            w.close()

    async def _guesses(self):
        """Password guessing from one address, below the ban (10 failures a minute): four at
        once as the load starts, then one every ~20 s. Each check costs the server an argon2
        block of 19 MiB, kept for reuse, at most two per process with the defaults
        (crates/ftp/src/verify.rs): the four at once reach that plateau during the warm-up,
        so later growth is growth."""
        try:
            await asyncio.gather(*(self._guess() for _ in range(4)))
            while not self.run.stopping:
                await asyncio.sleep(random.uniform(15, 25))
                await self._guess()
        except (OSError, asyncio.TimeoutError, TimeoutError) as e:
            self.run.fail(f"hostile: a wrong FTP login: {e!r}")

    async def _garbage(self):
        """Every few seconds, random bytes (and a few classic bad starts) to one port; each
        such connection must be closed by the server within 30 s (the chat's line port
        closes a name-less connection at 20 s, whatever it said), except FTP's (below)."""
        starts = [b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc", b"GET / HTTP/1.1\r\nHost: \x00\r\n\r\n",
                  b"USER \xff\xfe\r\nPASS x\r\n" * 50, b"\r\n" * 3000, b"\x00" * 5000]
        faces = ["https", "web-tls", "ftp", "chat"]
        while not self.run.stopping:
            await asyncio.sleep(random.uniform(1, 4))
            face = random.choice(faces)
            try:
                r, w = await asyncio.open_connection(*self.addrs[face],
                                                     local_addr=("127.0.0.5", 0))
                blob = random.choice(starts) if random.random() < 0.5 else \
                    random.randbytes(random.randint(1, 20000))
                if face == "chat":
                    # No newline in the random bytes: between two, a short run of letters
                    # would be a valid name and the rest messages to the room, which is the
                    # room working, not a defence failing.
                    blob = blob if blob in starts else blob.replace(b"\n", b"")
                w.write(blob)
                await w.drain()
                if face == "ftp":
                    # FTP answers each bad line and keeps the session until its idle timeout
                    # (300 s); bad logins ban this address, not the well-behaved ones.
                    await self._closed_within(r, 5)
                elif not await self._closed_within(r, 30):
                    self.run.fail(f"hostile: garbage to {face} was not closed within 30 s")
                w.close()
                self.run.count("hostile connections")
            except OSError:
                self.run.count("hostile connections")  # reset while writing: closed

    async def finish(self):
        for t in self.tasks:
            t.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
