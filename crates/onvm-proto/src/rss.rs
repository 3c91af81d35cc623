//! Receive-side scaling: the Toeplitz hash and an indirection table (RETA).
//!
//! The manager spreads the packets of one service over its instances the way a NIC
//! spreads them over RX queues: hash the flow's addresses and ports with the Toeplitz
//! function, then use the low bits of the hash to index a 256-entry table whose entries
//! name instances.
//!
//! * The hash is bit-for-bit the one NICs compute, so a hash delivered by hardware
//!   (AF_XDP metadata, DPDK `hash.rss`) and one computed here for a generated packet
//!   agree. The tests check the published Microsoft verification vectors.
//! * With [`SYMMETRIC_KEY`] (`0x6d5a` repeated, the key openNetVM programs into its
//!   NICs) both directions of a flow hash the same, so a stateful NF sees both halves
//!   of every connection.
//! * openNetVM picks `services[sid][hash % count]`: adding or removing an instance
//!   moves almost every flow. [`Reta`] instead moves only the entries the new instance
//!   takes over (or the removed one leaves behind), so existing flows keep their
//!   instance and its state.

use std::fmt;
use std::net::IpAddr;

use thiserror::Error;

use crate::limits::{MAX_INSTANCES_PER_SERVICE, RETA_SIZE};

/// The default key of Microsoft's RSS specification (and of most NIC drivers).
pub const MICROSOFT_KEY: [u8; 40] = [
    0x6d, 0x5a, 0x56, 0xda, 0x25, 0x5b, 0x0e, 0xc2, 0x41, 0x67, 0x25, 0x3d, 0x43, 0xa3, 0x8f, 0xb0, 0xd0, 0xca, 0x2b,
    0xcb, 0xae, 0x7b, 0x30, 0xb4, 0x77, 0xcb, 0x2d, 0xa3, 0x80, 0x30, 0xf2, 0x0c, 0x6a, 0x42, 0xb7, 0x3b, 0xbe, 0xac,
    0x01, 0xfa,
];

/// `0x6d5a` repeated: the symmetric key openNetVM uses (`rss_symmetric_key`).
///
/// Why it is symmetric: the key repeats every 16 bits, so the 32-bit key window that
/// meets an input bit depends only on the bit's position modulo 16. Swapping source and
/// destination moves every bit by a multiple of 16 (32 bits for IPv4 addresses, 128 for
/// IPv6, 16 for ports), which leaves the XOR of all windows unchanged. The price is a
/// weaker spread than the Microsoft key (the hash only sees the XOR of the tuple's
/// 16-bit words), which is fine for picking one of at most 32 instances.
pub const SYMMETRIC_KEY: [u8; 40] = {
    let mut k = [0u8; 40];
    let mut i = 0;
    while i < 40 {
        k[i] = if i % 2 == 0 { 0x6d } else { 0x5a };
        i += 1;
    }
    k
};

/// The 32 key bits that meet input bit `bit` (MSB-first), with the key zero-extended.
fn key_window(key: &[u8], bit: usize) -> u32 {
    let byte = bit / 8;
    let mut acc: u64 = 0;
    for i in 0..8 {
        acc = (acc << 8) | u64::from(key.get(byte + i).copied().unwrap_or(0));
    }
    // `acc` holds key bits [8*byte, 8*byte + 64); we want [bit, bit + 32).
    (acc >> (32 - bit % 8)) as u32
}

/// The textbook Toeplitz hash, one input bit at a time.
///
/// It is the reference the fast [`Toeplitz`] table is tested against. Key bits past the
/// end of `key` count as zero, so any input length is accepted (NICs never feed more
/// than `key.len() - 4` bytes).
pub fn toeplitz_bitwise(key: &[u8], input: &[u8]) -> u32 {
    let mut hash = 0u32;
    for (i, &byte) in input.iter().enumerate() {
        for b in 0..8 {
            if byte & (0x80 >> b) != 0 {
                hash ^= key_window(key, i * 8 + b);
            }
        }
    }
    hash
}

