//! The edges this NF reads, after its rx ring.
//!
//! An edge ring is written by another NF, so its indices are that NF's to corrupt. A
//! corrupt edge is this NF's problem only as far as losing that edge: it is marked
//! broken, counted ([`Inbound::broken`]) and not read again, and the NF carries on with
//! its rx ring and its other edges (the packets in it still name this NF as their
//! receiver, so the manager's reclaim gets them back when the edge or the NF goes).

use onvm_shm::{BURST, Buf, Consumer, Holder, RingError};

struct InEdge<'r> {
    ring: u32,
    cons: Consumer<'r>,
    /// Its indices were found corrupt: no longer read.
    broken: bool,
}

/// Inbound edge rings, read round-robin so one busy sender cannot starve another.
pub(super) struct Inbound<'r> {
    edges: Vec<InEdge<'r>>,
    next: usize,
    /// Edges found corrupt, with the error of the last.
    broken: u64,
    last_broken: Option<(u32, RingError)>,
}

impl<'r> Inbound<'r> {
    pub(super) fn new() -> Self {
        Inbound {
            edges: Vec::new(),
            next: 0,
            broken: 0,
            last_broken: None,
        }
    }

    /// Top `bufs` up to a burst from the edges. A corrupt edge is marked broken and
    /// skipped, never an error: its sender, not this NF, broke it.
    #[inline]
    pub(super) fn fill(&mut self, holder: &Holder, bufs: &mut Vec<Buf>) -> Result<(), RingError> {
        let n = self.edges.len();
        if n == 0 {
            return Ok(());
        }
        for k in 0..n {
            let e = &mut self.edges[(self.next + k) % n];
            if e.broken {
                continue;
            }
            if let Err(err) = holder.dequeue(&mut e.cons, BURST - bufs.len(), bufs) {
                e.broken = true;
                self.broken += 1;
                self.last_broken = Some((e.ring, err));
                continue;
            }
            if bufs.len() == BURST {
                break;
            }
        }
        self.next = self.next.wrapping_add(1);
        Ok(())
    }

    /// Whether any edge that is not broken has packets (one found corrupt here counts,
    /// so that reading it marks it broken).
    pub(super) fn any_ready(&mut self) -> bool {
        self.edges
            .iter_mut()
            .any(|e| !e.broken && e.cons.ready().map_or(true, |n| n > 0))
    }

    /// Whether `ring` is empty (a broken edge is: nothing more will be read from it).
    pub(super) fn is_empty(&mut self, ring: u32) -> Result<bool, RingError> {
        let Some(e) = self.edges.iter_mut().find(|e| e.ring == ring) else {
            return Ok(true);
        };
        if e.broken {
            return Ok(true);
        }
        match e.cons.ready() {
            Ok(n) => Ok(n == 0),
            Err(err) => {
                e.broken = true;
                self.broken += 1;
                self.last_broken = Some((ring, err));
                Ok(true)
            }
        }
    }

    pub(super) fn add(&mut self, ring: u32, cons: Consumer<'r>) {
        self.edges.push(InEdge {
            ring,
            cons,
            broken: false,
        });
    }

    pub(super) fn remove(&mut self, ring: u32) {
        self.edges.retain(|e| e.ring != ring);
    }

    /// Edges found corrupt since the start, and the last one with its error. (Not in
    /// the NF's summary yet.)
    #[cfg_attr(not(test), allow(dead_code))]
    pub(super) fn broken(&self) -> (u64, Option<&(u32, RingError)>) {
        (self.broken, self.last_broken.as_ref())
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::FileExt;

    use onvm_shm::{BackingChoice, OwnerId, Pool, Region, RegionConfig};

    use super::*;

    /// Sender nf3 corrupts its edge to us (nf2); sender nf4's edge goes on working.
    #[test]
    fn a_corrupt_edge_is_dropped_and_counted_not_an_error() {
        let region = Region::create(&RegionConfig {
            buffers: 64,
            rings: 3,
            ring_capacity: 16,
            backing: BackingChoice::Normal,
            ..Default::default()
        })
        .unwrap();
        let mut pool = Pool::new(&region).unwrap();
        let (me, good) = (region.holder(OwnerId(2)).unwrap(), region.holder(OwnerId(4)).unwrap());
        region.ring(0).unwrap().set_ends(3, 2);
        region.ring(1).unwrap().set_ends(4, 2);
        let mut inbound = Inbound::new();
        inbound.add(0, region.consumer(0).unwrap());
        inbound.add(1, region.consumer(1).unwrap());
        let mut send = |n: usize| {
            let mut bufs = Vec::new();
            pool.alloc_burst(n, &mut bufs);
            let raws: Vec<u32> = bufs.drain(..).map(|b| pool.holder().send(b, OwnerId(4))).collect();
            let mut mine: Vec<Buf> = raws.iter().map(|&v| good.claim(v).unwrap()).collect();
            good.enqueue(&mut region.producer(1).unwrap(), OwnerId(2), &mut mine)
                .unwrap();
        };
        send(5);
        // nf3 writes a producer index far past the capacity (line 0 of its ring).
        let file = std::fs::File::from(region.fd().try_clone_to_owned().unwrap());
        file.write_at(&0x4000_0000u32.to_le_bytes(), region.layout().rings_offset)
            .unwrap();
        let mut got = Vec::new();
        assert!(inbound.any_ready());
        inbound.fill(&me, &mut got).unwrap();
        inbound.fill(&me, &mut got).unwrap();
        assert_eq!(got.len(), 5, "the good edge is read");
        assert_eq!(inbound.broken().0, 1, "counted once");
        assert!(matches!(inbound.broken().1, Some((0, RingError::Corrupt { .. }))));
        assert!(!inbound.any_ready(), "a broken edge does not keep the NF awake");
        assert!(inbound.is_empty(0).unwrap());
        send(3);
        inbound.fill(&me, &mut got).unwrap();
        assert_eq!(got.len(), 8);
        for b in got {
            pool.free(b);
        }
    }
}
