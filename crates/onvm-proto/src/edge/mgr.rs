//! The manager's half of the edge protocol: which edges exist, opening and closing them.
//!
//! The manager opens an edge when it sees that everything an NF sends to a service (or
//! as `Next`) goes to one instance. Opening is a hand-shake so that a flow keeps its
//! order when its packets move from the manager's path to the edge: the producer is
//! told first (`EdgeOut`), answers `EdgeSwitched` once everything it sent the old way is
//! in its tx ring, the manager moves those packets on into the consumer's rx ring, and
//! only then tells the consumer (`EdgeIn`). The consumer reads its rx ring before its
//! edges, so the older packets come first.
//!
//! Closing is a two-step hand-shake so that no buffer is ever stranded in a ring
//! nobody reads: first the producer is told and answers that it no longer writes;
//! then the consumer is told and answers once it has emptied the ring. A dead
//! producer counts as having answered; for a dead consumer the manager empties the
//! ring itself (`Pool::drain_ring`) until the producer has let go. An edge closed
//! before the producer switched waits for its answer ([`EdgeState::ClosingUnswitched`]):
//! the consumer reads it only if the producer wrote to it. Every topology
//! change (an NF comes or goes, a rule changes) closes all edges; traffic falls back to
//! the manager and the edges that still make sense are opened again by the next
//! packets.

use crate::ctrl::MgrMsg;
use crate::limits::{EDGE_RINGS, FIRST_EDGE_RING};

/// The consumer of an edge the manager reads itself: an NF's packets that leave by a
/// port go to the manager through it with their verdict implied by the edge (the NF
/// writes none into the packet, the manager reads none), which spares both a cache
/// miss per packet on the packet's metadata line. No NF is told of it: the manager
/// reads it as soon as the producer switched, and empties it once the producer let go.
pub const MANAGER: u16 = 0;

/// Where an edge is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EdgeState {
    /// The producer was told and may write; the consumer does not read it yet.
    Opening,
    /// In use.
    Open,
    /// Closed before the producer answered `EdgeSwitched`: the consumer has not been
    /// told of it. The producer answers `EdgeSwitched` first if it wrote to it (then the
    /// consumer is told, after the manager moved the older packets on, and reads what
    /// is there), and `EdgeReleased` alone if it never did (then nobody needs to read it).
    ClosingUnswitched,
    /// Waiting for the producer to stop writing.
    ClosingProducer,
    /// Waiting for the consumer to empty it.
    ClosingConsumer,
}

/// One edge.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Edge {
    /// Its ring.
    pub ring: u32,
    /// Producer instance.
    pub from: u16,
    /// Consumer instance.
    pub to: u16,
    /// What the producer uses it for: 0 = `Next`, else a service ID.
    pub key: u16,
    /// State.
    pub state: EdgeState,
    /// The producer is gone.
    pub from_dead: bool,
    /// The consumer is gone: the manager drains the ring.
    pub to_dead: bool,
}

/// A message for an instance.
pub type Outbox = Vec<(u16, MgrMsg)>;

/// All edges.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Edges {
    /// Ring of `slots[0]`.
    first: u32,
    slots: Vec<Option<Edge>>,
}

/// The region's edge rings: [`EDGE_RINGS`] from [`FIRST_EDGE_RING`] on.
impl Default for Edges {
    fn default() -> Self {
        Edges::new(FIRST_EDGE_RING, EDGE_RINGS)
    }
}

impl Edges {
    /// Edges on the `rings` rings from `first` on.
    pub fn new(first: u32, rings: u32) -> Self {
        Edges {
            first,
            slots: vec![None; rings as usize],
        }
    }

    /// Open edges and edges being closed.
    pub fn iter(&self) -> impl Iterator<Item = &Edge> {
        self.slots.iter().flatten()
    }

    /// The open edge of `from` for `key`, if any (closing ones count: no second edge
    /// for the same purpose until the first is gone).
    pub fn find(&self, from: u16, key: u16) -> Option<&Edge> {
        self.iter().find(|e| e.from == from && e.key == key)
    }

    /// Open an edge, telling both ends; `bell` is the ring whose doorbell the producer
    /// rings (for a receiver that sleeps). `None` when every edge ring is in use.
    pub fn open(&mut self, from: u16, to: u16, key: u16, bell: Option<u32>, out: &mut Outbox) -> Option<u32> {
        let i = self.slots.iter().position(Option::is_none)?;
        let ring = self.first + i as u32;
        self.slots[i] = Some(Edge {
            ring,
            from,
            to,
            key,
            state: EdgeState::Opening,
            from_dead: false,
            to_dead: false,
        });
        // The producer only: the consumer is told once the producer has switched.
        out.push((
            from,
            MgrMsg::EdgeOut {
                service: key,
                instance: to,
                ring,
                bell,
            },
        ));
        Some(ring)
    }

