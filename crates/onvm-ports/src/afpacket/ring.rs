//! The TPACKET_V3 receive ring of an AF_PACKET socket.
//!
//! The kernel writes received frames straight into a memory area shared with the
//! process, packed into blocks; a block whose status says `TP_STATUS_USER` belongs to
//! the process until it sets the status back to `TP_STATUS_KERNEL`. Receiving is then a
//! walk over memory with no system call per packet (and none at all when nothing
//! arrived), which is what a polling manager needs. V3 rather than V2 because variable
//! sized frames waste no memory on small packets, and because a half-full block is
//! handed over after a timeout, so the latency of a slow flow stays bounded.

use std::io;
use std::mem::{offset_of, size_of};
use std::os::fd::BorrowedFd;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU32, Ordering};

use libc::{tpacket_block_desc, tpacket_hdr_v1, tpacket3_hdr};
use rustix::mm::{MapFlags, ProtFlags};

use crate::netif::setsockopt;

/// Size of one block (a power of two, a multiple of the page size).
const BLOCK_SIZE: u32 = 1 << 18;
/// Blocks in the ring: 8 MiB in all, about 5,000 full-size or 60,000 minimum frames.
const BLOCK_NR: u32 = 32;
/// The kernel wants a frame size even for V3 (where frames are packed); it only checks it.
const FRAME_SIZE: u32 = 2048;
/// A block that is not full is handed over after this many milliseconds (the floor).
const RETIRE_MS: u32 = 1;

/// Offset of the block status word in a block.
const STATUS_OFF: usize = offset_of!(tpacket_block_desc, hdr) + offset_of!(tpacket_hdr_v1, block_status);
const NUM_PKTS_OFF: usize = offset_of!(tpacket_block_desc, hdr) + offset_of!(tpacket_hdr_v1, num_pkts);
const FIRST_OFF: usize = offset_of!(tpacket_block_desc, hdr) + offset_of!(tpacket_hdr_v1, offset_to_first_pkt);
/// The `sockaddr_ll` of a frame follows its header, aligned to `TPACKET_ALIGNMENT`.
const SLL_OFF: usize = (size_of::<tpacket3_hdr>() + libc::TPACKET_ALIGNMENT - 1) & !(libc::TPACKET_ALIGNMENT - 1);
const PKTTYPE_OFF: usize = SLL_OFF + offset_of!(libc::sockaddr_ll, sll_pkttype);

/// One received frame, borrowed from the ring until [`RxRing::advance`].
#[derive(Debug)]
pub(super) struct Frame<'a> {
    /// The captured bytes (the whole frame: the ring captures everything).
    pub data: &'a [u8],
    /// The frame's length on the wire (longer than `data` only if the block was too small).
    pub wire_len: usize,
    /// `sll_pkttype`: host, broadcast, other host, outgoing...
    pub pkttype: u8,
    /// `tp_status`: `TP_STATUS_VLAN_VALID`, `TP_STATUS_CSUMNOTREADY`, ... (see [`super::offload`]).
    pub status: u32,
    /// `tp_vlan_tci`, meaningful with `TP_STATUS_VLAN_VALID`.
    pub vlan_tci: u16,
    /// `tp_vlan_tpid`, meaningful with `TP_STATUS_VLAN_TPID_VALID`.
    pub vlan_tpid: u16,
}

/// The mapped ring and where the reader is in it.
#[derive(Debug)]
pub(super) struct RxRing {
    base: NonNull<u8>,
    /// Block being read.
    block: usize,
    /// Frames of `block` already taken.
    taken: u32,
    /// Offset in `block` of the next frame's header.
    next: usize,
}

// SAFETY: the mapping belongs to this value alone (nothing else holds `base`), and it is
// only touched through `&mut self`, so moving it to another thread is sound.
unsafe impl Send for RxRing {}

impl RxRing {
    const LEN: usize = (BLOCK_SIZE * BLOCK_NR) as usize;

    /// Switch the socket `fd` to TPACKET_V3, give it a receive ring and map the ring.
    /// Do it before binding the socket to its interface: the ring then holds nothing
    /// from other interfaces.
    pub fn new(fd: BorrowedFd<'_>) -> io::Result<RxRing> {
        setsockopt(
            fd,
            libc::SOL_PACKET,
            libc::PACKET_VERSION,
            &(libc::tpacket_versions::TPACKET_V3 as libc::c_int),
        )?;
        let req = libc::tpacket_req3 {
            tp_block_size: BLOCK_SIZE,
            tp_block_nr: BLOCK_NR,
            tp_frame_size: FRAME_SIZE,
            tp_frame_nr: BLOCK_SIZE / FRAME_SIZE * BLOCK_NR,
            tp_retire_blk_tov: RETIRE_MS,
            tp_sizeof_priv: 0,
            tp_feature_req_word: 0,
        };
        setsockopt(fd, libc::SOL_PACKET, libc::PACKET_RX_RING, &req)?;
        // SAFETY: a fresh shared mapping of the ring the socket just set up, at an address
        // the kernel chooses, so no existing memory is replaced; the length is the ring's.
        let p = unsafe {
            rustix::mm::mmap(
                std::ptr::null_mut(),
                Self::LEN,
                ProtFlags::READ | ProtFlags::WRITE,
                MapFlags::SHARED,
                fd,
                0,
            )
        }?;
        let base = NonNull::new(p.cast::<u8>()).expect("mmap never returns null on success");
        Ok(RxRing {
            base,
            block: 0,
            taken: 0,
            next: 0,
        })
    }

