//! `onvm-nf`: the library network functions are written against.
//!
//! An NF is an ordinary process. It connects to the manager's control socket,
//! registers (tag, service, optional instance and core), receives the shared packet
//! region's memfd and the offsets of its rings, and from then on packets reach it and
//! leave it as buffer indices: the bytes stay where the port put them (zero-copy).
//!
//! ```no_run
//! use onvm_nf::{Action, Nf, handler_fn};
//! let nf = Nf::builder("firewall").service(2).connect()?;
//! nf.run(handler_fn(|pkt, _ctx| if pkt.len() > 1400 { Action::Drop } else { Action::Next }))?;
//! # Ok::<(), onvm_nf::NfError>(())
//! ```
//!
//! | Module | Holds |
//! |---|---|
//! | [`action`] | what a handler answers for a packet |
//! | [`args`] | openNetVM's NF flags (`-r`, `-n`, `-t`, …) as a `clap` group for any NF's command line |
//! | [`builder`] | openNetVM's NF options and the registration handshake |
//! | [`handler`] | the callbacks an NF implements (packet, batch, setup, tick, message, stop) |
//! | [`ctx`] | what a callback may do: keep and return packets, allocate, send messages, stop |
//! | [`offline`] | a handler run over frames without a manager, for tests and micro-benchmarks |
//! | [`runtime`] | the receive → handle → hand-on loop, direct NF→NF edges, shutdown |
//!
//! Everything is safe Rust; the shared memory is behind `onvm-shm`'s checked API.
#![forbid(unsafe_code)]

pub mod action;
pub mod args;
pub mod builder;
pub mod ctx;
pub mod error;
pub mod handler;
pub mod offline;
pub mod runtime;

pub use action::Action;
pub use args::NfArgs;
pub use builder::{ENV_SERVICE, ENV_SHARED_CORE, ENV_TAG, Nf, NfBuilder};
pub use ctx::{Ctx, Kept, MAX_PENDING_MSGS};
pub use error::NfError;
pub use handler::{Batch, Handler, handler_fn};
/// Typed headers, checksums and frame builders (`onvm-packet`), for NF authors.
pub use onvm_packet as packet;
pub use onvm_proto::ctrl::{Dest, NfCounters};
pub use onvm_shm::PacketMut;
pub use runtime::Summary;
