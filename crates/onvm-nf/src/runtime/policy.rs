//! The run loop's decisions that need no ring: when to do housekeeping, sleep or yield,
//! when to tick and report, and when to stop. `now` is always a parameter.

use std::fmt;
use std::time::{Duration, Instant};

/// Passes between two housekeeping rounds (clock, control socket: a syscall). An idle
/// pass must stay cheap, because it is the delay before the NF sees the next packet.
pub(super) const HOUSEKEEP_EVERY: u32 = 256;
/// A yield that took longer than this let another thread run: the core is shared with
/// someone who had work.
pub(super) const CONTENDED: Duration = Duration::from_micros(1);
/// How long a shared-core NF that has the core to itself keeps yielding (a poll that
/// costs a syscall) before it sleeps on its doorbell.
pub(super) const YIELD_ALONE_FOR: Duration = Duration::from_micros(50);
/// A shared-core NF about to sleep housekeeps first unless it did within this long:
/// one that sleeps after every turn would otherwise pay a `recvmsg` per turn.
pub(super) const HOUSEKEEP_BEFORE_SLEEP: Duration = Duration::from_millis(1);
/// Empty polls before an NF without a core of its own yields the CPU.
pub(super) const YIELD_AFTER: u32 = 4096;
/// How often the NF reports its counters to the manager.
pub(super) const REPORT_EVERY: Duration = Duration::from_millis(100);

/// How the NF uses its core.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum CoreUse {
    /// Pinned to a core of its own: it busy-polls.
    Own,
    /// Shares a core (`-s`): it yields, then sleeps on its doorbell, when idle.
    Shared,
    /// Not pinned: it yields the CPU when idle for long.
    Unpinned,
}

/// What an NF with nothing to do does now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Idle {
    /// Poll again.
    Spin,
    /// Sleep on the rx doorbell (which edge senders ring too) until a ring has packets.
    Sleep,
    /// Let a thread that shares this core run.
    Yield,
}

/// What the loop does after a pass.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Step {
    /// Poll again at once.
    Poll,
    /// A shared-core NF found nothing: ask [`Pace::shared_idle`].
    Idle,
    /// Run housekeeping, then [`Pace::idle`].
    Housekeep,
}

/// Counts passes and empty polls, and paces a shared-core NF with nothing to do.
///
/// A shared-core NF that finds its rings empty yields at once: what it waits for comes
/// from the NFs sharing its core, which run only when it lets them. If that yield let
/// someone run ([`CONTENDED`]), it goes to sleep on its doorbell after it: whoever
/// sends it packets next wakes it, and the scheduler runs a woken thread next, so turns
/// follow the packets (sender, then receiver) instead of the scheduler's round robin,
/// where NFs with nothing to do take turns. If its yields return at once, it has the
/// core to itself and yields on (a cheap poll) for [`YIELD_ALONE_FOR`] first. The
/// measurements behind this are in docs/ARCHITECTURE.md, "Shared cores".
#[derive(Clone, Copy, Debug)]
pub(super) struct Pace {
    core: CoreUse,
    pass: u32,
    idle: u32,
    /// A shared-core NF with nothing to do: when it first yielded, and when last.
    yielding: Option<(Instant, Instant)>,
    /// It chose to sleep: the next housekeeping ends in a sleep.
    sleepy: bool,
    /// When housekeeping last ran.
    housekept: Option<Instant>,
}

impl Pace {
    pub(super) fn new(core: CoreUse) -> Self {
        Pace {
            core,
            pass: 0,
            idle: 0,
            yielding: None,
            sleepy: false,
            housekept: None,
        }
    }

    /// A pass ended, having received `got` packets: what next. Housekeeping is due
    /// every [`HOUSEKEEP_EVERY`] passes, busy or idle; a shared-core NF asks
    /// [`Pace::shared_idle`] after every empty pass.
    #[inline]
    pub(super) fn pass(&mut self, got: usize) -> Step {
        if got > 0 {
            self.idle = 0;
            self.yielding = None;
            self.sleepy = false;
        } else {
            self.idle = self.idle.saturating_add(1);
        }
        self.pass = self.pass.wrapping_add(1);
        if self.pass.is_multiple_of(HOUSEKEEP_EVERY) {
            Step::Housekeep
        } else if got == 0 && self.core == CoreUse::Shared {
            Step::Idle
        } else {
            Step::Poll
        }
    }

