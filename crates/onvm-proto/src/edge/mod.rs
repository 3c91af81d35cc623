//! The direct NF→NF edge protocol, both halves, sans-IO.
//!
//! An edge is a ring in the region with one producer NF and one consumer NF. The
//! manager opens one when it sees that everything an NF sends to a service (or as
//! `Next`) goes to one instance; from then on those packets bypass the manager. Each
//! edge is its own single-producer ring, so a crashed sender can never leave a shared
//! ring half-written.
//!
//! The two halves talk over the control socket ([`crate::ctrl`]):
//!
//! ```text
//!  manager (Edges)                     producer (NfEdges)         consumer (NfEdges)
//!  open ───────── EdgeOut ───────────▶ start writing ring
//!                                      (old-path packets all in tx)
//!       ◀──────── EdgeSwitched ─────── (answer)
//!  move the producer's tx packets on
//!  into the consumer's rx ring, then
//!  switched ──────────── EdgeIn ───────────────────────────────▶ start reading ring
//!                                                                  (rx ring first)
//!  close_all ──── EdgeClosed ────────▶ stop writing
//!       ◀──────── EdgeReleased ──────── (answer)
//!  released ──────────── EdgeClosed ───────────────────────────▶ read until empty,
//!       ◀──────────────────────────── EdgeReleased ──────────── then stop reading
//!  released → the ring is free
//! ```
//!
//! Opening is a hand-shake so that a flow keeps its order when its packets move from
//! the manager's path to the edge; closing is one so that no buffer is ever stranded in
//! a ring nobody reads. A dead producer counts as having answered; for a dead consumer
//! the manager empties the ring itself until the producer has let go.
//!
//! An edge closed while it opens (the producer has not answered `EdgeSwitched` yet)
//! keeps the order too: the producer answers `EdgeSwitched` before `EdgeReleased` if it
//! wrote to the ring, and the consumer is told of the ring (`EdgeIn`, then
//! `EdgeClosed`) only after the manager moved the older packets on; a producer that
//! never wrote answers `EdgeReleased` alone, and the ring is free at once. Closing an
//! open edge does not keep order: packets the producer sends through the manager after
//! it stopped writing may reach the consumer before older ones still in the edge ring.
//!
//! [`Edges`] is the manager's half and [`NfEdges`] the NF's. Neither touches a ring, a
//! socket or a clock: they take the messages and the facts their caller observed ("the
//! tx ring holds everything sent so far", "this ring is empty") and return the messages
//! to send and what to do with which ring. The tests in `pair` drive both halves
//! against each other through every interleaving of a few scenarios.
//!
//! | Module | Holds |
//! |---|---|
//! | [`mgr`] | the manager's half: which edges exist, opening and closing them |
//! | [`nf`] | the NF's half: which rings it writes and reads, and its answers |

pub mod mgr;
pub mod nf;

#[cfg(test)]
mod pair;

pub use mgr::{Edge, EdgeState, Edges, MANAGER, Outbox};

/// Most receive threads (lanes) a manager runs beside its main switch thread.
pub const MAX_LANES: u16 = 64;

/// Lane `k`'s ID (1..=[`MAX_LANES`]) as an edge end and buffer owner: the top of the
/// 15-bit owner space (`onvm_shm::OwnerId::MAX` is 0x7fff), far above any NF instance.
pub const fn lane_owner(k: u16) -> u16 {
    0x7fff - MAX_LANES + k
}

/// The lane whose ID `id` is, if it is one.
pub fn lane_of(id: u16) -> Option<u16> {
    let k = id.checked_sub(0x7fff - MAX_LANES)?;
    (1..=MAX_LANES).contains(&k).then_some(k)
}

/// Whether an edge's consumer is a thread of the manager (its main one, [`MANAGER`], or
/// a lane): it reads the NF's tx ring too, so what does not fit goes the old way,
/// verdict written, instead of being dropped.
pub fn is_manager(id: u16) -> bool {
    id == MANAGER || lane_of(id).is_some()
}
pub use nf::{Answer, EdgeError, NfEdges, NfEvent};
