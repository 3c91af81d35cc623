//! Where outgoing packets go: the tx ring to the manager, or an edge ring to another NF.
//!
//! Packets wait here for the end of the burst, then [`Out::flush`] enqueues them. A
//! burst is routed by runs of equal actions, so a burst with one verdict costs one
//! lookup.

use onvm_proto::ctrl::NfCounters;
use onvm_proto::limits::MAX_SERVICES;
use onvm_proto::verdict::Verdict;
use onvm_shm::{BURST, Buf, Holder, OwnerId, Producer};

use super::port::PortPoll;
use crate::action::Action;
use crate::ctx::Ctx;
use crate::error::NfError;

/// How long a full tx ring is waited on before the NF gives up on its manager: a live
/// manager drains it on every pass (microseconds apart), so one that has not for this
/// long is dead or hung, and the NF must not spin for ever.
const MANAGER_STUCK: std::time::Duration = std::time::Duration::from_secs(10);

/// Whether the manager still drains the tx ring (a full ring is then waited on).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Manager {
    /// It drains the ring: wait for room.
    Draining,
    /// It went away: nobody will make room.
    Gone,
}

/// An edge this NF writes.
pub(super) struct OutEdge<'r> {
    /// What it is for: 0 = `Next`, else a service.
    pub(super) key: u16,
    pub(super) ring: u32,
    pub(super) to: OwnerId,
    pub(super) prod: Producer<'r>,
    /// The receiver's rx ring, only to ring its doorbell (it sleeps: shared core).
    pub(super) bell: Option<Producer<'r>>,
    /// Packets written since the bell was last rung (shared-core senders ring late).
    pub(super) unrung: u32,
    pub(super) pending: Vec<Buf>,
}

impl OutEdge<'_> {
    /// What the edge had no room for goes to the manager, its verdict written. Out of
    /// line and cold: a full edge is the exception, and the burst loop stays short.
    #[cold]
    #[inline(never)]
    fn overflow(&mut self, holder: &Holder, counters: &mut NfCounters, to_mgr: &mut Vec<Buf>, late_bells: bool) {
        // An edge to the manager that is full goes the old way, the verdict written:
        // the manager reads both, so nothing need be dropped.
        // (A receive thread of the manager's, `edge::lane_of`, is the manager too.)
        let (v, dropped) = match (self.to, self.key) {
            (to, 0) if onvm_proto::edge::is_manager(to.0) => (Verdict::Next, 0),
            (to, s) if onvm_proto::edge::is_manager(to.0) => (Verdict::ToService(s), 0),
            (to, _) => (Verdict::EdgeFull(to.0), 1),
        };
        if late_bells && dropped > 0 {
            // A shared-core NF found its receiver's edge full: the receiver (maybe on
            // this core) needs the core more than this NF does.
            std::thread::yield_now();
        }
        let (a, d) = v.encode();
        for buf in self.pending.drain(..) {
            counters.tx_drop += dropped;
            let m = holder.meta(&buf);
            m.set_action(a);
            m.set_dest(d);
            to_mgr.push(buf);
        }
    }
}

/// A shared-core NF rings a sleeping receiver's bell when it gives up its core (it
/// yields or sleeps), so the receiver wakes to a whole turn's packets and does not
/// preempt the sender in the middle of its turn; or once this many packets wait, so a
/// sender that never runs out of work still wakes it.
pub(super) const RING_EVERY: u32 = 128;

/// Where outgoing packets wait for the end of the burst.
pub(super) struct Out<'r> {
    tx: Producer<'r>,
    /// The manager's wake-up ring: rung after packets go to the manager.
    wake: Producer<'r>,
    to_mgr: Vec<Buf>,
    /// Index into `edges` per key (0 = Next); `u8::MAX` = none.
    by_key: [u8; MAX_SERVICES as usize],
    edges: Vec<OutEdge<'r>>,
    /// Ring receivers' bells late (see [`RING_EVERY`]): this NF shares its core.
    late_bells: bool,
    /// The port queue this NF polls, where its `Next` leaves when it has one.
    pub(super) port: PortPoll,
}