    /// A shared-core NF found nothing at `now`: yield, sleep, or (`Spin`) housekeep
    /// and then sleep.
    pub(super) fn shared_idle(&mut self, now: Instant) -> Idle {
        let (first, last) = *self.yielding.get_or_insert((now, now));
        let contended = last != now && now.duration_since(last) > CONTENDED;
        if !contended && now.duration_since(first) < YIELD_ALONE_FOR {
            self.yielding = Some((first, now));
            return Idle::Yield;
        }
        self.sleepy = true;
        if self
            .housekept
            .is_some_and(|t| now.duration_since(t) < HOUSEKEEP_BEFORE_SLEEP)
        {
            Idle::Sleep
        } else {
            Idle::Spin
        }
    }

    /// Housekeeping ran at `now`.
    pub(super) fn housekept(&mut self, now: Instant) {
        self.housekept = Some(now);
    }

    /// After housekeeping: go on polling, sleep or yield.
    pub(super) fn idle(&self) -> Idle {
        if self.sleepy {
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

    /// The passes (1-based) among the next `n` that housekeep.
    fn passes(p: &mut Pace, n: u32, got: usize) -> Vec<u32> {
        (1..=n).filter(|_| p.pass(got) == Step::Housekeep).collect()
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
    fn a_shared_core_nf_yields_at_once_and_sleeps_after_a_yield_that_let_someone_run() {
        let t0 = Instant::now();
        let mut p = Pace::new(CoreUse::Shared);
        p.housekept(t0);
        assert_eq!(p.pass(0), Step::Idle, "the first empty pass");
        assert_eq!(p.shared_idle(t0), Idle::Yield);
        // The yield returned after 3 µs: an NF sharing the core ran. Housekeeping ran
        // within the millisecond, so straight to sleep.
        let t1 = t0 + Duration::from_micros(3);
        assert_eq!(p.pass(0), Step::Idle);
        assert_eq!(p.shared_idle(t1), Idle::Sleep);
        // A packet wakes it up for good.
        assert_eq!(p.pass(1), Step::Poll);
        assert_eq!(p.idle(), Idle::Spin);
        assert_eq!(p.pass(0), Step::Idle);
        assert_eq!(p.shared_idle(t1), Idle::Yield, "a new idle spell starts with a yield");
    }

    #[test]
    fn a_shared_core_nf_alone_on_its_core_yields_for_a_while_then_housekeeps_and_sleeps() {
        let t0 = Instant::now();
        let mut p = Pace::new(CoreUse::Shared);
        p.housekept(t0);
        let mut t = t0;
        let mut yields = 0;
        // Each yield returns after 300 ns: nobody else wants the core.
        while p.pass(0) == Step::Idle && p.shared_idle(t) == Idle::Yield {
            yields += 1;
            t += Duration::from_nanos(300);
        }
        assert!(t >= t0 + YIELD_ALONE_FOR, "yielded for {:?}", t - t0);
        assert!(yields > 100, "{yields}");
        // Housekeeping is more than a millisecond old: housekeep first, then sleep.
        let mut p = Pace::new(CoreUse::Shared);
        p.housekept(t0);
        let late = t0 + Duration::from_millis(2);
        assert_eq!(p.pass(0), Step::Idle);
        assert_eq!(p.shared_idle(late), Idle::Yield);
        assert_eq!(p.pass(0), Step::Idle);
        assert_eq!(p.shared_idle(late + Duration::from_micros(5)), Idle::Spin);
        p.housekept(late + Duration::from_micros(6));
        assert_eq!(p.idle(), Idle::Sleep);
    }

    #[test]
    fn only_a_shared_core_nf_asks_what_to_do_between_housekeeping() {
        for core in [CoreUse::Own, CoreUse::Unpinned] {
            let mut p = Pace::new(core);
            assert!((0..1000).all(|_| p.pass(0) != Step::Idle), "{core:?}");
        }
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
