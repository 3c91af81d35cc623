//! The clock of packet timestamps ([`crate::PktMeta::timestamp`]).

/// The monotonic clock (`CLOCK_MONOTONIC`) in nanoseconds: the clock ports (in the
/// manager, or an NF polling its own queue) stamp received packets with. It is
/// system-wide, so an NF in another process can subtract a packet's timestamp from its
/// own `now_ns()` to measure latency.
pub fn now_ns() -> u64 {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
    t.tv_sec as u64 * 1_000_000_000 + t.tv_nsec as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn now_ns_is_monotonic() {
        let a = now_ns();
        let b = now_ns();
        assert!(a > 0 && b >= a);
    }
}