/// Which way a run of packets leaves ([`Out::way`]).
enum Way {
    /// Out of the port queue this NF polls.
    Queue,
    /// Through this edge (an index into [`Out::edges`]).
    Edge(usize),
    /// Through the manager's rings.
    Manager,
}

/// Count `n` packets with verdict `v`; the edge key they may take (0 = `Next`, else a
/// service), if any.
#[inline]
fn tally(counters: &mut NfCounters, v: Verdict, n: u64) -> Option<u16> {
    let key = match v {
        Verdict::Drop => {
            counters.act_drop += n;
            return None;
        }
        Verdict::Next => {
            counters.act_next += n;
            Some(0)
        }
        Verdict::ToService(s) => {
            counters.act_tonf += n;
            Some(s)
        }
        Verdict::ToInstance(_) => {
            counters.act_tonf += n;
            None
        }
        Verdict::Out(_) => {
            counters.act_out += n;
            None
        }
        // The library's own hand-backs: an edge's overflow (counted as `tx_drop` where it
        // is made) and what is over quota (counted by the manager, `nf-over-quota`).
        Verdict::EdgeFull(_) | Verdict::OverQuota => return None,
    };
    counters.tx += n;
    key
}

/// Length of the run of equal actions that starts `actions`.
#[inline]
fn run_len(actions: &[Action]) -> usize {
    match actions.first() {
        Some(&a) => actions.iter().position(|&b| b != a).unwrap_or(actions.len()),
        None => 0,
    }
}

impl<'r> Out<'r> {
    pub(super) fn new(tx: Producer<'r>, wake: Producer<'r>) -> Self {
        Out {
            tx,
            wake,
            to_mgr: Vec::with_capacity(4 * BURST),
            by_key: [u8::MAX; MAX_SERVICES as usize],
            edges: Vec::new(),
            late_bells: false,
            port: PortPoll::default(),
        }
    }

    /// Ring receivers' bells when this NF gives up its core (see [`RING_EVERY`]), not
    /// after every burst.
    pub(super) fn ring_late(&mut self) {
        self.late_bells = true;
    }

    /// This NF is about to give up its core: ring the bells of the edges written since
    /// they were last rung.
    #[inline]
    pub(super) fn ring_bells(&mut self) {
        for e in &mut self.edges {
            if e.unrung > 0
                && let Some(b) = &e.bell
            {
                b.notify();
                e.unrung = 0;
            }
        }
    }

    pub(super) fn route(&mut self, holder: &Holder, counters: &mut NfCounters, buf: Buf, v: Verdict) {
        self.route_run(holder, counters, std::iter::once(buf), 1, v);
    }

    /// Route `n` buffers that share one verdict: the counting and the destination
    /// lookup happen once per run, not once per packet (a burst usually is one run).
    #[inline]
    fn route_run(
        &mut self,
        holder: &Holder,
        counters: &mut NfCounters,
        bufs: impl Iterator<Item = Buf>,
        n: u64,
        v: Verdict,
    ) {
        match self.way(counters, v, n) {
            Way::Queue => self.port.tx(holder, bufs),
            Way::Edge(e) => self.edges[e].pending.extend(bufs),
            Way::Manager => {
                for buf in bufs {
                    self.via_manager(holder, buf, v);
                }
            }
        }
    }

    /// Route all of `bufs`, which share one verdict. An edge with nothing pending takes
    /// the vector itself (swapped with its empty one): at a few ns per packet, copying
    /// the burst's tokens is a cost the self-loop can measure.
    #[inline]
    fn route_all(&mut self, holder: &Holder, counters: &mut NfCounters, bufs: &mut Vec<Buf>, v: Verdict) {
        match self.way(counters, v, bufs.len() as u64) {
            Way::Queue => self.port.tx(holder, bufs.drain(..)),
            Way::Edge(e) => {
                let pending = &mut self.edges[e].pending;
                if pending.is_empty() {
                    std::mem::swap(pending, bufs);
                } else {
                    pending.append(bufs);
                }
            }
            Way::Manager => {
                for buf in bufs.drain(..) {
                    self.via_manager(holder, buf, v);
                }
            }
        }
    }

