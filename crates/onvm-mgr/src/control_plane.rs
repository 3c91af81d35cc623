//! The seam between the switch and everything that programs or watches it.
//!
//! The manager's switch thread moves packets; what talks to the outside world about
//! them (the OpenFlow agent today; a REST API and exporters next) is a
//! [`ControlPlane`] plugged into the manager. Each plane is polled from the manager's
//! control tick (every millisecond under load, never per packet) and gets a
//! [`Switch`]: the flow table, ports, counters, and a way to send packets. What the
//! switch has for a plane — a packet a rule sends to the controller, a rule that
//! expired — is queued by the switch and handed over at the next tick, so no plane runs
//! on the hot path.
//!
//! Order within one control tick: expired rules ([`ControlPlane::flow_removed`]), then
//! queued packets ([`ControlPlane::packet_in`]), then [`ControlPlane::poll`].

use std::time::Duration;

use onvm_proto::flow::{Edit, Expiry, FlowTable, PortNo, Rewrite, Rule};
use onvm_shm::Buf;
use thiserror::Error;

use crate::stats::Snapshot;

/// Counters of one port, as PORT_STATS reports them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PortCounters {
    pub rx_packets: u64,
    pub tx_packets: u64,
    pub rx_bytes: u64,
    pub tx_bytes: u64,
    pub rx_dropped: u64,
    pub tx_dropped: u64,
    pub errors: u64,
}

/// A port as the switch shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PortView {
    pub no: PortNo,
    pub name: String,
    /// Link up (a physical port; a service with a running instance).
    pub up: bool,
}

/// A service and the instances that serve it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServiceView {
    pub id: u16,
    pub name: String,
    /// Instances that take packets (its load-balancing table's members).
    pub instances: Vec<u16>,
}

/// How full an instance's rings are, as the manager reads their indices.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RingLevel {
    pub id: u16,
    /// Packets waiting in its rx ring.
    pub rx: u32,
    /// Packets waiting in its tx ring.
    pub tx: u32,
    /// Slots of each ring.
    pub capacity: u32,
}

/// What an observer (the HTTP plane) reads of the switch at one control tick: counters
/// are copied, so it can format them off the switch thread.
#[derive(Clone, Debug, Default)]
pub struct Observation {
    /// Ports, NFs (running and gone), drops by reason; no events (see [`Switch::events`]).
    pub snap: Snapshot,
    pub services: Vec<ServiceView>,
    /// Per running instance.
    pub rings: Vec<RingLevel>,
    /// Events so far: [`Switch::events`] from here gives only newer ones.
    pub events: usize,
    /// Per table with lookups: (table, lookups, matches).
    pub tables: Vec<(u8, u64, u64)>,
}

/// A packet a plane hands to the switch.
#[derive(Debug)]
pub enum Payload {
    /// One it kept (a buffered PACKET_IN).
    Held(Buf),
    /// Bytes it was given (a PACKET_OUT's data).
    Data(Vec<u8>),
}

/// One step of a packet a plane sends ([`Switch::inject`]), in order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Out {
    /// A physical or service port.
    Port(PortNo),
    /// Through the flow table, from the message's in_port.
    Table,
    /// Back out the message's in_port.
    InPort,
    /// Every physical port but the in_port (FLOOD and ALL: onvm has no NO_FWD ports).
    Flood,
    /// Rewrite a header field (the outputs after it see the new value).
    Set(Rewrite),
    /// Push or pop a tag or label, set or decrement a TTL.
    Edit(Edit),
    /// Through a group.
    Group(u32),
}

/// Why [`Switch::inject`] could not send everything.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
pub enum InjectError {
    /// The bytes need a buffer and none is free, or they do not fit in one.
    #[error("{len} bytes: no free buffer, or more than a buffer holds")]
    NoBuffer { len: usize },
    /// Outputs after the first got no copy: the pool ran dry.
    #[error("{0} copies not sent: no free buffer")]
    CopiesLost(usize),
}

