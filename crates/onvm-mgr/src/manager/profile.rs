//! Where the switch thread's time goes, phase by phase, in TSC cycles (`--profile`,
//! `onvm bench`'s cycles per packet).
//!
//! The VM this was built on has no hardware performance counters, so the switch reads
//! the time stamp counter (through `quanta`, which also calibrates it) at each phase
//! boundary of a pass and adds the difference to the phase that just ended. Off by
//! default: then each boundary is one predictable branch. On, it costs one TSC read per
//! boundary (six per pass, tens of packets each), a few cycles per packet.

use std::time::Instant;

/// A part of the switch's pass.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Ports' `rx_burst`: buffers taken from the pool, filled and stamped.
    Rx = 0,
    /// Routing what the ports received into per-NF and per-port queues.
    Classify,
    /// Queues into NFs' rx rings (`Mgr::flush`'s first half).
    Enqueue,
    /// NFs' tx rings read and what they hold routed.
    Dequeue,
    /// Queues out of ports' `tx_burst` (buffers freed).
    Tx,
    /// Everything else: timers, control sockets, stats, idle back-off.
    Rest,
}

impl Phase {
    /// Every phase, in pass order.
    pub const ALL: [Phase; 6] = [
        Phase::Rx,
        Phase::Classify,
        Phase::Enqueue,
        Phase::Dequeue,
        Phase::Tx,
        Phase::Rest,
    ];

    /// Its name in reports.
    pub fn name(self) -> &'static str {
        match self {
            Phase::Rx => "rx",
            Phase::Classify => "classify",
            Phase::Enqueue => "enqueue",
            Phase::Dequeue => "dequeue",
            Phase::Tx => "tx",
            Phase::Rest => "rest",
        }
    }
}

/// The running tally (the switch thread's own).
#[derive(Debug)]
pub(super) struct Profiler {
    clock: Option<quanta::Clock>,
    last: u64,
    cycles: [u64; 6],
    started: (u64, Instant),
}

impl Profiler {
    pub(super) fn new(on: bool) -> Self {
        let clock = on.then(quanta::Clock::new);
        let now = clock.as_ref().map_or(0, quanta::Clock::raw);
        Profiler {
            clock,
            last: now,
            cycles: [0; 6],
            started: (now, Instant::now()),
        }
    }

    /// Phase `p` ends now.
    #[inline(always)]
    pub(super) fn end(&mut self, p: Phase) {
        if let Some(c) = &self.clock {
            let now = c.raw();
            self.cycles[p as usize] += now.wrapping_sub(self.last);
            self.last = now;
        }
    }

    /// What was measured, with `packets` received on ports over the run.
    pub(super) fn finish(&self, packets: u64) -> Option<SwitchProfile> {
        let c = self.clock.as_ref()?;
        let ticks = c.raw().wrapping_sub(self.started.0);
        let secs = self.started.1.elapsed().as_secs_f64();
        Some(SwitchProfile {
            cycles: Phase::ALL.map(|p| (p.name(), self.cycles[p as usize])).to_vec(),
            packets,
            tsc_hz: if secs > 0.0 { ticks as f64 / secs } else { 0.0 },
        })
    }
}

/// Where the switch thread's cycles went over a run.
#[derive(Clone, Debug, PartialEq)]
pub struct SwitchProfile {
    /// TSC cycles per phase, in pass order (`rx`, `classify`, `enqueue`, `dequeue`,
    /// `tx`, `rest`).
    pub cycles: Vec<(&'static str, u64)>,
    /// Packets received on ports over the run.
    pub packets: u64,
    /// The TSC's rate, measured against the monotonic clock over the run.
    pub tsc_hz: f64,
}

impl SwitchProfile {
    /// Cycles per received packet of each phase, and in all.
    pub fn per_packet(&self) -> (Vec<(&'static str, f64)>, f64) {
        let n = self.packets.max(1) as f64;
        let each: Vec<_> = self.cycles.iter().map(|&(p, c)| (p, c as f64 / n)).collect();
        let total = each.iter().map(|(_, c)| c).sum();
        (each, total)
    }

    /// One line: `rx 5.1 classify 3.2 ... = 40.3 cycles/packet (TSC 2.25 GHz)`.
    pub fn line(&self) -> String {
        let (each, total) = self.per_packet();
        let parts: Vec<String> = each.iter().map(|(p, c)| format!("{p} {c:.1}")).collect();
        format!(
            "{} = {total:.1} cycles/packet (TSC {:.2} GHz)",
            parts.join(" "),
            self.tsc_hz / 1e9
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn off_measures_nothing_and_on_adds_up_the_phases() {
        let mut off = Profiler::new(false);
        off.end(Phase::Rx);
        assert_eq!(off.finish(10), None);

        let mut on = Profiler::new(true);
        let spin = |d: std::time::Duration| {
            let t = Instant::now();
            while t.elapsed() < d {}
        };
        spin(std::time::Duration::from_millis(2));
        on.end(Phase::Rx);
        spin(std::time::Duration::from_millis(6));
        on.end(Phase::Tx);
        let p = on.finish(1000).unwrap();
        let c: std::collections::HashMap<_, _> = p.cycles.iter().copied().collect();
        assert_eq!(c["classify"], 0);
        // Busy machines stretch spins; they never shorten them.
        assert!(c["tx"] > 2 * c["rx"], "{p:?}");
        assert!(p.tsc_hz > 1e8, "a TSC (or the clock quanta falls back to) runs: {p:?}");
        let (_, total) = p.per_packet();
        let secs = (c["rx"] + c["tx"]) as f64 / p.tsc_hz;
        assert!((0.008..0.5).contains(&secs), "8 ms of phases, {secs} s measured");
        assert!(total > 0.0 && p.line().contains("cycles/packet"));
    }
}
