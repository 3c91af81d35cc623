//! OpenFlow groups (ALL, SELECT, INDIRECT, FAST_FAILOVER): the group table.
//!
//! A rule's `Group` action hands the packet to a group, whose buckets are lists of
//! actions. This module holds the table (what a GROUP_MOD builds, with OpenFlow's
//! errors) and the choice of buckets for one packet; running the chosen buckets' actions
//! (a copy of the packet each) is the forwarding code's job.
//!
//! Open vSwitch's userspace datapath is the reference; where this module differs it says
//! so. In short:
//!
//! * Validation follows `ofputil_check_group_mod` (`lib/ofp-group.c`) and `init_group` /
//!   `add_group_start` / `modify_group_start` (`ofproto/ofproto.c`). On top of OVS, a
//!   bucket may only chain to a group that exists, a chain may not loop, and a group
//!   another group chains to cannot be deleted alone (the spec's `OFPGMFC_LOOP` and
//!   `OFPGMFC_CHAINED_GROUP`; OVS accepts all three and lets translation stop at a depth
//!   limit).
//! * A modify replaces the buckets and the type, zeroes the counters (OVS builds a new
//!   group; "XXX: OK to lose old group's stats?") and keeps the creation time and the
//!   rules that point at the group.
//! * SELECT picks one live bucket by a flow hash with weighted rendezvous ("highest
//!   random weight") hashing: each bucket scores the flow, the best score wins. OVS's
//!   fallback method (`group_best_live_bucket` in `ofproto-dpif-xlate.c`) is the same idea
//!   with a score of `hash & 0xffff × weight`, which over-favours heavy buckets; here the
//!   score is `weight / -ln(u)`, so a bucket's share is exactly its weight's share, as
//!   with OVS's default dp_hash table (`group_setup_dp_hash_table`, Webster's method).
//!   Unlike that table, removing a bucket (or its going down) moves only the flows it
//!   had, and a weight change moves flows only to or from that bucket.
//! * Liveness is OVS's `bucket_is_alive`: in a SELECT group a bucket of weight 0 is never
//!   used; a bucket that watches nothing is live; one that watches is live if its watch
//!   port is up or its watch group has a live bucket (at most [`MAX_LIVENESS_DEPTH`]
//!   links deep, as OVS's `MAX_LIVENESS_RECURSION`).
//! * Counters follow `group_dpif_credit_stats`: a packet through an ALL or INDIRECT group
//!   counts for the group and every bucket; one through SELECT or FAST_FAILOVER for the
//!   group and the chosen bucket; one that found no live bucket counts nowhere.
//!
//! Group ids: `0 ..= OFPG_MAX` are groups; [`OFPG_ALL`] names all of them in a delete;
//! [`OFPG_ANY`] is "none" on the wire (a bucket's `watch_group`: here `None`).

use std::hash::{Hash, Hasher};
use std::time::Duration;

use rustc_hash::{FxHashMap, FxHashSet, FxHasher};
use thiserror::Error;

use super::{Action, PortKind, PortNo, Rule};

/// The largest group id (`OFPG_MAX`).
pub const OFPG_MAX: u32 = 0xffff_ff00;
/// All groups, in a delete or a stats request (`OFPG_ALL`).
pub const OFPG_ALL: u32 = 0xffff_fffc;
/// No group (`OFPG_ANY`): a bucket's unset `watch_group` on the wire.
pub const OFPG_ANY: u32 = 0xffff_ffff;

/// Most groups in one table (of all types together; a GROUP_FEATURES reply states it
/// for each type). More is [`GroupError::OutOfGroups`].
pub const MAX_GROUPS: usize = 65_536;
/// Most buckets in one group. SELECT scores every bucket per packet, so this bounds a
/// packet's cost. More is [`GroupError::OutOfBuckets`].
pub const MAX_BUCKETS: usize = 256;
/// How many watch-group links a liveness check follows before it calls a bucket dead
/// (OVS's `MAX_LIVENESS_RECURSION`).
pub const MAX_LIVENESS_DEPTH: u32 = 128;
/// Watching buckets one liveness check may examine in all; past it a bucket counts as
/// dead. Groups that watch groups that watch groups could otherwise cost
/// `buckets ^ depth` per packet.
const LIVENESS_BUDGET: u32 = 4096;

/// `OFPGFC_SELECT_WEIGHT`: SELECT buckets have weights.
pub const OFPGFC_SELECT_WEIGHT: u32 = 1 << 0;
/// `OFPGFC_SELECT_LIVENESS`: SELECT buckets may watch ports and groups.
pub const OFPGFC_SELECT_LIVENESS: u32 = 1 << 1;
/// `OFPGFC_CHAINING`: a bucket may send to another group.
pub const OFPGFC_CHAINING: u32 = 1 << 2;
/// `OFPGFC_CHAINING_CHECKS`: chains are checked for loops.
pub const OFPGFC_CHAINING_CHECKS: u32 = 1 << 3;

/// What a GROUP_FEATURES reply says (the supported actions per type are the manager's).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GroupFeatures {
    /// Bitmap of supported types, bit `1 << type` (all four).
    pub types: u32,
    /// `OFPGFC_*` bits.
    pub capabilities: u32,
    /// Most groups of each type, indexed by the type's number.
    pub max_groups: [u32; 4],
}

/// This implementation's features: every type, weights, liveness, chaining with checks.
/// (OVS reports the same without `CHAINING_CHECKS`, and `OFPG_MAX` groups.)
pub const FEATURES: GroupFeatures = GroupFeatures {
    types: 0xf,
    capabilities: OFPGFC_SELECT_WEIGHT | OFPGFC_SELECT_LIVENESS | OFPGFC_CHAINING | OFPGFC_CHAINING_CHECKS,
    max_groups: [MAX_GROUPS as u32; 4],
};

/// The four group types of OpenFlow 1.3.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum GroupType {
    /// Every bucket, each on its own copy (multicast, flooding).
    All,
    /// One bucket, chosen by the flow's hash among the live ones, weighted.
    Select,
    /// The one bucket (a shared next hop that many rules point at).
    Indirect,
    /// The first live bucket.
    FastFailover,
}

