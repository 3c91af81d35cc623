//! Where everything sits in the region, computed in one place.
//!
//! The creator writes a [`Header`] at offset 0. An opener recomputes the whole layout
//! from the header's *configuration* fields with the same function and insists that the
//! header's *offsets* agree, so creator and opener can never disagree about where a
//! ring or buffer is, and a header from a different build fails loudly.
//!
//! ```text
//! 0            Header (one page)
//! rings_off    ring 0: RingCtl (4 x 128 B) + capacity x u32 slots, padded to 128 B
//!              ring 1 ...
//! bufs_off     buffer slot 0 (never used: index 0 is invalid), slot 1, ... slot N
//!              each slot: 64 B metadata line | headroom | data room, padded to 64 B
//! ```

use crate::buffer::META_SIZE;
use crate::error::ShmError;
use crate::ring::RingCtl;
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

/// "ONVM-RGN" read as a little-endian u64.
pub const MAGIC: u64 = u64::from_le_bytes(*b"ONVM-RGN");
/// Bumped on any change to the header, the ring or metadata layout, or the owner protocol.
pub const ABI_VERSION: u32 = 2;

const PAGE: u64 = 4096;

/// What the region should hold. Defaults follow openNetVM's sizes where they make sense.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegionConfig {
    /// Packet buffers in the pool (openNetVM: 32767).
    pub buffers: u32,
    /// Bytes before the packet start, for prepending headers.
    pub headroom: u32,
    /// Bytes for packet data: 2048 by default, 9216+ for jumbo frames.
    pub data_room: u32,
    /// Rings in the region (NF rx/tx rings, per-edge rings, port queues).
    pub rings: u32,
    /// Slots per ring, a power of two.
    pub ring_capacity: u32,
    /// Which pages back the region.
    pub backing: BackingChoice,
}

impl Default for RegionConfig {
    fn default() -> Self {
        RegionConfig {
            buffers: 32767,
            headroom: 128,
            data_room: 2048,
            rings: 256,
            ring_capacity: 4096,
            backing: BackingChoice::Auto,
        }
    }
}

/// How to back the region's memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackingChoice {
    /// Hugepages when enough are free, else normal pages.
    Auto,
    /// Normal pages (with transparent-hugepage advice).
    Normal,
    /// Hugepages or fail.
    Hugetlb,
}

/// The header at offset 0 of every region.
#[derive(Debug, Clone, Copy, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
pub struct Header {
    pub magic: u64,
    pub abi_version: u32,
    pub header_size: u32,
    /// Bytes of the region that the layout uses (the file may be rounded up to a page).
    pub region_size: u64,
    /// Page size of the backing memory.
    pub page_size: u64,
    pub buffers: u32,
    pub headroom: u32,
    pub data_room: u32,
    pub buf_stride: u32,
    pub rings: u32,
    pub ring_capacity: u32,
    pub rings_offset: u64,
    pub ring_stride: u64,
    pub bufs_offset: u64,
    /// The owner table: one u32 per buffer (index 0 unused).
    pub owners_offset: u64,
}

/// Offsets and sizes derived from a config.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layout {
    pub buffers: u32,
    pub headroom: u32,
    pub data_room: u32,
    pub buf_stride: u32,
    pub rings: u32,
    pub ring_capacity: u32,
    pub rings_offset: u64,
    pub ring_stride: u64,
    pub bufs_offset: u64,
    pub owners_offset: u64,
    pub size: u64,
    /// ⌈2⁶⁴ / `buf_stride`⌉, for [`Layout::locate`]'s division.
    stride_recip: u64,
}

fn round_up(v: u64, to: u64) -> u64 {
    v.div_ceil(to) * to
}

