//! Packet buffers: the metadata line, the owner entries, and the holder's view of the bytes.
//!
//! A buffer slot is one 64-byte metadata line, then `headroom` bytes, then the data
//! room. The packet's bytes start at `data_off` inside the area after the metadata line,
//! so prepending a header (an encapsulation, a VLAN tag) just moves `data_off` back.
//!
//! # Ownership
//! Every buffer has an owner entry, a `u32` in the region's owner table (not in its
//! metadata line: when a burst moves to another core, 16 entries share a cache line,
//! so the handover costs a few line transfers instead of one per packet, and an NF
//! that does not look at a packet never pulls its metadata line), that says where it is:
//! `Free` (in the manager's free list), `Held(id)` (an NF or the manager is working
//! on it) or `Transit { to, from }` (enqueued, or about to be, towards `to`). The sender
//! writes `Transit` before it publishes the index; the receiver checks that the entry
//! says `Transit` *to it* and flips it to `Held` before it consumes the ring slot.
//! That check is what turns a garbage, stale or duplicated index into an error instead
//! of two parties writing one buffer, and the entries are what lets the manager find
//! and reclaim everything a crashed NF held.
//!
//! In a process, an owner id is represented by one [`crate::Holder`]; only it creates
//! [`Buf`] tokens for that id, and a `Buf` is needed to get `&mut` access to the bytes.
//!
//! # Regions
//! A process may map several regions (a manager with one per NUMA node; tests make
//! dozens), and indices mean nothing outside their region. So every [`Buf`] carries the
//! [`crate::Region::id`] of the mapping whose holder minted it, and every holder and pool
//! compares it before using the index: a `Buf` of region A given to region B's holder or
//! pool is refused (a named error, or counted in [`crate::Holder::foreign`] where the
//! signature has no error), never read as B's buffer with that index. The compare is
//! one predictable branch per call (per burst in `Holder::enqueue`).

use crate::error::BufError;
use std::fmt;
use std::sync::atomic::{AtomicU8, AtomicU16, AtomicU32, AtomicU64, Ordering::Relaxed};

/// Size of the metadata line at the start of every buffer slot.
pub const META_SIZE: usize = 64;

/// Who a buffer belongs to: the manager (0) or an NF instance (1..=32767).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct OwnerId(pub u16);

impl OwnerId {
    pub const MANAGER: OwnerId = OwnerId(0);
    /// Largest id (15 bits, so `Transit` fits `to` and `from` in one word).
    pub const MAX: OwnerId = OwnerId(0x7fff);
}

impl fmt::Display for OwnerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if *self == OwnerId::MANAGER {
            write!(f, "manager")
        } else {
            write!(f, "nf{}", self.0)
        }
    }
}

/// The state in a buffer's owner entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Owner {
    Free,
    Held(OwnerId),
    Transit { to: OwnerId, from: OwnerId },
}

impl Owner {
    const TAG_SHIFT: u32 = 30;
    const HELD: u32 = 1;
    const TRANSIT: u32 = 2;

    pub(crate) fn encode(self) -> u32 {
        match self {
            Owner::Free => 0,
            Owner::Held(id) => Self::HELD << Self::TAG_SHIFT | id.0 as u32,
            Owner::Transit { to, from } => Self::TRANSIT << Self::TAG_SHIFT | (from.0 as u32) << 15 | to.0 as u32,
        }
    }

    /// Decode an entry; `None` for a bit pattern no writer produces (corruption).
    /// Mask and value such that `entry & mask == value` iff the entry is
    /// `Transit { to, .. }` (any sender): the receiver's one-compare check.
    pub(crate) fn transit_to_pattern(to: OwnerId) -> (u32, u32) {
        (
            0b11 << Self::TAG_SHIFT | 0x7fff,
            Self::TRANSIT << Self::TAG_SHIFT | to.0 as u32,
        )
    }