impl GroupType {
    /// From OpenFlow's `ofp_group_type` (`OFPGT_ALL` = 0 … `OFPGT_FF` = 3).
    pub fn from_ofp(t: u8) -> Result<GroupType, GroupError> {
        match t {
            0 => Ok(GroupType::All),
            1 => Ok(GroupType::Select),
            2 => Ok(GroupType::Indirect),
            3 => Ok(GroupType::FastFailover),
            t => Err(GroupError::BadType(t)),
        }
    }

    /// OpenFlow's number for this type.
    pub fn to_ofp(self) -> u8 {
        match self {
            GroupType::All => 0,
            GroupType::Select => 1,
            GroupType::Indirect => 2,
            GroupType::FastFailover => 3,
        }
    }
}

/// One bucket of a group: actions, and what decides whether it may be used.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Bucket {
    /// Share of a SELECT group's flows (0: never chosen); must be 0 in other types.
    pub weight: u16,
    /// The bucket is live while this port is up (FAST_FAILOVER, SELECT).
    pub watch_port: Option<PortNo>,
    /// The bucket is live while this group has a live bucket (FAST_FAILOVER, SELECT).
    pub watch_group: Option<u32>,
    /// What to do with the packet's copy, in order (OpenFlow's action set).
    pub actions: Vec<Action>,
    /// Packets that went through this bucket.
    pub packets: u64,
    /// Bytes that went through this bucket.
    pub bytes: u64,
}

impl Bucket {
    /// A bucket with these actions, weight 0, watching nothing, zero counters (what an
    /// ALL or INDIRECT group takes).
    pub fn new(actions: Vec<Action>) -> Bucket {
        Bucket {
            weight: 0,
            watch_port: None,
            watch_group: None,
            actions,
            packets: 0,
            bytes: 0,
        }
    }

    /// This bucket with a SELECT weight.
    pub fn with_weight(mut self, weight: u16) -> Bucket {
        self.weight = weight;
        self
    }

    /// This bucket watching `port`.
    pub fn with_watch_port(mut self, port: PortNo) -> Bucket {
        self.watch_port = Some(port);
        self
    }

    /// This bucket watching group `group`.
    pub fn with_watch_group(mut self, group: u32) -> Bucket {
        self.watch_group = Some(group);
        self
    }

    /// Whether it watches anything (OVS's `ofputil_bucket_has_liveness`).
    pub fn watches(&self) -> bool {
        self.watch_port.is_some() || self.watch_group.is_some()
    }
}

/// An installed group.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Group {
    /// Its type.
    pub kind: GroupType,
    /// Its buckets, in the order given.
    pub buckets: Vec<Bucket>,
    /// Packets that reached the group and found a bucket.
    pub packets: u64,
    /// Bytes of those packets.
    pub bytes: u64,
    /// When it was added (a modify keeps it), on the caller's clock.
    pub installed: Duration,
    /// Per bucket: its identity for rendezvous hashing (a hash of what the bucket does
    /// and watches, made unique), so a bucket keeps its flows when others come or go.
    keys: Vec<u64>,
}

/// Why a group mod (or a rule's group action) was refused. Each variant's doc names
/// the OpenFlow error it becomes, which [`GroupError::ofp_error`] returns.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Error)]
pub enum GroupError {
    /// An add for an id in use. `OFPGMFC_GROUP_EXISTS`.
    #[error("group {0} exists")]
    Exists(u32),
    /// A modify of a group that does not exist. `OFPGMFC_UNKNOWN_GROUP`.
    #[error("no group {0}")]
    Unknown(u32),
    /// An id above `OFPG_MAX` in an add or modify. `OFPGMFC_INVALID_GROUP` (OVS's
    /// `init_group`).
    #[error("group id {0:#x} is above OFPG_MAX")]
    InvalidId(u32),
    /// A type number past FAST_FAILOVER. `OFPGMFC_BAD_TYPE`.
    #[error("unknown group type {0}")]
    BadType(u8),
    /// An INDIRECT group with other than one bucket. `OFPGMFC_INVALID_GROUP` (OVS's
    /// `ofputil_check_group_mod`).
    #[error("an indirect group has exactly one bucket, not {0}")]
    IndirectBuckets(usize),
    /// A weight on a bucket of a group that is not SELECT. `OFPGMFC_INVALID_GROUP` (as
    /// OVS; the spec would allow `OFPGMFC_WEIGHT_UNSUPPORTED`).
    #[error("only select groups have bucket weights")]
    WeightNotSelect,
    /// A FAST_FAILOVER bucket that watches neither a port nor a group.
    /// `OFPGMFC_INVALID_GROUP` (as OVS).
    #[error("a fast failover bucket watches a port or a group")]
    Unwatched,
    /// A watch on a bucket of an ALL or INDIRECT group. `OFPGMFC_WATCH_UNSUPPORTED`.
    #[error("only select and fast failover buckets watch ports or groups")]
    WatchUnsupported,
    /// A watch port that is not a port (`IN_PORT`, `ALL`) or a watch group above
    /// `OFPG_MAX`. `OFPGMFC_BAD_WATCH`.
    #[error("bad watch port or group")]
    BadWatch,
    /// Already [`MAX_GROUPS`] groups. `OFPGMFC_OUT_OF_GROUPS`.
    #[error("out of groups (at most {MAX_GROUPS})")]
    OutOfGroups,
    /// More than [`MAX_BUCKETS`] buckets. `OFPGMFC_OUT_OF_BUCKETS`.
    #[error("out of buckets (at most {MAX_BUCKETS} per group)")]
    OutOfBuckets,
    /// A group action (in a bucket, or a rule's) to a group that does not exist.
    /// `OFPBAC_BAD_OUT_GROUP` (error type `OFPET_BAD_ACTION`), as OVS answers a flow mod
    /// with one (`ofproto_check_ofpacts`); OVS does not check buckets.
    #[error("group action to group {0}, which does not exist")]
    UnknownOutGroup(u32),
    /// The group's buckets would lead back to it through group actions.
    /// `OFPGMFC_LOOP`.
    #[error("group {0} would loop")]
    Loop(u32),
    /// A delete of group `.0` while group `.1` chains to it. `OFPGMFC_CHAINED_GROUP`.
    #[error("group {0} is chained to from group {1}")]
    Chained(u32, u32),
}

/// `OFPET_BAD_ACTION`.
const OFPET_BAD_ACTION: u16 = 2;
/// `OFPET_GROUP_MOD_FAILED`.
const OFPET_GROUP_MOD_FAILED: u16 = 6;

