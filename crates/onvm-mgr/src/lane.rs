//! Switch lanes: threads beside the main switch thread, each serving one queue of every
//! port that can split into queues (`--rx-threads N`: lanes 1..N-1, the main thread
//! keeps queue 0 and the control plane). `docs/ARCHITECTURE.md`, "Switch lanes", has
//! the why and the figures.
//!
//! * **Receive.** A port whose fixed rule sends every packet to one instance, or to a
//!   service whose instances are picked per flow ([`Route`]), has its packets written
//!   straight into their instance through an edge ring the lane produces (an owner ID
//!   of its own, [`lane_owner`]). Everything else (a port whose packets need a lookup, a target
//!   whose edge is not open yet) goes to the main thread in bursts ([`Punt`], a bounded
//!   queue: when the main thread is that far behind, the lane drops, counted
//!   `switch-behind`) and is routed there as if it had arrived on queue 0.
//! * **Transmit.** An NF whose output leaves by a port the lane has a queue of sends it
//!   through an edge the lane reads ([`ToLane::EdgeIn`]); the lane sends it out of its
//!   queue and frees into its own pool.
//! * **Edges** are opened, closed and drained by the main thread through the same
//!   hand-shakes as NF→NF edges ([`onvm_proto::edge`]), the lane answering in-process
//!   ([`FromLane::Switched`], [`FromLane::Released`]) on a queue of its own that never
//!   blocks it; before the main thread acts on `Switched` it takes every burst punted
//!   so far (all sent before the answer), so they reach the NF ahead of the edge's.
//! * **Buffers.** A lane has a pool share ([`onvm_shm::Pool::share`]); the main thread
//!   tops it up every pass, before queue 0 takes its own (the lane publishes what it
//!   holds, [`Stock`]), and a lane holding more than twice its share gives the rest
//!   back ([`FromLane::Free`]).
//! * **Counters** (its queues' port stats, its drops, what each port's fixed rule
//!   matched) are published every millisecond for the main thread to add in; at the
//!   end the lane hands back its pool and queues whole ([`LaneEnd`]).

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, Sender, SyncSender, TryRecvError, TrySendError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use onvm_ports::{Port, PortStats};
use onvm_proto::flow::{PacketKey, PortNo};
use onvm_proto::rss::{Reta, Toeplitz};
use onvm_shm::{BURST, Buf, Consumer, FreeBufs, OwnerId, Pool, Producer, Region};

use crate::drops::{DropReason, Drops};

pub use onvm_proto::edge::{lane_of, lane_owner};

/// Bursts a lane takes from one queue per pass while they come full.
const PASS_BURSTS: usize = 4;
/// Bursts the queue to the main thread holds before the lane drops what it would punt.
const PUNT_QUEUE: usize = 1024;
/// Times a lane yields to a shared-core NF whose edge is full before it drops.
const RING_FULL_YIELDS: u32 = 8;
/// Counters are published this often.
const PUBLISH_EVERY: Duration = Duration::from_millis(1);

/// Where every packet a port receives goes, when the main thread need not see it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Route {
    /// To this one instance.
    One(u16),
    /// To its flow's instance in this table of a service's instances: the main
    /// thread's own pick (the same symmetric Toeplitz hash of the same 5-tuple, the same
    /// table), so a flow's instance does not depend on the queue it arrives on. The
    /// hash goes into the packet's metadata, as the main thread writes it.
    Hashed(Arc<Reta>),
}

impl Route {
    /// The instances it writes to.
    pub fn instances(&self) -> &[u16] {
        match self {
            Route::One(id) => std::slice::from_ref(id),
            Route::Hashed(reta) => reta.instances(),
        }
    }
}

