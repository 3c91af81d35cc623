//! The edges this NF reads, after its rx ring.
//!
//! An edge ring is written by another NF, and any NF can scribble its indices. A
//! corrupt edge is never this NF's failure: the call that finds it reads nothing from
//! it, counts it ([`Inbound::corrupt`]) and goes on with its rx ring and its other
//! edges; the edge is read again at the next pass. The ring heals itself (each end
//! republishes its own index, see `onvm_shm::ring`), so one stray write costs a poll,
//! and a sender that keeps scribbling stalls only its own edge.

use onvm_shm::{BURST, Buf, Consumer, Holder, RingError};

struct InEdge<'r> {
    ring: u32,
    cons: Consumer<'r>,
}

/// Inbound edge rings, read round-robin so one busy sender cannot starve another.
pub(super) struct Inbound<'r> {
    edges: Vec<InEdge<'r>>,
    next: usize,
    /// Reads that found a ring this NF reads corrupt (its edges and its rx ring), with
    /// the ring and error of the last.
    corrupt: u64,
    last_corrupt: Option<(u32, RingError)>,
}

impl<'r> Inbound<'r> {
    pub(super) fn new() -> Self {
        Inbound {
            edges: Vec::new(),
            next: 0,
            corrupt: 0,
            last_corrupt: None,
        }
    }

    /// Count a read of `ring` that found it corrupt (an edge here, or the rx ring).
    #[cold]
    pub(super) fn count_corrupt(&mut self, ring: u32, err: RingError) {
        self.corrupt += 1;
        self.last_corrupt = Some((ring, err));
    }

    /// Top `bufs` up to a burst from the edges. A corrupt edge gives nothing this time
    /// and is counted, never an error: its sender (or a third NF), not this NF, broke it.
    #[inline]
    pub(super) fn fill(&mut self, holder: &Holder, bufs: &mut Vec<Buf>) {
        let n = self.edges.len();
        if n == 0 {
            return;
        }
        for k in 0..n {
            let e = &mut self.edges[(self.next + k) % n];
            if let Err(err) = holder.dequeue(&mut e.cons, BURST - bufs.len(), bufs) {
                let ring = e.ring;
                self.count_corrupt(ring, err);
                continue;
            }
            if bufs.len() == BURST {
                break;
            }
        }
        self.next = self.next.wrapping_add(1);
    }

    /// Whether any edge has packets. A corrupt one has none yet: its sender's next
    /// write heals it and rings our doorbell.
    pub(super) fn any_ready(&mut self) -> bool {
        self.edges.iter_mut().any(|e| e.cons.ready().is_ok_and(|n| n > 0))
    }

    /// Whether `ring` is empty. A corrupt edge is not known to be empty: it is asked
    /// again at the next housekeeping (counted), so its packets are not stranded.
    pub(super) fn is_empty(&mut self, ring: u32) -> bool {
        let Some(e) = self.edges.iter_mut().find(|e| e.ring == ring) else {
            return true;
        };
        match e.cons.ready() {
            Ok(n) => n == 0,
            Err(err) => {
                self.count_corrupt(ring, err);
                false
            }
        }
    }

    pub(super) fn add(&mut self, ring: u32, cons: Consumer<'r>) {
        self.edges.push(InEdge { ring, cons });
    }

    pub(super) fn remove(&mut self, ring: u32) {
        self.edges.retain(|e| e.ring != ring);
    }

    /// Republish our index of every edge, should a peer have scribbled it (one relaxed
    /// load each when not): the housekeeping's share of ring healing on the reading
    /// side (see `onvm_shm::ring`).
    pub(super) fn heal(&self) {
        for e in &self.edges {
            e.cons.heal();
        }
    }

    /// Reads that found a ring corrupt since the start, and the last one with its
    /// error. (Not in the NF's summary yet.)
    #[cfg_attr(not(test), allow(dead_code))]
    pub(super) fn corrupt(&self) -> (u64, Option<&(u32, RingError)>) {
        (self.corrupt, self.last_corrupt.as_ref())
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::FileExt;

    use onvm_shm::{BackingChoice, OwnerId, Pool, Region, RegionConfig};

    use super::*;

    /// Sender nf3 corrupts its edge to us (nf2); sender nf4's edge goes on working, and
    /// nf3's edge works again once nf3 writes to it.
    #[test]
    fn a_corrupt_edge_is_counted_not_an_error_and_heals_when_its_sender_writes() {
        let region = Region::create(&RegionConfig {
            buffers: 64,
            rings: 3,
            ring_capacity: 16,
            backing: BackingChoice::Normal,
            ..Default::default()
        })
        .unwrap();
        let mut pool = Pool::new(&region).unwrap();
        let (me, good, bad) = (
            region.holder(OwnerId(2)).unwrap(),
            region.holder(OwnerId(4)).unwrap(),
            region.holder(OwnerId(3)).unwrap(),
        );
        region.ring(0).unwrap().set_ends(3, 2);
        region.ring(1).unwrap().set_ends(4, 2);
        let mut inbound = Inbound::new();
        inbound.add(0, region.consumer(0).unwrap());
        inbound.add(1, region.consumer(1).unwrap());
        let mut bad_prod = region.producer(0).unwrap();
        let mut send = |from: &Holder, id: u16, ring: u32, prod: Option<&mut onvm_shm::Producer<'_>>, n: usize| {
            let mut bufs = Vec::new();
            pool.alloc_burst(n, &mut bufs);
            let raws: Vec<u32> = bufs.drain(..).map(|b| pool.holder().send(b, OwnerId(id))).collect();
            let mut mine: Vec<Buf> = raws.iter().map(|&v| from.claim(v).unwrap()).collect();
            match prod {
                Some(p) => from.enqueue(p, OwnerId(2), &mut mine).unwrap(),
                None => from
                    .enqueue(&mut region.producer(ring).unwrap(), OwnerId(2), &mut mine)
                    .unwrap(),
            };
        };
        send(&good, 4, 1, None, 5);
        // nf3 writes a producer index far past the capacity (line 0 of its ring).
        let file = std::fs::File::from(region.fd().try_clone_to_owned().unwrap());
        file.write_at(&0x4000_0000u32.to_le_bytes(), region.layout().rings_offset)
            .unwrap();
        let mut got = Vec::new();
        assert!(inbound.any_ready(), "the good edge has packets");
        inbound.fill(&me, &mut got);
        inbound.fill(&me, &mut got);
        assert_eq!(got.len(), 5, "the good edge is read");
        assert_eq!(inbound.corrupt().0, 2, "counted at each read that found it corrupt");
        assert!(matches!(inbound.corrupt().1, Some((0, RingError::Corrupt { .. }))));
        assert!(!inbound.any_ready(), "a corrupt edge does not keep the NF awake");
        assert!(!inbound.is_empty(0), "a corrupt edge is not known to be empty");
        // nf3 writes again: its index is republished and the edge is read.
        send(&bad, 3, 0, Some(&mut bad_prod), 3);
        inbound.fill(&me, &mut got);
        assert_eq!(got.len(), 8, "the healed edge is read");
        assert!(inbound.is_empty(0));
        for b in got {
            pool.free(b);
        }
    }
}