impl GroupError {
    /// OpenFlow's (error type, code) for this refusal.
    pub fn ofp_error(&self) -> (u16, u16) {
        let code = match self {
            GroupError::Exists(_) => 0,
            GroupError::InvalidId(_)
            | GroupError::IndirectBuckets(_)
            | GroupError::WeightNotSelect
            | GroupError::Unwatched => 1,
            GroupError::OutOfGroups => 3,
            GroupError::OutOfBuckets => 4,
            GroupError::WatchUnsupported => 6,
            GroupError::Loop(_) => 7,
            GroupError::Unknown(_) => 8,
            GroupError::Chained(..) => 9,
            GroupError::BadType(_) => 10,
            GroupError::BadWatch => 13,
            GroupError::UnknownOutGroup(_) => return (OFPET_BAD_ACTION, 9),
        };
        (OFPET_GROUP_MOD_FAILED, code)
    }
}

/// The buckets a packet goes through: `(index, bucket)` pairs, from
/// [`GroupTable::buckets_for`]. Empty when a SELECT or FAST_FAILOVER group has no live
/// bucket (the packet is dropped).
#[derive(Clone, Debug)]
pub struct Chosen<'a>(ChosenInner<'a>);

#[derive(Clone, Debug)]
enum ChosenInner<'a> {
    All(std::iter::Enumerate<std::slice::Iter<'a, Bucket>>),
    One(Option<(usize, &'a Bucket)>),
}

impl<'a> Iterator for Chosen<'a> {
    type Item = (usize, &'a Bucket);

    fn next(&mut self) -> Option<Self::Item> {
        match &mut self.0 {
            ChosenInner::All(it) => it.next(),
            ChosenInner::One(one) => one.take(),
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        match &self.0 {
            ChosenInner::All(it) => it.size_hint(),
            ChosenInner::One(one) => (usize::from(one.is_some()), Some(usize::from(one.is_some()))),
        }
    }
}

impl ExactSizeIterator for Chosen<'_> {}

/// The groups a rule sends to, with repeats: group actions among its apply-actions
/// and its written actions ([`super::Instructions::write`]).
pub fn rule_groups(rule: &Rule) -> impl Iterator<Item = u32> + '_ {
    rule.all_actions().filter_map(Action::group)
}

/// Per group, how many of `rules` send to it (the `ref_count` of GROUP_STATS; OVS counts
/// rules, not groups that chain to it). A rule counts once per group.
pub fn ref_counts<'r>(rules: impl IntoIterator<Item = &'r Rule>) -> FxHashMap<u32, u32> {
    let mut counts: FxHashMap<u32, u32> = FxHashMap::default();
    let mut seen: Vec<u32> = Vec::new();
    for rule in rules {
        seen.clear();
        for g in rule_groups(rule) {
            if !seen.contains(&g) {
                seen.push(g);
                let n = counts.entry(g).or_insert(0);
                *n = n.saturating_add(1);
            }
        }
    }
    counts
}

/// Whether `rule` sends to one of `ids` (after a delete: which rules go, with reason
/// `OFPRR_GROUP_DELETE`).
pub fn refers_to(rule: &Rule, ids: &[u32]) -> bool {
    rule_groups(rule).any(|g| ids.contains(&g))
}

/// Which group an action sends to, if it is a group action ([`Action::group`]).
pub type GroupOf = fn(&Action) -> Option<u32>;

/// The group table: groups by id, with OpenFlow's GROUP_MOD semantics.
#[derive(Debug)]
pub struct GroupTable {
    groups: FxHashMap<u32, Group>,
    /// How to find group actions in a bucket's actions.
    group_of: GroupOf,
    generation: u64,
}

impl Default for GroupTable {
    fn default() -> Self {
        GroupTable::with_chaining(Action::group)
    }
}

impl GroupTable {
    /// An empty table.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty table that finds group actions in buckets with `group_of` (for the
    /// chaining and loop checks); [`GroupTable::new`] uses [`Action::group`].
    pub fn with_chaining(group_of: GroupOf) -> Self {
        GroupTable {
            groups: FxHashMap::default(),
            group_of,
            generation: 0,
        }
    }

    /// The groups `buckets` send to, with repeats.
    fn bucket_groups<'b>(&self, buckets: &'b [Bucket]) -> impl Iterator<Item = u32> + 'b {
        let group_of = self.group_of;
        buckets.iter().flat_map(move |b| b.actions.iter().filter_map(group_of))
    }

    /// Number of groups.
    pub fn len(&self) -> usize {
        self.groups.len()
    }

    /// Whether there are no groups.
    pub fn is_empty(&self) -> bool {
        self.groups.is_empty()
    }

    /// Changes whenever a group is added, modified or deleted (not on counter updates),
    /// so that whoever caches a choice of buckets knows when to drop it.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// The group with this id.
    pub fn get(&self, id: u32) -> Option<&Group> {
        self.groups.get(&id)
    }

    /// All groups, by ascending id (for GROUP_DESC and GROUP_STATS replies).
    pub fn iter(&self) -> impl Iterator<Item = (u32, &Group)> {
        let mut all: Vec<(u32, &Group)> = self.groups.iter().map(|(&id, g)| (id, g)).collect();
        all.sort_unstable_by_key(|&(id, _)| id);
        all.into_iter()
    }

    /// Checks a rule's actions (apply or written) before it is installed: every group
    /// they send to exists ([`GroupError::UnknownOutGroup`], i.e. `OFPBAC_BAD_OUT_GROUP`,
    /// as OVS's `ofproto_check_ofpacts`).
    pub fn check_actions(&self, actions: &[Action]) -> Result<(), GroupError> {
        match actions
            .iter()
            .filter_map(self.group_of)
            .find(|g| !self.groups.contains_key(g))
        {
            Some(g) => Err(GroupError::UnknownOutGroup(g)),
            None => Ok(()),
        }
    }

    /// [`GroupTable::check_actions`] for all of a rule's actions (apply and written).
    pub fn check_rule(&self, rule: &Rule) -> Result<(), GroupError> {
        match rule
            .all_actions()
            .filter_map(self.group_of)
            .find(|g| !self.groups.contains_key(g))
        {
            Some(g) => Err(GroupError::UnknownOutGroup(g)),
            None => Ok(()),
        }
    }

    /// GROUP_MOD add: installs group `id` at `now`, with zero counters.
    pub fn add(&mut self, id: u32, kind: GroupType, buckets: Vec<Bucket>, now: Duration) -> Result<(), GroupError> {
        check_buckets(kind, &buckets)?;
        if self.groups.contains_key(&id) {
            return Err(GroupError::Exists(id));
        }
        if self.groups.len() >= MAX_GROUPS {
            return Err(GroupError::OutOfGroups);
        }
        if id > OFPG_MAX {
            return Err(GroupError::InvalidId(id));
        }
        self.check_chains(id, &buckets)?;
        let group = Group {
            kind,
            keys: bucket_keys(&buckets),
            buckets: zeroed(buckets),
            packets: 0,
            bytes: 0,
            installed: now,
        };
        self.groups.insert(id, group);
        self.generation += 1;
        Ok(())
    }

    /// GROUP_MOD modify: gives group `id` this type and these buckets. As in OVS, the
    /// counters start again from zero while the creation time and the rules that send
    /// to the group stay.
    pub fn modify(&mut self, id: u32, kind: GroupType, buckets: Vec<Bucket>) -> Result<(), GroupError> {
        check_buckets(kind, &buckets)?;
        if !self.groups.contains_key(&id) {
            return Err(GroupError::Unknown(id));
        }
        self.check_chains(id, &buckets)?;
        let keys = bucket_keys(&buckets);
        let buckets = zeroed(buckets);
        let Some(group) = self.groups.get_mut(&id) else {
            return Err(GroupError::Unknown(id));
        };
        group.kind = kind;
        group.buckets = buckets;
        group.keys = keys;
        group.packets = 0;
        group.bytes = 0;
        self.generation += 1;
        Ok(())
    }

    /// GROUP_MOD delete: removes group `id`, or every group for [`OFPG_ALL`], and
    /// returns the ids removed, ascending (the caller then deletes the rules that send
    /// to them, as OVS does). An id that names no group removes nothing and is no error.
    /// A group another group chains to cannot be deleted alone
    /// ([`GroupError::Chained`]).
    pub fn delete(&mut self, id: u32) -> Result<Vec<u32>, GroupError> {
        if id == OFPG_ALL {
            let mut ids: Vec<u32> = self.groups.keys().copied().collect();
            ids.sort_unstable();
            if !ids.is_empty() {
                self.groups.clear();
                self.generation += 1;
            }
            return Ok(ids);
        }
        if !self.groups.contains_key(&id) {
            return Ok(Vec::new());
        }
        let referrer = self
            .groups
            .iter()
            .find(|&(&other, g)| other != id && self.bucket_groups(&g.buckets).any(|to| to == id));
        if let Some((&other, _)) = referrer {
            return Err(GroupError::Chained(id, other));
        }
        self.groups.remove(&id);
        self.generation += 1;
        Ok(vec![id])
    }

    /// Counts `packets`/`bytes` through group `id`: for `bucket` `Some(i)` in bucket `i`
    /// (SELECT, FAST_FAILOVER), for `None` in every bucket (ALL, INDIRECT), and in the
    /// group either way. Returns false (counting nothing) if there is no such group or
    /// bucket.
    pub fn record(&mut self, id: u32, bucket: Option<usize>, packets: u64, bytes: u64) -> bool {
        let Some(g) = self.groups.get_mut(&id) else {
            return false;
        };
        let add = |b: &mut Bucket| {
            b.packets = b.packets.saturating_add(packets);
            b.bytes = b.bytes.saturating_add(bytes);
        };
        match bucket {
            Some(i) => match g.buckets.get_mut(i) {
                Some(b) => add(b),
                None => return false,
            },
            None => g.buckets.iter_mut().for_each(add),
        }
        g.packets = g.packets.saturating_add(packets);
        g.bytes = g.bytes.saturating_add(bytes);
        true
    }

    /// The buckets a packet goes through in group `id` (`None`: no such group).
    ///
    /// * ALL: every bucket; INDIRECT: its bucket.
    /// * SELECT: one live bucket of weight > 0, by `hash`, each bucket's share of flows
    ///   in proportion to its weight. The same hash gets the same bucket while the group
    ///   and the liveness of its buckets stay; removing a bucket, or its going down,
    ///   moves only its own flows. Pass a symmetric flow hash (the Toeplitz hash with
    ///   [`crate::rss::SYMMETRIC_KEY`]) to keep both directions of a connection on one
    ///   bucket, as OVS does with its symmetric L4 hash.
    /// * FAST_FAILOVER: the first live bucket.
    ///
    /// `live(port)` says whether a watched port is up (for [`PortNo::CONTROLLER`]:
    /// whether a controller is connected).
    pub fn buckets_for(&self, id: u32, hash: u32, live: impl Fn(PortNo) -> bool) -> Option<Chosen<'_>> {
        let g = self.groups.get(&id)?;
        let live: &dyn Fn(PortNo) -> bool = &live;
        let mut budget = LIVENESS_BUDGET;
        let inner = match g.kind {
            GroupType::All | GroupType::Indirect => ChosenInner::All(g.buckets.iter().enumerate()),
            GroupType::FastFailover => ChosenInner::One(
                g.buckets
                    .iter()
                    .enumerate()
                    .find(|(_, b)| self.bucket_live(g.kind, b, live, 0, &mut budget)),
            ),
            GroupType::Select => {
                // Weighted rendezvous: the bucket with the highest weight / -ln(u)
                // wins, u in (0, 1] drawn from (hash, bucket key). Compared as
                // w_a * L_b > w_b * L_a with L = -log2(u) in fixed point (the base of
                // the logarithm cancels out).
                let mut best: Option<(usize, u64, u64, u64)> = None; // (index, weight, L, key)
                for (i, (b, &key)) in g.buckets.iter().zip(&g.keys).enumerate() {
                    if !self.bucket_live(g.kind, b, live, 0, &mut budget) {
                        continue;
                    }
                    let w = u64::from(b.weight);
                    let l = neg_log2_q16(mix(hash, key));
                    let better = match best {
                        None => true,
                        Some((_, bw, bl, bkey)) => {
                            let (mine, theirs) = (w * bl, bw * l);
                            mine > theirs || (mine == theirs && key > bkey)
                        }
                    };
                    if better {
                        best = Some((i, w, l, key));
                    }
                }
                ChosenInner::One(best.map(|(i, ..)| (i, &g.buckets[i])))
            }
        };
        Some(Chosen(inner))
    }

    /// Whether group `id` has a live bucket (what a bucket watching it sees).
    pub fn is_live(&self, id: u32, live: impl Fn(PortNo) -> bool) -> bool {
        let mut budget = LIVENESS_BUDGET;
        self.group_live(id, &live, 0, &mut budget)
    }

    /// OVS's `bucket_is_alive`.
    fn bucket_live(
        &self,
        kind: GroupType,
        b: &Bucket,
        live: &dyn Fn(PortNo) -> bool,
        depth: u32,
        budget: &mut u32,
    ) -> bool {
        if kind == GroupType::Select && b.weight == 0 {
            return false;
        }
        if !b.watches() {
            return true;
        }
        if depth >= MAX_LIVENESS_DEPTH || *budget == 0 {
            return false;
        }
        *budget -= 1;
        b.watch_port.is_some_and(live)
            || b.watch_group
                .is_some_and(|g| self.group_live(g, live, depth + 1, budget))
    }

    /// OVS's `group_is_alive`: the group exists and has a live bucket.
    fn group_live(&self, id: u32, live: &dyn Fn(PortNo) -> bool, depth: u32, budget: &mut u32) -> bool {
        self.groups.get(&id).is_some_and(|g| {
            g.buckets
                .iter()
                .any(|b| self.bucket_live(g.kind, b, live, depth, budget))
        })
    }

    /// Chaining checks for group `id` about to have `buckets`: every group they send
    /// to exists, and none leads back to `id`.
    fn check_chains(&self, id: u32, buckets: &[Bucket]) -> Result<(), GroupError> {
        let mut stack: Vec<u32> = Vec::new();
        for g in self.bucket_groups(buckets) {
            if g == id {
                return Err(GroupError::Loop(id));
            }
            if !self.groups.contains_key(&g) {
                return Err(GroupError::UnknownOutGroup(g));
            }
            stack.push(g);
        }
        // The table had no loop before, so a new one must pass through `id`.
        let mut seen: FxHashSet<u32> = FxHashSet::default();
        while let Some(g) = stack.pop() {
            if !seen.insert(g) {
                continue;
            }
            let Some(group) = self.groups.get(&g) else {
                continue;
            };
            for next in self.bucket_groups(&group.buckets) {
                if next == id {
                    return Err(GroupError::Loop(id));
                }
                stack.push(next);
            }
        }
        Ok(())
    }
}

