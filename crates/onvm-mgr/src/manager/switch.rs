//! The switch loop: poll ports and NF tx rings, route, flush to rx rings and ports;
//! between passes, the timers' jobs; when idle, back off to sleep.
//!
//! Order of one pass: every port's receive (when receiving), every running NF's tx
//! ring, then the flush. After it: doorbells that are due, the control tick (every
//! [`CONTROL_EVERY`] under load, every pass when idle), rule expiry, stats.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime};

use onvm_proto::ctrl::MgrMsg;
use onvm_proto::edge::MANAGER;
use onvm_proto::limits::{EDGE_RINGS, FIRST_EDGE_RING, MAX_INSTANCES};
use onvm_proto::verdict::Verdict;
use onvm_shm::{BURST, OwnerId, RingError};

use super::autoscale;
use super::control::worth_logging;
use super::profile::Phase;
use super::timers::Timer;
use super::watchdog::Change;
use super::{
    CONTROL_EVERY, DRAIN_GRACE, DropReason, FromEdge, LOW_WATER_DIV, Mgr, NfRings, RING_FULL_YIELDS, STOP_GRACE,
    WAKE_BATCH, WAKE_DELAY,
};
use crate::capture::Point;
use crate::error::MgrError;
use crate::options::StatsMode;
use crate::registry::rings_of;
use crate::stats;

/// Bursts a pass takes from one port or one edge to the manager while they come full:
/// the queues it fills are then flushed (into NF rings, out of ports) once per several
/// bursts, and each flush's cross-core index publication is shared by more packets.
const PASS_BURSTS: usize = 4;