/// A Toeplitz hasher for one key, table-driven.
///
/// Toeplitz is linear over XOR, so the contribution of one input byte depends only on
/// its position and value. The table holds that contribution for every (position, value)
/// pair: one lookup and one XOR per input byte instead of eight conditional XORs.
/// A 40-byte key costs 40 KiB of table.
#[derive(Clone)]
pub struct Toeplitz {
    table: Box<[[u32; 256]]>,
}

impl fmt::Debug for Toeplitz {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Toeplitz")
            .field("positions", &self.table.len())
            .finish_non_exhaustive()
    }
}

impl Toeplitz {
    /// Precomputes the table for `key`. Inputs longer than the key get zero
    /// contributions from the bytes past its end, as in [`toeplitz_bitwise`].
    pub fn new(key: &[u8]) -> Self {
        let mut table = vec![[0u32; 256]; key.len()].into_boxed_slice();
        for (pos, row) in table.iter_mut().enumerate() {
            for b in 0..8 {
                row[0x80 >> b] = key_window(key, pos * 8 + b);
            }
            for v in 1..256usize {
                let low = v & v.wrapping_neg();
                row[v] = row[v & (v - 1)] ^ row[low];
            }
        }
        Toeplitz { table }
    }

    /// Hasher for [`SYMMETRIC_KEY`].
    pub fn symmetric() -> Self {
        Self::new(&SYMMETRIC_KEY)
    }

    /// Hashes `input`.
    #[inline]
    pub fn hash(&self, input: &[u8]) -> u32 {
        input
            .iter()
            .zip(self.table.iter())
            .fold(0, |h, (&byte, row)| h ^ row[usize::from(byte)])
    }
}

/// IP protocol numbers whose ports take part in the hash.
const PROTO_TCP: u8 = 6;
const PROTO_UDP: u8 = 17;
const PROTO_SCTP: u8 = 132;

/// The 5-tuple of a flow, as the hash sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FlowTuple {
    /// Source address.
    pub src: IpAddr,
    /// Destination address.
    pub dst: IpAddr,
    /// Source port (0 when the protocol has none).
    pub src_port: u16,
    /// Destination port (0 when the protocol has none).
    pub dst_port: u16,
    /// IP protocol number (6 TCP, 17 UDP, ...).
    pub proto: u8,
}

impl FlowTuple {
    /// The tuple of the opposite direction.
    pub fn reversed(&self) -> FlowTuple {
        FlowTuple {
            src: self.dst,
            dst: self.src,
            src_port: self.dst_port,
            dst_port: self.src_port,
            proto: self.proto,
        }
    }

    /// Whether the ports take part in the hash: for TCP, UDP and SCTP, as NICs
    /// configured for `IP | TCP | UDP` hashing do. Other protocols hash addresses only.
    pub fn has_ports(&self) -> bool {
        matches!(self.proto, PROTO_TCP | PROTO_UDP | PROTO_SCTP)
    }

    /// Writes the hash input (source address, destination address, then source and
    /// destination ports in network order when `with_ports`) into `buf` and returns
    /// its length. Each address is written in its own family's form.
    fn input(&self, with_ports: bool, buf: &mut [u8; 36]) -> usize {
        let mut len = 0;
        for addr in [self.src, self.dst] {
            match addr {
                IpAddr::V4(a) => {
                    buf[len..len + 4].copy_from_slice(&a.octets());
                    len += 4;
                }
                IpAddr::V6(a) => {
                    buf[len..len + 16].copy_from_slice(&a.octets());
                    len += 16;
                }
            }
        }
        if with_ports {
            buf[len..len + 2].copy_from_slice(&self.src_port.to_be_bytes());
            buf[len + 2..len + 4].copy_from_slice(&self.dst_port.to_be_bytes());
            len += 4;
        }
        len
    }

