//! Ports whose every packet matches one rule, found once per table generation.
//!
//! A plain chain is a catch-all rule per port (`in_port=p → next`): the packets of such
//! a port need no parsing and no lookup. A rule is *fixed* for a port when the lookup of
//! a packet with no headers from that port finds it, it matches every packet of the
//! port, it does one plain thing (at most one output or drop: no goto, controller or
//! rewrite), and no rule that comes before it in lookup order could match any packet of
//! the port (a higher priority, or an equal one added earlier, with a narrower match).
//! The answer is kept per port until the table's generation changes, so the check that
//! scans the rules runs once per change and port, never per packet.

use onvm_proto::flow::{Action, FlowTable, Match, PacketKey, PortKind, PortNo, Rule, RuleId};
use onvm_proto::limits::MAX_SERVICES;

/// What is known of one port.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum Slot {
    /// Not looked at since the last change.
    #[default]
    Unknown,
    /// Its packets need a lookup.
    None,
    /// Every packet gets this rule's action; the rule is at this position of the
    /// table (for `FlowTable::record_at`).
    Fixed(RuleId, usize, Option<Action>),
}

/// The fixed rule of each port (physical ports, then services), by table generation.
#[derive(Debug)]
pub struct FixedRules {
    generation: u64,
    physical: Vec<Slot>,
    services: Vec<Slot>,
}

impl Default for FixedRules {
    fn default() -> Self {
        FixedRules {
            generation: u64::MAX,
            physical: Vec::new(),
            services: vec![Slot::Unknown; usize::from(MAX_SERVICES) + 1],
        }
    }
}

impl FixedRules {
    /// The rule (its ID, position and one action) that every packet entering from
    /// `port` matches, if there is one.
    #[inline]
    pub fn get(&mut self, table: &FlowTable, port: PortNo) -> Option<(RuleId, usize, Option<Action>)> {
        if self.generation != table.generation() {
            self.generation = table.generation();
            self.physical.fill(Slot::Unknown);
            self.services.fill(Slot::Unknown);
        }
        let slot = match port.kind() {
            PortKind::Physical(p) => {
                let p = usize::from(p);
                if p >= self.physical.len() {
                    self.physical.resize(p + 1, Slot::Unknown);
                }
                &mut self.physical[p]
            }
            PortKind::Service(s) => self.services.get_mut(usize::from(s))?,
            _ => return None,
        };
        if *slot == Slot::Unknown {
            *slot = match fixed_rule(table, port) {
                Some((id, a)) => table.position(id).map_or(Slot::None, |at| Slot::Fixed(id, at, a)),
                None => Slot::None,
            };
        }
        match *slot {
            Slot::Fixed(id, at, a) => Some((id, at, a)),
            _ => None,
        }
    }
}

/// Whether `r` (of table 0) could match some packet from `port`.
fn may_match(r: &Rule, port: PortNo) -> bool {
    r.table == 0 && r.matcher.in_port.is_none_or(|p| p == port)
}

/// The scan behind [`FixedRules::get`]: O(rules before the one found).
fn fixed_rule(table: &FlowTable, port: PortNo) -> Option<(RuleId, Option<Action>)> {
    let (id, rule) = table.lookup(&PacketKey::new(port))?;
    let catch_all = rule.matcher == Match::in_port(port) || rule.matcher == Match::any();
    let plain = rule.actions.len() <= 1
        && rule.instructions.is_empty()
        && matches!(rule.actions.first(), None | Some(Action::Output(_) | Action::Drop));
    if !catch_all || !plain {
        return None;
    }
    // `iter` is lookup order: nothing ahead of the rule may take any of the port's packets.
    let shadowed = table
        .iter()
        .take_while(|(other, _)| *other != id)
        .any(|(_, r)| may_match(r, port));
    (!shadowed).then(|| (id, rule.actions.first().copied()))
}
