//! The DPDK port (`dpdk:DEVARGS`, cargo feature `dpdk`), linked against Debian's libdpdk
//! 22.11 through pkg-config.
//!
//! **Zero copy**: the mbufs of the port carry pinned external buffers, and mbuf *i*'s
//! buffer is the packet area of onvm buffer *i + 1* in the shared region. Their mempool
//! is served by a small mempool driver (`onvm_pool`, in `csrc/dpdk_shim.c`) whose get and
//! put are the manager's own [`Pool`]: when a PMD refills its receive ring it takes free
//! onvm buffers, and when it is done transmitting one, the buffer is free again. One
//! free list, one audit: a buffer a PMD holds is, for the pool, held by the port, and
//! [`Port::release`] gets every one back.
//!
//! The pool is `&mut` and only lent to a port for the duration of a call, so the driver's
//! callbacks find it through a thread-local set around each call into DPDK
//! ([`with_pool`]); a buffer a PMD frees outside any call waits in a list and is freed on
//! the next one.
//!
//! **Copy mode** for `net_af_xdp`: that PMD makes its UMEM out of the mempool's own
//! memory and writes frames just after each mbuf header, which external buffers do not
//! have; it gets a plain DPDK mempool and the port copies at its edge. (The native
//! `afxdp:` port is the zero-copy AF_XDP path.)
//!
//! **VLAN tags**: a PMD that took a frame's outer tag out (`RTE_MBUF_F_RX_VLAN_STRIPPED`,
//! its TCI in `vlan_tci`) gets it put back after the MAC addresses, in the buffer's
//! headroom, as the `afpacket:` port does ([`VlanTag::push`]), so the packets handed on
//! are the frames as they were on the wire. `net_af_packet` is such a PMD whatever it is
//! asked: the kernel takes the outer 802.1Q or 802.1ad tag out of every frame a packet
//! socket receives, and the PMD (DPDK 22.11, `eth_af_packet_rx`) copies `tp_vlan_tci`
//! into `vlan_tci` and sets `RTE_MBUF_F_RX_VLAN | RTE_MBUF_F_RX_VLAN_STRIPPED`. Without
//! the VLAN strip offload it then calls `rte_vlan_insert` itself, which refuses our
//! external-buffer mbufs (they are not direct) and logs an error per frame, so for
//! `net_af_packet` the port asks for the offload and puts the tag back itself. The mbuf
//! has no TPID and the PMD ignores `tp_vlan_tpid` (its TPACKET_V2 ring has one), so the
//! tag goes back as 802.1Q (0x8100), as `rte_vlan_insert` would put it: **an outer
//! 802.1ad tag (0x88a8) comes out of a `net_af_packet` port as 802.1Q**, with its TCI,
//! and an inner tag of a QinQ frame, never taken out, as it was. (The `afpacket:` port
//! reads `tp_vlan_tpid` and keeps it.) Transmitting, tags are in the frame's bytes and
//! no TX VLAN flag is set: they are sent as they are.
//!
//! EAL starts once per process, at the first DPDK port, with `--in-memory --no-pci`,
//! on hugepages when enough are free (else `--no-huge --no-shconf`), plus `$ONVM_DPDK_ARGS`.

use std::cell::Cell;
use std::ffi::{CStr, CString, c_char, c_void};
use std::io;
use std::io::Write as _;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use onvm_proto::port::{DpdkSpec, IfaceSpec};
use onvm_shm::{Buf, Layout, Pool, Region};

use crate::afpacket::offload::{TAG_LEN, TPID_8021Q, VlanTag};
use crate::{BadBuffers, Port, PortError, PortStats, fill, now_ns};

mod ffi {
    use std::ffi::{c_char, c_int, c_void};

    /// `struct rte_mbuf`, opaque.
    #[repr(C)]
    pub struct Mbuf {
        _p: [u8; 0],
    }
    /// `struct rte_mempool`, opaque.
    #[repr(C)]
    pub struct Mempool {
        _p: [u8; 0],
    }

    unsafe extern "C" {
        pub fn onvm_dpdk_init(argc: c_int, argv: *mut *mut c_char) -> c_int;
        pub fn onvm_dpdk_probe(devargs: *const c_char, name: *const c_char, port: *mut u16) -> c_int;
        pub fn onvm_dpdk_ext_pool(
            name: *const c_char,
            region: *mut c_void,
            region_len: usize,
            first: *mut c_char,
            stride: u32,
            count: u32,
            buf_len: u16,
            table: *mut *mut Mbuf,
        ) -> *mut Mempool;
        pub fn onvm_dpdk_copy_pool(name: *const c_char, n: u32, data_room: u16) -> *mut Mempool;
        pub fn onvm_dpdk_start(
            port: u16,
            mp: *mut Mempool,
            nq: u16,
            mtu: u16,
            promisc: c_int,
            vlan_strip: c_int,
            mac: *const u8,
            step: *mut *const c_char,
        ) -> c_int;
        pub fn onvm_dpdk_stop(port: u16);
        pub fn onvm_dpdk_rx(port: u16, q: u16, pkts: *mut *mut Mbuf, n: u16) -> u16;
        pub fn onvm_dpdk_tx(port: u16, q: u16, pkts: *mut *mut Mbuf, n: u16) -> u16;
        pub fn onvm_dpdk_stats(port: u16, out: *mut u64) -> c_int;
        pub fn onvm_mbuf_buf_addr(m: *const Mbuf) -> *mut c_void;
        pub fn onvm_mbuf_data(m: *mut Mbuf) -> *mut c_void;
        pub fn onvm_mbuf_set(m: *mut Mbuf, off: u16, len: u16);
        pub fn onvm_mbuf_alloc(mp: *mut Mempool) -> *mut Mbuf;
        pub fn onvm_mbuf_free(m: *mut Mbuf);
        pub fn onvm_dpdk_pool_flush(mp: *mut Mempool);
        pub fn onvm_mbuf_rx_info(
            m: *const Mbuf,
            buf_addr: *mut *mut c_void,
            off: *mut u16,
            len: *mut u32,
            segs: *mut u16,
            tci: *mut u16,
        ) -> c_int;
        pub fn onvm_dpdk_strerror(e: c_int) -> *const c_char;
    }
}

