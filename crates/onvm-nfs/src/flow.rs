//! What the flow-keeping NFs share: a frame's 5-tuple ([`FlowKey`]) and a bounded table
//! of flows ([`FlowTable`]) that never grows past its size.
//!
//! The table is a hash map made with its full capacity, so inserting never allocates.
//! When it is full, a new flow first evicts the least recently seen eighth of the table
//! in one pass (the last-seen times are copied into a scratch vector made once, and the
//! cut-off found with `select_nth_unstable`): one O(n) pass per n/8 new flows, so a flood
//! of new flows costs O(1) per flow amortized, never a scan per packet, and never an
//! unbounded table.

use std::collections::HashMap;
use std::hash::Hash;

use onvm_packet::layout::{IP_PROTO_SCTP, IP_PROTO_TCP, IP_PROTO_UDP};

use crate::net::{Ip, to_ip};

/// The fast, seeded hasher of the flow tables (hashbrown's default).
pub type Hasher = foldhash::fast::RandomState;

/// A flow's 5-tuple. IPv4 addresses fill the first 4 bytes of each address; `ports` are
/// zero for protocols without them and for non-first fragments.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FlowKey {
    /// IPv6 (else IPv4).
    pub v6: bool,
    /// IP protocol.
    pub proto: u8,
    /// Source address.
    pub src: [u8; 16],
    /// Destination address.
    pub dst: [u8; 16],
    /// Source port.
    pub sport: u16,
    /// Destination port.
    pub dport: u16,
}

impl FlowKey {
    /// The 5-tuple of an IPv4/IPv6 frame; `None` for other frames and malformed IP
    /// headers.
    pub fn of(frame: &[u8]) -> Option<FlowKey> {
        let ip = Ip::of(frame).ok()??;
        let (sport, dport) = if matches!(ip.proto, IP_PROTO_TCP | IP_PROTO_UDP | IP_PROTO_SCTP) {
            ip.l4_words(frame).unwrap_or((0, 0))
        } else {
            (0, 0)
        };
        Some(FlowKey {
            v6: ip.v6,
            proto: ip.proto,
            src: ip.src,
            dst: ip.dst,
            sport,
            dport,
        })
    }

    /// The same flow seen from the other end.
    pub fn reversed(&self) -> FlowKey {
        FlowKey {
            src: self.dst,
            dst: self.src,
            sport: self.dport,
            dport: self.sport,
            ..*self
        }
    }

    /// One key for both directions: the endpoint that sorts first is the source.
    pub fn canonical(&self) -> FlowKey {
        if (self.src, self.sport) <= (self.dst, self.dport) {
            *self
        } else {
            self.reversed()
        }
    }

    /// `a:p → b:q (proto)` for printing.
    pub fn display(&self) -> String {
        let (s, d) = (to_ip(&self.src, self.v6), to_ip(&self.dst, self.v6));
        if self.v6 {
            format!("[{s}]:{} -> [{d}]:{} proto {}", self.sport, self.dport, self.proto)
        } else {
            format!("{s}:{} -> {d}:{} proto {}", self.sport, self.dport, self.proto)
        }
    }
}

/// An entry of a [`FlowTable`]: the value and when the flow was last seen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry<V> {
    /// What the NF keeps for the flow.
    pub value: V,
    /// Last time the flow was seen (ns, the caller's clock).
    pub last_seen: u64,
}

/// A hash table of at most `max` flows. See the [module docs](self).
#[derive(Debug)]
pub struct FlowTable<K, V> {
    map: HashMap<K, Entry<V>, Hasher>,
    max: usize,
    scratch: Vec<u64>,
    /// Flows evicted to make room.
    pub evicted: u64,
}

/// What [`FlowTable::get_or_insert`] found.
#[derive(Debug, PartialEq, Eq, Clone, Copy)]
pub enum Lookup {
    /// The flow was in the table.
    Hit,
    /// The flow is new (inserted now).
    New,
}

impl<K: Hash + Eq + Copy, V> FlowTable<K, V> {
    /// A table of at most `max` (≥ 1) flows, allocated now.
    pub fn new(max: usize) -> Self {
        let max = max.max(1);
        FlowTable {
            map: HashMap::with_capacity_and_hasher(max, Hasher::default()),
            max,
            scratch: Vec::with_capacity(max),
            evicted: 0,
        }
    }

    /// Flows in the table.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether the table is empty.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// The flow's entry, if known (not touched).
    pub fn get(&self, key: &K) -> Option<&Entry<V>> {
        self.map.get(key)
    }

    /// The flow's entry, seen at `now`; made with `make` (evicting if full) if new.
    pub fn get_or_insert(&mut self, key: K, now: u64, make: impl FnOnce() -> V) -> (&mut Entry<V>, Lookup) {
        if !self.map.contains_key(&key) && self.map.len() >= self.max {
            self.evict();
        }
        let mut how = Lookup::Hit;
        let e = self.map.entry(key).or_insert_with(|| {
            how = Lookup::New;
            Entry {
                value: make(),
                last_seen: now,
            }
        });
        e.last_seen = now;
        (e, how)
    }

    /// The flow's entry (touched at `now`), if known.
    pub fn touch(&mut self, key: &K, now: u64) -> Option<&mut Entry<V>> {
        let e = self.map.get_mut(key)?;
        e.last_seen = now;
        Some(e)
    }

    /// Remove flows not seen since `before`: how many.
    pub fn expire(&mut self, before: u64) -> usize {
        let n = self.map.len();
        self.map.retain(|_, e| e.last_seen >= before);
        n - self.map.len()
    }

    /// Every flow.
    pub fn iter(&self) -> impl Iterator<Item = (&K, &Entry<V>)> {
        self.map.iter()
    }

    /// Remove the least recently seen eighth (at least one flow).
    fn evict(&mut self) {
        self.scratch.clear();
        self.scratch.extend(self.map.values().map(|e| e.last_seen));
        if self.scratch.is_empty() {
            return;
        }
        let k = (self.scratch.len() / 8).max(1) - 1;
        let (_, cut, _) = self.scratch.select_nth_unstable(k);
        let cut = *cut;
        // Ties at the cut-off all go, but no more than the table holds.
        let n = self.map.len();
        self.map.retain(|_, e| e.last_seen > cut);
        self.evicted += (n - self.map.len()) as u64;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_of_both_directions_meet_and_the_table_stays_bounded() {
        let f = onvm_packet::UdpSpec::new([10, 0, 0, 1], [10, 0, 0, 2], 1000, 53)
            .to_vec()
            .unwrap();
        let k = FlowKey::of(&f).unwrap();
        assert_eq!((k.sport, k.dport, k.proto), (1000, 53, 17));
        assert_eq!(k.canonical(), k.reversed().canonical());
        assert_eq!(k.display(), "10.0.0.1:1000 -> 10.0.0.2:53 proto 17");
        assert_eq!(FlowKey::of(&f[..20]), None);

        let mut t: FlowTable<u32, ()> = FlowTable::new(16);
        for i in 0..1000u32 {
            let (_, how) = t.get_or_insert(i, u64::from(i), || ());
            assert_eq!(how, Lookup::New);
            assert!(t.len() <= 16);
        }
        // The newest flows are kept.
        assert!(t.get(&999).is_some() && t.get(&0).is_none());
        assert_eq!(t.evicted, 1000 - t.len() as u64);
        assert_eq!(t.get_or_insert(999, 2000, || ()).1, Lookup::Hit);
        let n = t.len();
        assert_eq!(t.expire(1500), n - 1);
    }
}