impl Mgr<'_> {
    pub(super) fn main_loop(&mut self, stop: &AtomicBool) -> Result<(), MgrError> {
        let described: Vec<String> = self
            .io
            .ports
            .iter()
            .enumerate()
            .map(|(i, p)| format!("port {i}: {}", p.describe()))
            .collect();
        for d in described {
            self.fwd.acct.event(d);
        }
        // A baseline at start, so the first interval already shows rates.
        let mut prev = Some(self.snapshot());
        let mut idle_since = Instant::now();
        let mut idle_spins = 0u32;
        if self.opts.stats == StatsMode::Csv {
            stats::emit(format_args!("{}", stats::csv_header()));
        }
        let mut waiting = self.opts.wait_for_nfs;
        self.io.rx_on = waiting.is_none();
        self.lanes.receive(self.io.rx_on);
        if self.io.rx_on {
            self.fwd.acct.event("ports receiving".into());
        }
        loop {
            if let Some((n, max)) = waiting
                && (self.io.active.len() >= n || self.start.elapsed() >= max)
            {
                if self.io.active.len() < n {
                    let running = self.io.active.len();
                    self.fwd.acct.event(format!(
                        "only {running} of {n} NFs running after {max:?}; ports start anyway"
                    ));
                }
                waiting = None;
                self.io.rx_on = true;
                self.lanes.receive(true);
                self.fwd.acct.event("ports receiving".into());
            }
            self.io.moved = false;
            self.switch_once()?;
            let now = Instant::now();
            self.fwd.now = now.duration_since(self.start);
            self.ring_due_bells(now, !self.io.moved);
            if !self.io.moved {
                // Idle: serve the control sockets now rather than in up to a millisecond,
                // and mend any ring a process scribbled (cheap: nothing else to do).
                self.timers.now(Timer::Control, now);
                self.heal_rings();
            }
            if self.timers.fire(Timer::Control, now) {
                self.control_tick()?;
                self.pressure_round();
            }
            // After the control tick: a controller's message counts as work too.
            if self.io.moved {
                idle_since = now;
                idle_spins = 0;
            }
            if self.timers.fire(Timer::Expire, now) {
                self.expire_rules();
            }
            if self.timers.fire(Timer::Watchdog, now) {
                self.watch(now);
                self.autoscale_round(now);
            }
            if self.timers.fire(Timer::Stats, now) {
                let snap = self.snapshot();
                match self.opts.stats {
                    StatsMode::Off => {}
                    StatsMode::Console => stats::emit(format_args!("{}\n", stats::console(prev.as_ref(), &snap))),
                    StatsMode::Csv => stats::emit(format_args!(
                        "{}",
                        stats::csv_lines(prev.as_ref(), &snap, SystemTime::now())
                    )),
                }
                self.fwd.acct.recent_events.clear();
                prev = Some(snap);
            }
            if stop.load(Ordering::Relaxed) {
                break;
            }
            if let Some(d) = self.opts.run_for
                && self.fwd.now >= d
            {
                break;
            }
            if let Some(d) = self.opts.exit_when_drained
                && self.io.rx_on
                && self.io.ports.iter().all(|p| p.rx_done())
                && now.duration_since(idle_since) >= d
                && self.lanes.rx_done()
            {
                break;
            }
            if !self.io.moved {
                idle_spins = idle_spins.saturating_add(1);
                // Back off: spin a little, then yield, then sleep until an NF rings the
                // wake-up bell (or 1 ms passes: ports and control sockets need polls).
                // (Receive threads hand over packets without ringing the bell: short
                // naps then.)
                if idle_spins > 2000 && !self.lanes.is_empty() {
                    std::thread::sleep(Duration::from_micros(100));
                } else if idle_spins > 2000 {
                    self.sleep(CONTROL_EVERY);
                } else if idle_spins > 100 {
                    std::thread::yield_now();
                }
            }
        }
        self.shutdown()
    }

    /// Sleep on the wake-up bell unless an NF's transmit ring already holds packets.
    fn sleep(&mut self, timeout: Duration) {
        let io = &mut self.io;
        let (rings, active, edges) = (&mut io.rings, &io.active, &mut io.from_edges);
        io.wake.wait_until(
            |_| {
                // A corrupt ring is not ready: the NF's next write mends it and rings.
                active
                    .iter()
                    .any(|&id| rings[usize::from(id) - 1].tx.ready().is_ok_and(|n| n > 0))
                    || edges.iter_mut().any(|e| e.cons.ready().is_ok_and(|n| n > 0))
            },
            Some(timeout),
        );
    }

    /// One pass: every port's receive, every NF's transmit ring, then flush.
    pub(super) fn switch_once(&mut self) -> Result<(), MgrError> {
        self.prof.end(Phase::Rest);
        // The receive threads first: under load the free buffers are the ones the last
        // pass's transmits gave back, and a lane that asked for some gets its share of
        // them before queue 0 takes the rest.
        if !self.lanes.is_empty() {
            self.serve_lanes();
        }
        let (io, fwd, prof) = (&mut self.io, &mut self.fwd, &mut self.prof);
        let nports = if io.rx_on { io.ports.len() } else { 0 };
        for p in 0..nports {
            if self.nfq.polled[p] {
                continue; // an NF polls it itself (`nf_queues.rs`)
            }
            // Its packets land in buffers of its node (a no-op with one slice).
            fwd.pool.prefer_node(self.place.port_buffer_node(p));
            for _ in 0..PASS_BURSTS {
                let got = io.ports[p].rx_burst(&mut fwd.pool, &mut io.burst, BURST);
                prof.end(Phase::Rx);
                if got > 0 {
                    io.moved = true;
                    if fwd.taps.on(Point::PortRx(p as u16)) {
                        fwd.taps
                            .copy_bufs(Point::PortRx(p as u16), fwd.pool.holder(), &mut io.burst);
                    }
                    fwd.ingress_port_burst(p as u16, &mut io.burst);
                    prof.end(Phase::Classify);
                }
                if got < BURST {
                    break;
                }
            }
        }
        for k in 0..self.io.active.len() {
            let id = self.io.active[k];
            self.drain_nf(id);
        }
        for i in 0..self.io.from_edges.len() {
            for _ in 0..PASS_BURSTS {
                if self.drain_edge(i) < BURST {
                    break;
                }
            }
        }
        self.prof.end(Phase::Dequeue);
        self.flush();
        Ok(())
    }

    /// Route one burst from instance `id`'s tx ring; whether it had any. A corrupt ring
    /// gives nothing this time (counted, an event now and then) and is read again next
    /// pass: some process scribbled it, not necessarily its NF, which is not
    /// disconnected for it. Our read republished our index, which mends our half.
    fn drain_nf(&mut self, id: u16) -> bool {
        let (io, fwd) = (&mut self.io, &mut self.fwd);
        let ring = &mut io.rings[usize::from(id) - 1].tx;
        let n = match fwd.pool.holder().dequeue(ring, BURST, &mut io.burst) {
            Ok(n) => n,
            Err(e) => {
                let times = self.watchdog.ring_corrupt(id);
                if worth_logging(times) {
                    let tag = fwd.reg.get(id).map_or("", |i| i.tag.as_str());
                    fwd.acct.event(format!(
                        "NF {tag:?} (instance {id}): its tx ring (ring {}) is corrupt, read again next pass ({times} times so far): {e}",
                        rings_of(id).tx
                    ));
                }
                0
            }
        };
        if n == 0 {
            return false;
        }
        io.moved = true;
        fwd.ingress_nf_burst(id, &mut io.burst, None);
        true
    }

    /// Route one burst from the edge to the manager at `i` of `Io::from_edges`; whether
    /// it had any. A corrupt ring gives nothing (it heals when the manager is idle).
    fn drain_edge(&mut self, i: usize) -> usize {
        let (io, fwd) = (&mut self.io, &mut self.fwd);
        let e = &mut io.from_edges[i];
        let n = fwd
            .pool
            .holder()
            .dequeue(&mut e.cons, BURST, &mut io.burst)
            .unwrap_or(0);
        if n == 0 {
            return 0;
        }
        io.moved = true;
        let v = match e.key {
            0 => Verdict::Next,
            s => Verdict::ToService(s),
        };
        fwd.ingress_nf_burst(e.from, &mut io.burst, Some(v));
        n
    }

    /// Route everything in the edge to the manager at `i` (at most a ring's worth:
    /// a producer that keeps writing cannot hold the manager).
    fn drain_edge_fully(&mut self, i: usize) {
        self.up_to_a_ring(|m| m.drain_edge(i) > 0);
    }

    /// Run `burst` (one burst from a ring; whether it had any) until it finds the ring
    /// empty or has read a ring's worth.
    fn up_to_a_ring(&mut self, mut burst: impl FnMut(&mut Self) -> bool) {
        let bursts = self.fwd.region.layout().ring_capacity as usize / BURST + 1;
        for _ in 0..bursts {
            if !burst(self) {
                return;
            }
        }
    }

    /// Route what instance `id` wrote into its edges to the manager (it is going).
    pub(super) fn drain_edges_from(&mut self, id: u16) {
        for i in 0..self.io.from_edges.len() {
            if self.io.from_edges[i].from == id {
                self.drain_edge_fully(i);
            }
        }
    }

    /// Keep the edges the manager reads in step with the edge table: start reading
    /// those whose producer switched to them, and empty and free those whose producer
    /// let go (or died). Called when a producer answers and every control tick.
    pub(super) fn settle_manager_edges(&mut self) {
        let listed: Vec<(u32, u16, u16, bool)> = self.fwd.direct.edges.for_manager().collect();
        self.io
            .from_edges
            .retain(|e| listed.iter().any(|&(ring, ..)| ring == e.ring));
        for (ring, from, key, closing) in listed {
            let i = match self.io.from_edges.iter().position(|e| e.ring == ring) {
                Some(i) => i,
                None => {
                    let Ok(cons) = self.fwd.region.consumer(ring) else {
                        continue;
                    };
                    self.io.from_edges.push(FromEdge { ring, from, key, cons });
                    self.io.from_edges.len() - 1
                }
            };
            if !closing {
                continue;
            }
            // The producer no longer writes it: once empty, it is free. A ring left
            // corrupt is emptied of what can be read and freed too; its ends reset.
            self.drain_edge_fully(i);
            let left = self.io.from_edges[i].cons.ready();
            let corrupt = left.is_err();
            if (left == Ok(0) || corrupt)
                && self
                    .fwd
                    .direct
                    .edges
                    .released(MANAGER, ring, &mut self.fwd.outbox)
                    .is_some()
                && let Ok(r) = self.fwd.region.ring(ring)
            {
                if corrupt {
                    r.reset();
                }
                r.set_ends(0, 0);
                self.io.from_edges.swap_remove(i);
            }
        }
    }

    /// Route what instance `id`'s tx ring holds: at most one ring's worth, so a process
    /// that keeps publishing (after its socket closed, say) cannot hold the manager;
    /// anything left is reclaimed as half-sent.
    pub(super) fn drain_nf_fully(&mut self, id: u16) {
        self.up_to_a_ring(|m| m.drain_nf(id));
    }

    /// Ring the doorbells of shared-core NFs whose packets waited [`WAKE_DELAY`], or all
    /// that have packets waiting when `all` (the manager is about to idle).
    fn ring_due_bells(&mut self, now: Instant, all: bool) {
        let io = &mut self.io;
        for &id in &io.active {
            let i = usize::from(id) - 1;
            if let Some(t) = io.unwoken[i]
                && (all || now.duration_since(t) >= WAKE_DELAY)
            {
                io.rings[i].rx.notify();
                io.unwoken[i] = None;
            }
        }
    }

    /// Queued packets into NF rx rings (ringing doorbells) and out of ports.
    pub(super) fn flush(&mut self) {
        let (io, fwd) = (&mut self.io, &mut self.fwd);
        let capacity = fwd.region.layout().ring_capacity;
        let low_water = fwd.region.buffers() / LOW_WATER_DIV;
        for &id in &io.active {
            let i = usize::from(id) - 1;
            let q = &mut fwd.to_nf[i];
            if q.is_empty() {
                continue;
            }
            if fwd.taps.on(Point::NfRx(id)) {
                fwd.taps.copy_bufs(Point::NfRx(id), fwd.pool.holder(), q);
            }
            let rx = &mut io.rings[i].rx;
            // When the pool runs low, what waits in an NF's rings (its rx ring and the
            // edges into it) counts against its quota too: a stopped NF's ring (4096
            // slots) could otherwise hold a small pool whole before the watchdog acts.
            // Not before: a burst may fill a ring that is read. A hung NF's always: it
            // reads nothing, so nothing sent to it needs room for a burst.
            let (quota, shared, hung) = fwd
                .reg
                .get(id)
                .map_or((u32::MAX, false, false), |inst| (inst.quota, inst.shared, inst.hung));
            if quota < capacity && (hung || fwd.pool.free_count() < low_water) {
                let on_edges: u32 = fwd
                    .direct
                    .edges
                    .iter()
                    .filter(|e| e.to == id)
                    .filter_map(|e| fwd.region.ring(e.ring).ok()?.len().ok())
                    .sum();
                let queued = rx.free().map_or(0, |f| capacity - f) + on_edges;
                let room = quota.saturating_sub(queued) as usize;
                if q.len() > room {
                    fwd.acct.drop_all(&mut fwd.pool, q.drain(room..), DropReason::OverQuota);
                }
            }
            let holder = fwd.pool.holder();
            match holder.enqueue(rx, OwnerId(id), q) {
                Ok(_) => {}
                // A buffer of another region in our queue is our bug, not the NF's: the
                // burst is refused whole; the pool frees ours and refuses the other.
                Err(e @ RingError::ForeignBuf { .. }) => {
                    fwd.acct.event(format!(
                        "bug: a buffer of another region was routed to instance {id}: {e}"
                    ));
                    fwd.acct.drop_all(&mut fwd.pool, q.drain(..), DropReason::BadBuffer);
                    continue;
                }
                // Corrupt indices (some process scribbled them): no room this time, a
                // counted drop of its own; the NF is not disconnected for what it may
                // not have done. The ring mends when the NF next polls it.
                Err(e) => {
                    let times = self.watchdog.ring_corrupt(id);
                    if worth_logging(times) {
                        let tag = fwd.reg.get(id).map_or("", |i| i.tag.as_str());
                        fwd.acct.event(format!(
                            "NF {tag:?} (instance {id}): its rx ring (ring {}) is corrupt, {} packets dropped as ring-corrupt ({times} times so far): {e}",
                            rings_of(id).rx,
                            q.len()
                        ));
                    }
                    fwd.acct.drop_all(&mut fwd.pool, q.drain(..), DropReason::RingCorrupt);
                    continue;
                }
            }
            if shared {
                // Only shared-core NFs sleep; the doorbell's fence is not free.
                let queued = rx.free().map_or(WAKE_BATCH, |f| capacity - f);
                if queued >= WAKE_BATCH || !q.is_empty() {
                    rx.notify();
                    io.unwoken[i] = None;
                } else if io.unwoken[i].is_none() {
                    io.unwoken[i] = Some(Instant::now());
                }
                // A full ring of an NF that shares a core (maybe ours) empties only when
                // it gets to run: give it the CPU a few times before dropping, while it
                // takes something each time. One that took nothing is busy (in a slow
                // handler) or waits on us (its flush, for us to drain its tx ring):
                // more yields would only slow us (on a busy machine each is a whole time
                // slice: a chain with a slow NF crawled at a thousand packets a second).
                for _ in 0..RING_FULL_YIELDS {
                    if q.is_empty() {
                        break;
                    }
                    std::thread::yield_now();
                    match holder.enqueue(rx, OwnerId(id), q) {
                        Ok(n) if n > 0 => rx.notify(),
                        _ => break,
                    }
                }
            }
            if !q.is_empty() {
                let why = fwd.reg.ring_full(id, q.len() as u64);
                fwd.acct.drop_all(&mut fwd.pool, q.drain(..), why);
            }
        }
        self.prof.end(Phase::Enqueue);
        for (p, (port, q)) in io.ports.iter_mut().zip(&mut fwd.to_port).enumerate() {
            if !q.is_empty() {
                if fwd.taps.on(Point::PortTx(p as u16)) {
                    fwd.taps.copy_bufs(Point::PortTx(p as u16), fwd.pool.holder(), q);
                }
                port.tx_burst(&mut fwd.pool, q);
            }
        }
        self.prof.end(Phase::Tx);
    }

    /// Republish our indices of every running NF's rings (rx and alloc, which we
    /// write; tx, which we read), should a process have scribbled them: a ring we have
    /// nothing to write to or read from heals too (the rings' hot paths do not). One
    /// relaxed load per ring when nothing is wrong; done when idle and every watchdog
    /// round.
    pub(super) fn heal_rings(&mut self) {
        let io = &self.io;
        for &id in &io.active {
            let r = &io.rings[usize::from(id) - 1];
            r.rx.heal();
            r.tx.heal();
            r.alloc.heal();
        }
        for e in &io.from_edges {
            e.cons.heal();
        }
    }

    /// Reset rings nobody uses whose indices a process scribbled: edge rings no edge
    /// uses, and the rx, tx and alloc rings of instance IDs nobody holds. Nobody
    /// produces into or consumes from them (both ends of an edge let go before it is
    /// forgotten; a departed NF's rings were reset when it went), so nobody else would
    /// ever mend them, the audit would report them corrupt for good, and the next NF on
    /// the ID would start on a corrupt ring. O(rings), every watchdog round.
    fn reset_idle_rings(&mut self) {
        let (io, fwd) = (&mut self.io, &self.fwd);
        let corrupt = |r: u32| fwd.region.ring(r).ok().filter(|ring| ring.len().is_err());
        for r in FIRST_EDGE_RING..FIRST_EDGE_RING + EDGE_RINGS {
            if !fwd.direct.edges.iter().any(|e| e.ring == r)
                && let Some(ring) = corrupt(r)
            {
                ring.reset();
            }
        }
        for id in 1..=MAX_INSTANCES {
            if fwd.reg.get(id).is_some() {
                continue;
            }
            let rings = rings_of(id);
            let mut reset = false;
            for r in [rings.rx, rings.tx, rings.alloc] {
                if let Some(ring) = corrupt(r) {
                    ring.reset();
                    reset = true;
                }
            }
            // Our ends start afresh from the mended indices (as when an NF goes).
            if reset && let Ok(ours) = NfRings::of(fwd.region, id) {
                io.rings[usize::from(id) - 1] = ours;
            }
        }
    }

    /// The watchdog's round: every running NF whose rings (its rx ring and the direct
    /// edges it reads) hold packets and have not moved for the watchdog's time is hung:
    /// reported, its flows moved to its service's other instances, edges closed (so its
    /// senders go through the manager, where its quota and `nf-hung` apply, and none
    /// opens into it while it is hung); an NF that reads again gets them back.
    fn watch(&mut self, now: Instant) {
        self.heal_rings();
        self.reset_idle_rings();
        let (io, fwd) = (&mut self.io, &mut self.fwd);
        let mut changed = false;
        for &id in &io.active {
            let (mut waiting, mut consumed) = (false, Vec::new());
            for r in fwd.rings_read_by(id) {
                let Ok(ring) = fwd.region.ring(r) else {
                    continue;
                };
                // A corrupt ring is no evidence of a hang: someone scribbled it.
                waiting |= ring.len().is_ok_and(|n| n > 0);
                consumed.push((r, ring.consumed()));
            }
            let Some(change) = self.watchdog.observe(id, &consumed, waiting, now) else {
                continue;
            };
            let (tag, service) = fwd
                .reg
                .get(id)
                .map_or((String::new(), 0), |i| (i.tag.clone(), i.service));
            let before = fwd.reta_now(service);
            let moved = fwd.reg.set_hung(id, matches!(change, Change::Hung { .. }));
            fwd.hand_over(service, before, now);
            let flows = match (moved, change) {
                (true, Change::Hung { .. }) => format!("its flows go to the other instances of service {service}"),
                (false, Change::Hung { .. }) => format!("service {service} has no other instance to take its flows"),
                (_, Change::Resumed) => "it takes its flows back".to_string(),
            };
            let what = match change {
                Change::Hung { for_ } => {
                    format!("hung: the rings it reads hold packets and it has not read for {for_:?}")
                }
                Change::Resumed => "reads its rings again".to_string(),
            };
            fwd.acct.event(format!("NF {tag:?} (instance {id}) {what}; {flows}"));
            if self.opts.kill_hung && matches!(change, Change::Hung { .. }) {
                let event = kill_instance(&self.ctl, id);
                fwd.acct.event(format!("NF {tag:?} (instance {id}): {event}"));
            }
            changed = true;
        }
        if changed {
            fwd.topology_changed();
        }
    }

    /// Backpressure's round (every control tick, when it is on): how full the rings
    /// each running NF reads are, and so which chain entries drop (see `pressure.rs`).
    fn pressure_round(&mut self) {
        let (io, fwd) = (&self.io, &mut self.fwd);
        if !fwd.pressure.on() {
            return;
        }
        let mut changed = false;
        for &id in &io.active {
            let (waiting, room) = fwd.fullest_ring(id);
            let hung = fwd.reg.get(id).is_some_and(|i| i.hung);
            if let Some(c) = fwd.pressure.observe(id, waiting, room, hung) {
                changed = true;
                let tag = match fwd.reg.get_mut(id) {
                    Some(i) => {
                        i.behind = c.congested;
                        i.tag.clone()
                    }
                    None => String::new(),
                };
                fwd.acct.event(if c.congested {
                    format!(
                        "backpressure: NF {tag:?} (instance {id}) is behind ({} of {} waiting): packets for it are let into its chain only as it makes room",
                        c.waiting, c.room
                    )
                } else {
                    format!("backpressure: NF {tag:?} (instance {id}) is hung: left to the watchdog")
                });
            }
        }
        // While one is behind, its backlog moves every round: so do the credits.
        if changed || fwd.pressure.pressing() {
            fwd.settle_pressure(&io.active);
        }
    }

    /// Autoscaling's round (every watchdog round): each autoscaled service's running
    /// instances and their fullest ring; what the policy asks for goes to the
    /// supervisor, its answers and the first packets of a new instance become events.
    fn autoscale_round(&mut self, now: Instant) {
        let fwd = &mut self.fwd;
        // The supervisor's answers to earlier requests.
        self.scaling.answers.retain_mut(|(what, rx)| match rx.try_recv() {
            Ok(Ok(line)) => {
                fwd.acct.event(format!("autoscale: {what}: {line}"));
                false
            }
            Ok(Err(why)) => {
                fwd.acct.event(format!("autoscale: {what}: refused: {why}"));
                false
            }
            Err(tokio::sync::oneshot::error::TryRecvError::Empty) => true,
            Err(tokio::sync::oneshot::error::TryRecvError::Closed) => false,
        });
        // A new instance's first packets: how long after its load began.
        self.scaling.waiting.retain(|w| {
            let Some(new) = fwd
                .reg
                .iter()
                .find(|i| i.service == w.service && !w.before.contains(&i.id) && i.counters.rx > 0)
            else {
                return now.duration_since(w.asked) < autoscale::ASK_TIMEOUT * 2;
            };
            fwd.acct.event(format!(
                "autoscale: service {}: instance {} took traffic {:.0} ms after the load began ({:.0} ms after the request)",
                w.name,
                new.id,
                now.duration_since(w.since).as_secs_f64() * 1e3,
                now.duration_since(w.asked).as_secs_f64() * 1e3,
            ));
            false
        });
        let rules: Vec<(u16, String)> = self
            .scaling
            .scaler
            .rules()
            .map(|r| (r.service, r.name.clone()))
            .collect();
        for (k, (service, name)) in rules.into_iter().enumerate() {
            let ids: Vec<u16> = fwd
                .reg
                .iter()
                .filter(|i| i.service == service && i.state == crate::registry::State::Running)
                .map(|i| i.id)
                .collect();
            let percent = ids
                .iter()
                .map(|&id| {
                    let (w, room) = fwd.fullest_ring(id);
                    // An rx ring may hold more than the quota (the manager caps it
                    // there only when the pool runs low): full is full.
                    (u64::from(w) * 100 / u64::from(room.max(1))).min(100) as u32
                })
                .max()
                .unwrap_or(0);
            let Some(ask) = self.scaling.scaler.observe(k, ids.len() as u16, percent, now) else {
                continue;
            };
            let what = format!("service {name}: {} -> {} instance(s)", ask.from, ask.to);
            let how_long = now.duration_since(ask.since).as_secs_f64() * 1e3;
            let Some(sup) = &self.opts.supervisor else {
                fwd.acct.event(format!(
                    "autoscale: {what} wanted, but no supervisor runs the NFs (a manager alone; use onvm up)"
                ));
                continue;
            };
            let (reply, rx) = tokio::sync::oneshot::channel();
            let req = crate::supervisor::Request {
                command: crate::supervisor::Command::Scale {
                    service: name.clone(),
                    instances: ask.to,
                },
                reply,
            };
            if sup.send(req).is_err() {
                fwd.acct
                    .event(format!("autoscale: {what} wanted, but the supervisor is gone"));
                continue;
            }
            let mark = self.scaling.scaler.mark(k);
            fwd.acct.event(if ask.to > ask.from {
                format!("autoscale: {what}: its fullest ring over {mark} % for {how_long:.0} ms (now {percent} %)")
            } else {
                format!(
                    "autoscale: {what}: its fullest ring under {} % for {how_long:.0} ms (now {percent} %)",
                    mark / 4
                )
            });
            self.scaling.answers.push((what, rx));
            if ask.to > ask.from {
                self.scaling.waiting.push(autoscale::Waiting {
                    service,
                    name,
                    before: ids,
                    since: ask.since,
                    asked: now,
                });
            }
        }
    }

    /// Stop receiving, let packets in flight finish their chains, then tell every NF to
    /// stop, keep switching while they do, and reclaim stragglers.
    fn shutdown(&mut self) -> Result<(), MgrError> {
        self.io.rx_on = false;
        // Receive threads stop receiving, but send out what NFs give them until the
        // NFs are gone.
        self.lanes.receive(false);
        let t = Instant::now();
        let mut quiet = Instant::now();
        while t.elapsed() < DRAIN_GRACE && quiet.elapsed() < Duration::from_millis(50) {
            self.io.moved = false;
            self.switch_once()?;
            self.control_tick()?;
            if self.io.moved {
                quiet = Instant::now();
            } else {
                std::thread::sleep(Duration::from_micros(200));
            }
        }
        let ids: Vec<u16> = self.fwd.reg.iter().map(|i| i.id).collect();
        for id in ids {
            self.ctl.send_to(id, &MgrMsg::Stop);
        }
        let deadline = Instant::now() + STOP_GRACE;
        while self.ctl.has_connections() && Instant::now() < deadline {
            self.switch_once()?;
            self.control_tick()?;
            std::thread::sleep(Duration::from_micros(100));
        }
        for id in self.ctl.close_all() {
            self.fwd.acct.event(format!("instance {id} did not stop in time"));
            self.nf_gone(id)?;
        }
        self.stop_lanes();
        // What was left in the edges they read (their NFs are gone) comes back.
        self.drain_orphans()?;
        // Drain what is still queued for ports.
        self.switch_once()?;
        for p in &mut self.io.ports {
            if let Err(e) = p.flush() {
                stats::emit_err(format_args!("onvm mgr: port {}: {e}\n", p.name()));
            }
        }
        Ok(())
    }
}

/// SIGKILL the process at the other end of instance `id`'s control socket (the kernel's
/// peer credentials name it; nothing the NF says is trusted for this). Its socket then
/// closes, the manager reclaims what it held, and a supervisor restarts it. What
/// happened, for the event log.
fn kill_instance(ctl: &super::control::Control, id: u16) -> String {
    use rustix::process::{Pid, Signal, kill_process};
    let Some(conn) = ctl.conns.iter().find(|c| c.instance == Some(id)) else {
        return "not killed: it has no connection".into();
    };
    let pid = match conn.sock.peer_cred() {
        Ok(c) => c.pid,
        Err(e) => return format!("not killed: its peer is unknown ({e})"),
    };
    if pid == std::process::id() {
        // An NF thread of this very process (tests, `onvm bench`): killing would take
        // the manager with it.
        return "not killed: it runs inside the manager's process".into();
    }
    match Pid::from_raw(pid as i32).map(|p| kill_process(p, Signal::KILL)) {
        Some(Ok(())) => format!("killed (pid {pid}) so that it restarts"),
        Some(Err(e)) => format!("not killed (pid {pid}): {e}"),
        None => format!("not killed: pid {pid} is no process id"),
    }
}
