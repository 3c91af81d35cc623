//! Atomics and futex calls, switchable to loom's models.
//!
//! The ring and doorbell algorithms are written once against these names. Under
//! `--cfg loom` they resolve to loom's instrumented types so `loom` can explore every
//! interleaving; otherwise they are the std atomics that live in the shared region.

#[cfg(loom)]
pub(crate) use loom::sync::atomic::{AtomicU32, Ordering, fence};
#[cfg(not(loom))]
pub(crate) use std::sync::atomic::{AtomicU32, Ordering, fence};

use std::time::Duration;

/// Sleep while `*word == expected`, for at most `timeout`.
///
/// Spurious returns are allowed (as with the real futex); callers re-check their condition.
#[cfg(not(loom))]
pub(crate) fn futex_wait(word: &AtomicU32, expected: u32, timeout: Option<Duration>) {
    use rustix::thread::futex;
    let ts = timeout.map(|t| rustix::time::Timespec {
        tv_sec: t.as_secs() as i64,
        tv_nsec: t.subsec_nanos() as _,
    });
    // No PRIVATE flag: the word lives in a MAP_SHARED mapping and the waker may be
    // another process. EAGAIN (value already changed), EINTR and ETIMEDOUT all just
    // mean "go and look again".
    let _ = futex::wait(word, futex::Flags::empty(), expected, ts.as_ref());
}

/// Wake every sleeper on `word`, in any process.
#[cfg(not(loom))]
pub(crate) fn futex_wake(word: &AtomicU32) {
    let _ = rustix::thread::futex::wake(word, rustix::thread::futex::Flags::empty(), i32::MAX as u32);
}

/// Loom model of a futex wait: yield until the word changes. A lost wake-up shows up
/// as a model that never finishes, which loom reports as a failure.
#[cfg(loom)]
pub(crate) fn futex_wait(word: &AtomicU32, expected: u32, _timeout: Option<Duration>) {
    while word.load(Ordering::SeqCst) == expected {
        loom::thread::yield_now();
    }
}

#[cfg(loom)]
pub(crate) fn futex_wake(_word: &AtomicU32) {}

/// Hint the CPU to fetch the cache line at `p` in a writable state (`prefetchw`: the
/// claim writes the owner word, so a plain read prefetch would still pay a second
/// cross-core round trip to upgrade the line).
#[cfg(not(loom))]
#[inline(always)]
pub(crate) fn prefetch_for_write(p: *const u8) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch is a hint with no architectural effect and never faults, even
    // for an invalid address (and `p` is inside the mapping anyway); CPUs without
    // PREFETCHW execute the 0F 0D opcode as a no-op. It touches no stack or flags.
    unsafe {
        std::arch::asm!("prefetchw [{0}]", in(reg) p, options(nostack, preserves_flags, readonly));
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

/// Hint the CPU to fetch the cache line at `p` for reading.
#[cfg(not(loom))]
#[inline(always)]
pub(crate) fn prefetch_read(p: *const u8) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: as for `prefetch_for_write`: a hint that never faults and has no
    // architectural effect.
    unsafe {
        std::arch::asm!("prefetcht0 [{0}]", in(reg) p, options(nostack, preserves_flags, readonly));
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}
