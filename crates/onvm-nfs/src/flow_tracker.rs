//! Track flows (packets, bytes, first and last seen) in a bounded table; print the top
//! ones every few seconds.
//!
//! `onvm nf flow-tracker [-d SERVICE] [-p SECS] [--idle SECS] [--max-flows N] [--bidir] [--top N]`
//!
//! A flow is a 5-tuple (IPv4 or IPv6; ports for TCP, UDP and SCTP, else 0); with
//! `--bidir` both directions are one flow. Every `-p` seconds (default 5; 0: never) the
//! `--top` (default 10) flows by bytes are printed. A flow not seen for `--idle` seconds
//! (default 60; 0: never) is removed at the next tick (counted `expired`). The table
//! holds at most `--max-flows` (default 65536) flows: when full, a new flow evicts the
//! least recently seen eighth of it (counted `evicted`; see [`crate::flow`]), so a flood
//! of new flows never grows it. Every packet goes on to `-d` or the chain's next hop,
//! unchanged; frames that are not IP are counted `other`. Reported: `flows` (made),
//! `active`, `expired`, `evicted`, `packets`, `other`.
//!
//! Differs from openNetVM's `flow_tracker`, whose `onvm_ft` table is fixed at 1024
//! entries and never expires or evicts (new flows are not tracked once it is full), and
//! which prints every flow, not the top ones.

use std::io::Write as _;

use onvm_nf::{Action, Batch, Ctx, Handler, PacketMut};

use crate::catalogue::{Catalogued, check_service};
use crate::flow::{FlowKey, FlowTable, Lookup};

const NS: u64 = 1_000_000_000;

/// What is kept for a flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FlowStats {
    /// Packets.
    pub packets: u64,
    /// Bytes (frames, no FCS).
    pub bytes: u64,
    /// When it was first seen (ns).
    pub first_seen: u64,
}

/// What the tracker counted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TrackCounts {
    /// Flows made.
    pub flows: u64,
    /// Flows removed for being idle.
    pub expired: u64,
    /// Packets seen.
    pub packets: u64,
    /// Frames that are not IP.
    pub other: u64,
}

/// The tracking NF. See the [module docs](self).
#[derive(Debug)]
pub struct FlowTracker {
    table: FlowTable<FlowKey, FlowStats>,
    bidir: bool,
    dest: Action,
    print_ns: u64,
    idle_ns: u64,
    top: usize,
    last_print: u64,
    /// What it counted (evictions are the table's).
    pub counts: TrackCounts,
}

impl FlowTracker {
    /// A tracker of at most `max_flows` flows.
    pub fn new(max_flows: usize, bidir: bool, dest: Option<u16>) -> Self {
        FlowTracker {
            table: FlowTable::new(max_flows),
            bidir,
            dest: dest.map_or(Action::Next, Action::ToService),
            print_ns: 0,
            idle_ns: 0,
            top: 10,
            last_print: 0,
            counts: TrackCounts::default(),
        }
    }

    /// Count one frame seen at `now` (ns).
    pub fn observe(&mut self, frame: &[u8], now: u64) {
        self.counts.packets += 1;
        let Some(key) = FlowKey::of(frame) else {
            self.counts.other += 1;
            return;
        };
        let key = if self.bidir { key.canonical() } else { key };
        let (e, how) = self.table.get_or_insert(key, now, || FlowStats {
            packets: 0,
            bytes: 0,
            first_seen: now,
        });
        e.value.packets += 1;
        e.value.bytes += frame.len() as u64;
        if how == Lookup::New {
            self.counts.flows += 1;
        }
    }

    /// Remove flows idle for `--idle` at `now`.
    pub fn expire(&mut self, now: u64) {
        if self.idle_ns > 0 {
            self.counts.expired += self.table.expire(now.saturating_sub(self.idle_ns)) as u64;
        }
    }

    /// The `n` flows with most bytes, most first.
    pub fn top(&self, n: usize) -> Vec<(FlowKey, FlowStats, u64)> {
        let mut all: Vec<_> = self.table.iter().map(|(k, e)| (*k, e.value, e.last_seen)).collect();
        all.sort_unstable_by(|a, b| b.1.bytes.cmp(&a.1.bytes).then(a.0.cmp(&b.0)));
        all.truncate(n);
        all
    }

    /// Flows in the table.
    pub fn active(&self) -> usize {
        self.table.len()
    }

    /// Flows evicted to make room.
    pub fn evicted(&self) -> u64 {
        self.table.evicted
    }

    fn print(&self, instance: u16, now: u64) {
        let mut out = std::io::stdout().lock();
        // Ignoring errors: a reader that went away is no reason to die.
        let _ = writeln!(
            out,
            "flow_tracker[{}]: {} active flows ({} made, {} expired, {} evicted); top {}:",
            instance,
            self.table.len(),
            self.counts.flows,
            self.counts.expired,
            self.table.evicted,
            self.top
        );
        for (k, s, last) in self.top(self.top) {
            let _ = writeln!(
                out,
                "  {}  {} pkts {} bytes, first seen {:.1}s ago, last {:.1}s ago",
                k.display(),
                s.packets,
                s.bytes,
                now.saturating_sub(s.first_seen) as f64 / 1e9,
                now.saturating_sub(last) as f64 / 1e9
            );
        }
    }
}

