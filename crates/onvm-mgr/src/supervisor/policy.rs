//! The restart decisions for one NF, as a pure state machine.
//!
//! Nothing here reads a clock, launches or signals anything: the driver
//! ([`Supervisor`](super::Supervisor)) reports what happened (`handle_*`, with the time it
//! happened) and asks what to do next ([`Restarts::poll_start`]). That keeps every rule
//! (modes, the restart limit, backoff and its reset) testable with fixed timestamps, and
//! the same rules apply to processes and, later, containers.
//!
//! Order of calls for one NF: [`Restarts::new`] once its first launch succeeded; then,
//! each time it exits, [`Restarts::handle_exit`]; while that said
//! [`Decision::Restart`], [`Restarts::poll_start`] until it says [`Poll::Start`], then
//! [`Restarts::handle_started`] or [`Restarts::handle_launch_failed`].
//! [`Restarts::handle_stop`] may come at any time and ends all restarts.

use std::fmt;
use std::time::{Duration, Instant};

pub use onvm_proto::config::{Backoff, RestartMode, RestartPolicy};

/// A run at least this long resets the backoff to its initial delay.
///
/// Long enough that an NF which crashes while registering, or on its first packets,
/// counts as a crash loop; short enough that one crash a minute is repaired quickly.
/// Docker uses the same 10 s. The restart *count* is never reset: `max_restarts` is over
/// the NF's life, as the config says.
pub const STABLE_RUN: Duration = Duration::from_secs(10);

/// How an NF ended, as far as the policy cares.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Exit status 0.
    Success,
    /// A non-zero status, a signal, or a launch that failed.
    Failure,
}

/// Why an NF is not started again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GiveUp {
    /// `restart = "never"`.
    Never,
    /// It exited with status 0 and restarts are only for failures.
    CleanExit,
    /// `max_restarts` restarts were already made.
    MaxRestarts(u32),
    /// The supervisor is stopping everything.
    Stopping,
}

impl fmt::Display for GiveUp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GiveUp::Never => f.write_str("restart = never"),
            GiveUp::CleanExit => f.write_str("clean exit, restart = on-failure"),
            GiveUp::MaxRestarts(n) => write!(f, "max_restarts = {n} reached"),
            GiveUp::Stopping => f.write_str("stopping"),
        }
    }
}

/// What follows an exit (or a failed launch).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Launch it again at `at` (`delay` after the exit); it will be restart number
    /// `restart` (1 for the first).
    Restart {
        /// When.
        at: Instant,
        /// The backoff applied.
        delay: Duration,
        /// Which restart this is, from 1.
        restart: u32,
    },
    /// Leave it stopped.
    GiveUp(GiveUp),
}

/// What [`Restarts::poll_start`] asks of the driver.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Poll {
    /// Launch it now.
    Start,
    /// A restart is due at this time; ask again then.
    WaitUntil(Instant),
    /// Nothing to do: it runs, or it is finished for good.
    Idle,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    Running { since: Instant },
    Waiting { until: Instant },
    Done(GiveUp),
}

/// The restart state of one NF instance under a [`RestartPolicy`].
#[derive(Clone, Debug)]
pub struct Restarts {
    policy: RestartPolicy,
    phase: Phase,
    /// Restarts decided over the NF's life (compared with `max_restarts`).
    restarts: u32,
    /// Restarts since the last stable run: the exponent of the backoff.
    quick: u32,
    stopping: bool,
}

impl Restarts {
    /// An NF that was launched at `now`.
    pub fn new(policy: RestartPolicy, now: Instant) -> Self {
        Restarts {
            policy,
            phase: Phase::Running { since: now },
            restarts: 0,
            quick: 0,
            stopping: false,
        }
    }

    /// Restarts decided so far.
    pub fn restarts(&self) -> u32 {
        self.restarts
    }

    /// Whether it is finished for good, and why.
    pub fn given_up(&self) -> Option<GiveUp> {
        match self.phase {
            Phase::Done(why) => Some(why),
            _ => None,
        }
    }

    /// When the pending restart is due, if one is.
    pub fn due(&self) -> Option<Instant> {
        match self.phase {
            Phase::Waiting { until } => Some(until),
            Phase::Running { .. } | Phase::Done(_) => None,
        }
    }

