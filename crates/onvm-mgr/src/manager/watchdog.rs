//! The watchdog: which NFs stopped reading their rings.
//!
//! An NF that is stopped (SIGSTOP), stuck in its handler, or simply never reads again
//! holds its service's flows hostage: packets pile up in its rings and then drop. The
//! manager looks at every running NF's rings every [`super::WATCHDOG_EVERY`]: its rx
//! ring and the direct edges it reads (an NF fed only over an edge is watched the same
//! way; the edge ring would otherwise hold up to its capacity of buffers for as long
//! as the NF stays stopped). An NF whose rings hold packets while none of their
//! consumer indices has moved for the configured time is *hung*; one whose indices
//! move (or whose rings empty) again has *resumed*. The ring indices are the truth
//! here: counters an NF reports can lie, the index it must move to read cannot. A ring
//! found corrupt is no evidence either way (someone scribbled it): it does not count
//! as holding packets.
//!
//! It also counts, per instance, the corrupt rings the switch loop met, so that the
//! events about them can be throttled ([`Watchdog::ring_corrupt`]).
//!
//! Pure: the caller passes the indices, whether packets wait, and the time.

use std::time::{Duration, Instant};

/// What changed for an instance.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Change {
    /// It has not read for `for_` while packets waited.
    Hung { for_: Duration },
    /// It reads again.
    Resumed,
}

#[derive(Clone, Debug)]
struct Seen {
    /// Each ring it reads, with its consumer index.
    rings: Vec<(u32, u32)>,
    since: Instant,
    hung: bool,
}

/// Per instance (index `id - 1`): its rings' consumer indices when they last moved.
#[derive(Debug)]
pub(super) struct Watchdog {
    after: Duration,
    seen: Vec<Option<Seen>>,
    /// Per instance: reads or writes of its rx or tx ring that found it corrupt.
    corrupt: Vec<u64>,
}

impl Watchdog {
    /// Instances hung after `after` without reading (`Duration::ZERO`: never).
    pub(super) fn new(after: Duration, instances: usize) -> Watchdog {
        Watchdog {
            after,
            seen: vec![None; instances],
            corrupt: vec![0; instances],
        }
    }

    /// Instance `id`'s rx or tx ring was found corrupt once more: how many times so far
    /// (for `control::worth_logging`).
    pub(super) fn ring_corrupt(&mut self, id: u16) -> u64 {
        match usize::from(id).checked_sub(1).and_then(|i| self.corrupt.get_mut(i)) {
            Some(n) => {
                *n += 1;
                *n
            }
            None => 0,
        }
    }

    /// Look at instance `id`: the rings it reads, each with its consumer index, and
    /// whether packets wait in any of them, at `now`. It moved if a ring it read at the
    /// last look has another index now; a ring that starts or stops being read (an edge
    /// opens or closes) is no movement.
    pub(super) fn observe(&mut self, id: u16, rings: &[(u32, u32)], waiting: bool, now: Instant) -> Option<Change> {
        if self.after.is_zero() {
            return None;
        }
        let slot = self.seen.get_mut(usize::from(id).checked_sub(1)?)?;
        let s = slot.get_or_insert_with(|| Seen {
            rings: rings.to_vec(),
            since: now,
            hung: false,
        });
        let moved = rings
            .iter()
            .any(|&(r, c)| s.rings.iter().any(|&(was, before)| was == r && before != c));
        s.rings.clear();
        s.rings.extend_from_slice(rings);
        if moved || !waiting {
            s.since = now;
            return std::mem::replace(&mut s.hung, false).then_some(Change::Resumed);
        }
        let for_ = now.saturating_duration_since(s.since);
        if !s.hung && for_ >= self.after {
            s.hung = true;
            return Some(Change::Hung { for_ });
        }
        None
    }

