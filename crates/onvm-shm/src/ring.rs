//! Single-producer/single-consumer rings of `u32` buffer indices.
//!
//! # Layout
//! A ring is a [`RingCtl`] (three 128-byte lines: producer index, consumer index,
//! doorbell) followed by `capacity` slots of `u32`. Both indices run freely and wrap at
//! 2^32; a slot is `index & (capacity - 1)`, so capacity is a power of two. The
//! producer and consumer indices sit on separate lines (128 bytes, because x86 and
//! ARM prefetch cache lines in pairs), so the two sides never write the same line.
//! Each side also keeps a process-local copy of the *other* side's index and only
//! re-reads the shared one when its copy says the ring is full (producer) or empty
//! (consumer): in steady state a burst touches the shared indices once.
//!
//! # Ordering
//! * The producer writes the slots (relaxed), then publishes its index with a
//!   `Release` store. The consumer reads that index with `Acquire`, so every slot
//!   write before the publish is visible before it reads the slots.
//! * Symmetrically the consumer reads the slots, then publishes its index with
//!   `Release`; the producer's `Acquire` load of it guarantees the consumer has
//!   finished reading a slot before the producer overwrites it.
//! * Slots are `AtomicU32` accessed relaxed: on x86 and ARM that is a plain `mov`, and
//!   it means a misbehaving peer can at worst make us read a wrong number (which the
//!   buffer layer bounds-checks), never cause undefined behaviour.
//!
//! # Why SPSC only
//! A multi-producer ring needs a two-phase commit that a process killed between the
//! phases leaves wedged for everyone. With one writer per index nothing a dead peer
//! left half-done can block a live one; fan-in is done with one ring per edge.
//!
//! # Corruption
//! Every process maps the whole region, so any of them can scribble any ring's indices.
//! Indices read from the peer are checked: `tail - head` must never exceed the
//! capacity. A ring that breaks that gives [`RingError::Corrupt`], never a wild read,
//! and the error is never fatal to the side that reads it: the producer did not write
//! (as if the ring were full), the consumer did not read (as if it were empty), and the
//! caller counts it and tries again later. The ring *heals*: each side is the only
//! writer of its own index and keeps the true value locally, so republishing it
//! ([`Producer::heal`], [`Consumer::heal`]: a relaxed load of the shared word, a store
//! only when it differs, so an idle line is not dirtied) undoes a stray write. Where
//! that happens:
//! * The consumer republishes its index when a poll finds the producer's index
//!   corrupt; every read it makes publishes its index anyway; and its owner calls
//!   [`Consumer::heal`] at a periodic point (the NF in its housekeeping, the manager in
//!   its control tick), so a ring nobody reads from for a while heals too. (Not on
//!   every empty poll: that one load and branch cost a self-looping NF 6-7 %.)
//! * The producer republishes its index when it finds the consumer's index corrupt;
//!   every write publishes it anyway; and its owner calls [`Producer::heal`] at a
//!   periodic point when it has nothing to send (the NF in its housekeeping, the
//!   manager in its control tick), so a ring nobody writes heals too.
//!
//! So one stray write costs at most a poll or a few milliseconds of the ring looking
//! full or empty; a scribbler that keeps writing stalls that one ring (each call
//! counted by its caller) and nothing else.
//!
//! A scribble that stays in range cannot be told from the truth. A producer index
//! moved forward makes the consumer read stale slots (their indices fail the buffer
//! layer's claim checks, counted) and leaves its index ahead of the real producer
//! index; the producer then sees a corrupt ring and republishes its index, and the
//! consumer, finding the producer's index behind its own by at most the capacity,
//! resyncs its index back to it ([`Consumer::ready`]). Buffers a producer published
//! into slots the consumer had already read as stale in that window are in transit to
//! the consumer in no ring it reads: the manager's reclaim gets them back when the
//! consumer goes (`Pool::reclaim`). A consumer index moved forward in range can likewise
//! let the producer overwrite unread slots and run ahead of the real consumer index by
//! more than the capacity; the consumer, finding the same such producer index in many
//! corrupt polls, takes the last `capacity` entries written as the ring's contents, so
//! the ends agree again; the same reclaim bounds the loss. Whatever was scribbled, once
//! the scribbler stops both ends agree within a write and at most that many polls.

use crate::error::RingError;
use crate::sync::{AtomicU32, Ordering, fence, futex_wait, futex_wake};
use std::time::Duration;

/// One 128-byte line holding one shared word, so two sides never false-share.
#[repr(C, align(128))]
#[derive(Debug)]
pub struct Line {
    pub(crate) word: AtomicU32,
}

impl Line {
    #[cfg(any(loom, test))]
    fn new(v: u32) -> Self {
        Line {
            word: AtomicU32::new(v),
        }
    }
}

/// Control block of a ring, as laid out in shared memory. All zeroes is a valid empty
/// ring, which is what a fresh memfd gives us.
#[repr(C)]
#[derive(Debug)]
pub struct RingCtl {
    /// Producer index: count of slots ever published.
    pub(crate) tail: Line,
    /// Consumer index: count of slots ever consumed.
    pub(crate) head: Line,
    /// Doorbell the consumer sleeps on in shared-core mode (see [`Consumer::wait`]).
    pub(crate) bell: Line,
    /// Owner ids of producer (low 16 bits) and consumer (high 16 bits), set by the
    /// manager when it assigns the ring; used to reclaim after a crash.
    pub(crate) ends: Line,
}

/// Doorbell values.
const AWAKE: u32 = 0;
const SLEEPING: u32 = 1;

