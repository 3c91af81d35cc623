//! The main thread's side of the switch lanes (`crate::lane`): starting them, serving
//! what they send, opening their edges into NFs (those out of NFs to a lane are opened
//! where the edges to the manager are, `Fwd::open_edge`), passing them their edge
//! messages, adding in their counters, and taking back their pools and queues at the
//! end.

use std::sync::atomic::Ordering;

use onvm_ports::{Port, PortStats};
use onvm_proto::ctrl::MgrMsg;
use onvm_proto::flow::PortNo;
use onvm_proto::limits::FIRST_EDGE_RING;
use onvm_shm::{BURST, OwnerId};

use super::Mgr;
use crate::capture::Point;
use crate::error::MgrError;
use crate::lane::{FromLane, Lane, LaneCounts, Route, ToLane, lane_of, lane_owner};
use crate::registry::{State, rings_of};
use crate::router::Target;
use crate::stats::PortRow;
use crate::topology::format_cpulist;

/// Most buffers a lane starts with, and gets each time it runs low (an eighth of the
/// pool, split between the lanes, if that is less).
const SHARE: u32 = 2048;
/// Messages taken from one lane per pass (a burst each, mostly).
const MSGS_PER_PASS: usize = 16;

/// The lanes, as the main thread sees them.
#[derive(Default)]
pub(super) struct Lanes {
    lanes: Vec<Lane>,
    /// Buffers a lane gets at a time.
    share: u32,
    /// The routes the lanes were last told.
    routes: Vec<Option<Route>>,
    /// Queues of lanes that ended, for the final stats.
    ended: Vec<(u16, Box<dyn Port>)>,
}

impl Lanes {
    /// Whether no lane runs.
    pub(super) fn is_empty(&self) -> bool {
        self.lanes.is_empty()
    }

    /// Tell every lane to poll its queues or stop polling them.
    pub(super) fn receive(&self, on: bool) {
        for l in &self.lanes {
            l.tell(ToLane::Receive(on));
        }
    }

    /// Whether every lane's queues will never receive again (as last published).
    pub(super) fn rx_done(&self) -> bool {
        self.lanes
            .iter()
            .all(|l| l.counts.lock().unwrap_or_else(|e| e.into_inner()).done)
    }

    /// Add the lanes' queue counters to the ports they belong to.
    pub(super) fn add_port_stats(&self, rows: &mut [PortRow]) {
        let mut add = |port: u16, s: &PortStats| {
            if let Some(r) = rows.get_mut(usize::from(port)) {
                r.stats += *s;
            }
        };
        for l in &self.lanes {
            let c = l.counts.lock().unwrap_or_else(|e| e.into_inner());
            for (p, s) in &c.queues {
                add(*p, s);
            }
        }
        for (p, q) in &self.ended {
            add(*p, &q.stats());
        }
    }
}