    pub(crate) fn decode(v: u32) -> Option<Owner> {
        let id = |x: u32| OwnerId((x & 0x7fff) as u16);
        match v >> Self::TAG_SHIFT {
            0 if v == 0 => Some(Owner::Free),
            Self::HELD if v & !(Self::HELD << Self::TAG_SHIFT | 0x7fff) == 0 => Some(Owner::Held(id(v))),
            Self::TRANSIT => Some(Owner::Transit {
                to: id(v),
                from: id(v >> 15),
            }),
            _ => None,
        }
    }
}

impl fmt::Display for Owner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Owner::Free => write!(f, "free"),
            Owner::Held(id) => write!(f, "held by {id}"),
            Owner::Transit { to, from } => write!(f, "in transit {from} -> {to}"),
        }
    }
}

/// The 64-byte metadata line of a buffer, in shared memory.
///
/// Every field is an atomic used with relaxed ordering: on x86 and ARM that compiles to
/// plain loads and stores, and it keeps reads and writes well-defined even if a buggy
/// peer writes a line it does not own. Ordering between parties comes from the rings.
#[repr(C, align(64))]
#[derive(Debug)]
pub struct PktMeta {
    /// Unused (the owner entries live in the owner table); keeps the line's layout.
    _reserved: AtomicU32,
    len: AtomicU32,
    data_off: AtomicU32,
    in_port: AtomicU16,
    src_instance: AtomicU16,
    flow_hash: AtomicU32,
    action: AtomicU8,
    chain_pos: AtomicU8,
    nf_flags: AtomicU16,
    dest: AtomicU32,
    timestamp: AtomicU64,
    user: AtomicU64,
}

const _: () = assert!(std::mem::size_of::<PktMeta>() == META_SIZE);

macro_rules! meta_field {
    ($(#[$doc:meta] $get:ident, $set:ident: $ty:ty;)*) => {$(
        #[$doc]
        #[inline]
        pub fn $get(&self) -> $ty { self.$get.load(Relaxed) }
        #[inline]
        pub fn $set(&self, v: $ty) { self.$get.store(v, Relaxed) }
    )*};
}

impl PktMeta {
    meta_field! {
        /// Port the packet arrived on.
        in_port, set_in_port: u16;
        /// Instance id of the NF that last sent the packet.
        src_instance, set_src_instance: u16;
        /// Flow hash (symmetric Toeplitz of the 5-tuple) used for load balancing.
        flow_hash, set_flow_hash: u32;
        /// Action code the holder chose (the NF library defines the codes).
        action, set_action: u8;
        /// Position in the service chain.
        chain_pos, set_chain_pos: u8;
        /// Flags for the NF (free for NF use).
        nf_flags, set_nf_flags: u16;
        /// Destination of the action: a port, service or instance id.
        dest, set_dest: u32;
        /// Timestamp in nanoseconds (latency measurement).
        timestamp, set_timestamp: u64;
        /// Opaque word for the holder.
        user, set_user: u64;
    }

    /// A zeroed line in private memory (the holder's stand-in for a foreign buffer's).
    pub(crate) const fn zeroed() -> PktMeta {
        PktMeta {
            _reserved: AtomicU32::new(0),
            len: AtomicU32::new(0),
            data_off: AtomicU32::new(0),
            in_port: AtomicU16::new(0),
            src_instance: AtomicU16::new(0),
            flow_hash: AtomicU32::new(0),
            action: AtomicU8::new(0),
            chain_pos: AtomicU8::new(0),
            nf_flags: AtomicU16::new(0),
            dest: AtomicU32::new(0),
            timestamp: AtomicU64::new(0),
            user: AtomicU64::new(0),
        }
    }

    pub(crate) fn raw_len_off(&self) -> (u32, u32) {
        (self.len.load(Relaxed), self.data_off.load(Relaxed))
    }

    pub(crate) fn set_len_off(&self, len: u32, off: u32) {
        self.len.store(len, Relaxed);
        self.data_off.store(off, Relaxed);
    }
}

/// A validated buffer index (1..=pool size). Index 0 is never valid, so a zeroed slot
/// or a zeroed ring can never name a buffer. It does not say which region it was checked
/// against: [`crate::Region::meta`] and [`crate::Region::owner`] re-check its range.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BufIdx(pub(crate) u32);

