//! Where a packet goes: the manager's routing decision, with no buffer and no I/O.
//!
//! smoltcp's `process_*` functions return what to send instead of sending it; this
//! module does the same for the switch. [`Router::route`] takes where a packet came
//! from (a port, or an NF and the verdict it wrote), the packet's bytes, the flow table,
//! the services and the time, and returns a [`Decision`]: a port, an instance, the
//! controller, a drop with its reason, or several steps (rewrites, copies, further
//! lookups) that the switch carries out in order. It also says when a direct NF→NF edge
//! could replace the manager for an NF's packets ([`Learn`]). The switch loop
//! (`manager::forward`) moves the buffer; tests call the router with a frame and a
//! table and look at the value.
//!
//! The hot case is a plain chain: every packet from a port, or handed on by an NF with
//! `Next`, matches one catch-all rule. [`FixedRules`] finds such a rule once per table
//! generation and port, so those packets are routed without being parsed. Everything
//! else is parsed into a [`PacketKey`] and looked up, through the [`FlowCache`] for
//! table 0.

mod fixed;
#[cfg(test)]
mod tests;

use std::time::Duration;

use onvm_proto::flow::{
    Action, Edit, FlowCache, FlowTable, N_TABLES, PacketKey, PortKind, PortNo, Rewrite, Rule, RuleId,
};
use onvm_proto::rss::Toeplitz;
use onvm_proto::verdict::Verdict;

use crate::drops::DropReason;
use crate::registry::Registry;

pub use fixed::FixedRules;

/// What the router needs to know of NF instances and services.
pub trait Services {
    /// The service instance `id` serves, if it is registered.
    fn service_of(&self, id: u16) -> Option<u16>;
    /// The instances of `service` that take packets.
    fn instances_of(&self, service: u16) -> &[u16];
    /// The instance of `service` that owns flow hash `hash` (its RETA).
    fn pick(&self, service: u16, hash: u32) -> Option<u16>;
}

impl Services for Registry {
    fn service_of(&self, id: u16) -> Option<u16> {
        self.get(id).map(|i| i.service)
    }

    fn instances_of(&self, service: u16) -> &[u16] {
        Registry::instances_of(self, service)
    }

    fn pick(&self, service: u16, hash: u32) -> Option<u16> {
        Registry::pick(self, service, hash)
    }
}

/// Where a packet comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ingress {
    /// Received on a physical port.
    Port(u16),
    /// Handed back by NF instance `id`, with the verdict (`action`, `dest`) it wrote in
    /// the buffer's metadata (not trusted: decoded here).
    Nf { id: u16, action: u8, dest: u32 },
}

/// One destination.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    /// A physical port's transmit queue.
    Port(u16),
    /// An NF instance's rx ring. `hash` = the flow hash that chose it among several
    /// (the switch writes it into the metadata, for the NF).
    Instance { id: u16, hash: Option<u32> },
    /// The controller (PACKET_IN), for rule `rule`, with at most `max_len` bytes.
    Controller {
        rule: RuleId,
        max_len: u16,
        in_port: PortNo,
    },
    /// Freed, for this reason.
    Drop(DropReason),
    /// Freed because instance `id`'s ring was full (a direct edge to it overflowed):
    /// counted against that instance.
    Overflow { id: u16 },
}

/// One step of a rule's or a PACKET_OUT's actions and instructions, carried out by the
/// switch in order (OpenFlow's apply-actions, and the instructions around them).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// Rewrite a header field in place.
    Set(Rewrite),
    /// Push or pop a tag or label, set or decrement a TTL.
    Edit(Edit),
    /// Send to a port, a service, IN_PORT or every port ([`Router::output`]).
    Output(PortNo),
    /// Send to the controller.
    Controller { max_len: u16 },
    /// Look the packet up again from this table on (a goto, PACKET_OUT's TABLE).
    Table(u8),
    /// Free it (a rule's DROP).
    Drop,
    /// Hand it to a group.
    Group(u32),
    /// Run it through a meter (a rule's first step): a drop band ends it here.
    Meter(u32),
    /// Empty the packet's action set.
    Clear,
    /// Write an action into the packet's action set.
    Write(Action),
    /// Set the metadata register's bits that are 1 in `mask`.
    Metadata { value: u64, mask: u64 },
}

impl Step {
    /// The step of a rule action.
    pub fn of(a: Action) -> Step {
        match a {
            Action::Output(p) => Step::Output(p),
            Action::Drop => Step::Drop,
            Action::Controller { max_len } => Step::Controller { max_len },
            Action::Goto(t) => Step::Table(t),
            Action::Set(r) => Step::Set(r),
            Action::Edit(e) => Step::Edit(e),
            Action::Group(g) => Step::Group(g),
        }
    }

