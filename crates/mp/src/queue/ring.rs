//! The queue's ring: how a put and a get move records through shared memory under their
//! side's lock, and how a waiter spins, then sleeps on a futex.

use std::sync::atomic::Ordering::*;
use std::time::{Duration, Instant};

use super::{
    pack, record_units, unpack, Header, Locked, Queue, CHUNK_UNITS, DATA_OFFSET, IN_PLACE_UNITS,
    UNIT, WRAP,
};
use crate::error::IpcError;
use crate::spin::Spun;
use crate::sys;

impl<T> Queue<T> {
    pub(super) fn put_bytes(
        &self,
        body: &[u8],
        deadline: Option<Instant>,
        block: bool,
    ) -> Result<(), IpcError> {
        self.check_open()?;
        let h = self.header();
        let cap = h.cap_units;
        let need = record_units(body.len());
        let max = self.max_message();
        if body.len() > max {
            return Err(IpcError::MessageTooLarge {
                size: body.len(),
                max,
            });
        }
        loop {
            let g = Locked::new(&h.put.lock)?;
            let (seq, tail) = unpack(h.put_progress.0.load(Relaxed));
            let off = tail & (cap - 1);
            let required = if need <= cap - off {
                need
            } else {
                cap - off + need
            };
            let fits_with = |other: u64| {
                let (got, head) = unpack(other);
                let room_items = h.maxsize == 0 || (seq.wrapping_sub(got) as u64) < h.maxsize;
                room_items && required <= cap - tail.wrapping_sub(head)
            };
            let fits = || {
                let other = h.get_progress.0.load(Acquire);
                h.put.seen.store(other, Relaxed);
                fits_with(other)
            };
            if !fits_with(h.put.seen.load(Relaxed)) && !fits() {
                if !block {
                    return Err(IpcError::Full);
                }
                let left = sys::remaining(deadline);
                if left == Some(Duration::ZERO) {
                    return Err(IpcError::Full);
                }
                // Register as a sleeper under the consumers' lock, then look again: consumers
                // publish their progress and look for sleepers under that lock, so one that
                // made room either sees our bit or is seen by this look. (Our own lock is let
                // go first: locks are only ever taken in the order get, put.) The look uses
                // this round's `seq`/`tail`, which other producers may have moved on: then the
                // room we see is more than there is, and we go round again instead of sleeping.
                drop(g);
                let word = {
                    let _c = Locked::new(&h.get.lock)?;
                    let word = h.not_full.register();
                    if fits_with(h.get_progress.0.load(Acquire)) {
                        continue;
                    }
                    word
                };
                h.not_full.sleep(word, left);
                continue;
            }
            self.write_record(tail, need, body);
            // The single publication point: sequence and tail move together. A plain release
            // store: the sleeper check after it is ordered by the lock (see `register` above).
            let next = pack(seq.wrapping_add(1), tail.wrapping_add(required));
            h.put_progress.0.store(next, Release);
            h.not_empty.notify();
            drop(g);
            return Ok(());
        }
    }

