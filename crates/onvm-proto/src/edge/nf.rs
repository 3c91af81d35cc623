//! The NF's half of the edge protocol: which rings it writes and reads, and its answers.
//!
//! The NF runtime feeds [`NfEdges`] the manager's edge messages (`handle_edge_*`) and
//! two facts it observes (`handle_tx_flushed`, `handle_drained`), then takes the
//! results with [`NfEdges::poll`] and acts on each at once, in order: an [`NfEvent`]
//! says which ring to start or stop writing or reading, or which [`Answer`] to send.
//! Order matters: an answer that a ring is released comes after the event that stops
//! using it, so a runtime that applies events as they come never writes a ring after
//! saying it let go of it.
//!
//! Calling order, once per control pass: every message (`handle_edge_*`), then
//! [`NfEdges::handle_tx_flushed`] if everything the NF routed so far is in its tx ring
//! (the runtime polls control right after a flush, so it is), then
//! [`NfEdges::handle_drained`] for each [`NfEdges::draining`] ring it found empty, and
//! [`NfEdges::poll`] until `None` after each step or at the end.
//!
//! A self-loop (the NF is both ends of one ring) is an outbound and an inbound edge on
//! the same ring: the manager closes the producer's end first, so the first
//! `EdgeClosed` for such a ring stops the writing and the second the reading.

use std::collections::VecDeque;

use thiserror::Error;

use crate::ctrl::NfMsg;
use crate::limits::MAX_SERVICES;

/// What the NF runtime does next, in this order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum NfEvent {
    /// From now on, enqueue packets for `key` (0 = `Next`, else a service) on `ring`,
    /// whose consumer is instance `to`, and ring `bell`'s doorbell after each enqueue.
    StartWriting {
        /// What the edge is for: 0 = `Next`, else a service ID (below [`MAX_SERVICES`]).
        key: u16,
        /// The edge ring.
        ring: u32,
        /// The consumer instance.
        to: u16,
        /// The ring whose doorbell wakes the consumer (it sleeps: shared core).
        bell: Option<u32>,
    },
    /// Stop writing `ring`: packets for `key` go through the manager again (including
    /// any not yet enqueued).
    StopWriting {
        /// What the edge was for.
        key: u16,
        /// The edge ring.
        ring: u32,
    },
    /// Also read `ring`, after the rx ring.
    StartReading {
        /// The edge ring.
        ring: u32,
    },
    /// Stop reading `ring`: it is empty and its producer has let go.
    StopReading {
        /// The edge ring.
        ring: u32,
    },
    /// Send this answer to the manager.
    Send(Answer),
}

/// An answer of the NF to the manager.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Answer {
    /// [`NfMsg::EdgeSwitched`].
    Switched {
        /// The ring.
        ring: u32,
    },
    /// [`NfMsg::EdgeReleased`].
    Released {
        /// The ring.
        ring: u32,
    },
}

impl From<Answer> for NfMsg {
    fn from(a: Answer) -> NfMsg {
        match a {
            Answer::Switched { ring } => NfMsg::EdgeSwitched { ring },
            Answer::Released { ring } => NfMsg::EdgeReleased { ring },
        }
    }
}

