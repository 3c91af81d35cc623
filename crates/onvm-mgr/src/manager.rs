//! The manager's one thread: switch loop, control server and stats, interleaved.
//!
//! On a small machine one thread is the right shape: the switch never waits for a
//! lock, the registry and flow table need no synchronisation, and the control sockets
//! are polled every millisecond (so a dead NF is noticed within a few ms, far inside
//! the 100 ms promise). When no packet moves, the loop backs off to short sleeps so it
//! leaves the CPU to NFs that share a core with it.

use std::collections::HashMap;
use std::os::fd::AsFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime};

use onvm_ports::{Port, PortStats};
use onvm_proto::ctrl::{Dest, MAX_MESSAGE_LEN, MgrMsg, NfMsg, Registered};
use onvm_proto::flow::{
    Action as RuleAction, Expiry, FlowCache, FlowTable, Match, N_TABLES, PacketKey, PortKind, PortNo, Rewrite, RuleId,
};
use onvm_proto::limits::{MAX_INSTANCES, MAX_SERVICES};
use onvm_proto::rss::Toeplitz;
use onvm_proto::verdict::Verdict;
use onvm_shm::seqpacket::{Received, SeqPacket};
use onvm_shm::{Audit, BURST, Buf, Consumer, OwnerId, Pool, Producer, Region, Slice};

use crate::edges::{Edges, Outbox};
use crate::error::MgrError;
use crate::openflow::{Agent, Out, Payload, PortCounters, PortView, Switch};
use crate::options::{Options, StatsMode};
use crate::placement::{self, Placement};
use crate::registry::{Registry, State, rings_of};
use crate::stats::{self, NfRow, PortRow, Snapshot};
use crate::topology::Topology;

/// Fresh buffers kept in each NF's alloc ring.
const ALLOC_LEVEL: u32 = 64;
/// Control sockets are polled this often while packets flow.
const CONTROL_EVERY: Duration = Duration::from_millis(1);
/// Under load the manager rings a sleeping shared-core NF's doorbell once its rx ring
/// holds [`WAKE_BATCH`] packets or its oldest has waited this long, not after every
/// burst: each wake-up of an NF that shares the manager's core costs two context
/// switches and two futex calls, so bigger batches per wake-up leave more of the core to
/// packets. An idle manager rings at once, so light traffic keeps its latency.
const WAKE_DELAY: Duration = Duration::from_micros(200);
/// See [`WAKE_DELAY`].
const WAKE_BATCH: u32 = 128;
/// Times the manager yields its CPU to a shared-core NF whose rx ring is full before it
/// drops what does not fit (a few scheduler slices at most: a stuck NF cannot stall it).
const RING_FULL_YIELDS: u32 = 8;
/// How long packets in flight get to leave when the manager shuts down.
const DRAIN_GRACE: Duration = Duration::from_secs(1);
/// How long NFs get to stop when the manager shuts down.
const STOP_GRACE: Duration = Duration::from_secs(3);

/// Why the manager freed a packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(usize)]
pub enum DropReason {
    /// No flow rule matched.
    NoRule,
    /// A rule said drop.
    Rule,
    /// An NF said drop.
    Nf,
    /// The destination service has no running instance.
    NoInstance,
    /// The destination NF's rx ring was full.
    RingFull,
    /// An NF wrote a verdict that names nothing.
    BadVerdict,
    /// Output to a port that does not exist.
    NoSuchPort,
    /// A rule sends to the controller and there is none.
    NoController,
    /// Reclaimed from an NF that exited or crashed.
    Reclaimed,
    /// Shared metadata of the buffer was corrupt.
    BadBuffer,
    /// Buffered for the controller, which did not claim it in time.
    BufferExpired,
    /// The controller let a packet go (a PACKET_OUT without outputs).
    ControllerDrop,
}

impl DropReason {
    const ALL: [DropReason; 12] = [
        DropReason::NoRule,
        DropReason::Rule,
        DropReason::Nf,
        DropReason::NoInstance,
        DropReason::RingFull,
        DropReason::BadVerdict,
        DropReason::NoSuchPort,
        DropReason::NoController,
        DropReason::Reclaimed,
        DropReason::BadBuffer,
        DropReason::BufferExpired,
        DropReason::ControllerDrop,
    ];

    /// Short name used in stats.
    pub fn name(self) -> &'static str {
        match self {
            DropReason::NoRule => "no-rule",
            DropReason::Rule => "rule-drop",
            DropReason::Nf => "nf-drop",
            DropReason::NoInstance => "no-instance",
            DropReason::RingFull => "nf-ring-full",
            DropReason::BadVerdict => "bad-verdict",
            DropReason::NoSuchPort => "no-such-port",
            DropReason::NoController => "no-controller",
            DropReason::Reclaimed => "reclaimed",
            DropReason::BadBuffer => "bad-buffer",
            DropReason::BufferExpired => "buffer-expired",
            DropReason::ControllerDrop => "controller-drop",
        }
    }
}

/// What a manager run ends with.
#[derive(Debug, Clone)]
pub struct Report {
    /// Port counters.
    pub ports: Vec<PortRow>,
    /// Every NF that ran, with its last counters.
    pub nfs: Vec<NfRow>,
    /// Manager drops by reason (non-zero only).
    pub drops: Vec<(&'static str, u64)>,
    /// Packets that entered: port receives, buffers given to NFs to allocate from,
    /// packets a controller sent (PACKET_OUT), and copies the switch made for actions
    /// with several outputs.
    pub created: u64,
    /// Packets sent out of ports, or whole to a controller (PACKET_IN).
    pub sent: u64,
    /// Packets dropped (manager reasons plus port transmit failures).
    pub dropped: u64,
    /// Buffers still not free at the end.
    pub in_flight: u64,
    /// The pool audit at the end.
    pub audit: Audit,
    /// NFs that died without stopping cleanly (or were disconnected for corrupting a ring).
    pub crashes: u32,
    /// Ring entries from NFs that named no buffer sent to the manager (garbage, stale or
    /// duplicated indices), refused and counted.
    pub rejected: u64,
    /// Everything that happened, in order.
    pub events: Vec<String>,
    /// Time run.
    pub uptime: Duration,
}

impl Report {
    /// Every packet is accounted for: created = sent + dropped + in flight, and the
    /// pool audit finds every buffer in exactly one place.
    pub fn conserved(&self) -> bool {
        self.created == self.sent + self.dropped + self.in_flight && self.audit.is_whole()
    }

    /// The one-line conservation statement.
    pub fn conservation_line(&self) -> String {
        format!(
            "conservation: {} — {} in = {} sent + {} dropped + {} in flight; {}",
            if self.conserved() {
                "OK, every packet accounted for"
            } else {
                "FAILED"
            },
            self.created,
            self.sent,
            self.dropped,
            self.in_flight,
            self.audit
        )
    }
}

struct Conn {
    sock: SeqPacket,
    instance: Option<u16>,
}

struct NfRings<'r> {
    rx: Producer<'r>,
    tx: Consumer<'r>,
    alloc: Producer<'r>,
}

