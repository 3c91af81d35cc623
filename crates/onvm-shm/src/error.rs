//! Errors of the shared region. Each names what was wrong and the values seen, because
//! the usual cause is another process (a buggy NF or a mismatched build) and the reader
//! of the message has to find out which.

use std::io;

/// Anything that can go wrong creating, opening or using the shared region.
#[derive(Debug, thiserror::Error)]
pub enum ShmError {
    #[error("{what}: {source}")]
    Io {
        what: &'static str,
        #[source]
        source: io::Error,
    },
    #[error("bad region config: {0}")]
    Config(String),
    #[error("not an onvm region: magic is {found:#018x}, expected {expected:#018x}")]
    BadMagic { found: u64, expected: u64 },
    #[error(
        "region ABI version {found} does not match this build's {expected}; rebuild the NF against the manager's onvm-shm"
    )]
    AbiMismatch { found: u32, expected: u32 },
    #[error("region header is inconsistent: {0}")]
    BadHeader(String),
    #[error("region file is {file} bytes but its header says {header}")]
    SizeMismatch { file: u64, header: u64 },
    /// Region ids (one per mapping made in this process, see [`crate::Region::id`]) are
    /// used up.
    #[error("this process has made 2^32 - 1 region mappings; no region id is left")]
    NoRegionId,
    #[error(transparent)]
    Ring(#[from] RingError),
    #[error(transparent)]
    Buf(#[from] BufError),
}

impl ShmError {
    #[cfg_attr(loom, allow(dead_code))]
    pub(crate) fn io(what: &'static str) -> impl FnOnce(io::Error) -> ShmError {
        move |source| ShmError::Io { what, source }
    }
}

/// A ring whose shared indices cannot be right: another party corrupted it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RingError {
    #[error("ring corrupted: producer index {tail} and consumer index {head} are {} apart, capacity is {capacity}", tail.wrapping_sub(*head))]
    Corrupt { head: u32, tail: u32, capacity: u32 },
    #[error("ring {0} does not exist in this region")]
    NoSuchRing(u32),
    #[error("ring capacity {0} is not a power of two >= 2")]
    BadCapacity(usize),
    /// [`crate::Holder::enqueue`] was given a buffer of another region (a bug in this
    /// process); nothing was sent.
    #[error("buffer {index} of region #{buf_region} was given to a holder of region #{region}; nothing was sent")]
    ForeignBuf { index: u32, buf_region: u32, region: u32 },
}

/// A buffer index or buffer state that breaks the ownership protocol.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BufError {
    #[error("buffer index {index} is out of range 1..={max}")]
    OutOfRange { index: u32, max: u32 },
    #[error("buffer {index} was handed to owner {me} but its owner entry says {found}")]
    NotForMe { index: u32, me: u16, found: String },
    #[error("buffer {index} has corrupt metadata: data offset {off} + length {len} exceeds the {room}-byte buffer")]
    BadMeta { index: u32, off: u32, len: u32, room: u32 },
    #[error("owner id {0} is already attached in this process")]
    HolderTaken(u16),
    #[error("owner id {0} is out of range (max 32767)")]
    BadOwner(u16),
    #[error("packet length {want} does not fit: {room} bytes of room")]
    NoRoom { want: usize, room: usize },
    /// A [`crate::Buf`] of one region was used with another region's holder or pool.
    /// Buffer tokens never leave the process that made them, so this is a bug in this
    /// process, never a peer's doing.
    #[error("buffer {index} belongs to region #{buf_region}, not to region #{region} it was used with")]
    ForeignRegion { index: u32, buf_region: u32, region: u32 },
}
