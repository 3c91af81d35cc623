//! The flow table: where a packet goes next, with OpenFlow semantics.
//!
//! openNetVM has two half-tables (a per-flow "flow director" that nobody maintains and
//! a hard-coded default chain). Here there is one priority table, programmed alike by
//! static chains from the config ([`crate::chain`]), the REST API and an OpenFlow 1.3
//! controller, so the three can never disagree about a packet.
//!
//! * The "switch" has physical ports **and one logical port per service** ([`PortNo`]).
//!   A packet an NF hands back with `Next` re-enters the table with `in_port` = that
//!   NF's service port, which is how a chain `a → b → out` becomes three plain rules.
//! * A [`Rule`] = priority + [`Match`] + [`Action`]s + cookie + timeouts + counters. The
//!   highest priority wins; among equal priorities the rule added first wins.
//! * [`FlowTable::add`] follows OpenFlow `FLOW_MOD` add: a rule with the same priority
//!   and match replaces the old one. [`FlowTable::delete`] (non-strict) removes every
//!   rule the given match covers; [`FlowTable::delete_strict`] only the identical one.
//! * Time is passed in (`now`, a [`Duration`] since an epoch of the caller's choosing):
//!   the table has no clock, so timeouts are tested deterministically.
//! * [`FlowCache`] is an exact-match cache in front of the priority scan. It is
//!   invalidated by a generation number that every table change bumps, so a new rule
//!   is seen by the very next packet.

mod cache;
mod key;
mod matcher;
mod port_no;
mod prefix;

use rustc_hash::FxHashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

pub use cache::FlowCache;
pub use key::PacketKey;
pub use matcher::{MacMatch, Match};
pub use port_no::{PortKind, PortNo};
pub use prefix::{Ipv4Prefix, Ipv6Prefix, PrefixError};

/// What to do with a matching packet. A rule with no actions drops (as in OpenFlow).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Action {
    /// Send to a port: a physical port's TX, or a service (one of its instances,
    /// chosen by [`crate::rss::Reta`]).
    Output(PortNo),
    /// Free the packet.
    Drop,
    /// Send to the SDN controller (PACKET_IN).
    Controller,
}

impl Action {
    /// Whether this action sends to `port` (OpenFlow's `out_port` delete filter).
    pub fn outputs_to(&self, port: PortNo) -> bool {
        match self {
            Action::Output(p) => *p == port,
            Action::Controller => port == PortNo::CONTROLLER,
            Action::Drop => false,
        }
    }
}

/// One flow rule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rule {
    /// Higher wins.
    pub priority: u16,
    /// Which packets.
    pub matcher: Match,
    /// What to do, in order.
    pub actions: Vec<Action>,
    /// Opaque value of whoever installed the rule (controllers use it to find theirs).
    pub cookie: u64,
    /// Seconds without a hit after which the rule expires; 0 = never.
    pub idle_timeout: u16,
    /// Seconds after installation after which the rule expires; 0 = never.
    pub hard_timeout: u16,
    /// Packets matched.
    pub packets: u64,
    /// Bytes matched.
    pub bytes: u64,
}

impl Rule {
    /// A permanent rule with zero counters and cookie.
    pub fn new(priority: u16, matcher: Match, actions: Vec<Action>) -> Self {
        Rule {
            priority,
            matcher,
            actions,
            cookie: 0,
            idle_timeout: 0,
            hard_timeout: 0,
            packets: 0,
            bytes: 0,
        }
    }
}

/// Handle of an installed rule; never reused within one table.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RuleId(pub u64);

/// Extra conditions of a delete, as in OpenFlow's FLOW_MOD delete.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DeleteFilter {
    /// Only rules with an action that outputs to this port.
    pub out_port: Option<PortNo>,
    /// Only rules with `rule.cookie & mask == cookie & mask`.
    pub cookie: Option<(u64, u64)>,
}

impl DeleteFilter {
    fn admits(&self, rule: &Rule) -> bool {
        self.out_port
            .is_none_or(|p| rule.actions.iter().any(|a| a.outputs_to(p)))
            && self.cookie.is_none_or(|(c, m)| rule.cookie & m == c & m)
    }
}

/// Why [`FlowTable::expire`] removed a rule.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Expiry {
    /// No hit for `idle_timeout` seconds.
    Idle,
    /// `hard_timeout` seconds since installation.
    Hard,
}