struct Mgr<'r> {
    opts: Options,
    topo: Topology,
    place: Placement,
    region: &'r Arc<Region>,
    pool: Pool,
    reg: Registry,
    rings: Vec<NfRings<'r>>,
    /// An idle manager sleeps on this ring's doorbell; NFs ring it after sending to us.
    wake: Consumer<'r>,
    ports: Vec<Box<dyn Port>>,
    table: FlowTable,
    cache: FlowCache,
    toeplitz: Toeplitz,
    listener: SeqPacket,
    conns: Vec<Conn>,
    edges: Edges,
    outbox: Outbox,
    /// (instance, key) pairs already considered for an edge since the last change,
    /// indexed `instance * MAX_SERVICES + key` (checked once per packet: no hashing).
    edge_tried: Vec<bool>,
    /// Ports whose packets all match one rule (see `fixed_rule`), for `fixed_gen`.
    fixed_rules: HashMap<PortNo, Option<(RuleId, Option<RuleAction>)>>,
    fixed_gen: u64,
    drops: [u64; DropReason::ALL.len()],
    alloc_given: u64,
    crashes: u32,
    events: Vec<String>,
    recent_events: Vec<String>,
    exited: Vec<NfRow>,
    start: Instant,
    now: Duration,
    // Scratch, reused every burst.
    burst: Vec<Buf>,
    to_nf: Vec<Vec<Buf>>,
    to_port: Vec<Vec<Buf>>,
    active: Vec<u16>,
    moved: bool,
    /// Per instance: since when packets wait in its rx ring without its doorbell rung
    /// (shared-core NFs only; see [`WAKE_DELAY`]).
    unwoken: Vec<Option<Instant>>,
    /// Ports are polled for new packets (off while shutting down).
    rx_on: bool,
    /// NFs that broke one of their rings, with what was wrong: disconnected at the end
    /// of the pass (a buggy NF must not take the manager down).
    broken: Vec<(u16, String)>,
    /// The OpenFlow agent, when controllers or a listener are configured.
    agent: Option<Agent>,
    /// Per table: (lookups, matches), for OpenFlow's TABLE stats.
    table_counts: [(u64, u64); N_TABLES as usize],
    /// Packets the manager made: a PACKET_OUT's bytes, and the copies of rules and
    /// PACKET_OUTs with several outputs.
    made: u64,
    /// Packets handed whole to a controller.
    to_controller: u64,
    /// The table generation edges were last checked against: a new rule may send a
    /// service's packets elsewhere, so its direct edges must close.
    edges_gen: u64,
}

/// Run a manager until `stop` is set (or its options end it), then stop its NFs,
/// reclaim everything and report.
pub fn run(opts: Options, stop: &AtomicBool) -> Result<Report, MgrError> {
    // Cores the machine lacks are an error before anything starts.
    let topo = Topology::read(&opts.sysfs_root)?;
    let port_nodes = placement::port_nodes(&topo, &opts.ports)?;
    let place = placement::place(&topo, &port_nodes, opts.core, opts.nf_cores.as_deref())?;
    let path = opts.socket.clone();
    let listener = bind_socket(&path)?;
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
        let agent = match opts.openflow.enabled() {
            true => Some(Agent::new(opts.openflow.clone()).map_err(MgrError::OpenFlow)?),
            false => None,
        };
        let mut mgr = Mgr::new(opts, topo, place, &region, pool, listener, ports)?;
        mgr.event(numa);
        if let Some(a) = agent.as_ref().and_then(Agent::local_addr) {
            mgr.event(format!("openflow: listening on {a}"));
        }
        mgr.agent = agent;
        mgr.main_loop(stop)?;
        Ok(mgr.finish())
    })();
    // The socket goes whatever happened, so the next manager starts cleanly.
    let _ = std::fs::remove_file(&path);
    result
}

/// Listen on `path`, refusing to take over a live manager's socket and replacing a
/// stale one (left by a manager that was killed).
fn bind_socket(path: &std::path::Path) -> Result<SeqPacket, MgrError> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| MgrError::Socket {
            path: path.into(),
            source: e,
        })?;
    }
    if path.exists() {
        if SeqPacket::connect(path).is_ok() {
            return Err(MgrError::AlreadyRunning(path.into()));
        }
        let _ = std::fs::remove_file(path);
    }
    let l = SeqPacket::listen(path).map_err(|e| MgrError::Socket {
        path: path.into(),
        source: e,
    })?;
    Ok(l)
}

impl<'r> Mgr<'r> {
    fn new(
        opts: Options,
        topo: Topology,
        place: Placement,
        region: &'r Arc<Region>,
        pool: Pool,
        listener: SeqPacket,
        ports: Vec<Box<dyn Port>>,
    ) -> Result<Self, MgrError> {
        let mut rings = Vec::with_capacity(usize::from(MAX_INSTANCES));
        for id in 1..=MAX_INSTANCES {
            let r = rings_of(id);
            rings.push(NfRings {
                rx: region.producer(r.rx)?,
                tx: region.consumer(r.tx)?,
                alloc: region.producer(r.alloc)?,
            });
        }
        let mut table = FlowTable::new();
        for rule in &opts.rules {
            table.add(rule.clone(), Duration::ZERO);
        }
        let nports = ports.len();
        Ok(Mgr {
            reg: Registry::new(place.nf_cores.clone()),
            opts,
            topo,
            place,
            region,
            pool,
            rings,
            wake: region.consumer(crate::registry::WAKE_RING)?,
            ports,
            table,
            cache: FlowCache::new(4096),
            toeplitz: Toeplitz::symmetric(),
            listener,
            conns: Vec::new(),
            edges: Edges::default(),
            outbox: Outbox::new(),
            edge_tried: vec![false; (usize::from(MAX_INSTANCES) + 1) * usize::from(MAX_SERVICES)],
            fixed_rules: HashMap::new(),
            fixed_gen: u64::MAX,
            drops: [0; DropReason::ALL.len()],
            alloc_given: 0,
            crashes: 0,
            events: Vec::new(),
            recent_events: Vec::new(),
            exited: Vec::new(),
            start: Instant::now(),
            now: Duration::ZERO,
            burst: Vec::with_capacity(BURST),
            to_nf: (0..MAX_INSTANCES).map(|_| Vec::new()).collect(),
            to_port: (0..nports).map(|_| Vec::new()).collect(),
            active: Vec::new(),
            moved: false,
            unwoken: vec![None; usize::from(MAX_INSTANCES)],
            rx_on: true,
            broken: Vec::new(),
            agent: None,
            table_counts: [(0, 0); N_TABLES as usize],
            made: 0,
            to_controller: 0,
            edges_gen: 0,
        })
    }

    fn event(&mut self, text: String) {
        if self.opts.log_events {
            eprintln!("onvm mgr: {text}");
        }
        self.recent_events.push(text.clone());
        self.events.push(text);
    }

    fn drop_buf(&mut self, buf: Buf, why: DropReason) {
        self.drops[why as usize] += 1;
        self.pool.free(buf);
    }

