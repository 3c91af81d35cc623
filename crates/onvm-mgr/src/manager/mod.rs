//! The manager's one thread: switch loop, control server and stats, interleaved.
//!
//! On a small machine one thread is the right shape: the switch never waits for a
//! lock, the registry and flow table need no synchronisation, and the control sockets
//! are polled every millisecond (so a dead NF is noticed within a few ms, far inside
//! the 100 ms promise). When no packet moves, the loop backs off to short sleeps so it
//! leaves the CPU to NFs that share a core with it.
//!
//! On a larger one, receive threads (`Options::rx_threads`, `crate::lane`, their main
//! side in `lanes.rs`) poll the further queues of ports that have several and write
//! what they can straight into NFs; the rest comes to this thread, which keeps every
//! transmit and the control plane.
//!
//! The state is grouped by who borrows it, so each part of the loop takes only what it
//! needs (smoltcp's `Interface` and its inner struct):
//!
//! | part | holds | file |
//! |---|---|---|
//! | [`Io`] | ports, NF rings, the wake-up bell, scratch burst, doorbell timers | `switch.rs` (the loop) |
//! | [`Fwd`] | pool, router, flow table, registry, edges, queues, accounting | `forward.rs` (carrying out decisions) |
//! | [`control::Control`] | the NF control socket and its connections | `control.rs` (`socket.rs`: its file) |
//! | planes | the [`ControlPlane`]s (the OpenFlow agent) | `planes.rs` |
//!
//! Where the rules allow, an NF polls a `null` port's queue itself
//! (`Options::nf_queues`, `nf_queues.rs`) and the switch leaves that port alone.
//!
//! NF registration, death and reclaim are in `lifecycle.rs`; the report and stats
//! snapshots in `report.rs`; the loop's deadlines in `timers.rs`; hung NFs in
//! `watchdog.rs`.
//!
//! A packet's path: a port's `rx_burst` (or an NF's tx ring) → [`Fwd::ingress_port`] /
//! [`Fwd::ingress_nf`] → [`crate::router::Router::route`] decides → [`Fwd`] carries the
//! decision out into a per-NF or per-port queue → `Mgr::flush` enqueues to rx rings
//! (ringing doorbells) and ports' `tx_burst`.

mod autoscale;
mod control;
mod forward;
mod handover;
mod lanes;
mod lifecycle;
mod nf_queues;
mod planes;
mod pressure;
mod profile;
mod report;
mod socket;
mod switch;
mod timers;
mod watchdog;

use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use onvm_ports::Port;
use onvm_proto::flow::{ActionSet, FlowTable};
use onvm_proto::limits::{EDGE_RINGS, MAX_INSTANCES, MAX_SERVICES};
use onvm_shm::{BURST, Buf, Consumer, Pool, Producer, Region, Slice};

use crate::control_plane::{ControlPlane, PacketIn};
use crate::edges::{Edges, Outbox};
use crate::error::MgrError;
use crate::openflow::Agent;
use crate::options::Options;
use crate::placement::{self, Placement};
use crate::registry::{Registry, rings_of};
use crate::router::Router;
use crate::topology::Topology;

pub use crate::drops::DropReason;
pub use profile::SwitchProfile;
pub use report::Report;

use control::Control;
use report::Accounting;
use timers::Timers;
use watchdog::Watchdog;

/// Fresh buffers kept in each NF's alloc ring.
const ALLOC_LEVEL: u32 = 64;
/// Control sockets are polled this often while packets flow.
const CONTROL_EVERY: Duration = Duration::from_millis(1);
/// Rules are checked for timeouts this often, whatever the stats interval: a rule
/// leaves the table within this long of its timeout.
const EXPIRE_EVERY: Duration = Duration::from_millis(100);
/// Under load the manager rings a sleeping shared-core NF's doorbell once its rx ring
/// holds [`WAKE_BATCH`] packets or its oldest has waited this long, not after every
/// burst: each wake-up of an NF that shares the manager's core costs two context
/// switches and two futex calls, so bigger batches per wake-up leave more of the core to
/// packets. An idle manager rings at once, so light traffic keeps its latency.
const WAKE_DELAY: Duration = Duration::from_micros(200);
/// See [`WAKE_DELAY`].
const WAKE_BATCH: u32 = 128;
/// Times the manager yields its CPU to a shared-core NF whose rx ring is full before it
/// drops what does not fit, as long as each yield let the NF take some (a few scheduler
/// slices at most: a stuck or slow NF cannot stall it).
const RING_FULL_YIELDS: u32 = 8;
/// The pool is low when fewer than 1/this of its buffers are free: then an NF's rx
/// ring may hold no more than its quota (see `Mgr::flush`).
const LOW_WATER_DIV: u32 = 8;
/// How often the watchdog looks at NFs' rx rings: a hung NF is reported within its
/// time plus this.
const WATCHDOG_EVERY: Duration = Duration::from_millis(50);
/// How long packets in flight get to leave when the manager shuts down.
const DRAIN_GRACE: Duration = Duration::from_secs(1);
/// How long NFs get to stop when the manager shuts down.
const STOP_GRACE: Duration = Duration::from_secs(3);

