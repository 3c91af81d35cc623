//! `onvm-mgr`: the NF manager.
//!
//! It owns the packet region and the pool, the ports and the flow table; NFs register
//! with it over a Unix seqpacket socket. One thread does everything (see
//! [`manager`]): on a two-core machine the second core belongs to NFs. With more cores,
//! receive threads can poll ports' further queues (`Options::rx_threads`).
//!
//! | Module | Holds |
//! |---|---|
//! | [`options`] | how a manager is set up |
//! | [`topology`] | CPUs and NUMA nodes from sysfs (or a fake tree), interfaces' nodes |
//! | [`placement`] | which cores and nodes the switch, NFs and buffers get |
//! | [`registry`] | instance IDs, services and their RETAs, cores, refusal reasons |
//! | [`edges`] | direct NF→NF rings and their two-step close |
//! | [`router`] | where a packet goes: a pure decision from frame, table, services and time |
//! | [`drops`] | drop reasons and their counters |
//! | `lane` | receive lanes: switch threads for a port's further queues (`--rx-threads`) |
//! | [`manager`] | the loop: switch, control socket, NF lifecycle and reclaim, shutdown, report |
//! | [`control_plane`] | the seam that OpenFlow and the HTTP endpoint plug into |
//! | [`http`] | REST API, live stream, Prometheus metrics and the web console (`--http`) |
//! | [`capture`] | copies of the packets passing a port or an NF, for `onvm capture` |
//! | [`stats`] | console table, CSV, snapshots |
//! | [`openflow`] | the OpenFlow 1.3 agent: controllers and `ovs-ofctl` program the table |
//! | [`supervisor`] | NF processes started, watched and restarted under their policy (backoff) |
#![forbid(unsafe_code)]

pub mod capture;
pub mod control_plane;
pub mod drops;
pub mod edges;
pub mod error;
pub mod http;
mod lane;
pub mod manager;
pub mod openflow;
pub mod options;
pub mod placement;
pub mod registry;
pub mod router;
pub mod stats;
pub mod supervisor;
pub mod topology;

pub use drops::DropReason;
pub use error::MgrError;
pub use manager::{Report, SwitchProfile, run};
pub use options::{AutoscaleRule, ManagerCore, Options, SocketAccess, StatsMode};