impl Handler for FlowTracker {
    fn packet(&mut self, pkt: &mut PacketMut<'_>, _ctx: &mut Ctx<'_>) -> Action {
        self.observe(pkt.data(), crate::now_ns());
        self.dest
    }

    /// One clock read per burst.
    fn batch(&mut self, batch: &mut Batch<'_>, _ctx: &mut Ctx<'_>) {
        let now = crate::now_ns();
        batch.map(|p| {
            self.observe(p.data(), now);
            self.dest
        });
    }

    fn tick(&mut self, ctx: &mut Ctx<'_>) {
        let now = crate::now_ns();
        self.expire(now);
        if self.print_ns > 0 && now.saturating_sub(self.last_print) >= self.print_ns {
            self.last_print = now;
            self.print(ctx.instance(), now);
        }
    }
}

/// `onvm nf flow-tracker [-d SERVICE] [-p SECS] [--idle SECS] [--max-flows N] [--bidir] [--top N]`.
#[derive(clap::Args, Debug, Clone)]
pub struct Args {
    /// Destination service (default: the chain's next hop).
    #[arg(short = 'd', long)]
    pub dest: Option<u16>,
    /// Seconds between prints of the top flows (0: never).
    #[arg(short = 'p', long = "print-delay", default_value_t = 5)]
    pub print: u64,
    /// Seconds after which a flow not seen is removed (0: never).
    #[arg(long, default_value_t = 60)]
    pub idle: u64,
    /// Most flows in the table.
    #[arg(long, default_value_t = 65536)]
    pub max_flows: usize,
    /// Both directions of a conversation are one flow.
    #[arg(long)]
    pub bidir: bool,
    /// Flows printed.
    #[arg(long, default_value_t = 10)]
    pub top: usize,
}

impl Catalogued for Args {
    const NAME: &'static str = "flow_tracker";
    type Nf = FlowTracker;
    fn build(&self) -> Result<FlowTracker, String> {
        let dest = self.dest.map(|d| check_service("--dest", d)).transpose()?;
        if !(1..=1 << 24).contains(&self.max_flows) {
            return Err(format!("--max-flows {}: must be 1..={}", self.max_flows, 1 << 24));
        }
        let secs = |flag: &str, v: u64| v.checked_mul(NS).ok_or_else(|| format!("{flag} {v}: too many seconds"));
        let mut t = FlowTracker::new(self.max_flows, self.bidir, dest);
        t.print_ns = secs("-p", self.print)?;
        t.idle_ns = secs("--idle", self.idle)?;
        t.top = self.top;
        Ok(t)
    }
    fn report(nf: &FlowTracker) -> Option<String> {
        let c = nf.counts;
        Some(format!(
            "flow_tracker: flows {}, active {}, expired {}, evicted {}, packets {}, other {}",
            c.flows,
            nf.active(),
            c.expired,
            nf.evicted(),
            c.packets,
            c.other
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use onvm_packet::UdpSpec;

    fn udp(a: u8, b: u8, sp: u16, dp: u16, n: usize) -> Vec<u8> {
        let p = vec![0u8; n];
        UdpSpec {
            payload: &p,
            ..UdpSpec::new([10, 0, 0, a], [10, 0, 0, b], sp, dp)
        }
        .to_vec()
        .unwrap()
    }

    #[test]
    fn counts_flows_both_ways_with_bidir_and_expires_idle_ones() {
        let mut t = FlowTracker::new(100, true, None);
        t.idle_ns = 10 * NS;
        t.observe(&udp(1, 2, 1000, 53, 10), NS);
        t.observe(&udp(2, 1, 53, 1000, 100), 2 * NS);
        t.observe(&udp(1, 3, 1000, 53, 10), 3 * NS);
        t.observe(&[0xff; 20], 3 * NS);
        assert_eq!((t.counts.flows, t.active(), t.counts.other), (2, 2, 1));
        let top = t.top(1);
        assert_eq!((top[0].1.packets, top[0].1.first_seen, top[0].2), (2, NS, 2 * NS));
        t.expire(12 * NS + 1);
        assert_eq!((t.active(), t.counts.expired), (1, 1));
        let mut one_way = FlowTracker::new(100, false, None);
        one_way.observe(&udp(1, 2, 1000, 53, 10), NS);
        one_way.observe(&udp(2, 1, 53, 1000, 10), NS);
        assert_eq!(one_way.counts.flows, 2);
    }

    #[test]
    fn a_flood_of_new_flows_is_bounded_by_max_flows() {
        let mut t = FlowTracker::new(64, false, None);
        for i in 0..10_000u32 {
            t.observe(&udp(1, 2, (i % 60000) as u16, (i / 60000) as u16, 1), u64::from(i));
            assert!(t.active() <= 64);
        }
        assert_eq!(t.counts.flows, 10_000);
        assert_eq!(t.evicted(), 10_000 - t.active() as u64);
    }

    #[test]
    fn malformed_frames_never_panic_and_pass_on() {
        let mut t = FlowTracker::new(16, true, Some(4));
        let mut off = onvm_nf::offline::Offline::new().unwrap();
        let mut sim = off.start(&mut t);
        let frames = crate::aes_encrypt::tests::malformed_frames();
        let out = sim.frames(&mut t, 0, &frames).unwrap();
        assert!(out.iter().all(|s| s.action == Action::ToService(4)));
        t.print(1, crate::now_ns());
    }
}