impl RingCtl {
    /// A heap-allocated control block, for loom models and unit tests.
    #[cfg(any(loom, test))]
    pub(crate) fn new_local() -> Self {
        RingCtl {
            tail: Line::new(0),
            head: Line::new(0),
            bell: Line::new(0),
            ends: Line::new(0),
        }
    }
}

/// A ring as seen in one process: its control block and its slots.
#[derive(Debug, Clone, Copy)]
pub struct RingRef<'a> {
    pub(crate) ctl: &'a RingCtl,
    pub(crate) slots: &'a [AtomicU32],
}

impl<'a> RingRef<'a> {
    /// Wrap a control block and slots; the slot count must be a power of two >= 2.
    pub fn new(ctl: &'a RingCtl, slots: &'a [AtomicU32]) -> Result<Self, RingError> {
        if slots.len() < 2 || !slots.len().is_power_of_two() || slots.len() > 1 << 31 {
            return Err(RingError::BadCapacity(slots.len()));
        }
        Ok(RingRef { ctl, slots })
    }

    pub fn capacity(&self) -> u32 {
        self.slots.len() as u32
    }

    /// Entries currently in the ring, checked. Racy by nature when both sides run; exact
    /// when they are quiescent (audit, reclaim of a dead peer).
    pub fn len(&self) -> Result<u32, RingError> {
        let head = self.ctl.head.word.load(Ordering::Acquire);
        let tail = self.ctl.tail.word.load(Ordering::Acquire);
        check(head, tail, self.capacity())
    }

    /// How many entries the consumer has taken, ever (its free-running index): the
    /// manager's watchdog compares it over time to see whether a consumer still reads.
    pub fn consumed(&self) -> u32 {
        self.ctl.head.word.load(Ordering::Acquire)
    }

    /// How many entries the producer has published, ever (its free-running index): the
    /// manager marks where an instance's queue ended when its flows moved.
    pub fn produced(&self) -> u32 {
        self.ctl.tail.word.load(Ordering::Acquire)
    }

    pub fn is_empty(&self) -> Result<bool, RingError> {
        Ok(self.len()? == 0)
    }

    /// Copy out the published entries without consuming them (audit, crash reclaim).
    pub fn snapshot(&self, out: &mut Vec<u32>) -> Result<(), RingError> {
        let head = self.ctl.head.word.load(Ordering::Acquire);
        let tail = self.ctl.tail.word.load(Ordering::Acquire);
        let n = check(head, tail, self.capacity())?;
        let mask = self.capacity() - 1;
        out.extend((0..n).map(|i| self.slots[(head.wrapping_add(i) & mask) as usize].load(Ordering::Relaxed)));
        Ok(())
    }

    /// The owner ids of the producer and consumer, as last set by [`RingRef::set_ends`].
    pub fn ends(&self) -> (u16, u16) {
        let v = self.ctl.ends.word.load(Ordering::Acquire);
        (v as u16, (v >> 16) as u16)
    }

    /// Empty the ring by moving its head to its tail (manager only, when neither end is
    /// alive: a ring a crashed or buggy NF left, before its ID is used again). Whatever
    /// the indices held, the ring is consistent and empty afterwards.
    pub fn reset(&self) {
        let tail = self.ctl.tail.word.load(Ordering::Acquire);
        self.ctl.head.word.store(tail, Ordering::Release);
    }

    /// Record which owners produce into and consume from this ring (manager only).
    pub fn set_ends(&self, producer: u16, consumer: u16) {
        self.ctl
            .ends
            .word
            .store(producer as u32 | (consumer as u32) << 16, Ordering::Release);
    }
}

/// Copy indices into ring slots. The slots a producer writes are, by the protocol, read by
/// nobody until it publishes them, so a plain (vectorisable) copy is race-free; loom
/// models it with per-slot atomic stores.
#[inline]
fn store_slots(slots: &[AtomicU32], items: &[u32]) {
    debug_assert_eq!(slots.len(), items.len());
    if items.is_empty() {
        return;
    }
    #[cfg(not(loom))]
    // SAFETY: `slots` and `items` have the same length (callers slice them so), AtomicU32
    // has the size and alignment of u32, and the regions cannot overlap (one is in the
    // ring, the other the caller's buffer). No one reads these slots concurrently: the
    // consumer reads only published slots and these are not yet published. A buggy peer
    // racing here could only see or leave wrong numbers, which readers bounds-check.
    unsafe {
        std::ptr::copy_nonoverlapping(
            items.as_ptr(),
            AtomicU32::as_ptr(&slots[0]),
            items.len().min(slots.len()),
        )
    };
    #[cfg(loom)]
    for (slot, &v) in slots.iter().zip(items) {
        slot.store(v, Ordering::Relaxed);
    }
}

/// Copy indices out of published ring slots (see [`store_slots`]).
#[inline]
fn load_slots(slots: &[AtomicU32], out: &mut [u32]) {
    debug_assert_eq!(slots.len(), out.len());
    if out.is_empty() {
        return;
    }
    #[cfg(not(loom))]
    // SAFETY: as in `store_slots`: equal lengths, same layout, no overlap; the producer
    // does not write published slots until we release them by advancing our index.
    unsafe {
        std::ptr::copy_nonoverlapping(
            AtomicU32::as_ptr(&slots[0]),
            out.as_mut_ptr(),
            out.len().min(slots.len()),
        )
    };
    #[cfg(loom)]
    for (o, slot) in out.iter_mut().zip(slots) {
        *o = slot.load(Ordering::Relaxed);
    }
}