/// One NF instance's rings, from the manager's side.
struct NfRings<'r> {
    rx: Producer<'r>,
    tx: Consumer<'r>,
    alloc: Producer<'r>,
}

impl<'r> NfRings<'r> {
    fn of(region: &'r Region, id: u16) -> Result<Self, MgrError> {
        let r = rings_of(id);
        Ok(NfRings {
            rx: region.producer(r.rx)?,
            tx: region.consumer(r.tx)?,
            alloc: region.producer(r.alloc)?,
        })
    }
}

/// An edge whose consumer is the manager (`onvm_proto::edge::MANAGER`): instance
/// `from`'s packets for `key` (0 = `Next`), verdict implied, read as it reads tx rings.
struct FromEdge<'r> {
    ring: u32,
    from: u16,
    key: u16,
    cons: Consumer<'r>,
}

/// What the switch loop polls: ports and NF rings.
struct Io<'r> {
    ports: Vec<Box<dyn Port>>,
    /// Per instance (index `id - 1`).
    rings: Vec<NfRings<'r>>,
    /// An idle manager sleeps on this ring's doorbell; NFs ring it after sending to us.
    wake: Consumer<'r>,
    /// Running instances, ascending.
    active: Vec<u16>,
    /// Edges the manager reads (see [`FromEdge`]), kept in step with the edge table
    /// by `Mgr::settle_manager_edges`.
    from_edges: Vec<FromEdge<'r>>,
    /// Scratch, reused every burst.
    burst: Vec<Buf>,
    /// Per instance: since when packets wait in its rx ring without its doorbell rung
    /// (shared-core NFs only; see [`WAKE_DELAY`]).
    unwoken: Vec<Option<Instant>>,
    /// Ports are polled for new packets (off while shutting down).
    rx_on: bool,
    /// Something moved in this pass (a packet, a controller's message).
    moved: bool,
}

/// Direct NF→NF edges and which (instance, key) pairs were already considered.
struct Direct {
    edges: Edges,
    /// Indexed `instance * MAX_SERVICES + key` (checked once per packet: no hashing).
    tried: Vec<bool>,
    /// The table generation edges were last checked against: a new rule may send a
    /// service's packets elsewhere, so its direct edges must close.
    generation: u64,
}

/// What carrying out a routing decision touches.
struct Fwd<'r> {
    region: &'r Arc<Region>,
    pool: Pool,
    router: Router,
    table: FlowTable,
    reg: Registry,
    direct: Direct,
    /// Per instance (index `id - 1`): packets for its rx ring, enqueued at the flush.
    to_nf: Vec<Vec<Buf>>,
    /// Per port: packets for its `tx_burst`.
    to_port: Vec<Vec<Buf>>,
    /// Packets for a controller, handed to the planes at the next control tick.
    to_planes: Vec<PacketIn>,
    /// Some plane takes packets for a controller (as of the last control tick).
    controller: bool,
    /// Messages for NFs, sent at the end of the control tick.
    outbox: Outbox,
    acct: Accounting,
    /// The table's clock: time since the manager started, read once per pass (before
    /// a pass that follows a wait, it can be as old as the wait).
    now: Duration,
    /// When the manager started: meters read the time per packet from it, because a
    /// pass's `now` can be a yield or a sleep old, and a meter given an old time and
    /// then a fresh one would credit the wait to a burst that came after it.
    epoch: Instant,
    /// The pipeline state of the packet being routed through several tables.
    pipe: Pipe,
    /// How many groups deep the packet being routed is (a bucket sending to a group).
    groups_deep: u8,
    /// Captures in progress (`crate::capture`).
    taps: crate::capture::Taps,
    /// Which chain entries drop because an NF is behind (`Options::backpressure`).
    pressure: pressure::Pressure,
    /// Moved flows waiting for their old instance to read its queue (`handover.rs`).
    handovers: handover::Handovers<Buf>,
    /// Per receive thread (lane `k` at `k - 1`): the ports it has a queue of, so it can
    /// send out of them what NFs give it (`lanes.rs`); empty without receive threads.
    tx_lanes: Vec<Vec<u16>>,
    /// Per edge ring (from `FIRST_EDGE_RING`): the port a receive thread that reads it
    /// sends its packets out of.
    edge_port: Vec<u16>,
}

