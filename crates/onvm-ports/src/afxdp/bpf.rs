//! A minimal XDP loader: the one program an AF_XDP port needs, written as eBPF
//! instructions and loaded with the `bpf(2)` system call.
//!
//! The program is libxdp's default AF_XDP program in six instructions:
//!
//! ```text
//! r2 = *(u32 *)(r1 + 16)          // ctx->rx_queue_index
//! r1 = map_fd(xsks)               // ld_imm64, BPF_PSEUDO_MAP_FD
//! r3 = XDP_PASS                   // what happens when the queue has no socket
//! call bpf_redirect_map           // into the queue's AF_XDP socket
//! exit
//! ```
//!
//! Why not a loader crate: aya 0.14 (the newest that builds on Rust 1.95) loads programs
//! from ELF objects, which would need clang or a nightly BPF toolchain at build time for
//! six fixed instructions; libbpf/libxdp bring C build dependencies. The program is
//! attached through a BPF link (`BPF_LINK_CREATE`), so it is detached when the link's
//! file descriptor closes — also when the manager is killed — and never outlives the
//! port. Dropping the port detaches it at once (`BPF_LINK_DETACH`), even while a copy
//! of the descriptor lives on in a child process that another thread has forked and
//! not yet exec'd.

use std::io;
use std::io::Write as _;
use std::mem::size_of;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

const BPF_MAP_CREATE: libc::c_long = 0;
const BPF_MAP_UPDATE_ELEM: libc::c_long = 2;
const BPF_PROG_LOAD: libc::c_long = 5;
const BPF_LINK_CREATE: libc::c_long = 28;
const BPF_LINK_DETACH: libc::c_long = 34;

const BPF_MAP_TYPE_XSKMAP: u32 = 17;
const BPF_PROG_TYPE_XDP: u32 = 6;
/// Attach type of XDP programs (`enum bpf_attach_type`).
const BPF_XDP: u32 = 37;
const BPF_PSEUDO_MAP_FD: u8 = 1;
const BPF_FUNC_REDIRECT_MAP: i32 = 51;
const XDP_PASS: i32 = 2;

/// `XDP_FLAGS_SKB_MODE`: generic XDP, in the stack after the skb is built; any driver.
pub const XDP_FLAGS_SKB_MODE: u32 = 1 << 1;
/// `XDP_FLAGS_DRV_MODE`: native XDP in the driver; needed for zero copy.
pub const XDP_FLAGS_DRV_MODE: u32 = 1 << 2;

/// One eBPF instruction (`struct bpf_insn`).
#[repr(C)]
#[derive(Clone, Copy)]
struct Insn {
    code: u8,
    /// dst_reg in the low nibble, src_reg in the high one.
    regs: u8,
    off: i16,
    imm: i32,
}

const fn insn(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Insn {
    Insn {
        code,
        regs: dst | (src << 4),
        off,
        imm,
    }
}

/// The redirect program with `map_fd` in its map load.
fn program(map_fd: i32) -> [Insn; 6] {
    [
        // BPF_LDX | BPF_MEM | BPF_W: r2 = *(u32 *)(r1 + offsetof(xdp_md, rx_queue_index))
        insn(0x61, 2, 1, 16, 0),
        // BPF_LD | BPF_DW | BPF_IMM (two slots): r1 = the map
        insn(0x18, 1, BPF_PSEUDO_MAP_FD, 0, map_fd),
        insn(0, 0, 0, 0, 0),
        // BPF_ALU64 | BPF_MOV | BPF_K: r3 = XDP_PASS
        insn(0xb7, 3, 0, 0, XDP_PASS),
        // BPF_JMP | BPF_CALL
        insn(0x85, 0, 0, 0, BPF_FUNC_REDIRECT_MAP),
        // BPF_JMP | BPF_EXIT
        insn(0x95, 0, 0, 0, 0),
    ]
}

/// `bpf(cmd, attr)` for a command whose attribute block is `attr`; the kernel requires
/// the bytes it knows of past our fields to be zero, which the `[u64; 16]` padding of
/// every attribute struct below keeps.
fn bpf<A>(cmd: libc::c_long, attr: &mut A) -> io::Result<i32> {
    // SAFETY: `attr` is a live, exclusively borrowed block of `size_of::<A>()` bytes laid
    // out as the kernel's `union bpf_attr` member for `cmd` (repr(C), zero padded); the
    // kernel reads it and may write into it (never past the size given).
    let r = unsafe { libc::syscall(libc::SYS_bpf, cmd, attr as *mut A, size_of::<A>() as libc::c_uint) };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r as i32)
    }
}

