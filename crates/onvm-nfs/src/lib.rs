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
//! | [`net`] | (shared) IPv4/IPv6 prefixes, MAC addresses, a frame's addresses, protocol and ports |
//! | [`iptable`] | (shared) a longest-prefix-match table over both IP families |
//! | [`table_file`] | (shared) table and key files read with errors by file and line |
//! | [`firewall`] | stateless ACL: longest prefix match on the source (or destination) address, IPv4 and IPv6 |
//! | [`l3fwd`] | DPDK's l3fwd: LPM on the destination (or exact 5-tuple match) → output port, TTL decremented, MACs rewritten |
//! | [`nf_router`] | openNetVM's nf_router: destination IP (host or prefix, IPv4 and IPv6) → service, from route.conf |
//! | [`l2fwd`] | DPDK's l2fwd: out of the paired port (0↔1, 2↔3, …), MACs rewritten |
//! | [`arp_response`] | answers ARP requests for each port's IPv4 address, out of the arrival port |
//! | [`netarg`] | (shared) flag values: prefix lists, destinations, protocol names |
//! | [`stateful_firewall`] | connection tracking: outbound opens, inbound follows; TCP states and timeouts |
//! | [`nat`] | NAT44: source NAT with per-protocol port pools, ICMP echo by identifier, static DNAT rules |
//! | [`vxlan`] | VXLAN encap (outer Ethernet/IPv4/UDP/VXLAN, source port by inner flow) or decap (`--mode`) |
//! | [`rate_limiter`] | a token-bucket policer per flow, source, destination or prefix; drops or marks DSCP |
//! | [`flow`] | (shared) a frame's 5-tuple and a bounded flow table |
//! | [`aes_encrypt`] | AES-GCM-encrypts UDP payloads (nonce and tag added) |
//! | [`aes_decrypt`] | verifies and decrypts what `aes_encrypt` made; drops forgeries |
//! | [`payload_scan`] | forwards TCP/UDP packets whose payload holds one of many strings (Aho-Corasick), drops the rest (`-i` inverts) |
//! | [`flow_tracker`] | tracks flows (packets, bytes, first/last seen) in a bounded table with idle expiry; prints the top ones |
//! | [`test_flow_dir`] | flow-director demo: a flow's first packet to `-d`, the rest to the next hop |
//! | [`load_balancer`] | L3 load balancer for a VIP: flow-affine round-robin/weighted/hash over backends, replies rewritten back, ARP for the VIP |
//! | [`skeleton`] | the template NF: every callback, documented; counts and passes packets |
//! | [`tbf`] | token-bucket shaper: keeps packets until tokens allow, releases them in order |
//! | [`fair_queue`] | hashes flows into queues and releases them by deficit round robin, optionally paced |
//! | [`load_generator`] | generates UDP flows at a rate and measures what comes back (rate, latency) |
//! | [`scaling`] | starts `-n` child instances of its service with the scaling API |
//! | [`messaging`] | tests NF-to-self messages (single, batch, overflow) while passing packets |
//! | [`heavy_hitter`] | count-min sketch and top-K of keys over a threshold per window |
//! | [`flood_mitigator`] | drops UDP floods to a victim and unsolicited DNS responses |
#![forbid(unsafe_code)]

pub use catalogue::{Catalogue, Catalogued, Launched};

pub mod aes_decrypt;
pub mod aes_encrypt;
pub mod arp_response;
pub mod basic_monitor;
pub mod bridge;
pub mod catalogue;
pub mod fair_queue;
pub mod firewall;
pub mod flood_mitigator;
pub mod flow;
pub mod flow_tracker;
pub mod heavy_hitter;
pub mod iptable;
pub mod l2fwd;
pub mod l3fwd;
pub mod load_balancer;
pub mod load_generator;
pub mod messaging;
pub mod meter;
pub mod nat;
pub mod net;
pub mod netarg;
pub mod nf_router;
pub mod payload_scan;
pub mod rate_limiter;
pub mod scaling;
pub mod simple_forward;
pub mod skeleton;
pub mod speed_tester;
pub mod stateful_firewall;
pub mod table_file;
pub mod tbf;
pub mod test_flow_dir;
pub mod vxlan;

#[cfg(test)]
mod test_frames;

/// The clock of packet timestamps, the same in every process of the machine (so one NF
/// can stamp a packet and another can read the stamp).
pub use onvm_shm::now_ns;

/// Parse an NF's flags as `onvm nf` would (unit tests).
#[cfg(test)]
pub(crate) fn parse_flags<A: clap::Args + clap::FromArgMatches>(flags: &[&str]) -> Result<A, String> {
    let m = A::augment_args(clap::Command::new("nf"))
        .try_get_matches_from(std::iter::once("nf").chain(flags.iter().copied()))
        .map_err(|e| e.to_string())?;
    A::from_arg_matches(&m).map_err(|e| e.to_string())
}