/// What a plane needs of the switch (implemented by the manager; tests fake it).
pub trait Switch {
    /// The flow table.
    fn table(&mut self) -> &mut FlowTable;
    /// The table's clock.
    fn now(&self) -> Duration;
    /// Physical ports, then services.
    fn ports(&self) -> Vec<PortView>;
    /// Counters of a port in [`Switch::ports`].
    fn port_counters(&self, port: PortNo) -> PortCounters;
    /// (lookups, matches) of a table.
    fn table_counts(&self, table: u8) -> (u64, u64);
    /// Send a packet on, as if it came in on `in_port`, through `outs` in order. A
    /// packet with no output is dropped (`controller-drop`).
    fn inject(&mut self, packet: Payload, in_port: PortNo, outs: &[Out]) -> Result<(), InjectError>;
    /// Drop a packet the plane kept and will not send: expired (`buffer-expired`) or
    /// let go (`controller-drop`).
    fn release(&mut self, buf: Buf, expired: bool);
    /// The config's rules, alone in the table (OpenFlow's fail-standalone).
    fn restore_config_rules(&mut self);
    /// Note something in the manager's event log.
    fn event(&mut self, text: String);
    /// Counters, NFs, services and ring levels now.
    fn observe(&self) -> Observation;
    /// The event log from entry `from` on (entries are never removed while running).
    fn events(&self, from: usize) -> &[String];
    /// Start copying the packets passing a point ([`crate::capture`]); an error names a
    /// port or NF that is not there.
    fn capture(&mut self, tap: crate::capture::Tap) -> Result<(), String>;
}

/// A packet a rule sent to the controller, waiting for a plane to take it.
#[derive(Debug)]
pub struct PacketIn {
    /// The packet.
    pub buf: Buf,
    /// Where it came in.
    pub in_port: PortNo,
    /// At most this many bytes go to the controller (`0xffff`: all, nothing kept).
    pub max_len: u16,
    /// The table of the rule that sent it.
    pub table_id: u8,
    /// That rule's cookie.
    pub cookie: u64,
    /// That rule is the table-miss rule (OpenFlow's reason NO_MATCH, else ACTION).
    pub table_miss: bool,
    /// A TTL decrement found the TTL at 0 or 1 (OpenFlow's reason INVALID_TTL).
    pub invalid_ttl: bool,
}

impl PacketIn {
    /// What the packet-in of `buf` says, for rule `rule`.
    pub fn new(buf: Buf, in_port: PortNo, max_len: u16, rule: &Rule) -> PacketIn {
        PacketIn {
            buf,
            in_port,
            max_len,
            table_id: rule.table,
            cookie: rule.cookie,
            table_miss: rule.is_table_miss(),
            invalid_ttl: false,
        }
    }
}

/// What became of a [`PacketIn`].
#[derive(Debug)]
pub enum Fate {
    /// The plane keeps the buffer (and later sends or releases it through [`Switch`]).
    Kept,
    /// Sent whole: the switch frees the buffer and counts it as sent.
    Sent(Buf),
    /// No controller took it: dropped as `no-controller`.
    Refused(Buf),
}

/// Something plugged into the manager's control tick.
pub trait ControlPlane: std::fmt::Debug {
    /// Serve its peers (accept, read, answer). Returns whether anything came in: the
    /// manager then does not back off to sleep before the next tick, so a peer in a
    /// request-reply exchange is answered at once.
    fn poll(&mut self, sw: &mut dyn Switch) -> bool;

    /// Whether it takes packets that rules send to the controller now. When none
    /// does, such packets are dropped as `no-controller` at once.
    fn takes_packets(&self) -> bool {
        false
    }

    /// A packet a rule sent to the controller, with its bytes.
    fn packet_in(&mut self, p: PacketIn, _data: &[u8]) -> Fate {
        Fate::Refused(p.buf)
    }

    /// A rule left the table by timing out, at `now`.
    fn flow_removed(&mut self, _rule: &Rule, _why: Expiry, _now: Duration) {}

    /// At shutdown: every packet it kept, for the manager to free.
    fn take_kept(&mut self) -> Vec<Buf> {
        Vec::new()
    }
}
