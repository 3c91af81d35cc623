//! Packet generator (openNetVM's `load_generator`): makes UDP packets at a rate, sends
//! them to a service or out of a port, and measures the ones that come back.
//!
//! It allocates buffers from the manager's pool ([`Ctx::alloc`]) and writes `--flows`
//! distinct UDP flows in turn ([`onvm_packet::build_udp_for_flow`]: flow `i % flows`
//! for packet `i`), `-s SIZE` bytes each counting the 4-byte FCS (as `speed_tester`),
//! with destination MAC `-m`, at `-t PPS` (paced on the clock: it catches up after a
//! stall, at most 256 packets at once), to `-d SERVICE` or out of `-o PORT`, from
//! `--delay SECS` after it registers (a packet to a service no NF has registered for
//! yet is dropped), and stops sending after `--count N`. Each packet carries its send time in its metadata; a
//! packet that comes back to the NF (a chain that loops, a reflector) is counted, its
//! round trip recorded in a histogram, and dropped. The report gives `sent`,
//! `received`, `p50_ns`, `p99_ns` and the rates.
//!
//! Differences from openNetVM: there, packets go out only in the once-a-second
//! callback, in bursts; here the NF ticks every millisecond and paces by the clock. The
//! latency is given as percentiles, not a mean.

use std::io::Write as _;
use std::time::Duration;

use hdrhistogram::Histogram;
use onvm_nf::{Action, Batch, Ctx, Handler, Nf, NfBuilder};
use onvm_packet::MacAddr;

use crate::catalogue::{Catalogued, Launched, check_service};
use crate::now_ns;
use crate::tbf::launch_ticking;

/// Most packets made in one callback.
pub const MAX_BURST: u64 = 256;

/// Settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Config {
    /// Where packets go.
    pub out: Action,
    /// Packets per second.
    pub pps: f64,
    /// Frame length without FCS.
    pub frame_len: usize,
    /// Destination MAC, if set.
    pub dst_mac: Option<MacAddr>,
    /// Distinct flows.
    pub flows: u32,
    /// Stop sending after this many.
    pub count: Option<u64>,
    /// Print the rates every second.
    pub print: bool,
    /// Nanoseconds after setup before the first packet (`--delay`): time for the NFs it
    /// sends to to register, since a packet to a service with no instance is dropped.
    pub delay_ns: u64,
}

/// The NF.
#[derive(Debug)]
pub struct LoadGenerator {
    /// Settings.
    pub cfg: Config,
    /// Packets sent.
    pub sent: u64,
    /// Packets that came back.
    pub received: u64,
    /// Round trips, nanoseconds.
    pub hist: Histogram<u64>,
    /// The clock (nanoseconds); the real monotonic clock but in tests.
    pub clock: fn() -> u64,
    start: Option<u64>,
    last_sent: u64,
    first_rx: u64,
    last_rx: u64,
    printed: Duration,
}

impl LoadGenerator {
    /// A generator with these settings.
    pub fn new(cfg: Config) -> Self {
        LoadGenerator {
            cfg,
            sent: 0,
            received: 0,
            // 1 ns to 100 s at 3 significant digits: the bounds are valid.
            hist: Histogram::new_with_bounds(1, 100_000_000_000, 3).expect("valid histogram bounds"),
            clock: now_ns,
            start: None,
            last_sent: 0,
            first_rx: 0,
            last_rx: 0,
            printed: Duration::ZERO,
        }
    }

    /// Packets due by `now` that are not sent yet (the first one at once).
    fn due(&mut self, now: u64) -> u64 {
        let start = *self.start.get_or_insert(now + self.cfg.delay_ns);
        if now < start {
            return 0;
        }
        let mut due = (now.saturating_sub(start) as f64 * 1e-9 * self.cfg.pps) as u64 + 1;
        if let Some(c) = self.cfg.count {
            due = due.min(c);
        }
        due.saturating_sub(self.sent).min(MAX_BURST)
    }

    /// Make and send the packets due.
    fn generate(&mut self, ctx: &mut Ctx<'_>) {
        let now = (self.clock)();
        for _ in 0..self.due(now) {
            let Some(mut k) = ctx.alloc() else { return };
            let Ok(mut pkt) = ctx.packet(&mut k) else {
                ctx.return_pkt(k, Action::Drop);
                return;
            };
            let flow = (self.sent % u64::from(self.cfg.flows)) as u32;
            let len = self.cfg.frame_len;
            let ok = pkt.append(len).is_ok_and(|room| {
                onvm_packet::build_udp_for_flow(flow, len, room).is_ok()
                    && self.cfg.dst_mac.is_none_or(|m| {
                        room[..6].copy_from_slice(&m);
                        true
                    })
            });
            pkt.meta().set_timestamp(now_ns());
            if !ok {
                // Validated sizes always fit a buffer; a failure is no reason to spin.
                ctx.return_pkt(k, Action::Drop);
                return;
            }
            ctx.return_pkt(k, self.cfg.out);
            self.sent += 1;
            self.last_sent = now;
        }
    }