    fn main_loop(&mut self, stop: &AtomicBool) -> Result<(), MgrError> {
        let described: Vec<String> = self
            .ports
            .iter()
            .enumerate()
            .map(|(i, p)| format!("port {i}: {}", p.describe()))
            .collect();
        for d in described {
            self.event(d);
        }
        let mut next_control = Instant::now();
        let mut next_stats = Instant::now() + self.opts.stats_every;
        // A baseline at start, so the first interval already shows rates.
        let mut prev: Option<Snapshot> = Some(self.snapshot());
        let mut idle_since = Instant::now();
        let mut idle_spins = 0u32;
        if self.opts.stats == StatsMode::Csv {
            print!("{}", stats::csv_header());
        }
        let mut waiting = self.opts.wait_for_nfs;
        self.rx_on = waiting.is_none();
        if self.rx_on {
            self.event("ports receiving".into());
        }
        loop {
            if let Some((n, max)) = waiting
                && (self.active.len() >= n || self.start.elapsed() >= max)
            {
                if self.active.len() < n {
                    self.event(format!(
                        "only {} of {n} NFs running after {max:?}; ports start anyway",
                        self.active.len()
                    ));
                }
                waiting = None;
                self.rx_on = true;
                self.event("ports receiving".into());
            }
            self.moved = false;
            self.switch_once()?;
            let now = Instant::now();
            self.now = now.duration_since(self.start);
            self.ring_due_bells(now, !self.moved);
            if now >= next_control || !self.moved {
                next_control = now + CONTROL_EVERY;
                self.control()?;
                self.top_up_allocs()?;
                self.drain_orphans()?;
            }
            // After the control tick: a controller's message counts as work too.
            if self.moved {
                idle_since = now;
                idle_spins = 0;
            }
            if now >= next_stats {
                next_stats = now + self.opts.stats_every;
                let snap = self.snapshot();
                match self.opts.stats {
                    StatsMode::Off => {}
                    StatsMode::Console => println!("{}", stats::console(prev.as_ref(), &snap)),
                    StatsMode::Csv => print!("{}", stats::csv_lines(prev.as_ref(), &snap, SystemTime::now())),
                }
                self.recent_events.clear();
                prev = Some(snap);
                for (rule, why) in self.table.expire(self.now) {
                    self.event(format!("rule expired: priority {} {:?}", rule.priority, rule.matcher));
                    let reason = match why {
                        Expiry::Idle => onvm_openflow::ofprr::IDLE_TIMEOUT,
                        Expiry::Hard => onvm_openflow::ofprr::HARD_TIMEOUT,
                    };
                    if let Some(a) = &mut self.agent {
                        a.flow_removed(&rule, reason, self.now);
                    }
                }
            }
            if stop.load(Ordering::Relaxed) {
                break;
            }
            if let Some(d) = self.opts.run_for
                && self.now >= d
            {
                break;
            }
            if let Some(d) = self.opts.exit_when_drained
                && self.rx_on
                && self.ports.iter().all(|p| p.rx_done())
                && now.duration_since(idle_since) >= d
            {
                break;
            }
            if !self.moved {
                idle_spins = idle_spins.saturating_add(1);
                // Back off: spin a little, then yield, then sleep until an NF rings the
                // wake-up bell (or 1 ms passes: ports and control sockets need polls).
                if idle_spins > 2000 {
                    self.sleep(Duration::from_millis(1));
                } else if idle_spins > 100 {
                    std::thread::yield_now();
                }
            }
        }
        self.shutdown()
    }

    /// Sleep on the wake-up bell unless an NF's transmit ring already holds packets.
    fn sleep(&mut self, timeout: Duration) {
        let (rings, active) = (&mut self.rings, &self.active);
        self.wake.wait_until(
            |_| {
                active
                    .iter()
                    .any(|&id| rings[usize::from(id) - 1].tx.ready().map_or(true, |n| n > 0))
            },
            Some(timeout),
        );
    }

    /// One pass: every port's receive, every NF's transmit ring, then flush.
    fn switch_once(&mut self) -> Result<(), MgrError> {
        for p in 0..if self.rx_on { self.ports.len() } else { 0 } {
            let mut burst = std::mem::take(&mut self.burst);
            // Its packets land in buffers of its node (a no-op with one slice).
            self.pool.prefer_node(self.place.port_buffer_node(p));
            let n = self.ports[p].rx_burst(&mut self.pool, &mut burst, BURST);
            if n > 0 {
                self.moved = true;
                for buf in burst.drain(..) {
                    self.ingress_port(p as u16, buf);
                }
            }
            self.burst = burst;
        }
        for k in 0..self.active.len() {
            let id = self.active[k];
            self.drain_nf(id)?;
        }
        self.flush()
    }

    fn drain_nf(&mut self, id: u16) -> Result<(), MgrError> {
        let mut burst = std::mem::take(&mut self.burst);
        let ring = &mut self.rings[usize::from(id) - 1].tx;
        let n = match self.pool.holder().dequeue(ring, BURST, &mut burst) {
            Ok(n) => n,
            Err(e) => {
                self.ring_broken(id, format!("its tx ring: {e}"));
                0
            }
        };
        if n > 0 {
            self.moved = true;
            for buf in burst.drain(..) {
                self.ingress_nf(id, buf);
            }
        }
        self.burst = burst;
        Ok(())
    }

    /// Ring the doorbells of shared-core NFs whose packets waited [`WAKE_DELAY`], or all
    /// that have packets waiting when `all` (the manager is about to idle).
    fn ring_due_bells(&mut self, now: Instant, all: bool) {
        for k in 0..self.active.len() {
            let i = usize::from(self.active[k]) - 1;
            if let Some(t) = self.unwoken[i]
                && (all || now.duration_since(t) >= WAKE_DELAY)
            {
                self.rings[i].rx.notify();
                self.unwoken[i] = None;
            }
        }
    }

    /// Route everything in instance `id`'s tx ring, however many bursts that takes.
    fn drain_nf_fully(&mut self, id: u16) -> Result<(), MgrError> {
        loop {
            let before = self.moved;
            self.moved = false;
            self.drain_nf(id)?;
            let more = self.moved;
            self.moved |= before;
            if !more {
                return Ok(());
            }
        }
    }

    fn flush(&mut self) -> Result<(), MgrError> {
        for k in 0..self.active.len() {
            let id = self.active[k];
            let i = usize::from(id) - 1;
            if self.to_nf[i].is_empty() {
                continue;
            }
            let mut v = std::mem::take(&mut self.to_nf[i]);
            if let Err(e) = self.pool.holder().enqueue(&mut self.rings[i].rx, OwnerId(id), &mut v) {
                self.ring_broken(id, format!("its rx ring: {e}"));
                for buf in v.drain(..) {
                    self.drop_buf(buf, DropReason::NoInstance);
                }
            }
            let shared = self.reg.get(id).is_some_and(|inst| inst.shared);
            if shared {
                // Only shared-core NFs sleep; the doorbell's fence is not free.
                let queued = self.rings[i]
                    .rx
                    .free()
                    .map_or(WAKE_BATCH, |f| self.region.layout().ring_capacity - f);
                if queued >= WAKE_BATCH || !v.is_empty() {
                    self.rings[i].rx.notify();
                    self.unwoken[i] = None;
                } else if self.unwoken[i].is_none() {
                    self.unwoken[i] = Some(Instant::now());
                }
                // A full ring of an NF that shares a core (maybe ours) empties only when
                // it gets to run: give it the CPU a few times before dropping.
                for _ in 0..RING_FULL_YIELDS {
                    if v.is_empty() {
                        break;
                    }
                    std::thread::yield_now();
                    if self
                        .pool
                        .holder()
                        .enqueue(&mut self.rings[i].rx, OwnerId(id), &mut v)
                        .is_err()
                    {
                        break;
                    }
                    self.rings[i].rx.notify();
                }
            }
            if !v.is_empty() {
                if let Some(inst) = self.reg.get_mut(id) {
                    inst.rx_drop += v.len() as u64;
                }
                for buf in v.drain(..) {
                    self.drop_buf(buf, DropReason::RingFull);
                }
            }
            self.to_nf[i] = v;
        }
        for p in 0..self.ports.len() {
            if !self.to_port[p].is_empty() {
                let mut v = std::mem::take(&mut self.to_port[p]);
                self.ports[p].tx_burst(&mut self.pool, &mut v);
                self.to_port[p] = v;
            }
        }
        Ok(())
    }