/// What a packet carries from table to table (OpenFlow's metadata register and action
/// set). Reset when a packet starts the pipeline with steps to run; packets routed to
/// one destination never touch it.
#[derive(Debug, Default)]
struct Pipe {
    metadata: u64,
    set: ActionSet,
}

impl Pipe {
    fn reset(&mut self) {
        self.metadata = 0;
        self.set.clear();
    }
}

/// The manager.
struct Mgr<'r> {
    opts: Options,
    topo: Topology,
    place: Placement,
    io: Io<'r>,
    fwd: Fwd<'r>,
    ctl: Control,
    planes: Vec<Box<dyn ControlPlane>>,
    timers: Timers,
    watchdog: Watchdog,
    /// Autoscaled services (`Options::autoscale`).
    scaling: autoscale::Scaling,
    /// Cycles per phase of the switch's pass (`Options::profile`).
    prof: profile::Profiler,
    /// Receive threads beside this one (`Options::rx_threads`).
    lanes: lanes::Lanes,
    /// Port queues NFs poll themselves (`Options::nf_queues`).
    nfq: nf_queues::NfQueues,
    start: Instant,
}

/// Run a manager until `stop` is set (or its options end it), then stop its NFs,
/// reclaim everything and report.
pub fn run(opts: Options, stop: &AtomicBool) -> Result<Report, MgrError> {
    // Cores the machine lacks are an error before anything starts.
    let topo = Topology::read(&opts.sysfs_root)?;
    let port_nodes = placement::port_nodes(&topo, &opts.ports)?;
    let place = placement::place(&topo, &port_nodes, opts.core, opts.nf_cores.as_deref())?;
    let path = opts.socket.clone();
    let listener = socket::bind_socket(&path, &opts.socket_access)?;
    let result = (|| {
        // Pinned before the region exists, so what the kernel places on first touch
        // (header, rings, owner table) is on the switch's node too.
        let pinned = place.manager_core.map(pin_to);
        let mut cfg = opts.region.clone();
        cfg.headroom = onvm_ports::headroom_for(&opts.ports, cfg.headroom);
        let region = Region::create(&cfg)?;
        let pool = Pool::with_nodes(&region, &place.buffer_nodes)?;
        // Before the ports open: an AF_XDP port pins the pages, which then stay put.
        let bound = pool.bind_slices();
        let mut ports = Vec::new();
        for (i, spec) in opts.ports.iter().enumerate() {
            ports.push(onvm_ports::open(spec, i as u16, &region)?);
        }
        let numa = numa_line(&topo, &place, pinned, &bound);
        let mut planes: Vec<Box<dyn ControlPlane>> = Vec::new();
        let mut listening = None;
        if opts.openflow.enabled() {
            let agent = Agent::new(opts.openflow.clone()).map_err(MgrError::OpenFlow)?;
            listening = agent.local_addr();
            planes.push(Box::new(agent));
        }
        let mut serving = None;
        if let Some(addr) = opts.http {
            let plane = crate::http::HttpPlane::start(addr, opts.supervisor.clone())
                .map_err(|source| MgrError::Http { addr, source })?;
            serving = Some(plane.local_addr());
            planes.push(Box::new(plane));
        }
        let mut mgr = Mgr::new(opts, topo, place, &region, pool, listener, ports, planes)?;
        mgr.fwd.acct.event(numa);
        mgr.start_lanes()?;
        if let Some(a) = listening {
            mgr.fwd.acct.event(format!("openflow: listening on {a}"));
        }
        if let Some(a) = serving {
            mgr.fwd.acct.event(format!("http: listening on http://{a}/"));
        }
        mgr.main_loop(stop)?;
        Ok(mgr.finish())
    })();
    // The socket went with the listener (`socket::Listener`'s drop), whatever happened.
    result
}

