//! The manager's side of the control-plane seam: what the planes see of the switch
//! ([`SwitchView`]), and handing them what the switch queued for them.

use std::time::{Duration, Instant};

use onvm_ports::Port;
use onvm_proto::flow::{FlowTable, PortKind, PortNo};
use onvm_shm::Buf;

use super::{DropReason, Fwd, Mgr};
use crate::capture::{Point, Tap};
use crate::control_plane::{
    Fate, InjectError, Observation, Out, Payload, PortCounters, PortView, RingLevel, ServiceView, Switch,
};
use crate::options::Options;
use crate::registry::State;
use crate::registry::rings_of;
use crate::router::Step;
use crate::stats::Snapshot;

impl Mgr<'_> {
    /// Hand queued packets to the planes, then let each serve its peers.
    pub(super) fn poll_planes(&mut self) {
        let fwd = &mut self.fwd;
        fwd.taps.prune();
        fwd.taps_ended();
        for p in std::mem::take(&mut fwd.to_planes) {
            let mut p = p;
            let data = match fwd.pool.holder().packet(&mut p.buf) {
                Ok(pkt) => pkt.data().to_vec(),
                Err(_) => {
                    fwd.drop(p.buf, DropReason::BadBuffer);
                    continue;
                }
            };
            // A packet nobody takes is dropped for why it was sent: a TTL run out stays
            // `invalid-ttl` when the controllers did not ask for those.
            let refused = if p.invalid_ttl {
                DropReason::InvalidTtl
            } else {
                DropReason::NoController
            };
            let mut p = Some(p);
            for plane in self.planes.iter_mut().filter(|pl| pl.takes_packets()) {
                let Some(pi) = p.take() else { break };
                match plane.packet_in(pi, &data) {
                    Fate::Kept => {}
                    Fate::Sent(buf) => {
                        fwd.acct.to_controller += 1;
                        fwd.pool.free(buf);
                    }
                    Fate::Refused(buf) => fwd.drop(buf, refused),
                }
            }
            if let Some(pi) = p {
                fwd.drop(pi.buf, refused);
            }
        }
        let mut sw = SwitchView {
            fwd: &mut self.fwd,
            ports: &self.io.ports,
            opts: &self.opts,
            start: self.start,
        };
        for plane in &mut self.planes {
            // A peer mid-exchange counts as work: no back-off sleep before its next message.
            self.io.moved |= plane.poll(&mut sw);
        }
        self.fwd.controller = self.planes.iter().any(|p| p.takes_packets());
    }

    /// Remove rules whose time is up and tell the planes.
    pub(super) fn expire_rules(&mut self) {
        let now = self.fwd.now;
        for (rule, why) in self.fwd.table.expire(now) {
            self.fwd
                .acct
                .event(format!("rule expired: priority {} {:?}", rule.priority, rule.matcher));
            for plane in &mut self.planes {
                plane.flow_removed(&rule, why, now);
            }
        }
    }
}

/// The switch as a plane sees it during its poll.
struct SwitchView<'a, 'r> {
    fwd: &'a mut Fwd<'r>,
    ports: &'a [Box<dyn Port>],
    opts: &'a Options,
    start: Instant,
}

impl SwitchView<'_, '_> {
    /// Every service with a name or an instance, ascending.
    fn service_ids(&self) -> Vec<u16> {
        let mut services: Vec<u16> = self.opts.service_names.keys().copied().collect();
        services.extend(self.fwd.reg.iter().map(|i| i.service));
        services.sort_unstable();
        services.dedup();
        services
    }

    fn service_name(&self, s: u16) -> String {
        let reg = &self.fwd.reg;
        self.opts.service_names.get(&s).cloned().unwrap_or_else(|| {
            reg.instances_of(s)
                .first()
                .and_then(|&i| reg.get(i))
                .map_or_else(|| format!("service{s}"), |i| i.tag.clone())
        })
    }
}

impl Switch for SwitchView<'_, '_> {
    fn table(&mut self) -> &mut FlowTable {
        &mut self.fwd.table
    }

    fn now(&self) -> Duration {
        self.fwd.now
    }

