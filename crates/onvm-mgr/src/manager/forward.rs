//! Carrying out the router's decisions: the only place that moves a routed buffer.
//!
//! [`Fwd::ingress_port`] and [`Fwd::ingress_nf`] ask [`crate::router::Router::route`] where a
//! packet goes and then put it in a per-NF or per-port queue (flushed by the switch
//! loop), hand it to the planes (controller), or free it with its reason. Several steps
//! (a rule's or a PACKET_OUT's actions) run here in order: rewrites in place, a copy for
//! every send but the last, further lookups with the rewritten packet.

use onvm_proto::flow::{PacketKey, PortKind, PortNo, Rewrite, RuleId};
use onvm_proto::limits::MAX_SERVICES;
use onvm_shm::Buf;

use super::{DropReason, Fwd};
use crate::control_plane::PacketIn;
use crate::registry::{State, rings_of};
use crate::router::{Decision, Ingress, Learn, Plan, Step, Target};

impl Fwd<'_> {
    /// Free `buf`, counted under `why`.
    pub(super) fn drop(&mut self, buf: Buf, why: DropReason) {
        self.acct.drop(&mut self.pool, buf, why);
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
        if !self.controller {
            return self.drop(buf, DropReason::NoController);
        }
        match self.table.get(rule) {
            Some(r) => self.to_planes.push(PacketIn::new(buf, in_port, max_len, r)),
            None => self.drop(buf, DropReason::NoController),
        }
    }

    /// Carry out several steps in order, as OpenFlow's apply-actions (a rule's, or a
    /// PACKET_OUT's): a rewrite changes the packet in place, and every step that sends
    /// it somewhere gets a copy, but the last, which gets the packet itself. A packet no
    /// step sends anywhere is dropped. Returns how many copies could not be made (no
    /// free buffer).
    #[inline(never)]
    pub(super) fn run_steps(&mut self, steps: &[Step], buf: Buf, in_port: PortNo, rule: Option<RuleId>) -> usize {
        let last = steps.iter().rposition(Step::sends);
        let mut held = Some(buf);
        let mut missed = 0;
        for (i, &step) in steps.iter().enumerate() {
            let Some(b) = held.as_mut() else { break };
            if let Step::Set(rw) = step {
                self.rewrite(b, rw);
                continue;
            }
            let b = if Some(i) == last {
                match held.take() {
                    Some(b) => b,
                    None => break,
                }
            } else {
                match self.copy_of(b, in_port) {
                    Some(c) => c,
                    None => {
                        missed += 1;
                        continue;
                    }
                }
            };
            match (step, rule) {
                (Step::Table(t), _) => self.lookup_from(t, b, in_port),
                (Step::Controller { max_len }, Some(r)) => self.for_controller(b, r, max_len, in_port),
                (Step::Output(to), _) => self.output(to, b, in_port),
                (Step::Controller { .. } | Step::Drop | Step::Set(_), _) => self.drop(b, DropReason::Rule),
            }
        }
        if let Some(b) = held {
            self.drop(b, DropReason::Rule);
        }
        missed
    }

    /// One output step of several.
    fn output(&mut self, to: PortNo, mut buf: Buf, in_port: PortNo) {
        let packet = self.pool.holder().packet(&mut buf);
        let frame = packet.as_ref().ok().map(|p| p.data());
        let plan = self.router.output(to, in_port, None, &self.reg, frame);
        self.follow(plan, buf);
    }

    /// Look `buf` up from `table` on, as entering from `in_port`.
    fn lookup_from(&mut self, table: u8, mut buf: Buf, in_port: PortNo) {
        let Ok(packet) = self.pool.holder().packet(&mut buf) else {
            return self.drop(buf, DropReason::BadBuffer);
        };
        let frame = packet.data();
        let key = PacketKey::from_frame(in_port, frame);
        let plan = self
            .router
            .lookup(table, &mut self.table, &self.reg, &key, frame, self.now);
        self.follow(plan, buf);
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
        let &[to] = self.reg.instances_of(service) else {
            return;
        };
        let running = |i: Option<&crate::registry::Instance>| i.is_some_and(|i| i.state == State::Running);
        // Never into a hung NF: its edge would hold a ring's worth of buffers, past its
        // quota, for as long as it stays hung (the watchdog closed the edges into it).
        let hung = self.reg.get(to).is_some_and(|i| i.hung);
        if !running(self.reg.get(from))
            || !running(self.reg.get(to))
            || hung
            || self.direct.edges.find(from, key).is_some()
        {
            return;
        }
        // A receiver that sleeps (shared core) is woken through its rx ring's doorbell.
        let bell = self.reg.get(to).filter(|i| i.shared).map(|_| rings_of(to).rx);
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
            self.acct.event(format!(
                "direct edge: instance {from} → instance {to} ({what}) on ring {ring}"
            ));
        }
    }

    /// Close all edges; the next packets re-learn the ones that still make sense.
    pub(super) fn topology_changed(&mut self) {
        self.direct.edges.close_all(&mut self.outbox);
        self.direct.tried.fill(false);
    }

    /// Drop what waits for instance `id`'s rx ring (it is gone).
    pub(super) fn drop_queued_for(&mut self, id: u16) {
        let Some(q) = usize::from(id).checked_sub(1).and_then(|i| self.to_nf.get_mut(i)) else {
            return;
        };
        self.acct.drop_all(&mut self.pool, q.drain(..), DropReason::NoInstance);
    }
}