    /// The flow-table key of a packet entering the table from `port`, and its length.
    fn key_of(&self, port: PortNo, buf: &mut Buf) -> Option<(PacketKey, usize)> {
        let pkt = self.pool.holder().packet(buf).ok()?;
        Some((PacketKey::from_frame(port, pkt.data()), pkt.len()))
    }

    fn ingress_port(&mut self, p: u16, buf: Buf) {
        let mut slot = Some(buf);
        if self.by_fixed_rule(PortNo::physical(p), &mut slot, None) {
            return;
        }
        let Some(mut buf) = slot else { return };
        match self.key_of(PortNo::physical(p), &mut buf) {
            Some((key, len)) => self.by_table(&key, len, buf, None),
            None => self.drop_buf(buf, DropReason::BadBuffer),
        }
    }

    fn ingress_nf(&mut self, id: u16, buf: Buf) {
        let meta = self.pool.holder().meta(&buf);
        let verdict = match Verdict::decode(meta.action(), meta.dest()) {
            Ok(v) => v,
            Err(_) => return self.drop_buf(buf, DropReason::BadVerdict),
        };
        let Some(service) = self.reg.get(id).map(|i| i.service) else {
            return self.drop_buf(buf, DropReason::NoInstance);
        };
        match verdict {
            Verdict::Drop => self.drop_buf(buf, DropReason::Nf),
            Verdict::Next => {
                let mut slot = Some(buf);
                if self.by_fixed_rule(PortNo::service(service), &mut slot, Some(id)) {
                    return;
                }
                let Some(mut buf) = slot else { return };
                match self.key_of(PortNo::service(service), &mut buf) {
                    Some((key, len)) => self.by_table(&key, len, buf, Some(id)),
                    None => self.drop_buf(buf, DropReason::BadBuffer),
                }
            }
            Verdict::ToService(s) => {
                self.learn_edge(id, s, s);
                self.deliver_service(s, buf, None);
            }
            Verdict::ToInstance(i) => self.deliver_instance(i, buf),
            Verdict::Out(p) => self.deliver_port(p, buf),
        }
    }

    /// Resolve with the flow table, from table 0 through any gotos; `from` = the NF
    /// whose `Next` this is.
    fn by_table(&mut self, key: &PacketKey, len: usize, buf: Buf, from: Option<u16>) {
        self.by_table_from(0, key, len, buf, from);
    }

    fn by_table_from(&mut self, mut table: u8, key: &PacketKey, len: usize, buf: Buf, from: Option<u16>) {
        loop {
            let found = if table == 0 {
                self.cache.lookup(&self.table, key)
            } else {
                self.table.lookup_in(table, key)
            };
            let hit = found.map(|(id, rule)| {
                let catch_all = rule.matcher == Match::in_port(key.in_port) || rule.matcher == Match::any();
                let first = rule.actions.first().cloned();
                let several = rule.actions.len() > 1 || matches!(first, Some(RuleAction::Set(_)));
                (id, rule.priority, catch_all, first, several)
            });
            let counts = &mut self.table_counts[usize::from(table)];
            counts.0 += 1;
            let Some((rule_id, priority, catch_all, action, several)) = hit else {
                return self.drop_buf(buf, DropReason::NoRule);
            };
            counts.1 += 1;
            self.table.record(rule_id, 1, len as u64, self.now);
            if several {
                let steps: Vec<Step> = self
                    .table
                    .get(rule_id)
                    .map_or_else(Vec::new, |r| r.actions.iter().map(|&a| Step::of(a)).collect());
                self.run_steps(&steps, buf, key.in_port, from, Some(rule_id));
                return;
            }
            match action {
                Some(RuleAction::Goto(t)) => table = t,
                Some(RuleAction::Controller { max_len }) => return self.packet_in(buf, key.in_port, rule_id, max_len),
                _ => {
                    let fixed = table == 0 && catch_all && self.is_top_rule_for(key.in_port, priority);
                    return self.apply(action, buf, from, key.in_port, Some(key), fixed);
                }
            }
        }
    }

    /// Look `buf` up from `table` on, as entering from `in_port`.
    fn lookup_from(&mut self, table: u8, mut buf: Buf, in_port: PortNo, from: Option<u16>) {
        match self.key_of(in_port, &mut buf) {
            Some((key, len)) => self.by_table_from(table, &key, len, buf, from),
            None => self.drop_buf(buf, DropReason::BadBuffer),
        }
    }

    /// Carry out several steps in order, as OpenFlow's apply-actions (a rule's, or a
    /// PACKET_OUT's): a rewrite changes the packet in place, and every step that sends
    /// it somewhere gets a copy, but the last, which gets the packet itself. A packet no
    /// step sends anywhere is dropped. Returns how many copies could not be made (no
    /// free buffer).
    fn run_steps(
        &mut self,
        steps: &[Step],
        buf: Buf,
        in_port: PortNo,
        from: Option<u16>,
        rule: Option<RuleId>,
    ) -> usize {
        let last = steps.iter().rposition(|s| !matches!(s, Step::Act(RuleAction::Set(_))));
        let mut held = Some(buf);
        let mut missed = 0;
        for (i, step) in steps.iter().enumerate() {
            let Some(b) = held.as_mut() else { break };
            if let Step::Act(RuleAction::Set(rw)) = *step {
                self.rewrite(b, rw);
                continue;
            }
            let b = if Some(i) == last {
                held.take().expect("held until the last step")
            } else {
                match self.copy_of(b, in_port) {
                    Some(c) => c,
                    None => {
                        missed += 1;
                        continue;
                    }
                }
            };
            match (*step, rule) {
                (Step::Table(t), _) => self.lookup_from(t, b, in_port, from),
                (Step::Act(RuleAction::Controller { max_len }), Some(r)) => self.packet_in(b, in_port, r, max_len),
                (Step::Act(a), _) => self.apply(Some(a), b, from, in_port, None, false),
            }
        }
        if let Some(b) = held {
            self.drop_buf(b, DropReason::Rule);
        }
        missed
    }

    /// Rewrite a header field in place. A packet without the field (the rule's match did
    /// not guarantee it) goes on unchanged.
    fn rewrite(&mut self, buf: &mut Buf, rw: Rewrite) {
        let Ok(mut p) = self.pool.holder().packet(buf) else {
            return;
        };
        let f = p.data_mut();
        let _ = match rw {
            Rewrite::EthSrc(m) => onvm_packet::set_src_mac(f, m),
            Rewrite::EthDst(m) => onvm_packet::set_dst_mac(f, m),
            Rewrite::IpSrc(a) => onvm_packet::set_ip(f, true, a),
            Rewrite::IpDst(a) => onvm_packet::set_ip(f, false, a),
            Rewrite::L4Src(n) => onvm_packet::set_port(f, true, n),
            Rewrite::L4Dst(n) => onvm_packet::set_port(f, false, n),
        };
    }