/// What the main thread tells a lane.
#[derive(Debug)]
pub enum ToLane {
    /// Per port number: where every packet of that port goes, if the lane may send it.
    Routes(Vec<Option<Route>>),
    /// Write to `ring` what goes to instance `to`; ring its doorbell through `bell`
    /// (its rx ring) when it sleeps.
    EdgeOut { to: u16, ring: u32, bell: Option<u32> },
    /// Read `ring` (an NF's packets that leave by port `port`) and send what it holds
    /// out of this lane's queue of that port.
    EdgeIn { ring: u32, port: u16 },
    /// Stop writing to `ring`; or, for a ring it reads, read it until it is empty, then
    /// let go of it.
    EdgeClosed { ring: u32 },
    /// Buffers for the lane's share.
    Free(FreeBufs),
    /// Poll the queues (or stop polling them).
    Receive(bool),
    /// End: hand back the pool and the queues.
    Stop,
}

/// Packets received on a port (its number) for the main thread to route.
pub type Punt = (u16, Vec<Buf>);

/// What a lane tells the main thread.
#[derive(Debug)]
pub enum FromLane {
    /// The lane writes `ring` from now on (everything it punted before is ahead of this).
    Switched { ring: u32 },
    /// The lane no longer writes (or reads) `ring`.
    Released { ring: u32 },
    /// Buffers beyond its share (it sent out more than it received), for the main
    /// thread's pool.
    Free(FreeBufs),
}

/// What a lane's pool holds, for the main thread to top it up.
#[derive(Debug, Default)]
pub struct Stock {
    /// Free buffers in its pool after its last pass.
    pub free: AtomicU32,
    /// Buffers it took from [`ToLane::Free`] so far.
    pub taken: AtomicU64,
}

/// A lane's counters, cumulative, as last published.
#[derive(Clone, Debug, Default)]
pub struct LaneCounts {
    /// Per queue, in the order given: (port number, its stats).
    pub queues: Vec<(u16, PortStats)>,
    /// Packets the lane freed, by reason.
    pub drops: Drops,
    /// Per port number: packets and bytes sent by its fixed rule.
    pub fixed: Vec<(u64, u64)>,
    /// Packets handed to the main thread.
    pub punted: u64,
    /// Every queue will never receive again (`Port::rx_done`).
    pub done: bool,
}

/// What a lane hands back when it stops.
pub struct LaneEnd {
    pub pool: Pool,
    pub queues: Vec<(u16, Box<dyn Port>)>,
    pub counts: LaneCounts,
}

/// The main thread's handle on one lane.
pub struct Lane {
    /// Its number (1..).
    pub k: u16,
    /// The ports whose queues it polls.
    pub ports: Vec<u16>,
    pub to: Sender<ToLane>,
    pub from: Receiver<FromLane>,
    pub punts: Receiver<Punt>,
    pub counts: Arc<Mutex<LaneCounts>>,
    pub stock: Arc<Stock>,
    /// Buffers the main thread gave it so far ([`ToLane::Free`]).
    pub given: u64,
    /// Its counters as the main thread last added them in.
    pub seen: LaneCounts,
    thread: Option<JoinHandle<LaneEnd>>,
}

impl Lane {
    /// Start lane `k` on `queues` (port number, queue), with `pool` as its share (it asks
    /// published in [`Lane::stock`]), pinned to `core` if given.
    pub fn start(
        k: u16,
        region: Arc<Region>,
        pool: Pool,
        queues: Vec<(u16, Box<dyn Port>)>,
        nports: usize,
        core: Option<u16>,
    ) -> std::io::Result<Lane> {
        let share = pool.free_count();
        let (to, cmds) = std::sync::mpsc::channel();
        let (tell, from) = std::sync::mpsc::channel();
        let (punt, punts) = std::sync::mpsc::sync_channel(PUNT_QUEUE);
        let counts = Arc::new(Mutex::new(LaneCounts::default()));
        let shared = counts.clone();
        let stock = Arc::new(Stock::default());
        let held = stock.clone();
        let ports = queues.iter().map(|(p, _)| *p).collect();
        let thread = std::thread::Builder::new()
            .name(format!("onvm-lane-{k}"))
            .spawn(move || {
                if let Some(c) = core {
                    let mut set = rustix::thread::CpuSet::new();
                    set.set(usize::from(c));
                    let _ = rustix::thread::sched_setaffinity(None, &set);
                }
                let ends = Ends {
                    cmds,
                    tell,
                    punt,
                    shared,
                    stock: held,
                    share,
                };
                run(&region, pool, queues, nports, &ends)
            })?;
        Ok(Lane {
            k,
            ports,
            to,
            from,
            punts,
            counts,
            stock,
            given: 0,
            seen: LaneCounts::default(),
            thread: Some(thread),
        })
    }