use ffi::{Mbuf, Mempool};

/// The external-buffer mbuf pool over one region, and the buffers PMDs hold.
struct Shared {
    mempool: NonNull<Mempool>,
    /// `table[i]` is the mbuf of buffer `i + 1`.
    table: Vec<NonNull<Mbuf>>,
    base: usize,
    layout: Layout,
    /// Buffers a PMD has (receive rings, transmissions not yet freed), by index.
    parked: Vec<Option<Buf>>,
    /// Buffers a PMD freed while no pool was lent: freed at the next call.
    limbo: Vec<u32>,
    /// Free buffers as last seen (the driver's `get_count`).
    free_seen: u32,
    /// Ports using this pool that are not released yet.
    open_ports: usize,
    /// True while DPDK populates the mempool: its puts are the mbufs being created.
    populating: bool,
}

// SAFETY: the raw pointers are DPDK objects that live for the rest of the process
// (mempools are never freed) and are used only with the mutex held.
unsafe impl Send for Shared {}

static SHARED: Mutex<Option<Shared>> = Mutex::new(None);
static EAL: OnceLock<Result<(), String>> = OnceLock::new();

thread_local! {
    /// The pool lent for the current call into DPDK (see [`with_pool`]).
    static LENT: Cell<Option<NonNull<Pool>>> = const { Cell::new(None) };
}

fn shared() -> MutexGuard<'static, Option<Shared>> {
    SHARED.lock().unwrap_or_else(|e| e.into_inner())
}

/// Run `f` (which calls into DPDK) with `pool` lent to the mempool driver.
fn with_pool<R>(pool: &mut Pool, f: impl FnOnce() -> R) -> R {
    let prev = LENT.with(|l| l.replace(Some(NonNull::from(&mut *pool))));
    let r = f();
    LENT.with(|l| l.set(prev));
    r
}

/// The lent pool, if any. The caller must not keep the reference past the callback.
fn lent<'a>() -> Option<&'a mut Pool> {
    // SAFETY: the pointer was made from a `&mut Pool` that `with_pool` holds borrowed,
    // unused, for as long as it is set; callbacks run synchronously inside that call on
    // this thread, and each uses the reference only until it returns.
    LENT.with(|l| l.get()).map(|mut p| unsafe { p.as_mut() })
}

fn index_of(sh: &Shared, m: *const Mbuf) -> Option<u32> {
    // SAFETY: `m` is an mbuf of our mempool (DPDK hands the driver only its own objects).
    index_at(sh, unsafe { ffi::onvm_mbuf_buf_addr(m) } as usize)
}

/// The buffer whose packet area starts at `addr` (an mbuf's `buf_addr`).
fn index_at(sh: &Shared, addr: usize) -> Option<u32> {
    let (idx, within) = sh.layout.locate(addr.checked_sub(sh.base)? as u64)?;
    (within == 0).then_some(idx)
}

fn flush_limbo(sh: &mut Shared, pool: &mut Pool) {
    for idx in std::mem::take(&mut sh.limbo) {
        if let Some(b) = sh.parked[idx as usize].take() {
            pool.free(b);
        }
    }
    sh.free_seen = pool.free_count();
}

/// Mempool driver: take `n` free buffers (all or none) and give their mbufs.
#[unsafe(no_mangle)]
extern "C" fn onvm_pool_get(objs: *mut *mut c_void, n: u32) -> i32 {
    let mut g = shared();
    let (Some(sh), Some(pool)) = (g.as_mut(), lent()) else {
        return -libc::ENOBUFS;
    };
    flush_limbo(sh, pool);
    if pool.free_count() < n {
        return -libc::ENOBUFS;
    }
    for i in 0..n as usize {
        let b = pool.alloc().expect("counted free just above");
        let idx = b.index() as usize;
        // SAFETY: DPDK passes room for `n` object pointers.
        unsafe { *objs.add(i) = sh.table[idx - 1].as_ptr().cast() };
        sh.parked[idx] = Some(b);
    }
    sh.free_seen = pool.free_count();
    0
}

/// Mempool driver: these mbufs are free again, so are their buffers.
#[unsafe(no_mangle)]
extern "C" fn onvm_pool_put(objs: *const *mut c_void, n: u32) -> i32 {
    let mut g = shared();
    let Some(sh) = g.as_mut() else { return 0 };
    if sh.populating {
        return 0;
    }
    let mut pool = lent();
    for i in 0..n as usize {
        // SAFETY: DPDK passes `n` valid object pointers of this mempool.
        let m = unsafe { *objs.add(i) } as *const Mbuf;
        let Some(idx) = index_of(sh, m) else { continue };
        match pool.as_deref_mut() {
            Some(p) => {
                if let Some(b) = sh.parked[idx as usize].take() {
                    p.free(b);
                }
            }
            None => sh.limbo.push(idx),
        }
    }
    if let Some(p) = pool {
        sh.free_seen = p.free_count();
    }
    0
}

/// Mempool driver: free objects as last seen.
#[unsafe(no_mangle)]
extern "C" fn onvm_pool_count() -> u32 {
    shared().as_ref().map_or(0, |s| s.free_seen)
}

fn dpdk_error(e: i32) -> String {
    // SAFETY: rte_strerror returns a pointer to a static or thread-local NUL-terminated
    // string, valid until the next call on this thread; it is copied at once.
    unsafe { CStr::from_ptr(ffi::onvm_dpdk_strerror(e.abs())) }
        .to_string_lossy()
        .into_owned()
}

