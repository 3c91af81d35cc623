//! The world the pair tests search: one manager, a few NFs, the messages and packets
//! between them, and every step one of them can take.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use crate::ctrl::MgrMsg;
use crate::edge::mgr::{EdgeState, Edges, Outbox};
use crate::edge::nf::{Answer, NfEdges, NfEvent};

/// First edge ring in these tests.
pub(super) const FIRST: u32 = 400;

/// `count` packets from instance `from` for `key`, which the manager delivers to `to`.
#[derive(Clone, Copy, Debug)]
pub(super) struct Flow {
    pub(super) from: u16,
    pub(super) key: u16,
    pub(super) to: u16,
    pub(super) count: u16,
}

/// What may happen, besides the flows: budgets for the manager's and the world's moves.
#[derive(Clone, Debug)]
pub(super) struct Scenario {
    pub(super) nfs: u16,
    pub(super) flows: Vec<Flow>,
    /// Edge rings the manager has.
    pub(super) rings: u32,
    pub(super) opens: u8,
    pub(super) closes: u8,
    pub(super) deaths: u8,
    /// Whether an NF may handle several control messages in one pass.
    pub(super) batches: bool,
    /// A bug planted in the model's runtime, to show that the checks catch it.
    pub(super) fault: Option<Fault>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Fault {
    /// The consumer reads its edges before its rx ring.
    EdgesFirst,
    /// The consumer releases a closing edge without checking that it is empty.
    ReleaseUnread,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct Pkt {
    flow: u8,
    seq: u16,
    /// How many edges the producer had stopped writing when it sent this one.
    epoch: u16,
}

/// Manager → NF.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Down {
    Out { key: u16, to: u16, ring: u32 },
    In { ring: u32 },
    Closed { ring: u32 },
}

/// NF → manager.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Up {
    Answer(Answer),
    /// The socket closed (the NF died).
    Gone,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
struct Nf {
    alive: bool,
    edges: NfEdges,
    inbox: VecDeque<Down>,
    outbox: VecDeque<Up>,
    /// The runtime's tables: key → ring it writes; rings it reads.
    writes: BTreeMap<u16, u32>,
    reads: Vec<u32>,
    epoch: u16,
    got: Vec<Pkt>,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(super) struct World {
    mgr: Edges,
    /// Instance `i` is `nfs[i - 1]`.
    nfs: Vec<Nf>,
    /// The manager has handled the NF's `Gone`.
    gone: Vec<bool>,
    tx: Vec<VecDeque<Pkt>>,
    rx: Vec<VecDeque<Pkt>>,
    rings: BTreeMap<u32, VecDeque<Pkt>>,
    /// Rings whose producer answered `EdgeReleased` since the ring was opened.
    let_go: BTreeSet<u32>,
    sent: Vec<u16>,
    reclaimed: Vec<Pkt>,
    opens: u8,
    closes: u8,
    deaths: u8,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Step {
    Send(u8),
    /// An NF reads a packet from its rx ring (`None`) or an edge.
    Read(u16, Option<u32>),
    PollOne(u16),
    PollAll(u16),
    Housekeep(u16),
    Kill(u16),
    MgrRoute(u16),
    MgrHandle(u16),
    MgrOpen(u8),
    MgrCloseAll,
    MgrDrainOrphans,
}

pub(super) type Check = Result<(), String>;

fn ensure(ok: bool, what: impl FnOnce() -> String) -> Check {
    if ok { Ok(()) } else { Err(what()) }
}

impl World {
    pub(super) fn new(sc: &Scenario) -> Self {
        let n = usize::from(sc.nfs);
        World {
            mgr: Edges::new(FIRST, sc.rings),
            nfs: vec![
                Nf {
                    alive: true,
                    ..Nf::default()
                };
                n
            ],
            gone: vec![false; n],
            tx: vec![VecDeque::new(); n],
            rx: vec![VecDeque::new(); n],
            rings: BTreeMap::new(),
            let_go: BTreeSet::new(),
            sent: vec![0; sc.flows.len()],
            reclaimed: Vec::new(),
            opens: sc.opens,
            closes: sc.closes,
            deaths: sc.deaths,
        }
    }

    fn nf(&mut self, id: u16) -> &mut Nf {
        &mut self.nfs[usize::from(id) - 1]
    }

    fn ring(&self, ring: u32) -> usize {
        self.rings.get(&ring).map_or(0, VecDeque::len)
    }

    pub(super) fn enabled(&self, sc: &Scenario) -> Vec<Step> {
        let mut s = Vec::new();
        for (f, flow) in sc.flows.iter().enumerate() {
            if self.nfs[usize::from(flow.from) - 1].alive && self.sent[f] < flow.count {
                s.push(Step::Send(f as u8));
            }
            let running = |id: u16| !self.gone[usize::from(id) - 1];
            if self.opens > 0 && running(flow.from) && running(flow.to) && self.mgr.find(flow.from, flow.key).is_none()
            {
                s.push(Step::MgrOpen(f as u8));
            }
        }
        for (i, nf) in self.nfs.iter().enumerate() {
            let id = i as u16 + 1;
            if nf.alive {
                if !self.rx[i].is_empty() {
                    s.push(Step::Read(id, None));
                }
                if self.rx[i].is_empty() || sc.fault == Some(Fault::EdgesFirst) {
                    s.extend(
                        nf.reads
                            .iter()
                            .filter(|&&r| self.ring(r) > 0)
                            .map(|&r| Step::Read(id, Some(r))),
                    );
                }
                if !nf.inbox.is_empty() {
                    s.push(Step::PollOne(id));
                }
                if sc.batches && nf.inbox.len() > 1 {
                    s.push(Step::PollAll(id));
                }
                if nf
                    .edges
                    .draining()
                    .any(|r| self.ring(r) == 0 || sc.fault == Some(Fault::ReleaseUnread))
                {
                    s.push(Step::Housekeep(id));
                }
                if self.deaths > 0 {
                    s.push(Step::Kill(id));
                }
            }
            if !self.tx[i].is_empty() {
                s.push(Step::MgrRoute(id));
            }
            if !nf.outbox.is_empty() {
                s.push(Step::MgrHandle(id));
            }
        }
        if self.closes > 0 {
            s.push(Step::MgrCloseAll);
        }
        if self.mgr.orphaned().iter().any(|&(r, _, done)| done || self.ring(r) > 0) {
            s.push(Step::MgrDrainOrphans);
        }
        s
    }

    pub(super) fn apply(&mut self, sc: &Scenario, step: Step) -> Check {
        match step {
            Step::Send(f) => {
                let flow = sc.flows[usize::from(f)];
                let seq = self.sent[usize::from(f)];
                self.sent[usize::from(f)] += 1;
                let nf = self.nf(flow.from);
                let pkt = Pkt {
                    flow: f,
                    seq,
                    epoch: nf.epoch,
                };
                match nf.writes.get(&flow.key).copied() {
                    Some(ring) => {
                        ensure(!self.let_go.contains(&ring), || {
                            format!("instance {} wrote ring {ring} after it let go of it", flow.from)
                        })?;
                        self.rings.entry(ring).or_default().push_back(pkt);
                    }
                    None => self.tx[usize::from(flow.from) - 1].push_back(pkt),
                }
            }
            Step::Read(id, from) => {
                let pkt = match from {
                    None => self.rx[usize::from(id) - 1].pop_front(),
                    Some(r) => self.rings.get_mut(&r).and_then(VecDeque::pop_front),
                };
                let pkt = pkt.ok_or("read from an empty ring")?;
                let flow = sc.flows[usize::from(pkt.flow)];
                ensure(flow.to == id, || format!("{pkt:?} of {flow:?} reached instance {id}"))?;
                let got = &mut self.nf(id).got;
                if let Some(q) = got
                    .iter()
                    .find(|q| q.flow == pkt.flow && q.seq > pkt.seq && q.epoch <= pkt.epoch)
                {
                    return Err(format!("{q:?} overtook {pkt:?} on the same path"));
                }
                got.push(pkt);
            }
            Step::PollOne(id) => {
                let m = self.nf(id).inbox.pop_front().ok_or("no message")?;
                self.nf_handle(id, m)?;
                self.nf(id).edges.handle_tx_flushed();
                self.nf_act(id)?;
            }
            Step::PollAll(id) => {
                while let Some(m) = self.nf(id).inbox.pop_front() {
                    self.nf_handle(id, m)?;
                }
                self.nf(id).edges.handle_tx_flushed();
                self.nf_act(id)?;
            }
            Step::Housekeep(id) => {
                let nf = &self.nfs[usize::from(id) - 1];
                let empty: Vec<u32> = nf
                    .edges
                    .draining()
                    .filter(|&r| self.ring(r) == 0 || sc.fault == Some(Fault::ReleaseUnread))
                    .collect();
                for r in empty {
                    ensure(self.nf(id).edges.handle_drained(r), || format!("ring {r} was draining"))?;
                    self.nf_act(id)?;
                }
            }
            Step::Kill(id) => {
                self.deaths -= 1;
                let nf = self.nf(id);
                nf.alive = false;
                nf.inbox.clear();
                nf.outbox.push_back(Up::Gone);
            }
            Step::MgrRoute(id) => {
                let pkt = self.tx[usize::from(id) - 1].pop_front().ok_or("empty tx")?;
                self.deliver(sc, pkt);
            }
            Step::MgrHandle(id) => {
                let up = self.nf(id).outbox.pop_front().ok_or("no message")?;
                self.mgr_handle(sc, id, up)?;
            }
            Step::MgrOpen(f) => {
                self.opens -= 1;
                let flow = sc.flows[usize::from(f)];
                let mut out = Outbox::new();
                if let Some(ring) = self.mgr.open(flow.from, flow.to, flow.key, None, &mut out) {
                    ensure(self.ring(ring) == 0, || {
                        format!("ring {ring} opened with packets in it")
                    })?;
                    self.let_go.remove(&ring);
                }
                self.post(out)?;
            }
            Step::MgrCloseAll => {
                self.closes -= 1;
                let mut out = Outbox::new();
                self.mgr.close_all(&mut out);
                self.post(out)?;
            }
            Step::MgrDrainOrphans => {
                for (ring, _dead, done) in self.mgr.orphaned() {
                    let left = self.rings.entry(ring).or_default();
                    self.reclaimed.extend(left.drain(..));
                    if done {
                        self.mgr.finish(ring);
                        self.freed(ring)?;
                    }
                }
            }
        }
        Ok(())
    }

    /// The manager routes a packet from a tx ring to its consumer's rx ring.
    fn deliver(&mut self, sc: &Scenario, pkt: Pkt) {
        let to = sc.flows[usize::from(pkt.flow)].to;
        if self.gone[usize::from(to) - 1] {
            self.reclaimed.push(pkt);
        } else {
            self.rx[usize::from(to) - 1].push_back(pkt);
        }
    }

    fn mgr_handle(&mut self, sc: &Scenario, id: u16, up: Up) -> Check {
        let mut out = Outbox::new();
        let i = usize::from(id) - 1;
        match up {
            Up::Answer(Answer::Switched { ring }) => {
                // What it sent the old way goes on first, then the consumer is told.
                while let Some(pkt) = self.tx[i].pop_front() {
                    self.deliver(sc, pkt);
                }
                self.mgr.switched(id, ring, &mut out);
            }
            Up::Answer(Answer::Released { ring }) => {
                if self
                    .mgr
                    .iter()
                    .any(|e| e.ring == ring && e.from == id && e.state == EdgeState::ClosingProducer)
                {
                    self.let_go.insert(ring);
                }
                if let Some(r) = self.mgr.released(id, ring, &mut out) {
                    self.freed(r)?;
                }
            }
            Up::Gone => {
                // Its tx ring is routed, what waited for it is reclaimed, its edges close.
                while let Some(pkt) = self.tx[i].pop_front() {
                    self.deliver(sc, pkt);
                }
                self.gone[i] = true;
                let rx = std::mem::take(&mut self.rx[i]);
                self.reclaimed.extend(rx);
                self.mgr.instance_gone(id, &mut out);
                self.mgr.close_all(&mut out);
            }
        }
        self.post(out)
    }

    /// The manager no longer knows `ring`: nothing may be in it or use it.
    fn freed(&self, ring: u32) -> Check {
        ensure(self.ring(ring) == 0, || format!("ring {ring} freed with packets in it"))?;
        for (i, nf) in self.nfs.iter().enumerate().filter(|(_, nf)| nf.alive) {
            ensure(!nf.writes.values().any(|&r| r == ring), || {
                format!("ring {ring} freed while instance {} writes it", i + 1)
            })?;
            ensure(!nf.reads.contains(&ring), || {
                format!("ring {ring} freed while instance {} reads it", i + 1)
            })?;
        }
        Ok(())
    }

    /// The manager's messages go out (a dead NF's are lost).
    fn post(&mut self, out: Outbox) -> Check {
        for (id, m) in out {
            let d = match m {
                MgrMsg::EdgeOut {
                    service,
                    instance,
                    ring,
                    ..
                } => Down::Out {
                    key: service,
                    to: instance,
                    ring,
                },
                MgrMsg::EdgeIn { ring } => Down::In { ring },
                MgrMsg::EdgeClosed { ring } => Down::Closed { ring },
                other => return Err(format!("the edge protocol sent {other:?}")),
            };
            let nf = self.nf(id);
            if nf.alive {
                nf.inbox.push_back(d);
            }
        }
        Ok(())
    }

    fn nf_handle(&mut self, id: u16, m: Down) -> Check {
        let e = &mut self.nf(id).edges;
        let r = match m {
            Down::Out { key, to, ring } => e.handle_edge_out(key, to, ring, None),
            Down::In { ring } => e.handle_edge_in(ring),
            Down::Closed { ring } => e.handle_edge_closed(ring),
        };
        r.map_err(|e| format!("instance {id} refused {m:?}: {e}"))?;
        self.nf_act(id)
    }

    /// The NF runtime acts on its events, in order.
    fn nf_act(&mut self, id: u16) -> Check {
        while let Some(ev) = self.nf(id).edges.poll() {
            match ev {
                NfEvent::StartWriting { key, ring, .. } => {
                    let old = self.nf(id).writes.insert(key, ring);
                    ensure(old.is_none(), || {
                        format!("instance {id} had ring {old:?} for key {key}")
                    })?;
                }
                NfEvent::StopWriting { key, ring } => {
                    let nf = self.nf(id);
                    ensure(nf.writes.remove(&key) == Some(ring), || {
                        format!("instance {id} did not write {ring}")
                    })?;
                    nf.epoch += 1;
                }
                NfEvent::StartReading { ring } => self.nf(id).reads.push(ring),
                NfEvent::StopReading { ring } => {
                    ensure(self.ring(ring) == 0, || {
                        format!("instance {id} stopped reading ring {ring} with packets in it")
                    })?;
                    self.nf(id).reads.retain(|&r| r != ring);
                }
                NfEvent::Send(a) => self.nf(id).outbox.push_back(Up::Answer(a)),
            }
        }
        Ok(())
    }

    /// Nothing can move any more.
    pub(super) fn check_end(&self, sc: &Scenario) -> Check {
        for (f, flow) in sc.flows.iter().enumerate() {
            let sent = self.sent[f];
            let from_alive = self.nfs[usize::from(flow.from) - 1].alive;
            ensure(sent == flow.count || !from_alive, || {
                format!("{flow:?} sent only {sent}")
            })?;
            let to = &self.nfs[usize::from(flow.to) - 1];
            let got = to.got.iter().filter(|p| usize::from(p.flow) == f).count();
            let lost = self.reclaimed.iter().filter(|p| usize::from(p.flow) == f).count();
            ensure(lost == 0 || !to.alive, || {
                format!("{flow:?}: {lost} reclaimed, consumer alive")
            })?;
            ensure(got + lost == usize::from(sent), || {
                format!("{flow:?}: sent {sent}, got {got}, reclaimed {lost}")
            })?;
        }
        let queued = self
            .tx
            .iter()
            .chain(&self.rx)
            .chain(self.rings.values())
            .map(VecDeque::len);
        ensure(queued.sum::<usize>() == 0, || "packets left in rings".into())?;
        for e in self.mgr.iter() {
            ensure(e.state == EdgeState::Open && !e.from_dead && !e.to_dead, || {
                format!("stuck: {e:?}")
            })?;
            let (from, to) = (&self.nfs[usize::from(e.from) - 1], &self.nfs[usize::from(e.to) - 1]);
            ensure(
                from.writes.get(&e.key) == Some(&e.ring) && to.reads.contains(&e.ring),
                || format!("{e:?} is open, but its ends do not use it"),
            )?;
        }
        Ok(())
    }
}