    /// A copy of `buf` in a fresh buffer (counted as made), or `None` when none is free.
    fn copy_of(&mut self, buf: &mut Buf, in_port: PortNo) -> Option<Buf> {
        let data = self.pool.holder().packet(buf).ok()?.data().to_vec();
        self.copy_in(&data, in_port)
    }

    /// Out of every physical port but `in_port`: copies, and the packet itself last.
    fn flood(&mut self, buf: Buf, in_port: PortNo) {
        let steps: Vec<Step> = (0..self.ports.len() as u16)
            .map(PortNo::physical)
            .filter(|&p| p != in_port)
            .map(|p| Step::Act(RuleAction::Output(p)))
            .collect();
        self.run_steps(&steps, buf, in_port, None, None);
    }

    /// A rule sends `buf` to the controller: a PACKET_IN, with the packet kept in a
    /// switch buffer or sent whole (see [`crate::openflow`]).
    fn packet_in(&mut self, mut buf: Buf, in_port: PortNo, rule: RuleId, max_len: u16) {
        let (Some(agent), Some(rule)) = (&mut self.agent, self.table.get(rule)) else {
            return self.drop_buf(buf, DropReason::NoController);
        };
        if !agent.has_controller() {
            return self.drop_buf(buf, DropReason::NoController);
        }
        let data = match self.pool.holder().packet(&mut buf) {
            Ok(p) => p.data().to_vec(),
            Err(_) => return self.drop_buf(buf, DropReason::BadBuffer),
        };
        if let Some(whole) = agent.packet_in(buf, &data, in_port, rule, max_len) {
            self.to_controller += 1;
            self.pool.free(whole);
        }
    }

    /// The rule every packet entering from `port` matches whatever its headers (a
    /// catch-all for the port at the top priority of table 0, that sends somewhere), if
    /// there is one: packets from such a port (a plain chain) need no parsing. Cached
    /// per flow-table generation.
    fn fixed_rule(&mut self, port: PortNo) -> Option<(RuleId, Option<RuleAction>)> {
        if self.fixed_gen != self.table.generation() {
            self.fixed_rules.clear();
            self.fixed_gen = self.table.generation();
        }
        if let Some(v) = self.fixed_rules.get(&port) {
            return *v;
        }
        let v = self.table.lookup(&PacketKey::new(port)).and_then(|(id, r)| {
            let catch_all = r.matcher == Match::in_port(port) || r.matcher == Match::any();
            let plain = r.actions.len() <= 1
                && !matches!(
                    r.actions.first(),
                    Some(RuleAction::Goto(_) | RuleAction::Controller { .. } | RuleAction::Set(_))
                );
            (catch_all && plain && self.is_top_rule_for(port, r.priority)).then(|| (id, r.actions.first().cloned()))
        });
        self.fixed_rules.insert(port, v);
        v
    }

    /// Route by the fixed rule of `port` if it has one; `false` = parse and look up.
    fn by_fixed_rule(&mut self, port: PortNo, buf: &mut Option<Buf>, from: Option<u16>) -> bool {
        let Some((rule_id, action)) = self.fixed_rule(port) else {
            return false;
        };
        let Some(mut b) = buf.take() else { return true };
        let len = match self.pool.holder().packet(&mut b) {
            Ok(p) => p.len(),
            Err(_) => {
                self.drop_buf(b, DropReason::BadBuffer);
                return true;
            }
        };
        self.table_counts[0].0 += 1;
        self.table_counts[0].1 += 1;
        self.table.record(rule_id, 1, len as u64, self.now);
        self.apply(action, b, from, port, None, true);
        true
    }

    /// Carry out a rule's output or drop (`by_table` resolves gotos and the controller)
    /// for a packet that entered the table from `in_port`. `fixed` = every packet `from`
    /// sends as `Next` gets this action, so a direct edge may replace the manager for them.
    fn apply(
        &mut self,
        action: Option<RuleAction>,
        buf: Buf,
        from: Option<u16>,
        in_port: PortNo,
        key: Option<&PacketKey>,
        fixed: bool,
    ) {
        let Some(RuleAction::Output(to)) = action else {
            return self.drop_buf(buf, DropReason::Rule);
        };
        let port = if to == PortNo::IN_PORT { in_port } else { to };
        match port.kind() {
            PortKind::Physical(p) => self.deliver_port(p, buf),
            PortKind::All => self.flood(buf, in_port),
            PortKind::Service(s) => {
                if let Some(nf) = from
                    && fixed
                    && to != PortNo::IN_PORT
                {
                    self.learn_edge(nf, 0, s);
                }
                self.deliver_service(s, buf, key);
            }
            _ => self.drop_buf(buf, DropReason::NoSuchPort),
        }
    }

    /// No rule of table 0 that could match packets from `port` outranks `priority`.
    fn is_top_rule_for(&self, port: PortNo, priority: u16) -> bool {
        self.table
            .iter()
            .all(|(_, r)| r.table != 0 || r.priority <= priority || r.matcher.in_port.is_some_and(|p| p != port))
    }

    /// Everything `from` sends with `key` (0 = Next) goes to service `service`: if that
    /// is one instance, open a direct edge.
    fn learn_edge(&mut self, from: u16, key: u16, service: u16) {
        let Some(tried) = self
            .edge_tried
            .get_mut(usize::from(from) * usize::from(MAX_SERVICES) + usize::from(key))
        else {
            return;
        };
        if std::mem::replace(tried, true) {
            return;
        }
        let targets = self.reg.instances_of(service);
        if targets.len() != 1 {
            return;
        }
        let to = targets[0];
        let ok = |i: Option<&crate::registry::Instance>| i.is_some_and(|i| i.state == State::Running);
        if !ok(self.reg.get(from)) || !ok(self.reg.get(to)) || self.edges.find(from, key).is_some() {
            return;
        }
        // A receiver that sleeps (shared core) is woken through its rx ring's doorbell.
        let bell = self.reg.get(to).filter(|i| i.shared).map(|_| rings_of(to).rx);
        let mut out = std::mem::take(&mut self.outbox);
        let opened = self.edges.open(from, to, key, bell, &mut out);
        self.outbox = out;
        if let Some(ring) = opened
            && let Ok(r) = self.region.ring(ring)
        {
            r.set_ends(from, to);
            let what = if key == 0 {
                "next hop".to_string()
            } else {
                format!("service {key}")
            };
            self.event(format!(
                "direct edge: instance {from} → instance {to} ({what}) on ring {ring}"
            ));
        }
    }

    /// To the instance of service `s` that owns this packet's flow (`key`, if the
    /// caller parsed the packet already).
    fn deliver_service(&mut self, s: u16, mut buf: Buf, key: Option<&PacketKey>) {
        let id = match self.reg.instances_of(s) {
            [] => return self.drop_buf(buf, DropReason::NoInstance),
            [only] => *only,
            _ => {
                let hash = match key {
                    Some(k) => self.flow_hash(k),
                    None => match self.key_of(PortNo::service(s), &mut buf) {
                        Some((k, _)) => self.flow_hash(&k),
                        None => return self.drop_buf(buf, DropReason::BadBuffer),
                    },
                };
                self.pool.holder().meta(&buf).set_flow_hash(hash);
                match self.reg.pick(s, hash) {
                    Some(id) => id,
                    None => return self.drop_buf(buf, DropReason::NoInstance),
                }
            }
        };
        self.to_nf[usize::from(id) - 1].push(buf);
    }

