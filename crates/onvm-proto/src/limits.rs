//! Hard limits shared by the manager, the NF library and the config checker.
//!
//! They live in one place so that a config file is rejected with a clear message at
//! `onvm up` time instead of an NF failing to register later. Every value is at least
//! openNetVM's (`onvm_common.h`), so anything that ran there fits here.

/// Number of service IDs. Valid IDs are `1..MAX_SERVICES`; 0 is reserved, as in
/// openNetVM, so that a zeroed metadata field never names a real service.
pub const MAX_SERVICES: u16 = 32;

/// Number of instance IDs. Valid IDs are `1..MAX_INSTANCES`; 0 is reserved (the manager
/// itself uses it as the "source" of packets that came from a port).
pub const MAX_INSTANCES: u16 = 128;

/// Most instances that may serve one service at the same time (openNetVM's
/// `MAX_NFS_PER_SERVICE`). Also the most instances a [`crate::rss::Reta`] spreads over.
pub const MAX_INSTANCES_PER_SERVICE: usize = 32;

/// Entries in an RSS indirection table: 256, like most NICs' RETA, so that with up to
/// 32 instances every instance owns 8 entries and shares differ by at most one entry.
pub const RETA_SIZE: usize = 256;

/// Physical ports the flow table can name (see [`crate::flow::PortNo`]).
pub const MAX_PORTS: u16 = 0x1000;

/// Longest NF tag (name shown in stats) accepted on the control channel, in bytes.
pub const MAX_TAG_LEN: usize = 64;

/// Largest NF-to-NF message payload carried on the control channel, in bytes. It keeps
/// a whole control message well inside one `SOCK_SEQPACKET` datagram.
pub const MAX_MSG_PAYLOAD: usize = 16 * 1024;

/// Rings each instance owns in the region's ring directory: rx, tx, alloc.
pub const RINGS_PER_INSTANCE: u32 = 3;

/// First ring used for direct NF→NF edges (after every instance's own rings).
pub const FIRST_EDGE_RING: u32 = RINGS_PER_INSTANCE * MAX_INSTANCES as u32;

/// Edge rings available (see [`crate::edge`]).
pub const EDGE_RINGS: u32 = 128;