    /// It exited at `now` with `outcome`: restart it (when) or leave it stopped.
    ///
    /// An exit that is not expected (it was not running) is treated like one that is; the
    /// driver only reports exits of what it launched.
    pub fn handle_exit(&mut self, outcome: Outcome, now: Instant) -> Decision {
        if let Phase::Running { since } = self.phase
            && now.saturating_duration_since(since) >= STABLE_RUN
        {
            self.quick = 0;
        }
        self.decide(outcome, now)
    }

    /// A launch due after [`Poll::Start`] failed at `now`: a failure that ran for no time.
    pub fn handle_launch_failed(&mut self, now: Instant) -> Decision {
        self.decide(Outcome::Failure, now)
    }

    /// The driver launched it at `now`.
    pub fn handle_started(&mut self, now: Instant) {
        if !matches!(self.phase, Phase::Done(_)) {
            self.phase = Phase::Running { since: now };
        }
    }

    /// Stop requested: no restart from now on. A pending one is cancelled, and the
    /// next exit is answered with [`GiveUp::Stopping`].
    pub fn handle_stop(&mut self) {
        self.stopping = true;
        if let Phase::Waiting { .. } = self.phase {
            self.phase = Phase::Done(GiveUp::Stopping);
        }
    }

    /// Whether to launch it now.
    pub fn poll_start(&self, now: Instant) -> Poll {
        match self.phase {
            Phase::Waiting { until } if now >= until => Poll::Start,
            Phase::Waiting { until } => Poll::WaitUntil(until),
            Phase::Running { .. } | Phase::Done(_) => Poll::Idle,
        }
    }

    fn decide(&mut self, outcome: Outcome, now: Instant) -> Decision {
        let give_up = if self.stopping {
            Some(GiveUp::Stopping)
        } else {
            match (self.policy.mode, outcome) {
                (RestartMode::Never, _) => Some(GiveUp::Never),
                (RestartMode::OnFailure, Outcome::Success) => Some(GiveUp::CleanExit),
                _ => self
                    .policy
                    .max_restarts
                    .filter(|&max| self.restarts >= max)
                    .map(GiveUp::MaxRestarts),
            }
        };
        if let Some(why) = give_up {
            self.phase = Phase::Done(why);
            return Decision::GiveUp(why);
        }
        // The cap keeps `now + delay` far from overflowing whatever a library user asks.
        let delay = backoff_delay(&self.policy.backoff, self.quick).min(Backoff::MAX_DELAY);
        self.quick = self.quick.saturating_add(1);
        self.restarts = self.restarts.saturating_add(1);
        let at = now + delay;
        self.phase = Phase::Waiting { until: at };
        Decision::Restart {
            at,
            delay,
            restart: self.restarts,
        }
    }
}