fn owned(fd: i32) -> OwnedFd {
    // SAFETY: `fd` was just returned by bpf(2) as a new descriptor nobody else owns.
    unsafe { OwnedFd::from_raw_fd(fd) }
}

#[repr(C)]
struct MapCreate {
    map_type: u32,
    key_size: u32,
    value_size: u32,
    max_entries: u32,
    _rest: [u64; 16],
}

#[repr(C)]
struct MapUpdate {
    map_fd: u32,
    _pad: u32,
    key: u64,
    value: u64,
    flags: u64,
    _rest: [u64; 16],
}

#[repr(C)]
struct ProgLoad {
    prog_type: u32,
    insn_cnt: u32,
    insns: u64,
    license: u64,
    log_level: u32,
    log_size: u32,
    log_buf: u64,
    kern_version: u32,
    prog_flags: u32,
    prog_name: [u8; 16],
    prog_ifindex: u32,
    expected_attach_type: u32,
    _rest: [u64; 16],
}

#[repr(C)]
struct LinkCreate {
    prog_fd: u32,
    target_ifindex: u32,
    attach_type: u32,
    flags: u32,
    _rest: [u64; 16],
}

#[repr(C)]
struct LinkDetach {
    link_fd: u32,
    /// Named, so that it is zero: the kernel refuses the call when any byte past
    /// `link_fd` is not, and the compiler leaves implicit padding undefined.
    _pad: u32,
    _rest: [u64; 16],
}

/// The program attached to an interface, with its socket map. Dropping it detaches the
/// program before it returns and frees both.
#[derive(Debug)]
pub struct XdpProgram {
    map: OwnedFd,
    _prog: OwnedFd,
    link: OwnedFd,
    /// `XDP_FLAGS_DRV_MODE` or `XDP_FLAGS_SKB_MODE`: where it runs.
    pub flags: u32,
}

impl XdpProgram {
    /// Load the program with a socket map of `queues` entries and attach it to
    /// `ifindex` in native mode, or generic mode where the driver has no native XDP
    /// (or `native` is false). Needs CAP_BPF and CAP_NET_ADMIN (root).
    pub fn attach(ifindex: u32, queues: u32, native: bool) -> Result<XdpProgram, (&'static str, io::Error)> {
        let map = owned(
            bpf(
                BPF_MAP_CREATE,
                &mut MapCreate {
                    map_type: BPF_MAP_TYPE_XSKMAP,
                    key_size: 4,
                    value_size: 4,
                    max_entries: queues,
                    _rest: [0; 16],
                },
            )
            .map_err(|e| ("cannot create the XSKMAP (needs root)", e))?,
        );
        let insns = program(map.as_raw_fd());
        let license = c"Dual MIT/GPL";
        let mut log = vec![0u8; 4096];
        let mut name = [0u8; 16];
        name[..9].copy_from_slice(b"onvm_xsks");
        let mut load = ProgLoad {
            prog_type: BPF_PROG_TYPE_XDP,
            insn_cnt: insns.len() as u32,
            insns: insns.as_ptr() as u64,
            license: license.as_ptr() as u64,
            log_level: 1,
            log_size: log.len() as u32,
            log_buf: log.as_mut_ptr() as u64,
            kern_version: 0,
            prog_flags: 0,
            prog_name: name,
            prog_ifindex: 0,
            expected_attach_type: BPF_XDP,
            _rest: [0; 16],
        };
        let prog = owned(bpf(BPF_PROG_LOAD, &mut load).map_err(|e| {
            let text = String::from_utf8_lossy(&log);
            let text = text.trim_end_matches('\0').trim();
            if !text.is_empty() {
                let _ = writeln!(
                    std::io::stderr(),
                    "onvm: the kernel's verifier refused the XDP program:\n{text}"
                );
            }
            ("cannot load the XDP program", e)
        })?);
        let link = |flags| {
            bpf(
                BPF_LINK_CREATE,
                &mut LinkCreate {
                    prog_fd: prog.as_raw_fd() as u32,
                    target_ifindex: ifindex,
                    attach_type: BPF_XDP,
                    flags,
                    _rest: [0; 16],
                },
            )
        };
        let (fd, flags) = match native.then(|| link(XDP_FLAGS_DRV_MODE)) {
            Some(Ok(fd)) => (fd, XDP_FLAGS_DRV_MODE),
            _ => (
                link(XDP_FLAGS_SKB_MODE)
                    .map_err(|e| ("cannot attach the XDP program (is another XDP program attached?)", e))?,
                XDP_FLAGS_SKB_MODE,
            ),
        };
        Ok(XdpProgram {
            map,
            _prog: prog,
            link: owned(fd),
            flags,
        })
    }