    /// Count `n` packets under verdict `v` and say which way they leave: `Next` through
    /// the port queue this NF polls while its spare stack has room, else through the
    /// verdict's edge where one is open, else through the manager.
    #[inline]
    fn way(&self, counters: &mut NfCounters, v: Verdict, n: u64) -> Way {
        let key = tally(counters, v, n);
        if key == Some(0) && self.port.takes(n as usize) {
            return Way::Queue;
        }
        match key.and_then(|k| self.by_key.get(usize::from(k))) {
            Some(&e) if e != u8::MAX => Way::Edge(usize::from(e)),
            _ => Way::Manager,
        }
    }

    /// Route a handled burst: runs of equal actions together; kept packets to `kept`.
    #[inline]
    pub(super) fn route_burst(&mut self, holder: &Holder, ctx: &mut Ctx<'_>, bufs: &mut Vec<Buf>, actions: &[Action]) {
        // The usual burst is one run: hand the whole vector over (no copy, no drain).
        if let Some(&a) = actions.first()
            && run_len(actions) == bufs.len()
            && let Some(v) = a.verdict()
        {
            return self.route_all(holder, &mut ctx.counters, bufs, v);
        }
        let mut start = 0;
        while start < actions.len() {
            let a = actions[start];
            let n = run_len(&actions[start..]);
            let run = bufs.drain(..n);
            match a.verdict() {
                Some(v) => self.route_run(holder, &mut ctx.counters, run, n as u64, v),
                None => {
                    // Within its quota the NF keeps them; what is over goes back.
                    let room = ctx.quota.saturating_sub(ctx.held) as usize;
                    let mut run = run;
                    let keep = n.min(room);
                    ctx.counters.act_buffer += keep as u64;
                    ctx.held += keep as u32;
                    ctx.kept.extend(run.by_ref().take(keep));
                    for buf in run {
                        self.via_manager(holder, buf, Verdict::OverQuota);
                    }
                }
            }
            start += n;
        }
    }

    /// Queue a buffer for the manager with its verdict (no counting).
    fn via_manager(&mut self, holder: &Holder, buf: Buf, v: Verdict) {
        let (a, d) = v.encode();
        let m = holder.meta(&buf);
        m.set_action(a);
        m.set_dest(d);
        self.to_mgr.push(buf);
    }

    /// Push everything out. Edge overflow is dropped (openNetVM's tx_drop): the buffers
    /// go to the manager marked as the peer's full edge. An edge whose consumer index
    /// is corrupt (its reader, or a third NF, scribbled it) is treated the same: full
    /// for this flush; it heals when its reader next polls. The manager ring is waited
    /// on: the manager always drains it (and republishes its index when it finds it
    /// corrupt), unless it is gone.
    #[inline]
    pub(super) fn flush(
        &mut self,
        holder: &Holder,
        counters: &mut NfCounters,
        manager: Manager,
    ) -> Result<(), NfError> {
        for e in &mut self.edges {
            if e.pending.is_empty() {
                continue;
            }
            // Err: a corrupt ring (what went before the error is sent and gone from
            // `pending`), or a buffer of another region, which cannot be in `pending`.
            let before = e.pending.len();
            let _ = holder.enqueue(&mut e.prod, e.to, &mut e.pending);
            if let Some(b) = &e.bell {
                e.unrung += (before - e.pending.len()) as u32;
                if !self.late_bells || e.unrung >= RING_EVERY {
                    b.notify();
                    e.unrung = 0;
                }
            }
            if !e.pending.is_empty() {
                e.overflow(holder, counters, &mut self.to_mgr, self.late_bells);
            }
        }
        if self.to_mgr.is_empty() {
            return Ok(());
        }
        let mut spins = 0u32;
        let mut since: Option<std::time::Instant> = None;
        while !self.to_mgr.is_empty() {
            // A corrupt consumer index is no room: the manager heals it when its next
            // drain of this ring finds it empty or corrupt.
            if holder
                .enqueue(&mut self.tx, OwnerId::MANAGER, &mut self.to_mgr)
                .unwrap_or(0)
                == 0
            {
                self.wake.notify();
                spins += 1;
                if spins.is_multiple_of(1024) {
                    if manager == Manager::Gone {
                        return Err(NfError::Protocol("the manager went away".into()));
                    }
                    // Its socket's closing is read only between bursts, so a manager
                    // that died while we wait here is noticed by the time it takes.
                    if since.get_or_insert_with(std::time::Instant::now).elapsed() > MANAGER_STUCK {
                        return Err(NfError::Protocol(format!(
                            "the manager has not drained this NF's tx ring for {MANAGER_STUCK:?}: it is gone or hung"
                        )));
                    }
                }
                std::thread::yield_now();
            }
        }
        // Wakes the manager if it sleeps (a fence and a load otherwise).
        self.wake.notify();
        Ok(())
    }