/// The checks OVS makes while decoding a GROUP_MOD (`ofputil_check_group_mod`), plus
/// the bucket limit and watch values.
fn check_buckets(kind: GroupType, buckets: &[Bucket]) -> Result<(), GroupError> {
    if kind == GroupType::Indirect && buckets.len() != 1 {
        return Err(GroupError::IndirectBuckets(buckets.len()));
    }
    if buckets.len() > MAX_BUCKETS {
        return Err(GroupError::OutOfBuckets);
    }
    for b in buckets {
        if b.weight != 0 && kind != GroupType::Select {
            return Err(GroupError::WeightNotSelect);
        }
        match kind {
            GroupType::All | GroupType::Indirect if b.watches() => return Err(GroupError::WatchUnsupported),
            GroupType::FastFailover if !b.watches() => return Err(GroupError::Unwatched),
            _ => {}
        }
        let bad_port = b
            .watch_port
            .is_some_and(|p| matches!(p.kind(), PortKind::InPort | PortKind::All));
        if bad_port || b.watch_group.is_some_and(|g| g > OFPG_MAX) {
            return Err(GroupError::BadWatch);
        }
    }
    Ok(())
}

fn zeroed(mut buckets: Vec<Bucket>) -> Vec<Bucket> {
    for b in &mut buckets {
        b.packets = 0;
        b.bytes = 0;
    }
    buckets
}

