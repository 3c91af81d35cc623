//! Accounting while the manager runs, snapshots for the stats views, and the report
//! a run ends with (whose conservation line proves that no packet was lost).

use std::time::Duration;

use onvm_ports::PortStats;
use onvm_shm::{Audit, Buf, OwnerId, Pool};

use super::Mgr;
use crate::drops::{DropReason, Drops};
use crate::registry::{Instance, State};
use crate::stats::{NfRow, PortRow, Snapshot};

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
    /// The switch thread's cycles per phase, when `Options::profile` asked for them.
    pub profile: Option<super::SwitchProfile>,
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

/// Counters the conservation line adds up, and the event log.
#[derive(Debug)]
pub(super) struct Accounting {
    pub(super) drops: Drops,
    /// Buffers given to NFs' alloc rings (and not taken back unused).
    pub(super) alloc_given: u64,
    /// Packets the manager made: a PACKET_OUT's bytes, and the copies of rules and
    /// PACKET_OUTs with several outputs.
    pub(super) made: u64,
    /// Packets handed whole to a controller.
    pub(super) to_controller: u64,
    pub(super) crashes: u32,
    pub(super) events: Vec<String>,
    /// Events since the last stats line.
    pub(super) recent_events: Vec<String>,
    /// NFs that are gone, as they last were.
    pub(super) exited: Vec<NfRow>,
    /// Complaints about bad buffers so far (the first few are logged in full, then
    /// only at powers of two: a scribbler must not flood the log).
    complaints: u64,
    /// Events also go to stderr as they happen.
    log_events: bool,
}

impl Accounting {
    pub(super) fn new(log_events: bool) -> Accounting {
        Accounting {
            drops: Drops::default(),
            alloc_given: 0,
            made: 0,
            to_controller: 0,
            crashes: 0,
            events: Vec::new(),
            recent_events: Vec::new(),
            exited: Vec::new(),
            complaints: 0,
            log_events,
        }
    }

    /// Free `buf` into `pool`, counted under `why`.
    #[inline]
    pub(super) fn drop(&mut self, pool: &mut Pool, buf: Buf, why: DropReason) {
        self.drops.add(why, 1);
        pool.free(buf);
    }

    /// Free every buffer of `bufs`, counted under `why`.
    pub(super) fn drop_all(&mut self, pool: &mut Pool, bufs: impl IntoIterator<Item = Buf>, why: DropReason) {
        for buf in bufs {
            self.drop(pool, buf, why);
        }
    }

    /// A buffer read from shared memory was bad: logged with what names it, the first
    /// ten times and then at every power of two.
    pub(super) fn complain(&mut self, what: String) {
        self.complaints += 1;
        let n = self.complaints;
        if super::control::worth_logging(n) {
            self.event(format!("bad buffer (#{n}): {what}"));
        }
    }

    /// Note something in the event log.
    pub(super) fn event(&mut self, text: String) {
        if self.log_events {
            crate::stats::emit_err(format_args!("onvm mgr: {text}\n"));
        }
        self.recent_events.push(text.clone());
        self.events.push(text);
    }
}

