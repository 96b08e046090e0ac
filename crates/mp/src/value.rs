//! `Value` and `Array`: plain data in shared memory, each with its own robust lock (Python's
//! `multiprocessing.Value` / `Array` and their `get_lock()`).
//!
//! `T` must be [`bytemuck::Pod`]: any bit pattern is a valid `T`, which is what makes memory
//! written by another process (even one that died half-way) safe to read. `get`/`set` take the
//! lock for one access; a read-modify-write like `+= 1` must hold [`Value::lock`]'s guard, as in
//! Python. Handles clone cheaply, travel to children as spawn arguments, and the segment is
//! freed by the kernel when the last handle in any process is gone.

use std::marker::PhantomData;
use std::ops::{Deref, DerefMut};
use std::time::Duration;

use bytemuck::Pod;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::LockError;
use crate::robust::RawRobustMutex;
use crate::sync::{guarded, raw_acquire, Shm, Wait};

#[repr(C)]
struct ValueHeader<T> {
    mutex: RawRobustMutex,
    value: T,
}

/// One `T` in shared memory, with a lock.
pub struct Value<T: Pod> {
    shm: Shm<ValueHeader<T>>,
}

impl<T: Pod> Clone for Value<T> {
    fn clone(&self) -> Self {
        Value {
            shm: self.shm.clone(),
        }
    }
}

/// The lock of a [`Value`] held; derefs to the value.
#[must_use = "the lock is released as soon as the guard is dropped"]
pub struct ValueGuard<'a, T: Pod> {
    v: &'a Value<T>,
    _not_send: PhantomData<*const ()>,
}

impl<T: Pod> Value<T> {
    /// A new value holding `value`, in its own shared segment with its lock.
    pub fn new(value: T) -> std::io::Result<Value<T>> {
        Ok(Value {
            shm: Shm::new(|h: *mut ValueHeader<T>| unsafe {
                // SAFETY: fresh memory nobody else sees yet.
                std::ptr::addr_of_mut!((*h).value).write(value);
                RawRobustMutex::init(std::ptr::addr_of_mut!((*h).mutex))
            })?,
        })
    }

    fn ptr(&self) -> *mut T {
        // SAFETY: the segment is at least a ValueHeader<T> long (Shm::new, or Shm's size check
        // when received) and page-aligned; addr_of_mut! computes the field's address without
        // making a reference.
        unsafe { std::ptr::addr_of_mut!((*(self.shm.base() as *mut ValueHeader<T>)).value) }
    }

    fn take(&self, wait: Wait) -> Result<ValueGuard<'_, T>, LockError<ValueGuard<'_, T>>> {
        guarded(raw_acquire(&self.shm.get().mutex, wait), || ValueGuard {
            v: self,
            _not_send: PhantomData,
        })
    }

    /// Hold the value's lock (Python's `with v.get_lock():`). `Err(OwnerDied(guard))`: the lock
    /// is held, but its previous holder died inside its critical section.
    pub fn lock(&self) -> Result<ValueGuard<'_, T>, LockError<ValueGuard<'_, T>>> {
        self.take(Wait::Forever)
    }

    /// Hold the lock if it is free now; `Err(WouldBlock)` otherwise.
    pub fn try_lock(&self) -> Result<ValueGuard<'_, T>, LockError<ValueGuard<'_, T>>> {
        self.take(Wait::No)
    }

    /// Hold the lock within `timeout`; `Err(Timeout)` otherwise.
    pub fn lock_timeout(
        &self,
        timeout: Duration,
    ) -> Result<ValueGuard<'_, T>, LockError<ValueGuard<'_, T>>> {
        self.take(Wait::timeout(timeout))
    }

    fn held(&self) -> ValueGuard<'_, T> {
        // A dead previous owner cannot tear a Pod read or write of ours; carry on.
        self.lock().unwrap_or_else(|e| {
            e.into_guard()
                .expect("locking a value in shared memory failed")
        })
    }

    /// Read under the lock (Python's `v.value`).
    pub fn get(&self) -> T {
        *self.held()
    }

    /// Write under the lock (Python's `v.value = x`).
    pub fn set(&self, value: T) {
        *self.held() = value;
    }

    /// Read without the lock: a plain, possibly torn load (Python's `lock=False` value).
    ///
    /// # Safety
    /// No thread of this process may hold a [`ValueGuard`] of this value (a `&mut T`) during
    /// the call: a load racing with writes through that reference is undefined behaviour in
    /// Rust's memory model, even though the hardware only shows a torn or stale value. Writes
    /// from other processes, or through `set_unlocked`, are the race this method exists to
    /// show and are fine (volatile accesses to shared memory).
    pub unsafe fn get_unlocked(&self) -> T {
        // SAFETY: the slot is inside the segment and any bit pattern is a valid Pod, so the read
        // is in bounds and gives a valid T; the caller promises no `&mut T` of this process
        // aliases it.
        unsafe { self.ptr().read_volatile() }
    }

    /// Write without the lock: updates may be lost when others write too (shows the race).
    ///
    /// # Safety
    /// As for [`Value::get_unlocked`]: no [`ValueGuard`] of this value may be held by a thread
    /// of this process during the call.
    pub unsafe fn set_unlocked(&self, value: T) {
        // SAFETY: the slot is inside the segment and any bit pattern is a valid Pod, so the write
        // stays in bounds and leaves a valid T; the caller promises no `&mut T` (a guard) of
        // this process aliases it. Concurrent unlocked writers only lose updates (the race
        // this method exists to show, Python's lock=False).
        unsafe { self.ptr().write_volatile(value) }
    }
}