    fn flow_hash(&self, k: &PacketKey) -> u32 {
        k.flow_tuple().map_or(0, |t| t.hash(&self.toeplitz))
    }

    fn deliver_instance(&mut self, id: u16, buf: Buf) {
        if self.reg.get(id).is_some() {
            self.to_nf[usize::from(id) - 1].push(buf);
        } else {
            self.drop_buf(buf, DropReason::NoInstance);
        }
    }

    fn deliver_port(&mut self, p: u16, buf: Buf) {
        match self.to_port.get_mut(usize::from(p)) {
            Some(q) => q.push(buf),
            None => self.drop_buf(buf, DropReason::NoSuchPort),
        }
    }

    fn top_up_allocs(&mut self) -> Result<(), MgrError> {
        for k in 0..self.active.len() {
            let id = self.active[k];
            let i = usize::from(id) - 1;
            let have = match self.region.ring(rings_of(id).alloc)?.len() {
                Ok(n) => n,
                Err(e) => {
                    self.ring_broken(id, format!("its alloc ring: {e}"));
                    continue;
                }
            };
            if have >= ALLOC_LEVEL / 2 {
                continue;
            }
            let mut v = std::mem::take(&mut self.burst);
            // Buffers an NF allocates come from its core's node, where it writes them.
            let node = self
                .reg
                .get(id)
                .and_then(|i| i.core)
                .and_then(|c| self.topo.node_of_cpu(c));
            self.pool.prefer_node(node.unwrap_or(self.place.node));
            self.pool.alloc_burst((ALLOC_LEVEL - have) as usize, &mut v);
            let n = self
                .pool
                .holder()
                .enqueue(&mut self.rings[i].alloc, OwnerId(id), &mut v)
                .unwrap_or_else(|e| {
                    self.broken.push((id, format!("its alloc ring: {e}")));
                    0
                });
            self.alloc_given += n as u64;
            for buf in v.drain(..) {
                self.pool.free(buf);
            }
            self.burst = v;
        }
        Ok(())
    }

    fn drain_orphans(&mut self) -> Result<(), MgrError> {
        for (ring, dead, done) in self.edges.orphaned() {
            let n = self.pool.drain_ring(ring, OwnerId(dead))?;
            self.drops[DropReason::Reclaimed as usize] += u64::from(n);
            if done {
                self.edges.finish(ring);
                self.region.ring(ring)?.set_ends(0, 0);
            }
        }
        Ok(())
    }

    fn send_to(&mut self, id: u16, msg: &MgrMsg) {
        let Ok(bytes) = msg.encode() else { return };
        if let Some(c) = self.conns.iter().find(|c| c.instance == Some(id)) {
            // A failed send means the NF is going away; its socket close handles that.
            let _ = c.sock.send(&bytes);
        }
    }

    fn flush_outbox(&mut self) {
        for (id, msg) in std::mem::take(&mut self.outbox) {
            self.send_to(id, &msg);
        }
    }

    /// Instance `id` corrupted one of its rings: it is disconnected (as if it crashed)
    /// at the next control pass.
    fn ring_broken(&mut self, id: u16, what: String) {
        if !self.broken.iter().any(|(b, _)| *b == id) {
            self.broken.push((id, what));
        }
    }

    /// Accept connections, read every control message, notice dead NFs.
    fn control(&mut self) -> Result<(), MgrError> {
        for (id, what) in std::mem::take(&mut self.broken) {
            if let Some(k) = self.conns.iter().position(|c| c.instance == Some(id)) {
                self.event(format!("instance {id} corrupted {what}; disconnecting it"));
                self.conns.swap_remove(k);
                self.nf_gone(id)?;
            }
        }
        while let Ok(Some(sock)) = self.listener.accept() {
            self.conns.push(Conn { sock, instance: None });
        }
        let mut buf = vec![0u8; MAX_MESSAGE_LEN + 1];
        let mut k = 0;
        while k < self.conns.len() {
            let mut gone = false;
            loop {
                match self.conns[k].sock.recv(&mut buf) {
                    Ok(Received::Empty) => break,
                    Ok(Received::Closed) => {
                        gone = true;
                        break;
                    }
                    Ok(Received::Msg(n, _)) => {
                        if let Err(why) = self.handle(k, &buf[..n]) {
                            let who = self.conns[k]
                                .instance
                                .map_or_else(|| "an unregistered client".to_string(), |i| format!("instance {i}"));
                            self.event(format!("closing the connection of {who}: {why}"));
                            gone = true;
                            break;
                        }
                    }
                    Err(e) => {
                        let who = self.conns[k].instance;
                        self.event(format!("control socket of {who:?} failed: {e}"));
                        gone = true;
                        break;
                    }
                }
            }
            if gone {
                let c = self.conns.swap_remove(k);
                if let Some(id) = c.instance {
                    self.nf_gone(id)?;
                }
            } else {
                k += 1;
            }
        }
        if let Some(mut agent) = self.agent.take() {
            // A controller mid-exchange counts as work: no back-off sleep before its next
            // message.
            self.moved |= agent.poll(self);
            self.agent = Some(agent);
        }
        if self.table.generation() != self.edges_gen {
            // A rule changed (a controller, an expiry): where a service's packets go may
            // have too, so the edges that bypass the table close and are learnt anew.
            self.edges_gen = self.table.generation();
            self.topology_changed();
        }
        self.flush_outbox();
        Ok(())
    }

    /// One control message from connection `k`; an error closes the connection.
    fn handle(&mut self, k: usize, bytes: &[u8]) -> Result<(), String> {
        let msg = NfMsg::decode(bytes).map_err(|e| format!("malformed control message: {e}"))?;
        let me = self.conns[k].instance;
        match (msg, me) {
            (NfMsg::Register(req), None) => match self.reg.register(&req) {
                Ok(inst) => {
                    let (id, service, core) = (inst.id, inst.service, inst.core);
                    let rings = rings_of(id);
                    for (r, ends) in [(rings.rx, (0, id)), (rings.tx, (id, 0)), (rings.alloc, (0, id))] {
                        if let Ok(ring) = self.region.ring(r) {
                            ring.set_ends(ends.0, ends.1);
                        }
                    }
                    let reply = MgrMsg::Registered(Registered {
                        instance: id,
                        service,
                        core,
                        rings,
                    });
                    let bytes = reply.encode().map_err(|e| e.to_string())?;
                    self.conns[k]
                        .sock
                        .send_with_fd(&bytes, self.region.fd().as_fd())
                        .map_err(|e| format!("cannot answer the registration: {e}"))?;
                    self.conns[k].instance = Some(id);
                    self.event(format!(
                        "NF {:?} registered: instance {id}, service {service}, core {}",
                        req.tag,
                        core.map_or_else(|| "shared".into(), |c| c.to_string())
                    ));
                    Ok(())
                }
                Err(why) => {
                    self.event(format!("NF {:?} refused: {why}", req.tag));
                    if let Ok(b) = MgrMsg::Refused(why).encode() {
                        let _ = self.conns[k].sock.send(&b);
                    }
                    Err("registration refused".into())
                }
            },
            (_, None) => Err("the first message must be a registration".into()),
            (NfMsg::Register(_), Some(_)) => Err("registered twice".into()),
            (NfMsg::Ready, Some(id)) => {
                if let Some(i) = self.reg.get_mut(id) {
                    i.state = State::Running;
                }
                self.active.push(id);
                self.active.sort_unstable();
                self.topology_changed();
                Ok(())
            }
            (NfMsg::Stopping, Some(id)) => {
                if let Some(i) = self.reg.get_mut(id) {
                    i.state = State::Stopping;
                }
                Ok(())
            }
            (NfMsg::Counters(c), Some(id)) => {
                if let Some(i) = self.reg.get_mut(id) {
                    i.counters = c;
                }
                Ok(())
            }
            (NfMsg::EdgeSwitched { ring }, Some(id)) => {
                // What it sent through the manager before the switch goes on first, into
                // the consumer's rx ring; then the consumer learns of the edge.
                self.drain_nf_fully(id).map_err(|e| e.to_string())?;
                self.flush().map_err(|e| e.to_string())?;
                let mut out = std::mem::take(&mut self.outbox);
                self.edges.switched(id, ring, &mut out);
                self.outbox = out;
                Ok(())
            }
            (NfMsg::EdgeReleased { ring }, Some(id)) => {
                let mut out = std::mem::take(&mut self.outbox);
                if let Some(r) = self.edges.released(id, ring, &mut out)
                    && let Ok(ring) = self.region.ring(r)
                {
                    ring.set_ends(0, 0);
                }
                self.outbox = out;
                Ok(())
            }
            (NfMsg::Msg { to, bytes }, Some(id)) => {
                let target = match to {
                    Dest::Instance(i) => self.reg.get(i).map(|i| i.id),
                    Dest::Service(s) => self.reg.instances_of(s).first().copied(),
                };
                match target {
                    Some(t) => self.send_to(t, &MgrMsg::Msg { from: id, bytes }),
                    None => self.event(format!("message from instance {id} to {to:?}: no such NF, dropped")),
                }
                Ok(())
            }
        }
    }

