//! Example NFs, each a [`Handler`](onvm_nf::Handler) in its own module, like BESS
//! modules or Click elements. The `onvm nf NAME` command runs them; `onvm up` starts
//! them as child processes.
//!
//! | NF | What it does |
//! |---|---|
//! | [`speed_tester`] | circulates its own packets to itself or to `-d` and measures Mpps and (with `-l`) per-packet latency |
//! | [`simple_forward`] | forwards every packet to `-d` (or the chain's next hop) |
//! | [`basic_monitor`] | counts packets, bytes and protocols; prints them every tick |
//! | [`meter`] | packet-rate measurement over a warm window, and a wrapper that meters any NF |
//! | [`bridge`] | sends a packet out of the other port of a pair (0↔1, 2↔3, …) |
//! | [`flow`] | (shared) a frame's 5-tuple and a bounded flow table |
//! | [`aes_encrypt`] | AES-GCM-encrypts UDP payloads (nonce and tag added) |
//! | [`aes_decrypt`] | verifies and decrypts what `aes_encrypt` made; drops forgeries |
//! | [`payload_scan`] | forwards TCP/UDP packets whose payload holds one of many strings (Aho-Corasick), drops the rest (`-i` inverts) |
//! | [`flow_tracker`] | tracks flows (packets, bytes, first/last seen) in a bounded table with idle expiry; prints the top ones |
//! | [`test_flow_dir`] | flow-director demo: a flow's first packet to `-d`, the rest to the next hop |
//! | [`load_balancer`] | L3 load balancer for a VIP: flow-affine round-robin/weighted/hash over backends, replies rewritten back, ARP for the VIP |
#![forbid(unsafe_code)]

pub use catalogue::{Catalogue, Catalogued, Launched};

pub mod aes_decrypt;
pub mod aes_encrypt;
pub mod basic_monitor;
pub mod bridge;
pub mod catalogue;
pub mod flow;
pub mod flow_tracker;
pub mod load_balancer;
pub mod meter;
pub mod payload_scan;
pub mod simple_forward;
pub mod speed_tester;
pub mod test_flow_dir;

/// Monotonic clock in nanoseconds, the same in every process of the machine (so one NF
/// can stamp a packet and another can read the stamp).
pub fn now_ns() -> u64 {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
    t.tv_sec as u64 * 1_000_000_000 + t.tv_nsec as u64
}