impl BufIdx {
    pub fn get(self) -> u32 {
        self.0
    }
}

/// Proof that this process holds a buffer. Not `Clone`: one token per buffer, so at most
/// one `&mut` view of its bytes. Created only by a [`crate::Holder`] (after the owner
/// check) or the manager's [`crate::Pool`]; consumed when the buffer is sent or freed.
///
/// It names its region as well as its index (8 bytes), and only holders and pools of
/// that region accept it (see the module doc, "Regions").
#[derive(Debug, PartialEq, Eq)]
#[must_use = "a Buf that is dropped without being sent or freed leaks the buffer"]
pub struct Buf {
    pub(crate) idx: BufIdx,
    /// [`crate::Region::id`] of the mapping whose holder minted it.
    pub(crate) region: u32,
}

impl Buf {
    pub fn index(&self) -> u32 {
        self.idx.0
    }

    /// The [`crate::Region::id`] of the region it belongs to, for a process with several
    /// regions to find the pool a buffer goes back to.
    pub fn region_id(&self) -> u32 {
        self.region
    }
}

/// The holder's view of one packet: its metadata and its bytes.
#[derive(Debug)]
pub struct PacketMut<'a> {
    meta: &'a PktMeta,
    /// Headroom + data room.
    area: &'a mut [u8],
    headroom: u32,
    off: u32,
    len: u32,
}

impl<'a> PacketMut<'a> {
    /// Validate the shared offset and length once; from then on they are cached here and
    /// written through, so a peer scribbling on the line cannot move our slice bounds.
    #[inline]
    pub(crate) fn new(idx: BufIdx, meta: &'a PktMeta, area: &'a mut [u8], headroom: u32) -> Result<Self, BufError> {
        let (len, off) = meta.raw_len_off();
        let room = area.len() as u32;
        if off as u64 + len as u64 > room as u64 {
            return Err(BufError::BadMeta {
                index: idx.0,
                off,
                len,
                room,
            });
        }
        Ok(PacketMut {
            meta,
            area,
            headroom,
            off,
            len,
        })
    }

    /// An empty packet at the default headroom, written to the shared line without
    /// reading it first: for a buffer whose previous contents do not matter (a fresh
    /// one), so a stray write into its line by a peer cannot make this fail.
    #[inline]
    pub(crate) fn reset_new(meta: &'a PktMeta, area: &'a mut [u8], headroom: u32) -> Self {
        debug_assert!(headroom as usize <= area.len());
        meta.set_len_off(0, headroom);
        PacketMut {
            meta,
            area,
            headroom,
            off: headroom,
            len: 0,
        }
    }