    fn ports(&self) -> Vec<PortView> {
        let reg = &self.fwd.reg;
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
        v.extend(self.service_ids().into_iter().map(|s| {
            PortView {
                no: PortNo::service(s),
                name: self.service_name(s),
                up: reg
                    .instances_of(s)
                    .iter()
                    .any(|&i| reg.get(i).is_some_and(|i| i.state == State::Running)),
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
            PortKind::Service(s) => {
                self.fwd
                    .reg
                    .iter()
                    .filter(|i| i.service == s)
                    .fold(PortCounters::default(), |c, i| PortCounters {
                        rx_packets: c.rx_packets + i.counters.tx,
                        tx_packets: c.tx_packets + i.counters.rx + i.rx_drop,
                        tx_dropped: c.tx_dropped + i.rx_drop,
                        ..c
                    })
            }
            _ => PortCounters::default(),
        }
    }

    fn table_counts(&self, table: u8) -> (u64, u64) {
        self.fwd.router.table_counts(table)
    }

    fn inject(&mut self, packet: Payload, in_port: PortNo, outs: &[Out]) -> Result<(), InjectError> {
        let buf = match packet {
            Payload::Held(b) => b,
            Payload::Data(d) => self
                .fwd
                .copy_in(&d, in_port)
                .ok_or(InjectError::NoBuffer { len: d.len() })?,
        };
        let steps: Vec<Step> = outs
            .iter()
            .map(|o| match *o {
                Out::Table => Step::Table(0),
                Out::Port(p) => Step::Output(p),
                Out::InPort => Step::Output(PortNo::IN_PORT),
                Out::Flood => Step::Output(PortNo::ALL),
                Out::Set(r) => Step::Set(r),
                Out::Edit(e) => Step::Edit(e),
                Out::Group(g) => Step::Group(g),
            })
            .collect();
        if !steps.iter().any(Step::sends) {
            self.fwd.drop(buf, DropReason::ControllerDrop);
            return Ok(());
        }
        match self.fwd.run_steps(&steps, buf, in_port, None) {
            0 => Ok(()),
            m => Err(InjectError::CopiesLost(m)),
        }
    }

    fn release(&mut self, buf: Buf, expired: bool) {
        let why = match expired {
            true => DropReason::BufferExpired,
            false => DropReason::ControllerDrop,
        };
        self.fwd.drop(buf, why);
    }

    fn restore_config_rules(&mut self) {
        self.fwd.table = FlowTable::new();
        for rule in &self.opts.rules {
            self.fwd.table.add(rule.clone(), self.fwd.now);
        }
    }

    fn event(&mut self, text: String) {
        self.fwd.acct.event(text);
    }

    fn observe(&self) -> Observation {
        let (fwd, reg) = (&*self.fwd, &self.fwd.reg);
        // Gone NFs as they last were, but said to be gone: a restarted one has their ID.
        let mut nfs = fwd.acct.exited.clone();
        for n in &mut nfs {
            n.state = "exited";
        }
        nfs.extend(reg.iter().map(super::report::nf_row));
        let snap = Snapshot {
            uptime: self.start.elapsed(),
            ports: super::report::port_rows(self.ports),
            nfs,
            drops: fwd.acct.drops.list(),
            events: Vec::new(),
        };
        let services = self
            .service_ids()
            .into_iter()
            .map(|id| ServiceView {
                id,
                name: self.service_name(id),
                instances: reg.instances_of(id).to_vec(),
            })
            .collect();
        // Racy reads of the indices (both ends run): a level, not an audit.
        let level = |ring: u32| {
            fwd.region
                .ring(ring)
                .map_or((0, 0), |r| (r.len().unwrap_or(0), r.capacity()))
        };
        let rings = reg
            .iter()
            .map(|i| {
                let ids = rings_of(i.id);
                let ((rx, capacity), (tx, _)) = (level(ids.rx), level(ids.tx));
                RingLevel {
                    id: i.id,
                    rx,
                    tx,
                    capacity,
                }
            })
            .collect();
        let tables = (0..onvm_proto::flow::N_TABLES)
            .filter_map(|t| {
                let (lookups, matches) = fwd.router.table_counts(t);
                (lookups > 0 || t == 0).then_some((t, lookups, matches))
            })
            .collect();
        Observation {
            snap,
            services,
            rings,
            events: fwd.acct.events.len(),
            tables,
        }
    }

    fn events(&self, from: usize) -> &[String] {
        self.fwd.acct.events.get(from..).unwrap_or_default()
    }

    fn capture(&mut self, tap: Tap) -> Result<(), String> {
        match tap.point {
            Point::PortRx(p) | Point::PortTx(p) if usize::from(p) >= self.ports.len() => {
                return Err(format!("no port {p} (this switch has ports 0..{})", self.ports.len()));
            }
            Point::NfRx(id) | Point::NfTx(id) if self.fwd.reg.get(id).is_none() => {
                return Err(format!("no NF instance {id} is registered"));
            }
            _ => {}
        }
        let point = tap.point;
        self.fwd.taps.add(tap);
        // Its packets must pass the switch: direct edges around it close, and do not
        // open again while it is captured.
        if self.fwd.capture_needs_the_switch(point) {
            self.fwd.topology_changed();
        }
        self.fwd.acct.event(format!("capture at {point} started"));
        Ok(())
    }
}