    /// A symmetric, non-linear hash of this flow (both directions agree), for choices
    /// that must spread flows whatever their addresses: a SELECT group's bucket. The
    /// Toeplitz hash with the symmetric key is linear and its key repeats every 16 bits,
    /// so it sees only the 16-bit XOR fold of addresses and ports: clients whose address
    /// and port step together (10.0.1.k:40000+k) all hash alike. Here the two endpoints,
    /// put in order, go through a 64-bit hasher and a final avalanche (as Open vSwitch's
    /// symmetric L4 hash for its select groups).
    pub fn symmetric_hash(&self) -> u32 {
        use std::hash::{Hash, Hasher};
        let ports = self.has_ports();
        let a = (self.src, if ports { self.src_port } else { 0 });
        let b = (self.dst, if ports { self.dst_port } else { 0 });
        let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
        let mut h = rustc_hash::FxHasher::default();
        (lo, hi, self.proto).hash(&mut h);
        // SplitMix64's finalizer: every input bit reaches every output bit.
        let mut z = h.finish();
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        ((z ^ (z >> 31)) >> 32) as u32
    }

    /// The RSS hash of this flow: addresses and, for TCP/UDP/SCTP, ports.
    pub fn hash(&self, key: &Toeplitz) -> u32 {
        self.hash_with(key, self.has_ports())
    }

    /// The RSS hash over the addresses only (a NIC's "IPv4 only" / "IPv6 only" type).
    pub fn hash_l3(&self, key: &Toeplitz) -> u32 {
        self.hash_with(key, false)
    }

    fn hash_with(&self, key: &Toeplitz, with_ports: bool) -> u32 {
        let mut buf = [0u8; 36];
        let len = self.input(with_ports, &mut buf);
        key.hash(&buf[..len])
    }
}

/// Why a [`Reta`] refused a change.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum RetaError {
    /// The instance is already in the table.
    #[error("instance {0} is already in the indirection table")]
    Duplicate(u16),
    /// The table already spreads over the most instances allowed.
    #[error("indirection table already has {max} instances")]
    Full {
        /// The limit, [`MAX_INSTANCES_PER_SERVICE`].
        max: usize,
    },
    /// The instance is not in the table.
    #[error("instance {0} is not in the indirection table")]
    Unknown(u16),
}

/// An indirection table: hash → instance of one service.
///
/// Invariants, kept by every operation and checked by the tests:
/// * every entry names an instance of [`Reta::instances`] (or none when that is empty);
/// * the instances' shares of the [`RETA_SIZE`] entries differ by at most one;
/// * [`Reta::add_instance`] changes only entries that now name the new instance, and
///   [`Reta::remove_instance`] changes only entries that named the removed one. So
///   flows of the other instances stay where their state is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reta {
    entries: Box<[Option<u16>; RETA_SIZE]>,
    instances: Vec<u16>,
}

impl Default for Reta {
    fn default() -> Self {
        Reta {
            entries: Box::new([None; RETA_SIZE]),
            instances: Vec::new(),
        }
    }
}

impl Reta {
    /// A table spread round-robin over `instances` (may be empty).
    pub fn new(instances: &[u16]) -> Result<Self, RetaError> {
        let mut reta = Reta::default();
        for (i, &id) in instances.iter().enumerate() {
            if instances[..i].contains(&id) {
                return Err(RetaError::Duplicate(id));
            }
        }
        if instances.len() > MAX_INSTANCES_PER_SERVICE {
            return Err(RetaError::Full {
                max: MAX_INSTANCES_PER_SERVICE,
            });
        }
        reta.instances = instances.to_vec();
        if !instances.is_empty() {
            for (i, e) in reta.entries.iter_mut().enumerate() {
                *e = Some(instances[i % instances.len()]);
            }
        }
        Ok(reta)
    }

    /// The instance for a packet with RSS hash `hash` (its low 8 bits pick the entry,
    /// as on a NIC). `None` when the service has no instance: the packet is dropped.
    #[inline]
    pub fn lookup(&self, hash: u32) -> Option<u16> {
        self.entries[hash as usize % RETA_SIZE]
    }

    /// The instances, in the order they were added.
    pub fn instances(&self) -> &[u16] {
        &self.instances
    }

    /// The raw entries (for stats and tests).
    pub fn entries(&self) -> &[Option<u16>] {
        &self.entries[..]
    }

    /// How many entries name `id`.
    pub fn share(&self, id: u16) -> usize {
        self.entries.iter().filter(|e| **e == Some(id)).count()
    }

    fn shares(&self) -> Vec<usize> {
        self.instances.iter().map(|&id| self.share(id)).collect()
    }