/// Number of entries between `head` and `tail`, or an error when it cannot be.
#[inline]
fn check(head: u32, tail: u32, capacity: u32) -> Result<u32, RingError> {
    let n = tail.wrapping_sub(head);
    if n > capacity {
        return Err(RingError::Corrupt { head, tail, capacity });
    }
    Ok(n)
}

/// The producing end of a ring. There must be one per ring across all processes; the
/// manager's ring assignment guarantees that.
#[derive(Debug)]
pub struct Producer<'a> {
    ring: RingRef<'a>,
    mask: u32,
    /// Our own index (we are its only writer).
    tail: u32,
    /// Last consumer index we read.
    head_cache: u32,
    /// At most this many entries in the ring ([`Producer::limit_to`]; the capacity by
    /// default).
    limit: u32,
}

impl<'a> Producer<'a> {
    pub fn new(ring: RingRef<'a>) -> Self {
        let tail = ring.ctl.tail.word.load(Ordering::Acquire);
        let head_cache = ring.ctl.head.word.load(Ordering::Acquire);
        Producer {
            ring,
            mask: ring.capacity() - 1,
            tail,
            head_cache,
            limit: ring.capacity(),
        }
    }

    pub fn capacity(&self) -> u32 {
        self.mask + 1
    }

    /// Never let the ring hold more than `n` entries (at least 1, at most the
    /// capacity): a sender caps what a stalled consumer can hold of the pool. Only this
    /// end's view: [`Producer::free`] and the enqueues count from it.
    pub fn limit_to(&mut self, n: u32) {
        self.limit = n.clamp(1, self.capacity());
    }

    /// Free slots, re-reading the consumer's index. A corrupt one is not cached (the
    /// last valid one stays, and the slots it freed are still free) and makes us
    /// republish our own index, in case the scribble hit both (see the module docs).
    pub fn free(&mut self) -> Result<u32, RingError> {
        // A-head: pairs with R-head in `Consumer::commit`.
        let head = self.ring.ctl.head.word.load(Ordering::Acquire);
        match check(head, self.tail, self.capacity()) {
            Ok(n) => {
                self.head_cache = head;
                Ok(self.limit.saturating_sub(n))
            }
            Err(e) => {
                self.heal();
                Err(e)
            }
        }
    }

    /// Republish our index if the shared one differs (a peer scribbled it). One relaxed
    /// load when it does not, so calling it at every idle point is cheap. Whether it
    /// had to.
    #[inline]
    pub fn heal(&self) -> bool {
        let word = &self.ring.ctl.tail.word;
        if word.load(Ordering::Relaxed) == self.tail {
            return false;
        }
        // R-tail (as in `write`): the slots up to our index were written before.
        word.store(self.tail, Ordering::Release);
        true
    }

    /// Free slots for a burst of `want`, touching the shared index only when needed.
    #[inline]
    pub(crate) fn room(&mut self, want: u32) -> Result<u32, RingError> {
        // The cached index may be stale but was validated when read; the initial one was
        // not, hence the checked subtraction.
        if let Some(free) = self.limit.checked_sub(self.tail.wrapping_sub(self.head_cache))
            && free >= want
        {
            return Ok(free);
        }
        self.free()
    }

    /// Enqueue as many of `items` as fit; returns how many.
    #[inline]
    pub fn enqueue_burst(&mut self, items: &[u32]) -> Result<usize, RingError> {
        let n = (self.room(items.len() as u32)? as usize).min(items.len());
        self.write(&items[..n]);
        Ok(n)
    }

    /// Enqueue all of `items` or none; returns whether they went in.
    #[inline]
    pub fn enqueue_bulk(&mut self, items: &[u32]) -> Result<bool, RingError> {
        if (self.room(items.len() as u32)? as usize) < items.len() {
            return Ok(false);
        }
        self.write(items);
        Ok(true)
    }

    /// Write `items` into the slots after our index and publish them. Caller checked room.
    #[inline]
    pub(crate) fn write(&mut self, items: &[u32]) {
        if items.is_empty() {
            return;
        }
        let pos = (self.tail & self.mask) as usize;
        // Two contiguous pieces: up to the end of the slot array, then from its start.
        let first = items.len().min(self.ring.slots.len() - pos);
        store_slots(&self.ring.slots[pos..pos + first], &items[..first]);
        store_slots(&self.ring.slots[..items.len() - first], &items[first..]);
        self.tail = self.tail.wrapping_add(items.len() as u32);
        // R-tail: pairs with A-tail in `Consumer::ready`.
        self.ring.ctl.tail.word.store(self.tail, Ordering::Release);
    }

    /// Wake the consumer if it sleeps on the doorbell (shared-core mode). Call after an
    /// enqueue. The fence pairs with the one in [`Consumer::wait`]: either the consumer
    /// sees our new index, or we see its `SLEEPING` and wake it.
    pub fn notify(&self) {
        fence(Ordering::SeqCst);
        let bell = &self.ring.ctl.bell.word;
        if bell.load(Ordering::Relaxed) == SLEEPING && bell.swap(AWAKE, Ordering::SeqCst) == SLEEPING {
            futex_wake(bell);
        }
    }
}

/// The consuming end of a ring; one per ring across all processes.
#[derive(Debug)]
pub struct Consumer<'a> {
    ring: RingRef<'a>,
    mask: u32,
    /// Our own index (we are its only writer).
    head: u32,
    /// Last producer index we read (validated).
    tail_cache: u32,
    /// The last corrupt producer index seen, and in how many corrupt polls since it
    /// first was (a valid poll does not reset it: the success path stays as lean as a
    /// ring without healing; the same wild value coming back is as good as staying).
    bad_tail: u32,
    bad_polls: u32,
}