/// Start EAL once per process.
fn eal() -> Result<(), String> {
    EAL.get_or_init(|| {
        let mut args: Vec<String> = [
            "onvm",
            "--in-memory",
            "--no-pci",
            "--no-telemetry",
            "--iova-mode=va",
            "--log-level=lib.eal:warning",
            "-l",
            "0",
        ]
        .map(String::from)
        .into();
        let free_huge = std::fs::read_to_string("/proc/meminfo")
            .ok()
            .and_then(|m| {
                m.lines()
                    .find(|l| l.starts_with("HugePages_Free:"))
                    .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
            })
            .unwrap_or(0);
        if free_huge < 64 {
            // Without hugepages EAL runs in legacy memory mode, which it refuses together
            // with --in-memory; --no-shconf alone keeps it from writing files then.
            args.retain(|a| a != "--in-memory");
            args.extend(["--no-huge", "--no-shconf", "-m", "256"].map(String::from));
        }
        if let Ok(extra) = std::env::var("ONVM_DPDK_ARGS") {
            args.extend(extra.split_whitespace().map(String::from));
        }
        let cargs: Vec<CString> = args
            .iter()
            .map(|a| CString::new(a.as_str()).map_err(|_| format!("EAL argument {a:?} contains a NUL")))
            .collect::<Result<_, _>>()?;
        let mut ptrs: Vec<*mut c_char> = cargs.iter().map(|c| c.as_ptr().cast_mut()).collect();
        // SAFETY: argv of `ptrs.len()` NUL-terminated strings that outlive the call (EAL
        // may keep pointers into them, so they are leaked below); called once.
        let r = unsafe { ffi::onvm_dpdk_init(ptrs.len() as i32, ptrs.as_mut_ptr()) };
        std::mem::forget(cargs);
        if r < 0 {
            return Err(format!("EAL init ({}) failed: {}", args.join(" "), dpdk_error(r)));
        }
        Ok(())
    })
    .clone()
}

/// The external-buffer mempool over `region`, created on first use.
fn ext_pool(region: &Arc<Region>) -> Result<NonNull<Mempool>, String> {
    static POOLS: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let mut g = shared();
    if let Some(sh) = g.as_mut() {
        if sh.base == region.base_ptr() as usize {
            sh.open_ports += 1;
            return Ok(sh.mempool);
        }
        if sh.open_ports > 0 {
            return Err("DPDK ports of one process must share one packet region".into());
        }
        // Every port of the old region is released (tests make one region after
        // another): its mempool stays allocated, unused, and a new one is made.
    }
    let layout = *region.layout();
    let count = layout.buffers;
    let buf_len = u16::try_from(layout.headroom + layout.data_room)
        .map_err(|_| "DPDK mbufs hold at most 65535 bytes of headroom + data room".to_string())?;
    let mut table: Vec<*mut Mbuf> = vec![std::ptr::null_mut(); count as usize];
    let base = region.base_ptr();
    *g = Some(Shared {
        mempool: NonNull::dangling(),
        table: Vec::new(),
        base: base as usize,
        layout,
        parked: (0..=count).map(|_| None).collect(),
        limbo: Vec::new(),
        free_seen: 0,
        open_ports: 1,
        populating: true,
    });
    drop(g);
    let seq = POOLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let name = CString::new(format!("onvm_ext{seq}")).expect("no NUL");
    // SAFETY: `base`/`size` is the live mapping of the region, which outlives the
    // mempool's use (the manager keeps the region until after its ports are released);
    // buffer 1's area and every later one lie inside it at `stride` steps; `table` has
    // room for `count` pointers.
    let mp = unsafe {
        ffi::onvm_dpdk_ext_pool(
            name.as_ptr(),
            base.cast(),
            region.size(),
            base.add(layout.area_offset(1) as usize).cast(),
            layout.buf_stride,
            count,
            buf_len,
            table.as_mut_ptr(),
        )
    };
    let mut g = shared();
    let sh = g.as_mut().expect("set above");
    sh.populating = false;
    let Some(mp) = NonNull::new(mp) else {
        *g = None;
        return Err("cannot create the mbuf pool over the packet region".into());
    };
    sh.mempool = mp;
    sh.table = table
        .into_iter()
        .map(|m| NonNull::new(m).ok_or("the mbuf pool has fewer mbufs than the region has buffers"))
        .collect::<Result<_, _>>()?;
    Ok(mp)
}

/// Put `tag` (if any) back in front of the frame `buf` holds, in its headroom. False (the
/// frame unchanged) when there is no headroom for it or the frame has no Ethernet header:
/// the caller drops the frame and counts it.
fn put_back_tag(pool: &Pool, buf: &mut Buf, tag: Option<VlanTag>) -> Result<bool, onvm_shm::BufError> {
    let Some(tag) = tag else { return Ok(true) };
    let mut p = pool.holder().packet(buf)?;
    if p.prepend(TAG_LEN).is_err() {
        return Ok(false);
    }
    if tag.push(p.data_mut()) {
        return Ok(true);
    }
    p.strip(TAG_LEN)?;
    Ok(false)
}

/// Where a DPDK port is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Probed; configured and started at the first poll.
    Probed,
    Started,
    /// Starting failed (reported once); the port passes nothing.
    Failed,
    /// Stopped and closed by [`Port::release`].
    Released,
}

/// How packets cross the port's edge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// mbufs over region buffers.
    ZeroCopy,
    /// A private DPDK mempool; bytes copied.
    Copy,
}

/// One DPDK ethdev (`dpdk:DEVARGS`).
#[derive(Debug)]
pub struct DpdkPort {
    name: String,
    port_no: u16,
    port_id: u16,
    mode: Mode,
    /// Queues, MTU, MAC, promiscuity: applied at start.
    opts: IfaceSpec,
    /// Ask for the RX VLAN strip offload (`net_af_packet`: see the module doc).
    vlan_strip: bool,
    /// The receive queues this object polls: every queue of the device but those split
    /// off for switch lanes ([`Port::queues`]); a split-off queue polls its own.
    rx_qs: Vec<u16>,
    /// Where the next receive starts in `rx_qs`.
    next_q: usize,
    /// The transmit queue: 0 for the port, a split-off queue's own (never 0) for it
    /// ([`DpdkPort::split`]).
    tx_q: u16,
    /// The device runs: set by the port that started it, read by its split-off queues
    /// on other threads.
    started: Arc<AtomicBool>,
    mempool: NonNull<Mempool>,
    state: State,
    data_room: usize,
    stats: PortStats,
    bad: BadBuffers,
    mbufs: Vec<*mut Mbuf>,
}

// SAFETY: the port's pointers are DPDK objects that live for the process; the port is
// used from one thread at a time (`Port` is `Send`, not `Sync`).
unsafe impl Send for DpdkPort {}