    /// Republish the indices of the rings this NF produces into, should a peer have
    /// scribbled them (one relaxed load each when not): the housekeeping's share of
    /// ring healing, so a ring with nothing to send heals too (see `onvm_shm::ring`).
    pub(super) fn heal(&self) {
        self.tx.heal();
        for e in &self.edges {
            e.prod.heal();
        }
    }

    /// Start writing an edge.
    pub(super) fn add(&mut self, e: OutEdge<'r>) {
        // `NfEdges` accepts only keys below MAX_SERVICES, one edge each.
        debug_assert!(usize::from(e.key) < self.by_key.len() && self.edges.len() < usize::from(u8::MAX));
        let Some(slot) = self.by_key.get_mut(usize::from(e.key)) else {
            return;
        };
        *slot = self.edges.len() as u8;
        self.edges.push(e);
    }

    /// Stop writing the edge on `ring`; its unsent packets go to the manager instead.
    pub(super) fn remove(&mut self, holder: &Holder, ring: u32) {
        let Some(i) = self.edges.iter().position(|e| e.ring == ring) else {
            return;
        };
        let e = self.edges.remove(i);
        self.by_key = [u8::MAX; MAX_SERVICES as usize];
        for (k, e) in self.edges.iter().enumerate() {
            self.by_key[usize::from(e.key)] = k as u8;
        }
        let v = match e.key {
            0 => Verdict::Next,
            s => Verdict::ToService(s),
        };
        for buf in e.pending {
            self.via_manager(holder, buf, v);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::FileExt;
    use std::sync::Arc;

    use onvm_shm::{BackingChoice, Consumer, Pool, Region, RegionConfig};

    use super::*;

    const NF: OwnerId = OwnerId(5);
    const PEER: OwnerId = OwnerId(7);
    /// Rings: the NF's tx, the manager's wake-up ring, an edge to PEER, the NF's alloc.
    const TX: u32 = 0;
    const WAKE: u32 = 1;
    const EDGE: u32 = 2;
    const ALLOC: u32 = 3;
    const RING_CAPACITY: u32 = 8;

    /// A region whose manager pool has handed `n` buffers to NF.
    fn setup(n: usize) -> (Arc<Region>, Pool, Vec<Buf>) {
        let region = Region::create(&RegionConfig {
            buffers: 256,
            rings: 4,
            ring_capacity: RING_CAPACITY,
            backing: BackingChoice::Normal,
            ..Default::default()
        })
        .unwrap();
        region.ring(TX).unwrap().set_ends(NF.0, OwnerId::MANAGER.0);
        region.ring(EDGE).unwrap().set_ends(NF.0, PEER.0);
        let mut pool = Pool::new(&region).unwrap();
        let mut given = Vec::new();
        assert_eq!(pool.alloc_burst(n, &mut given), n);
        let raws: Vec<u32> = given.into_iter().map(|b| pool.holder().send(b, NF)).collect();
        let nf = region.holder(NF).unwrap();
        let bufs = raws.into_iter().map(|r| nf.claim(r).unwrap()).collect();
        (region, pool, bufs)
    }

    fn edge<'r>(region: &'r Region, key: u16) -> OutEdge<'r> {
        OutEdge {
            key,
            ring: EDGE,
            to: PEER,
            prod: region.producer(EDGE).unwrap(),
            bell: None,
            unrung: 0,
            pending: Vec::new(),
        }
    }

