//! Direct NF→NF edges: which exist, and closing them safely.
//!
//! The manager's half of the edge protocol is pure, so it lives in
//! [`onvm_proto::edge::mgr`] next to the NF's half, where the two are tested against
//! each other; the manager drives it and acts on what it returns (sending the messages,
//! setting and resetting ring ends, draining a dead consumer's rings).

pub use onvm_proto::edge::mgr::{Edge, EdgeState, Edges, Outbox};
