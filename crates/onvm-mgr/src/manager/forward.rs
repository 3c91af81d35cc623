//! Carrying out the router's decisions: the only place that moves a routed buffer.
//!
//! [`Fwd::ingress_port`] and [`Fwd::ingress_nf`] ask [`crate::router::Router::route`] where a
//! packet goes and then put it in a per-NF or per-port queue (flushed by the switch
//! loop), hand it to the planes (controller), or free it with its reason. Several steps
//! (a rule's or a PACKET_OUT's actions) run here in order: rewrites in place, a copy for
//! every send but the last, further lookups with the rewritten packet.

use onvm_proto::edge::{MANAGER, is_manager, lane_owner};
use onvm_proto::flow::group::GroupType;
use onvm_proto::flow::meter::MeterVerdict;
use onvm_proto::flow::{Edit, PacketKey, PortKind, PortNo, Rewrite, RuleId};
use onvm_proto::limits::{FIRST_EDGE_RING, MAX_SERVICES};
use onvm_proto::verdict::Verdict;
use onvm_shm::Buf;

use super::{DropReason, Fwd};
use crate::capture::Point;
use crate::control_plane::PacketIn;
use crate::edges::EdgeState;
use crate::registry::{State, WAKE_RING, rings_of};
use crate::router::{Decision, Fixed, Ingress, Learn, Plan, Step, Target};

/// Most groups a packet goes through one inside another (a bucket's group action).
/// Chains cannot loop (the group table refuses it), but each level may copy the packet
/// once per bucket: this bounds the work one packet makes, as Open vSwitch's
/// translation depth limit does.
const MAX_GROUP_DEPTH: u8 = 16;

