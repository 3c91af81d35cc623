//! The four rings of an AF_XDP socket, mapped from the kernel.
//!
//! Each ring is a single-producer/single-consumer array shared with the kernel: a
//! producer index, a consumer index, a flags word and the entries, at offsets the
//! kernel reports (`XDP_MMAP_OFFSETS`). The process produces on the fill and TX rings
//! and consumes the RX and completion rings; indices run free and wrap at 2^32, like
//! our own rings. Release on publish, Acquire on reading the other side's index, as the
//! kernel's `smp_load_acquire`/`smp_store_release` pair expects.

use std::io;
use std::marker::PhantomData;
use std::os::fd::BorrowedFd;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU32, Ordering};

use rustix::mm::{MapFlags, ProtFlags};
use rustix::net::xdp::XdpRingOffset;

/// `XDP_RING_NEED_WAKEUP` in a ring's flags word.
const NEED_WAKEUP: u32 = 1;

/// One mapped ring of entries of type `T` (`u64` addresses for fill and completion,
/// `xdp_desc` for RX and TX).
#[derive(Debug)]
pub struct XskRing<T> {
    map: NonNull<u8>,
    map_len: usize,
    producer: NonNull<AtomicU32>,
    consumer: NonNull<AtomicU32>,
    flags: NonNull<AtomicU32>,
    descs: NonNull<T>,
    mask: u32,
    /// This side's index (the only writer of it), kept locally.
    local: u32,
    /// The other side's index as last read.
    cached: u32,
    producing: bool,
    _t: PhantomData<T>,
}

// SAFETY: the mapping belongs to this value alone and is touched only through `&mut
// self` (or atomically through `&self`), so moving it to another thread is sound.
unsafe impl<T: Send> Send for XskRing<T> {}

impl<T: Copy> XskRing<T> {
    /// Map the ring at page offset `pgoff` of socket `fd`, `size` entries (a power of
    /// two, as set with its `setsockopt`), laid out as `off` says. `producing` is true
    /// for the rings this process fills (fill, TX).
    pub fn map(fd: BorrowedFd<'_>, pgoff: u64, off: &XdpRingOffset, size: u32, producing: bool) -> io::Result<Self> {
        let map_len = off.desc as usize + size as usize * std::mem::size_of::<T>();
        // SAFETY: a fresh shared mapping of a ring the socket set up, at an address the
        // kernel chooses (nothing is replaced), of the length the kernel's layout needs.
        let p = unsafe {
            rustix::mm::mmap(
                std::ptr::null_mut(),
                map_len,
                ProtFlags::READ | ProtFlags::WRITE,
                MapFlags::SHARED | MapFlags::POPULATE,
                fd,
                pgoff,
            )
        }?;
        let map = NonNull::new(p.cast::<u8>()).expect("mmap never returns null on success");
        let at = |o: u64| {
            // SAFETY: the kernel's offsets lie inside the ring's mapping (they are how the
            // kernel itself lays it out), so the pointer stays in bounds.
            unsafe { map.add(o as usize) }
        };
        let flags_off = off.flags.unwrap_or(off.consumer + 4);
        let mut ring = XskRing {
            map,
            map_len,
            producer: at(off.producer).cast(),
            consumer: at(off.consumer).cast(),
            flags: at(flags_off).cast(),
            descs: at(off.desc).cast(),
            mask: size - 1,
            local: 0,
            cached: 0,
            producing,
            _t: PhantomData,
        };
        if producing {
            ring.local = ring.producer().load(Ordering::Relaxed);
            // The producer may fill every slot the consumer has not yet taken.
            ring.cached = ring.consumer().load(Ordering::Acquire).wrapping_add(size);
        } else {
            ring.local = ring.consumer().load(Ordering::Relaxed);
            ring.cached = ring.producer().load(Ordering::Acquire);
        }
        Ok(ring)
    }

    fn producer(&self) -> &AtomicU32 {
        // SAFETY: a 4-aligned word inside the mapping (kernel layout), alive as long as
        // `self`, accessed only atomically by both sides.
        unsafe { self.producer.as_ref() }
    }

    fn consumer(&self) -> &AtomicU32 {
        // SAFETY: as for `producer`.
        unsafe { self.consumer.as_ref() }
    }

    /// Whether the kernel asked to be woken (`XDP_USE_NEED_WAKEUP` sockets).
    pub fn needs_wakeup(&self) -> bool {
        // SAFETY: as for `producer`.
        unsafe { self.flags.as_ref() }.load(Ordering::Relaxed) & NEED_WAKEUP != 0
    }

    fn slot(&self, i: u32) -> *mut T {
        // SAFETY: `i & mask` < size, and the mapping holds `size` entries at `descs`.
        unsafe { self.descs.as_ptr().add((i & self.mask) as usize) }
    }

    /// Producer: slots free now (re-reading the consumer only when the cache says full
    /// for `want`).
    pub fn free(&mut self, want: u32) -> u32 {
        debug_assert!(self.producing);
        let mut free = self.cached.wrapping_sub(self.local);
        if free < want {
            self.cached = self.consumer().load(Ordering::Acquire).wrapping_add(self.mask + 1);
            free = self.cached.wrapping_sub(self.local);
        }
        free
    }

    /// Producer: write `v` into the next free slot (the caller checked [`free`]);
    /// published by [`publish`](Self::publish).
    pub fn push(&mut self, v: T) {
        // SAFETY: the slot is free (the kernel consumed it), so the kernel does not read
        // it until we publish; in bounds per `slot`; `T` is plain data.
        unsafe { self.slot(self.local).write(v) };
        self.local = self.local.wrapping_add(1);
    }

    /// Producer: hand the pushed entries to the kernel.
    pub fn publish(&mut self) {
        self.producer().store(self.local, Ordering::Release);
    }

    /// Consumer: entries ready now.
    pub fn ready(&mut self) -> u32 {
        debug_assert!(!self.producing);
        let mut n = self.cached.wrapping_sub(self.local);
        if n == 0 {
            self.cached = self.producer().load(Ordering::Acquire);
            n = self.cached.wrapping_sub(self.local);
        }
        // A kernel never publishes more than the ring holds; if the index says so, trust
        // only what fits.
        n.min(self.mask + 1)
    }

    /// Consumer: take the next ready entry (the caller checked [`ready`]); the slot is
    /// given back by [`release`](Self::release).
    pub fn pop(&mut self) -> T {
        // SAFETY: the entry was published (Acquire in `ready`) and is not reused by the
        // kernel before we release it; in bounds; `T` is plain data valid for any bits.
        let v = unsafe { self.slot(self.local).read() };
        self.local = self.local.wrapping_add(1);
        v
    }

    /// Consumer: give the popped slots back to the kernel.
    pub fn release(&mut self) {
        self.consumer().store(self.local, Ordering::Release);
    }

    /// Entries published by the producer and not yet consumed (producer side view).
    pub fn pending(&self) -> u32 {
        self.local.wrapping_sub(self.consumer().load(Ordering::Acquire))
    }
}

impl<T> Drop for XskRing<T> {
    fn drop(&mut self) {
        // SAFETY: the mapping made in `map`, with its length, unmapped once; nothing
        // borrows it past `self`.
        let _ = unsafe { rustix::mm::munmap(self.map.as_ptr().cast(), self.map_len) };
    }
}