impl Mgr<'_> {
    /// What the stats views show now. The bad buffers ports named since the last one
    /// are logged first (as [`Accounting::complain`]s, so they show in this one's events).
    pub(super) fn snapshot(&mut self) -> Snapshot {
        self.port_complaints();
        Snapshot {
            uptime: self.start.elapsed(),
            ports: self.port_rows(),
            nfs: self.fwd.reg.iter().map(nf_row).collect(),
            drops: self.fwd.acct.drops.list(),
            events: self.fwd.acct.recent_events.clone(),
        }
    }

    /// Log the bad buffers each port named (see [`onvm_ports::BadBuffers`]): off the
    /// fast path, at each stats interval and at the end.
    fn port_complaints(&mut self) {
        let mut named = Vec::new();
        for (i, p) in self.io.ports.iter_mut().enumerate() {
            p.take_bad_buffers(&mut named);
            for what in named.drain(..) {
                self.fwd.acct.complain(format!("port {i}: {what}"));
            }
        }
    }

    fn port_rows(&self) -> Vec<PortRow> {
        let mut rows = port_rows(&self.io.ports);
        self.lanes.add_port_stats(&mut rows);
        self.nfq.add_port_stats(&mut rows);
        rows
    }

    /// Free what no one will take now, audit the pool, add everything up.
    pub(super) fn finish(mut self) -> Report {
        // Buffers waiting to go to ports were flushed; anything still queued for an NF
        // has no NF left to go to.
        self.fwd.end_handovers();
        for id in 1..=self.fwd.to_nf.len() as u16 {
            self.fwd.drop_queued_for(id);
        }
        // Packets kept for a controller (or on their way to one) will not be claimed now.
        for p in std::mem::take(&mut self.fwd.to_planes) {
            self.fwd.drop(p.buf, DropReason::NoController);
        }
        for plane in &mut self.planes {
            for buf in plane.take_kept() {
                self.fwd.acct.drop(&mut self.fwd.pool, buf, DropReason::BufferExpired);
            }
        }
        // Ports that lend buffers to the kernel close and give them back first.
        for p in &mut self.io.ports {
            p.release(&mut self.fwd.pool);
        }
        self.port_complaints();
        let ports = self.port_rows();
        let port_sum = |f: fn(&PortStats) -> u64| ports.iter().map(|p| f(&p.stats)).sum::<u64>();
        let acct = &mut self.fwd.acct;
        let profile = self.prof.finish(port_sum(|s| s.rx));
        // What NFs received on their own queues went into buffers counted in when they
        // were allocated; what they sent is what came in that way (`nf_queues.rs`).
        let created = port_sum(|s| s.rx) + acct.alloc_given + acct.made + self.nfq.tx - self.nfq.rx;
        let sent = port_sum(|s| s.tx) + acct.to_controller;
        let dropped = port_sum(|s| s.tx_drop) + acct.drops.total();
        let live: Vec<OwnerId> = self.fwd.reg.iter().map(|i| OwnerId(i.id)).collect();
        let audit = self.fwd.pool.audit(&live);
        let in_flight = u64::from(audit.total - audit.free);
        let mut nfs = std::mem::take(&mut acct.exited);
        nfs.extend(self.fwd.reg.iter().map(nf_row));
        Report {
            ports,
            nfs,
            drops: acct.drops.list(),
            created,
            sent,
            dropped,
            in_flight,
            audit,
            crashes: acct.crashes,
            rejected: self.fwd.pool.holder().rejected(),
            events: std::mem::take(&mut acct.events),
            uptime: self.start.elapsed(),
            profile,
        }
    }
}

/// Ports as the stats show them.
pub(super) fn port_rows(ports: &[Box<dyn onvm_ports::Port>]) -> Vec<PortRow> {
    ports
        .iter()
        .enumerate()
        .map(|(i, p)| PortRow {
            no: i as u16,
            name: p.name().to_string(),
            stats: p.stats(),
        })
        .collect()
}

/// An instance as the stats show it.
pub(super) fn nf_row(i: &Instance) -> NfRow {
    NfRow {
        tag: i.tag.clone(),
        id: i.id,
        service: i.service,
        core: i.core,
        parent: i.parent,
        state: match i.state {
            State::Running if i.hung => "hung",
            State::Running if i.behind => "behind",
            State::Starting => "starting",
            State::Running => "running",
            State::Stopping => "stopping",
        },
        counters: i.counters,
        rx_drop: i.rx_drop,
        container: i.container.clone(),
        // The supervisor's handles are named so (`supervisor::Handle::id`).
        supervised_as: match (&i.container, i.pid) {
            (Some(c), _) => Some(format!("container {c}")),
            (None, Some(p)) => Some(format!("pid {p}")),
            (None, None) => None,
        },
    }
}
