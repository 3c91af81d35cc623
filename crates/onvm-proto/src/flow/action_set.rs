//! The action set a packet carries through the pipeline (OpenFlow 1.3, 5.10).
//!
//! Write-actions instructions merge actions into it, clear-actions empties it, and it
//! runs when the pipeline ends (at a rule with no goto). It holds at most one action of
//! each type (a set-field one per field); a later write of a type replaces the earlier.
//! It runs in the spec's order, whatever the order of writing: copy TTL inwards, pop,
//! push-MPLS, push-VLAN, copy TTL outwards, decrement TTL, set (set-field and set TTL),
//! group, output; with a group the output is ignored.

use std::mem::discriminant;

use super::{Action, Edit};

/// A packet's action set. Empty for almost every packet (no rule wrote to it), which
/// costs nothing: no allocation until the first write.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ActionSet {
    actions: Vec<Action>,
}

/// Where an action runs in the set (lower first).
fn rank(a: &Action) -> u8 {
    match a {
        Action::Edit(Edit::CopyTtlIn) => 0,
        Action::Edit(Edit::PopVlan | Edit::PopMpls(_)) => 1,
        Action::Edit(Edit::PushMpls(_)) => 2,
        Action::Edit(Edit::PushVlan(_)) => 3,
        Action::Edit(Edit::CopyTtlOut) => 4,
        Action::Edit(Edit::DecMplsTtl | Edit::DecNwTtl) => 5,
        Action::Set(_) | Action::Edit(Edit::SetMplsTtl(_) | Edit::SetNwTtl(_)) => 6,
        Action::Group(_) => 7,
        Action::Output(_) | Action::Controller { .. } | Action::Drop => 8,
        // Never written (a goto is an instruction of its own); runs nowhere.
        Action::Goto(_) => 9,
    }
}

/// Whether `a` and `b` are of one type, which the set holds once: outputs (to a port or
/// the controller) are one type, pops and set-fields one per header or field.
fn same_type(a: &Action, b: &Action) -> bool {
    match (a, b) {
        (Action::Set(x), Action::Set(y)) => discriminant(x) == discriminant(y),
        (Action::Edit(x), Action::Edit(y)) => discriminant(x) == discriminant(y),
        (Action::Output(_) | Action::Controller { .. }, Action::Output(_) | Action::Controller { .. }) => true,
        _ => discriminant(a) == discriminant(b),
    }
}

impl ActionSet {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether it holds nothing.
    pub fn is_empty(&self) -> bool {
        self.actions.is_empty()
    }

    /// Empty it (clear-actions; a fresh packet).
    pub fn clear(&mut self) {
        self.actions.clear();
    }

    /// Merge one written action: it replaces one of the same type.
    pub fn write(&mut self, a: Action) {
        match self.actions.iter_mut().find(|b| same_type(b, &a)) {
            Some(b) => *b = a,
            None => self.actions.push(a),
        }
    }

    /// Empty it and return its actions in the order they run (a group makes the output
    /// go: the group decides where the packet goes).
    pub fn take_ordered(&mut self) -> Vec<Action> {
        let mut v = std::mem::take(&mut self.actions);
        // Stable: set-fields of different fields keep their order of writing.
        v.sort_by_key(rank);
        if v.iter().any(|a| matches!(a, Action::Group(_))) {
            v.retain(|a| !matches!(a, Action::Output(_) | Action::Controller { .. }));
        }
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flow::{PortNo, Rewrite};

    #[test]
    fn runs_in_the_specs_order_whatever_the_order_of_writing() {
        let mut s = ActionSet::new();
        s.write(Action::Output(PortNo::physical(1)));
        s.write(Action::Set(Rewrite::VlanVid(10)));
        s.write(Action::Edit(Edit::PushVlan(0x8100)));
        s.write(Action::Edit(Edit::DecNwTtl));
        s.write(Action::Edit(Edit::PopMpls(0x0800)));
        assert_eq!(
            s.take_ordered(),
            vec![
                Action::Edit(Edit::PopMpls(0x0800)),
                Action::Edit(Edit::PushVlan(0x8100)),
                Action::Edit(Edit::DecNwTtl),
                Action::Set(Rewrite::VlanVid(10)),
                Action::Output(PortNo::physical(1)),
            ]
        );
        assert!(s.is_empty(), "running it empties it");
    }

    #[test]
    fn a_later_write_of_a_type_replaces_the_earlier() {
        let mut s = ActionSet::new();
        s.write(Action::Output(PortNo::physical(1)));
        s.write(Action::Set(Rewrite::VlanVid(10)));
        s.write(Action::Set(Rewrite::EthDst([2; 6])));
        s.write(Action::Controller { max_len: 128 });
        s.write(Action::Set(Rewrite::VlanVid(20)));
        assert_eq!(
            s.take_ordered(),
            vec![
                Action::Set(Rewrite::VlanVid(20)),
                Action::Set(Rewrite::EthDst([2; 6])),
                Action::Controller { max_len: 128 },
            ]
        );
    }

    #[test]
    fn a_group_overrides_the_output_and_clear_empties() {
        let mut s = ActionSet::new();
        s.write(Action::Output(PortNo::physical(1)));
        s.write(Action::Group(7));
        assert_eq!(s.clone().take_ordered(), vec![Action::Group(7)]);
        s.clear();
        assert!(s.take_ordered().is_empty());
    }
}
