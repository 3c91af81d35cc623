//! `onvm-shm`: the shared-memory data plane of onvm-rs.
//!
//! One memfd-backed [`Region`] holds every packet buffer and every ring. The manager
//! creates it and keeps the free list ([`Pool`]); NFs map it from the file descriptor
//! the manager sends them ([`fdpass`]). Packets move between parties as `u32` buffer
//! indices through single-producer/single-consumer [`ring`]s; the bytes never move.
//! Each buffer's owner entry ([`Owner`]) says who has it, so that a [`Holder`] can refuse
//! an index that is not for it, and the manager can [`Pool::audit`] the pool and
//! [`Pool::reclaim`] what a crashed NF held. A [`Buf`] token names its region too
//! ([`Region::id`]): a process may map several regions, and each refuses the others'
//! buffers instead of mistaking their indices for its own.
//!
//! This crate is where the `unsafe` of onvm-rs lives (mapping the region and viewing
//! parts of it as typed values); each block carries a `SAFETY:` comment. Everything it
//! exports is safe to use.
//!
//! Under `--cfg loom` only the ring algorithm is compiled, against loom's atomics.

#[cfg(not(loom))]
mod buffer;
#[cfg(not(loom))]
mod clock;
mod error;
#[cfg(not(loom))]
pub mod fdpass;
#[cfg(not(loom))]
mod layout;
#[cfg(not(loom))]
mod mempolicy;
#[cfg(not(loom))]
mod pool;
#[cfg(not(loom))]
mod region;
pub mod ring;
#[cfg(not(loom))]
pub mod seqpacket;
mod sync;

#[cfg(not(loom))]
pub use buffer::{Buf, BufIdx, META_SIZE, Owner, OwnerId, PacketMut, PktMeta};
#[cfg(not(loom))]
pub use clock::now_ns;
pub use error::{BufError, RingError, ShmError};
#[cfg(not(loom))]
pub use layout::{ABI_VERSION, BackingChoice, Header, Layout, MAGIC, RegionConfig};
#[cfg(not(loom))]
pub use pool::{Audit, FreeBufs, Pool, Reclaimed, Slice};
#[cfg(not(loom))]
pub use region::{BURST, Backing, Holder, Region};
pub use ring::{Consumer, Producer, RingRef};
