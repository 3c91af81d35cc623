//! Pure protocol logic of onvm-rs: no sockets, no threads, no shared memory.
//!
//! Everything here is a function of its inputs ("sans-IO", like quinn-proto or
//! rustls): the NF manager, the NF library and the CLI feed it bytes, packets' header
//! bytes and the current time, and act on what it returns. That keeps the decisions
//! that matter most — where a packet goes, which instance gets a flow, whether a config
//! or a control message is valid — deterministic and testable without a running
//! system, and lets two different processes (manager and NF) share one implementation
//! of the wire format.
//!
//! | Module | Holds |
//! |---|---|
//! | [`limits`] | service/instance/port limits shared by all crates |
//! | [`rss`] | Toeplitz hash (symmetric key), flow 5-tuple, RETA load balancing |
//! | [`flow`] | port numbering, matches, rules, the OpenFlow-like flow table, the exact-match cache, packet-key extraction |
//! | [`chain`] | service chains and their compilation into flow rules |
//! | [`port`] | port spec strings (`gen:64B,1000flows`, `pcap:in.pcap`, ...) |
//! | [`config`] | the `onvm up` TOML file, checked as a whole |
//! | [`ctrl`] | NF ⇄ manager control messages and their binary encoding |
//! | [`edge`] | the direct NF→NF edge protocol: the manager's half and the NF's |
//! | [`verdict`] | an NF's decision for a packet, as carried in its metadata |
//!
//! The crate has no `unsafe` code.
#![forbid(unsafe_code)]

pub mod chain;
pub mod config;
pub mod ctrl;
pub mod edge;
pub mod flow;
pub mod limits;
pub mod port;
pub mod rss;
pub mod verdict;