    /// Tell the lane something (a lane that ended hears nothing more).
    pub fn tell(&self, msg: ToLane) {
        let _ = self.to.send(msg);
    }

    /// Stop the lane and take back what it held. `None` if its thread panicked.
    pub fn stop(&mut self) -> Option<LaneEnd> {
        self.tell(ToLane::Stop);
        self.thread.take()?.join().ok()
    }
}

/// One edge the lane writes.
struct Out<'r> {
    to: u16,
    ring: u32,
    prod: Producer<'r>,
    bell: Option<Producer<'r>>,
}

/// One edge the lane reads: an NF's packets that leave by `port`.
struct In<'r> {
    ring: u32,
    port: u16,
    cons: Consumer<'r>,
    /// Its producer let go: read until empty, then answer.
    closing: bool,
}

/// The lane's ends of its queues to and from the main thread.
struct Ends {
    cmds: Receiver<ToLane>,
    tell: Sender<FromLane>,
    punt: SyncSender<Punt>,
    shared: Arc<Mutex<LaneCounts>>,
    stock: Arc<Stock>,
    /// Free buffers beyond twice this many go back to the main thread.
    share: u32,
}

/// The lane's loop.
fn run(
    region: &Arc<Region>,
    mut pool: Pool,
    mut queues: Vec<(u16, Box<dyn Port>)>,
    nports: usize,
    ends: &Ends,
) -> LaneEnd {
    let Ends {
        cmds,
        tell,
        punt: punter,
        shared,
        stock,
        share,
    } = ends;
    let mut routes: Vec<Option<Route>> = vec![None; nports];
    let toeplitz = Toeplitz::symmetric();
    // A hashed route's burst, sorted by instance (`None`: for the main thread).
    let mut parts: Vec<(Option<u16>, Vec<Buf>)> = Vec::new();
    let mut outs: Vec<Out<'_>> = Vec::new();
    let mut ins: Vec<In<'_>> = Vec::new();
    let mut sending: Vec<Buf> = Vec::with_capacity(BURST);
    let mut counts = LaneCounts {
        fixed: vec![(0, 0); nports],
        ..Default::default()
    };
    let mut receiving = false;
    let mut burst: Vec<Buf> = Vec::with_capacity(BURST);
    let mut published = Instant::now();
    let mut idle = 0u32;
    let mut passes = 0u32;
    'run: loop {
        loop {
            let cmd = match cmds.try_recv() {
                Ok(c) => c,
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => break 'run,
            };
            match cmd {
                ToLane::Routes(r) => {
                    routes = r;
                    routes.resize(nports, None);
                }
                ToLane::EdgeOut { to, ring, bell } => {
                    if let Ok(prod) = region.producer(ring) {
                        let bell = bell.and_then(|b| region.producer(b).ok());
                        outs.push(Out { to, ring, prod, bell });
                    }
                    // Everything punted so far is ahead of this answer.
                    let _ = tell.send(FromLane::Switched { ring });
                }
                ToLane::EdgeIn { ring, port } => {
                    if let Ok(cons) = region.consumer(ring) {
                        ins.push(In {
                            ring,
                            port,
                            cons,
                            closing: false,
                        });
                    }
                }
                ToLane::EdgeClosed { ring } => {
                    if let Some(e) = ins.iter_mut().find(|e| e.ring == ring) {
                        e.closing = true;
                    } else {
                        outs.retain(|o| o.ring != ring);
                        let _ = tell.send(FromLane::Released { ring });
                    }
                }
                ToLane::Free(bufs) => {
                    let n = bufs.len() as u64;
                    pool.take(bufs);
                    stock.taken.fetch_add(n, Ordering::Relaxed);
                }
                ToLane::Receive(on) => receiving = on,
                ToLane::Stop => break 'run,
            }
        }
        let mut moved = false;
        if receiving {
            for (port, q) in &mut queues {
                for _ in 0..PASS_BURSTS {
                    let got = q.rx_burst(&mut pool, &mut burst, BURST);
                    if got == 0 {
                        break;
                    }
                    moved = true;
                    match routes.get(usize::from(*port)).and_then(Option::as_ref) {
                        Some(Route::One(to)) => {
                            deliver(Some(*to), &mut outs, punter, *port, &mut burst, &mut pool, &mut counts);
                        }
                        Some(Route::Hashed(reta)) => {
                            split(&pool, &toeplitz, reta, &mut burst, &mut parts);
                            for (to, part) in &mut parts {
                                if !part.is_empty() {
                                    deliver(*to, &mut outs, punter, *port, part, &mut pool, &mut counts);
                                }
                            }
                        }
                        None => punt(punter, *port, &mut burst, &mut pool, &mut counts),
                    }
                    if got < BURST {
                        break;
                    }
                }
            }
        }
        let mut i = 0;
        while i < ins.len() {
            let e = &mut ins[i];
            moved |= send_out(&mut pool, e, &mut queues, &mut sending, &mut counts);
            // Let go once the producer did and the ring is empty (or unreadable: its
            // buffers are the reclaim's then).
            if e.closing && e.cons.ready().unwrap_or(0) == 0 {
                let ring = e.ring;
                ins.swap_remove(i);
                let _ = tell.send(FromLane::Released { ring });
                continue;
            }
            i += 1;
        }
        if pool.free_count() > 2 * *share {
            let _ = tell.send(FromLane::Free(pool.give(pool.free_count() - *share)));
        }
        stock.free.store(pool.free_count(), Ordering::Relaxed);
        passes = passes.wrapping_add(1);
        if passes.is_multiple_of(64) || !moved {
            let now = Instant::now();
            if now.duration_since(published) >= PUBLISH_EVERY {
                published = now;
                publish(&queues, &mut counts, shared);
            }
        }
        if moved {
            idle = 0;
        } else {
            idle = idle.saturating_add(1);
            if idle > 2000 {
                std::thread::sleep(Duration::from_micros(100));
            } else if idle > 100 {
                std::thread::yield_now();
            }
        }
    }
    publish(&queues, &mut counts, shared);
    LaneEnd { pool, queues, counts }
}