impl Layout {
    /// Most packet buffers a region holds ([`Layout::compute`] refuses more); the
    /// command line checks `--buffers` against it before anything starts.
    pub const MAX_BUFFERS: u32 = 1 << 24;
    /// Fewest bytes of packet data per buffer: a minimum Ethernet frame fits.
    pub const MIN_DATA_ROOM: u32 = 64;
    /// Most bytes of packet data per buffer.
    pub const MAX_DATA_ROOM: u32 = 1 << 20;

    /// Lay out a region; rejects sizes that make no sense with a message naming them.
    pub fn compute(
        buffers: u32,
        headroom: u32,
        data_room: u32,
        rings: u32,
        ring_capacity: u32,
    ) -> Result<Layout, ShmError> {
        let bad = |m: String| Err(ShmError::Config(m));
        if !(1..=Self::MAX_BUFFERS).contains(&buffers) {
            return bad(format!("buffers = {buffers}, must be 1..={}", Self::MAX_BUFFERS));
        }
        if !(Self::MIN_DATA_ROOM..=Self::MAX_DATA_ROOM).contains(&data_room) {
            return bad(format!(
                "data_room = {data_room}, must be {}..={} bytes",
                Self::MIN_DATA_ROOM,
                Self::MAX_DATA_ROOM
            ));
        }
        if headroom > 1 << 16 {
            return bad(format!("headroom = {headroom}, must be at most 65536 bytes"));
        }
        if !(1..=65535).contains(&rings) {
            return bad(format!("rings = {rings}, must be 1..=65535"));
        }
        if !(2..=(1 << 24)).contains(&ring_capacity) || !ring_capacity.is_power_of_two() {
            return bad(format!(
                "ring_capacity = {ring_capacity}, must be a power of two in 2..=16777216"
            ));
        }
        let buf_stride = round_up(META_SIZE as u64 + headroom as u64 + data_room as u64, 64);
        let rings_offset = PAGE;
        let ring_stride = round_up(std::mem::size_of::<RingCtl>() as u64 + 4 * ring_capacity as u64, 128);
        // The owner table sits between the rings and the buffers: 16 owner words per
        // cache line, so a burst of buffers moving between cores moves a few lines of
        // owner words instead of one metadata line per packet.
        let owners_offset = round_up(rings_offset + rings as u64 * ring_stride, 64);
        let bufs_offset = round_up(owners_offset + (buffers as u64 + 1) * 4, PAGE);
        let size = bufs_offset + (buffers as u64 + 1) * buf_stride;
        Ok(Layout {
            buffers,
            headroom,
            data_room,
            buf_stride: buf_stride as u32,
            rings,
            ring_capacity,
            rings_offset,
            ring_stride,
            bufs_offset,
            owners_offset,
            size,
            // buf_stride >= 64, so this is ⌈2⁶⁴ / buf_stride⌉ and fits.
            stride_recip: u64::MAX / buf_stride + 1,
        })
    }

    pub fn from_config(cfg: &RegionConfig) -> Result<Layout, ShmError> {
        Self::compute(cfg.buffers, cfg.headroom, cfg.data_room, cfg.rings, cfg.ring_capacity)
    }

    pub fn header(&self, page_size: u64) -> Header {
        Header {
            magic: MAGIC,
            abi_version: ABI_VERSION,
            header_size: std::mem::size_of::<Header>() as u32,
            region_size: self.size,
            page_size,
            buffers: self.buffers,
            headroom: self.headroom,
            data_room: self.data_room,
            buf_stride: self.buf_stride,
            rings: self.rings,
            ring_capacity: self.ring_capacity,
            rings_offset: self.rings_offset,
            ring_stride: self.ring_stride,
            bufs_offset: self.bufs_offset,
            owners_offset: self.owners_offset,
        }
    }