    /// A put's fast path: encode straight into the ring at the tail, under the producer lock,
    /// into at most [`IN_PLACE_UNITS`] of the room the producers already know is free (their
    /// `seen` copy of the consumers' progress) before the ring's end. `encode` returns the
    /// encoded length, or `None` if the message does not fit. `Ok(false)`: nothing was put
    /// (too big, not enough room known, the item limit reached): take the general path.
    /// Nothing is published before the record is whole, so a panic or a death while encoding
    /// leaves only unpublished bytes in free space.
    pub(super) fn try_put_in_place(
        &self,
        encode: impl FnOnce(&mut [u8]) -> Result<Option<usize>, IpcError>,
    ) -> Result<bool, IpcError> {
        self.check_open()?;
        let h = self.header();
        let cap = h.cap_units;
        let g = Locked::new(&h.put.lock)?;
        let (seq, tail) = unpack(h.put_progress.0.load(Relaxed));
        let (got, head) = unpack(h.put.seen.load(Relaxed));
        if h.maxsize != 0 && seq.wrapping_sub(got) as u64 >= h.maxsize {
            return Ok(false);
        }
        let off = tail & (cap - 1);
        let units = (cap - tail.wrapping_sub(head))
            .min(cap - off)
            .min(IN_PLACE_UNITS);
        if units < 2 {
            return Ok(false);
        }
        let at = self.at(tail);
        // SAFETY: we hold the producer lock, and `units` units from `tail` are free (the head
        // the consumers published, as last seen, is at most where they are now) and before the
        // ring's end, so inside the segment; consumers read nothing past the published tail, so
        // nobody else touches these bytes while we write them.
        let room = unsafe { std::slice::from_raw_parts_mut(at.add(4), units as usize * UNIT - 4) };
        let Some(len) = encode(room)? else {
            return Ok(false);
        };
        // SAFETY: as above; the length word is the record's first 4 bytes, u32-aligned.
        unsafe { (at as *mut u32).write(len as u32) };
        let next = pack(seq.wrapping_add(1), tail.wrapping_add(record_units(len)));
        h.put_progress.0.store(next, Release);
        h.not_empty.notify();
        drop(g);
        Ok(true)
    }

    /// Write a record at `tail` (with a wrap marker first if it doesn't fit before the end).
    /// Caller holds the producer lock and has checked the room.
    fn write_record(&self, tail: u32, need: u32, body: &[u8]) {
        let cap = self.header().cap_units;
        let off = tail & (cap - 1);
        // SAFETY: the caller holds the producer lock and checked the room, so the ring's bytes from
        // `tail` for `need` units (and the wrap gap) are free: the consumers do not read past the
        // published tail. `at` stays inside the ring (see `at`); a record never crosses its end (a
        // wrap marker is written instead), so the length word and body fit before it. `body` is a
        // live slice in our own memory.
        unsafe {
            let mut pos = tail;
            if need > cap - off {
                (self.at(pos) as *mut u32).write(WRAP);
                pos = pos.wrapping_add(cap - off);
            }
            let at = self.at(pos);
            (at as *mut u32).write(body.len() as u32);
            std::ptr::copy_nonoverlapping(body.as_ptr(), at.add(4), body.len());
        }
    }