impl<'r> Mgr<'r> {
    #[allow(clippy::too_many_arguments)]
    fn new(
        opts: Options,
        topo: Topology,
        place: Placement,
        region: &'r Arc<Region>,
        pool: Pool,
        listener: socket::Listener,
        ports: Vec<Box<dyn Port>>,
        planes: Vec<Box<dyn ControlPlane>>,
    ) -> Result<Self, MgrError> {
        let rings = (1..=MAX_INSTANCES)
            .map(|id| NfRings::of(region, id))
            .collect::<Result<Vec<_>, _>>()?;
        let mut table = FlowTable::new();
        for rule in &opts.rules {
            table.add(rule.clone(), Duration::ZERO);
        }
        let nports = ports.len();
        let start = Instant::now();
        Ok(Mgr {
            io: Io {
                ports,
                rings,
                wake: region.consumer(crate::registry::WAKE_RING)?,
                active: Vec::new(),
                from_edges: Vec::new(),
                burst: Vec::with_capacity(BURST),
                unwoken: vec![None; usize::from(MAX_INSTANCES)],
                rx_on: true,
                moved: false,
            },
            fwd: Fwd {
                region,
                pool,
                router: Router::new(nports as u16),
                table,
                reg: Registry::new(place.nf_cores.clone()),
                direct: Direct {
                    edges: Edges::default(),
                    tried: vec![false; (usize::from(MAX_INSTANCES) + 1) * usize::from(MAX_SERVICES)],
                    generation: 0,
                },
                to_nf: (0..MAX_INSTANCES).map(|_| Vec::new()).collect(),
                to_port: (0..nports).map(|_| Vec::new()).collect(),
                to_planes: Vec::new(),
                controller: planes.iter().any(|p| p.takes_packets()),
                outbox: Outbox::new(),
                acct: Accounting::new(opts.log_events),
                now: Duration::ZERO,
                epoch: start,
                pipe: Pipe::default(),
                groups_deep: 0,
                taps: crate::capture::Taps::default(),
                pressure: pressure::Pressure::new(opts.backpressure, usize::from(MAX_INSTANCES)),
                handovers: handover::Handovers::default(),
                tx_lanes: Vec::new(),
                edge_port: vec![0; EDGE_RINGS as usize],
            },
            ctl: Control::new(listener),
            planes,
            timers: Timers::new(start, opts.stats_every),
            watchdog: Watchdog::new(opts.watchdog, usize::from(MAX_INSTANCES)),
            scaling: autoscale::Scaling {
                scaler: autoscale::Autoscaler::new(&opts.autoscale),
                ..Default::default()
            },
            prof: profile::Profiler::new(opts.profile),
            lanes: lanes::Lanes::default(),
            nfq: nf_queues::NfQueues::new(opts.ports.len()),
            opts,
            topo,
            place,
            start,
        })
    }
}

/// The start-up event: topology, placement, and each buffer slice with what the kernel
/// said to binding it.
fn numa_line(
    topo: &Topology,
    place: &Placement,
    pinned: Option<rustix::io::Result<()>>,
    bound: &[(Slice, std::io::Result<()>)],
) -> String {
    let slices: Vec<String> = bound
        .iter()
        .map(|(s, r)| {
            let how = match r {
                Ok(()) => "bound".to_string(),
                Err(e) => format!("not bound: {e}"),
            };
            format!("node {} {}..={} ({how})", s.node, s.first, s.last)
        })
        .collect();
    let mut notes = String::new();
    if let Some(Err(e)) = pinned {
        notes += &format!("; pinning the manager failed: {e}");
    }
    if let Some(n) = topo.note() {
        notes += &format!("; {n}");
    }
    format!(
        "numa: {}; {}; buffers: {}{notes}",
        topo.summary(),
        place.summary(),
        slices.join(", ")
    )
}

/// Pin the calling thread to `core`. Best effort: an unpinned manager still works, so a
/// refusal (a cpuset without that CPU) is reported, not fatal.
fn pin_to(core: u16) -> rustix::io::Result<()> {
    let mut set = rustix::thread::CpuSet::new();
    set.set(usize::from(core));
    rustix::thread::sched_setaffinity(None, &set)
}