#[derive(Clone, Debug)]
struct Entry {
    id: RuleId,
    rule: Rule,
    installed: Duration,
    last_hit: Duration,
}

/// Source of generation numbers, global so that two tables never share one and a
/// [`FlowCache`] can never mistake one table's entries for another's.
static NEXT_GENERATION: AtomicU64 = AtomicU64::new(1);

fn next_generation() -> u64 {
    NEXT_GENERATION.fetch_add(1, Ordering::Relaxed)
}

/// The priority table.
///
/// Entries are kept sorted by descending priority, and in insertion order within one
/// priority, so a lookup is a scan that stops at the first match. Changes are rare
/// (config, controller); lookups are per packet and mostly served by [`FlowCache`].
#[derive(Debug)]
pub struct FlowTable {
    entries: Vec<Entry>,
    /// Rule ID → position; Fx hashing, because `record` runs once per packet.
    index: FxHashMap<RuleId, usize>,
    next_id: u64,
    generation: u64,
}

impl Default for FlowTable {
    fn default() -> Self {
        FlowTable {
            entries: Vec::new(),
            index: FxHashMap::default(),
            next_id: 1,
            generation: next_generation(),
        }
    }
}

impl FlowTable {
    /// An empty table (every packet misses).
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of rules.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there are no rules.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Changes whenever the set of rules changes (not on counter updates).
    pub fn generation(&self) -> u64 {
        self.generation
    }

    fn changed(&mut self) {
        self.generation = next_generation();
        self.index = self.entries.iter().enumerate().map(|(i, e)| (e.id, i)).collect();
    }

    /// Installs `rule` (FLOW_MOD add). A rule with the same priority and match is
    /// replaced in place (keeping its position among equal priorities) and returned;
    /// the new rule keeps the counters it carries.
    pub fn add(&mut self, rule: Rule, now: Duration) -> (RuleId, Option<Rule>) {
        let id = RuleId(self.next_id);
        self.next_id += 1;
        let entry = Entry {
            id,
            rule,
            installed: now,
            last_hit: now,
        };
        let same = self
            .entries
            .iter()
            .position(|e| e.rule.priority == entry.rule.priority && e.rule.matcher == entry.rule.matcher);
        let replaced = match same {
            Some(i) => Some(std::mem::replace(&mut self.entries[i], entry).rule),
            None => {
                let at = self.entries.partition_point(|e| e.rule.priority >= entry.rule.priority);
                self.entries.insert(at, entry);
                None
            }
        };
        self.changed();
        (id, replaced)
    }

    fn remove_where(&mut self, mut pred: impl FnMut(&Entry) -> bool) -> Vec<Rule> {
        let mut removed = Vec::new();
        let mut kept = Vec::with_capacity(self.entries.len());
        for e in self.entries.drain(..) {
            if pred(&e) {
                removed.push(e.rule);
            } else {
                kept.push(e);
            }
        }
        self.entries = kept;
        if !removed.is_empty() {
            self.changed();
        }
        removed
    }

    /// Non-strict delete: removes every rule whose match `matcher` covers (any
    /// priority) and that `filter` admits. `Match::any()` clears the table.
    pub fn delete(&mut self, matcher: &Match, filter: &DeleteFilter) -> Vec<Rule> {
        self.remove_where(|e| matcher.covers(&e.rule.matcher) && filter.admits(&e.rule))
    }

    /// Strict delete: removes the rule with exactly this priority and match.
    pub fn delete_strict(&mut self, priority: u16, matcher: &Match, filter: &DeleteFilter) -> Option<Rule> {
        self.remove_where(|e| e.rule.priority == priority && e.rule.matcher == *matcher && filter.admits(&e.rule))
            .pop()
    }

    /// Removes one rule by handle.
    pub fn remove(&mut self, id: RuleId) -> Option<Rule> {
        let i = *self.index.get(&id)?;
        let e = self.entries.remove(i);
        self.changed();
        Some(e.rule)
    }

    fn lookup_index(&self, key: &PacketKey) -> Option<usize> {
        self.entries.iter().position(|e| e.rule.matcher.matches(key))
    }

