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
//! * Rules live in one of [`N_TABLES`] numbered tables, as in an OpenFlow pipeline:
//!   every packet starts in table 0 and [`Action::Goto`] continues the lookup in a
//!   later table with the same packet. Config chains use table 0 only.
//! * [`FlowCache`] is an exact-match cache in front of the priority scan of table 0.
//!   It is invalidated by a generation number that every table change bumps, so a new
//!   rule is seen by the very next packet.

mod action_set;
mod cache;
pub mod group;
mod key;
mod matcher;
pub mod meter;
mod port_no;
mod prefix;

use rustc_hash::FxHashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use group::GroupTable;
use meter::MeterTable;

pub use action_set::ActionSet;
pub use cache::FlowCache;
pub use key::PacketKey;
pub use matcher::{Bits, MacMatch, MaskedBits, Match, VID_PRESENT};
pub use port_no::{PortKind, PortNo};
pub use prefix::{Ipv4Prefix, Ipv6Prefix, PrefixError};

/// Number of tables of the pipeline (table IDs `0..N_TABLES`).
pub const N_TABLES: u8 = 8;

/// A header rewrite (OpenFlow's SET_FIELD), done in place with checksums kept valid:
/// [`onvm_packet::Field`], one variant per settable header field.
pub use onvm_packet::Field as Rewrite;

/// A header change that may change the packet's length or finds the packet's TTL run
/// out (OpenFlow's push, pop and TTL actions), done by `onvm_packet`'s functions of the
/// same names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Edit {
    /// Push an outer VLAN tag with this TPID (0x8100 or 0x88a8).
    PushVlan(u16),
    /// Pop the outer VLAN tag.
    PopVlan,
    /// Push an MPLS label stack entry; the packet's EtherType becomes this one.
    PushMpls(u16),
    /// Pop the outer MPLS label; the packet's EtherType becomes this one.
    PopMpls(u16),
    SetMplsTtl(u8),
    /// A TTL of 0 or 1 is not decremented: the packet goes to the controller
    /// (OpenFlow's `OFPR_INVALID_TTL`), or is dropped without one.
    DecMplsTtl,
    SetNwTtl(u8),
    /// As [`Edit::DecMplsTtl`], for the IPv4 TTL or IPv6 hop limit.
    DecNwTtl,
    /// Copy the TTL from the next-to-outermost header to the outermost.
    CopyTtlOut,
    /// Copy the TTL from the outermost header to the next-to-outermost.
    CopyTtlIn,
}

/// What to do with a matching packet. A rule's actions run in order, as OpenFlow's
/// apply-actions: a rewrite or edit changes the packet, an output sends it as it is by
/// then (a copy when more follows), a goto (last) continues in a later table. A rule
/// with no output (and no action set to run, see [`Instructions`]) drops.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Action {
    /// Send to a port: a physical port's TX, or a service (one of its instances,
    /// chosen by [`crate::rss::Reta`]), back where it came from ([`PortNo::IN_PORT`]),
    /// or out of every physical port but that one ([`PortNo::ALL`]).
    Output(PortNo),
    /// Free the packet.
    Drop,
    /// Send to the SDN controller (PACKET_IN) with at most `max_len` bytes, the rest
    /// buffered in the switch; `0xffff` = the whole packet, nothing buffered.
    Controller { max_len: u16 },
    /// Continue the lookup in this (later) table.
    Goto(u8),
    /// Rewrite a header field.
    Set(Rewrite),
    /// Push or pop a tag or label, or set or decrement a TTL.
    Edit(Edit),
    /// Hand the packet to this group ([`group::GroupTable`]).
    Group(u32),
}

impl Action {
    /// Whether this action sends to `port` (OpenFlow's `out_port` delete filter).
    pub fn outputs_to(&self, port: PortNo) -> bool {
        match self {
            Action::Output(p) => *p == port,
            Action::Controller { .. } => port == PortNo::CONTROLLER,
            _ => false,
        }
    }

    /// The group this action sends to, if it is a group action.
    pub fn group(&self) -> Option<u32> {
        match self {
            Action::Group(g) => Some(*g),
            _ => None,
        }
    }
}

