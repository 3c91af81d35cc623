//! The run loop's decisions that need no ring: when to do housekeeping, sleep or yield,
//! when to tick and report, and when to stop. `now` is always a parameter.

use std::fmt;
use std::time::{Duration, Instant};

/// Passes between two housekeeping rounds (clock, control socket: a syscall). An idle
/// pass must stay cheap, because it is the delay before the NF sees the next packet.
pub(super) const HOUSEKEEP_EVERY: u32 = 256;
/// Empty polls before a shared-core NF sleeps on its doorbell.
pub(super) const SPIN_BEFORE_SLEEP: u32 = 16;
/// Empty polls before an NF without a core of its own yields the CPU.
pub(super) const YIELD_AFTER: u32 = 4096;
/// How often the NF reports its counters to the manager.
pub(super) const REPORT_EVERY: Duration = Duration::from_millis(100);

/// How the NF uses its core.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum CoreUse {
    /// Pinned to a core of its own: it busy-polls.
    Own,
    /// Shares a core (`-s`): it sleeps on its doorbell when idle.
    Shared,
    /// Not pinned: it yields the CPU when idle for long.
    Unpinned,
}

/// What to do after a housekeeping round.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Idle {
    /// Poll again.
    Spin,
    /// Sleep on the rx doorbell (which edge senders ring too) until a ring has packets.
    Sleep,
    /// Let a thread that shares this core run.
    Yield,
}

/// Counts passes and empty polls.
#[derive(Clone, Copy, Debug)]
pub(super) struct Pace {
    core: CoreUse,
    pass: u32,
    idle: u32,
}

impl Pace {
    pub(super) fn new(core: CoreUse) -> Self {
        Pace { core, pass: 0, idle: 0 }
    }

    /// A pass ended, having received `got` packets: whether housekeeping is due (every
    /// [`HOUSEKEEP_EVERY`] passes, busy or idle, and before a shared-core NF sleeps).
    #[inline]
    pub(super) fn pass(&mut self, got: usize) -> bool {
        self.idle = if got > 0 { 0 } else { self.idle.saturating_add(1) };
        self.pass = self.pass.wrapping_add(1);
        self.pass.is_multiple_of(HOUSEKEEP_EVERY) || self.sleepy()
    }

    fn sleepy(&self) -> bool {
        self.core == CoreUse::Shared && self.idle > SPIN_BEFORE_SLEEP
    }

    /// After housekeeping: go on polling, sleep or yield.
    pub(super) fn idle(&self) -> Idle {
        if self.sleepy() {
            Idle::Sleep
        } else if self.core == CoreUse::Unpinned && self.idle > YIELD_AFTER {
            Idle::Yield
        } else {
            Idle::Spin
        }
    }
}

/// Why an NF stopped; shown as [`crate::runtime::Summary::reason`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum StopReason {
    /// The handler called [`crate::Ctx::stop`].
    Nf,
    /// The manager sent `Stop`.
    Manager,
    /// The control socket closed.
    ManagerGone,
    /// SIGINT or SIGTERM.
    Signal,
    /// `-l`.
    PacketLimit(u64),
    /// `-t`.
    Ttl(Duration),
}

impl fmt::Display for StopReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StopReason::Nf => write!(f, "stopped by the NF"),
            StopReason::Manager => write!(f, "stopped by the manager"),
            StopReason::ManagerGone => write!(f, "the manager went away"),
            StopReason::Signal => write!(f, "stopped by a signal"),
            StopReason::PacketLimit(n) => write!(f, "packet limit of {n} reached"),
            StopReason::Ttl(d) => write!(f, "time to live of {d:?} reached"),
        }
    }
}

/// The NF's own limits (`-l`, `-t`).
#[derive(Clone, Copy, Debug)]
pub(super) struct Limits {
    pub(super) packets: Option<u64>,
    pub(super) ttl: Option<Duration>,
}

impl Limits {
    /// Whether the NF, having received `rx` packets in `ran`, must stop.
    pub(super) fn reached(&self, rx: u64, ran: Duration) -> Option<StopReason> {
        if let Some(n) = self.packets
            && rx >= n
        {
            return Some(StopReason::PacketLimit(n));
        }
        if let Some(ttl) = self.ttl
            && ran >= ttl
        {
            return Some(StopReason::Ttl(ttl));
        }
        None
    }
}

/// What a housekeeping round does besides the control socket.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct Due {
    /// Call [`crate::Handler::tick`].
    pub(super) tick: bool,
    /// Send the counters to the manager.
    pub(super) report: bool,
}

/// The handler's tick and the counter reports.
#[derive(Clone, Copy, Debug)]
pub(super) struct Timers {
    tick_every: Duration,
    next_tick: Instant,
    next_report: Instant,
}