/// The delay before a restart that follows `quick` earlier restarts without a stable run
/// in between: `initial · factor^quick`, at most `max` (no overflow for any `quick`).
pub fn backoff_delay(b: &Backoff, quick: u32) -> Duration {
    let mut d = b.initial.min(b.max);
    for _ in 0..quick {
        if d >= b.max {
            break;
        }
        d = d.saturating_mul(b.factor).min(b.max);
    }
    d
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    fn policy(mode: RestartMode, max: Option<u32>) -> RestartPolicy {
        RestartPolicy {
            mode,
            max_restarts: max,
            backoff: Backoff {
                initial: 100 * MS,
                max: 1000 * MS,
                factor: 2,
            },
        }
    }

    /// Fails `r` at `t`, then starts it again when it is due; returns the delay used.
    fn crash(r: &mut Restarts, t: Instant) -> Duration {
        let Decision::Restart { at, delay, .. } = r.handle_exit(Outcome::Failure, t) else {
            panic!("expected a restart: {r:?}");
        };
        assert_eq!(at, t + delay);
        assert_eq!(r.poll_start(t), Poll::WaitUntil(at));
        assert_eq!(r.poll_start(at - MS), Poll::WaitUntil(at));
        assert_eq!(r.poll_start(at), Poll::Start);
        r.handle_started(at);
        assert_eq!(r.poll_start(at), Poll::Idle);
        delay
    }

    #[test]
    fn never_gives_up_on_any_exit() {
        let t = Instant::now();
        for outcome in [Outcome::Success, Outcome::Failure] {
            let mut r = Restarts::new(RestartPolicy::NEVER, t);
            assert_eq!(r.handle_exit(outcome, t + MS), Decision::GiveUp(GiveUp::Never));
            assert_eq!(r.poll_start(t + 10 * STABLE_RUN), Poll::Idle);
            assert_eq!(r.given_up(), Some(GiveUp::Never));
        }
    }

    #[test]
    fn on_failure_restarts_failures_only() {
        let t = Instant::now();
        let mut r = Restarts::new(policy(RestartMode::OnFailure, Some(5)), t);
        assert_eq!(
            r.handle_exit(Outcome::Failure, t + MS),
            Decision::Restart {
                at: t + 101 * MS,
                delay: 100 * MS,
                restart: 1
            }
        );
        r.handle_started(t + 101 * MS);
        assert_eq!(
            r.handle_exit(Outcome::Success, t + 200 * MS),
            Decision::GiveUp(GiveUp::CleanExit)
        );
        assert_eq!(r.restarts(), 1);
    }

    #[test]
    fn always_restarts_clean_exits_too_with_backoff() {
        let t = Instant::now();
        let mut r = Restarts::new(policy(RestartMode::Always, None), t);
        let Decision::Restart { delay, .. } = r.handle_exit(Outcome::Success, t) else {
            panic!()
        };
        assert_eq!(delay, 100 * MS);
        r.handle_started(t + delay);
        let Decision::Restart { delay, restart, .. } = r.handle_exit(Outcome::Success, t + delay) else {
            panic!()
        };
        assert_eq!(
            (delay, restart),
            (200 * MS, 2),
            "a clean exit loop backs off like a crash loop"
        );
    }

    #[test]
    fn max_restarts_is_over_the_whole_life() {
        let t0 = Instant::now();
        let mut r = Restarts::new(policy(RestartMode::Always, Some(2)), t0);
        let mut t = t0;
        for _ in 0..2 {
            // Stable runs in between: the count still adds up.
            t += STABLE_RUN * 2;
            t += crash(&mut r, t);
        }
        t += STABLE_RUN * 2;
        assert_eq!(
            r.handle_exit(Outcome::Failure, t),
            Decision::GiveUp(GiveUp::MaxRestarts(2))
        );
        assert_eq!(r.given_up(), Some(GiveUp::MaxRestarts(2)));
        assert_eq!(r.poll_start(t + STABLE_RUN), Poll::Idle);

        let mut zero = Restarts::new(policy(RestartMode::OnFailure, Some(0)), t0);
        assert_eq!(
            zero.handle_exit(Outcome::Failure, t0),
            Decision::GiveUp(GiveUp::MaxRestarts(0))
        );
    }

    #[test]
    fn no_limit_keeps_restarting() {
        let mut t = Instant::now();
        let mut r = Restarts::new(policy(RestartMode::OnFailure, None), t);
        for _ in 0..1000 {
            t += crash(&mut r, t);
        }
        assert_eq!(r.restarts(), 1000);
    }

    #[test]
    fn backoff_doubles_per_quick_failure_up_to_the_cap() {
        let mut t = Instant::now();
        let mut r = Restarts::new(policy(RestartMode::OnFailure, None), t);
        let mut delays = Vec::new();
        for _ in 0..7 {
            // Each run lasts 1 s: short of a stable run.
            t += Duration::from_secs(1);
            let d = crash(&mut r, t);
            delays.push(d.as_millis());
            t += d;
        }
        assert_eq!(delays, [100, 200, 400, 800, 1000, 1000, 1000]);
    }

    #[test]
    fn a_stable_run_resets_the_backoff() {
        let mut t = Instant::now();
        let mut r = Restarts::new(policy(RestartMode::OnFailure, None), t);
        for _ in 0..4 {
            t += crash(&mut r, t);
        }
        // Just short of stable: still growing (100, 200, 400, 800, then capped 1000).
        t += STABLE_RUN - MS;
        assert_eq!(crash(&mut r, t), 1000 * MS);
        t += 1000 * MS;
        // Stable: back to the start, then doubling again.
        t += STABLE_RUN;
        assert_eq!(crash(&mut r, t), 100 * MS);
        t += 100 * MS;
        assert_eq!(crash(&mut r, t), 200 * MS);
    }

    #[test]
    fn the_run_is_measured_from_the_restart_not_the_exit() {
        // Waiting in backoff is not running: a crash 9 s after a restart that waited a
        // long time is still a quick one.
        let t0 = Instant::now();
        let mut r = Restarts::new(policy(RestartMode::OnFailure, None), t0);
        let at = t0 + MS;
        let Decision::Restart { at: due, .. } = r.handle_exit(Outcome::Failure, at) else {
            panic!()
        };
        let late = due + Duration::from_secs(30); // the driver was slow to start it
        r.handle_started(late);
        let Decision::Restart { delay, .. } = r.handle_exit(Outcome::Failure, late + Duration::from_secs(9)) else {
            panic!()
        };
        assert_eq!(delay, 200 * MS);
    }

    #[test]
    fn a_failed_launch_is_a_failure_without_a_run() {
        let mut t = Instant::now();
        let mut r = Restarts::new(policy(RestartMode::OnFailure, Some(3)), t);
        t += STABLE_RUN;
        let Decision::Restart { at, delay, .. } = r.handle_exit(Outcome::Failure, t) else {
            panic!()
        };
        assert_eq!(delay, 100 * MS);
        assert_eq!(r.poll_start(at), Poll::Start);
        // The launch fails: it still counts, and backs off.
        assert_eq!(
            r.handle_launch_failed(at),
            Decision::Restart {
                at: at + 200 * MS,
                delay: 200 * MS,
                restart: 2
            }
        );
        let at = at + 200 * MS;
        assert!(matches!(
            r.handle_launch_failed(at),
            Decision::Restart { restart: 3, .. }
        ));
        assert_eq!(
            r.handle_launch_failed(at + 400 * MS),
            Decision::GiveUp(GiveUp::MaxRestarts(3))
        );
    }

    #[test]
    fn stop_cancels_a_pending_restart_and_answers_the_next_exit() {
        let t = Instant::now();
        let mut r = Restarts::new(policy(RestartMode::Always, None), t);
        assert!(matches!(r.handle_exit(Outcome::Failure, t), Decision::Restart { .. }));
        r.handle_stop();
        assert_eq!(r.poll_start(t + STABLE_RUN), Poll::Idle);
        assert_eq!(r.given_up(), Some(GiveUp::Stopping));

        let mut r = Restarts::new(policy(RestartMode::Always, None), t);
        r.handle_stop();
        assert_eq!(r.poll_start(t), Poll::Idle, "running: nothing to do");
        assert_eq!(
            r.handle_exit(Outcome::Failure, t + MS),
            Decision::GiveUp(GiveUp::Stopping)
        );
        r.handle_started(t + 2 * MS);
        assert_eq!(
            r.given_up(),
            Some(GiveUp::Stopping),
            "a late start report does not revive it"
        );
    }

    #[test]
    fn backoff_delay_edges() {
        let b = |initial: u32, max: u32, factor: u32| Backoff {
            initial: initial * MS,
            max: max * MS,
            factor,
        };
        assert_eq!(backoff_delay(&b(100, 100, 2), 5), 100 * MS);
        assert_eq!(backoff_delay(&b(100, 10_000, 1), 50), 100 * MS, "factor 1: fixed");
        assert_eq!(backoff_delay(&b(100, 10_000, 10), 2), 10_000 * MS);
        assert_eq!(backoff_delay(&b(500, 100, 2), 0), 100 * MS, "max wins over initial");
        let huge = Backoff {
            initial: Duration::from_secs(1),
            max: Duration::MAX,
            factor: 16,
        };
        assert_eq!(backoff_delay(&huge, u32::MAX), Duration::MAX, "saturates, no overflow");
        let t = Instant::now();
        let mut r = Restarts::new(
            RestartPolicy {
                mode: RestartMode::Always,
                max_restarts: None,
                backoff: huge,
            },
            t,
        );
        for _ in 0..40 {
            let Decision::Restart { delay, .. } = r.handle_exit(Outcome::Success, t) else {
                panic!()
            };
            assert!(delay <= Backoff::MAX_DELAY, "{delay:?}");
            r.handle_started(t);
        }
    }
}
