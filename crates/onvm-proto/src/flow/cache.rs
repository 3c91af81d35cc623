//! The exact-match flow cache in front of the priority table.

use std::hash::{Hash, Hasher};

use rustc_hash::FxHasher;

use super::{FlowTable, PacketKey, Rule, RuleId};

#[derive(Clone, Debug)]
struct Slot {
    key: PacketKey,
    generation: u64,
    index: Option<usize>,
}

/// Exact-match cache in front of a [`FlowTable`].
///
/// Direct-mapped (a key's hash picks one slot; a colliding key evicts it), so its size
/// is fixed and a lookup costs one hash and one comparison. Every slot remembers the
/// table generation it was filled under; a slot from an older generation is a miss, so
/// any change to the table invalidates the whole cache in O(1). Misses (no rule) are
/// cached too: a flood of unmatched packets then costs no table scans.
#[derive(Clone, Debug)]
pub struct FlowCache {
    slots: Vec<Option<Slot>>,
    hits: u64,
    misses: u64,
}

impl FlowCache {
    /// A cache of `capacity` slots (rounded up to a power of two, at least 1).
    pub fn new(capacity: usize) -> Self {
        FlowCache {
            slots: vec![None; capacity.max(1).next_power_of_two()],
            hits: 0,
            misses: 0,
        }
    }

    /// Number of slots.
    pub fn capacity(&self) -> usize {
        self.slots.len()
    }

    /// (hits, misses) so far.
    pub fn stats(&self) -> (u64, u64) {
        (self.hits, self.misses)
    }

    /// Same answer as `table.lookup(key)` (table 0), from the cache when it can.
    pub fn lookup<'t>(&mut self, table: &'t FlowTable, key: &PacketKey) -> Option<(RuleId, &'t Rule)> {
        // Fx, not SipHash: the key comes from packets, but a collision only costs a
        // cache miss (the slot is overwritten), never a wrong answer or a long chain.
        let mut h = FxHasher::default();
        key.hash(&mut h);
        let mask = self.slots.len() - 1;
        let slot = &mut self.slots[h.finish() as usize & mask];
        if let Some(s) = slot
            && s.generation == table.generation()
            && s.key == *key
        {
            self.hits += 1;
            return s.index.map(|i| table.at(i));
        }
        self.misses += 1;
        let index = table.lookup_index(0, key);
        *slot = Some(Slot {
            key: key.clone(),
            generation: table.generation(),
            index,
        });
        index.map(|i| table.at(i))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flow::key::frames::*;
    use crate::flow::{Action, DeleteFilter, Match, PortNo};
    use proptest::prelude::*;
    use std::time::Duration;

    const T0: Duration = Duration::ZERO;

    #[test]
    fn cache_agrees_with_table_and_sees_changes_at_once() {
        let mut t = FlowTable::new();
        let mut cache = FlowCache::new(64);
        let k = key4(PortNo(0), [10, 0, 0, 5], 80);
        assert!(cache.lookup(&t, &k).is_none());
        let (svc, _) = t.add(
            Rule::new(1, Match::in_port(PortNo(0)), vec![Action::Output(PortNo::service(1))]),
            T0,
        );
        // Cached miss must not hide the new rule.
        assert_eq!(cache.lookup(&t, &k).map(|r| r.0), Some(svc));
        assert_eq!(cache.lookup(&t, &k).map(|r| r.0), Some(svc));
        let (hits, _) = cache.stats();
        assert_eq!(hits, 1);
        let (drop, _) = t.add(
            Rule::new(
                9,
                Match {
                    l4_dst: Some(80),
                    ..Match::any()
                },
                vec![Action::Drop],
            ),
            T0,
        );
        assert_eq!(cache.lookup(&t, &k).map(|r| r.0), Some(drop));
        t.delete_strict(
            9,
            &Match {
                l4_dst: Some(80),
                ..Match::any()
            },
            &DeleteFilter::default(),
        );
        assert_eq!(cache.lookup(&t, &k).map(|r| r.0), Some(svc));
        // Many keys through a small cache: always the table's answer.
        let mut small = FlowCache::new(4);
        for i in 0..200u16 {
            let k = key4(PortNo(u32::from(i % 3)), [10, 0, (i % 7) as u8, 1], i % 5);
            for _ in 0..2 {
                assert_eq!(small.lookup(&t, &k).map(|r| r.0), t.lookup(&k).map(|r| r.0));
            }
        }
        assert!(small.stats().0 > 0);
    }

    #[test]
    fn cache_is_not_fooled_by_another_table() {
        let mut a = FlowTable::new();
        let b = FlowTable::new();
        a.add(Rule::new(1, Match::any(), vec![Action::Drop]), T0);
        let mut cache = FlowCache::new(8);
        let k = PacketKey::new(PortNo(0));
        assert!(cache.lookup(&a, &k).is_some());
        assert!(cache.lookup(&b, &k).is_none());
    }

    proptest! {
        #[test]
        fn cache_equals_table(rules in proptest::collection::vec((0u16..4, 0u16..3, proptest::option::of(0u16..4)), 0..12),
                              keys in proptest::collection::vec((0u32..3, 0u16..4), 1..40)) {
            let mut t = FlowTable::new();
            let mut cache = FlowCache::new(8);
            for (i, (prio, port, dport)) in rules.into_iter().enumerate() {
                let m = Match { in_port: Some(PortNo(port.into())), l4_dst: dport, ..Match::any() };
                t.add(Rule::new(prio, m, vec![Action::Output(PortNo(i as u32))]), T0);
                for &(p, d) in &keys {
                    let k = key4(PortNo(p), [1, 2, 3, 4], d);
                    prop_assert_eq!(cache.lookup(&t, &k).map(|r| r.0), t.lookup(&k).map(|r| r.0));
                }
            }
        }
    }
}