impl Timers {
    pub(super) fn new(started: Instant, tick_every: Duration) -> Self {
        Timers {
            tick_every,
            next_tick: started + tick_every,
            next_report: started + REPORT_EVERY,
        }
    }

    /// What is due at `now`; each comes again one interval after `now` (a late round
    /// does not bunch up the next ones).
    pub(super) fn due(&mut self, now: Instant) -> Due {
        let mut due = Due::default();
        if now >= self.next_tick {
            self.next_tick = now + self.tick_every;
            due.tick = true;
        }
        if now >= self.next_report {
            self.next_report = now + REPORT_EVERY;
            due.report = true;
        }
        due
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn passes(p: &mut Pace, n: u32, got: usize) -> Vec<u32> {
        (1..=n).filter(|_| p.pass(got)).collect()
    }

    #[test]
    fn a_busy_nf_housekeeps_every_256_passes_whatever_its_core() {
        for core in [CoreUse::Own, CoreUse::Shared, CoreUse::Unpinned] {
            let mut p = Pace::new(core);
            assert_eq!(passes(&mut p, 1024, 32), [256, 512, 768, 1024], "{core:?}");
            assert_eq!(p.idle(), Idle::Spin);
        }
    }

    #[test]
    fn a_shared_core_nf_sleeps_after_16_empty_polls_and_checks_first() {
        let mut p = Pace::new(CoreUse::Shared);
        assert_eq!(passes(&mut p, 16, 0), [], "spins first");
        assert_eq!(p.idle(), Idle::Spin);
        assert!(p.pass(0), "the 17th empty poll housekeeps before it sleeps");
        assert_eq!(p.idle(), Idle::Sleep);
        assert!(!p.pass(1), "a packet wakes it up for good");
        assert_eq!(p.idle(), Idle::Spin);
    }

    #[test]
    fn an_unpinned_nf_yields_after_4096_empty_polls_and_a_pinned_one_never() {
        let mut unpinned = Pace::new(CoreUse::Unpinned);
        let mut own = Pace::new(CoreUse::Own);
        for _ in 0..YIELD_AFTER {
            unpinned.pass(0);
            own.pass(0);
        }
        assert_eq!(unpinned.idle(), Idle::Spin);
        unpinned.pass(0);
        own.pass(0);
        assert_eq!(unpinned.idle(), Idle::Yield);
        assert_eq!(own.idle(), Idle::Spin);
        // The counters saturate instead of wrapping back to busy.
        let mut p = Pace::new(CoreUse::Unpinned);
        p.idle = u32::MAX;
        p.pass(0);
        assert_eq!(p.idle(), Idle::Yield);
    }

    #[test]
    fn limits_stop_at_the_packet_count_or_the_ttl() {
        let none = Limits {
            packets: None,
            ttl: None,
        };
        assert_eq!(none.reached(u64::MAX, Duration::MAX), None);
        let l = Limits {
            packets: Some(100),
            ttl: Some(Duration::from_secs(2)),
        };
        assert_eq!(l.reached(99, Duration::from_secs(1)), None);
        assert_eq!(l.reached(100, Duration::ZERO), Some(StopReason::PacketLimit(100)));
        assert_eq!(
            l.reached(0, Duration::from_secs(2)),
            Some(StopReason::Ttl(Duration::from_secs(2)))
        );
    }

    #[test]
    fn reasons_read_as_before() {
        let shown: Vec<String> = [
            StopReason::Nf,
            StopReason::Manager,
            StopReason::ManagerGone,
            StopReason::Signal,
            StopReason::PacketLimit(5),
            StopReason::Ttl(Duration::from_millis(1500)),
        ]
        .iter()
        .map(ToString::to_string)
        .collect();
        assert_eq!(
            shown,
            [
                "stopped by the NF",
                "stopped by the manager",
                "the manager went away",
                "stopped by a signal",
                "packet limit of 5 reached",
                "time to live of 1.5s reached",
            ]
        );
    }

    #[test]
    fn ticks_and_reports_come_one_interval_after_the_last() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let mut t = Timers::new(t0, ms(250));
        assert_eq!(t.due(t0 + ms(99)), Due::default());
        assert_eq!(
            t.due(t0 + ms(100)),
            Due {
                tick: false,
                report: true
            }
        );
        assert_eq!(t.due(t0 + ms(150)), Due::default());
        // Late: both due, and the next ones count from now.
        assert_eq!(
            t.due(t0 + ms(1000)),
            Due {
                tick: true,
                report: true
            }
        );
        assert_eq!(t.due(t0 + ms(1099)), Due::default());
        assert_eq!(
            t.due(t0 + ms(1100)),
            Due {
                tick: false,
                report: true
            }
        );
        assert!(t.due(t0 + ms(1250)).tick);
    }
}