    /// The producer `who` answered `EdgeSwitched` for `ring` (and the caller has moved on
    /// what it sent the old way): tell the consumer. False if no edge was waiting for it.
    pub fn switched(&mut self, who: u16, ring: u32, out: &mut Outbox) -> bool {
        let Some(e) = self.slot(ring).and_then(Option::as_mut) else {
            return false;
        };
        if !matches!(e.state, EdgeState::Opening | EdgeState::ClosingUnswitched) || e.from != who {
            return false;
        }
        Self::tell_consumer(e, out);
        true
    }

    /// The consumer starts reading an edge the producer switched to: an opening edge
    /// becomes open, one closed before the switch waits for the producer to let go. Only
    /// once what the producer sent the old way has moved on, so that it comes first.
    fn tell_consumer(e: &mut Edge, out: &mut Outbox) {
        e.state = match e.state {
            EdgeState::Opening => EdgeState::Open,
            EdgeState::ClosingUnswitched => EdgeState::ClosingProducer,
            _ => return,
        };
        if !e.to_dead && e.to != MANAGER {
            out.push((e.to, MgrMsg::EdgeIn { ring: e.ring }));
        }
    }

    /// Start closing every open edge.
    pub fn close_all(&mut self, out: &mut Outbox) {
        for e in self.slots.iter_mut().flatten() {
            match e.state {
                // The consumer must not read it before the packets the producer sent the
                // old way have moved on: the producer's answer says whether it wrote.
                EdgeState::Opening if !e.from_dead => {
                    e.state = EdgeState::ClosingUnswitched;
                    out.push((e.from, MgrMsg::EdgeClosed { ring: e.ring }));
                }
                EdgeState::Opening | EdgeState::Open => {
                    Self::tell_consumer(e, out);
                    e.state = EdgeState::ClosingProducer;
                    if e.from_dead {
                        Self::to_consumer_step(e, out);
                    } else {
                        out.push((e.from, MgrMsg::EdgeClosed { ring: e.ring }));
                    }
                }
                EdgeState::ClosingUnswitched | EdgeState::ClosingProducer | EdgeState::ClosingConsumer => {}
            }
        }
    }

    fn to_consumer_step(e: &mut Edge, out: &mut Outbox) {
        e.state = EdgeState::ClosingConsumer;
        if !e.to_dead && e.to != MANAGER {
            out.push((e.to, MgrMsg::EdgeClosed { ring: e.ring }));
        }
    }

    /// `who` answered `EdgeReleased` for `ring`. Returns the ring if the edge is now
    /// gone and its ring free (the caller resets its ends).
    pub fn released(&mut self, who: u16, ring: u32, out: &mut Outbox) -> Option<u32> {
        let slot = self.slot(ring)?;
        let e = slot.as_mut()?;
        match e.state {
            EdgeState::ClosingUnswitched if who == e.from => {
                // Released without a switch: it never wrote, so the ring is empty.
                *slot = None;
                Some(ring)
            }
            EdgeState::ClosingProducer if who == e.from => {
                // A dead consumer's ring is drained and freed through `orphaned`/`finish`.
                Self::to_consumer_step(e, out);
                None
            }
            EdgeState::ClosingConsumer if who == e.to => {
                *slot = None;
                Some(ring)
            }
            _ => None,
        }
    }

    /// Instance `id` is gone: edges it fed or read are closed.
    pub fn instance_gone(&mut self, id: u16, out: &mut Outbox) {
        for slot in &mut self.slots {
            let Some(e) = slot.as_mut() else { continue };
            // Both flags first: a self-loop's dead NF is told nothing (its ID may be
            // given to a new NF before the messages go out).
            if e.to == id {
                e.to_dead = true;
            }
            if e.from == id {
                e.from_dead = true;
                // It may have written before it could answer; the caller moved on what
                // it sent the old way.
                Self::tell_consumer(e, out);
                if e.state != EdgeState::ClosingConsumer {
                    Self::to_consumer_step(e, out);
                }
            } else if e.to == id && matches!(e.state, EdgeState::Open | EdgeState::Opening) {
                e.state = EdgeState::ClosingProducer;
                if e.from_dead {
                    Self::to_consumer_step(e, out);
                } else {
                    out.push((e.from, MgrMsg::EdgeClosed { ring: e.ring }));
                }
            }
        }
    }