    /// Check a header read from a region of `file_size` bytes and return its layout.
    pub fn validate(h: &Header, file_size: u64) -> Result<Layout, ShmError> {
        if h.magic != MAGIC {
            return Err(ShmError::BadMagic {
                found: h.magic,
                expected: MAGIC,
            });
        }
        if h.abi_version != ABI_VERSION {
            return Err(ShmError::AbiMismatch {
                found: h.abi_version,
                expected: ABI_VERSION,
            });
        }
        let bad = |m: String| Err(ShmError::BadHeader(m));
        if h.header_size as usize != std::mem::size_of::<Header>() {
            return bad(format!(
                "header_size {} != {}",
                h.header_size,
                std::mem::size_of::<Header>()
            ));
        }
        let l = Self::compute(h.buffers, h.headroom, h.data_room, h.rings, h.ring_capacity)
            .or_else(|e| bad(format!("its configuration is invalid ({e})")))?;
        let want = l.header(h.page_size);
        for (name, got, exp) in [
            ("buf_stride", h.buf_stride as u64, want.buf_stride as u64),
            ("rings_offset", h.rings_offset, want.rings_offset),
            ("ring_stride", h.ring_stride, want.ring_stride),
            ("bufs_offset", h.bufs_offset, want.bufs_offset),
            ("owners_offset", h.owners_offset, want.owners_offset),
            ("region_size", h.region_size, want.region_size),
        ] {
            if got != exp {
                return bad(format!("{name} is {got}, the layout needs {exp}"));
            }
        }
        if !h.page_size.is_power_of_two() || h.page_size < PAGE {
            return bad(format!("page_size {} is not a power of two >= 4096", h.page_size));
        }
        if file_size < h.region_size || file_size != round_up(h.region_size, h.page_size) {
            return Err(ShmError::SizeMismatch {
                file: file_size,
                header: round_up(h.region_size, h.page_size),
            });
        }
        Ok(l)
    }

    /// Bytes the file needs with pages of `page_size`.
    pub fn file_size(&self, page_size: u64) -> u64 {
        round_up(self.size, page_size)
    }

    /// Offset from the start of the region of buffer `idx`'s packet area (headroom, then
    /// data room). Ports whose hardware or kernel writes packets straight into the region
    /// (AF_XDP's UMEM) address buffers this way.
    pub fn area_offset(&self, idx: u32) -> u64 {
        self.bufs_offset + u64::from(idx) * u64::from(self.buf_stride) + META_SIZE as u64
    }