    /// Close all edges; the next packets re-learn the ones that still make sense.
    fn topology_changed(&mut self) {
        let mut out = std::mem::take(&mut self.outbox);
        self.edges.close_all(&mut out);
        self.outbox = out;
        self.edge_tried.fill(false);
    }

    /// Instance `id`'s socket closed: route what it already sent, take back everything
    /// else it had, free its ID.
    fn nf_gone(&mut self, id: u16) -> Result<(), MgrError> {
        let clean = self.reg.get(id).is_some_and(|i| i.state == State::Stopping);
        // Packets it handed on before going are still good.
        self.drain_nf_fully(id)?;
        self.active.retain(|&a| a != id);
        for buf in std::mem::take(&mut self.to_nf[usize::from(id) - 1]) {
            self.drop_buf(buf, DropReason::NoInstance);
        }
        let mut out = std::mem::take(&mut self.outbox);
        self.edges.instance_gone(id, &mut out);
        self.outbox = out;
        self.topology_changed();
        let rings = rings_of(id);
        // A corrupt alloc ring reads as empty here; its buffers are then reclaimed below
        // or, if unreadable, reported by the audit.
        let unused = self.pool.drain_ring(rings.alloc, OwnerId(id)).unwrap_or(0);
        self.alloc_given -= u64::from(unused);
        let got = self.pool.reclaim(OwnerId(id))?;
        // Its rings are the next holder of this ID's: leave them empty and consistent,
        // whatever the NF did to them, and start our ends afresh.
        for r in [rings.rx, rings.tx, rings.alloc] {
            let ring = self.region.ring(r)?;
            ring.reset();
            ring.set_ends(0, 0);
        }
        self.broken.retain(|(b, _)| *b != id);
        self.rings[usize::from(id) - 1] = NfRings {
            rx: self.region.producer(rings.rx)?,
            tx: self.region.consumer(rings.tx)?,
            alloc: self.region.producer(rings.alloc)?,
        };
        let n = got.from_rings + got.held + got.torn;
        self.drops[DropReason::Reclaimed as usize] += u64::from(n);
        let children: Vec<u16> = self.reg.iter().filter(|i| i.parent == Some(id)).map(|i| i.id).collect();
        if let Some(inst) = self.reg.remove(id) {
            let row = nf_row(&inst);
            if clean {
                self.event(format!(
                    "NF {:?} (instance {id}) stopped; {n} buffers given back",
                    inst.tag
                ));
            } else {
                self.crashes += 1;
                self.event(format!(
                    "NF {:?} (instance {id}) died without stopping; reclaimed {n} buffers ({} in rings, {} held, {} half-sent){}; instance ID free",
                    inst.tag,
                    got.from_rings,
                    got.held,
                    got.torn,
                    if got.corrupt_rings > 0 {
                        format!("; {} corrupt ring(s) reset", got.corrupt_rings)
                    } else {
                        String::new()
                    }
                ));
            }
            self.exited.push(row);
        }
        for c in children {
            self.send_to(c, &MgrMsg::Stop);
        }
        Ok(())
    }

    fn snapshot(&self) -> Snapshot {
        Snapshot {
            uptime: self.start.elapsed(),
            ports: self.port_rows(),
            nfs: self.reg.iter().map(nf_row).collect(),
            drops: self.drop_list(),
            events: self.recent_events.clone(),
        }
    }

    fn port_rows(&self) -> Vec<PortRow> {
        self.ports
            .iter()
            .enumerate()
            .map(|(i, p)| PortRow {
                no: i as u16,
                name: p.name().to_string(),
                stats: p.stats(),
            })
            .collect()
    }

    fn drop_list(&self) -> Vec<(&'static str, u64)> {
        DropReason::ALL
            .iter()
            .filter(|r| self.drops[**r as usize] > 0)
            .map(|r| (r.name(), self.drops[*r as usize]))
            .collect()
    }

    /// Stop receiving, let packets in flight finish their chains, then tell every NF to
    /// stop, keep switching while they do, and reclaim stragglers.
    fn shutdown(&mut self) -> Result<(), MgrError> {
        self.rx_on = false;
        let t = Instant::now();
        let mut quiet = Instant::now();
        while t.elapsed() < DRAIN_GRACE && quiet.elapsed() < Duration::from_millis(50) {
            self.moved = false;
            self.switch_once()?;
            self.control()?;
            if self.moved {
                quiet = Instant::now();
            } else {
                std::thread::sleep(Duration::from_micros(200));
            }
        }
        let ids: Vec<u16> = self.reg.iter().map(|i| i.id).collect();
        for &id in &ids {
            self.send_to(id, &MgrMsg::Stop);
        }
        let deadline = Instant::now() + STOP_GRACE;
        while !self.conns.is_empty() && Instant::now() < deadline {
            self.switch_once()?;
            self.control()?;
            std::thread::sleep(Duration::from_micros(100));
        }
        for c in std::mem::take(&mut self.conns) {
            if let Some(id) = c.instance {
                self.event(format!("instance {id} did not stop in time"));
                drop(c);
                self.nf_gone(id)?;
            }
        }
        // Drain what is still queued for ports.
        self.switch_once()?;
        for p in &mut self.ports {
            if let Err(e) = p.flush() {
                eprintln!("onvm mgr: port {}: {e}", p.name());
            }
        }
        Ok(())
    }