    /// Instance `id` is gone: a new one with its ID starts afresh.
    pub(super) fn forget(&mut self, id: u16) {
        if let Some(s) = usize::from(id).checked_sub(1).and_then(|i| self.seen.get_mut(i)) {
            *s = None;
        }
        if let Some(n) = usize::from(id).checked_sub(1).and_then(|i| self.corrupt.get_mut(i)) {
            *n = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn a_ring_that_waits_and_does_not_move_is_hung_then_resumes() {
        let t0 = Instant::now();
        let mut w = Watchdog::new(500 * MS, 4);
        assert_eq!(w.observe(2, &[(0, 10)], true, t0), None);
        assert_eq!(w.observe(2, &[(0, 10)], true, t0 + 499 * MS), None);
        assert_eq!(
            w.observe(2, &[(0, 10)], true, t0 + 500 * MS),
            Some(Change::Hung { for_: 500 * MS })
        );
        assert_eq!(w.observe(2, &[(0, 10)], true, t0 + 900 * MS), None, "reported once");
        assert_eq!(w.observe(2, &[(0, 11)], true, t0 + 950 * MS), Some(Change::Resumed));
        assert_eq!(
            w.observe(2, &[(0, 11)], true, t0 + 1400 * MS),
            None,
            "the clock starts again"
        );
        assert_eq!(
            w.observe(2, &[(0, 11)], true, t0 + 1450 * MS),
            Some(Change::Hung { for_: 500 * MS })
        );
    }

    #[test]
    fn an_idle_nf_is_not_hung_and_moving_resets_the_clock() {
        let t0 = Instant::now();
        let mut w = Watchdog::new(500 * MS, 4);
        // Nothing waits: however long its index stays, it is idle, not hung.
        for ms in (0..5000).step_by(100) {
            assert_eq!(w.observe(1, &[(0, 7)], false, t0 + ms * MS), None);
        }
        // A slow reader is not hung: its index moves.
        for (k, ms) in (5000..8000).step_by(400).enumerate() {
            assert_eq!(w.observe(1, &[(0, 8 + k as u32)], true, t0 + ms * MS), None);
        }
        // An index that wraps still moves.
        assert_eq!(w.observe(3, &[(0, u32::MAX)], true, t0), None);
        assert_eq!(w.observe(3, &[(0, 0)], true, t0 + 600 * MS), None);
    }

    #[test]
    fn any_ring_moving_is_reading_and_rings_coming_or_going_are_not() {
        let t0 = Instant::now();
        let mut w = Watchdog::new(500 * MS, 4);
        // Its rx ring (0) is empty; an edge (900) holds packets and does not move.
        assert_eq!(w.observe(1, &[(0, 5), (900, 40)], true, t0), None);
        // Another edge opens into it, and one closes: no movement, the clock runs on.
        assert_eq!(w.observe(1, &[(0, 5), (900, 40), (901, 0)], true, t0 + 300 * MS), None);
        assert_eq!(
            w.observe(1, &[(0, 5), (901, 0)], true, t0 + 500 * MS),
            Some(Change::Hung { for_: 500 * MS })
        );
        // An edge closing while it is hung does not make it resume.
        assert_eq!(w.observe(1, &[(0, 5)], true, t0 + 600 * MS), None);
        // Its rx ring moves: it reads.
        assert_eq!(w.observe(1, &[(0, 6)], true, t0 + 650 * MS), Some(Change::Resumed));
        // Only the edge moves: it reads too.
        assert_eq!(w.observe(2, &[(0, 5), (900, 40)], true, t0), None);
        assert_eq!(w.observe(2, &[(0, 5), (900, 41)], true, t0 + 900 * MS), None);
    }

    #[test]
    fn corrupt_rings_are_counted_per_instance_and_forgotten_with_it() {
        let mut w = Watchdog::new(100 * MS, 4);
        assert_eq!(w.ring_corrupt(2), 1);
        assert_eq!(w.ring_corrupt(2), 2);
        assert_eq!(w.ring_corrupt(3), 1);
        assert_eq!(w.ring_corrupt(0), 0);
        assert_eq!(w.ring_corrupt(9), 0);
        w.forget(2);
        assert_eq!(w.ring_corrupt(2), 1);
    }

    #[test]
    fn off_forget_and_ids_out_of_range() {
        let t0 = Instant::now();
        let mut off = Watchdog::new(Duration::ZERO, 4);
        assert_eq!(off.observe(1, &[(0, 0)], true, t0 + 10_000 * MS), None);
        let mut w = Watchdog::new(100 * MS, 4);
        assert_eq!(w.observe(0, &[(0, 0)], true, t0), None);
        assert_eq!(w.observe(9, &[(0, 0)], true, t0), None);
        w.observe(4, &[(0, 5)], true, t0);
        assert!(w.observe(4, &[(0, 5)], true, t0 + 200 * MS).is_some());
        w.forget(4);
        assert_eq!(
            w.observe(4, &[(0, 5)], true, t0 + 300 * MS),
            None,
            "a new NF on the ID starts afresh"
        );
    }
}