    /// The steps of a rule, in OpenFlow's instruction order: meter, apply-actions,
    /// clear-actions, write-actions, write-metadata, goto.
    pub fn of_rule(rule: &Rule) -> Vec<Step> {
        let ins = &rule.instructions;
        let apply = rule.actions.iter().filter(|a| !matches!(a, Action::Goto(_)));
        let goto = rule.actions.iter().filter(|a| matches!(a, Action::Goto(_)));
        ins.meter
            .map(Step::Meter)
            .into_iter()
            .chain(apply.map(|&a| Step::of(a)))
            .chain(ins.clear.then_some(Step::Clear))
            .chain(ins.write.iter().map(|&a| Step::Write(a)))
            .chain(ins.metadata.map(|(value, mask)| Step::Metadata { value, mask }))
            .chain(goto.map(|&a| Step::of(a)))
            .collect()
    }

    /// Whether the step sends the packet somewhere (it gets a copy unless it is the
    /// last such step); rewrites, edits and the pipeline's bookkeeping do not.
    pub fn sends(&self) -> bool {
        !matches!(
            self,
            Step::Set(_) | Step::Edit(_) | Step::Meter(_) | Step::Clear | Step::Write(_) | Step::Metadata { .. }
        )
    }
}

/// What to do with a packet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Plan {
    /// One destination (the common case: no copy, no rewrite).
    To(Target),
    /// Steps in order: every step that sends gets a copy but the last, which gets the
    /// packet; a packet that no step sends is dropped (`Rule`). `rule` is the rule the
    /// steps came from (none for a PACKET_OUT or a flood).
    Steps {
        steps: Vec<Step>,
        in_port: PortNo,
        rule: Option<RuleId>,
    },
}

impl Plan {
    fn drop(why: DropReason) -> Plan {
        Plan::To(Target::Drop(why))
    }
}

/// The destination of every packet of a port whose fixed rule needs no look at them
/// ([`Router::fixed_target`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fixed {
    pub rule: RuleId,
    /// The rule's position in the table (for `FlowTable::record_at`).
    pub at: usize,
    pub target: Target,
}

/// Everything NF `from` sends with `key` (0 = `Next`, else the service it names) goes
/// to `service`: a direct edge may carry it (the switch checks that the service has one
/// running instance). `service` = `None`: it all leaves by one port, and an edge to
/// the manager may carry it (its verdict implied, not written into each packet).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Learn {
    pub from: u16,
    pub key: u16,
    pub service: Option<u16>,
}

/// The router's answer for one packet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decision {
    pub plan: Plan,
    pub learn: Option<Learn>,
}

impl From<Plan> for Decision {
    fn from(plan: Plan) -> Self {
        Decision { plan, learn: None }
    }
}

impl From<Target> for Decision {
    fn from(t: Target) -> Self {
        Plan::To(t).into()
    }
}

/// The routing state: the exact-match cache, the fixed-rule index and per-table
/// lookup counters (OpenFlow's TABLE stats).
#[derive(Debug)]
pub struct Router {
    cache: FlowCache,
    fixed: FixedRules,
    counts: [(u64, u64); N_TABLES as usize],
    toeplitz: Toeplitz,
    ports: u16,
}

impl Router {
    /// A router for a switch with `ports` physical ports.
    pub fn new(ports: u16) -> Router {
        Router {
            cache: FlowCache::new(4096),
            fixed: FixedRules::default(),
            counts: [(0, 0); N_TABLES as usize],
            toeplitz: Toeplitz::symmetric(),
            ports,
        }
    }

    /// (lookups, matches) of `table`.
    pub fn table_counts(&self, table: u8) -> (u64, u64) {
        self.counts.get(usize::from(table)).copied().unwrap_or_default()
    }