impl Mgr<'_> {
    /// Start `rx_threads - 1` lanes on the further receive queues of the ports that
    /// have them; none if no port has.
    pub(super) fn start_lanes(&mut self) -> Result<(), MgrError> {
        let n = usize::from(self.opts.rx_threads.max(1)) - 1;
        if n == 0 {
            return Ok(());
        }
        let mut per_lane: Vec<Vec<(u16, Box<dyn Port>)>> = (0..n).map(|_| Vec::new()).collect();
        for (p, port) in self.io.ports.iter_mut().enumerate() {
            for (k, q) in port.queues(n).into_iter().enumerate() {
                per_lane[k].push((p as u16, q));
            }
        }
        let nports = self.io.ports.len();
        let share = (self.fwd.region.buffers() / 8 / n as u32).clamp(32, SHARE);
        self.lanes.share = share;
        for (i, queues) in per_lane.into_iter().enumerate() {
            if queues.is_empty() {
                continue;
            }
            let k = i as u16 + 1;
            let core = self.opts.rx_cores.as_ref().and_then(|c| c.get(i)).copied();
            if let Some(c) = core
                && !self.topo.is_online(c)
            {
                return Err(MgrError::Lane {
                    lane: k,
                    source: std::io::Error::new(
                        std::io::ErrorKind::InvalidInput,
                        format!(
                            "--rx-cores: CPU {c} is not online (online: {})",
                            format_cpulist(self.topo.online())
                        ),
                    ),
                });
            }
            let pool = self.fwd.pool.share(OwnerId(lane_owner(k)), share)?;
            let names: Vec<String> = queues.iter().map(|(p, q)| format!("port {p} ({})", q.name())).collect();
            let lane = Lane::start(k, self.fwd.region.clone(), pool, queues, nports, core)
                .map_err(|source| MgrError::Lane { lane: k, source })?;
            let pinned = core.map_or_else(|| "not pinned".to_string(), |c| format!("core {c}"));
            self.fwd
                .acct
                .event(format!("receive thread {k} ({pinned}): {}", names.join(", ")));
            self.fwd.tx_lanes.push(lane.ports.clone());
            self.lanes.lanes.push(lane);
        }
        let polling = 1 + self.lanes.lanes.len();
        let cpus = self.topo.online().len();
        if !self.lanes.is_empty() && polling >= cpus {
            self.fwd.acct.event(format!(
                "{polling} switch threads poll on {cpus} CPUs: NFs get what is left (on this machine a second receive thread costs more than it gives)"
            ));
        }
        if self.lanes.is_empty() {
            self.fwd.acct.event(format!(
                "--rx-threads {}: no port has further receive queues, one switch thread runs",
                self.opts.rx_threads
            ));
        }
        Ok(())
    }

    /// Serve what the lanes sent: top up their pools, route their punted bursts, take
    /// their edge answers.
    pub(super) fn serve_lanes(&mut self) {
        for i in 0..self.lanes.lanes.len() {
            for _ in 0..MSGS_PER_PASS {
                let Ok((port, bufs)) = self.lanes.lanes[i].punts.try_recv() else {
                    break;
                };
                self.io.moved = true;
                self.take_punt(port, bufs);
            }
            while let Ok(msg) = self.lanes.lanes[i].from.try_recv() {
                self.io.moved = true;
                self.lane_answer(i, msg);
            }
            self.top_up(i);
        }
    }

    /// Give lane `i` what it lacks of its share, as far as the pool has it. Under load
    /// the free buffers are the few the last pass's transmits gave back: the lanes get
    /// theirs before queue 0 takes the rest, so every queue keeps receiving.
    fn top_up(&mut self, i: usize) {
        let l = &mut self.lanes.lanes[i];
        // What it holds, with what is on its way to it.
        let on_the_way = l.given.saturating_sub(l.stock.taken.load(Ordering::Relaxed));
        let held = u64::from(l.stock.free.load(Ordering::Relaxed)) + on_the_way;
        let want = u64::from(self.lanes.share).saturating_sub(held) as u32;
        let n = want.min(self.fwd.pool.free_count());
        if n >= BURST as u32 {
            l.given += u64::from(n);
            l.tell(ToLane::Free(self.fwd.pool.give(n)));
        }
    }

    /// A burst a lane could not place: routed as if queue 0 had received it.
    fn take_punt(&mut self, port: u16, mut bufs: Vec<onvm_shm::Buf>) {
        let fwd = &mut self.fwd;
        if fwd.taps.on(Point::PortRx(port)) {
            fwd.taps.copy_bufs(Point::PortRx(port), fwd.pool.holder(), &mut bufs);
        }
        fwd.ingress_port_burst(port, &mut bufs);
    }

    /// Act on lane `i`'s answer.
    fn lane_answer(&mut self, i: usize, msg: FromLane) {
        let owner = lane_owner(self.lanes.lanes[i].k);
        match msg {
            FromLane::Switched { ring } => {
                // What it punted before the answer is routed and goes into the rx
                // rings first; then the consumer learns of the edge.
                while let Ok((port, bufs)) = self.lanes.lanes[i].punts.try_recv() {
                    self.take_punt(port, bufs);
                }
                self.flush();
                self.fwd.direct.edges.switched(owner, ring, &mut self.fwd.outbox);
            }
            FromLane::Released { ring } => self.fwd.edge_released(owner, ring),
            FromLane::Free(bufs) => self.fwd.pool.take(bufs),
        }
    }

    /// At the control tick: tell the lanes where each port's packets go, open their
    /// edges into those NFs, pass them their edge messages, add in their counters.
    pub(super) fn settle_lanes(&mut self) {
        if self.lanes.is_empty() {
            return;
        }
        let fwd = &mut self.fwd;
        let routes: Vec<Option<Route>> = (0..self.io.ports.len() as u16).map(|p| fwd.lane_route(p)).collect();
        if routes != self.lanes.routes {
            for l in &self.lanes.lanes {
                l.tell(ToLane::Routes(routes.clone()));
            }
            self.lanes.routes.clone_from(&routes);
        }
        for l in &self.lanes.lanes {
            let from = lane_owner(l.k);
            let polled = l
                .ports
                .iter()
                .filter_map(|&p| routes.get(usize::from(p)).and_then(Option::as_ref))
                .flat_map(Route::instances);
            for &to in polled {
                if fwd.direct.edges.find(from, to).is_some() {
                    continue;
                }
                let bell = fwd.reg.get(to).filter(|i| i.shared).map(|_| rings_of(to).rx);
                if let Some(ring) = fwd.direct.edges.open(from, to, to, bell, &mut fwd.outbox)
                    && let Ok(r) = fwd.region.ring(ring)
                {
                    r.reset();
                    r.set_ends(from, to);
                    fwd.acct.event(format!(
                        "direct edge: receive thread {} → instance {to} on ring {ring}",
                        l.k
                    ));
                }
            }
        }
        self.pass_lane_messages();
        self.add_lane_counts();
    }

    /// Take the edge messages for lanes out of the outbox and tell the lanes.
    fn pass_lane_messages(&mut self) {
        let lanes = &self.lanes.lanes;
        let ports = &self.fwd.edge_port;
        self.fwd.outbox.retain(|(id, msg)| {
            let Some(k) = lane_of(*id) else { return true };
            let Some(l) = lanes.iter().find(|l| l.k == k) else {
                return false;
            };
            match *msg {
                MgrMsg::EdgeOut {
                    instance, ring, bell, ..
                } => l.tell(ToLane::EdgeOut {
                    to: instance,
                    ring,
                    bell,
                }),
                MgrMsg::EdgeIn { ring } => l.tell(ToLane::EdgeIn {
                    ring,
                    port: ports
                        .get(ring.wrapping_sub(FIRST_EDGE_RING) as usize)
                        .copied()
                        .unwrap_or(0),
                }),
                MgrMsg::EdgeClosed { ring } => l.tell(ToLane::EdgeClosed { ring }),
                _ => {}
            }
            false
        });
    }

    /// Add what the lanes counted since the last time: drops, and each port's fixed
    /// rule's matches.
    fn add_lane_counts(&mut self) {
        for l in &mut self.lanes.lanes {
            let now = l.counts.lock().unwrap_or_else(|e| e.into_inner()).clone();
            fold(&mut self.fwd, &now, &l.seen);
            l.seen = now;
        }
    }

    /// Stop the lanes: take back their pools, queues and what they still sent; the
    /// edges they wrote close as a gone producer's do.
    pub(super) fn stop_lanes(&mut self) {
        for i in 0..self.lanes.lanes.len() {
            let end = self.lanes.lanes[i].stop();
            // What it sent before it stopped: routed (or answered) as usual.
            while let Ok(msg) = self.lanes.lanes[i].from.try_recv() {
                self.lane_answer(i, msg);
            }
            while let Ok((port, bufs)) = self.lanes.lanes[i].punts.try_recv() {
                self.take_punt(port, bufs);
            }
            let k = self.lanes.lanes[i].k;
            self.fwd.direct.edges.instance_gone(lane_owner(k), &mut self.fwd.outbox);
            match end {
                Some(mut end) => {
                    fold(&mut self.fwd, &end.counts, &self.lanes.lanes[i].seen);
                    let c = &end.counts;
                    let rx: u64 = c.queues.iter().map(|(_, s)| s.rx).sum();
                    let direct: u64 = c.fixed.iter().map(|f| f.0).sum();
                    let sent: u64 = c.queues.iter().map(|(_, s)| s.tx).sum();
                    self.fwd.acct.event(format!(
                        "receive thread {k} stopped: received {rx}, {direct} straight into NFs, {} through the main thread, {} dropped; sent {sent}",
                        c.punted,
                        c.drops.total()
                    ));
                    self.fwd.pool.take(end.pool.give(u32::MAX));
                    for (_, q) in &mut end.queues {
                        q.release(&mut self.fwd.pool);
                    }
                    self.lanes.ended.append(&mut end.queues);
                }
                None => self.fwd.acct.event(format!(
                    "bug: receive thread {k} panicked; the buffers it held are lost"
                )),
            }
        }
        self.lanes.lanes.clear();
        self.fwd.tx_lanes.clear();
    }
}