    fn finish(mut self) -> Report {
        // Buffers waiting to go to ports were flushed; anything still in `to_nf` has no
        // NF left to go to.
        for i in 0..self.to_nf.len() {
            for buf in std::mem::take(&mut self.to_nf[i]) {
                self.drop_buf(buf, DropReason::NoInstance);
            }
        }
        // Packets still buffered for a controller will not be claimed now.
        for buf in self.agent.as_mut().map(Agent::take_held).unwrap_or_default() {
            self.drop_buf(buf, DropReason::BufferExpired);
        }
        // Ports that lend buffers to the kernel close and give them back first.
        for p in &mut self.ports {
            p.release(&mut self.pool);
        }
        let ports = self.port_rows();
        let port_sum = |f: fn(&PortStats) -> u64| ports.iter().map(|p| f(&p.stats)).sum::<u64>();
        let created = port_sum(|s| s.rx) + self.alloc_given + self.made;
        let sent = port_sum(|s| s.tx) + self.to_controller;
        let dropped = port_sum(|s| s.tx_drop) + self.drops.iter().sum::<u64>();
        let live: Vec<OwnerId> = self.reg.iter().map(|i| OwnerId(i.id)).collect();
        let audit = self.pool.audit(&live);
        let in_flight = u64::from(audit.total - audit.free);
        let mut nfs = std::mem::take(&mut self.exited);
        nfs.extend(self.reg.iter().map(nf_row));
        Report {
            ports,
            nfs,
            drops: self.drop_list(),
            created,
            sent,
            dropped,
            in_flight,
            audit,
            crashes: self.crashes,
            rejected: self.pool.holder().rejected(),
            events: std::mem::take(&mut self.events),
            uptime: self.start.elapsed(),
        }
    }
}

/// One step of a rule's or a PACKET_OUT's actions (see `Mgr::run_steps`).
#[derive(Clone, Copy, Debug)]
enum Step {
    /// An action of the table's.
    Act(RuleAction),
    /// Look the packet up from this table on (a goto, or PACKET_OUT's TABLE).
    Table(u8),
}

impl Step {
    fn of(a: RuleAction) -> Step {
        match a {
            RuleAction::Goto(t) => Step::Table(t),
            a => Step::Act(a),
        }
    }
}

impl Mgr<'_> {
    /// A fresh buffer holding `data`, as if received on `in_port`; `None` when the pool
    /// is empty or the packet does not fit.
    fn copy_in(&mut self, data: &[u8], in_port: PortNo) -> Option<Buf> {
        let mut buf = self.pool.alloc()?;
        let filled = self.pool.holder().packet(&mut buf).and_then(|mut p| {
            p.copy_from(data)?;
            if let PortKind::Physical(n) = in_port.kind() {
                p.meta().set_in_port(n);
            }
            Ok(())
        });
        match filled {
            Ok(()) => {
                self.made += 1;
                Some(buf)
            }
            Err(_) => {
                self.pool.free(buf);
                None
            }
        }
    }

    fn service_name(&self, s: u16) -> String {
        self.opts.service_names.get(&s).cloned().unwrap_or_else(|| {
            self.reg
                .instances_of(s)
                .first()
                .and_then(|&i| self.reg.get(i))
                .map_or_else(|| format!("service{s}"), |i| i.tag.clone())
        })
    }
}

impl Switch for Mgr<'_> {
    fn table(&mut self) -> &mut FlowTable {
        &mut self.table
    }

    fn now(&self) -> Duration {
        self.start.elapsed()
    }

    fn ports(&self) -> Vec<PortView> {
        let mut v: Vec<PortView> = self
            .ports
            .iter()
            .enumerate()
            .map(|(i, p)| PortView {
                no: PortNo::physical(i as u16),
                name: p.name().to_string(),
                up: true,
            })
            .collect();
        let mut services: Vec<u16> = self.opts.service_names.keys().copied().collect();
        services.extend(self.reg.iter().map(|i| i.service));
        services.sort_unstable();
        services.dedup();
        v.extend(services.into_iter().map(|s| {
            PortView {
                no: PortNo::service(s),
                name: self.service_name(s),
                up: self
                    .reg
                    .instances_of(s)
                    .iter()
                    .any(|&i| self.reg.get(i).is_some_and(|i| i.state == State::Running)),
            }
        }));
        v
    }

    fn port_counters(&self, port: PortNo) -> PortCounters {
        match port.kind() {
            PortKind::Physical(p) => self.ports.get(usize::from(p)).map_or_else(PortCounters::default, |p| {
                let s = p.stats();
                PortCounters {
                    rx_packets: s.rx,
                    tx_packets: s.tx,
                    rx_bytes: s.rx_bytes,
                    tx_bytes: s.tx_bytes,
                    rx_dropped: s.rx_drop,
                    tx_dropped: s.tx_drop,
                    errors: s.errors,
                }
            }),
            // The switch sends to a service what its NFs take in (or could not, ring
            // full) and receives what they hand on.
            PortKind::Service(s) => self
                .reg
                .iter()
                .filter(|i| i.service == s)
                .fold(PortCounters::default(), |c, i| PortCounters {
                    rx_packets: c.rx_packets + i.counters.tx,
                    tx_packets: c.tx_packets + i.counters.rx + i.rx_drop,
                    tx_dropped: c.tx_dropped + i.rx_drop,
                    ..c
                }),
            _ => PortCounters::default(),
        }
    }

    fn table_counts(&self, table: u8) -> (u64, u64) {
        self.table_counts.get(usize::from(table)).copied().unwrap_or_default()
    }

    fn inject(&mut self, packet: Payload, in_port: PortNo, outs: &[Out]) -> Result<(), String> {
        let buf = match packet {
            Payload::Held(b) => b,
            Payload::Data(d) => self
                .copy_in(&d, in_port)
                .ok_or_else(|| format!("{} bytes: no free buffer, or more than a buffer holds", d.len()))?,
        };
        let steps: Vec<Step> = outs
            .iter()
            .map(|o| match *o {
                Out::Table => Step::Table(0),
                Out::Port(p) => Step::Act(RuleAction::Output(p)),
                Out::InPort => Step::Act(RuleAction::Output(PortNo::IN_PORT)),
                Out::Flood => Step::Act(RuleAction::Output(PortNo::ALL)),
                Out::Set(r) => Step::Act(RuleAction::Set(r)),
            })
            .collect();
        if steps.iter().all(|s| matches!(s, Step::Act(RuleAction::Set(_)))) {
            self.drop_buf(buf, DropReason::ControllerDrop);
            return Ok(());
        }
        match self.run_steps(&steps, buf, in_port, None, None) {
            0 => Ok(()),
            m => Err(format!("{m} copies not sent: no free buffer")),
        }
    }

    fn release(&mut self, buf: Buf, expired: bool) {
        let why = match expired {
            true => DropReason::BufferExpired,
            false => DropReason::ControllerDrop,
        };
        self.drop_buf(buf, why);
    }

    fn restore_config_rules(&mut self) {
        self.table = FlowTable::new();
        for rule in self.opts.rules.clone() {
            self.table.add(rule, self.now);
        }
    }

    fn event(&mut self, text: String) {
        Mgr::event(self, text);
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

fn nf_row(i: &crate::registry::Instance) -> NfRow {
    NfRow {
        tag: i.tag.clone(),
        id: i.id,
        service: i.service,
        core: i.core,
        parent: i.parent,
        state: match i.state {
            State::Starting => "starting",
            State::Running => "running",
            State::Stopping => "stopping",
        },
        counters: i.counters,
        rx_drop: i.rx_drop,
    }
}