    /// Adds instance `id`. It takes over `RETA_SIZE / (n + 1)` entries, one at a time
    /// from whichever instance currently has the most (so shares stay within one);
    /// no other entry changes.
    pub fn add_instance(&mut self, id: u16) -> Result<(), RetaError> {
        if self.instances.contains(&id) {
            return Err(RetaError::Duplicate(id));
        }
        if self.instances.len() >= MAX_INSTANCES_PER_SERVICE {
            return Err(RetaError::Full {
                max: MAX_INSTANCES_PER_SERVICE,
            });
        }
        if self.instances.is_empty() {
            self.instances.push(id);
            self.entries.fill(Some(id));
            return Ok(());
        }
        let target = RETA_SIZE / (self.instances.len() + 1);
        let mut shares = self.shares();
        for _ in 0..target {
            // Richest instance; ties go to the earliest added, for determinism.
            let (donor, _) = shares
                .iter()
                .enumerate()
                .max_by(|a, b| a.1.cmp(b.1).then(b.0.cmp(&a.0)))
                .expect("instances is not empty");
            let donor_id = self.instances[donor];
            // Take the donor's last entry: spreads the new instance over the table.
            let slot = self
                .entries
                .iter()
                .rposition(|e| *e == Some(donor_id))
                .expect("donor has a share");
            self.entries[slot] = Some(id);
            shares[donor] -= 1;
        }
        self.instances.push(id);
        Ok(())
    }