/// Corrupt polls (no other corrupt value between) that must find the same producer index more than the capacity ahead
/// before the consumer takes it as true (see [`Consumer::ready`]): enough that a stray
/// write is almost always undone first by the producer (its next write, or its heal
/// every few hundred passes), so the consumer rarely reads a ring's worth of stale slots.
const JUMP_AFTER: u32 = 1024;

impl<'a> Consumer<'a> {
    pub fn new(ring: RingRef<'a>) -> Self {
        let head = ring.ctl.head.word.load(Ordering::Acquire);
        Consumer {
            ring,
            mask: ring.capacity() - 1,
            head,
            tail_cache: head,
            bad_tail: head,
            bad_polls: 0,
        }
    }

    pub fn capacity(&self) -> u32 {
        self.mask + 1
    }

    /// The ring this end reads (for its recorded ends: [`RingRef::ends`]).
    #[inline]
    pub fn ring(&self) -> RingRef<'a> {
        self.ring
    }

    /// Entries ready, re-reading the producer's index. A corrupt one republishes our
    /// own index ([`Consumer::heal`]), after resyncing it when it is
    /// ahead of the producer's (we read past a scribbled producer index: see the module
    /// docs), and this call reads nothing.
    pub fn ready(&mut self) -> Result<u32, RingError> {
        // A-tail: pairs with R-tail in `Producer::write`.
        let tail = self.ring.ctl.tail.word.load(Ordering::Acquire);
        match check(self.head, tail, self.capacity()) {
            // The success path is the original one: the consumer's own republishing is
            // done at its owner's idle points (see the module docs), not on every empty
            // poll, which cost a self-looping NF 6-7 % of its rate.
            Ok(n) => {
                self.tail_cache = tail;
                Ok(n)
            }
            Err(e) => {
                self.corrupt(tail);
                Err(e)
            }
        }
    }

    /// The producer's index `tail` is impossible from here. If our index is ahead of it
    /// by at most the capacity, what we read past it were stale slots: go back to it.
    /// Otherwise keep ours (the producer republishes its index). Either way publish
    /// ours.
    ///
    /// A producer index more than the capacity ahead of ours is a scribble the producer
    /// will undo (its next write or heal), or the producer really ran ahead (it trusted
    /// a consumer index scribbled forward in range and overwrote slots we had not read).
    /// Only the second stays: seen in [`JUMP_AFTER`] corrupt polls, unchanged, we take the
    /// last `capacity` entries it wrote as the ring's contents (they are exactly what is
    /// in the slots; should it be a scribble after all, they are stale indices the claim
    /// checks reject), so the two ends agree again whatever was written.
    #[cold]
    #[inline(never)]
    fn corrupt(&mut self, tail: u32) {
        let cap = self.capacity();
        if self.head.wrapping_sub(tail) <= cap {
            self.head = tail;
            self.bad_polls = 0;
        } else if tail == self.bad_tail {
            self.bad_polls += 1;
            if self.bad_polls >= JUMP_AFTER {
                self.head = tail.wrapping_sub(cap);
                self.bad_polls = 0;
            }
        } else {
            self.bad_tail = tail;
            self.bad_polls = 1;
        }
        self.tail_cache = self.head;
        self.heal();
    }

    /// Republish our index if the shared one differs (a peer scribbled it). One relaxed
    /// load when it does not. Whether it had to.
    #[inline]
    pub fn heal(&self) -> bool {
        let word = &self.ring.ctl.head.word;
        if word.load(Ordering::Relaxed) == self.head {
            return false;
        }
        // R-head (as in `commit`): we finished reading the slots before our index.
        word.store(self.head, Ordering::Release);
        true
    }

    #[inline]
    fn avail(&mut self, want: u32) -> Result<u32, RingError> {
        let n = self.tail_cache.wrapping_sub(self.head);
        if n >= want {
            return Ok(n);
        }
        self.ready()
    }

    /// Ask for the slot lines the next burst will be read from, alongside the read of the
    /// producer's index rather than after it: under load the producer has usually
    /// written them already, so the two cross-core transfers overlap.
    #[cfg(not(loom))]
    #[inline]
    pub fn prefetch_slots(&self) {
        let pos = (self.head & self.mask) as usize;
        crate::sync::prefetch_read(AtomicU32::as_ptr(&self.ring.slots[pos]).cast());
        let next = (pos + 16) & self.mask as usize;
        crate::sync::prefetch_read(AtomicU32::as_ptr(&self.ring.slots[next]).cast());
    }

    /// Copy up to `out.len()` entries into `out` without consuming them. Follow with
    /// [`Consumer::commit`]. Lets the caller finish its work on the entries (e.g. take
    /// ownership of the buffers) before the producer may reuse the slots.
    #[inline]
    pub fn peek_burst(&mut self, out: &mut [u32]) -> Result<usize, RingError> {
        let n = (self.avail(out.len() as u32)? as usize).min(out.len());
        self.read(&mut out[..n]);
        Ok(n)
    }

    /// Consume `n` entries previously peeked.
    #[inline]
    pub fn commit(&mut self, n: usize) {
        debug_assert!(n as u32 <= self.tail_cache.wrapping_sub(self.head));
        self.head = self.head.wrapping_add(n as u32);
        // R-head: pairs with A-head in `Producer::free`.
        self.ring.ctl.head.word.store(self.head, Ordering::Release);
    }

    /// Dequeue up to `out.len()` entries; returns how many.
    #[inline]
    pub fn dequeue_burst(&mut self, out: &mut [u32]) -> Result<usize, RingError> {
        let n = self.peek_burst(out)?;
        if n > 0 {
            self.commit(n);
        }
        Ok(n)
    }

    /// Dequeue exactly `out.len()` entries or none; returns whether it did.
    #[inline]
    pub fn dequeue_bulk(&mut self, out: &mut [u32]) -> Result<bool, RingError> {
        if (self.avail(out.len() as u32)? as usize) < out.len() {
            return Ok(false);
        }
        self.read(out);
        self.commit(out.len());
        Ok(true)
    }

    #[inline]
    fn read(&self, out: &mut [u32]) {
        let pos = (self.head & self.mask) as usize;
        let first = out.len().min(self.ring.slots.len() - pos);
        let (a, b) = out.split_at_mut(first);
        load_slots(&self.ring.slots[pos..pos + first], a);
        load_slots(&self.ring.slots[..b.len()], b);
    }

    /// Sleep on the doorbell until the ring has entries or `timeout` passes (shared-core
    /// mode). Returns the number of entries ready.
    ///
    /// Protocol (Dekker-style, with [`Producer::notify`]): announce `SLEEPING`, full
    /// fence, re-check the ring; only then sleep. Either the producer's enqueue is seen by
    /// the re-check, or the producer's check after its fence sees `SLEEPING` and wakes us.
    pub fn wait(&mut self, timeout: Option<Duration>) -> Result<u32, RingError> {
        // A corrupt ring counts as "ready", so the error comes back at once.
        self.wait_until(|c| c.ready().map_or(true, |n| n > 0), timeout);
        self.ready()
    }

    /// The doorbell protocol of [`Consumer::wait`] with the re-check supplied by the
    /// caller: sleep until `ready` (called after the announcement) says there is work,
    /// or a producer rings, or `timeout` passes. A party that polls several rings (the
    /// manager) sleeps on one bell that all its producers ring, and re-checks them all.
    pub fn wait_until(&mut self, mut ready: impl FnMut(&mut Self) -> bool, timeout: Option<Duration>) {
        if ready(self) {
            return;
        }
        let bell = &self.ring.ctl.bell.word;
        bell.store(SLEEPING, Ordering::SeqCst);
        fence(Ordering::SeqCst);
        if !ready(self) {
            futex_wait(bell, SLEEPING, timeout);
        }
        bell.store(AWAKE, Ordering::Relaxed);
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::VecDeque;

    fn slots(n: usize) -> Vec<AtomicU32> {
        (0..n).map(|_| AtomicU32::new(0)).collect()
    }

    #[test]
    fn capacity_must_be_power_of_two() {
        let ctl = RingCtl::new_local();
        assert_eq!(RingRef::new(&ctl, &slots(6)).unwrap_err(), RingError::BadCapacity(6));
        assert_eq!(RingRef::new(&ctl, &slots(1)).unwrap_err(), RingError::BadCapacity(1));
        assert!(RingRef::new(&ctl, &slots(8)).is_ok());
    }

    #[test]
    fn wraps_around_and_keeps_order() {
        let ctl = RingCtl::new_local();
        let s = slots(4);
        let r = RingRef::new(&ctl, &s).unwrap();
        let (mut p, mut c) = (Producer::new(r), Consumer::new(r));
        let mut out = [0u32; 3];
        for round in 0..10u32 {
            assert_eq!(p.enqueue_burst(&[round, round + 100, round + 200]).unwrap(), 3);
            assert_eq!(c.dequeue_burst(&mut out).unwrap(), 3);
            assert_eq!(out, [round, round + 100, round + 200]);
        }
    }

    #[test]
    fn bulk_is_all_or_nothing() {
        let ctl = RingCtl::new_local();
        let s = slots(4);
        let r = RingRef::new(&ctl, &s).unwrap();
        let (mut p, mut c) = (Producer::new(r), Consumer::new(r));
        assert!(p.enqueue_bulk(&[1, 2, 3]).unwrap());
        assert!(!p.enqueue_bulk(&[4, 5]).unwrap(), "only one slot free");
        assert_eq!(r.len().unwrap(), 3);
        let mut two = [0; 2];
        assert!(c.dequeue_bulk(&mut two).unwrap());
        assert_eq!(two, [1, 2]);
        assert!(!c.dequeue_bulk(&mut two).unwrap(), "only one entry left");
        assert_eq!(c.dequeue_burst(&mut two).unwrap(), 1);
        assert_eq!(two[0], 3);
    }

    #[test]
    fn head_past_tail_is_reported_not_trusted() {
        let ctl = RingCtl::new_local();
        let s = slots(8);
        let r = RingRef::new(&ctl, &s).unwrap();
        let mut c = Consumer::new(r);
        // A buggy peer publishes a producer index 1000 slots ahead of an 8-slot ring.
        ctl.tail.word.store(1000, Ordering::Release);
        let mut out = [0; 4];
        assert_eq!(
            c.dequeue_burst(&mut out).unwrap_err(),
            RingError::Corrupt {
                head: 0,
                tail: 1000,
                capacity: 8
            }
        );
        // And a consumer index ahead of the producer's (head past tail).
        ctl.tail.word.store(0, Ordering::Release);
        ctl.head.word.store(5, Ordering::Release);
        let mut p = Producer::new(r);
        assert_eq!(
            p.enqueue_burst(&[1]).unwrap_err(),
            RingError::Corrupt {
                head: 5,
                tail: 0,
                capacity: 8
            }
        );
        assert!(matches!(p.free(), Err(RingError::Corrupt { .. })));
        assert!(matches!(r.len(), Err(RingError::Corrupt { .. })));
    }

    /// A ring of 8 slots, its two ends, and a way to scribble its indices.
    fn scribbled<T>(f: impl FnOnce(&RingCtl, Producer<'_>, Consumer<'_>) -> T) -> T {
        let ctl = RingCtl::new_local();
        let s = slots(8);
        let r = RingRef::new(&ctl, &s).unwrap();
        f(&ctl, Producer::new(r), Consumer::new(r))
    }

    #[test]
    fn a_corrupt_head_is_no_room_until_the_consumer_heals() {
        scribbled(|ctl, mut p, mut c| {
            let mut out = [0; 8];
            // Fill the ring, so the producer's cache says full and it must re-read.
            assert_eq!(p.enqueue_burst(&[1, 2, 3, 4, 5, 6, 7, 8]).unwrap(), 8);
            assert_eq!(c.dequeue_burst(&mut out).unwrap(), 8);
            ctl.head.word.store(0xdead_beef, Ordering::Relaxed);
            assert!(matches!(p.enqueue_burst(&[9]), Err(RingError::Corrupt { .. })));
            assert!(matches!(p.enqueue_bulk(&[9]), Err(RingError::Corrupt { .. })));
            assert_eq!(
                ctl.tail.word.load(Ordering::Relaxed),
                8,
                "the producer's own index is intact"
            );
            // An empty poll leaves it (the hot path does not heal); the consumer's
            // owner's periodic heal republishes its index.
            assert_eq!(c.dequeue_burst(&mut out).unwrap(), 0);
            assert_eq!(ctl.head.word.load(Ordering::Relaxed), 0xdead_beef);
            assert!(c.heal());
            assert_eq!(ctl.head.word.load(Ordering::Relaxed), 8);
            assert_eq!(p.enqueue_burst(&[9, 10]).unwrap(), 2);
            assert_eq!(c.dequeue_burst(&mut out).unwrap(), 2);
            assert_eq!(out[..2], [9, 10]);
        });
    }

    #[test]
    fn a_corrupt_tail_is_nothing_new_until_the_producer_writes_or_heals() {
        scribbled(|ctl, mut p, mut c| {
            let mut out = [0; 8];
            assert_eq!(p.enqueue_burst(&[1, 2]).unwrap(), 2);
            assert_eq!(c.dequeue_burst(&mut out).unwrap(), 2);
            ctl.tail.word.store(0x8000_0000, Ordering::Relaxed);
            assert!(matches!(c.dequeue_burst(&mut out), Err(RingError::Corrupt { .. })));
            assert_eq!(
                ctl.head.word.load(Ordering::Relaxed),
                2,
                "the consumer's own index is intact"
            );
            // The next write publishes the true index: the ring is whole again.
            assert_eq!(p.enqueue_burst(&[3]).unwrap(), 1);
            assert_eq!(c.dequeue_burst(&mut out).unwrap(), 1);
            assert_eq!(out[0], 3);
            // With nothing to send, the producer's periodic heal does it.
            ctl.tail.word.store(77, Ordering::Relaxed);
            assert!(c.ready().is_err());
            assert!(p.heal());
            assert!(!p.heal(), "nothing to do the second time");
            assert_eq!(c.ready().unwrap(), 0);
        });
    }

    #[test]
    fn a_tail_scribbled_forward_in_range_makes_the_consumer_resync() {
        scribbled(|ctl, mut p, mut c| {
            let mut out = [0; 8];
            assert_eq!(p.enqueue_burst(&[1, 2]).unwrap(), 2);
            assert_eq!(c.dequeue_burst(&mut out).unwrap(), 2);
            // In range: 5 "entries" that are stale slots. The consumer cannot tell.
            ctl.tail.word.store(7, Ordering::Relaxed);
            assert_eq!(c.dequeue_burst(&mut out).unwrap(), 5);
            assert_eq!(ctl.head.word.load(Ordering::Relaxed), 7);
            // The producer (its cache says 6 free, it wants 7) re-reads: the consumer's
            // index is past its own, so it writes nothing and republishes its index.
            assert!(p.enqueue_burst(&[3, 4, 5, 6, 7, 8, 9]).is_err());
            assert_eq!(ctl.tail.word.load(Ordering::Relaxed), 2);
            // The consumer finds its index ahead of the producer's and goes back to it.
            assert!(c.ready().is_err());
            assert_eq!(ctl.head.word.load(Ordering::Relaxed), 2);
            assert_eq!(p.enqueue_burst(&[3, 4]).unwrap(), 2);
            assert_eq!(c.dequeue_burst(&mut out).unwrap(), 2);
            assert_eq!(out[..2], [3, 4], "nothing the producer wrote after the resync is lost");
        });
    }

    /// A third party writes random indices into both words, often, while both sides run
    /// on: nothing panics, every call returns, and once it stops the ring is a FIFO again.
    #[test]
    fn persistent_scribbling_never_panics_and_heals_when_it_stops() {
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let mut rnd = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u32
        };
        scribbled(|ctl, mut p, mut c| {
            let mut out = [0; 8];
            let mut next = 0u32;
            for _ in 0..100_000 {
                match rnd() % 4 {
                    0 => {
                        let w = rnd();
                        let near = p.tail.wrapping_add(w % 24).wrapping_sub(12);
                        let v = if w & 1 == 0 { w } else { near };
                        if w & 2 == 0 {
                            ctl.head.word.store(v, Ordering::Relaxed);
                        } else {
                            ctl.tail.word.store(v, Ordering::Relaxed);
                        }
                    }
                    1 => {
                        let k = rnd() % 9;
                        let items: Vec<u32> = (next..next + k).collect();
                        next += p.enqueue_burst(&items).unwrap_or(0) as u32;
                    }
                    2 => {
                        let k = (rnd() % 9) as usize;
                        let _ = c.dequeue_burst(&mut out[..k]);
                    }
                    _ => {
                        p.heal();
                        c.heal();
                    }
                }
            }
            // The scribbler stops: within a few polls and writes the ring works again.
            for _ in 0..2 * JUMP_AFTER {
                let _ = c.dequeue_burst(&mut out);
                let _ = p.enqueue_burst(&[]);
                p.heal();
                c.heal();
            }
            let _ = c.dequeue_burst(&mut out);
            assert_eq!(p.enqueue_burst(&[1, 2, 3]).unwrap(), 3);
            assert_eq!(c.dequeue_burst(&mut out).unwrap(), 3);
            assert_eq!(out[..3], [1, 2, 3]);
        });
    }

    #[test]
    fn a_limited_producer_fills_the_ring_only_to_its_limit() {
        scribbled(|_, mut p, mut c| {
            p.limit_to(3);
            assert_eq!(p.enqueue_burst(&[1, 2, 3, 4, 5]).unwrap(), 3);
            assert_eq!(p.free().unwrap(), 0);
            let mut out = [0; 2];
            assert_eq!(c.dequeue_burst(&mut out).unwrap(), 2);
            assert_eq!(p.enqueue_burst(&[6, 7, 8]).unwrap(), 2);
            p.limit_to(0);
            assert_eq!(p.capacity(), 8);
            assert_eq!(c.dequeue_burst(&mut out).unwrap(), 2);
            assert_eq!(p.enqueue_burst(&[9, 10]).unwrap(), 0, "3 queued, a limit of 1");
        });
    }

    #[test]
    fn snapshot_does_not_consume() {
        let ctl = RingCtl::new_local();
        let s = slots(8);
        let r = RingRef::new(&ctl, &s).unwrap();
        let mut p = Producer::new(r);
        p.enqueue_burst(&[7, 8, 9]).unwrap();
        let mut v = Vec::new();
        r.snapshot(&mut v).unwrap();
        assert_eq!(v, [7, 8, 9]);
        assert_eq!(r.len().unwrap(), 3);
    }

    #[test]
    fn doorbell_wakes_a_sleeping_consumer_thread() {
        let ctl = RingCtl::new_local();
        let s = slots(8);
        let r = RingRef::new(&ctl, &s).unwrap();
        std::thread::scope(|sc| {
            let h = sc.spawn(|| {
                let mut c = Consumer::new(r);
                let t = std::time::Instant::now();
                let n = c.wait(Some(Duration::from_secs(10))).unwrap();
                (n, t.elapsed())
            });
            std::thread::sleep(Duration::from_millis(50));
            let mut p = Producer::new(r);
            p.enqueue_burst(&[42]).unwrap();
            p.notify();
            let (n, waited) = h.join().unwrap();
            assert_eq!(n, 1);
            assert!(
                waited < Duration::from_secs(5),
                "woken by the doorbell, not the timeout"
            );
        });
    }

    #[test]
    fn wait_times_out_on_an_empty_ring() {
        let ctl = RingCtl::new_local();
        let s = slots(8);
        let mut c = Consumer::new(RingRef::new(&ctl, &s).unwrap());
        let t = std::time::Instant::now();
        assert_eq!(c.wait(Some(Duration::from_millis(30))).unwrap(), 0);
        assert!(t.elapsed() >= Duration::from_millis(25));
    }

    #[derive(Debug, Clone)]
    enum Op {
        Enq { n: usize, bulk: bool },
        Deq { n: usize, bulk: bool },
        PeekCommit { n: usize, keep: usize },
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            (0..40usize, any::<bool>()).prop_map(|(n, bulk)| Op::Enq { n, bulk }),
            (0..40usize, any::<bool>()).prop_map(|(n, bulk)| Op::Deq { n, bulk }),
            (0..40usize, 0..40usize).prop_map(|(n, keep)| Op::PeekCommit { n, keep }),
        ]
    }

    proptest! {
        /// The ring behaves exactly like a bounded FIFO (`VecDeque` capped at capacity),
        /// including when its indices wrap past u32::MAX.
        #[test]
        fn matches_vecdeque_model(cap_log in 1u32..7, start in any::<u32>(), ops in prop::collection::vec(op(), 1..200)) {
            let cap = 1usize << cap_log;
            let ctl = RingCtl::new_local();
            ctl.head.word.store(start, Ordering::Relaxed);
            ctl.tail.word.store(start, Ordering::Relaxed);
            let s = slots(cap);
            let r = RingRef::new(&ctl, &s).unwrap();
            let (mut p, mut c) = (Producer::new(r), Consumer::new(r));
            let mut model = VecDeque::new();
            let mut next = 0u32;
            for op in ops {
                match op {
                    Op::Enq { n, bulk } => {
                        let items: Vec<u32> = (next..next + n as u32).collect();
                        let room = cap - model.len();
                        if bulk {
                            let ok = p.enqueue_bulk(&items).unwrap();
                            prop_assert_eq!(ok, n <= room);
                            if ok { model.extend(&items); next += n as u32; }
                        } else {
                            let k = p.enqueue_burst(&items).unwrap();
                            prop_assert_eq!(k, n.min(room));
                            model.extend(&items[..k]);
                            next += k as u32;
                        }
                    }
                    Op::Deq { n, bulk } => {
                        let mut out = vec![0; n];
                        if bulk {
                            let ok = c.dequeue_bulk(&mut out).unwrap();
                            prop_assert_eq!(ok, n <= model.len());
                            if ok { prop_assert_eq!(out, model.drain(..n).collect::<Vec<_>>()); }
                        } else {
                            let k = c.dequeue_burst(&mut out).unwrap();
                            prop_assert_eq!(k, n.min(model.len()));
                            prop_assert_eq!(&out[..k], &model.drain(..k).collect::<Vec<_>>()[..]);
                        }
                    }
                    Op::PeekCommit { n, keep } => {
                        let mut out = vec![0; n];
                        let k = c.peek_burst(&mut out).unwrap();
                        prop_assert_eq!(k, n.min(model.len()));
                        prop_assert_eq!(&out[..k], &model.iter().take(k).copied().collect::<Vec<_>>()[..]);
                        let keep = keep.min(k);
                        c.commit(keep);
                        model.drain(..keep);
                    }
                }
                prop_assert_eq!(r.len().unwrap() as usize, model.len());
            }
        }
    }

    /// Two threads pass a million indices through a small ring in bursts: FIFO, no loss,
    /// no duplicates.
    #[test]
    fn two_threads_move_a_million_in_order() {
        const N: u32 = 1_000_000;
        let ctl = RingCtl::new_local();
        let s = slots(64);
        let r = RingRef::new(&ctl, &s).unwrap();
        std::thread::scope(|sc| {
            sc.spawn(|| {
                let mut p = Producer::new(r);
                let mut next = 0u32;
                while next < N {
                    let burst: Vec<u32> = (next..(next + 32).min(N)).collect();
                    next += p.enqueue_burst(&burst).unwrap() as u32;
                }
            });
            let mut c = Consumer::new(r);
            let mut expect = 0u32;
            let mut out = [0u32; 32];
            while expect < N {
                let k = c.dequeue_burst(&mut out).unwrap();
                for &v in &out[..k] {
                    assert_eq!(v, expect);
                    expect += 1;
                }
            }
        });
    }
}