impl<T: Pod> Deref for ValueGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: the value's lock is held, so no other guard in any process writes it; the
        // slot is in bounds and any bytes are a valid Pod (the exception: `set_unlocked`).
        unsafe { &*self.v.ptr() }
    }
}

impl<T: Pod> DerefMut for ValueGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: the value's lock is held and the guard is borrowed mutably, so this is the only
        // guarded access (the exception: `get_unlocked`/`set_unlocked`).
        unsafe { &mut *self.v.ptr() }
    }
}

impl<T: Pod> Drop for ValueGuard<'_, T> {
    fn drop(&mut self) {
        self.v.shm.get().mutex.unlock();
    }
}

impl<T: Pod + std::fmt::Debug> std::fmt::Debug for Value<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Value").field(&self.get()).finish()
    }
}

impl<T: Pod> Serialize for Value<T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.shm.serialize(s)
    }
}

impl<'de, T: Pod> Deserialize<'de> for Value<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(Value {
            shm: Shm::deserialize(d)?,
        })
    }
}

#[repr(C)]
struct ArrayHeader {
    mutex: RawRobustMutex,
    len: u64,
}

/// Where the elements start: after the header, aligned for any `T` up to 64 bytes.
fn data_offset<T>() -> usize {
    let align = std::mem::align_of::<T>().max(16);
    std::mem::size_of::<ArrayHeader>().div_ceil(align) * align
}

/// A fixed-length array of `T` in shared memory, with one lock for the whole array.
pub struct Array<T: Pod> {
    shm: Shm<ArrayHeader>,
    _t: PhantomData<T>,
}

impl<T: Pod> Clone for Array<T> {
    fn clone(&self) -> Self {
        Array {
            shm: self.shm.clone(),
            _t: PhantomData,
        }
    }
}

/// The lock of an [`Array`] held; derefs to the whole slice.
#[must_use = "the lock is released as soon as the guard is dropped"]
pub struct ArrayGuard<'a, T: Pod> {
    a: &'a Array<T>,
    _not_send: PhantomData<*const ()>,
}

impl<T: Pod> Array<T> {
    /// `len` zeroed elements (Python's `Array(typecode, n)`).
    pub fn new(len: usize) -> std::io::Result<Array<T>> {
        let bytes = len
            .checked_mul(std::mem::size_of::<T>())
            .and_then(|b| b.checked_add(data_offset::<T>()))
            .ok_or_else(|| std::io::Error::other("array too large"))?;
        Ok(Array {
            shm: Shm::with_len(bytes, |h: *mut ArrayHeader| unsafe {
                // SAFETY: fresh zeroed memory nobody else sees yet; zero is a valid Pod.
                (*h).len = len as u64;
                RawRobustMutex::init(std::ptr::addr_of_mut!((*h).mutex))
            })?,
            _t: PhantomData,
        })
    }

    /// A copy of `items` (Python's `Array(typecode, sequence)`).
    pub fn from_slice(items: &[T]) -> std::io::Result<Array<T>> {
        let a = Array::new(items.len())?;
        a.lock()
            .unwrap_or_else(|e| e.into_guard().expect("fresh array"))
            .copy_from_slice(items);
        Ok(a)
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        self.shm.get().len as usize
    }