    /// The verdicts of what the manager finds on `cons`, in order, and the indices.
    fn taken(holder: &Holder, cons: &mut Consumer<'_>) -> Vec<(Verdict, u32)> {
        let mut v = Vec::new();
        holder.dequeue(cons, 64, &mut v).unwrap();
        v.iter()
            .map(|b| {
                let m = holder.meta(b);
                (Verdict::decode(m.action(), m.dest()).unwrap(), b.index())
            })
            .collect()
    }

    #[test]
    fn next_leaves_by_the_polled_queue_while_its_spare_stack_has_room() {
        let (region, _pool, mut bufs) = setup(160);
        let nf = region.holder(NF).unwrap();
        let mut ctx = Ctx::new(&nf, NF.0, 1, region.consumer(ALLOC).unwrap(), u32::MAX);
        let mut out = Out::new(region.producer(TX).unwrap(), region.producer(WAKE).unwrap());
        out.add(edge(&region, 0));
        out.port.start(onvm_proto::ctrl::PortQueue {
            port: 2,
            frame_len: 60,
            out: 1,
        });
        for b in &mut bufs {
            nf.packet(b).unwrap().set_len(100).unwrap();
        }
        // Four bursts fill the spare stack (4 x 32): sent, counted, kept.
        for _ in 0..4 {
            let mut burst: Vec<Buf> = bufs.drain(..BURST).collect();
            out.route_burst(&nf, &mut ctx, &mut burst, &[Action::Next; BURST]);
        }
        let c = out.port.counts().unwrap();
        assert_eq!((c.port, c.out, c.tx, c.tx_bytes), (2, 1, 128, 12_800));
        assert!(out.edges[0].pending.is_empty() && out.to_mgr.is_empty());
        // The stack is full: the next burst takes the edge, as without a queue.
        let mut burst: Vec<Buf> = bufs.drain(..BURST).collect();
        out.route_burst(&nf, &mut ctx, &mut burst, &[Action::Next; BURST]);
        assert_eq!(out.edges[0].pending.len(), BURST);
        assert_eq!(out.port.counts().unwrap().tx, 128);
        assert_eq!(ctx.counters.act_next, 160, "every Next counted as the NF's");
        // Receiving takes the spare buffers back as port 2's 60-byte frames.
        let mut got = Vec::new();
        let mut alloc = region.consumer(ALLOC).unwrap();
        let mut allocated = 0;
        assert_eq!(
            out.port.rx_burst(&nf, &mut alloc, &mut allocated, &mut got, BURST),
            BURST
        );
        for b in &mut got {
            let p = nf.packet(b).unwrap();
            assert_eq!((p.len(), p.meta().in_port()), (60, 2));
            assert!(p.meta().timestamp() > 0);
        }
        assert_eq!(allocated, 0, "spare buffers first");
        let c = out.port.counts().unwrap();
        assert_eq!((c.rx, c.rx_bytes), (32, 1920));
        // Taken away: Next goes the usual way again; the counts stay to be reported.
        assert!(out.port.stop());
        assert!(!out.port.takes(1) && !out.port.polls());
        assert_eq!(out.port.rx_burst(&nf, &mut alloc, &mut allocated, &mut got, BURST), 0);
        assert_eq!(out.port.counts().unwrap().rx, 32);
    }