    /// Where a packet from `ingress` goes. `frame` is its bytes (`None` when its
    /// metadata was corrupt: then only decisions that need no bytes are made). Rule
    /// counters are updated at `now`.
    ///
    /// Inlined into the switch, with the lookup kept out of line: the decision of a
    /// plain chain then never leaves registers.
    #[inline(always)]
    pub fn route(
        &mut self,
        table: &mut FlowTable,
        svc: &impl Services,
        ingress: Ingress,
        frame: Option<&[u8]>,
        now: Duration,
    ) -> Decision {
        let (id, action, dest) = match ingress {
            Ingress::Port(p) => return self.by_port(table, svc, PortNo::physical(p), None, frame, now),
            Ingress::Nf { id, action, dest } => (id, action, dest),
        };
        let Ok(verdict) = Verdict::decode(action, dest) else {
            return Target::Drop(DropReason::BadVerdict).into();
        };
        let Some(service) = svc.service_of(id) else {
            return Target::Drop(DropReason::NoInstance).into();
        };
        match verdict {
            Verdict::Drop => Target::Drop(DropReason::Nf).into(),
            Verdict::Next => self.by_port(table, svc, PortNo::service(service), Some(id), frame, now),
            Verdict::ToService(s) => Decision {
                plan: Plan::To(self.to_service(s, None, svc, frame)),
                learn: Some(Learn {
                    from: id,
                    key: s,
                    service: Some(s),
                }),
            },
            Verdict::ToInstance(i) => match svc.service_of(i) {
                Some(_) => Target::Instance { id: i, hash: None }.into(),
                None => Target::Drop(DropReason::NoInstance).into(),
            },
            Verdict::Out(p) if p < self.ports => Target::Port(p).into(),
            Verdict::Out(_) => Target::Drop(DropReason::NoSuchPort).into(),
            Verdict::EdgeFull(to) => Target::Overflow { id: to }.into(),
            Verdict::OverQuota => Target::Drop(DropReason::OverQuota).into(),
        }
    }

    /// The service every packet entering table 0 from `port` goes to, when the port's
    /// fixed rule outputs to one (backpressure follows chains with it).
    pub fn fixed_service(&mut self, table: &FlowTable, port: PortNo) -> Option<u16> {
        match self.fixed.get(table, port)? {
            (_, _, Some(Action::Output(to))) => match to.kind() {
                PortKind::Service(s) => Some(s),
                _ => None,
            },
            _ => None,
        }
    }

    /// Where every packet entering table 0 from `port` goes when none of them needs a
    /// look (a whole burst of them, routed at once): the port's fixed rule outputs to a
    /// physical port (not its own) or to a service with one instance. With the rule
    /// that decides it, for [`Router::count_fixed`]. `None`: route packet by packet.
    #[inline]
    pub fn fixed_target(&mut self, table: &FlowTable, svc: &impl Services, port: PortNo) -> Option<Fixed> {
        let (rule, at, Some(Action::Output(to))) = self.fixed.get(table, port)? else {
            return None;
        };
        match self.output(to, port, None, svc, None) {
            Plan::To(target @ (Target::Port(_) | Target::Instance { hash: None, .. })) => {
                Some(Fixed { rule, at, target })
            }
            _ => None,
        }
    }

    /// Count `packets` (of `bytes` in all) that [`Router::fixed_target`]'s rule took,
    /// as routing them one by one would have.
    #[inline]
    pub fn count_fixed(&mut self, table: &mut FlowTable, f: &Fixed, packets: u64, bytes: u64, now: Duration) {
        self.record_fixed(table, (f.rule, f.at), packets, bytes, now);
    }

    /// Count `packets` that `port`'s fixed rule took elsewhere (a switch lane), as
    /// [`Router::count_fixed`] does; nothing if the port has no fixed rule now.
    pub fn count_fixed_of(&mut self, table: &mut FlowTable, port: PortNo, packets: u64, bytes: u64, now: Duration) {
        if let Some((rule, at, _)) = self.fixed.get(table, port) {
            self.record_fixed(table, (rule, at), packets, bytes, now);
        }
    }

    #[inline]
    fn record_fixed(
        &mut self,
        table: &mut FlowTable,
        (rule, at): (RuleId, usize),
        packets: u64,
        bytes: u64,
        now: Duration,
    ) {
        self.counts[0].0 += packets;
        self.counts[0].1 += packets;
        table.record_at(at, rule, packets, bytes, now);
    }

    /// A packet entering the table from `port` (`from` = the NF whose `Next` it is).
    #[inline(always)]
    fn by_port(
        &mut self,
        table: &mut FlowTable,
        svc: &impl Services,
        port: PortNo,
        from: Option<u16>,
        frame: Option<&[u8]>,
        now: Duration,
    ) -> Decision {
        let Some(frame) = frame else {
            return Target::Drop(DropReason::BadBuffer).into();
        };
        if let Some((rule, at, action)) = self.fixed.get(table, port) {
            self.counts[0].0 += 1;
            self.counts[0].1 += 1;
            table.record_at(at, rule, 1, frame.len() as u64, now);
            // Every packet `from` hands on goes where this rule says: an edge may do it.
            let learn = match (from, action) {
                (Some(nf), Some(Action::Output(to))) if to != PortNo::IN_PORT => match to.kind() {
                    PortKind::Service(s) => Some(Learn {
                        from: nf,
                        key: 0,
                        service: Some(s),
                    }),
                    PortKind::Physical(p) if p < self.ports => Some(Learn {
                        from: nf,
                        key: 0,
                        service: None,
                    }),
                    _ => None,
                },
                _ => None,
            };
            let plan = match action {
                Some(Action::Output(to)) => self.output(to, port, None, svc, Some(frame)),
                _ => Plan::drop(DropReason::Rule),
            };
            return Decision { plan, learn };
        }
        let key = PacketKey::from_frame(port, frame);
        self.lookup(0, table, svc, &key, frame, now, false).into()
    }