    /// Removes instance `id`. Its entries go, one at a time, to whichever remaining
    /// instance has the fewest; no other entry changes. Removing the last instance
    /// empties the table.
    pub fn remove_instance(&mut self, id: u16) -> Result<(), RetaError> {
        let pos = self
            .instances
            .iter()
            .position(|&i| i == id)
            .ok_or(RetaError::Unknown(id))?;
        self.instances.remove(pos);
        if self.instances.is_empty() {
            self.entries.fill(None);
            return Ok(());
        }
        let mut shares = self.shares();
        for slot in 0..RETA_SIZE {
            if self.entries[slot] == Some(id) {
                let (heir, _) = shares
                    .iter()
                    .enumerate()
                    .min_by(|a, b| a.1.cmp(b.1).then(a.0.cmp(&b.0)))
                    .expect("instances is not empty");
                self.entries[slot] = Some(self.instances[heir]);
                shares[heir] += 1;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    /// (destination, source, dst port, src port, hash without ports, hash with ports)
    /// from Microsoft's "Verifying the RSS Hash Calculation".
    const V4: [(&str, &str, u16, u16, u32, u32); 5] = [
        ("161.142.100.80", "66.9.149.187", 1766, 2794, 0x323e8fc2, 0x51ccc178),
        ("65.69.140.83", "199.92.111.2", 4739, 14230, 0xd718262a, 0xc626b0ea),
        ("12.22.207.184", "24.19.198.95", 38024, 12898, 0xd2d0a5de, 0x5c2b394a),
        ("209.142.163.6", "38.27.205.30", 2217, 48228, 0x82989176, 0xafc7327f),
        ("202.188.127.2", "153.39.163.191", 1303, 44251, 0x5d1809c5, 0x10e828a2),
    ];
    const V6: [(&str, &str, u16, u16, u32, u32); 3] = [
        (
            "3ffe:2501:200:3::1",
            "3ffe:2501:200:1fff::7",
            1766,
            2794,
            0x2cc18cd5,
            0x40207d3d,
        ),
        (
            "ff02::1",
            "3ffe:501:8::260:97ff:fe40:efab",
            4739,
            14230,
            0x0f0c461c,
            0xdde51bbf,
        ),
        (
            "fe80::200:f8ff:fe21:67cf",
            "3ffe:1900:4545:3:200:f8ff:fe21:67cf",
            38024,
            44251,
            0x4b61e985,
            0x02d1feef,
        ),
    ];

    fn tuple(dst: &str, src: &str, dport: u16, sport: u16) -> FlowTuple {
        FlowTuple {
            src: src.parse().unwrap(),
            dst: dst.parse().unwrap(),
            src_port: sport,
            dst_port: dport,
            proto: PROTO_TCP,
        }
    }

    #[test]
    fn microsoft_vectors() {
        let key = Toeplitz::new(&MICROSOFT_KEY);
        for (dst, src, dport, sport, l3, l4) in V4.iter().chain(V6.iter()) {
            let t = tuple(dst, src, *dport, *sport);
            assert_eq!(t.hash(&key), *l4, "with ports: {src} -> {dst}");
            assert_eq!(t.hash_l3(&key), *l3, "addresses only: {src} -> {dst}");
            let mut buf = [0u8; 36];
            let n = t.input(true, &mut buf);
            assert_eq!(toeplitz_bitwise(&MICROSOFT_KEY, &buf[..n]), *l4);
        }
    }

    #[test]
    fn ports_count_only_for_port_protocols() {
        let key = Toeplitz::new(&MICROSOFT_KEY);
        let (dst, src, dport, sport, l3, l4) = V4[0];
        let mut t = tuple(dst, src, dport, sport);
        t.proto = PROTO_UDP;
        assert_eq!(t.hash(&key), l4);
        t.proto = 1; // ICMP
        assert_eq!(t.hash(&key), l3);
    }

    #[test]
    fn symmetric_key_is_0x6d5a_repeated() {
        assert!(SYMMETRIC_KEY.chunks(2).all(|c| c == [0x6d, 0x5a]));
    }

    #[test]
    fn table_covers_inputs_longer_than_the_key() {
        let key = Toeplitz::new(&MICROSOFT_KEY[..8]);
        let input: Vec<u8> = (0u8..20).map(|i| i.wrapping_mul(37) ^ 0xa5).collect();
        assert_eq!(key.hash(&input), toeplitz_bitwise(&MICROSOFT_KEY[..8], &input));
    }

    fn assert_balanced(reta: &Reta) {
        let shares = reta.shares();
        let (min, max) = (shares.iter().min().unwrap(), shares.iter().max().unwrap());
        assert!(max - min <= 1, "unbalanced shares {shares:?}");
        assert_eq!(shares.iter().sum::<usize>(), RETA_SIZE);
    }

    #[test]
    fn reta_add_moves_only_taken_entries() {
        let mut reta = Reta::new(&[1, 2, 3]).unwrap();
        assert_balanced(&reta);
        let before = reta.entries().to_vec();
        reta.add_instance(9).unwrap();
        assert_balanced(&reta);
        let after = reta.entries();
        let mut moved = 0;
        for (b, a) in before.iter().zip(after) {
            assert!(a == b || *a == Some(9), "entry moved from {b:?} to {a:?}");
            moved += usize::from(a != b);
        }
        assert_eq!(moved, RETA_SIZE / 4);
        assert_eq!(reta.share(9), 64);
    }

    #[test]
    fn reta_remove_moves_only_that_instances_entries() {
        let mut reta = Reta::new(&[1, 2, 3, 4, 5]).unwrap();
        let before = reta.entries().to_vec();
        reta.remove_instance(3).unwrap();
        assert_balanced(&reta);
        assert_eq!(reta.share(3), 0);
        for (b, a) in before.iter().zip(reta.entries()) {
            assert!(a == b || *b == Some(3));
        }
        assert_eq!(reta.instances(), &[1, 2, 4, 5]);
    }

    #[test]
    fn reta_empty_and_errors() {
        let mut reta = Reta::new(&[]).unwrap();
        assert_eq!(reta.lookup(12345), None);
        reta.add_instance(7).unwrap();
        assert!((0..1000).all(|h| reta.lookup(h) == Some(7)));
        assert_eq!(reta.add_instance(7), Err(RetaError::Duplicate(7)));
        assert_eq!(reta.remove_instance(8), Err(RetaError::Unknown(8)));
        reta.remove_instance(7).unwrap();
        assert_eq!(reta.lookup(0), None);
        assert_eq!(Reta::new(&[1, 1]), Err(RetaError::Duplicate(1)));
        let ids: Vec<u16> = (1..=32).collect();
        let mut full = Reta::new(&ids).unwrap();
        assert_balanced(&full);
        assert_eq!(full.add_instance(40), Err(RetaError::Full { max: 32 }));
        assert!(Reta::new(&(1..=33).collect::<Vec<_>>()).is_err());
    }

    #[test]
    fn reta_lookup_uses_low_bits() {
        let reta = Reta::new(&[1, 2]).unwrap();
        assert_eq!(reta.lookup(0), Some(1));
        assert_eq!(reta.lookup(1), Some(2));
        assert_eq!(reta.lookup(0x1234_5600), Some(1));
        assert_eq!(reta.lookup(0xffff_ff01), Some(2));
    }

    fn ip() -> impl Strategy<Value = IpAddr> {
        prop_oneof![
            any::<u32>().prop_map(|a| IpAddr::V4(Ipv4Addr::from(a))),
            any::<u128>().prop_map(|a| IpAddr::V6(Ipv6Addr::from(a))),
        ]
    }

    proptest! {
        #[test]
        fn table_matches_bitwise(key in proptest::collection::vec(any::<u8>(), 4..52),
                                 input in proptest::collection::vec(any::<u8>(), 0..60)) {
            prop_assert_eq!(Toeplitz::new(&key).hash(&input), toeplitz_bitwise(&key, &input));
        }

        #[test]
        fn symmetric_key_is_symmetric(v6 in any::<bool>(), a in ip(), b in ip(),
                                      sp in any::<u16>(), dp in any::<u16>(),
                                      proto in prop_oneof![Just(6u8), Just(17), Just(1)]) {
            // Both addresses of one family, as in a real packet.
            let (a, b) = match (v6, a, b) {
                (false, IpAddr::V4(_), IpAddr::V4(_)) | (true, IpAddr::V6(_), IpAddr::V6(_)) => (a, b),
                _ => (a, a),
            };
            let t = FlowTuple { src: a, dst: b, src_port: sp, dst_port: dp, proto };
            let key = Toeplitz::symmetric();
            prop_assert_eq!(t.hash(&key), t.reversed().hash(&key));
        }

        #[test]
        fn reta_changes_stay_minimal_and_balanced(ops in proptest::collection::vec((any::<bool>(), 1u16..40), 1..60)) {
            let mut reta = Reta::new(&[]).unwrap();
            for (add, id) in ops {
                let before = reta.entries().to_vec();
                if add {
                    if reta.add_instance(id).is_err() { continue; }
                    for (b, a) in before.iter().zip(reta.entries()) {
                        prop_assert!(a == b || *a == Some(id));
                    }
                } else {
                    if reta.remove_instance(id).is_err() { continue; }
                    for (b, a) in before.iter().zip(reta.entries()) {
                        prop_assert!(a == b || *b == Some(id));
                    }
                }
                if reta.instances().is_empty() {
                    prop_assert!(reta.entries().iter().all(Option::is_none));
                } else {
                    let shares = reta.shares();
                    prop_assert!(shares.iter().max().unwrap() - shares.iter().min().unwrap() <= 1);
                    prop_assert!(reta.entries().iter().all(|e| e.is_some_and(|i| reta.instances().contains(&i))));
                }
            }
        }
    }

    #[test]
    fn the_symmetric_hash_agrees_both_ways_and_spreads_clients_that_step_together() {
        let flow = |k: u8| FlowTuple {
            src: IpAddr::from([10, 0, 1, k]),
            dst: IpAddr::from([10, 0, 0, 2]),
            src_port: 40_000 + u16::from(k),
            dst_port: 53,
            proto: PROTO_UDP,
        };
        let key = Toeplitz::symmetric();
        let toeplitz: std::collections::HashSet<u32> = (1..=48).map(|k| flow(k).hash(&key)).collect();
        assert_eq!(toeplitz.len(), 1, "the linear hash sees them all alike");
        let ours: std::collections::HashSet<u32> = (1..=48).map(|k| flow(k).symmetric_hash()).collect();
        assert_eq!(ours.len(), 48);
        assert!((1..=48).all(|k| flow(k).symmetric_hash() == flow(k).reversed().symmetric_hash()));
        // Three buckets by the top bits, roughly even.
        let mut buckets = [0; 3];
        for k in 0..=255 {
            buckets[((u64::from(flow(k).symmetric_hash()) * 3) >> 32) as usize] += 1;
        }
        assert!(buckets.iter().all(|&n| n > 50), "{buckets:?}");
    }
}