    /// Address of byte `off` of block `block`.
    fn at(&self, block: usize, off: usize) -> *mut u8 {
        debug_assert!(block < BLOCK_NR as usize && off < BLOCK_SIZE as usize);
        // SAFETY: the offset stays inside the mapping (checked by the callers' bounds).
        unsafe { self.base.as_ptr().add(block * BLOCK_SIZE as usize + off) }
    }

    /// The status word of the current block, shared with the kernel.
    fn status(&self) -> &AtomicU32 {
        // SAFETY: the word is inside the mapping, 4-aligned (blocks are page-aligned and the
        // offset is a multiple of 4), lives as long as `self`, and kernel and process only
        // ever access it atomically (the kernel with barriers around plain stores).
        unsafe { AtomicU32::from_ptr(self.at(self.block, STATUS_OFF).cast()) }
    }

    /// Read a `T` at `off` in the current block.
    fn read<T: Copy>(&self, off: usize) -> T {
        assert!(off + size_of::<T>() <= BLOCK_SIZE as usize);
        // SAFETY: in bounds (asserted); the block belongs to the process (its status was
        // seen as TP_STATUS_USER with acquire ordering), so the kernel is not writing it;
        // T is a plain integer or `repr(C)` struct of integers, valid for any bytes.
        unsafe { self.at(self.block, off).cast::<T>().read_unaligned() }
    }

    /// The next received frame, or `None` when the kernel has handed over nothing more.
    /// The frame stays in the ring (so a caller short of buffers can leave it there)
    /// until [`advance`](Self::advance).
    pub fn peek(&mut self) -> Option<Frame<'_>> {
        loop {
            if self.status().load(Ordering::Acquire) & libc::TP_STATUS_USER == 0 {
                return None;
            }
            let num: u32 = self.read(NUM_PKTS_OFF);
            if self.taken == 0 {
                self.next = self.read::<u32>(FIRST_OFF) as usize;
            }
            let hdr_fits = self.next + PKTTYPE_OFF < BLOCK_SIZE as usize;
            if self.taken >= num || !hdr_fits {
                // Empty or (should never be) malformed: give it back and look at the next.
                self.release();
                continue;
            }
            let hdr: tpacket3_hdr = self.read(self.next);
            let start = self.next + hdr.tp_mac as usize;
            let len = hdr.tp_snaplen as usize;
            if start + len > BLOCK_SIZE as usize {
                self.release();
                continue;
            }
            let pkttype: u8 = self.read(self.next + PKTTYPE_OFF);
            // SAFETY: in bounds (checked just above) and owned by the process, as in `read`;
            // the slice lives no longer than the `&mut self` borrow, and the block is only
            // given back through `&mut self`.
            let data = unsafe { std::slice::from_raw_parts(self.at(self.block, start), len) };
            return Some(Frame {
                data,
                wire_len: hdr.tp_len as usize,
                pkttype,
                status: hdr.tp_status,
                vlan_tci: hdr.hv1.tp_vlan_tci as u16,
                vlan_tpid: hdr.hv1.tp_vlan_tpid,
            });
        }
    }

    /// Drop the frame [`peek`](Self::peek) returned; give its block back to the kernel
    /// when it was the block's last.
    pub fn advance(&mut self) {
        let hdr: tpacket3_hdr = self.read(self.next);
        self.taken += 1;
        self.next += hdr.tp_next_offset as usize;
        if self.taken >= self.read::<u32>(NUM_PKTS_OFF) {
            self.release();
        }
    }

    /// Hand the current block back to the kernel and move on to the next one.
    fn release(&mut self) {
        self.status().store(libc::TP_STATUS_KERNEL, Ordering::Release);
        self.block = (self.block + 1) % BLOCK_NR as usize;
        self.taken = 0;
        self.next = 0;
    }
}

impl Drop for RxRing {
    fn drop(&mut self) {
        // SAFETY: the mapping made in `new`, with its length; no frame borrows it any more
        // (they borrow `self`), and it is unmapped once.
        let _ = unsafe { rustix::mm::munmap(self.base.as_ptr().cast(), Self::LEN) };
    }
}