    /// The buffer whose packet area holds region offset `off`, and how far into that area
    /// `off` is; `None` for offsets outside every valid buffer's area (the header, rings,
    /// metadata lines, slot 0, past the end).
    pub fn locate(&self, off: u64) -> Option<(u32, u32)> {
        let rel = off.checked_sub(self.bufs_offset)?;
        // rel / stride as a multiply by the reciprocal: ports that are handed addresses
        // (AF_XDP, DPDK's mbufs) locate every packet they receive, and a 64-bit divide
        // costs tens of cycles. The product's high half is the quotient or one more
        // (the reciprocal is rounded up by less than 1/2⁶⁴ per unit of rel), so one
        // correction makes it exact for every offset.
        let stride = u64::from(self.buf_stride);
        let mut idx = ((u128::from(rel) * u128::from(self.stride_recip)) >> 64) as u64;
        if idx.checked_mul(stride).is_none_or(|p| p > rel) {
            idx -= 1;
        }
        let within = (rel - idx * stride).checked_sub(META_SIZE as u64)?;
        let area = u64::from(self.headroom) + u64::from(self.data_room);
        (idx >= 1 && idx <= u64::from(self.buffers) && within < area).then_some((idx as u32, within as u32))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_is_aligned_and_disjoint() {
        let l = Layout::from_config(&RegionConfig::default()).unwrap();
        assert_eq!(l.buf_stride % 64, 0);
        assert_eq!(l.buf_stride, 64 + 128 + 2048);
        assert_eq!(l.ring_stride % 128, 0);
        assert!(l.rings_offset >= std::mem::size_of::<Header>() as u64);
        assert!(l.bufs_offset >= l.rings_offset + l.rings as u64 * l.ring_stride);
        assert_eq!(l.size, l.bufs_offset + 32768 * l.buf_stride as u64);
    }

    #[test]
    fn area_offsets_locate_back_to_their_buffer() {
        let l = Layout::compute(100, 256, 2048, 4, 64).unwrap();
        for idx in [1, 2, 57, 100] {
            let a = l.area_offset(idx);
            assert_eq!(l.locate(a), Some((idx, 0)));
            assert_eq!(l.locate(a + 256), Some((idx, 256)));
            assert_eq!(l.locate(a + 256 + 2047), Some((idx, 2303)));
            // The metadata line and the bytes past the data room belong to no area.
            assert_eq!(l.locate(a - 1), None);
            assert_eq!(l.locate(a + 2304), None);
        }
        assert_eq!(l.locate(l.area_offset(0)), None, "slot 0 is never a buffer");
        // The reciprocal division agrees with plain division everywhere, the slots'
        // edges and offsets far past the region included.
        for stride_room in [64, 100, 1984, 2048, 9000] {
            let l = Layout::compute(1000, 128, stride_room, 4, 64).unwrap();
            let s = u64::from(l.buf_stride);
            let probes = (0..3000u64).map(|k| l.bufs_offset + k * s / 3 + k % 7);
            for off in probes.chain([u64::MAX, u64::MAX - 1, 1 << 63, (1 << 40) + 12345]) {
                let rel = off - l.bufs_offset;
                let plain = (rel / s, rel % s);
                let expect = plain.1.checked_sub(64).and_then(|w| {
                    (plain.0 >= 1 && plain.0 <= 1000 && w < u64::from(l.headroom + l.data_room))
                        .then_some((plain.0 as u32, w as u32))
                });
                assert_eq!(l.locate(off), expect, "offset {off}, stride {s}");
            }
        }
        assert_eq!(l.locate(l.area_offset(101)), None);
        assert_eq!(l.locate(0), None);
        assert_eq!(l.locate(u64::MAX), None);
    }

    #[test]
    fn bad_configs_name_the_field() {
        let e = |c: RegionConfig| Layout::from_config(&c).unwrap_err().to_string();
        assert!(
            e(RegionConfig {
                ring_capacity: 1000,
                ..Default::default()
            })
            .contains("ring_capacity = 1000")
        );
        assert!(
            e(RegionConfig {
                buffers: 0,
                ..Default::default()
            })
            .contains("buffers = 0")
        );
        assert!(
            e(RegionConfig {
                data_room: 10,
                ..Default::default()
            })
            .contains("data_room = 10")
        );
    }

    #[test]
    fn validate_catches_every_kind_of_mismatch() {
        let l = Layout::from_config(&RegionConfig {
            buffers: 100,
            rings: 4,
            ring_capacity: 64,
            ..Default::default()
        })
        .unwrap();
        let good = l.header(4096);
        let fsize = l.file_size(4096);
        assert_eq!(Layout::validate(&good, fsize).unwrap(), l);
        let mut h = good;
        h.magic ^= 1;
        assert!(matches!(Layout::validate(&h, fsize), Err(ShmError::BadMagic { .. })));
        let mut h = good;
        h.abi_version += 1;
        assert!(matches!(Layout::validate(&h, fsize), Err(ShmError::AbiMismatch { .. })));
        let mut h = good;
        h.bufs_offset += 64;
        assert!(
            Layout::validate(&h, fsize)
                .unwrap_err()
                .to_string()
                .contains("bufs_offset")
        );
        let mut h = good;
        h.buffers = 1 << 30;
        assert!(Layout::validate(&h, fsize).unwrap_err().to_string().contains("buffers"));
        assert!(matches!(
            Layout::validate(&good, fsize - 4096),
            Err(ShmError::SizeMismatch { .. })
        ));
    }
}