/// An edge message the NF cannot follow. The manager never sends one; the NF treats it
/// as a protocol error (state is unchanged by the message).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Error)]
pub enum EdgeError {
    /// `EdgeOut` for a key that is no service.
    #[error("edge for service {0}, which is out of range (valid: 0..{MAX_SERVICES})")]
    BadKey(u16),
    /// `EdgeOut` for a key that already has an edge.
    #[error("a second edge for service {key} (ring {ring}) while ring {have} serves it")]
    KeyInUse {
        /// The key.
        key: u16,
        /// The new ring.
        ring: u32,
        /// The ring that serves it.
        have: u32,
    },
    /// `EdgeOut` or `EdgeIn` for a ring the NF already writes or reads.
    #[error("edge ring {0} is already in use that way")]
    RingInUse(u32),
    /// `EdgeClosed` for a ring the NF neither writes nor reads (or already drains).
    #[error("edge ring {0} closed, but this NF does not use it")]
    UnknownRing(u32),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum OutState {
    /// `StartWriting` is queued, not yet taken by the runtime.
    Queued,
    /// The runtime writes the ring; `EdgeSwitched` waits for the tx ring to be flushed.
    Switching,
    /// Switched and answered.
    Writing,
    /// Closed after the runtime switched, before `EdgeSwitched` went out: the runtime
    /// stopped writing; `EdgeSwitched` and `EdgeReleased` wait for the tx ring to be
    /// flushed (the manager must move the older packets on before the consumer reads
    /// what the NF wrote).
    Stopped,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct OutEdge {
    key: u16,
    ring: u32,
    state: OutState,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct InEdge {
    ring: u32,
    /// Closed by the manager: read until empty, then release.
    draining: bool,
}

/// The NF's edges and the answers it owes. See the [module docs](self) for the
/// calling order.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct NfEdges {
    out: Vec<OutEdge>,
    inbound: Vec<InEdge>,
    events: VecDeque<NfEvent>,
}

impl NfEdges {
    /// No edges.
    pub fn new() -> Self {
        Self::default()
    }

    /// `EdgeOut`: write packets for `key` to `ring` (consumer `to`, doorbell `bell`).
    /// The answer `EdgeSwitched` follows the first [`NfEdges::handle_tx_flushed`] after
    /// the runtime took the `StartWriting`.
    pub fn handle_edge_out(&mut self, key: u16, to: u16, ring: u32, bell: Option<u32>) -> Result<(), EdgeError> {
        if key >= MAX_SERVICES {
            return Err(EdgeError::BadKey(key));
        }
        if let Some(e) = self.out.iter().find(|e| e.key == key) {
            return Err(EdgeError::KeyInUse {
                key,
                ring,
                have: e.ring,
            });
        }
        if self.out.iter().any(|e| e.ring == ring) {
            return Err(EdgeError::RingInUse(ring));
        }
        self.out.push(OutEdge {
            key,
            ring,
            state: OutState::Queued,
        });
        self.events.push_back(NfEvent::StartWriting { key, ring, to, bell });
        Ok(())
    }

    /// `EdgeIn`: read `ring` too (after the rx ring, which holds the older packets).
    pub fn handle_edge_in(&mut self, ring: u32) -> Result<(), EdgeError> {
        if self.inbound.iter().any(|e| e.ring == ring) {
            return Err(EdgeError::RingInUse(ring));
        }
        self.inbound.push(InEdge { ring, draining: false });
        self.events.push_back(NfEvent::StartReading { ring });
        Ok(())
    }

    /// `EdgeClosed`: the NF stops writing a ring it writes at once. It answers
    /// `EdgeReleased` at once if it had answered `EdgeSwitched` (or never wrote: then
    /// the manager frees the ring); if it wrote but `EdgeSwitched` is still owed, both
    /// answers wait for [`NfEdges::handle_tx_flushed`], because the manager lets the
    /// consumer read what the NF wrote once the older packets moved on. A ring it reads
    /// is read until [`NfEdges::handle_drained`].
    pub fn handle_edge_closed(&mut self, ring: u32) -> Result<(), EdgeError> {
        if let Some(i) = self
            .out
            .iter()
            .position(|e| e.ring == ring && e.state != OutState::Stopped)
        {
            let key = self.out[i].key;
            match self.out[i].state {
                OutState::Queued => {
                    // The runtime never started: take the start back instead of undoing it.
                    self.out.swap_remove(i);
                    self.events
                        .retain(|ev| !matches!(ev, NfEvent::StartWriting { ring: r, .. } if *r == ring));
                    self.events.push_back(NfEvent::Send(Answer::Released { ring }));
                }
                OutState::Switching => {
                    self.out[i].state = OutState::Stopped;
                    self.events.push_back(NfEvent::StopWriting { key, ring });
                }
                // (`Stopped` ones are not found above: they already stopped.)
                OutState::Writing | OutState::Stopped => {
                    self.out.swap_remove(i);
                    self.events.push_back(NfEvent::StopWriting { key, ring });
                    self.events.push_back(NfEvent::Send(Answer::Released { ring }));
                }
            }
            return Ok(());
        }
        match self.inbound.iter_mut().find(|e| e.ring == ring && !e.draining) {
            Some(e) => {
                e.draining = true;
                Ok(())
            }
            None => Err(EdgeError::UnknownRing(ring)),
        }
    }

    /// Everything the NF routed so far is in its tx ring: the edges it switched to since
    /// are answered (`EdgeSwitched`), so the manager moves those packets on before the
    /// consumer reads the edge.
    pub fn handle_tx_flushed(&mut self) {
        let events = &mut self.events;
        self.out.retain_mut(|e| match e.state {
            OutState::Switching => {
                e.state = OutState::Writing;
                events.push_back(NfEvent::Send(Answer::Switched { ring: e.ring }));
                true
            }
            OutState::Stopped => {
                events.push_back(NfEvent::Send(Answer::Switched { ring: e.ring }));
                events.push_back(NfEvent::Send(Answer::Released { ring: e.ring }));
                false
            }
            OutState::Queued | OutState::Writing => true,
        });
    }

    /// Inbound `ring`, being closed, was found empty (after its producer let go, so it
    /// stays empty): stop reading it and say so. False if it was not draining.
    pub fn handle_drained(&mut self, ring: u32) -> bool {
        let Some(i) = self.inbound.iter().position(|e| e.ring == ring && e.draining) else {
            return false;
        };
        self.inbound.swap_remove(i);
        self.events.push_back(NfEvent::StopReading { ring });
        self.events.push_back(NfEvent::Send(Answer::Released { ring }));
        true
    }

    /// Inbound rings being closed: check each for emptiness, then
    /// [`NfEdges::handle_drained`].
    pub fn draining(&self) -> impl Iterator<Item = u32> + '_ {
        self.inbound.iter().filter(|e| e.draining).map(|e| e.ring)
    }

    /// Whether inbound `ring` is being closed.
    /// Tests only: the runtime acts on [`NfEdges::poll`]'s events instead.
    #[cfg(test)]
    pub(crate) fn is_draining(&self, ring: u32) -> bool {
        self.inbound.iter().any(|e| e.ring == ring && e.draining)
    }

    /// The next thing to do; the runtime acts on it before it calls anything else.
    pub fn poll(&mut self) -> Option<NfEvent> {
        let ev = self.events.pop_front()?;
        if let NfEvent::StartWriting { ring, .. } = ev
            && let Some(e) = self.out.iter_mut().find(|e| e.ring == ring)
        {
            e.state = OutState::Switching;
        }
        Some(ev)
    }

    /// The ring the NF writes for `key`, switched or not.
    /// Tests only: the runtime acts on [`NfEdges::poll`]'s events instead.
    #[cfg(test)]
    pub(crate) fn writes(&self, key: u16) -> Option<u32> {
        self.out
            .iter()
            .find(|e| e.key == key && matches!(e.state, OutState::Switching | OutState::Writing))
            .map(|e| e.ring)
    }

    /// Whether the NF reads `ring` (draining or not).
    /// Tests only: the runtime acts on [`NfEdges::poll`]'s events instead.
    #[cfg(test)]
    pub(crate) fn reads(&self, ring: u32) -> bool {
        self.inbound.iter().any(|e| e.ring == ring)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn drain(e: &mut NfEdges) -> Vec<NfEvent> {
        std::iter::from_fn(|| e.poll()).collect()
    }

    const fn released(ring: u32) -> NfEvent {
        NfEvent::Send(Answer::Released { ring })
    }

    #[test]
    fn switched_is_answered_only_after_a_flush_that_follows_the_switch() {
        let mut e = NfEdges::new();
        e.handle_edge_out(3, 7, 400, Some(18)).unwrap();
        e.handle_tx_flushed();
        assert_eq!(
            drain(&mut e),
            [NfEvent::StartWriting {
                key: 3,
                ring: 400,
                to: 7,
                bell: Some(18)
            }],
            "the flush came before the runtime switched: it proves nothing"
        );
        assert_eq!(e.writes(3), Some(400));
        e.handle_tx_flushed();
        assert_eq!(drain(&mut e), [NfEvent::Send(Answer::Switched { ring: 400 })]);
        e.handle_tx_flushed();
        assert_eq!(drain(&mut e), [], "once");
    }

    #[test]
    fn closing_an_outbound_edge_stops_writing_before_it_answers() {
        let mut e = NfEdges::new();
        e.handle_edge_out(0, 2, 400, None).unwrap();
        drain(&mut e);
        e.handle_tx_flushed();
        drain(&mut e);
        e.handle_edge_closed(400).unwrap();
        assert_eq!(
            drain(&mut e),
            [NfEvent::StopWriting { key: 0, ring: 400 }, released(400)]
        );
        assert_eq!(e.writes(0), None);
        // The key is free again.
        e.handle_edge_out(0, 2, 401, None).unwrap();
    }

    #[test]
    fn an_edge_closed_before_the_switch_is_answered_once_the_tx_ring_is_flushed() {
        // Taken by the runtime (it may have written), but not yet answered.
        let mut e = NfEdges::new();
        e.handle_edge_out(1, 2, 400, None).unwrap();
        drain(&mut e);
        e.handle_edge_closed(400).unwrap();
        assert_eq!(drain(&mut e), [NfEvent::StopWriting { key: 1, ring: 400 }]);
        assert_eq!(e.writes(1), None);
        assert_eq!(
            e.handle_edge_closed(400),
            Err(EdgeError::UnknownRing(400)),
            "stopped already"
        );
        e.handle_tx_flushed();
        assert_eq!(
            drain(&mut e),
            [NfEvent::Send(Answer::Switched { ring: 400 }), released(400)],
            "the manager lets the consumer read what is in it, after the older packets"
        );
        e.handle_tx_flushed();
        assert_eq!(drain(&mut e), []);
        // Not even taken: the runtime never sees the edge.
        e.handle_edge_out(1, 2, 401, None).unwrap();
        e.handle_edge_closed(401).unwrap();
        assert_eq!(drain(&mut e), [released(401)]);
    }

    #[test]
    fn an_inbound_edge_is_released_only_once_drained() {
        let mut e = NfEdges::new();
        e.handle_edge_in(400).unwrap();
        assert_eq!(drain(&mut e), [NfEvent::StartReading { ring: 400 }]);
        assert!(!e.handle_drained(400), "not closing: an empty ring is just idle");
        e.handle_edge_closed(400).unwrap();
        assert_eq!(drain(&mut e), []);
        assert_eq!(e.draining().collect::<Vec<_>>(), [400]);
        assert!(e.is_draining(400) && e.reads(400));
        assert!(e.handle_drained(400));
        assert_eq!(drain(&mut e), [NfEvent::StopReading { ring: 400 }, released(400)]);
        assert!(!e.reads(400) && !e.handle_drained(400));
    }

    #[test]
    fn a_self_loop_closes_the_writing_end_first() {
        let mut e = NfEdges::new();
        e.handle_edge_out(1, 1, 400, None).unwrap();
        e.handle_edge_in(400).unwrap();
        drain(&mut e);
        e.handle_tx_flushed();
        assert_eq!(drain(&mut e), [NfEvent::Send(Answer::Switched { ring: 400 })]);
        e.handle_edge_closed(400).unwrap();
        assert_eq!(
            drain(&mut e),
            [NfEvent::StopWriting { key: 1, ring: 400 }, released(400)]
        );
        assert!(e.reads(400) && !e.is_draining(400));
        e.handle_edge_closed(400).unwrap();
        assert!(e.is_draining(400));
        assert!(e.handle_drained(400));
        assert_eq!(drain(&mut e), [NfEvent::StopReading { ring: 400 }, released(400)]);
    }

    #[test]
    fn messages_the_nf_cannot_follow_are_named_and_change_nothing() {
        let mut e = NfEdges::new();
        assert_eq!(
            e.handle_edge_out(MAX_SERVICES, 2, 400, None),
            Err(EdgeError::BadKey(MAX_SERVICES))
        );
        e.handle_edge_out(1, 2, 400, None).unwrap();
        e.handle_edge_in(500).unwrap();
        let before = e.clone();
        assert_eq!(
            e.handle_edge_out(1, 3, 401, None),
            Err(EdgeError::KeyInUse {
                key: 1,
                ring: 401,
                have: 400
            })
        );
        assert_eq!(e.handle_edge_out(2, 3, 400, None), Err(EdgeError::RingInUse(400)));
        assert_eq!(e.handle_edge_in(500), Err(EdgeError::RingInUse(500)));
        assert_eq!(e.handle_edge_closed(600), Err(EdgeError::UnknownRing(600)));
        assert_eq!(e, before);
        e.handle_edge_closed(500).unwrap();
        assert_eq!(
            e.handle_edge_closed(500),
            Err(EdgeError::UnknownRing(500)),
            "closed twice"
        );
    }

    #[test]
    fn answers_become_control_messages() {
        assert_eq!(
            NfMsg::from(Answer::Switched { ring: 9 }),
            NfMsg::EdgeSwitched { ring: 9 }
        );
        assert_eq!(
            NfMsg::from(Answer::Released { ring: 9 }),
            NfMsg::EdgeReleased { ring: 9 }
        );
    }
}