impl Fwd<'_> {
    /// Free `buf`, counted under `why`.
    pub(super) fn drop(&mut self, buf: Buf, why: DropReason) {
        self.acct.drop(&mut self.pool, buf, why);
    }

    /// Note the captures that ended (at the control tick); an NF no longer captured may have direct edges again.
    pub(super) fn taps_ended(&mut self) {
        for e in self.taps.take_ended() {
            let why = if e.reader_gone {
                "its reader went away"
            } else {
                "count reached"
            };
            self.acct.event(format!(
                "capture at {} ended ({why}; {} copies missed)",
                e.point, e.missed
            ));
            // Edges closed for it may open again.
            if self.capture_needs_the_switch(e.point) {
                self.topology_changed();
            }
        }
    }

    /// A burst received on port `p` (drained). When the port's fixed rule sends every
    /// packet to one place, the burst goes there whole: no per-packet decision.
    #[inline]
    pub(super) fn ingress_port_burst(&mut self, p: u16, burst: &mut Vec<Buf>) {
        let port = PortNo::physical(p);
        if let Some(f) = self.router.fixed_target(&self.table, &self.reg, port) {
            if let Target::Instance { id, .. } = f.target {
                let k = self.pressure.admit(id, burst.len());
                if k < burst.len() {
                    self.acct
                        .drop_all(&mut self.pool, burst.drain(k..), DropReason::Backpressure);
                }
            }
            if self.route_burst(&f, burst) {
                return;
            }
        }
        for buf in burst.drain(..) {
            self.ingress_port(p, buf);
        }
    }

    /// A burst instance `id` handed back (drained): from its tx ring, each packet's
    /// verdict in its metadata, or from an edge to the manager, every verdict
    /// `implied` by the edge. When every packet says `Next` and its service's fixed
    /// rule sends them out of one port, the burst goes there whole. (To a service, the
    /// packets go one by one: that path learns direct edges.)
    #[inline]
    pub(super) fn ingress_nf_burst(&mut self, id: u16, burst: &mut Vec<Buf>, implied: Option<Verdict>) {
        if self.taps.on(Point::NfTx(id)) {
            self.taps.copy_bufs(Point::NfTx(id), self.pool.holder(), burst);
        }
        if implied.is_none_or(|v| v == Verdict::Next)
            && let Some(service) = self.reg.get(id).map(|i| i.service)
            && let Some(f) = self
                .router
                .fixed_target(&self.table, &self.reg, PortNo::service(service))
            && matches!(f.target, Target::Port(_))
        {
            let (next, zero) = Verdict::Next.encode();
            let holder = self.pool.holder();
            let all_next = implied.is_some()
                || burst.iter().all(|b| {
                    let m = holder.meta(b);
                    m.action() == next && m.dest() == zero
                });
            if all_next && self.route_burst(&f, burst) {
                // They all leave by a port: an edge to the manager may carry them.
                self.learn_edge(Learn {
                    from: id,
                    key: 0,
                    service: None,
                });
                return;
            }
        }
        match implied {
            None => {
                for buf in burst.drain(..) {
                    self.ingress_nf(id, buf);
                }
            }
            Some(v) => {
                let (action, dest) = v.encode();
                for buf in burst.drain(..) {
                    self.route(Ingress::Nf { id, action, dest }, buf);
                }
            }
        }
    }

    /// Queue all of `burst` for `f`'s target, counted on its rule; false (nothing
    /// moved) if some buffer's metadata is unusable, for the per-packet path to name it.
    #[inline]
    fn route_burst(&mut self, f: &Fixed, burst: &mut Vec<Buf>) -> bool {
        let holder = self.pool.holder();
        let mut bytes = 0u64;
        for b in burst.iter_mut() {
            match holder.packet(b) {
                Ok(p) => bytes += p.data().len() as u64,
                Err(_) => return false,
            }
        }
        let q = match f.target {
            Target::Port(p) => self.to_port.get_mut(usize::from(p)),
            Target::Instance { id, .. } => usize::from(id).checked_sub(1).and_then(|i| self.to_nf.get_mut(i)),
            _ => None,
        };
        let Some(q) = q else { return false };
        self.router
            .count_fixed(&mut self.table, f, burst.len() as u64, bytes, self.now);
        if q.is_empty() {
            std::mem::swap(q, burst);
        } else {
            q.append(burst);
        }
        true
    }

    /// A packet received on port `p`.
    #[inline]
    pub(super) fn ingress_port(&mut self, p: u16, buf: Buf) {
        self.route(Ingress::Port(p), buf);
    }

    /// A packet instance `id` handed back, with the verdict in its metadata.
    #[inline]
    pub(super) fn ingress_nf(&mut self, id: u16, buf: Buf) {
        let meta = self.pool.holder().meta(&buf);
        let (action, dest) = (meta.action(), meta.dest());
        self.route(Ingress::Nf { id, action, dest }, buf);
    }

    #[inline(always)]
    fn route(&mut self, ingress: Ingress, mut buf: Buf) {
        let index = buf.index();
        let packet = self.pool.holder().packet(&mut buf);
        let frame = packet.as_ref().ok().map(|p| p.data());
        let d = self.router.route(&mut self.table, &self.reg, ingress, frame, self.now);
        if let Err(e) = &packet {
            // Its metadata was scribbled on: say which buffer and who sent it (the drop
            // itself, if the decision needed the bytes, is counted as bad-buffer).
            let from = match ingress {
                Ingress::Port(p) => format!("port {p}"),
                Ingress::Nf { id, .. } => format!("instance {id}"),
            };
            self.acct.complain(format!("buffer {index} from {from}: {e}"));
        }
        // A packet entering a chain whose NFs are behind stops here (backpressure).
        if let Ingress::Port(_) = ingress
            && let Plan::To(Target::Instance { id, .. }) = d.plan
            && self.pressure.admit(id, 1) == 0
        {
            return self.drop(buf, DropReason::Backpressure);
        }
        self.carry_out(d, buf);
    }

    /// Do what the router decided.
    #[inline(always)]
    pub(super) fn carry_out(&mut self, d: Decision, buf: Buf) {
        if let Some(l) = d.learn {
            self.learn_edge(l);
        }
        self.follow(d.plan, buf);
    }

    #[inline(always)]
    fn follow(&mut self, plan: Plan, buf: Buf) {
        match plan {
            Plan::To(t) => self.send(t, buf),
            Plan::Steps { steps, in_port, rule } => {
                self.run_steps(&steps, buf, in_port, rule);
            }
        }
    }

    #[inline(always)]
    fn send(&mut self, t: Target, buf: Buf) {
        match t {
            Target::Port(p) => match self.to_port.get_mut(usize::from(p)) {
                Some(q) => q.push(buf),
                None => self.drop(buf, DropReason::NoSuchPort),
            },
            Target::Instance { id, hash } => {
                if let Some(h) = hash {
                    self.pool.holder().meta(&buf).set_flow_hash(h);
                }
                // A flow that just moved here waits for its old instance.
                let buf = match hash {
                    Some(h) if !self.handovers.is_empty() => match self.handovers.hold(id, h, buf) {
                        Some(buf) => buf,
                        None => return,
                    },
                    _ => buf,
                };
                match usize::from(id).checked_sub(1).and_then(|i| self.to_nf.get_mut(i)) {
                    Some(q) => q.push(buf),
                    None => self.drop(buf, DropReason::NoInstance),
                }
            }
            Target::Controller { rule, max_len, in_port } => self.for_controller(buf, rule, max_len, in_port),
            Target::Drop(why) => self.drop(buf, why),
            Target::Overflow { id } => {
                let why = self.reg.ring_full(id, 1);
                self.drop(buf, why);
            }
        }
    }

    /// Queue a packet for the planes (handed over at the next control tick).
    #[cold]
    fn for_controller(&mut self, buf: Buf, rule: RuleId, max_len: u16, in_port: PortNo) {
        self.packet_in(buf, rule, max_len, in_port, false);
    }

    #[cold]
    fn packet_in(&mut self, buf: Buf, rule: RuleId, max_len: u16, in_port: PortNo, invalid_ttl: bool) {
        if !self.controller {
            let why = if invalid_ttl {
                DropReason::InvalidTtl
            } else {
                DropReason::NoController
            };
            return self.drop(buf, why);
        }
        match self.table.get(rule) {
            Some(r) => {
                let mut p = PacketIn::new(buf, in_port, max_len, r);
                p.invalid_ttl = invalid_ttl;
                self.to_planes.push(p);
            }
            None => self.drop(buf, DropReason::NoController),
        }
    }

    /// Carry out the steps of a packet that starts the pipeline (a rule found from
    /// table 0, a PACKET_OUT, a flood): with no metadata and an empty action set.
    /// Returns how many copies could not be made (no free buffer).
    #[inline(never)]
    pub(super) fn run_steps(&mut self, steps: &[Step], buf: Buf, in_port: PortNo, rule: Option<RuleId>) -> usize {
        self.pipe.reset();
        self.steps(steps, buf, in_port, rule)
    }

    /// Carry out several steps in order, as OpenFlow's instructions and apply-actions:
    /// a rewrite or edit changes the packet in place, the pipeline steps change its
    /// metadata and action set, and every step that sends it somewhere gets a copy but
    /// the last, which gets the packet itself. When the pipeline ends here (no goto)
    /// with a non-empty action set, the set gets the packet and runs last. A packet
    /// nothing sends anywhere is dropped. Returns how many copies could not be made.
    fn steps(&mut self, steps: &[Step], buf: Buf, in_port: PortNo, rule: Option<RuleId>) -> usize {
        // Whether the action set is non-empty where these steps end the pipeline.
        let goes_on = matches!(steps.last(), Some(Step::Table(_)));
        let set_runs = !goes_on
            && steps.iter().fold(!self.pipe.set.is_empty(), |runs, s| match s {
                Step::Clear => false,
                Step::Write(_) => true,
                _ => runs,
            });
        let last = if set_runs {
            None
        } else {
            steps.iter().rposition(Step::sends)
        };
        let mut held = Some(buf);
        let mut missed = 0;
        for (i, &step) in steps.iter().enumerate() {
            let Some(b) = held.as_mut() else { break };
            match step {
                Step::Set(rw) => {
                    self.rewrite(b, rw);
                    continue;
                }
                Step::Edit(e) => {
                    if let Err(why) = self.edit(b, e) {
                        let Some(b) = held.take() else { break };
                        self.edit_failed(b, why, rule, in_port);
                    }
                    continue;
                }
                Step::Meter(m) => {
                    if !self.meter(b, m) {
                        let Some(b) = held.take() else { break };
                        self.drop(b, DropReason::Meter);
                    }
                    continue;
                }
                Step::Clear => {
                    self.pipe.set.clear();
                    continue;
                }
                Step::Write(a) => {
                    self.pipe.set.write(a);
                    continue;
                }
                Step::Metadata { value, mask } => {
                    self.pipe.metadata = (self.pipe.metadata & !mask) | (value & mask);
                    continue;
                }
                _ => {}
            }
            let Some(b) = self.take_or_copy(&mut held, Some(i) == last, in_port, &mut missed) else {
                continue;
            };
            match (step, rule) {
                (Step::Table(t), _) => self.lookup_from(t, b, in_port),
                (Step::Controller { max_len }, Some(r)) => self.for_controller(b, r, max_len, in_port),
                (Step::Output(to), _) => self.output(to, b, in_port),
                (Step::Group(g), _) => missed += self.group(g, b, in_port, rule),
                _ => self.drop(b, DropReason::Rule),
            }
        }
        if let Some(b) = held {
            if set_runs {
                missed += self.run_action_set(b, in_port, rule);
            } else {
                self.drop(b, DropReason::Rule);
            }
        }
        missed
    }

    /// The end of the pipeline: the packet's action set runs, in the spec's order.
    #[cold]
    fn run_action_set(&mut self, buf: Buf, in_port: PortNo, rule: Option<RuleId>) -> usize {
        let steps: Vec<Step> = self.pipe.set.take_ordered().into_iter().map(Step::of).collect();
        self.steps(&steps, buf, in_port, rule)
    }

    /// One output step of several.
    fn output(&mut self, to: PortNo, mut buf: Buf, in_port: PortNo) {
        let packet = self.pool.holder().packet(&mut buf);
        let frame = packet.as_ref().ok().map(|p| p.data());
        match self.router.output(to, in_port, None, &self.reg, frame) {
            Plan::To(t) => self.send(t, buf),
            // A flood: outputs only, in the middle of a pipeline.
            Plan::Steps { steps, in_port, rule } => {
                self.steps(&steps, buf, in_port, rule);
            }
        }
    }

    /// Look `buf` up from `table` on, as entering from `in_port`, in the middle of its
    /// pipeline: with its metadata, and its action set kept.
    fn lookup_from(&mut self, table: u8, mut buf: Buf, in_port: PortNo) {
        let Ok(packet) = self.pool.holder().packet(&mut buf) else {
            return self.drop(buf, DropReason::BadBuffer);
        };
        let frame = packet.data();
        let mut key = PacketKey::from_frame(in_port, frame);
        key.metadata = self.pipe.metadata;
        let plan = self
            .router
            .lookup(table, &mut self.table, &self.reg, &key, frame, self.now, true);
        match plan {
            Plan::To(t) => self.send(t, buf),
            Plan::Steps { steps, in_port, rule } => {
                self.steps(&steps, buf, in_port, rule);
            }
        }
    }

    /// Rewrite a header field in place. A packet without the field (the rule's match did
    /// not guarantee it) goes on unchanged.
    fn rewrite(&mut self, buf: &mut Buf, rw: Rewrite) {
        let Ok(mut p) = self.pool.holder().packet(buf) else {
            return;
        };
        let _ = onvm_packet::set_field(p.data_mut(), rw);
    }

    /// Push, pop or a TTL change, in place (a tag or label takes or gives back
    /// headroom). On an error the packet is as it was.
    fn edit(&mut self, buf: &mut Buf, e: Edit) -> Result<(), onvm_packet::Error> {
        use onvm_packet as pk;
        let Ok(mut p) = self.pool.holder().packet(buf) else {
            return Err(pk::Error::TooShortForEthernet { len: 0 });
        };
        // A push grows the frame at its front first; a failed one gives the room back.
        let grow = |p: &mut onvm_shm::PacketMut<'_>, f: fn(&mut [u8], u16) -> pk::Result<()>, arg: u16| {
            p.prepend(4).map_err(|_| pk::Error::TooShortForEthernet { len: 0 })?;
            f(p.data_mut(), arg).inspect_err(|_| {
                let _ = p.strip(4);
            })
        };
        match e {
            Edit::PushVlan(tpid) => grow(&mut p, pk::push_vlan, tpid),
            Edit::PushMpls(ether_type) => grow(&mut p, pk::push_mpls, ether_type),
            Edit::PopVlan => pk::pop_vlan(p.data_mut()).map(|()| {
                let _ = p.strip(pk::VLAN_TAG_LEN);
            }),
            // As Open vSwitch: a pop to a non-MPLS EtherType takes the whole stack.
            Edit::PopMpls(ether_type) => pk::mpls::pop_mpls_ovs(p.data_mut(), ether_type).map(|n| {
                let _ = p.strip(n);
            }),
            Edit::SetMplsTtl(t) => pk::set_mpls_ttl(p.data_mut(), t),
            Edit::DecMplsTtl => pk::dec_mpls_ttl(p.data_mut()).map(drop),
            Edit::SetNwTtl(t) => pk::set_nw_ttl(p.data_mut(), t),
            Edit::DecNwTtl => pk::dec_nw_ttl(p.data_mut()).map(drop),
            Edit::CopyTtlOut => pk::copy_ttl_out(p.data_mut()),
            Edit::CopyTtlIn => pk::copy_ttl_in(p.data_mut()),
        }
    }

    /// A packet an edit could not be done to: a TTL run out goes to the controller
    /// (reason INVALID_TTL) or is dropped as invalid-ttl; anything else is a bad-edit
    /// drop, with an event naming the edit's error.
    #[cold]
    fn edit_failed(&mut self, buf: Buf, why: onvm_packet::Error, rule: Option<RuleId>, in_port: PortNo) {
        match (why, rule) {
            (onvm_packet::Error::InvalidTtl { .. }, Some(r)) => {
                self.packet_in(buf, r, u16::MAX, in_port, true);
            }
            (onvm_packet::Error::InvalidTtl { .. }, None) => self.drop(buf, DropReason::InvalidTtl),
            (e, _) => {
                self.acct.complain(format!("a rule's push/pop/TTL action failed: {e}"));
                self.drop(buf, DropReason::BadEdit);
            }
        }
    }

    /// Run `buf` through meter `m`: false when a drop band takes it; a DSCP-remark band
    /// raises its drop precedence. A meter that is gone lets it pass (as OVS).
    fn meter(&mut self, buf: &mut Buf, m: u32) -> bool {
        let Ok(mut p) = self.pool.holder().packet(buf) else {
            return true;
        };
        // The time now, not the pass's (see `Fwd::epoch`): one clock read per metered
        // packet, on the steps path only.
        match self.table.meters.admit(m, p.len(), self.epoch.elapsed()) {
            Some(MeterVerdict::Drop) => false,
            Some(MeterVerdict::Remark { prec_level }) => {
                remark_dscp(p.data_mut(), prec_level);
                true
            }
            Some(MeterVerdict::Pass) | None => true,
        }
    }

    /// Hand `buf` to group `id`: every chosen bucket's actions run on a copy of their
    /// own (the last on the packet), outside the pipeline's action set. Returns how many
    /// copies could not be made.
    fn group(&mut self, id: u32, mut buf: Buf, in_port: PortNo, rule: Option<RuleId>) -> usize {
        let (hash, len) = match self.pool.holder().packet(&mut buf) {
            Ok(p) => {
                let key = PacketKey::from_frame(in_port, p.data());
                (key.flow_tuple().map_or(0, |t| t.symmetric_hash()), p.len())
            }
            Err(_) => {
                self.drop(buf, DropReason::BadBuffer);
                return 0;
            }
        };
        let (reg, controller, ports) = (&self.reg, self.controller, self.to_port.len());
        let live = |p: PortNo| match p.kind() {
            PortKind::Physical(n) => usize::from(n) < ports,
            PortKind::Service(s) => !reg.instances_of(s).is_empty(),
            PortKind::Controller => controller,
            _ => false,
        };
        let chosen: Vec<(usize, Vec<Step>)> = match self.table.groups.buckets_for(id, hash, live) {
            Some(c) => c
                .map(|(i, b)| (i, b.actions.iter().map(|&a| Step::of(a)).collect()))
                .collect(),
            None => Vec::new(),
        };
        let kind = self.table.groups.get(id).map(|g| g.kind);
        let one = match kind {
            Some(GroupType::Select | GroupType::FastFailover) => chosen.first().map(|(i, _)| *i),
            _ => None,
        };
        // A packet through an ALL or INDIRECT group counts even with no bucket (as
        // OVS); one that found no live bucket of a SELECT or FF group counts nowhere.
        if one.is_some() || matches!(kind, Some(GroupType::All | GroupType::Indirect)) {
            self.table.groups.record(id, one, 1, len as u64);
        }
        if chosen.is_empty() || self.groups_deep >= MAX_GROUP_DEPTH {
            if !chosen.is_empty() {
                self.acct
                    .complain(format!("group {id}: chained more than {MAX_GROUP_DEPTH} groups deep"));
            }
            self.drop(buf, DropReason::NoLiveBucket);
            return 0;
        }
        self.groups_deep += 1;
        let outer = std::mem::take(&mut self.pipe);
        let mut missed = 0;
        let n = chosen.len();
        let mut held = Some(buf);
        for (k, (_, steps)) in chosen.iter().enumerate() {
            let Some(b) = self.take_or_copy(&mut held, k + 1 == n, in_port, &mut missed) else {
                continue;
            };
            self.pipe.reset();
            missed += self.steps(steps, b, in_port, rule);
        }
        self.pipe = outer;
        self.groups_deep -= 1;
        missed
    }

    /// The packet for one of several sends: the held packet itself for the last (`last`),
    /// else a copy of it (`None`, counted in `missed`, when no buffer is free; `None`
    /// too once the packet is gone).
    fn take_or_copy(&mut self, held: &mut Option<Buf>, last: bool, in_port: PortNo, missed: &mut usize) -> Option<Buf> {
        if last {
            return held.take();
        }
        let copy = self.copy_of(held.as_mut()?, in_port);
        *missed += usize::from(copy.is_none());
        copy
    }

    /// A copy of `buf` in a fresh buffer (counted as made), or `None` when none is free.
    fn copy_of(&mut self, buf: &mut Buf, in_port: PortNo) -> Option<Buf> {
        let data = self.pool.holder().packet(buf).ok()?.data().to_vec();
        self.copy_in(&data, in_port)
    }

    /// A fresh buffer holding `data`, as if received on `in_port`; `None` when the pool
    /// is empty or the packet does not fit.
    pub(super) fn copy_in(&mut self, data: &[u8], in_port: PortNo) -> Option<Buf> {
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
                self.acct.made += 1;
                Some(buf)
            }
            Err(_) => {
                self.pool.free(buf);
                None
            }
        }
    }

    /// Everything `from` sends with `key` (0 = Next) goes to `service`: if that is one
    /// running instance, open a direct edge. Checked once per (NF, key) until the
    /// topology changes: after the first packet this is one load and a branch.
    #[inline]
    fn learn_edge(&mut self, l: Learn) {
        let at = usize::from(l.from) * usize::from(MAX_SERVICES) + usize::from(l.key);
        match self.direct.tried.get_mut(at) {
            Some(tried) if !*tried => {
                *tried = true;
                self.open_edge(l);
            }
            _ => {}
        }
    }

    #[inline(never)]
    fn open_edge(&mut self, l: Learn) {
        let Learn { from, key, service } = l;
        let to = match service {
            Some(service) => match self.reg.instances_of(service) {
                &[to] => to,
                _ => return,
            },
            None => MANAGER,
        };
        // Out of a port a receive thread has a queue of: that thread reads the edge and
        // sends on its queue (the NFs are shared out among the threads by instance ID).
        let lane = if to == MANAGER { self.tx_lane(from) } else { None };
        let to = lane.map_or(to, |(k, _)| lane_owner(k));
        let running = |i: Option<&crate::registry::Instance>| i.is_some_and(|i| i.state == State::Running);
        // Never into a hung NF: its edge would hold a ring's worth of buffers, past its
        // quota, for as long as it stays hung (the watchdog closed the edges into it).
        // Nor into one that is leaving: nothing new may reach it once it was told so.
        let hung = self.reg.get(to).is_some_and(|i| i.hung || i.leaving);
        let to_nf = !is_manager(to);
        // A captured NF's packets must pass the switch (the manager's own edges do).
        let tapped = self.taps.at_instance(from) || (to_nf && self.taps.at_instance(to));
        if tapped
            || !running(self.reg.get(from))
            || (to_nf && !running(self.reg.get(to)))
            || hung
            || self.direct.edges.find(from, key).is_some()
        {
            return;
        }
        // A receiver that sleeps (shared core) is woken through its rx ring's doorbell;
        // the manager through its wake-up ring, as after any packet sent to it.
        let bell = match to {
            MANAGER => Some(WAKE_RING),
            _ if !to_nf => None, // a receive thread polls
            _ => self.reg.get(to).filter(|i| i.shared).map(|_| rings_of(to).rx),
        };
        let opened = self.direct.edges.open(from, to, key, bell, &mut self.outbox);
        if let Some(ring) = opened
            && let Ok(r) = self.region.ring(ring)
        {
            // Unused until now, but maybe scribbled on meanwhile: start it consistent.
            r.reset();
            r.set_ends(from, to);
            let what = match key {
                0 => "next hop".to_string(),
                s => format!("service {s}"),
            };
            let who = match (to, lane) {
                (MANAGER, _) => "the manager, out of a port".to_string(),
                (_, Some((k, port))) => {
                    self.edge_port[(ring - FIRST_EDGE_RING) as usize] = port;
                    format!("receive thread {k}, out of port {port}")
                }
                (to, None) => format!("instance {to}"),
            };
            self.acct
                .event(format!("direct edge: instance {from} → {who} ({what}) on ring {ring}"));
        }
    }

    /// The receive thread that sends out what `from` sends as `Next`, and the port: the
    /// one its service's fixed rule outputs to, if that thread has a queue of it and
    /// no capture watches the port's transmit.
    fn tx_lane(&mut self, from: u16) -> Option<(u16, u16)> {
        if self.tx_lanes.is_empty() {
            return None;
        }
        let service = self.reg.get(from)?.service;
        let f = self
            .router
            .fixed_target(&self.table, &self.reg, PortNo::service(service))?;
        let Target::Port(p) = f.target else {
            return None;
        };
        let k = (usize::from(from) - 1) % self.tx_lanes.len();
        let watched = self.taps.on(Point::PortTx(p));
        (self.tx_lanes[k].contains(&p) && !watched).then_some((k as u16 + 1, p))
    }

    /// Whether a capture at `point` needs its packets to pass the main switch thread,
    /// so that the direct edges around it close while it runs: an NF's, and those a
    /// receive thread would send out of a captured port.
    pub(super) fn capture_needs_the_switch(&self, point: Point) -> bool {
        point.instance().is_some() || (matches!(point, Point::PortTx(_)) && !self.tx_lanes.is_empty())
    }

    /// `who` (an NF, a receive thread) let go of edge `ring`: if the edge is gone, its
    /// ring is free, its ends reset.
    pub(super) fn edge_released(&mut self, who: u16, ring: u32) {
        if let Some(r) = self.direct.edges.released(who, ring, &mut self.outbox)
            && let Ok(ring) = self.region.ring(r)
        {
            ring.set_ends(0, 0);
        }
    }

    /// Close all edges; the next packets re-learn the ones that still make sense.
    pub(super) fn topology_changed(&mut self) {
        self.direct.edges.close_all(&mut self.outbox);
        self.direct.tried.fill(false);
    }

    /// The rings instance `id` reads: its rx ring, and the edges into it it was told of.
    pub(super) fn rings_read_by(&self, id: u16) -> impl Iterator<Item = u32> + '_ {
        let edges = self.direct.edges.iter().filter(move |e| {
            e.to == id
                && !e.to_dead
                && matches!(
                    e.state,
                    EdgeState::Open | EdgeState::ClosingProducer | EdgeState::ClosingConsumer
                )
        });
        std::iter::once(rings_of(id).rx).chain(edges.map(|e| e.ring))
    }

    /// The fullest ring instance `id` reads, as (packets in it, its room): the one that
    /// overflows first (packets come in through one ring or another, the rx ring or an
    /// edge, rarely through all). A corrupt ring counts as empty; no ring holds more
    /// than the NF's quota (a sender caps an edge at it). (0, 1) when all are empty.
    pub(super) fn fullest_ring(&self, id: u16) -> (u32, u32) {
        let (mut waiting, mut room) = (0u32, 1u32);
        let quota = self.reg.get(id).map_or(u32::MAX, |i| i.quota.max(1));
        for r in self.rings_read_by(id) {
            if let Ok(ring) = self.region.ring(r) {
                let (n, cap) = (ring.len().unwrap_or(0), ring.capacity().min(quota));
                if u64::from(n) * u64::from(room) > u64::from(waiting) * u64::from(cap) {
                    (waiting, room) = (n, cap);
                }
            }
        }
        (waiting, room)
    }

    /// What each chain entry lets in under backpressure, from the congested instances,
    /// their backlogs and the chains' shape (a service's `Next` follows its fixed rule,
    /// if it has one); instances that caught up are said so.
    pub(super) fn settle_pressure(&mut self, active: &[u16]) {
        if !self.pressure.on() {
            return;
        }
        let (reg, table) = (&self.reg, &self.table);
        let mut next = [None; MAX_SERVICES as usize];
        for svc in 1..MAX_SERVICES {
            next[usize::from(svc)] = self.router.fixed_service(table, PortNo::service(svc));
        }
        let service_of = |id: u16| reg.get(id).map(|i| i.service);
        for c in self
            .pressure
            .settle(active, service_of, |s| next.get(usize::from(s)).copied().flatten())
        {
            if let Some(i) = self.reg.get_mut(c.id) {
                i.behind = false;
                let tag = i.tag.clone();
                self.acct.event(format!(
                    "backpressure: NF {tag:?} (instance {}) caught up ({} waiting for it, in its rings and in front of it, of {})",
                    c.id, c.waiting, c.room
                ));
            }
        }
    }

    /// Drop what waits for instance `id`'s rx ring (it is gone).
    pub(super) fn drop_queued_for(&mut self, id: u16) {
        let Some(q) = usize::from(id).checked_sub(1).and_then(|i| self.to_nf.get_mut(i)) else {
            return;
        };
        self.acct.drop_all(&mut self.pool, q.drain(..), DropReason::NoInstance);
    }
}