impl DpdkPort {
    /// Start EAL if needed, probe the device `spec.devargs` names and prepare its
    /// mempool. The device is configured and started at the first poll, when the pool
    /// is lent.
    pub fn open(spec: &DpdkSpec, port_no: u16, region: &Arc<Region>) -> Result<DpdkPort, PortError> {
        let name = format!("dpdk:{spec}");
        let devargs = spec.devargs.as_str();
        let err = |what: String| PortError::Os {
            spec: name.clone(),
            what,
            source: io::Error::other("DPDK"),
        };
        eal().map_err(err)?;
        let dev = devargs.split(',').next().unwrap_or(devargs);
        let c_args = CString::new(devargs).map_err(|_| err("device arguments contain a NUL".into()))?;
        let c_name = CString::new(dev).map_err(|_| err("device name contains a NUL".into()))?;
        let mut port_id = 0u16;
        // SAFETY: two NUL-terminated strings and a live u16, for the duration of the call.
        let r = unsafe { ffi::onvm_dpdk_probe(c_args.as_ptr(), c_name.as_ptr(), &mut port_id) };
        if r < 0 {
            return Err(err(format!("cannot probe the device: {}", dpdk_error(r))));
        }
        let layout = *region.layout();
        let (mode, mempool) = if dev.starts_with("net_af_xdp") {
            let pname = CString::new(format!("onvm_copy{port_no}")).expect("no NUL");
            let room = u16::try_from(layout.data_room).unwrap_or(u16::MAX);
            // SAFETY: a NUL-terminated name; plain values.
            let mp = unsafe { ffi::onvm_dpdk_copy_pool(pname.as_ptr(), 8191, room) };
            let mp = NonNull::new(mp).ok_or_else(|| err("cannot create the copy-mode mbuf pool".into()))?;
            (Mode::Copy, mp)
        } else {
            (Mode::ZeroCopy, ext_pool(region).map_err(err)?)
        };
        Ok(DpdkPort {
            name,
            port_no,
            port_id,
            mode,
            opts: spec.opts.clone(),
            vlan_strip: dev.starts_with("net_af_packet") || dev.starts_with("eth_af_packet"),
            rx_qs: (0..spec.opts.queues).collect(),
            next_q: 0,
            tx_q: 0,
            started: Arc::new(AtomicBool::new(false)),
            mempool,
            state: State::Probed,
            data_room: layout.data_room as usize,
            stats: PortStats::default(),
            bad: BadBuffers::default(),
            mbufs: Vec::with_capacity(64),
        })
    }

    /// A queue split off for a switch lane ([`Port::queues`]), which sends on its own
    /// queue: it polls and sends once the port that keeps queue 0 has started the device
    /// (`started`), and never starts, counts or stops the device itself.
    fn split(&self) -> bool {
        self.tx_q != 0
    }

    /// Configure and start the device (once), with `pool` lent for the PMD's first
    /// buffers. Whether it runs.
    fn start(&mut self, pool: &mut Pool) -> bool {
        if self.split() {
            return self.started.load(Ordering::Acquire);
        }
        if self.state != State::Probed {
            return self.state == State::Started;
        }
        let mut step: *const c_char = std::ptr::null();
        let (id, mp) = (self.port_id, self.mempool.as_ptr());
        let o = &self.opts;
        let mtu = o.mtu.map_or(0, |m| m.min(u32::from(u16::MAX)) as u16);
        let mac = o.mac.as_ref().map_or(std::ptr::null(), |m| m.as_ptr());
        let (nq, promisc, strip) = (o.queues, i32::from(o.promisc), i32::from(self.vlan_strip));
        // SAFETY: a probed port id, a live mempool, a live out-pointer, and a MAC of six
        // bytes (or null) that outlives the call.
        let r = with_pool(pool, || unsafe {
            ffi::onvm_dpdk_start(id, mp, nq, mtu, promisc, strip, mac, &mut step)
        });
        if r != 0 {
            let what = if step.is_null() {
                "start".into()
            } else {
                // SAFETY: the shim sets `step` to one of its string literals.
                unsafe { CStr::from_ptr(step) }.to_string_lossy().into_owned()
            };
            let _ = writeln!(
                std::io::stderr(),
                "onvm: port {}: cannot {what}: {}",
                self.name,
                dpdk_error(r)
            );
            self.state = State::Failed;
            return false;
        }
        self.state = State::Started;
        self.started.store(true, Ordering::Release);
        true
    }

    /// The device's own counters: (missed + no mbuf, errors).
    fn device_counters(&self) -> (u64, u64) {
        if self.split() || self.state != State::Started {
            return (0, 0);
        }
        let mut s = [0u64; 6];
        // SAFETY: a started port and room for the six counters the shim writes.
        if unsafe { ffi::onvm_dpdk_stats(self.port_id, s.as_mut_ptr()) } != 0 {
            return (0, 0);
        }
        (s[2] + s[5], s[3] + s[4])
    }
}

impl Port for DpdkPort {
    fn name(&self) -> &str {
        &self.name
    }

    fn describe(&self) -> String {
        format!(
            "{}: DPDK port {}, {}",
            self.name,
            self.port_id,
            match self.mode {
                Mode::ZeroCopy => "zero-copy (mbufs over the packet region)",
                Mode::Copy => "copy mode (the PMD owns its packet memory)",
            }
        )
    }