/// Send what edge `e` holds out of this lane's queue of its port; whether anything came.
fn send_out(
    pool: &mut Pool,
    e: &mut In<'_>,
    queues: &mut [(u16, Box<dyn Port>)],
    sending: &mut Vec<Buf>,
    counts: &mut LaneCounts,
) -> bool {
    let mut moved = false;
    for _ in 0..PASS_BURSTS {
        // Entries that fail the claim (not sent by the edge's producer to us) are
        // skipped, counted in the holder; a corrupt ring reads as empty until it heals.
        let got = pool.holder().dequeue(&mut e.cons, BURST, sending).unwrap_or(0);
        if got == 0 {
            break;
        }
        moved = true;
        match queues.iter_mut().find(|(p, _)| *p == e.port) {
            Some((_, q)) => {
                q.tx_burst(pool, sending);
            }
            None => {
                counts.drops.add(DropReason::NoSuchPort, sending.len() as u64);
                pool.free_burst(sending);
            }
        }
        if got < BURST {
            break;
        }
    }
    moved
}

/// Send `burst` (received on `port`) into instance `to` through the lane's edge to it,
/// or to the main thread while there is none (or no instance).
fn deliver(
    to: Option<u16>,
    outs: &mut [Out<'_>],
    punter: &SyncSender<Punt>,
    port: u16,
    burst: &mut Vec<Buf>,
    pool: &mut Pool,
    counts: &mut LaneCounts,
) {
    match to.and_then(|to| outs.iter_mut().find(|o| o.to == to)) {
        Some(o) => write(pool, o, port, burst, counts),
        None => punt(punter, port, burst, pool, counts),
    }
}

/// Sort `burst` into `parts` by the instance `reta` picks for each packet's flow (the
/// hash written into its metadata); a packet whose bytes cannot be read, or that no
/// instance takes, goes to the `None` part, for the main thread to drop by its reason.
fn split(
    pool: &Pool,
    toeplitz: &Toeplitz,
    reta: &Reta,
    burst: &mut Vec<Buf>,
    parts: &mut Vec<(Option<u16>, Vec<Buf>)>,
) {
    // Every part is empty here: delivering one sends, drops or punts all of it.
    let holder = pool.holder();
    for mut b in burst.drain(..) {
        let to = holder.packet(&mut b).ok().and_then(|p| {
            let hash = PacketKey::from_frame(PortNo::physical(0), p.data()).rss_hash(toeplitz);
            p.meta().set_flow_hash(hash);
            reta.lookup(hash)
        });
        match parts.iter_mut().find(|p| p.0 == to) {
            Some(p) => p.1.push(b),
            None => {
                let mut v = Vec::with_capacity(BURST);
                v.push(b);
                parts.push((to, v));
            }
        }
    }
}

/// Write `burst` to its edge; what does not fit is dropped as the ring being full.
fn write(pool: &mut Pool, o: &mut Out<'_>, port: u16, burst: &mut Vec<Buf>, counts: &mut LaneCounts) {
    let holder = pool.holder();
    let n = burst.len() as u64;
    let mut bytes = 0u64;
    for b in burst.iter_mut() {
        bytes += holder.packet(b).map_or(0, |p| p.data().len() as u64);
    }
    // A ring error (corrupt indices: some process scribbled them) sends nothing; the
    // burst is dropped, counted as such, and the ring mends when its reader next polls
    // it (each end republishes its own index).
    let mut why = DropReason::RingFull;
    if holder.enqueue(&mut o.prod, OwnerId(o.to), burst).is_err() {
        why = DropReason::RingCorrupt;
    }
    // A full edge into an NF that shares a core empties only when it gets to run: give
    // it the CPU a few times while it takes something each time, as the main thread
    // does for its rx ring (`RING_FULL_YIELDS`), rather than spin on drops.
    if let Some(b) = &o.bell {
        b.notify();
        for _ in 0..RING_FULL_YIELDS {
            if burst.is_empty() {
                break;
            }
            std::thread::yield_now();
            match holder.enqueue(&mut o.prod, OwnerId(o.to), burst) {
                Ok(n) if n > 0 => b.notify(),
                Ok(_) => break,
                Err(_) => {
                    why = DropReason::RingCorrupt;
                    break;
                }
            }
        }
    }
    let left = burst.len() as u64;
    for b in burst.iter_mut() {
        bytes -= holder.packet(b).map_or(0, |p| p.data().len() as u64);
    }
    if let Some(f) = counts.fixed.get_mut(usize::from(port)) {
        f.0 += n - left;
        f.1 += bytes;
    }
    if left > 0 {
        counts.drops.add(why, left);
        pool.free_burst(burst);
        // The NF is behind: receiving more now only makes drops, and where this thread
        // shares a CPU with the NF (more polling threads than CPUs) it takes the time
        // the NF needs. Let whatever else is runnable here go first.
        std::thread::yield_now();
    }
}

/// Hand `burst` to the main thread; if its queue is full, drop it as `switch-behind`.
fn punt(to: &SyncSender<Punt>, port: u16, burst: &mut Vec<Buf>, pool: &mut Pool, counts: &mut LaneCounts) {
    counts.punted += burst.len() as u64;
    let bufs = std::mem::replace(burst, Vec::with_capacity(BURST));
    if let Err(TrySendError::Full((_, mut bufs)) | TrySendError::Disconnected((_, mut bufs))) =
        to.try_send((port, bufs))
    {
        counts.punted -= bufs.len() as u64;
        counts.drops.add(DropReason::SwitchBehind, bufs.len() as u64);
        pool.free_burst(&mut bufs);
    }
}

/// Publish the counters for the main thread.
fn publish(queues: &[(u16, Box<dyn Port>)], counts: &mut LaneCounts, shared: &Mutex<LaneCounts>) {
    counts.queues.clear();
    counts.queues.extend(queues.iter().map(|(p, q)| (*p, q.stats())));
    counts.done = queues.iter().all(|(_, q)| q.rx_done());
    *shared.lock().unwrap_or_else(|e| e.into_inner()) = counts.clone();
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use onvm_ports::{GenPort, NullPort};
    use onvm_proto::port::GenSpec;
    use onvm_shm::{BackingChoice, RegionConfig};

    use super::*;

    /// Wait up to 10 s for `f` to give something.
    fn within<T>(mut f: impl FnMut() -> Option<T>) -> T {
        let t = Instant::now();
        loop {
            if let Some(v) = f() {
                return v;
            }
            assert!(t.elapsed() < Duration::from_secs(10), "timed out");
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    /// A region of 512 buffers and `rings` rings of `capacity`, and the pool of all of it.
    fn region(rings: u32, capacity: u32) -> (Arc<Region>, Pool) {
        let region = Region::create(&RegionConfig {
            buffers: 512,
            rings,
            ring_capacity: capacity,
            backing: BackingChoice::Normal,
            ..Default::default()
        })
        .unwrap();
        let pool = Pool::new(&region).unwrap();
        (region, pool)
    }

    #[test]
    fn a_hashed_route_sends_each_flow_to_the_instance_its_hash_picks() {
        let (region, mut pool) = region(3, 256);
        let owner = lane_owner(1);
        let share = pool.share(OwnerId(owner), 256).unwrap();
        let spec = GenSpec {
            flows: 16,
            ..GenSpec::default()
        };
        let queues: Vec<(u16, Box<dyn Port>)> = vec![(0, Box::new(GenPort::new(&spec, 0, Some(96))))];
        let mut lane = Lane::start(1, region.clone(), share, queues, 1, None).unwrap();
        let reta = Reta::new(&[7, 8]).unwrap();
        lane.tell(ToLane::Routes(vec![Some(Route::Hashed(Arc::new(reta.clone())))]));
        for (to, ring) in [(7u16, 1u32), (8, 2)] {
            region.ring(ring).unwrap().set_ends(owner, to);
            lane.tell(ToLane::EdgeOut { to, ring, bell: None });
            let switched = within(|| match lane.from.try_recv() {
                Ok(FromLane::Switched { ring }) => Some(ring),
                Ok(other) => panic!("{other:?}"),
                Err(_) => None,
            });
            assert_eq!(switched, ring);
        }
        lane.tell(ToLane::Receive(true));

        // Every packet reaches the instance the table gives its flow's hash, with the
        // hash in its metadata; none goes to the main thread.
        let toeplitz = Toeplitz::symmetric();
        let mut seen = [0u64; 2];
        let mut got = Vec::new();
        within(|| {
            for (i, (to, ring)) in [(7u16, 1u32), (8, 2)].into_iter().enumerate() {
                let nf = region.holder(OwnerId(to)).unwrap();
                let mut cons = region.consumer(ring).unwrap();
                nf.dequeue(&mut cons, 32, &mut got).unwrap();
                for b in &mut got {
                    let p = nf.packet(b).unwrap();
                    let hash = PacketKey::from_frame(PortNo::physical(0), p.data()).rss_hash(&toeplitz);
                    assert_eq!(p.meta().flow_hash(), hash);
                    assert_eq!(reta.lookup(hash), Some(to), "a flow at the wrong instance");
                    seen[i] += 1;
                }
                assert_eq!(nf.rejected(), 0);
                for b in got.drain(..) {
                    pool.free(b);
                }
            }
            (seen[0] + seen[1] == 96).then_some(())
        });
        assert!(seen[0] > 0 && seen[1] > 0, "16 flows over two instances: {seen:?}");
        assert!(lane.punts.try_recv().is_err(), "nothing for the main thread");

        let mut end = lane.stop().expect("the lane ended cleanly");
        assert_eq!(end.counts.fixed[0].0, 96, "counted on port 0's rule");
        pool.take(end.pool.give(u32::MAX));
        drop(end);
        let a = pool.audit(&[]);
        assert!(a.is_whole() && a.free == 512, "{a}");
    }

    #[test]
    fn a_lane_punts_until_its_edge_opens_then_writes_it_and_hands_everything_back() {
        let (region, mut pool) = region(2, 64);
        let owner = lane_owner(1);
        assert_eq!(lane_of(owner), Some(1));
        assert_eq!(
            (lane_of(1), lane_of(0)),
            (None, None),
            "NF instances and the manager are no lanes"
        );
        let share = pool.share(OwnerId(owner), 128).unwrap();
        let queues: Vec<(u16, Box<dyn Port>)> = vec![(0, Box::new(NullPort::receiving(0, 64)))];
        let mut lane = Lane::start(1, region.clone(), share, queues, 2, None).unwrap();
        lane.tell(ToLane::Routes(vec![Some(Route::One(7)), None]));
        lane.tell(ToLane::Receive(true));

        // No edge yet: what it receives comes to us, stamped with its port.
        let (port, mut bufs) = within(|| lane.punts.try_recv().ok());
        assert_eq!(port, 0);
        assert!(!bufs.is_empty());
        pool.free_burst(&mut bufs);

        // The edge into instance 7: the lane answers, then writes it (the ring fills,
        // what does not fit is dropped, counted).
        let ring = region.ring(1).unwrap();
        ring.set_ends(owner, 7);
        lane.tell(ToLane::EdgeOut {
            to: 7,
            ring: 1,
            bell: None,
        });
        let switched = within(|| match lane.from.try_recv() {
            Ok(FromLane::Switched { ring }) => Some(ring),
            Ok(other) => panic!("{other:?}"),
            Err(_) => None,
        });
        assert_eq!(switched, 1);
        // Its share went out in punts: what comes back to us it gets again.
        while let Ok((_, mut bufs)) = lane.punts.try_recv() {
            pool.free_burst(&mut bufs);
        }
        lane.tell(ToLane::Free(pool.give(200)));
        let nf = region.holder(OwnerId(7)).unwrap();
        let mut cons = region.consumer(1).unwrap();
        let mut got = Vec::new();
        within(|| (nf.dequeue(&mut cons, 32, &mut got).unwrap() > 0).then_some(()));
        assert_eq!(nf.rejected(), 0, "sent as the lane, to instance 7");
        within(|| (lane.counts.lock().unwrap().drops.get(DropReason::RingFull) > 0).then_some(()));

        // Closed: it lets go, and stops: pool, queue and counters come back.
        lane.tell(ToLane::EdgeClosed { ring: 1 });
        let released = within(|| match lane.from.try_recv() {
            Ok(FromLane::Released { ring }) => Some(ring),
            Ok(other) => panic!("{other:?}"),
            Err(_) => None,
        });
        assert_eq!(released, 1);
        let end = lane.stop().expect("the lane ended cleanly");
        let fixed = end.counts.fixed[0].0;
        assert!(fixed >= got.len() as u64, "counted on port 0's rule: {fixed}");
        assert_eq!(end.queues.len(), 1);
        // Everything back in one pool: what the NF got, what is still in the edge.
        for b in got.drain(..) {
            pool.free(b);
        }
        while nf.dequeue(&mut cons, 32, &mut got).unwrap() > 0 {
            pool.free_burst(&mut got);
        }
        let mut end = end;
        pool.take(end.pool.give(u32::MAX));
        while let Ok((_, mut bufs)) = lane.punts.try_recv() {
            pool.free_burst(&mut bufs);
        }
        drop(end);
        let a = pool.audit(&[]);
        assert!(a.is_whole() && a.free == 512, "{a}");
    }
}