    #[test]
    fn a_burst_goes_by_runs_to_the_edge_of_its_key_or_to_the_manager_with_its_verdict() {
        let (region, pool, mut bufs) = setup(6);
        let idx: Vec<u32> = bufs.iter().map(Buf::index).collect();
        let nf = region.holder(NF).unwrap();
        let mut ctx = Ctx::new(&nf, NF.0, 1, region.consumer(ALLOC).unwrap(), u32::MAX);
        let mut out = Out::new(region.producer(TX).unwrap(), region.producer(WAKE).unwrap());
        out.add(edge(&region, 0));
        let (next, drop) = (Action::Next, Action::Drop);
        let actions = [next, next, Action::ToService(3), Action::Keep, drop, next];
        out.route_burst(&nf, &mut ctx, &mut bufs, &actions);
        assert!(bufs.is_empty());
        assert_eq!(ctx.kept.iter().map(Buf::index).collect::<Vec<_>>(), [idx[3]]);
        out.flush(&nf, &mut ctx.counters, Manager::Draining).unwrap();

        let mgr = pool.holder();
        assert_eq!(
            taken(mgr, &mut region.consumer(TX).unwrap()),
            [(Verdict::ToService(3), idx[2]), (Verdict::Drop, idx[4])]
        );
        let peer = region.holder(PEER).unwrap();
        let mut on_edge = Vec::new();
        peer.dequeue(&mut region.consumer(EDGE).unwrap(), 64, &mut on_edge)
            .unwrap();
        assert_eq!(
            on_edge.iter().map(Buf::index).collect::<Vec<_>>(),
            [idx[0], idx[1], idx[5]],
            "in order, verdicts unwritten"
        );
        let c = ctx.counters;
        assert_eq!(
            (c.act_next, c.act_tonf, c.act_buffer, c.act_drop, c.tx, c.tx_drop),
            (3, 1, 1, 1, 4, 0)
        );
    }

    #[test]
    fn edge_overflow_goes_to_the_manager_as_the_peers_full_ring_and_a_removed_edge_sends_the_old_way() {
        let n = RING_CAPACITY as usize + 3;
        let (region, pool, mut bufs) = setup(n + 2);
        let idx: Vec<u32> = bufs.iter().map(Buf::index).collect();
        let nf = region.holder(NF).unwrap();
        let mut ctx = Ctx::new(&nf, NF.0, 1, region.consumer(ALLOC).unwrap(), u32::MAX);
        let mut out = Out::new(region.producer(TX).unwrap(), region.producer(WAKE).unwrap());
        out.add(edge(&region, 4));
        let mut first: Vec<Buf> = bufs.drain(..n).collect();
        out.route_burst(&nf, &mut ctx, &mut first, &vec![Action::ToService(4); n]);
        out.flush(&nf, &mut ctx.counters, Manager::Draining).unwrap();
        let mgr = pool.holder();
        let dropped = taken(mgr, &mut region.consumer(TX).unwrap());
        assert_eq!(dropped.len(), 3, "what the edge had no room for");
        // Named as the peer's full ring, so the manager does not count it as our drop.
        assert!(
            dropped.iter().all(|&(v, _)| v == Verdict::EdgeFull(PEER.0)),
            "{dropped:?}"
        );
        assert_eq!(ctx.counters.tx_drop, 3);

        // Routed to the edge, then the edge is closed before the flush.
        let last = bufs.pop().unwrap();
        out.route(&nf, &mut ctx.counters, last, Verdict::ToService(4));
        out.remove(&nf, EDGE);
        out.route_burst(&nf, &mut ctx, &mut bufs, &[Action::ToService(4)]);
        out.flush(&nf, &mut ctx.counters, Manager::Draining).unwrap();
        assert_eq!(
            taken(mgr, &mut region.consumer(TX).unwrap()),
            [(Verdict::ToService(4), idx[n + 1]), (Verdict::ToService(4), idx[n])]
        );
    }