    /// Packets per second between the first and the last of `n` seen from `a` to `b`.
    fn rate(n: u64, a: u64, b: u64) -> u64 {
        if n < 2 || b <= a {
            return 0;
        }
        ((n - 1) as f64 / ((b - a) as f64 * 1e-9)) as u64
    }

    /// Send rate so far.
    pub fn tx_pps(&self) -> u64 {
        Self::rate(self.sent, self.start.unwrap_or(0), self.last_sent)
    }

    /// Receive rate so far.
    pub fn rx_pps(&self) -> u64 {
        Self::rate(self.received, self.first_rx, self.last_rx)
    }

    fn pct(&self, q: f64) -> u64 {
        if self.hist.is_empty() {
            0
        } else {
            self.hist.value_at_quantile(q)
        }
    }
}

impl Handler for LoadGenerator {
    fn setup(&mut self, ctx: &mut Ctx<'_>) {
        self.generate(ctx);
    }

    /// Packets that came back: their round trip, then dropped.
    fn batch(&mut self, batch: &mut Batch<'_>, ctx: &mut Ctx<'_>) {
        let now = now_ns();
        for i in 0..batch.len() {
            if let Some(p) = batch.packet(i) {
                let t = p.meta().timestamp();
                if t != 0 && now > t {
                    let _ = self.hist.record(now - t);
                }
            }
        }
        if self.received == 0 {
            self.first_rx = now;
        }
        self.received += batch.len() as u64;
        self.last_rx = now;
        batch.set_all(Action::Drop);
        self.generate(ctx);
    }

    fn tick(&mut self, ctx: &mut Ctx<'_>) {
        self.generate(ctx);
        let t = ctx.elapsed();
        if self.cfg.print && t - self.printed >= Duration::from_secs(1) {
            self.printed = t;
            let _ = writeln!(
                std::io::stdout().lock(),
                "load_generator[{}]: sent {} ({} pps), received {} ({} pps), p50 {} ns, p99 {} ns",
                ctx.instance(),
                self.sent,
                self.tx_pps(),
                self.received,
                self.rx_pps(),
                self.pct(0.5),
                self.pct(0.99)
            );
        }
    }
}

/// A MAC address written `aa:bb:cc:dd:ee:ff` (colons, two hex digits a byte).
pub fn parse_mac(s: &str) -> Option<MacAddr> {
    crate::net::parse_mac(s).ok().filter(|_| crate::net::is_colon_mac(s))
}

/// `onvm nf load-generator (-d SERVICE | -o PORT) [-t PPS] [-s SIZE] [-m MAC] [--flows N] [--count N]`.
#[derive(clap::Args, Debug, Clone)]
pub struct Args {
    /// Destination service.
    #[arg(short = 'd', long, conflicts_with = "port")]
    pub dest: Option<u16>,
    /// Send out of this port instead.
    #[arg(short = 'o', long)]
    pub port: Option<u16>,
    /// Packets per second.
    #[arg(short = 't', long, default_value_t = 1000.0)]
    pub rate: f64,
    /// Frame size in bytes with the FCS (64 to 1518).
    #[arg(short = 's', long, default_value_t = 64)]
    pub size: usize,
    /// Destination MAC (default: the builder's, 02:00:00:00:00:02).
    #[arg(short = 'm', long)]
    pub mac: Option<String>,
    /// Distinct UDP flows.
    #[arg(long, default_value_t = 1)]
    pub flows: u32,
    /// Stop sending after this many packets.
    #[arg(long)]
    pub count: Option<u64>,
    /// Do not print every second.
    #[arg(long)]
    pub quiet: bool,
    /// Seconds to wait after registering before the first packet (for the NFs it sends
    /// to to register).
    #[arg(long, default_value_t = 0.0)]
    pub delay: f64,
}

impl Catalogued for Args {
    const NAME: &'static str = "load_generator";
    type Nf = LoadGenerator;

    fn build(&self) -> Result<LoadGenerator, String> {
        let out = match (self.dest, self.port) {
            (Some(d), _) => Action::ToService(check_service("--dest", d)?),
            (None, Some(p)) => Action::Out(p),
            (None, None) => return Err("one of --dest (-d) or --port (-o) is needed".into()),
        };
        if !(self.rate.is_finite() && self.rate > 0.0 && self.rate <= 1e9) {
            return Err(format!(
                "--rate {}: out of range, must be above 0 and at most 1e9 packets/s",
                self.rate
            ));
        }
        if !(64..=1518).contains(&self.size) {
            return Err(format!("--size {}: out of range, must be 64..=1518", self.size));
        }
        let dst_mac = self
            .mac
            .as_deref()
            .map(|m| parse_mac(m).ok_or_else(|| format!("--mac {m:?}: not a MAC address (aa:bb:cc:dd:ee:ff)")))
            .transpose()?;
        if !(1..=1 << 24).contains(&self.flows) {
            return Err(format!("--flows {}: out of range, must be 1..=16777216", self.flows));
        }
        if self.count == Some(0) {
            return Err("--count 0: must be at least 1".into());
        }
        if !(self.delay.is_finite() && (0.0..=3600.0).contains(&self.delay)) {
            return Err(format!(
                "--delay {}: out of range, must be 0..=3600 seconds",
                self.delay
            ));
        }
        Ok(LoadGenerator::new(Config {
            out,
            pps: self.rate,
            frame_len: self.size - 4,
            dst_mac,
            flows: self.flows,
            count: self.count,
            print: !self.quiet,
            delay_ns: (self.delay * 1e9) as u64,
        }))
    }