    fn rx_burst(&mut self, pool: &mut Pool, out: &mut Vec<Buf>, max: usize) -> usize {
        if !self.start(pool) {
            return 0;
        }
        let want = max.min(64) as u16;
        self.mbufs.clear();
        self.mbufs.resize(usize::from(want), std::ptr::null_mut());
        let mut n = 0usize;
        let nq = self.rx_qs.len();
        for k in 0..nq {
            if n == usize::from(want) {
                break;
            }
            let q = self.rx_qs[(self.next_q + k) % nq];
            let (id, pkts, room) = (self.port_id, self.mbufs[n..].as_mut_ptr(), want - n as u16);
            // SAFETY: a started port and one of its queues, polled by this object alone;
            // `pkts` has room for `room` pointers.
            n += usize::from(with_pool(pool, || unsafe { ffi::onvm_dpdk_rx(id, q, pkts, room) }));
        }
        self.next_q = (self.next_q + 1) % nq.max(1);
        let now = now_ns();
        let mut got = 0;
        let mut chains = Vec::new();
        let mut g = shared();
        for &m in &self.mbufs[..n] {
            let (mut addr, mut off, mut len, mut segs, mut tci) = (std::ptr::null_mut(), 0u16, 0u32, 0u16, 0u16);
            // SAFETY: `m` is an mbuf the PMD just returned to us; the outputs are live locals.
            let stripped =
                unsafe { ffi::onvm_mbuf_rx_info(m, &mut addr, &mut off, &mut len, &mut segs, &mut tci) } != 0;
            // A tag the PMD took out goes back as 802.1Q: the mbuf has no TPID (module doc).
            let tag = stripped.then_some(VlanTag { tpid: TPID_8021Q, tci });
            let wire_len = u64::from(len) + if tag.is_some() { TAG_LEN as u64 } else { 0 };
            match self.mode {
                Mode::ZeroCopy => {
                    let sh = g.as_mut().expect("zero-copy ports have the shared pool");
                    let Some(mut buf) = index_at(sh, addr as usize).and_then(|i| sh.parked[i as usize].take()) else {
                        self.stats.errors += 1;
                        continue;
                    };
                    if segs != 1 {
                        // A chain goes back whole through DPDK, which frees every
                        // segment (their buffers are parked too) and leaves each mbuf
                        // unchained, as `onvm_mbuf_set` expects. Not here: that calls
                        // the driver, which takes the lock this loop holds.
                        self.stats.errors += 1;
                        let idx = buf.index() as usize;
                        sh.parked[idx] = Some(buf);
                        chains.push(m);
                        continue;
                    }
                    let index = buf.index();
                    let framed = pool
                        .holder()
                        .packet_reset(&mut buf)
                        .and_then(|mut p| {
                            p.set_bounds(usize::from(off), len as usize)?;
                            p.meta().set_in_port(self.port_no);
                            p.meta().set_timestamp(now);
                            Ok(())
                        })
                        .and_then(|()| put_back_tag(pool, &mut buf, tag));
                    match framed {
                        Ok(true) => {
                            self.stats.rx_bytes += wire_len;
                            out.push(buf);
                            got += 1;
                        }
                        Ok(false) => {
                            self.stats.errors += 1;
                            pool.free(buf);
                        }
                        Err(e) => {
                            self.bad.count(&mut self.stats, "receiving into", index, &e);
                            pool.free(buf);
                        }
                    }
                }
                Mode::Copy => {
                    if segs == 1
                        && (len as usize) <= self.data_room
                        && let Some(mut buf) = pool.alloc()
                    {
                        // SAFETY: a one-segment mbuf: `len` bytes at its data pointer.
                        let bytes =
                            unsafe { std::slice::from_raw_parts(ffi::onvm_mbuf_data(m).cast::<u8>(), len as usize) };
                        let framed = fill(pool, &mut buf, bytes, self.port_no, now)
                            .and_then(|()| put_back_tag(pool, &mut buf, tag));
                        match framed {
                            Ok(true) => {
                                self.stats.rx_bytes += wire_len;
                                out.push(buf);
                                got += 1;
                            }
                            Ok(false) => {
                                self.stats.errors += 1;
                                pool.free(buf);
                            }
                            Err(e) => {
                                self.bad.count(&mut self.stats, "receiving into", buf.index(), &e);
                                pool.free(buf);
                            }
                        }
                    } else if segs != 1 || len as usize > self.data_room {
                        self.stats.errors += 1;
                    } else {
                        self.stats.rx_drop += 1;
                    }
                    // SAFETY: the mbuf is ours and no longer used.
                    unsafe { ffi::onvm_mbuf_free(m) };
                }
            }
        }
        drop(g);
        if !chains.is_empty() {
            with_pool(pool, || {
                for m in chains {
                    // SAFETY: a received mbuf chain we own and no longer use.
                    unsafe { ffi::onvm_mbuf_free(m) };
                }
            });
        }
        self.stats.rx += got as u64;
        got
    }

    fn tx_burst(&mut self, pool: &mut Pool, bufs: &mut Vec<Buf>) -> usize {
        if !self.start(pool) {
            let n = bufs.len() as u64;
            for b in bufs.drain(..) {
                pool.free(b);
            }
            self.stats.tx_drop += n;
            return 0;
        }
        let mut sent = 0;
        while !bufs.is_empty() {
            let take = bufs.len().min(64);
            self.mbufs.clear();
            // The framed packets' lengths, for the byte count of those the device takes.
            let mut lens = [0u16; 64];
            {
                let mut g = shared();
                for mut b in bufs.drain(..take) {
                    let index = b.index();
                    let p = match pool.holder().packet(&mut b) {
                        Ok(p) => p,
                        Err(e) => {
                            self.bad.count(&mut self.stats, "sending", index, &e);
                            self.stats.tx_drop += 1;
                            pool.free(b);
                            continue;
                        }
                    };
                    let (off, len) = (p.headroom() as u16, p.len() as u16);
                    let m = match self.mode {
                        Mode::ZeroCopy => {
                            let sh = g.as_mut().expect("zero-copy ports have the shared pool");
                            let idx = b.index() as usize;
                            let m = sh.table[idx - 1].as_ptr();
                            // SAFETY: the mbuf of a buffer we hold: nobody else uses it.
                            unsafe { ffi::onvm_mbuf_set(m, off, len) };
                            sh.parked[idx] = Some(b);
                            m
                        }
                        Mode::Copy => {
                            // SAFETY: a live mempool.
                            let m = unsafe { ffi::onvm_mbuf_alloc(self.mempool.as_ptr()) };
                            if m.is_null() {
                                self.stats.tx_drop += 1;
                                pool.free(b);
                                continue;
                            }
                            // SAFETY: a fresh mbuf of `data_room` bytes past the default
                            // headroom; the packet fits (our data room is its data room).
                            unsafe {
                                ffi::onvm_mbuf_set(m, 128, len);
                                std::ptr::copy_nonoverlapping(
                                    p.data().as_ptr(),
                                    ffi::onvm_mbuf_data(m).cast::<u8>(),
                                    usize::from(len),
                                );
                            }
                            pool.free(b);
                            m
                        }
                    };
                    lens[self.mbufs.len()] = len;
                    self.mbufs.push(m);
                }
            }
            let (id, q, pkts, n) = (
                self.port_id,
                self.tx_q,
                self.mbufs.as_mut_ptr(),
                self.mbufs.len() as u16,
            );
            // SAFETY: a started port, a transmit queue this object alone sends on, and
            // `n` framed mbufs.
            let done = with_pool(pool, || unsafe { ffi::onvm_dpdk_tx(id, q, pkts, n) }) as usize;
            sent += done;
            self.stats.tx_bytes += lens[..done].iter().map(|&l| u64::from(l)).sum::<u64>();
            // What the device did not take goes back at once.
            let rest: Vec<*mut Mbuf> = self.mbufs[done..].to_vec();
            self.stats.tx_drop += rest.len() as u64;
            with_pool(pool, || {
                for m in rest {
                    // SAFETY: an mbuf we framed and still own.
                    unsafe { ffi::onvm_mbuf_free(m) };
                }
            });
        }
        self.stats.tx += sent as u64;
        sent
    }