/// Raise the drop precedence of an IPv4/IPv6 packet's DSCP by `prec_level` (a meter's
/// DSCP-remark band): in the assured-forwarding classes (RFC 2597: class 1-4, drop
/// precedence 1-3 in bits 1-2) the precedence goes up, at most to 3; other code points
/// have no drop precedence and stay. Checksums stay valid.
fn remark_dscp(frame: &mut [u8], prec_level: u8) {
    let Some(dscp) = PacketKey::from_frame(PortNo(0), frame).ip_dscp else {
        return;
    };
    let (class, prec) = (dscp >> 3, (dscp >> 1) & 3);
    if !(1..=4).contains(&class) || prec == 0 || dscp & 1 != 0 {
        return;
    }
    let raised = prec.saturating_add(prec_level).min(3);
    let _ = onvm_packet::set_field(frame, Rewrite::IpDscp((class << 3) | (raised << 1)));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_remark_raises_assured_forwarding_drop_precedence_only() {
        let frame = |dscp: u8| {
            let mut f = onvm_packet::build_udp_for_flow_vec(1, 64).unwrap();
            onvm_packet::set_field(&mut f, Rewrite::IpDscp(dscp)).unwrap();
            f
        };
        let dscp = |f: &[u8]| PacketKey::from_frame(PortNo(0), f).ip_dscp.unwrap();
        for (before, level, after) in [
            (10, 1, 12),
            (10, 2, 14),
            (12, 5, 14),
            (34, 1, 36),
            (46, 1, 46),
            (0, 1, 0),
        ] {
            let mut f = frame(before);
            remark_dscp(&mut f, level);
            assert_eq!(dscp(&f), after, "AF/EF/BE {before} + {level}");
            assert!(onvm_packet::verify_checksums(&f).unwrap());
        }
    }
}