/// Each bucket's rendezvous key: a hash of what it does and watches (not its weight,
/// so a weight change keeps its flows), made unique among identical buckets by their
/// order. Fx hashing is deterministic, so keys are the same in every run.
fn bucket_keys(buckets: &[Bucket]) -> Vec<u64> {
    let base: Vec<u64> = buckets
        .iter()
        .map(|b| {
            let mut h = FxHasher::default();
            b.watch_port.hash(&mut h);
            b.watch_group.hash(&mut h);
            b.actions.hash(&mut h);
            h.finish()
        })
        .collect();
    base.iter()
        .enumerate()
        .map(|(i, &k)| {
            let twins = base[..i].iter().filter(|&&o| o == k).count() as u64;
            k ^ twins.wrapping_mul(0x9e37_79b9_7f4a_7c15)
        })
        .collect()
}

/// A well-spread 32-bit value from a flow hash and a bucket key (splitmix64's
/// finaliser over both).
fn mix(hash: u32, key: u64) -> u32 {
    let mut z = key ^ u64::from(hash).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    ((z ^ (z >> 31)) >> 32) as u32
}

/// `-log2(u)` for `u = (h + 1) / 2^32`, in units of `2^-16`, at least 1 (so that no
/// score is infinite). Integer only, so every machine picks the same bucket.
fn neg_log2_q16(h: u32) -> u64 {
    let x = u64::from(h) + 1; // 1 ..= 2^32
    let int = 63 - x.leading_zeros(); // floor(log2 x), 0 ..= 32
    // The mantissa x / 2^int in [1, 2), with 31 fraction bits.
    let mut m = if int >= 31 { x >> (int - 31) } else { x << (31 - int) };
    let mut frac = 0u64;
    for _ in 0..16 {
        // m < 2^32, so m * m < 2^64.
        m = (m * m) >> 31;
        frac <<= 1;
        if m >= 1 << 32 {
            m >>= 1;
            frac |= 1;
        }
    }
    let log2 = (u64::from(int) << 16) | frac;
    ((32u64 << 16) - log2).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: Duration = Duration::ZERO;

    fn out(p: u32) -> Vec<Action> {
        vec![Action::Output(PortNo(p))]
    }

    fn all_up(_: PortNo) -> bool {
        true
    }

    /// Well-spread flow hashes.
    fn hashes(n: u32) -> impl Iterator<Item = u32> {
        (0..n).map(|i| mix(i, 0x5eed))
    }

    fn select_port(t: &GroupTable, id: u32, h: u32, live: impl Fn(PortNo) -> bool) -> Option<PortNo> {
        let (_, b) = t.buckets_for(id, h, live)?.next()?;
        match b.actions[0] {
            Action::Output(p) => Some(p),
            _ => None,
        }
    }

    #[test]
    fn validation_matches_ovs() {
        let mut t = GroupTable::new();
        let e = |t: &mut GroupTable, kind, buckets| t.add(1, kind, buckets, T0).unwrap_err();
        assert_eq!(e(&mut t, GroupType::Indirect, vec![]), GroupError::IndirectBuckets(0));
        assert_eq!(
            e(
                &mut t,
                GroupType::Indirect,
                vec![Bucket::new(out(1)), Bucket::new(out(2))]
            ),
            GroupError::IndirectBuckets(2)
        );
        assert_eq!(
            e(&mut t, GroupType::All, vec![Bucket::new(out(1)).with_weight(1)]),
            GroupError::WeightNotSelect
        );
        assert_eq!(
            e(
                &mut t,
                GroupType::All,
                vec![Bucket::new(out(1)).with_watch_port(PortNo(1))]
            ),
            GroupError::WatchUnsupported
        );
        assert_eq!(
            e(&mut t, GroupType::FastFailover, vec![Bucket::new(out(1))]),
            GroupError::Unwatched
        );
        assert_eq!(
            e(
                &mut t,
                GroupType::FastFailover,
                vec![Bucket::new(out(1)).with_watch_port(PortNo::ALL)]
            ),
            GroupError::BadWatch
        );
        assert_eq!(
            e(
                &mut t,
                GroupType::Select,
                vec![Bucket::new(out(1)).with_watch_group(OFPG_ALL)]
            ),
            GroupError::BadWatch
        );
        assert_eq!(
            e(&mut t, GroupType::Select, vec![Bucket::new(out(1)); MAX_BUCKETS + 1]),
            GroupError::OutOfBuckets
        );
        assert_eq!(GroupType::from_ofp(4), Err(GroupError::BadType(4)));
        assert_eq!(GroupType::from_ofp(3).map(GroupType::to_ofp), Ok(3));
        assert_eq!(
            t.add(OFPG_MAX + 1, GroupType::All, vec![], T0),
            Err(GroupError::InvalidId(OFPG_MAX + 1))
        );
        assert!(t.is_empty(), "a refused add installs nothing");
        // What OVS accepts: watches on SELECT, all-zero weights, empty groups.
        t.add(OFPG_MAX, GroupType::All, vec![], T0).unwrap();
        t.add(
            2,
            GroupType::Select,
            vec![Bucket::new(out(1)).with_watch_port(PortNo(1))],
            T0,
        )
        .unwrap();
        assert_eq!(t.add(2, GroupType::All, vec![], T0), Err(GroupError::Exists(2)));
        assert_eq!(t.modify(3, GroupType::All, vec![]), Err(GroupError::Unknown(3)));
        assert_eq!(GroupError::Exists(2).ofp_error(), (6, 0));
        assert_eq!(GroupError::Unwatched.ofp_error(), (6, 1));
        assert_eq!(GroupError::UnknownOutGroup(9).ofp_error(), (2, 9));
    }

    #[test]
    fn out_of_groups() {
        let mut t = GroupTable::new();
        for id in 0..MAX_GROUPS as u32 {
            t.add(id, GroupType::All, vec![], T0).unwrap();
        }
        assert_eq!(
            t.add(MAX_GROUPS as u32, GroupType::All, vec![], T0),
            Err(GroupError::OutOfGroups)
        );
        t.delete(7).unwrap();
        t.add(MAX_GROUPS as u32, GroupType::All, vec![], T0).unwrap();
    }

    #[test]
    fn all_indirect_and_fast_failover_choose_as_specified() {
        let mut t = GroupTable::new();
        t.add(1, GroupType::All, vec![Bucket::new(out(1)), Bucket::new(out(2))], T0)
            .unwrap();
        t.add(2, GroupType::Indirect, vec![Bucket::new(out(3))], T0).unwrap();
        t.add(
            3,
            GroupType::FastFailover,
            vec![
                Bucket::new(out(4)).with_watch_port(PortNo(4)),
                Bucket::new(out(5)).with_watch_port(PortNo(5)),
            ],
            T0,
        )
        .unwrap();
        let idx = |id, live: fn(PortNo) -> bool| -> Vec<usize> {
            t.buckets_for(id, 0, live).unwrap().map(|(i, _)| i).collect()
        };
        assert_eq!(idx(1, all_up), vec![0, 1]);
        assert_eq!(idx(1, |_| false), vec![0, 1], "ALL ignores liveness");
        assert_eq!(idx(2, all_up), vec![0]);
        assert_eq!(idx(3, all_up), vec![0]);
        assert_eq!(idx(3, |p| p != PortNo(4)), vec![1], "fails over");
        assert_eq!(idx(3, |_| false), Vec::<usize>::new(), "nothing live: drop");
        assert!(t.buckets_for(9, 0, all_up).is_none());
    }

    #[test]
    fn fast_failover_watching_a_group() {
        let mut t = GroupTable::new();
        t.add(
            1,
            GroupType::FastFailover,
            vec![Bucket::new(out(1)).with_watch_port(PortNo(1))],
            T0,
        )
        .unwrap();
        t.add(
            2,
            GroupType::FastFailover,
            vec![
                Bucket::new(out(7)).with_watch_group(1),
                Bucket::new(out(8)).with_watch_group(99),
                Bucket::new(out(9)).with_watch_port(PortNo(9)),
            ],
            T0,
        )
        .unwrap();
        let first =
            |t: &GroupTable, live: fn(PortNo) -> bool| t.buckets_for(2, 0, live).unwrap().next().map(|(i, _)| i);
        assert_eq!(first(&t, all_up), Some(0));
        assert!(t.is_live(1, all_up));
        // Group 1's port down: group 1 is dead, a missing group 99 is dead.
        assert_eq!(first(&t, |p| p != PortNo(1)), Some(2));
        assert!(!t.is_live(1, |p| p != PortNo(1)));
        // Watch cycles are allowed (as OVS) and end as dead, not as a hang.
        t.modify(
            1,
            GroupType::FastFailover,
            vec![Bucket::new(out(1)).with_watch_group(2)],
        )
        .unwrap();
        assert_eq!(first(&t, |p| p != PortNo(9)), None);
        assert_eq!(
            first(&t, all_up),
            Some(0),
            "port 9 makes 2, hence 1, hence 2's bucket 0 live"
        );
    }

    #[test]
    fn select_is_flow_affine_and_weighted() {
        let mut t = GroupTable::new();
        let buckets = vec![
            Bucket::new(out(1)).with_weight(1),
            Bucket::new(out(2)).with_weight(3),
            Bucket::new(out(3)).with_weight(0),
        ];
        t.add(1, GroupType::Select, buckets, T0).unwrap();
        let n = 40_000;
        let mut count = [0u32; 4];
        for h in hashes(n) {
            let p = select_port(&t, 1, h, all_up).unwrap();
            assert_eq!(select_port(&t, 1, h, all_up), Some(p), "same flow, same bucket");
            count[p.0 as usize] += 1;
        }
        assert_eq!(count[3], 0, "weight 0 is never chosen");
        let share = f64::from(count[1]) / f64::from(n);
        assert!((0.23..0.27).contains(&share), "weight 1 of 4 got {share}");
        // Equal weights share equally.
        t.modify(
            1,
            GroupType::Select,
            (1..=4).map(|p| Bucket::new(out(p)).with_weight(10)).collect(),
        )
        .unwrap();
        let mut count = [0u32; 5];
        for h in hashes(n) {
            count[select_port(&t, 1, h, all_up).unwrap().0 as usize] += 1;
        }
        for c in &count[1..] {
            let share = f64::from(*c) / f64::from(n);
            assert!((0.23..0.27).contains(&share), "{count:?}");
        }
        // All weights zero: accepted (as OVS), but nothing is ever chosen.
        t.modify(1, GroupType::Select, vec![Bucket::new(out(1))]).unwrap();
        assert_eq!(select_port(&t, 1, 5, all_up), None);
    }

    #[test]
    fn removing_or_losing_a_bucket_moves_only_its_flows() {
        let mut t = GroupTable::new();
        let four: Vec<Bucket> = (1..=4)
            .map(|p| Bucket::new(out(p)).with_weight(1).with_watch_port(PortNo(p)))
            .collect();
        t.add(1, GroupType::Select, four.clone(), T0).unwrap();
        let before: Vec<PortNo> = hashes(10_000).map(|h| select_port(&t, 1, h, all_up).unwrap()).collect();
        // Port 2 goes down: its flows spread over the others, no other flow moves.
        let mut moved = 0;
        for (h, &was) in hashes(10_000).zip(&before) {
            let now = select_port(&t, 1, h, |p| p != PortNo(2)).unwrap();
            if was == PortNo(2) {
                assert_ne!(now, PortNo(2));
                moved += 1;
            } else {
                assert_eq!(now, was);
            }
        }
        assert!(moved > 2000, "bucket 2 had about a quarter: {moved}");
        // Bucket 2 removed by a modify: the same.
        let mut three = four.clone();
        three.remove(1);
        t.modify(1, GroupType::Select, three).unwrap();
        for (h, &was) in hashes(10_000).zip(&before) {
            let now = select_port(&t, 1, h, all_up).unwrap();
            assert!(was == PortNo(2) || now == was);
        }
        // And back: every flow returns to where it was.
        t.modify(1, GroupType::Select, four.clone()).unwrap();
        for (h, &was) in hashes(10_000).zip(&before) {
            assert_eq!(select_port(&t, 1, h, all_up), Some(was));
        }
        // A heavier bucket 3 only takes flows.
        let mut heavy = four;
        heavy[2].weight = 3;
        t.modify(1, GroupType::Select, heavy).unwrap();
        for (h, &was) in hashes(10_000).zip(&before) {
            let now = select_port(&t, 1, h, all_up).unwrap();
            assert!(now == was || now == PortNo(3));
        }
    }

    #[test]
    fn counters_and_modify_reset() {
        let mut t = GroupTable::new();
        let s = Duration::from_secs;
        t.add(1, GroupType::All, vec![Bucket::new(out(1)), Bucket::new(out(2))], s(5))
            .unwrap();
        t.add(
            2,
            GroupType::Select,
            vec![Bucket::new(out(1)).with_weight(1), Bucket::new(out(2)).with_weight(1)],
            s(5),
        )
        .unwrap();
        assert!(t.record(1, None, 2, 200));
        assert!(t.record(2, Some(1), 1, 60));
        assert!(!t.record(2, Some(2), 1, 60), "no bucket 2");
        assert!(!t.record(3, None, 1, 60), "no group 3");
        let g1 = t.get(1).unwrap();
        assert_eq!((g1.packets, g1.bytes), (2, 200));
        assert!(g1.buckets.iter().all(|b| (b.packets, b.bytes) == (2, 200)));
        let g2 = t.get(2).unwrap();
        assert_eq!((g2.packets, g2.buckets[0].packets, g2.buckets[1].packets), (1, 0, 1));
        let gen_before = t.generation();
        t.modify(1, GroupType::Indirect, vec![Bucket::new(out(3))]).unwrap();
        assert_ne!(t.generation(), gen_before);
        let g1 = t.get(1).unwrap();
        assert_eq!(
            (g1.kind, g1.packets, g1.buckets[0].packets),
            (GroupType::Indirect, 0, 0)
        );
        assert_eq!(g1.installed, s(5), "a modify keeps the creation time");
        // Buckets given with counters start from zero.
        let mut b = Bucket::new(out(1));
        b.packets = 7;
        t.add(3, GroupType::All, vec![b], T0).unwrap();
        assert_eq!(t.get(3).unwrap().buckets[0].packets, 0);
    }

    #[test]
    fn delete_one_and_all_returns_ids_sorted() {
        let mut t = GroupTable::new();
        for id in [30, 10, 20] {
            t.add(id, GroupType::All, vec![], T0).unwrap();
        }
        assert_eq!(t.iter().map(|(id, _)| id).collect::<Vec<_>>(), vec![10, 20, 30]);
        assert_eq!(t.delete(20), Ok(vec![20]));
        assert_eq!(t.delete(20), Ok(vec![]), "deleting a missing group is no error");
        assert_eq!(t.delete(OFPG_ALL), Ok(vec![10, 30]));
        assert!(t.is_empty());
    }

    #[test]
    fn chaining_checks() {
        let mut t = GroupTable::new();
        let to = |g: u32| vec![Action::Group(g)];
        assert_eq!(
            t.add(1, GroupType::All, vec![Bucket::new(to(2))], T0),
            Err(GroupError::UnknownOutGroup(2))
        );
        assert_eq!(
            t.add(1, GroupType::All, vec![Bucket::new(to(1))], T0),
            Err(GroupError::Loop(1))
        );
        t.add(3, GroupType::Indirect, vec![Bucket::new(out(1))], T0).unwrap();
        t.add(2, GroupType::All, vec![Bucket::new(to(3))], T0).unwrap();
        t.add(1, GroupType::All, vec![Bucket::new(to(2)), Bucket::new(out(2))], T0)
            .unwrap();
        // 3 → 1 would close 1 → 2 → 3 → 1.
        assert_eq!(
            t.modify(3, GroupType::Indirect, vec![Bucket::new(to(1))]),
            Err(GroupError::Loop(3))
        );
        assert_eq!(t.get(3).unwrap().buckets[0].actions, out(1), "refused: unchanged");
        assert_eq!(t.delete(3), Err(GroupError::Chained(3, 2)));
        assert!(t.get(3).is_some());
        // Rules: reference counts and checks.
        let r = |actions| Rule::new(1, crate::flow::Match::any(), actions);
        let mut written = r(out(1));
        written.instructions.write = to(3);
        let rules = [
            r(to(1)),
            r(vec![Action::Group(1), Action::Group(1)]),
            written,
            r(out(1)),
        ];
        let counts = ref_counts(&rules);
        assert_eq!(
            (counts.get(&1), counts.get(&2), counts.get(&3)),
            (Some(&2), None, Some(&1))
        );
        assert_eq!(t.check_actions(&to(3)), Ok(()));
        assert_eq!(t.check_actions(&to(4)), Err(GroupError::UnknownOutGroup(4)));
        let mut bad = r(to(3));
        bad.instructions.write = to(5);
        assert_eq!(t.check_rule(&bad), Err(GroupError::UnknownOutGroup(5)));
        assert_eq!(t.check_rule(&rules[2]), Ok(()));
        assert!(refers_to(&rules[0], &[1, 2]) && refers_to(&rules[2], &[3]) && !refers_to(&rules[2], &[1, 2]));
        // Deleting all is always allowed.
        assert_eq!(t.delete(OFPG_ALL), Ok(vec![1, 2, 3]));
    }

    /// Any sequence of group mods from a controller: no panic, a refused mod changes
    /// nothing, and following group actions from any group always ends (no loop).
    mod random_mods {
        use super::*;
        use proptest::prelude::*;

        fn bucket() -> impl Strategy<Value = Bucket> {
            (
                0u16..4,
                prop::option::of(0u32..4),
                prop::option::of(0u32..6),
                prop::collection::vec(
                    prop_oneof![
                        (0u32..6).prop_map(Action::Group),
                        (0u32..4).prop_map(|p| Action::Output(PortNo(p)))
                    ],
                    0..3,
                ),
            )
                .prop_map(|(weight, watch_port, watch_group, actions)| Bucket {
                    weight,
                    watch_port: watch_port.map(PortNo),
                    watch_group,
                    actions,
                    packets: 0,
                    bytes: 0,
                })
        }

        #[derive(Clone, Debug)]
        enum Op {
            Add(u32, u8, Vec<Bucket>),
            Modify(u32, u8, Vec<Bucket>),
            Delete(u32),
        }

        fn op() -> impl Strategy<Value = Op> {
            prop_oneof![
                (0u32..6, 0u8..5, prop::collection::vec(bucket(), 0..4)).prop_map(|(i, k, b)| Op::Add(i, k, b)),
                (0u32..6, 0u8..5, prop::collection::vec(bucket(), 0..4)).prop_map(|(i, k, b)| Op::Modify(i, k, b)),
                prop_oneof![0u32..6, Just(OFPG_ALL)].prop_map(Op::Delete),
            ]
        }

        /// The longest chain of group actions from `id` (panics on a loop).
        fn depth(t: &GroupTable, id: u32, path: &mut Vec<u32>) -> usize {
            assert!(!path.contains(&id), "loop through {path:?} back to {id}");
            let Some(g) = t.get(id) else { return 0 };
            path.push(id);
            let next: Vec<u32> = g
                .buckets
                .iter()
                .flat_map(|b| b.actions.iter().filter_map(Action::group))
                .collect();
            let d = next.iter().map(|&n| 1 + depth(t, n, path)).max().unwrap_or(0);
            path.pop();
            d
        }

        proptest! {
            #[test]
            fn never_panics_never_loops(ops in prop::collection::vec(op(), 1..40), hash: u32, up: u8) {
                let mut t = GroupTable::new();
                for op in ops {
                    let before: Vec<(u32, Group)> = t.iter().map(|(id, g)| (id, g.clone())).collect();
                    let result = match op {
                        Op::Add(id, kind, b) => GroupType::from_ofp(kind).and_then(|k| t.add(id, k, b, T0)),
                        Op::Modify(id, kind, b) => GroupType::from_ofp(kind).and_then(|k| t.modify(id, k, b)),
                        Op::Delete(id) => t.delete(id).map(|_| ()),
                    };
                    if result.is_err() {
                        let after: Vec<(u32, Group)> = t.iter().map(|(id, g)| (id, g.clone())).collect();
                        prop_assert_eq!(before, after);
                    }
                    for (id, _) in t.iter() {
                        depth(&t, id, &mut Vec::new());
                        for (i, _) in t.buckets_for(id, hash, |p| up & (1 << p.0) != 0).unwrap() {
                            prop_assert!(t.get(id).is_some_and(|g| i < g.buckets.len()));
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn fixed_point_log() {
        // -log2(u) for u = 1/2^32, 1/2, 1 (clamped to 1 unit).
        assert_eq!(neg_log2_q16(0), 32 << 16);
        let half = neg_log2_q16(0x7fff_ffff);
        assert!(half.abs_diff(1 << 16) <= 1, "{half}");
        assert_eq!(neg_log2_q16(u32::MAX), 1);
        // Within one unit of the true value across the range.
        for h in [1u32, 1000, 123_456_789, 0xdead_beef] {
            let exact = -(f64::from(h) + 1.0).log2() + 32.0;
            let got = neg_log2_q16(h) as f64 / 65536.0;
            assert!((got - exact).abs() < 2.0 / 65536.0, "{h}: {got} vs {exact}");
        }
    }
}