    /// The device's queues beyond the first (`queues=N`), one per switch lane, each
    /// receiving what the device's RSS puts in it and sending on its own transmit queue;
    /// this object keeps queue 0 (and any queue no lane took) and starts the device.
    /// All share the mempool: a lane's receive queue refills from the lane's pool share
    /// (the driver uses the pool lent by the calling thread) and what a lane sends goes
    /// back to its share. None once the device was polled.
    fn queues(&mut self, n: usize) -> Vec<Box<dyn Port>> {
        if self.split() || self.state != State::Probed {
            return Vec::new();
        }
        let k = n.min(self.rx_qs.len().saturating_sub(1));
        let moved: Vec<u16> = self.rx_qs.drain(1..=k).collect();
        moved
            .into_iter()
            .map(|q| {
                Box::new(DpdkPort {
                    name: format!("{} queue {q}", self.name),
                    port_no: self.port_no,
                    port_id: self.port_id,
                    mode: self.mode,
                    opts: self.opts.clone(),
                    vlan_strip: self.vlan_strip,
                    rx_qs: vec![q],
                    next_q: 0,
                    tx_q: q,
                    started: Arc::clone(&self.started),
                    mempool: self.mempool,
                    state: State::Probed,
                    data_room: self.data_room,
                    stats: PortStats::default(),
                    bad: BadBuffers::default(),
                    mbufs: Vec::with_capacity(64),
                }) as Box<dyn Port>
            })
            .collect()
    }

    fn stats(&self) -> PortStats {
        let (drops, errors) = self.device_counters();
        self.stats.plus(drops, errors)
    }

    fn take_bad_buffers(&mut self, out: &mut Vec<String>) {
        self.bad.take(out);
    }