    #[test]
    fn an_edge_with_a_corrupt_head_is_full_for_the_flush_and_works_once_its_reader_polls() {
        let n = RING_CAPACITY as usize;
        let (region, pool, mut bufs) = setup(2 * n + 2);
        let nf = region.holder(NF).unwrap();
        let mut ctx = Ctx::new(&nf, NF.0, 1, region.consumer(ALLOC).unwrap(), u32::MAX);
        let mut out = Out::new(region.producer(TX).unwrap(), region.producer(WAKE).unwrap());
        out.add(edge(&region, 0));
        let peer = region.holder(PEER).unwrap();
        let mut reader = region.consumer(EDGE).unwrap();
        // Fill the edge and let the reader take it all, so our cache says full.
        let mut first: Vec<Buf> = bufs.drain(..n).collect();
        out.route_burst(&nf, &mut ctx, &mut first, &vec![Action::Next; n]);
        out.flush(&nf, &mut ctx.counters, Manager::Draining).unwrap();
        let mut got = Vec::new();
        peer.dequeue(&mut reader, 64, &mut got).unwrap();
        assert_eq!(got.len(), n);
        // Someone scribbles the reader's index: the flush still succeeds, and what the
        // edge could not take goes to the manager as the peer's full edge.
        let head = region.ring(EDGE).unwrap().consumed();
        let file = std::fs::File::from(region.fd().try_clone_to_owned().unwrap());
        let line = region.layout().rings_offset + u64::from(EDGE) * region.layout().ring_stride + 128;
        file.write_at(&head.wrapping_add(0x1234_5678).to_le_bytes(), line)
            .unwrap();
        assert!(region.ring(EDGE).unwrap().len().is_err(), "the scribble hit the head");
        let mut second: Vec<Buf> = bufs.drain(..2).collect();
        out.route_burst(&nf, &mut ctx, &mut second, &[Action::Next; 2]);
        out.flush(&nf, &mut ctx.counters, Manager::Draining).unwrap();
        let mgr = pool.holder();
        let back = taken(mgr, &mut region.consumer(TX).unwrap());
        assert_eq!(back.len(), 2);
        assert!(back.iter().all(|&(v, _)| v == Verdict::EdgeFull(PEER.0)), "{back:?}");
        assert_eq!(ctx.counters.tx_drop, 2);
        // The reader polls (finds nothing, republishes its index): the edge takes packets.
        assert_eq!(peer.dequeue(&mut reader, 64, &mut got).unwrap(), 0);
        let mut third = std::mem::take(&mut bufs);
        out.route_burst(&nf, &mut ctx, &mut third, &vec![Action::Next; n]);
        out.flush(&nf, &mut ctx.counters, Manager::Draining).unwrap();
        assert_eq!(peer.dequeue(&mut reader, 64, &mut got).unwrap(), n);
        assert_eq!(ctx.counters.tx_drop, 2);
    }

    #[test]
    fn runs_are_maximal_stretches_of_one_action() {
        use Action::*;
        assert_eq!(run_len(&[]), 0);
        assert_eq!(run_len(&[Next; 32]), 32);
        assert_eq!(run_len(&[Next, Next, Drop, Next]), 2);
        assert_eq!(run_len(&[ToService(2), ToService(3)]), 1);
        assert_eq!(run_len(&[Keep, Keep, Keep]), 3);
    }

    #[test]
    fn each_verdict_is_counted_once_per_packet_and_may_take_an_edge() {
        let mut c = NfCounters::default();
        assert_eq!(tally(&mut c, Verdict::Next, 3), Some(0));
        assert_eq!(tally(&mut c, Verdict::ToService(5), 2), Some(5));
        assert_eq!(tally(&mut c, Verdict::ToInstance(9), 1), None);
        assert_eq!(tally(&mut c, Verdict::Out(1), 4), None);
        assert_eq!(tally(&mut c, Verdict::Drop, 6), None);
        let want = NfCounters {
            act_next: 3,
            act_tonf: 3,
            act_out: 4,
            act_drop: 6,
            tx: 10,
            ..NfCounters::default()
        };
        assert_eq!(c, want, "dropped packets are not sent");
    }
}