    /// Rings whose consumer is dead: the manager drains them. Returns (ring, dead
    /// consumer, done) where `done` = the producer has let go too, so after this drain
    /// the ring is free (the caller then calls [`Edges::finish`]).
    pub fn orphaned(&self) -> Vec<(u32, u16, bool)> {
        self.iter()
            .filter(|e| e.to_dead)
            .map(|e| (e.ring, e.to, e.state == EdgeState::ClosingConsumer))
            .collect()
    }

    /// Forget the edge on `ring` (drained, both ends done).
    pub fn finish(&mut self, ring: u32) {
        if let Some(slot) = self.slot(ring) {
            *slot = None;
        }
    }

    /// Edges the manager reads ([`MANAGER`]) whose producer switched to them: `(ring,
    /// producer, key, closing)`, where `closing` = the producer let go, so once the
    /// manager has emptied the ring it answers [`Edges::released`] for it as [`MANAGER`].
    pub fn for_manager(&self) -> impl Iterator<Item = (u32, u16, u16, bool)> + '_ {
        self.iter()
            .filter(|e| e.to == MANAGER)
            .filter(|e| {
                matches!(
                    e.state,
                    EdgeState::Open | EdgeState::ClosingProducer | EdgeState::ClosingConsumer
                )
            })
            .map(|e| (e.ring, e.from, e.key, e.state == EdgeState::ClosingConsumer))
    }

    /// The slot of edge ring `ring`, if it is one.
    fn slot(&mut self, ring: u32) -> Option<&mut Option<Edge>> {
        self.slots.get_mut(ring.checked_sub(self.first)? as usize)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn closed_to(out: &Outbox, who: u16) -> bool {
        out.iter()
            .any(|(i, m)| *i == who && matches!(m, MgrMsg::EdgeClosed { .. }))
    }

    fn told_in(out: &Outbox, who: u16) -> bool {
        out.iter().any(|(i, m)| *i == who && matches!(m, MgrMsg::EdgeIn { .. }))
    }

    /// Open with the producer's answer, as the manager does when nothing goes wrong.
    fn open_switched(e: &mut Edges, from: u16, to: u16, key: u16, out: &mut Outbox) -> u32 {
        let ring = e.open(from, to, key, None, out).unwrap();
        assert!(e.switched(from, ring, out));
        ring
    }

    #[test]
    fn the_consumer_hears_of_an_edge_only_after_the_producer_switched() {
        let mut e = Edges::default();
        let mut out = Outbox::new();
        let ring = e.open(1, 2, 0, None, &mut out).unwrap();
        assert_eq!(out.len(), 1);
        assert!(matches!(out[0], (1, MgrMsg::EdgeOut { .. })));
        out.clear();
        assert!(!e.switched(2, ring, &mut out), "only the producer switches");
        assert!(!e.switched(1, ring + 1, &mut out), "no such edge");
        assert!(out.is_empty());
        assert!(e.switched(1, ring, &mut out));
        assert!(told_in(&out, 2));
        out.clear();
        assert!(!e.switched(1, ring, &mut out), "once");
        assert!(out.is_empty());
    }

    #[test]
    fn closing_an_opening_edge_lets_the_consumer_read_what_is_in_it_after_the_switch() {
        let mut e = Edges::default();
        let mut out = Outbox::new();
        let ring = e.open(1, 2, 0, None, &mut out).unwrap();
        out.clear();
        e.close_all(&mut out);
        assert!(
            closed_to(&out, 1) && !told_in(&out, 2),
            "not before the older packets moved on"
        );
        assert_eq!(e.find(1, 0).unwrap().state, EdgeState::ClosingUnswitched);
        out.clear();
        e.close_all(&mut out);
        assert!(out.is_empty(), "closing already");
        // The producer wrote before it saw the close: it answers the switch first.
        assert!(e.switched(1, ring, &mut out));
        assert!(told_in(&out, 2));
        out.clear();
        assert_eq!(e.released(1, ring, &mut out), None);
        assert!(closed_to(&out, 2));
        assert_eq!(e.released(2, ring, &mut out), Some(ring));
        // A producer that never wrote answers only that it let go: nobody reads the ring.
        let ring = e.open(1, 2, 0, None, &mut out).unwrap();
        out.clear();
        e.close_all(&mut out);
        out.clear();
        assert_eq!(e.released(1, ring, &mut out), Some(ring));
        assert!(out.is_empty() && e.iter().next().is_none());
        // The producer dying before it switched: the consumer reads and closes the ring.
        let ring = e.open(3, 4, 0, None, &mut out).unwrap();
        out.clear();
        e.instance_gone(3, &mut out);
        assert!(told_in(&out, 4) && closed_to(&out, 4));
        assert_eq!(e.released(4, ring, &mut out), Some(ring));
    }

    #[test]
    fn two_step_close_with_both_alive() {
        let mut e = Edges::default();
        let mut out = Outbox::new();
        let ring = open_switched(&mut e, 1, 2, 0, &mut out);
        assert_eq!(out.len(), 2);
        assert!(e.find(1, 0).is_some());
        out.clear();
        e.close_all(&mut out);
        assert!(closed_to(&out, 1) && !closed_to(&out, 2), "producer first");
        out.clear();
        assert_eq!(e.released(2, ring, &mut out), None, "the consumer cannot answer first");
        assert_eq!(e.released(1, ring, &mut out), None);
        assert!(closed_to(&out, 2));
        assert_eq!(e.released(2, ring, &mut out), Some(ring));
        assert!(e.find(1, 0).is_none());
    }

    #[test]
    fn dead_consumer_is_drained_until_the_producer_lets_go() {
        let mut e = Edges::default();
        let mut out = Outbox::new();
        let ring = open_switched(&mut e, 1, 2, 5, &mut out);
        out.clear();
        e.instance_gone(2, &mut out);
        assert!(closed_to(&out, 1));
        assert_eq!(e.orphaned(), vec![(ring, 2, false)]);
        e.released(1, ring, &mut out);
        assert_eq!(e.orphaned(), vec![(ring, 2, true)]);
        e.finish(ring);
        assert!(e.iter().next().is_none());
    }

    #[test]
    fn dead_producer_skips_to_the_consumer() {
        let mut e = Edges::default();
        let mut out = Outbox::new();
        let ring = open_switched(&mut e, 1, 2, 0, &mut out);
        out.clear();
        e.instance_gone(1, &mut out);
        assert!(closed_to(&out, 2));
        assert_eq!(e.released(2, ring, &mut out), Some(ring));
    }

    #[test]
    fn a_dead_self_loop_tells_nobody_and_is_drained() {
        for switched in [false, true] {
            let mut e = Edges::default();
            let mut out = Outbox::new();
            let ring = e.open(3, 3, 1, None, &mut out).unwrap();
            if switched {
                assert!(e.switched(3, ring, &mut out));
            }
            out.clear();
            e.instance_gone(3, &mut out);
            assert!(out.is_empty(), "{out:?}");
            assert_eq!(e.orphaned(), vec![(ring, 3, true)]);
        }
    }

    #[test]
    fn an_edge_the_manager_reads_tells_only_its_producer() {
        let mut e = Edges::default();
        let mut out = Outbox::new();
        let ring = e.open(4, MANAGER, 0, Some(99), &mut out).unwrap();
        assert!(matches!(
            out[..],
            [(
                4,
                MgrMsg::EdgeOut {
                    instance: MANAGER,
                    bell: Some(99),
                    ..
                }
            )]
        ));
        assert_eq!(e.for_manager().count(), 0, "not read before the producer switched");
        out.clear();
        assert!(e.switched(4, ring, &mut out));
        assert!(out.is_empty(), "no consumer to tell: {out:?}");
        assert_eq!(e.for_manager().collect::<Vec<_>>(), vec![(ring, 4, 0, false)]);
        e.close_all(&mut out);
        assert!(matches!(out[..], [(4, MgrMsg::EdgeClosed { .. })]));
        out.clear();
        assert_eq!(e.released(4, ring, &mut out), None);
        assert!(out.is_empty());
        assert_eq!(
            e.for_manager().collect::<Vec<_>>(),
            vec![(ring, 4, 0, true)],
            "now to be emptied"
        );
        assert_eq!(e.released(MANAGER, ring, &mut out), Some(ring));
        assert!(e.iter().next().is_none());
        // A producer that dies: the manager empties what it wrote, then frees the ring.
        let ring = e.open(5, MANAGER, 0, None, &mut out).unwrap();
        assert!(e.switched(5, ring, &mut out));
        out.clear();
        e.instance_gone(5, &mut out);
        assert!(out.is_empty(), "{out:?}");
        assert_eq!(e.for_manager().collect::<Vec<_>>(), vec![(ring, 5, 0, true)]);
        assert_eq!(e.released(MANAGER, ring, &mut out), Some(ring));
    }

    #[test]
    fn rings_run_out_cleanly() {
        let mut e = Edges::default();
        let mut out = Outbox::new();
        for i in 0..EDGE_RINGS {
            assert!(e.open(1, 2, i as u16, None, &mut out).is_some());
        }
        assert_eq!(e.open(1, 2, 999, None, &mut out), None);
    }
}
