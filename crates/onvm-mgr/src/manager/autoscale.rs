//! Autoscaling (issue 18): a service's instances follow its load. Every watchdog round
//! the switch says how many instances of each autoscaled service run and how full the
//! fullest ring one of them reads is; when that stays over the service's mark for its
//! `after`, one more instance is asked for (up to its `max`), and when it stays under a
//! quarter of the mark for its `idle`, one fewer (down to its `min`). One request at a
//! time per service: the next waits until the count is what was asked for (or
//! [`ASK_TIMEOUT`] passed). The supervisor starts or stops the instance; the service's
//! RETA moves only the flows that go to or come from it.
//!
//! Pure: the caller passes the counts, the occupancy and the time.

use std::time::{Duration, Instant};

use crate::options::AutoscaleRule;

/// A request not met by then (the instance did not start) no longer holds the next.
pub(super) const ASK_TIMEOUT: Duration = Duration::from_secs(5);

/// A change to ask the supervisor for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Ask {
    /// Index of the rule.
    pub(super) rule: usize,
    pub(super) from: u16,
    pub(super) to: u16,
    /// Since when the load (or the quiet) lasted.
    pub(super) since: Instant,
}

/// A scale-up asked for, whose new instance has not taken traffic yet.
#[derive(Debug)]
pub(super) struct Waiting {
    pub(super) service: u16,
    pub(super) name: String,
    /// The instances there were.
    pub(super) before: Vec<u16>,
    /// When the load began, and when the instance was asked for.
    pub(super) since: Instant,
    pub(super) asked: Instant,
}

/// The manager's autoscaling: the policy, the supervisor's answers to come, and the
/// scale-ups whose instance has not taken traffic yet.
#[derive(Debug, Default)]
pub(super) struct Scaling {
    pub(super) scaler: Autoscaler,
    pub(super) answers: Vec<(String, tokio::sync::oneshot::Receiver<Result<String, String>>)>,
    pub(super) waiting: Vec<Waiting>,
}

#[derive(Clone, Debug)]
struct State {
    rule: AutoscaleRule,
    over_since: Option<Instant>,
    quiet_since: Option<Instant>,
    /// The count asked for, and when.
    asked: Option<(u16, Instant)>,
}

/// Every autoscaled service's state.
#[derive(Debug, Default)]
pub(super) struct Autoscaler {
    states: Vec<State>,
}

impl Autoscaler {
    pub(super) fn new(rules: &[AutoscaleRule]) -> Self {
        Autoscaler {
            states: rules
                .iter()
                .map(|r| State {
                    rule: r.clone(),
                    over_since: None,
                    quiet_since: None,
                    asked: None,
                })
                .collect(),
        }
    }

    /// The rules, in order.
    pub(super) fn rules(&self) -> impl Iterator<Item = &AutoscaleRule> {
        self.states.iter().map(|s| &s.rule)
    }

    /// Rule `i`'s mark: the ring occupancy (percent) that is load.
    pub(super) fn mark(&self, i: usize) -> u8 {
        self.states.get(i).map_or(0, |s| s.rule.policy.ring_percent)
    }

    /// Rule `i`'s service runs `running` instances, the fullest ring one of them reads
    /// being `percent` full, at `now`: what to ask for, if anything.
    pub(super) fn observe(&mut self, i: usize, running: u16, percent: u32, now: Instant) -> Option<Ask> {
        let s = self.states.get_mut(i)?;
        if let Some((want, at)) = s.asked {
            if running != want && now.duration_since(at) < ASK_TIMEOUT {
                return None;
            }
            s.asked = None;
        }
        let mark = u32::from(s.rule.policy.ring_percent);
        let (to, since) = if percent > mark {
            s.quiet_since = None;
            let since = *s.over_since.get_or_insert(now);
            if now.duration_since(since) < s.rule.policy.after || running >= s.rule.policy.max {
                return None;
            }
            (running + 1, since)
        } else if percent * 4 < mark {
            s.over_since = None;
            let since = *s.quiet_since.get_or_insert(now);
            if now.duration_since(since) < s.rule.policy.idle || running <= s.rule.min {
                return None;
            }
            (running - 1, since)
        } else {
            s.over_since = None;
            s.quiet_since = None;
            return None;
        };
        s.over_since = None;
        s.quiet_since = None;
        s.asked = Some((to, now));
        Some(Ask {
            rule: i,
            from: running,
            to,
            since,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use onvm_proto::config::Autoscale;

    const MS: Duration = Duration::from_millis(1);

    fn scaler() -> Autoscaler {
        Autoscaler::new(&[AutoscaleRule {
            service: 1,
            name: "fw".into(),
            min: 1,
            policy: Autoscale {
                max: 3,
                ring_percent: 50,
                after: 200 * MS,
                idle: 1000 * MS,
            },
        }])
    }

    #[test]
    fn load_that_lasts_adds_an_instance_and_the_next_waits_for_it() {
        let t = Instant::now();
        let mut a = scaler();
        assert_eq!(a.observe(0, 1, 80, t), None, "load starts");
        assert_eq!(a.observe(0, 1, 80, t + 100 * MS), None);
        let ask = a.observe(0, 1, 80, t + 200 * MS).unwrap();
        assert_eq!((ask.from, ask.to, ask.since), (1, 2, t));
        // Still loaded, but the second instance is not there yet: nothing more.
        assert_eq!(a.observe(0, 1, 90, t + 600 * MS), None);
        // It came; the load goes on: a third after another 200 ms, then the max.
        assert_eq!(a.observe(0, 2, 90, t + 700 * MS), None);
        assert_eq!(a.observe(0, 2, 90, t + 900 * MS).unwrap().to, 3);
        assert_eq!(a.observe(0, 3, 99, t + 1000 * MS), None);
        assert_eq!(a.observe(0, 3, 99, t + 2000 * MS), None, "max reached");
    }

    #[test]
    fn a_blip_adds_nothing_and_quiet_that_lasts_removes_down_to_min() {
        let t = Instant::now();
        let mut a = scaler();
        assert_eq!(a.observe(0, 2, 80, t), None);
        assert_eq!(a.observe(0, 2, 30, t + 100 * MS), None, "between: neither");
        assert_eq!(a.observe(0, 2, 80, t + 250 * MS), None, "the load restarted");
        assert_eq!(a.observe(0, 2, 5, t + 300 * MS), None, "quiet starts");
        assert_eq!(a.observe(0, 2, 5, t + 1200 * MS), None);
        assert_eq!(a.observe(0, 2, 5, t + 1300 * MS).unwrap().to, 1);
        assert_eq!(a.observe(0, 1, 0, t + 5000 * MS), None, "min reached");
    }

    #[test]
    fn a_request_not_met_in_time_no_longer_holds_the_next() {
        let t = Instant::now();
        let mut a = scaler();
        a.observe(0, 1, 80, t);
        assert!(a.observe(0, 1, 80, t + 200 * MS).is_some());
        assert_eq!(a.observe(0, 1, 80, t + 200 * MS + ASK_TIMEOUT - MS), None);
        assert_eq!(
            a.observe(0, 1, 80, t + 200 * MS + ASK_TIMEOUT),
            None,
            "the load is timed afresh"
        );
        assert!(a.observe(0, 1, 80, t + 400 * MS + ASK_TIMEOUT).is_some());
        assert_eq!(a.observe(7, 1, 80, t), None, "no such rule");
    }
}
