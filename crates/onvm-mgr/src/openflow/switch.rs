//! What the agent needs of the manager, as a trait: the manager implements it, and the
//! agent's tests fake it, so the protocol logic is tested without a packet region.

use std::time::Duration;

use onvm_proto::flow::{FlowTable, PortNo};
use onvm_shm::Buf;

use super::Out;

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

/// A packet the agent hands to the switch.
#[derive(Debug)]
pub enum Payload {
    /// One it buffered for the controller.
    Held(Buf),
    /// Bytes a PACKET_OUT carried.
    Data(Vec<u8>),
}

/// What the agent needs of the manager (implemented by it; tests use their own).
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
    /// Send a packet on, as if it came in on `in_port`. An error is a note for the log.
    fn inject(&mut self, packet: Payload, in_port: PortNo, outs: &[Out]) -> Result<(), String>;
    /// Drop a buffered packet the controller did not claim in time, or let go.
    fn release(&mut self, buf: Buf, expired: bool);
    /// The config's rules, alone in the table (fail-standalone).
    fn restore_config_rules(&mut self);
    /// Note something in the manager's event log.
    fn event(&mut self, text: String);
}