#[cfg(all(test, loom))]
mod loom_tests {
    use super::*;
    use loom::sync::Arc;

    struct Owned {
        ctl: RingCtl,
        slots: Vec<AtomicU32>,
    }

    fn ring(cap: usize) -> Arc<Owned> {
        Arc::new(Owned {
            ctl: RingCtl::new_local(),
            slots: (0..cap).map(|_| AtomicU32::new(0)).collect(),
        })
    }

    /// Every interleaving of a producer pushing 3 values through a 2-slot ring (so it
    /// wraps and fills) and a consumer popping them: values arrive once, in order.
    #[test]
    fn spsc_delivers_in_order() {
        loom::model(|| {
            let o = ring(2);
            let o2 = o.clone();
            let t = loom::thread::spawn(move || {
                let r = RingRef::new(&o2.ctl, &o2.slots).unwrap();
                let mut p = Producer::new(r);
                let mut sent = 0u32;
                while sent < 3 {
                    if p.enqueue_burst(&[sent + 1]).unwrap() == 1 {
                        sent += 1;
                    } else {
                        loom::thread::yield_now();
                    }
                }
            });
            let r = RingRef::new(&o.ctl, &o.slots).unwrap();
            let mut c = Consumer::new(r);
            let mut got = Vec::new();
            let mut buf = [0u32; 2];
            while got.len() < 3 {
                let n = c.dequeue_burst(&mut buf).unwrap();
                if n == 0 {
                    loom::thread::yield_now();
                }
                got.extend_from_slice(&buf[..n]);
            }
            t.join().unwrap();
            assert_eq!(got, [1, 2, 3]);
        });
    }

