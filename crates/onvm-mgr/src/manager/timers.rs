//! The switch loop's deadlines, one per periodic job (quinn-proto's `TimerTable`).
//!
//! Each job has its own deadline, so one interval never stretches another: rule expiry
//! used to run in the stats branch, and a 2 s idle timeout lived until the next stats
//! tick (21.8 s with `--stats-every 30`). Doorbells have their own per-NF deadlines
//! (`Io::unwoken`), which are not periodic.

use std::time::{Duration, Instant};

use super::{CONTROL_EVERY, EXPIRE_EVERY, WATCHDOG_EVERY};

/// A periodic job of the loop.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(usize)]
pub(super) enum Timer {
    /// Control sockets, planes, alloc top-ups, orphaned edges.
    Control,
    /// Rule timeouts.
    Expire,
    /// The stats line.
    Stats,
    /// NFs that stopped reading.
    Watchdog,
}

const N: usize = 4;

/// When each job is next due, and its period.
#[derive(Debug)]
pub(super) struct Timers {
    due: [Instant; N],
    every: [Duration; N],
}

impl Timers {
    /// Control and expiry due at once; the first stats line one interval after `start`.
    pub(super) fn new(start: Instant, stats_every: Duration) -> Timers {
        Timers {
            due: [start, start, start + stats_every, start],
            every: [CONTROL_EVERY, EXPIRE_EVERY, stats_every, WATCHDOG_EVERY],
        }
    }

    /// Whether `t` is due at `now`; if so it is re-armed one period later.
    pub(super) fn fire(&mut self, t: Timer, now: Instant) -> bool {
        let i = t as usize;
        if now < self.due[i] {
            return false;
        }
        self.due[i] = now + self.every[i];
        true
    }

    /// Make `t` due at once (the next [`Timers::fire`] answers true).
    pub(super) fn now(&mut self, t: Timer, now: Instant) {
        self.due[t as usize] = now;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_timer_keeps_its_own_period() {
        let t0 = Instant::now();
        let mut t = Timers::new(t0, Duration::from_secs(30));
        assert!(t.fire(Timer::Control, t0) && t.fire(Timer::Expire, t0));
        assert!(!t.fire(Timer::Stats, t0), "the first stats line waits an interval");
        // Expiry fires every EXPIRE_EVERY however long the stats interval is.
        let mut fired = 0;
        for ms in (0..=2000).step_by(10) {
            fired += u32::from(t.fire(Timer::Expire, t0 + Duration::from_millis(ms)));
        }
        assert_eq!(fired, 20);
        assert!(!t.fire(Timer::Stats, t0 + Duration::from_secs(29)));
        assert!(t.fire(Timer::Stats, t0 + Duration::from_secs(30)));
        t.now(Timer::Stats, t0 + Duration::from_secs(31));
        assert!(t.fire(Timer::Stats, t0 + Duration::from_secs(31)));
    }
}