    /// Look `key` up from `table` on, through any gotos. The switch calls this for a
    /// [`Step::Table`] with the key of the packet as rewritten by then, and `steps`:
    /// the packet is in the middle of a pipeline (it may carry an action set, which the
    /// switch runs where the pipeline ends), so every rule found is given as its steps,
    /// never shortened to one destination.
    #[allow(clippy::too_many_arguments)]
    #[inline(never)]
    pub fn lookup(
        &mut self,
        mut t: u8,
        table: &mut FlowTable,
        svc: &impl Services,
        key: &PacketKey,
        frame: &[u8],
        now: Duration,
        steps: bool,
    ) -> Plan {
        loop {
            let found = if t == 0 {
                self.cache.lookup(table, key)
            } else {
                table.lookup_in(t, key)
            };
            let Some(counts) = self.counts.get_mut(usize::from(t)) else {
                return Plan::drop(DropReason::NoRule);
            };
            counts.0 += 1;
            let Some((id, rule)) = found else {
                return Plan::drop(DropReason::NoRule);
            };
            counts.1 += 1;
            let first = rule.actions.first().copied();
            let plain = rule.actions.len() <= 1
                && rule.instructions.is_empty()
                && matches!(
                    first,
                    None | Some(Action::Output(_) | Action::Controller { .. } | Action::Goto(_) | Action::Drop)
                );
            let steps = (steps || !plain).then(|| Step::of_rule(rule));
            table.record(id, 1, frame.len() as u64, now);
            if let Some(steps) = steps {
                return Plan::Steps {
                    steps,
                    in_port: key.in_port,
                    rule: Some(id),
                };
            }
            match first {
                Some(Action::Goto(next)) => t = next,
                Some(Action::Controller { max_len }) => {
                    return Plan::To(Target::Controller {
                        rule: id,
                        max_len,
                        in_port: key.in_port,
                    });
                }
                Some(Action::Output(to)) => return self.output(to, key.in_port, Some(key), svc, Some(frame)),
                _ => return Plan::drop(DropReason::Rule),
            }
        }
    }

    /// Where an output to `to` goes for a packet that entered from `in_port` (`key`, if
    /// the caller parsed the packet already; else it is parsed from `frame` when a
    /// service with several instances needs its flow hash).
    #[inline(always)]
    pub fn output(
        &self,
        to: PortNo,
        in_port: PortNo,
        key: Option<&PacketKey>,
        svc: &impl Services,
        frame: Option<&[u8]>,
    ) -> Plan {
        let port = if to == PortNo::IN_PORT { in_port } else { to };
        match port.kind() {
            // OpenFlow sends a packet back out of its ingress port only through IN_PORT
            // (`to` is then the reserved number, never `in_port`): a plain output to it
            // is dropped, as Open vSwitch does, so a rule flooding by listing every port
            // echoes nothing to the sender. One compare, on this arm only.
            PortKind::Physical(_) if to == in_port => Plan::drop(DropReason::OutputInPort),
            PortKind::Physical(p) if p < self.ports => Plan::To(Target::Port(p)),
            PortKind::All => Plan::Steps {
                steps: (0..self.ports)
                    .map(PortNo::physical)
                    .filter(|&p| p != in_port)
                    .map(Step::Output)
                    .collect(),
                in_port,
                rule: None,
            },
            PortKind::Service(s) => Plan::To(self.to_service(s, key, svc, frame)),
            _ => Plan::drop(DropReason::NoSuchPort),
        }
    }

    /// The instance of service `s` that owns this packet's flow.
    #[inline(always)]
    fn to_service(&self, s: u16, key: Option<&PacketKey>, svc: &impl Services, frame: Option<&[u8]>) -> Target {
        match svc.instances_of(s) {
            [] => Target::Drop(DropReason::NoInstance),
            [only] => Target::Instance { id: *only, hash: None },
            _ => {
                let hash = match (key, frame) {
                    (Some(k), _) => self.flow_hash(k),
                    (None, Some(f)) => self.flow_hash(&PacketKey::from_frame(PortNo::service(s), f)),
                    (None, None) => return Target::Drop(DropReason::BadBuffer),
                };
                match svc.pick(s, hash) {
                    Some(id) => Target::Instance { id, hash: Some(hash) },
                    None => Target::Drop(DropReason::NoInstance),
                }
            }
        }
    }

    fn flow_hash(&self, k: &PacketKey) -> u32 {
        k.rss_hash(&self.toeplitz)
    }
}