    /// The highest-priority rule matching `key` (ties: the one added first).
    pub fn lookup(&self, key: &PacketKey) -> Option<(RuleId, &Rule)> {
        self.lookup_index(key).map(|i| self.at(i))
    }

    fn at(&self, i: usize) -> (RuleId, &Rule) {
        let e = &self.entries[i];
        (e.id, &e.rule)
    }

    /// The rule with handle `id`.
    pub fn get(&self, id: RuleId) -> Option<&Rule> {
        self.index.get(&id).map(|&i| &self.entries[i].rule)
    }

    /// All rules, in lookup order.
    pub fn iter(&self) -> impl Iterator<Item = (RuleId, &Rule)> {
        self.entries.iter().map(|e| (e.id, &e.rule))
    }

    /// Adds `packets`/`bytes` to a rule's counters and marks it used at `now` (for the
    /// idle timeout). Returns false if the rule is gone. Does not bump the generation:
    /// counters do not change where packets go.
    pub fn record(&mut self, id: RuleId, packets: u64, bytes: u64, now: Duration) -> bool {
        let Some(&i) = self.index.get(&id) else {
            return false;
        };
        let e = &mut self.entries[i];
        e.rule.packets = e.rule.packets.saturating_add(packets);
        e.rule.bytes = e.rule.bytes.saturating_add(bytes);
        e.last_hit = e.last_hit.max(now);
        true
    }