/// A rule's OpenFlow instructions other than apply-actions and goto-table (which are
/// its [`Rule::actions`]): run in the spec's order meter, apply-actions, clear-actions,
/// write-actions, write-metadata, goto. Empty for every rule a config chain or a plain
/// controller rule makes, which keeps such rules on the fast paths.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Instructions {
    /// Meter the packet first ([`meter::MeterTable`]); a drop band ends the pipeline.
    pub meter: Option<u32>,
    /// Empty the packet's action set.
    pub clear: bool,
    /// Merge these actions, as written, into the packet's action set ([`ActionSet`]),
    /// which runs when the pipeline ends (at a rule with no goto).
    pub write: Vec<Action>,
    /// Set the metadata register's bits that are 1 in the mask (value, mask): the
    /// next table's rules match on it.
    pub metadata: Option<(u64, u64)>,
}

impl Instructions {
    /// Whether there is none (the rule is plain apply-actions and goto).
    pub fn is_empty(&self) -> bool {
        self.meter.is_none() && !self.clear && self.write.is_empty() && self.metadata.is_none()
    }
}

/// How a controller spelled a rule's outputs where onvm carries out two spellings alike
/// (FLOOD and ALL), kept with the rule so that flow stats read back what was installed.
/// Nothing that forwards looks at it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Spelling {
    /// Bit `i` set: action `i` of the rule's actions followed by its written ones
    /// ([`Instructions::write`]), an output to [`PortNo::ALL`], was written as FLOOD (an
    /// output past the 64th reads back as ALL).
    pub flood: u64,
}

/// One flow rule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rule {
    /// The table it is in (`0..N_TABLES`); every packet starts in table 0.
    pub table: u8,
    /// Higher wins.
    pub priority: u16,
    /// Which packets.
    pub matcher: Match,
    /// What to do, in order (apply-actions, then a goto if any).
    pub actions: Vec<Action>,
    /// Meter, clear/write-actions and write-metadata (empty for most rules).
    pub instructions: Instructions,
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
    /// OpenFlow's flow-mod flags (`OFPFF_*`, e.g. send FLOW_REMOVED), kept as given.
    pub flags: u16,
    /// When [`FlowTable::add`] installed it (the caller's clock, as `now`).
    pub installed: Duration,
    /// How the installer spelled the actions (for reading them back; default: plainly).
    pub spelling: Spelling,
}

impl Rule {
    /// A permanent table-0 rule with zero counters, cookie and flags.
    pub fn new(priority: u16, matcher: Match, actions: Vec<Action>) -> Self {
        Rule {
            table: 0,
            priority,
            matcher,
            actions,
            instructions: Instructions::default(),
            cookie: 0,
            idle_timeout: 0,
            hard_timeout: 0,
            packets: 0,
            bytes: 0,
            flags: 0,
            installed: Duration::ZERO,
            spelling: Spelling::default(),
        }
    }

    /// The rule that catches what no other rule of its table does (OpenFlow's
    /// "table-miss" entry): priority 0, matching everything.
    pub fn is_table_miss(&self) -> bool {
        self.priority == 0 && self.matcher == Match::any()
    }

    /// Its apply-actions (and goto) and then its written actions: everything it may do
    /// to a packet (for the out_port and out_group filters and group references).
    pub fn all_actions(&self) -> impl Iterator<Item = &Action> {
        self.actions.iter().chain(&self.instructions.write)
    }
}

/// Handle of an installed rule; never reused within one table.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RuleId(pub u64);

/// Extra conditions of a delete or modify, as in OpenFlow's FLOW_MOD.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DeleteFilter {
    /// Only rules of this table (`None`: of every table).
    pub table: Option<u8>,
    /// Only rules with an action that outputs to this port.
    pub out_port: Option<PortNo>,
    /// Only rules with an action that sends to this group.
    pub out_group: Option<u32>,
    /// Only rules with `rule.cookie & mask == cookie & mask`.
    pub cookie: Option<(u64, u64)>,
}