    /// Burst of two through a 2-slot ring: the consumer never sees a slot before the
    /// producer's write to it is visible (Release/Acquire pairing).
    #[test]
    fn burst_publish_is_visible() {
        loom::model(|| {
            let o = ring(2);
            let o2 = o.clone();
            let t = loom::thread::spawn(move || {
                let r = RingRef::new(&o2.ctl, &o2.slots).unwrap();
                assert_eq!(Producer::new(r).enqueue_burst(&[10, 20]).unwrap(), 2);
            });
            let r = RingRef::new(&o.ctl, &o.slots).unwrap();
            let mut c = Consumer::new(r);
            let mut buf = [0u32; 2];
            let n = c.dequeue_burst(&mut buf).unwrap();
            assert!(n == 0 || (n == 2 && buf == [10, 20]));
            t.join().unwrap();
        });
    }

    /// The doorbell protocol never loses a wake-up: a consumer that goes to sleep on an
    /// empty ring is always woken by a producer that enqueues and notifies.
    #[test]
    fn doorbell_never_loses_a_wakeup() {
        loom::model(|| {
            let o = ring(2);
            let o2 = o.clone();
            let t = loom::thread::spawn(move || {
                let r = RingRef::new(&o2.ctl, &o2.slots).unwrap();
                let mut p = Producer::new(r);
                p.enqueue_burst(&[5]).unwrap();
                p.notify();
            });
            let r = RingRef::new(&o.ctl, &o.slots).unwrap();
            let mut c = Consumer::new(r);
            let mut n = 0;
            while n == 0 {
                n = c.wait(None).unwrap();
            }
            assert_eq!(n, 1);
            t.join().unwrap();
        });
    }
}