    /// Removes and returns the rules whose hard or idle timeout has passed at `now`
    /// (for OpenFlow's FLOW_REMOVED). A hard timeout wins over an idle one.
    pub fn expire(&mut self, now: Duration) -> Vec<(Rule, Expiry)> {
        let reason = |e: &Entry| {
            let hard = Duration::from_secs(e.rule.hard_timeout.into());
            let idle = Duration::from_secs(e.rule.idle_timeout.into());
            if e.rule.hard_timeout != 0 && now.saturating_sub(e.installed) >= hard {
                Some(Expiry::Hard)
            } else if e.rule.idle_timeout != 0 && now.saturating_sub(e.last_hit) >= idle {
                Some(Expiry::Idle)
            } else {
                None
            }
        };
        let reasons: Vec<Expiry> = self.entries.iter().filter_map(reason).collect();
        self.remove_where(|e| reason(e).is_some())
            .into_iter()
            .zip(reasons)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flow::key::frames::*;

    const T0: Duration = Duration::ZERO;

    #[test]
    fn highest_priority_wins_and_ties_go_to_first_added() {
        let mut t = FlowTable::new();
        let k = key4(PortNo(0), [10, 0, 0, 5], 80);
        let web = Match {
            l4_dst: Some(80),
            ..Match::any()
        };
        let (low, _) = t.add(Rule::new(1, Match::any(), vec![Action::Drop]), T0);
        assert_eq!(t.lookup(&k).unwrap().0, low);
        let (first, _) = t.add(Rule::new(10, web.clone(), vec![Action::Output(PortNo::service(1))]), T0);
        let (_second, _) = t.add(Rule::new(10, Match::in_port(PortNo(0)), vec![Action::Controller]), T0);
        assert_eq!(t.lookup(&k).unwrap().0, first);
        let (high, _) = t.add(Rule::new(100, Match::in_port(PortNo(0)), vec![]), T0);
        assert_eq!(t.lookup(&k).unwrap().0, high);
        assert!(
            t.lookup(&key4(PortNo(3), [1, 2, 3, 4], 22))
                .is_some_and(|(id, _)| id == low)
        );
        assert_eq!(t.len(), 4);
    }

    #[test]
    fn same_priority_and_match_replaces() {
        let mut t = FlowTable::new();
        let m = Match::in_port(PortNo(0));
        let (a, none) = t.add(Rule::new(5, m.clone(), vec![Action::Drop]), T0);
        assert!(none.is_none());
        let (b, old) = t.add(Rule::new(5, m.clone(), vec![Action::Controller]), T0);
        assert_eq!(old.unwrap().actions, vec![Action::Drop]);
        assert_eq!(t.len(), 1);
        assert!(t.get(a).is_none());
        assert_eq!(t.get(b).unwrap().actions, vec![Action::Controller]);
        // Different priority is a different rule.
        t.add(Rule::new(6, m, vec![Action::Drop]), T0);
        assert_eq!(t.len(), 2);
    }

    #[test]
    fn strict_and_non_strict_delete() {
        let mut t = FlowTable::new();
        let m80 = Match {
            ip_proto: Some(6),
            l4_dst: Some(80),
            ..Match::any()
        };
        let m_tcp = Match {
            ip_proto: Some(6),
            ..Match::any()
        };
        t.add(Rule::new(1, m80.clone(), vec![Action::Output(PortNo(1))]), T0);
        t.add(Rule::new(2, m80.clone(), vec![Action::Output(PortNo(2))]), T0);
        t.add(Rule::new(1, m_tcp.clone(), vec![Action::Drop]), T0);
        t.add(Rule::new(1, Match::any(), vec![Action::Drop]), T0);

        assert!(t.delete_strict(3, &m80, &DeleteFilter::default()).is_none());
        let r = t.delete_strict(2, &m80, &DeleteFilter::default()).unwrap();
        assert_eq!(r.actions, vec![Action::Output(PortNo(2))]);
        assert_eq!(t.len(), 3);

        // out_port filter.
        let f = DeleteFilter {
            out_port: Some(PortNo(9)),
            ..DeleteFilter::default()
        };
        assert!(t.delete(&m_tcp, &f).is_empty());
        // Non-strict: "tcp" covers "tcp port 80" and itself, not the catch-all.
        let gone = t.delete(&m_tcp, &DeleteFilter::default());
        assert_eq!(gone.len(), 2);
        assert_eq!(t.len(), 1);
        assert_eq!(t.iter().next().unwrap().1.matcher, Match::any());
        assert_eq!(t.delete(&Match::any(), &DeleteFilter::default()).len(), 1);
        assert!(t.is_empty());
    }

    #[test]
    fn cookie_filter() {
        let mut t = FlowTable::new();
        let mut r = Rule::new(1, Match::in_port(PortNo(0)), vec![]);
        r.cookie = 0xab_0001;
        t.add(r.clone(), T0);
        r.cookie = 0xcd_0001;
        r.matcher = Match::in_port(PortNo(1));
        t.add(r, T0);
        let f = DeleteFilter {
            cookie: Some((0xab_0000, 0xff_0000)),
            ..DeleteFilter::default()
        };
        let gone = t.delete(&Match::any(), &f);
        assert_eq!(gone.len(), 1);
        assert_eq!(gone[0].cookie, 0xab_0001);
    }

    #[test]
    fn counters_and_timeouts() {
        let mut t = FlowTable::new();
        let mut idle = Rule::new(1, Match::in_port(PortNo(0)), vec![]);
        idle.idle_timeout = 10;
        let mut hard = Rule::new(1, Match::in_port(PortNo(1)), vec![]);
        hard.hard_timeout = 5;
        let s = Duration::from_secs;
        let (idle_id, _) = t.add(idle, s(0));
        let (hard_id, _) = t.add(hard, s(0));
        assert!(t.record(idle_id, 2, 128, s(8)));
        assert!(t.record(hard_id, 1, 64, s(4)));
        assert_eq!(t.get(idle_id).unwrap().packets, 2);
        assert_eq!(t.get(idle_id).unwrap().bytes, 128);
        let gone = t.expire(s(5));
        assert_eq!(gone.len(), 1);
        assert_eq!((gone[0].0.hard_timeout, gone[0].1), (5, Expiry::Hard));
        assert_eq!(gone[0].0.packets, 1);
        assert!(t.expire(s(17)).is_empty(), "hit at 8 s keeps it alive until 18 s");
        let gone = t.expire(s(18));
        assert_eq!(gone[0].1, Expiry::Idle);
        assert!(!t.record(idle_id, 1, 1, s(19)));
    }

    #[test]
    fn counters_do_not_bump_generation_but_changes_do() {
        let mut t = FlowTable::new();
        let g0 = t.generation();
        let (id, _) = t.add(Rule::new(1, Match::any(), vec![]), T0);
        let g1 = t.generation();
        assert_ne!(g0, g1);
        t.record(id, 1, 1, T0);
        assert_eq!(t.generation(), g1);
        t.remove(id).unwrap();
        assert_ne!(t.generation(), g1);
        assert_ne!(FlowTable::new().generation(), FlowTable::new().generation());
    }
}
