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

pub mod basic_monitor;
pub mod bridge;
pub mod catalogue;
pub mod fair_queue;
pub mod flood_mitigator;
pub mod heavy_hitter;
pub mod load_generator;
pub mod messaging;
pub mod meter;
pub mod scaling;
pub mod simple_forward;
pub mod skeleton;
pub mod speed_tester;
pub mod tbf;

/// Monotonic clock in nanoseconds, the same in every process of the machine (so one NF
/// can stamp a packet and another can read the stamp).
pub fn now_ns() -> u64 {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
    t.tv_sec as u64 * 1_000_000_000 + t.tv_nsec as u64
}

/// Parse an NF's flags as `onvm nf` would (unit tests).
#[cfg(test)]
pub(crate) fn parse_flags<A: clap::Args + clap::FromArgMatches>(flags: &[&str]) -> Result<A, String> {
    let m = A::augment_args(clap::Command::new("nf"))
        .try_get_matches_from(std::iter::once("nf").chain(flags.iter().copied()))
        .map_err(|e| e.to_string())?;
    A::from_arg_matches(&m).map_err(|e| e.to_string())
}