    fn report(nf: &LoadGenerator) -> Option<String> {
        Some(format!(
            "load_generator: sent {}, received {}, p50_ns {}, p99_ns {}, tx_pps {}, rx_pps {}",
            nf.sent,
            nf.received,
            nf.pct(0.5),
            nf.pct(0.99),
            nf.tx_pps(),
            nf.rx_pps()
        ))
    }

    /// Runs with a 1 ms tick: packets are paced on it when none come back.
    fn launch(self, b: NfBuilder, connected: &dyn Fn(&Nf)) -> Result<Launched, String> {
        launch_ticking(self, b.tick(Duration::from_millis(1)), connected)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_frames::{fake_now, set_now};
    use onvm_nf::offline::Offline;

    fn lg(flags: &[&str]) -> LoadGenerator {
        let mut g = crate::parse_flags::<Args>(flags).unwrap().build().unwrap();
        g.clock = fake_now;
        g
    }

    #[test]
    fn packets_are_paced_cycle_through_the_flows_and_stop_at_the_count() {
        set_now(1_000);
        let mut g = lg(&[
            "-o",
            "1",
            "-t",
            "1000",
            "-s",
            "128",
            "-m",
            "02:00:00:00:00:aa",
            "--flows",
            "3",
            "--count",
            "10",
            "--quiet",
        ]);
        let mut off = Offline::new().unwrap();
        let mut sim = off.start(&mut g);
        // At setup: the first packet at once (it leaves with the next callback's).
        assert_eq!(g.sent, 1);
        set_now(1_000 + 4_500_000);
        let mut out = sim.tick(&mut g);
        assert_eq!(out.len(), 5);
        set_now(1_000_000_000);
        out.extend(sim.tick(&mut g));
        assert_eq!(g.sent, 10);
        assert_eq!(out.len(), 10);
        for (i, s) in out.iter().enumerate() {
            let mut want = onvm_packet::build_udp_for_flow_vec(i as u32 % 3, 124).unwrap();
            want[..6].copy_from_slice(&[2, 0, 0, 0, 0, 0xaa]);
            assert_eq!(s.frame, want);
            assert_eq!(s.action, Action::Out(1));
        }
    }

    #[test]
    fn packets_that_come_back_are_measured_and_dropped() {
        set_now(0);
        let mut g = lg(&["-d", "2", "--count", "1", "--quiet"]);
        let mut off = Offline::new().unwrap();
        let mut sim = off.start(&mut g);
        let out = sim.frames(&mut g, 0, &vec![vec![0u8; 60]; 5]).unwrap();
        // The 5 dropped, then the packet made at setup.
        let acts: Vec<Action> = out.iter().map(|s| s.action).collect();
        assert_eq!(acts, [[Action::Drop; 5].as_slice(), &[Action::ToService(2)]].concat());
        assert_eq!(g.received, 5);
        let r = Args::report(&g).unwrap();
        assert!(r.starts_with("load_generator: sent 1, received 5, p50_ns "), "{r}");
    }

    #[test]
    fn the_quota_limits_what_is_in_flight() {
        set_now(0);
        let mut g = lg(&["-o", "0", "-t", "1e9", "--quiet"]);
        let mut off = Offline::new().unwrap().quota(0);
        let mut sim = off.start(&mut g);
        set_now(1_000_000_000);
        assert!(sim.tick(&mut g).is_empty());
        assert_eq!(g.sent, 0);
    }

    #[test]
    fn bad_flags_are_named() {
        let e = |f: &[&str]| crate::parse_flags::<Args>(f).unwrap().build().unwrap_err();
        assert!(e(&[]).contains("--dest"));
        assert!(e(&["-o", "0", "-t", "0"]).contains("--rate 0"));
        assert!(e(&["-o", "0", "-s", "63"]).contains("--size 63"));
        assert!(e(&["-o", "0", "-m", "02:00:00:00:00"]).contains("--mac \"02:00:00:00:00\""));
        assert!(e(&["-o", "0", "-m", "02:00:00:00:00:zz"]).contains("--mac"));
        assert!(e(&["-o", "0", "--flows", "0"]).contains("--flows 0"));
        assert!(e(&["-o", "0", "--count", "0"]).contains("--count 0"));
        assert!(crate::parse_flags::<Args>(&["-o", "0", "-d", "1"]).is_err());
        assert_eq!(parse_mac("0a:0B:ff:00:01:02"), Some([10, 11, 255, 0, 1, 2]));
    }
}