impl super::Fwd<'_> {
    /// The one running instance port `p`'s fixed rule sends every packet to, if the
    /// packets need nothing else of the main switch thread: not for a captured port or
    /// NF, a hung or leaving one, or one whose chain is behind (backpressure admits at
    /// its entry). What a lane may write straight into, or an NF may poll itself.
    pub(super) fn plain_route(&mut self, p: u16) -> Option<u16> {
        let f = self.router.fixed_target(&self.table, &self.reg, PortNo::physical(p))?;
        let Target::Instance { id, .. } = f.target else {
            return None;
        };
        (!self.taps.on(Point::PortRx(p)) && self.plain(id)).then_some(id)
    }

    /// Where a lane may send port `p`'s packets itself: the one instance of
    /// [`Fwd::plain_route`], or a service's instances picked per flow when every one of
    /// them is as plain and no flow is being handed over between them (the main thread
    /// holds a moved flow until its old instance is done with it).
    pub(super) fn lane_route(&mut self, p: u16) -> Option<Route> {
        if let Some(id) = self.plain_route(p) {
            return Some(Route::One(id));
        }
        let s = self.router.fixed_service(&self.table, PortNo::physical(p))?;
        let reta = self.reg.reta(s)?;
        let hashed = reta.instances().len() > 1
            && self.handovers.is_empty()
            && !self.taps.on(Point::PortRx(p))
            && reta.instances().iter().all(|&id| self.plain(id));
        hashed.then(|| Route::Hashed(std::sync::Arc::new(reta.clone())))
    }

    /// Whether instance `id` needs nothing of the main thread for what it receives:
    /// running, not hung or leaving, no capture of it, its chain not behind.
    fn plain(&self, id: u16) -> bool {
        self.reg
            .get(id)
            .is_some_and(|i| i.state == State::Running && !i.hung && !i.leaving)
            && !self.pressure.limits(id)
            && !self.taps.at_instance(id)
    }
}

/// Add a lane's counters `now` beyond `before` into the manager's.
fn fold(fwd: &mut super::Fwd<'_>, now: &LaneCounts, before: &LaneCounts) {
    fwd.acct.drops.add_since(&now.drops, &before.drops);
    for (p, &(n, bytes)) in now.fixed.iter().enumerate() {
        let (n0, b0) = before.fixed.get(p).copied().unwrap_or((0, 0));
        if n > n0 {
            fwd.router
                .count_fixed_of(&mut fwd.table, PortNo::physical(p as u16), n - n0, bytes - b0, fwd.now);
        }
    }
}