    pub(super) fn get_with<R>(
        &self,
        deadline: Option<Instant>,
        block: bool,
        f: impl FnOnce(&[u8]) -> Result<R, IpcError>,
    ) -> Result<R, IpcError> {
        self.check_open()?;
        let h = self.header();
        let cap = h.cap_units;
        // Set once this get has spun and gone to sleep: how long it waited teaches the spin.
        let mut slept_since: Option<Instant> = None;
        let mut spun = false;
        loop {
            let g = Locked::new(&h.get.lock)?;
            let (got, head) = unpack(h.get_progress.0.load(Relaxed));
            let available = || {
                let other = h.put_progress.0.load(Acquire);
                h.get.seen.store(other, Relaxed);
                unpack(other).0 != got
            };
            if unpack(h.get.seen.load(Relaxed)).0 == got && !available() {
                if !block {
                    return Err(IpcError::Empty);
                }
                if deadline.is_some_and(|d| Instant::now() >= d) {
                    if let Some(start) = slept_since {
                        self.spin.slept(start);
                    }
                    return Err(IpcError::Empty);
                }
                // A producer on the other core is usually a microsecond away: polling briefly
                // (lock held; other consumers would only wait anyway) saves a futex sleep and
                // a wake-up on both sides. How briefly is learned (crate::spin).
                let ready = !spun
                    && match self.spin.spin(available) {
                        Spun::Ready => true,
                        Spun::Sleep(start) => {
                            slept_since = Some(start);
                            false
                        }
                    };
                spun = true;
                if !ready {
                    // Register under the producers' lock (as producers do under ours, see
                    // `put_bytes`), then look again. This look must not update `seen`: we no
                    // longer hold our lock, and a stale `seen` ahead of another consumer's
                    // `got` would read past the tail.
                    drop(g);
                    let word = {
                        let _p = Locked::new(&h.put.lock)?;
                        let word = h.not_empty.register();
                        if unpack(h.put_progress.0.load(Acquire)).0 != got {
                            continue;
                        }
                        word
                    };
                    h.not_empty.sleep(word, sys::remaining(deadline));
                    continue;
                }
            }
            if let Some(start) = slept_since {
                self.spin.slept(start);
            }
            let mut pos = head;
            // SAFETY: `head` is behind the published tail (checked above), so a record, written and
            // published by a producer, starts at `pos`; `at` is in the ring and u32-aligned (UNIT-
            // aligned).
            let mut len = unsafe { (self.at(pos) as *const u32).read() };
            if len == WRAP {
                pos = pos.wrapping_add(cap - (pos & (cap - 1)));
                // SAFETY: as above: after a wrap marker the record starts at the beginning of the
                // ring.
                len = unsafe { (self.at(pos) as *const u32).read() };
            }
            let len = len as usize;
            // Producers never write a record across the ring's end (they wrap first); one that
            // claims to would have us read past the segment.
            if 4 + len > (cap - (pos & (cap - 1))) as usize * UNIT {
                return Err(IpcError::Corrupt(format!(
                    "queue record claims {len} bytes"
                )));
            }
            // Decode straight from the ring while we hold the lock: no intermediate copy. The
            // item is consumed even if it fails to decode, so one bad message can't block the
            // queue.
            // SAFETY: the record does not cross the ring's end (checked just above), so `len`
            // bytes after its length word are inside the segment; we hold the consumer lock, and
            // producers do not write there until `head` moves past it.
            let body = unsafe { std::slice::from_raw_parts(self.at(pos).add(4), len) };
            let out = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(body)));
            let new_head = pos.wrapping_add(record_units(len));
            h.get_progress
                .0
                .store(pack(got.wrapping_add(1), new_head), Release);
            h.not_full.notify();
            self.release_consumed(h, new_head);
            drop(g);
            return out.unwrap_or_else(|p| std::panic::resume_unwind(p));
        }
    }

    /// Give fully consumed megabytes back to the kernel. Called with the consumer lock held;
    /// needs the producer lock too (tried, never waited for), because producers may already
    /// be writing into space behind the head.
    fn release_consumed(&self, h: &Header, head: u32) {
        let released = h.get.released.load(Relaxed);
        let behind = head.wrapping_sub(released);
        if behind < CHUNK_UNITS {
            return;
        }
        let Ok(Some(_)) = h.put.lock.try_lock() else {
            return;
        };
        let _p = Locked(&h.put.lock);
        let cap = h.cap_units;
        let (_, tail) = unpack(h.put_progress.0.load(Relaxed));
        // Positions [head - free, head) are consumed and not yet rewritten.
        let free = cap - tail.wrapping_sub(head);
        let start = head.wrapping_sub(behind.min(free));
        let start = start.wrapping_add(CHUNK_UNITS - 1) & !(CHUNK_UNITS - 1);
        let end = head & !(CHUNK_UNITS - 1);
        let mut pos = start;
        while (end.wrapping_sub(pos) as i32) > 0 {
            let off = pos & (cap - 1);
            let len = end.wrapping_sub(pos).min(cap - off);
            self.seg
                .release(DATA_OFFSET + off as usize * UNIT, len as usize * UNIT);
            pos = pos.wrapping_add(len);
        }
        h.get.released.store(end, Relaxed);
    }

    /// Put raw bytes as one item (pair with `get_bytes`).
    pub fn put_bytes_blocking(&self, bytes: &[u8]) -> Result<(), IpcError> {
        self.put_bytes(bytes, None, true)
    }

    /// Take one item as raw bytes.
    pub fn get_bytes(&self) -> Result<Vec<u8>, IpcError> {
        self.get_with(None, true, |b| Ok(b.to_vec()))
    }
}