    #[inline]
    pub fn meta(&self) -> &'a PktMeta {
        self.meta
    }

    /// The packet bytes.
    #[inline]
    pub fn data(&self) -> &[u8] {
        &self.area[self.off as usize..(self.off + self.len) as usize]
    }

    #[inline]
    pub fn data_mut(&mut self) -> &mut [u8] {
        &mut self.area[self.off as usize..(self.off + self.len) as usize]
    }

    #[inline]
    pub fn len(&self) -> usize {
        self.len as usize
    }

    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Bytes free in front of the packet.
    #[inline]
    pub fn headroom(&self) -> usize {
        self.off as usize
    }

    /// Bytes free after the packet.
    #[inline]
    pub fn tailroom(&self) -> usize {
        self.area.len() - (self.off + self.len) as usize
    }

    fn store(&mut self, off: u32, len: u32) {
        self.off = off;
        self.len = len;
        self.meta.set_len_off(len, off);
    }

    /// Empty the packet and put its start back at the default headroom.
    #[inline]
    pub fn reset(&mut self) {
        self.store(self.headroom, 0);
    }

    /// Set the length, keeping the start; new bytes (if longer) are whatever was there.
    #[inline]
    pub fn set_len(&mut self, len: usize) -> Result<(), BufError> {
        let room = self.area.len() - self.off as usize;
        if len > room {
            return Err(BufError::NoRoom { want: len, room });
        }
        self.store(self.off, len as u32);
        Ok(())
    }

    /// Replace the packet's bytes with `bytes` (starting at the default headroom).
    #[inline]
    pub fn copy_from(&mut self, bytes: &[u8]) -> Result<(), BufError> {
        let room = self.area.len() - self.headroom as usize;
        if bytes.len() > room {
            return Err(BufError::NoRoom {
                want: bytes.len(),
                room,
            });
        }
        self.store(self.headroom, bytes.len() as u32);
        self.data_mut().copy_from_slice(bytes);
        Ok(())
    }

    /// Say where bytes already in the buffer are: `len` bytes starting `off` bytes into
    /// the packet area (the start of the headroom). For ports whose kernel or NIC wrote
    /// the packet in place (AF_XDP), which decides where it starts.
    #[inline]
    pub fn set_bounds(&mut self, off: usize, len: usize) -> Result<(), BufError> {
        let room = self.area.len();
        if off.checked_add(len).is_none_or(|end| end > room) {
            return Err(BufError::NoRoom {
                want: off.saturating_add(len),
                room,
            });
        }
        self.store(off as u32, len as u32);
        Ok(())
    }

    /// Grow the packet at the front by `n` bytes (taken from headroom) and return them.
    #[inline]
    pub fn prepend(&mut self, n: usize) -> Result<&mut [u8], BufError> {
        if n > self.off as usize {
            return Err(BufError::NoRoom {
                want: n,
                room: self.off as usize,
            });
        }
        self.store(self.off - n as u32, self.len + n as u32);
        Ok(&mut self.data_mut()[..n])
    }

    /// Remove `n` bytes from the front (e.g. strip a header).
    #[inline]
    pub fn strip(&mut self, n: usize) -> Result<(), BufError> {
        if n > self.len as usize {
            return Err(BufError::NoRoom {
                want: n,
                room: self.len as usize,
            });
        }
        self.store(self.off + n as u32, self.len - n as u32);
        Ok(())
    }

    /// Grow the packet at the back by `n` bytes and return them.
    #[inline]
    pub fn append(&mut self, n: usize) -> Result<&mut [u8], BufError> {
        if n > self.tailroom() {
            return Err(BufError::NoRoom {
                want: n,
                room: self.tailroom(),
            });
        }
        let old = self.len as usize;
        self.store(self.off, self.len + n as u32);
        Ok(&mut self.data_mut()[old..])
    }

    /// Remove `n` bytes from the back.
    #[inline]
    pub fn trim(&mut self, n: usize) -> Result<(), BufError> {
        if n > self.len as usize {
            return Err(BufError::NoRoom {
                want: n,
                room: self.len as usize,
            });
        }
        self.store(self.off, self.len - n as u32);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transit_pattern_matches_exactly_transit_to_that_owner() {
        let (mask, want) = Owner::transit_to_pattern(OwnerId(5));
        let hit = |o: Owner| o.encode() & mask == want;
        assert!(hit(Owner::Transit {
            to: OwnerId(5),
            from: OwnerId(0)
        }));
        assert!(hit(Owner::Transit {
            to: OwnerId(5),
            from: OwnerId::MAX
        }));
        assert!(!hit(Owner::Transit {
            to: OwnerId(6),
            from: OwnerId(5)
        }));
        assert!(!hit(Owner::Held(OwnerId(5))));
        assert!(!hit(Owner::Free));
    }

    #[test]
    fn owner_encoding_round_trips_and_rejects_garbage() {
        for o in [
            Owner::Free,
            Owner::Held(OwnerId::MANAGER),
            Owner::Held(OwnerId::MAX),
            Owner::Transit {
                to: OwnerId(3),
                from: OwnerId(0x7fff),
            },
            Owner::Transit {
                to: OwnerId(0),
                from: OwnerId(0),
            },
        ] {
            assert_eq!(Owner::decode(o.encode()), Some(o), "{o}");
        }
        assert_eq!(Owner::decode(0xffff_ffff), None);
        assert_eq!(Owner::decode(1 << 30 | 1 << 20), None, "held with stray bits");
        assert_eq!(Owner::decode(5), None, "free with stray bits");
    }
}
