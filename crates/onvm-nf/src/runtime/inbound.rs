//! The edges this NF reads, after its rx ring.

use onvm_shm::{BURST, Buf, Consumer, Holder, RingError};

struct InEdge<'r> {
    ring: u32,
    cons: Consumer<'r>,
}

/// Inbound edge rings, read round-robin so one busy sender cannot starve another.
pub(super) struct Inbound<'r> {
    edges: Vec<InEdge<'r>>,
    next: usize,
}

impl<'r> Inbound<'r> {
    pub(super) fn new() -> Self {
        Inbound {
            edges: Vec::new(),
            next: 0,
        }
    }

    /// Top `bufs` up to a burst from the edges.
    #[inline]
    pub(super) fn fill(&mut self, holder: &Holder, bufs: &mut Vec<Buf>) -> Result<(), RingError> {
        let n = self.edges.len();
        if n == 0 {
            return Ok(());
        }
        for k in 0..n {
            let e = &mut self.edges[(self.next + k) % n];
            holder.dequeue(&mut e.cons, BURST - bufs.len(), bufs)?;
            if bufs.len() == BURST {
                break;
            }
        }
        self.next = self.next.wrapping_add(1);
        Ok(())
    }

    /// Whether any edge has packets (a corrupt one counts: reading it reports it).
    pub(super) fn any_ready(&mut self) -> bool {
        self.edges.iter_mut().any(|e| e.cons.ready().map_or(true, |n| n > 0))
    }

    /// Whether `ring` is empty.
    pub(super) fn is_empty(&mut self, ring: u32) -> Result<bool, RingError> {
        match self.edges.iter_mut().find(|e| e.ring == ring) {
            Some(e) => Ok(e.cons.ready()? == 0),
            None => Ok(true),
        }
    }

    pub(super) fn add(&mut self, ring: u32, cons: Consumer<'r>) {
        self.edges.push(InEdge { ring, cons });
    }

    pub(super) fn remove(&mut self, ring: u32) {
        self.edges.retain(|e| e.ring != ring);
    }
}