    /// Stop and close the device (the PMD frees what its rings held), then, when it was
    /// the last DPDK port, free every buffer still lent to DPDK.
    ///
    /// A split-off queue only stops sending: the device is the port's, and the manager
    /// stops the lanes that poll its queues before it releases the port.
    fn release(&mut self, pool: &mut Pool) {
        if self.state == State::Released {
            return;
        }
        if self.split() {
            self.state = State::Released;
            return;
        }
        self.started.store(false, Ordering::Release);
        let (drops, errors) = self.device_counters();
        self.stats = self.stats.plus(drops, errors);
        if self.state != State::Probed {
            // A start that failed half-way may have filled receive rings: closing the
            // device gives those buffers back too.
            let id = self.port_id;
            // SAFETY: a configured port, stopped and closed once.
            with_pool(pool, || unsafe { ffi::onvm_dpdk_stop(id) });
        }
        self.state = State::Released;
        if self.mode == Mode::ZeroCopy {
            // What the mempool's caches hold comes back through the driver first, so no
            // cache keeps an mbuf whose buffer the pool has given to someone else.
            let mp = shared().as_ref().map(|sh| sh.mempool);
            if let Some(mp) = mp {
                // SAFETY: a live mempool (never freed); the ports on it are stopped or
                // only used from this thread, which is in this call.
                with_pool(pool, || unsafe { ffi::onvm_dpdk_pool_flush(mp.as_ptr()) });
            }
            let mut g = shared();
            if let Some(sh) = g.as_mut() {
                flush_limbo(sh, pool);
                sh.open_ports -= 1;
                if sh.open_ports == 0 {
                    for b in sh.parked.iter_mut().filter_map(Option::take) {
                        pool.free(b);
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testlink::{self, Veth};
    use crate::testutil;

    fn spec(s: &str) -> DpdkSpec {
        match format!("dpdk:{s}").parse() {
            Ok(onvm_proto::port::PortSpec::Dpdk(d)) => d,
            other => panic!("{s}: {other:?}"),
        }
    }

    /// DPDK state is per process: its tests take turns.
    fn one_at_a_time() -> MutexGuard<'static, ()> {
        static LOCK: Mutex<()> = Mutex::new(());
        LOCK.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Poll `port` until `want` frames (of any kind) arrived or 2 s passed; the buffers.
    fn receive(port: &mut DpdkPort, pool: &mut Pool, want: usize) -> Vec<Buf> {
        let mut got = Vec::new();
        let start = std::time::Instant::now();
        while got.len() < want && start.elapsed() < std::time::Duration::from_secs(2) {
            if port.rx_burst(pool, &mut got, 32) == 0 {
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
        }
        got
    }

    #[test]
    fn ring_vdev_moves_region_buffers_without_copying() {
        let _one = one_at_a_time();
        let (r, mut pool) = testutil::pool(1024, 2048);
        let mut p = DpdkPort::open(&spec("net_ring0"), 3, &r).unwrap();
        assert!(p.describe().contains("zero-copy"), "{}", p.describe());
        // net_ring's transmit ring is its receive ring: what goes out comes back in,
        // as the same mbufs, so as the same region buffers.
        let frames = testlink::frames(100, 1);
        let mut bufs = Vec::new();
        pool.alloc_burst(frames.len(), &mut bufs);
        for (b, f) in bufs.iter_mut().zip(&frames) {
            pool.holder().packet(b).unwrap().copy_from(f).unwrap();
        }
        let sent_idx: Vec<u32> = bufs.iter().map(Buf::index).collect();
        assert_eq!(p.tx_burst(&mut pool, &mut bufs), 100);
        let mut got = receive(&mut p, &mut pool, 100);
        let got_idx: Vec<u32> = got.iter().map(Buf::index).collect();
        assert_eq!(got_idx, sent_idx, "the same buffers come back: nothing was copied");
        for (b, f) in got.iter_mut().zip(&frames) {
            let pkt = pool.holder().packet(b).unwrap();
            assert_eq!(pkt.data(), &f[..]);
            assert_eq!(pkt.meta().in_port(), 3);
        }
        testutil::take(&mut pool, &mut got);
        let s = p.stats();
        assert_eq!((s.tx, s.rx, s.tx_drop, s.errors), (100, 100, 0, 0), "{s:?}");
        p.release(&mut pool);
        testutil::assert_whole(&pool);
    }

    #[test]
    fn null_vdev_receives_into_pool_buffers_and_gives_them_back() {
        let _one = one_at_a_time();
        let (r, mut pool) = testutil::pool(512, 2048);
        let mut p = DpdkPort::open(&spec("net_null0,size=64;queues=2"), 0, &r).unwrap();
        let mut got = receive(&mut p, &mut pool, 200);
        assert!(got.len() >= 200);
        for b in &mut got {
            let idx = b.index();
            let pkt = pool.holder().packet(b).unwrap();
            assert_eq!(pkt.len(), 64);
            assert!((1..=512).contains(&idx));
        }
        testutil::take(&mut pool, &mut got);
        p.release(&mut pool);
        testutil::assert_whole(&pool);
    }

    #[test]
    fn split_queues_receive_and_send_on_threads_of_their_own() {
        let _one = one_at_a_time();
        let (r, mut pool) = testutil::pool(1024, 2048);
        let mut p = DpdkPort::open(&spec("net_null2,size=64;queues=3"), 0, &r).unwrap();
        let mut q = p.queues(1).pop().expect("queue 1 split off");
        assert_eq!(q.name(), "dpdk:net_null2,size=64;queues=3 queue 1");
        let mut share = pool.share(onvm_shm::OwnerId(5), 256).unwrap();
        // Before the port starts the device, its queue passes nothing.
        let mut early = Vec::new();
        assert_eq!(q.rx_burst(&mut share, &mut early, 32), 0);
        // The port starts the device at its first poll, and receives on queues 0 and 2.
        let mut got = receive(&mut p, &mut pool, 64);
        assert!(got.len() >= 64);
        testutil::take(&mut pool, &mut got);
        assert!(p.queues(1).is_empty(), "no split once the device runs");
        // The queue, on a thread of its own with its pool share, receives and sends.
        let (mut q, mut share) = std::thread::spawn(move || {
            let mut got = Vec::new();
            let start = std::time::Instant::now();
            while got.len() < 200 && start.elapsed() < std::time::Duration::from_secs(2) {
                q.rx_burst(&mut share, &mut got, 32);
            }
            assert!(got.len() >= 200, "{}", got.len());
            assert!(got.iter_mut().all(|b| share.holder().packet(b).unwrap().len() == 64));
            let n = got.len();
            assert_eq!(q.tx_burst(&mut share, &mut got), n);
            (q, share)
        })
        .join()
        .unwrap();
        let s = q.stats();
        assert!(s.rx >= 200 && s.tx == s.rx && s.tx_bytes == 64 * s.tx, "{s:?}");
        assert_eq!((s.tx_drop, s.errors), (0, 0), "{s:?}");
        assert_eq!(p.stats().tx, 0, "the queue counts its own");
        q.release(&mut pool);
        pool.take(share.give(u32::MAX));
        p.release(&mut pool);
        testutil::assert_whole(&pool);
    }

    #[test]
    fn pcap_vdev_replays_and_writes_files() {
        let _one = one_at_a_time();
        let dir = tempfile::tempdir().unwrap();
        let (inp, outp) = (dir.path().join("in.pcap"), dir.path().join("out.pcap"));
        let frames = testlink::frames(50, 2);
        {
            let mut w = pcap_file::pcap::PcapWriter::new(std::fs::File::create(&inp).unwrap()).unwrap();
            for f in &frames {
                w.write_packet(&pcap_file::pcap::PcapPacket::new(
                    std::time::Duration::ZERO,
                    f.len() as u32,
                    f,
                ))
                .unwrap();
            }
        }
        let (r, mut pool) = testutil::pool(512, 2048);
        let args = format!("net_pcap0,rx_pcap={},tx_pcap={}", inp.display(), outp.display());
        let mut p = DpdkPort::open(&spec(&args), 0, &r).unwrap();
        let mut got = receive(&mut p, &mut pool, 50);
        assert_eq!(got.len(), 50);
        assert_eq!(p.tx_burst(&mut pool, &mut got), 50);
        p.release(&mut pool);
        testutil::assert_whole(&pool);
        let mut rd = pcap_file::pcap::PcapReader::new(std::fs::File::open(&outp).unwrap()).unwrap();
        let mut written = Vec::new();
        while let Some(pkt) = rd.next_packet() {
            written.push(pkt.unwrap().data.to_vec());
        }
        assert!(
            written == frames,
            "net_pcap wrote {} frames, or other bytes",
            written.len()
        );
    }

    /// `kind` is `net_af_packet` or `net_af_xdp`; the DPDK port sits on one end of a
    /// veth pair, an AF_PACKET port of ours on the other.
    fn veth_vdev(kind: &str, n: usize, copy: bool) {
        let _one = one_at_a_time();
        let Some(veth) = Veth::create() else { return };
        let (r, mut pool) = testutil::pool(4096, 2048);
        let args = format!("{kind}{},iface={}", std::process::id() % 1000, veth.a);
        let mut p = DpdkPort::open(&spec(&args), 1, &r).unwrap();
        assert_eq!(p.describe().contains("copy mode"), copy, "{}", p.describe());
        let mut peer = crate::AfPacketPort::open(&onvm_proto::port::IfaceSpec::new(&veth.b), 2).unwrap();
        // Start the device (it is started at the first poll) before sending to it.
        let mut none = Vec::new();
        p.rx_burst(&mut pool, &mut none, 32);
        testutil::take(&mut pool, &mut none);
        testlink::one_way(&mut peer, &mut p, &mut pool, n, 1);
        testlink::one_way(&mut p, &mut peer, &mut pool, n, 2);
        let s = p.stats();
        assert_eq!((s.tx, s.tx_drop), (n as u64, 0), "{s:?}");
        p.release(&mut pool);
        testutil::assert_whole(&pool);
    }

    #[test]
    fn af_packet_vdev_on_a_veth() {
        veth_vdev("net_af_packet", 200, false);
    }

    /// Tagged frames (802.1Q, 802.1ad, QinQ) through `net_af_packet` on a veth, from and
    /// to our AF_PACKET port on the peer. Received, the outer tag the kernel took out is
    /// back after the MAC addresses, as 802.1Q (the PMD gives no TPID: see the module
    /// doc), an inner one as it was; sent, every tag leaves as it is in the frame, 802.1ad
    /// too (the peer port keeps the kernel's TPID).
    #[test]
    fn af_packet_vdev_puts_vlan_tags_back() {
        let _one = one_at_a_time();
        let Some(veth) = Veth::create() else { return };
        let (r, mut pool) = testutil::pool(4096, 2048);
        let args = format!("net_af_packet{},iface={}", 1000 + std::process::id() % 1000, veth.a);
        let mut p = DpdkPort::open(&spec(&args), 1, &r).unwrap();
        let mut peer = crate::AfPacketPort::open(&IfaceSpec::new(&veth.b), 2).unwrap();
        let mut none = Vec::new();
        p.rx_burst(&mut pool, &mut none, 32);
        testutil::take(&mut pool, &mut none);
        let frames = crate::afpacket::tests::tagged(&testlink::frames(90, 6));
        assert_eq!(testlink::send(&mut peer, &mut pool, &frames), 90);
        let got = testlink::receive_marked(&mut p, &mut pool, 90);
        assert_eq!(got.len(), 90, "{} received", p.name());
        for (i, (g, f)) in got.iter().zip(&frames).enumerate() {
            let mut want = f.clone();
            want[12..14].copy_from_slice(&TPID_8021Q.to_be_bytes());
            assert!(g == &want, "frame {i}: sent {f:02x?}\nreceived {g:02x?}");
        }
        assert_eq!(testlink::send(&mut p, &mut pool, &frames), 90);
        let got = testlink::receive_marked(&mut peer, &mut pool, 90);
        assert!(got == frames, "{} sent other bytes: {got:02x?}", p.name());
        let s = p.stats();
        assert_eq!((s.tx, s.tx_drop, s.errors), (90, 0, 0), "{s:?}");
        p.release(&mut pool);
        drop(peer);
        testutil::assert_whole(&pool);
    }

    #[test]
    fn af_xdp_vdev_on_a_veth() {
        veth_vdev("net_af_xdp", 200, true);
    }

    #[test]
    fn tap_vdev_talks_to_the_kernel() {
        let _one = one_at_a_time();
        if !testlink::require_root() {
            return;
        }
        let dev = testlink::unique_name("d");
        // net_tap fills its receive ring (1024 descriptors) with buffers at start.
        let (r, mut pool) = testutil::pool(4096, 2048);
        let args = format!(
            "net_tap{},iface={dev};mtu=1400,mac=02:00:00:00:00:33",
            std::process::id() % 1000
        );
        let mut p = DpdkPort::open(&spec(&args), 0, &r).unwrap();
        let mut none = Vec::new();
        p.rx_burst(&mut pool, &mut none, 32);
        testutil::take(&mut pool, &mut none);
        // The port options reached the device (net_tap passes them to its interface).
        assert_eq!(crate::netif::mtu(&dev).unwrap(), 1400);
        assert_eq!(crate::netif::mac(&dev).unwrap(), [2, 0, 0, 0, 0, 0x33]);
        let _ = std::fs::write(format!("/proc/sys/net/ipv6/conf/{dev}/disable_ipv6"), "1");
        assert!(testlink::ip(&["link", "set", &dev, "up"]));
        testlink::wait_up(&dev);
        let mut sock = crate::AfPacketPort::open(&onvm_proto::port::IfaceSpec::new(&dev), 1).unwrap();
        testlink::one_way(&mut sock, &mut p, &mut pool, 100, 1);
        testlink::one_way(&mut p, &mut sock, &mut pool, 100, 2);
        drop(sock);
        p.release(&mut pool);
        testutil::assert_whole(&pool);
    }

    #[test]
    fn a_port_whose_start_fails_passes_nothing_and_leaves_the_pool_whole() {
        let _one = one_at_a_time();
        if !testlink::require_root() {
            return;
        }
        let dev = testlink::unique_name("f");
        let (r, mut pool) = testutil::pool(4096, 2048);
        // An MTU beyond what net_tap takes: the device refuses to be configured.
        let args = format!("net_tap{},iface={dev};mtu=65535", 500 + std::process::id() % 400);
        let mut p = DpdkPort::open(&spec(&args), 0, &r).unwrap();
        let mut none = Vec::new();
        assert_eq!(p.rx_burst(&mut pool, &mut none, 32), 0);
        assert_eq!(p.state, State::Failed);
        let mut out = Vec::new();
        pool.alloc_burst(3, &mut out);
        assert_eq!(p.tx_burst(&mut pool, &mut out), 0, "a failed port passes nothing");
        assert_eq!(p.stats().tx_drop, 3);
        p.release(&mut pool);
        testutil::assert_whole(&pool);
    }

    #[test]
    fn bad_device_arguments_are_named() {
        let _one = one_at_a_time();
        let (r, _pool) = testutil::pool(64, 2048);
        let e = DpdkPort::open(&spec("net_nosuchdriver0"), 0, &r)
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("port dpdk:net_nosuchdriver0: cannot probe the device"),
            "{e}"
        );
    }
}
