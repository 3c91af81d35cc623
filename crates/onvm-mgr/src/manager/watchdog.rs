//! The watchdog: which NFs stopped reading their rx ring.
//!
//! An NF that is stopped (SIGSTOP), stuck in its handler, or simply never reads again
//! holds its service's flows hostage: packets pile up in its ring and then drop. The
//! manager looks at every running NF's rx ring every [`super::WATCHDOG_EVERY`]: an NF
//! whose ring holds packets while its consumer index has not moved for the configured
//! time is *hung*; one whose index moves (or whose ring empties) again has *resumed*.
//! The ring index is the truth here: counters an NF reports can lie, the index it must
//! move to read cannot.
//!
//! Pure: the caller passes the index, whether packets wait, and the time.

use std::time::{Duration, Instant};

/// What changed for an instance.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Change {
    /// It has not read for `for_` while packets waited.
    Hung { for_: Duration },
    /// It reads again.
    Resumed,
}

#[derive(Clone, Copy, Debug)]
struct Seen {
    consumed: u32,
    since: Instant,
    hung: bool,
}

/// Per instance (index `id - 1`): its ring's consumer index when it last moved.
#[derive(Debug)]
pub(super) struct Watchdog {
    after: Duration,
    seen: Vec<Option<Seen>>,
}

impl Watchdog {
    /// Instances hung after `after` without reading (`Duration::ZERO`: never).
    pub(super) fn new(after: Duration, instances: usize) -> Watchdog {
        Watchdog {
            after,
            seen: vec![None; instances],
        }
    }

    /// Look at instance `id`: its rx ring's consumer index, and whether packets wait
    /// in it, at `now`.
    pub(super) fn observe(&mut self, id: u16, consumed: u32, waiting: bool, now: Instant) -> Option<Change> {
        if self.after.is_zero() {
            return None;
        }
        let slot = self.seen.get_mut(usize::from(id).checked_sub(1)?)?;
        let s = slot.get_or_insert(Seen {
            consumed,
            since: now,
            hung: false,
        });
        if s.consumed != consumed || !waiting {
            s.consumed = consumed;
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
        assert_eq!(w.observe(2, 10, true, t0), None);
        assert_eq!(w.observe(2, 10, true, t0 + 499 * MS), None);
        assert_eq!(
            w.observe(2, 10, true, t0 + 500 * MS),
            Some(Change::Hung { for_: 500 * MS })
        );
        assert_eq!(w.observe(2, 10, true, t0 + 900 * MS), None, "reported once");
        assert_eq!(w.observe(2, 11, true, t0 + 950 * MS), Some(Change::Resumed));
        assert_eq!(w.observe(2, 11, true, t0 + 1400 * MS), None, "the clock starts again");
        assert_eq!(
            w.observe(2, 11, true, t0 + 1450 * MS),
            Some(Change::Hung { for_: 500 * MS })
        );
    }

    #[test]
    fn an_idle_nf_is_not_hung_and_moving_resets_the_clock() {
        let t0 = Instant::now();
        let mut w = Watchdog::new(500 * MS, 4);
        // Nothing waits: however long its index stays, it is idle, not hung.
        for ms in (0..5000).step_by(100) {
            assert_eq!(w.observe(1, 7, false, t0 + ms * MS), None);
        }
        // A slow reader is not hung: its index moves.
        for (k, ms) in (5000..8000).step_by(400).enumerate() {
            assert_eq!(w.observe(1, 8 + k as u32, true, t0 + ms * MS), None);
        }
        // An index that wraps still moves.
        assert_eq!(w.observe(3, u32::MAX, true, t0), None);
        assert_eq!(w.observe(3, 0, true, t0 + 600 * MS), None);
    }

    #[test]
    fn off_forget_and_ids_out_of_range() {
        let t0 = Instant::now();
        let mut off = Watchdog::new(Duration::ZERO, 4);
        assert_eq!(off.observe(1, 0, true, t0 + 10_000 * MS), None);
        let mut w = Watchdog::new(100 * MS, 4);
        assert_eq!(w.observe(0, 0, true, t0), None);
        assert_eq!(w.observe(9, 0, true, t0), None);
        w.observe(4, 5, true, t0);
        assert!(w.observe(4, 5, true, t0 + 200 * MS).is_some());
        w.forget(4);
        assert_eq!(
            w.observe(4, 5, true, t0 + 300 * MS),
            None,
            "a new NF on the ID starts afresh"
        );
    }
}