    /// True for an array of no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn data(&self) -> *mut T {
        // SAFETY: the segment holds `len` elements after the header.
        unsafe { self.shm.base().add(data_offset::<T>()).cast() }
    }

    fn take(&self, wait: Wait) -> Result<ArrayGuard<'_, T>, LockError<ArrayGuard<'_, T>>> {
        guarded(raw_acquire(&self.shm.get().mutex, wait), || ArrayGuard {
            a: self,
            _not_send: PhantomData,
        })
    }

    /// Hold the array's lock; the guard derefs to `[T]`.
    pub fn lock(&self) -> Result<ArrayGuard<'_, T>, LockError<ArrayGuard<'_, T>>> {
        self.take(Wait::Forever)
    }

    /// Hold the lock if it is free now; `Err(WouldBlock)` otherwise.
    pub fn try_lock(&self) -> Result<ArrayGuard<'_, T>, LockError<ArrayGuard<'_, T>>> {
        self.take(Wait::No)
    }

    /// Hold the lock within `timeout`; `Err(Timeout)` otherwise.
    pub fn lock_timeout(
        &self,
        timeout: Duration,
    ) -> Result<ArrayGuard<'_, T>, LockError<ArrayGuard<'_, T>>> {
        self.take(Wait::timeout(timeout))
    }

    fn held(&self) -> ArrayGuard<'_, T> {
        self.lock().unwrap_or_else(|e| {
            e.into_guard()
                .expect("locking an array in shared memory failed")
        })
    }

    /// Element `i` under the lock; `None` out of bounds.
    pub fn get(&self, i: usize) -> Option<T> {
        self.held().get(i).copied()
    }

    /// Set element `i` under the lock; false out of bounds.
    pub fn set(&self, i: usize, value: T) -> bool {
        match self.held().get_mut(i) {
            Some(slot) => {
                *slot = value;
                true
            }
            None => false,
        }
    }

    /// A copy of the whole array (Python's `arr[:]`).
    pub fn to_vec(&self) -> Vec<T> {
        self.held().to_vec()
    }
}

impl Array<u8> {
    /// A byte array holding `s` (Python's `Array('c', b"...")`).
    pub fn from_bytes(s: &[u8]) -> std::io::Result<Array<u8>> {
        Array::from_slice(s)
    }

    /// The bytes up to the first NUL (Python's `arr.value` for a `'c'` array).
    pub fn value(&self) -> Vec<u8> {
        let g = self.held();
        let end = g.iter().position(|&b| b == 0).unwrap_or(g.len());
        g[..end].to_vec()
    }

    /// Store `s`, NUL-terminated if it is shorter than the array; false if it does not fit.
    pub fn set_value(&self, s: &[u8]) -> bool {
        let mut g = self.held();
        if s.len() > g.len() {
            return false;
        }
        g[..s.len()].copy_from_slice(s);
        if s.len() < g.len() {
            g[s.len()] = 0;
        }
        true
    }

    /// [`Array::value`] as text (invalid UTF-8 replaced), for printing.
    pub fn value_string(&self) -> String {
        String::from_utf8_lossy(&self.value()).into_owned()
    }
}

/// A byte array prints as its text value, like Python's `arr.value.decode()`.
impl std::fmt::Display for Array<u8> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.value_string())
    }
}

impl<T: Pod> Deref for ArrayGuard<'_, T> {
    type Target = [T];
    fn deref(&self) -> &[T] {
        // SAFETY: the lock is held; `len` elements follow the header.
        unsafe { std::slice::from_raw_parts(self.a.data(), self.a.len()) }
    }
}

impl<T: Pod> DerefMut for ArrayGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut [T] {
        // SAFETY: the lock is held, so this is the only access.
        unsafe { std::slice::from_raw_parts_mut(self.a.data(), self.a.len()) }
    }
}

impl<T: Pod> Drop for ArrayGuard<'_, T> {
    fn drop(&mut self) {
        self.a.shm.get().mutex.unlock();
    }
}

impl<T: Pod + std::fmt::Debug> std::fmt::Debug for Array<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Array").field(&self.to_vec()).finish()
    }
}

impl<T: Pod> Serialize for Array<T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.shm.serialize(s)
    }
}

impl<'de, T: Pod> Deserialize<'de> for Array<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let shm: Shm<ArrayHeader> = Shm::deserialize(d)?;
        let need = (shm.get().len as usize)
            .checked_mul(std::mem::size_of::<T>())
            .and_then(|b| b.checked_add(data_offset::<T>()));
        if need.is_none_or(|n| n > shm.len()) {
            return Err(serde::de::Error::custom(
                "shared array segment smaller than its length says",
            ));
        }
        Ok(Array {
            shm,
            _t: PhantomData,
        })
    }
}

impl<T: Pod + std::fmt::Debug> std::fmt::Debug for ValueGuard<'_, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("ValueGuard").field(&**self).finish()
    }
}

impl<T: Pod + std::fmt::Debug> std::fmt::Debug for ArrayGuard<'_, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("ArrayGuard").field(&&**self).finish()
    }
}