impl DeleteFilter {
    /// Whether `rule` passes these conditions.
    pub fn admits(&self, rule: &Rule) -> bool {
        self.table.is_none_or(|t| rule.table == t)
            && self
                .out_port
                .is_none_or(|p| rule.all_actions().any(|a| a.outputs_to(p)))
            && self
                .out_group
                .is_none_or(|g| rule.all_actions().any(|a| a.group() == Some(g)))
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
    last_hit: Duration,
}

impl Entry {
    #[inline]
    fn hit(&mut self, packets: u64, bytes: u64, now: Duration) {
        self.rule.packets = self.rule.packets.saturating_add(packets);
        self.rule.bytes = self.rule.bytes.saturating_add(bytes);
        self.last_hit = self.last_hit.max(now);
    }
}

/// What makes two rules the same rule for [`FlowTable::add`].
fn exact_key(r: &Rule) -> (u8, u16, Match) {
    (r.table, r.priority, r.matcher.clone())
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
/// priority, so a lookup is a scan that stops at the first match. Lookups are per packet
/// and mostly served by [`FlowCache`]. Changes come from the config and from
/// controllers, which install thousands of rules in a row: an add finds an identical
/// rule by hash and moves only the positions after its own, so installing rules in
/// priority order costs O(1) each (`scripts/bench-openflow.sh`).
#[derive(Debug)]
pub struct FlowTable {
    entries: Vec<Entry>,
    /// Rule ID → position; Fx hashing, because `record` runs once per packet.
    index: FxHashMap<RuleId, usize>,
    /// (table, priority, match) → rule: what an add replaces.
    exact: FxHashMap<(u8, u16, Match), RuleId>,
    next_id: u64,
    generation: u64,
    /// The groups rules send to (OpenFlow's group table), kept here because a rule may
    /// only name a group that exists and deleting a group deletes its rules.
    pub groups: GroupTable,
    /// The meters rules run packets through.
    pub meters: MeterTable,
}

impl Default for FlowTable {
    fn default() -> Self {
        FlowTable {
            entries: Vec::new(),
            index: FxHashMap::default(),
            exact: FxHashMap::default(),
            next_id: 1,
            generation: next_generation(),
            groups: GroupTable::with_chaining(Action::group),
            meters: MeterTable::new(),
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

    /// After rules were removed: positions and the exact-match map from scratch.
    fn changed(&mut self) {
        self.generation = next_generation();
        self.index = self.entries.iter().enumerate().map(|(i, e)| (e.id, i)).collect();
        self.exact = self.entries.iter().map(|e| (exact_key(&e.rule), e.id)).collect();
    }

    /// Installs `rule` (FLOW_MOD add) at `now`. A rule of the same table with the same
    /// priority and match is replaced in place (keeping its position among equal
    /// priorities) and returned; the new rule keeps the counters it carries.
    ///
    /// # Panics
    /// If `rule.table >= N_TABLES`, or it goes to a table that is not a later one
    /// (callers check what they are given first; a pipeline must not loop).
    pub fn add(&mut self, mut rule: Rule, now: Duration) -> (RuleId, Option<Rule>) {
        assert!(rule.table < N_TABLES, "table {} out of range", rule.table);
        assert!(
            rule.actions
                .iter()
                .all(|a| !matches!(a, Action::Goto(t) if *t <= rule.table || *t >= N_TABLES)),
            "a rule may only go to a later table"
        );
        let id = RuleId(self.next_id);
        self.next_id += 1;
        rule.installed = now;
        let entry = Entry {
            id,
            rule,
            last_hit: now,
        };
        let key = exact_key(&entry.rule);
        let replaced = match self.exact.insert(key, id) {
            Some(old) => {
                let i = self.index.remove(&old).expect("indexed");
                self.index.insert(id, i);
                Some(std::mem::replace(&mut self.entries[i], entry).rule)
            }
            None => {
                let at = self.entries.partition_point(|e| e.rule.priority >= entry.rule.priority);
                self.entries.insert(at, entry);
                for (i, e) in self.entries.iter().enumerate().skip(at) {
                    self.index.insert(e.id, i);
                }
                None
            }
        };
        self.generation = next_generation();
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

    /// Whether a rule of `table` with this priority has a match that some packet
    /// could share with `matcher` (OpenFlow's CHECK_OVERLAP refusal).
    pub fn overlaps(&self, table: u8, priority: u16, matcher: &Match) -> bool {
        self.entries
            .iter()
            .any(|e| e.rule.table == table && e.rule.priority == priority && e.rule.matcher.overlaps(matcher))
    }

    /// FLOW_MOD modify: gives every rule that `matcher` covers (non-strict) or that has
    /// exactly this priority and match (strict, `priority` given), and that `filter`
    /// admits, these actions and instructions (spelled so) and flags, keeping its counters unless
    /// `reset_counts`. Returns how many rules changed (0 adds nothing, as in OpenFlow 1.3).
    #[allow(clippy::too_many_arguments)]
    pub fn modify(
        &mut self,
        matcher: &Match,
        priority: Option<u16>,
        filter: &DeleteFilter,
        actions: &[Action],
        instructions: &Instructions,
        spelling: Spelling,
        flags: u16,
        reset_counts: bool,
    ) -> usize {
        let mut n = 0;
        for e in &mut self.entries {
            let hit = match priority {
                Some(p) => e.rule.priority == p && e.rule.matcher == *matcher,
                None => matcher.covers(&e.rule.matcher),
            };
            if hit && filter.admits(&e.rule) {
                e.rule.actions = actions.to_vec();
                e.rule.instructions = instructions.clone();
                e.rule.spelling = spelling;
                e.rule.flags = flags;
                if reset_counts {
                    e.rule.packets = 0;
                    e.rule.bytes = 0;
                }
                n += 1;
            }
        }
        if n > 0 {
            // Positions and matches stay: only where packets go changed.
            self.generation = next_generation();
        }
        n
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

    /// GROUP_MOD delete: removes group `id` (every group for [`group::OFPG_ALL`]) and
    /// every rule that sends to a removed group (returned, for FLOW_REMOVED with reason
    /// GROUP_DELETE), as Open vSwitch does.
    pub fn delete_group(&mut self, id: u32) -> Result<Vec<Rule>, group::GroupError> {
        let gone = self.groups.delete(id)?;
        if gone.is_empty() {
            return Ok(Vec::new());
        }
        Ok(self.remove_where(|e| {
            e.rule
                .all_actions()
                .any(|a| a.group().is_some_and(|g| gone.contains(&g)))
        }))
    }

    /// METER_MOD delete: removes meter `id` (every meter for [`meter::OFPM_ALL`]) and
    /// every rule that uses a removed meter (returned, for FLOW_REMOVED with reason
    /// METER_DELETE), as Open vSwitch does.
    pub fn delete_meter(&mut self, id: u32) -> Vec<Rule> {
        let gone = self.meters.delete(id);
        if gone.is_empty() {
            return Vec::new();
        }
        self.remove_where(|e| e.rule.instructions.meter.is_some_and(|m| gone.contains(&m)))
    }

    fn lookup_index(&self, table: u8, key: &PacketKey) -> Option<usize> {
        self.entries
            .iter()
            .position(|e| e.rule.table == table && e.rule.matcher.matches(key))
    }

    /// The highest-priority rule of table 0 matching `key` (ties: the one added first).
    pub fn lookup(&self, key: &PacketKey) -> Option<(RuleId, &Rule)> {
        self.lookup_in(0, key)
    }

    /// The highest-priority rule of `table` matching `key` (a [`Action::Goto`]).
    pub fn lookup_in(&self, table: u8, key: &PacketKey) -> Option<(RuleId, &Rule)> {
        self.lookup_index(table, key).map(|i| self.at(i))
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

    /// Whether any rule sends packets to `port`: an output in its actions or written
    /// action set, or in a bucket of a group (any group: a rule may name it later).
    pub fn reaches(&self, port: PortNo) -> bool {
        let sends = |a: &Action| a.outputs_to(port);
        self.entries
            .iter()
            .any(|e| e.rule.actions.iter().any(sends) || e.rule.instructions.write.iter().any(sends))
            || self
                .groups
                .iter()
                .any(|(_, g)| g.buckets.iter().any(|b| b.actions.iter().any(sends)))
    }

    /// Adds `packets`/`bytes` to a rule's counters and marks it used at `now` (for the
    /// idle timeout). Returns false if the rule is gone. Does not bump the generation:
    /// counters do not change where packets go.
    pub fn record(&mut self, id: RuleId, packets: u64, bytes: u64, now: Duration) -> bool {
        let Some(&i) = self.index.get(&id) else {
            return false;
        };
        self.entries[i].hit(packets, bytes, now);
        true
    }

    /// Where rule `id` is in lookup order now, for [`FlowTable::record_at`].
    pub fn position(&self, id: RuleId) -> Option<usize> {
        self.index.get(&id).copied()
    }

    /// [`FlowTable::record`] for a rule found at position `at` (by
    /// [`FlowTable::position`]): no map lookup while it is still there, which is the
    /// per-packet case of a caller that found the rule once per table generation (a
    /// map lookup was 12 % of the switch's time on a plain chain). A rule that moved
    /// is found through the map.
    #[inline]
    pub fn record_at(&mut self, at: usize, id: RuleId, packets: u64, bytes: u64, now: Duration) -> bool {
        match self.entries.get_mut(at) {
            Some(e) if e.id == id => {
                e.hit(packets, bytes, now);
                true
            }
            _ => self.record(id, packets, bytes, now),
        }
    }

    /// Removes and returns the rules whose hard or idle timeout has passed at `now`
    /// (for OpenFlow's FLOW_REMOVED). A hard timeout wins over an idle one.
    pub fn expire(&mut self, now: Duration) -> Vec<(Rule, Expiry)> {
        let reason = |e: &Entry| {
            let hard = Duration::from_secs(e.rule.hard_timeout.into());
            let idle = Duration::from_secs(e.rule.idle_timeout.into());
            if e.rule.hard_timeout != 0 && now.saturating_sub(e.rule.installed) >= hard {
                Some(Expiry::Hard)
            } else if e.rule.idle_timeout != 0 && now.saturating_sub(e.last_hit) >= idle {
                Some(Expiry::Idle)
            } else {
                None
            }
        };
        let reasons: Vec<Expiry> = self.entries.iter().filter_map(reason).collect();
        // The manager asks ten times a second; most times nothing is due.
        if reasons.is_empty() {
            return Vec::new();
        }
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
        let (_second, _) = t.add(
            Rule::new(10, Match::in_port(PortNo(0)), vec![Action::Controller { max_len: 128 }]),
            T0,
        );
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
        let (b, old) = t.add(Rule::new(5, m.clone(), vec![Action::Controller { max_len: 128 }]), T0);
        assert_eq!(old.unwrap().actions, vec![Action::Drop]);
        assert_eq!(t.len(), 1);
        assert!(t.get(a).is_none());
        assert_eq!(t.get(b).unwrap().actions, vec![Action::Controller { max_len: 128 }]);
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
    fn tables_are_separate_and_goto_only_goes_forward() {
        let mut t = FlowTable::new();
        let k = key4(PortNo(0), [10, 0, 0, 5], 80);
        let mut second = Rule::new(9, Match::any(), vec![Action::Output(PortNo(2))]);
        second.table = 1;
        let (in1, _) = t.add(second.clone(), T0);
        // Table 0 does not see table 1's rule.
        assert!(t.lookup(&k).is_none());
        let (goto, _) = t.add(Rule::new(1, Match::any(), vec![Action::Goto(1)]), T0);
        assert_eq!(t.lookup(&k).unwrap().0, goto);
        assert_eq!(t.lookup_in(1, &k).unwrap().0, in1);
        // Same priority and match in another table is another rule.
        second.table = 2;
        t.add(second, T0);
        assert_eq!(t.len(), 3);
        // A delete restricted to one table leaves the others.
        let only1 = DeleteFilter {
            table: Some(1),
            ..DeleteFilter::default()
        };
        assert_eq!(t.delete(&Match::any(), &only1).len(), 1);
        assert!(t.lookup_in(1, &k).is_none());
        assert!(t.lookup_in(2, &k).is_some());
        let backwards = std::panic::catch_unwind(|| {
            let mut r = Rule::new(1, Match::any(), vec![Action::Goto(1)]);
            r.table = 1;
            FlowTable::new().add(r, T0)
        });
        assert!(backwards.is_err(), "a goto to the same table would loop");
    }

    #[test]
    fn modify_changes_actions_and_keeps_counters() {
        let mut t = FlowTable::new();
        let m = Match::in_port(PortNo(0));
        let (id, _) = t.add(Rule::new(5, m.clone(), vec![Action::Drop]), Duration::from_secs(3));
        assert_eq!(t.get(id).unwrap().installed, Duration::from_secs(3));
        t.record(id, 4, 400, T0);
        let g = t.generation();
        let none = DeleteFilter::default();
        // Strict with another priority: nothing.
        assert_eq!(
            t.modify(
                &m,
                Some(6),
                &none,
                &[Action::Output(PortNo(1))],
                &Instructions::default(),
                Spelling::default(),
                0,
                false
            ),
            0
        );
        assert_eq!(t.generation(), g);
        // Non-strict with a covering match.
        assert_eq!(
            t.modify(
                &Match::any(),
                None,
                &none,
                &[Action::Output(PortNo(1))],
                &Instructions::default(),
                Spelling::default(),
                1,
                false
            ),
            1
        );
        let r = t.get(id).unwrap();
        assert_eq!(
            (r.actions.as_slice(), r.flags, r.packets),
            (&[Action::Output(PortNo(1))][..], 1, 4)
        );
        assert_ne!(t.generation(), g, "fixed-rule caches must see new actions");
        assert_eq!(
            t.modify(
                &m,
                Some(5),
                &none,
                &[],
                &Instructions::default(),
                Spelling::default(),
                0,
                true
            ),
            1
        );
        assert_eq!(t.get(id).unwrap().packets, 0);
        assert_eq!(t.len(), 1, "modify never adds");
    }

    #[test]
    fn overlap_of_equal_priority_rules() {
        let mut t = FlowTable::new();
        let tcp80 = Match {
            ip_proto: Some(6),
            l4_dst: Some(80),
            ..Match::any()
        };
        t.add(Rule::new(5, tcp80, vec![]), T0);
        let udp = Match {
            ip_proto: Some(17),
            ..Match::any()
        };
        let net = Match {
            ipv4_dst: Some("10.0.0.0/8".parse().unwrap()),
            ..Match::any()
        };
        assert!(!t.overlaps(0, 5, &udp), "tcp and udp exclude each other");
        assert!(t.overlaps(0, 5, &net), "a tcp/80 packet to 10/8 matches both");
        assert!(!t.overlaps(0, 4, &net), "other priorities do not count");
        assert!(!t.overlaps(1, 5, &net), "nor other tables");
        let v6 = Match {
            ipv6_dst: Some("::/0".parse().unwrap()),
            ..Match::any()
        };
        assert!(!net.overlaps(&v6) && !v6.overlaps(&net));
        let a = Match {
            ipv4_dst: Some("10.1.0.0/16".parse().unwrap()),
            ..Match::any()
        };
        let b = Match {
            ipv4_dst: Some("10.2.0.0/16".parse().unwrap()),
            ..Match::any()
        };
        assert!(!a.overlaps(&b) && a.overlaps(&net));
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

    #[test]
    fn deleting_a_group_or_meter_deletes_the_rules_that_use_it() {
        let mut t = FlowTable::new();
        t.groups
            .add(
                7,
                group::GroupType::Indirect,
                vec![group::Bucket::new(vec![Action::Output(PortNo(1))])],
                T0,
            )
            .unwrap();
        t.meters
            .add(
                3,
                meter::OFPMF_PKTPS,
                vec![meter::Band::new(meter::BandKind::Drop, 10, 0)],
                T0,
            )
            .unwrap();
        let (applied, _) = t.add(Rule::new(3, Match::in_port(PortNo(0)), vec![Action::Group(7)]), T0);
        let mut written = Rule::new(2, Match::in_port(PortNo(1)), vec![]);
        written.instructions.write = vec![Action::Group(7)];
        t.add(written, T0);
        let mut metered = Rule::new(1, Match::in_port(PortNo(2)), vec![Action::Output(PortNo(0))]);
        metered.instructions.meter = Some(3);
        let (metered, _) = t.add(metered, T0);
        let filter = DeleteFilter {
            out_group: Some(7),
            ..Default::default()
        };
        assert!(filter.admits(t.get(applied).unwrap()));
        assert!(!filter.admits(t.get(metered).unwrap()));
        assert_eq!(t.delete_group(7).unwrap().len(), 2, "applied and written group actions");
        assert!(t.groups.is_empty());
        assert_eq!(t.len(), 1);
        assert_eq!(t.delete_meter(3).len(), 1);
        assert!(t.is_empty() && t.meters.is_empty());
        assert!(
            t.delete_group(9).unwrap().is_empty(),
            "no such group: nothing, no error"
        );
    }

    #[test]
    fn record_at_counts_the_rule_where_it_is_and_finds_it_after_it_moved() {
        let mut t = FlowTable::new();
        let (id, _) = t.add(Rule::new(1, Match::in_port(PortNo(0)), vec![Action::Drop]), T0);
        let at = t.position(id).unwrap();
        assert!(t.record_at(at, id, 2, 120, T0));
        // A rule of higher priority goes in front: the old position is another rule's.
        let (first, _) = t.add(Rule::new(9, Match::in_port(PortNo(1)), vec![Action::Drop]), T0);
        assert_eq!(t.position(first), Some(at));
        assert!(t.record_at(at, id, 1, 60, T0));
        assert_eq!((t.get(id).unwrap().packets, t.get(id).unwrap().bytes), (3, 180));
        assert_eq!(
            t.get(first).unwrap().packets,
            0,
            "the rule now at the old position is not counted"
        );
        t.remove(id);
        assert!(!t.record_at(at, id, 1, 60, T0), "a rule that is gone counts nowhere");
    }
}