    /// Steer queue `queue` to AF_XDP socket `xsk`.
    pub fn set_socket(&self, queue: u32, xsk: i32) -> io::Result<()> {
        let key = queue;
        let value = xsk as u32;
        bpf(
            BPF_MAP_UPDATE_ELEM,
            &mut MapUpdate {
                map_fd: self.map.as_raw_fd() as u32,
                _pad: 0,
                key: &key as *const u32 as u64,
                value: &value as *const u32 as u64,
                flags: 0,
                _rest: [0; 16],
            },
        )
        .map(|_| ())
    }

    /// Where the program runs, in words.
    pub fn mode(&self) -> &'static str {
        if self.flags == XDP_FLAGS_DRV_MODE {
            "native XDP"
        } else {
            "generic XDP"
        }
    }
}

impl Drop for XdpProgram {
    /// Closing the link's descriptor detaches the program only when no other copy of it
    /// is left, and there can be one: a process forked by another thread (the manager
    /// starting an NF, `ip` run by a test) holds copies of every descriptor until it
    /// execs, which a busy machine may delay for many milliseconds. Until then the
    /// program would still be attached, the interface unusable by another program.
    /// `BPF_LINK_DETACH` (Linux 5.9) detaches it now, whoever holds the descriptor.
    fn drop(&mut self) {
        let detached = bpf(
            BPF_LINK_DETACH,
            &mut LinkDetach {
                link_fd: self.link.as_raw_fd() as u32,
                _pad: 0,
                _rest: [0; 16],
            },
        );
        // EINVAL: a kernel older than 5.9; the close just after this detaches it then.
        if let Err(e) = detached
            && e.raw_os_error() != Some(libc::EINVAL)
        {
            // Never `eprintln!` (a closed stderr would panic, and this runs in a drop).
            let _ = writeln!(
                std::io::stderr(),
                "onvm: cannot detach the XDP program at once ({e}); it goes when its link closes"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instructions_encode_as_the_kernel_expects() {
        let p = program(7);
        // The map load: opcode 0x18, dst r1, src BPF_PSEUDO_MAP_FD, the fd in imm,
        // followed by an all-zero second slot.
        assert_eq!((p[1].code, p[1].regs, p[1].imm), (0x18, 0x11, 7));
        assert_eq!((p[2].code, p[2].regs, p[2].imm), (0, 0, 0));
        assert_eq!((p[0].regs, p[0].off), (0x12, 16), "r2 = *(u32 *)(r1 + 16)");
        assert_eq!(size_of::<Insn>(), 8);
    }

    #[test]
    fn loads_and_attaches_to_a_veth() {
        let Some(veth) = crate::testlink::Veth::create() else {
            return;
        };
        let idx = crate::netif::index("t", &veth.a).unwrap();
        let p = XdpProgram::attach(idx, 4, true).unwrap();
        let show = std::process::Command::new("ip")
            .args(["link", "show", &veth.a])
            .output()
            .unwrap();
        let show = String::from_utf8_lossy(&show.stdout);
        assert!(show.contains("xdp"), "ip link shows no XDP program: {show}");
        // A second program cannot take the interface while ours is attached.
        assert!(XdpProgram::attach(idx, 1, p.flags == XDP_FLAGS_DRV_MODE).is_err());
        drop(p);
        let show = std::process::Command::new("ip")
            .args(["link", "show", &veth.a])
            .output()
            .unwrap();
        let show = String::from_utf8_lossy(&show.stdout);
        assert!(!show.contains("prog/xdp"), "the program outlived its link: {show}");
    }
}
