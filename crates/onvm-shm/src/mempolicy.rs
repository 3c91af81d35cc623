//! NUMA memory policy for part of the region: `mbind(2)`, which rustix does not wrap.
//!
//! The manager splits the buffers into one slice per NUMA node in use (see
//! [`crate::Pool::with_nodes`]) and asks the kernel to keep each slice's pages on its
//! node. The policy is `MPOL_PREFERRED`, not `MPOL_BIND`: a node whose memory is full
//! (or that has none) must not make page faults fail, since a region on the wrong node
//! is slower but still right. `MPOL_MF_MOVE` moves pages that are already there (the
//! region is populated when it is mapped, and the manager is its only user then).

use std::io;

use libc::{c_long, c_ulong};

/// `MPOL_PREFERRED` from `<linux/mempolicy.h>` (the libc crate does not export it).
const MPOL_PREFERRED: c_ulong = 1;
/// `MPOL_MF_MOVE`: migrate pages mapped only by this process to the policy's node.
const MPOL_MF_MOVE: c_ulong = 1 << 1;

/// The node mask for `mbind`: an array of unsigned longs with bit `node` set, and the
/// `maxnode` argument that goes with it.
fn node_mask(node: u16) -> (Vec<c_ulong>, c_ulong) {
    let bits = c_ulong::BITS as usize;
    let node = usize::from(node);
    let mut mask = vec![0; node / bits + 1];
    mask[node / bits] = 1 << (node % bits);
    // The kernel reads one bit fewer than `maxnode` says (libnuma passes size + 1 too).
    let maxnode = (mask.len() * bits + 1) as c_ulong;
    (mask, maxnode)
}

/// Prefer NUMA node `node` for the pages of `[addr, addr + len)` and move those already
/// faulted in. `addr` must be page-aligned (the huge page size for a hugetlb mapping),
/// else the kernel answers `EINVAL`; a node that does not exist or has no memory the
/// process may use is `EINVAL` too.
pub(crate) fn prefer_node(addr: *mut u8, len: usize, node: u16) -> io::Result<()> {
    let (mask, maxnode) = node_mask(node);
    // SAFETY: mbind reads `maxnode - 1` bits from `mask`, a live array of exactly that
    // many bits, and writes no user memory. It changes which physical pages back the
    // range, never their contents, so no Rust reference into the range is affected; an
    // address range that is not mapped is an error return (EFAULT/ENOMEM), not a
    // memory access. Every argument is passed as a full-width long, as the kernel's
    // six-argument entry expects.
    let r = unsafe {
        libc::syscall(
            libc::SYS_mbind,
            addr as c_ulong,
            len as c_ulong,
            MPOL_PREFERRED,
            mask.as_ptr() as c_ulong,
            maxnode,
            MPOL_MF_MOVE,
        )
    };
    if r == 0 as c_long {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_masks_set_one_bit_and_count_one_extra() {
        let bits = c_ulong::BITS as usize;
        assert_eq!(node_mask(0), (vec![1], bits as c_ulong + 1));
        assert_eq!(node_mask(1).0, vec![2]);
        let (m, max) = node_mask(bits as u16 + 3);
        assert_eq!(m, vec![0, 1 << 3]);
        assert_eq!(max, 2 * bits as c_ulong + 1);
    }
}
