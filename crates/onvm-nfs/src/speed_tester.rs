//! Circulate packets and measure how fast (and, with `latency`, how long) they go round.
//!
//! Like openNetVM's `speed_tester`: at setup the NF allocates `count` packets and sends
//! them to `dest` (itself by default); every packet that comes back is sent again. The
//! rate at which packets come back is the platform's NF-to-NF throughput. In latency
//! mode each packet carries the time it was last sent (in its metadata) and the NF
//! records the round-trip time in a histogram.

use std::io::Write as _;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use onvm_nf::{Action, Batch, Ctx, Handler, PacketMut};

use crate::catalogue::{Catalogued, check_service};
use crate::meter::Meter;
use crate::now_ns;

/// Settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Config {
    /// Service to send to (`-d`); `None` = this NF's own service (self-loop).
    pub dest: Option<u16>,
    /// Packets in flight (`-c`, default 128).
    pub count: usize,
    /// Frame size in bytes including the 4-byte FCS, as in "64B" (`-s`).
    pub size: usize,
    /// Record per-packet round-trip times (`-l`).
    pub latency: bool,
    /// Print the rate every tick.
    pub print: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            dest: None,
            count: 128,
            size: 64,
            latency: false,
            print: true,
        }
    }
}

/// What a run measured.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Measured {
    /// Packets seen per second (million), over the measured window.
    pub mpps: f64,
    /// Packets seen in the window.
    pub packets: u64,
    /// Length of the window.
    pub window: Duration,
    /// Median round trip (latency mode).
    pub p50_ns: Option<u64>,
    /// 99th percentile round trip (latency mode).
    pub p99_ns: Option<u64>,
    /// Packets that were put in flight.
    pub in_flight: usize,
}

/// The NF.
#[derive(Debug)]
pub struct SpeedTester {
    cfg: Config,
    dest: u16,
    hist: Histogram<u64>,
    meter: Meter,
    sent: usize,
    /// Filled when the NF stops.
    pub result: Option<Measured>,
}

impl SpeedTester {
    /// A speed tester with these settings.
    pub fn new(cfg: Config) -> Self {
        SpeedTester {
            cfg,
            dest: 0,
            // 1 ns .. 10 s at 3 significant digits; bounds are valid, so this cannot fail.
            hist: Histogram::new_with_bounds(1, 10_000_000_000, 3).expect("valid histogram bounds"),
            meter: Meter::default(),
            sent: 0,
            result: None,
        }
    }

    fn launch(&mut self, ctx: &mut Ctx<'_>) {
        let frame_len = self.cfg.size.saturating_sub(4).max(42);
        let deadline = Instant::now() + Duration::from_secs(3);
        while self.sent < self.cfg.count && Instant::now() < deadline {
            let Some(mut k) = ctx.alloc() else {
                // The manager refills the alloc ring every millisecond.
                std::thread::sleep(Duration::from_millis(1));
                continue;
            };
            let Ok(mut pkt) = ctx.packet(&mut k) else {
                ctx.return_pkt(k, Action::Drop);
                continue;
            };
            let ok = pkt
                .append(frame_len)
                .ok()
                .and_then(|room| onvm_packet::build_udp_for_flow(self.sent as u32, frame_len, room).ok())
                .is_some();
            pkt.meta().set_timestamp(now_ns());
            ctx.return_pkt(k, if ok { Action::ToService(self.dest) } else { Action::Drop });
            if ok {
                self.sent += 1;
            }
        }
    }
}

impl Handler for SpeedTester {
    fn setup(&mut self, ctx: &mut Ctx<'_>) {
        self.dest = self.cfg.dest.unwrap_or(ctx.service());
        self.launch(ctx);
    }

    fn packet(&mut self, pkt: &mut PacketMut<'_>, _ctx: &mut Ctx<'_>) -> Action {
        self.meter.add(1);
        if self.cfg.latency {
            let now = now_ns();
            let meta = pkt.meta();
            let t = meta.timestamp();
            if t != 0 && now > t {
                let _ = self.hist.record(now - t);
            }
            meta.set_timestamp(now);
        }
        Action::ToService(self.dest)
    }

    /// Without latency stamps nothing looks at the packets: the whole burst goes on
    /// with one action (openNetVM's speed_tester touches each packet; this is the batch
    /// API's point).
    fn batch(&mut self, batch: &mut Batch<'_>, ctx: &mut Ctx<'_>) {
        if self.cfg.latency {
            batch.map(|p| self.packet(p, ctx));
        } else {
            self.meter.add(batch.len() as u64);
            batch.set_all(Action::ToService(self.dest));
        }
    }

    fn tick(&mut self, ctx: &mut Ctx<'_>) {
        if !self.meter.warmed_up() {
            // Warm-up ends at the first tick: edges are set up, caches are warm.
            self.hist.reset();
        }
        if let Some(mpps) = self.meter.tick()
            && self.cfg.print
        {
            let _ = writeln!(
                std::io::stdout().lock(),
                "speed_tester[{}]: {mpps:.2} Mpps",
                ctx.instance()
            );
        }
    }

    fn stop(&mut self, _ctx: &mut Ctx<'_>) {
        let (mpps, packets, window) = self.meter.window();
        let pct = |q: f64| (self.cfg.latency && !self.hist.is_empty()).then(|| self.hist.value_at_quantile(q));
        self.result = Some(Measured {
            mpps,
            packets,
            window,
            p50_ns: pct(0.5),
            p99_ns: pct(0.99),
            in_flight: self.sent,
        });
    }
}

/// `onvm nf speed-tester [-d SERVICE] [-c COUNT] [-s SIZE] [-l]`.
#[derive(clap::Args, Debug, Clone)]
pub struct Args {
    /// Destination service (default: itself).
    #[arg(short = 'd', long)]
    pub dest: Option<u16>,
    /// Packets in flight.
    #[arg(short = 'c', long, default_value_t = 128)]
    pub count: usize,
    /// Frame size in bytes (with FCS).
    #[arg(short = 's', long, default_value_t = 64)]
    pub size: usize,
    /// Measure per-packet round-trip latency.
    #[arg(short = 'l', long)]
    pub latency: bool,
}

impl Catalogued for Args {
    const NAME: &'static str = "speed_tester";
    type Nf = SpeedTester;
    fn build(&self) -> Result<SpeedTester, String> {
        let dest = self.dest.map(|d| check_service("--dest", d)).transpose()?;
        let max = onvm_shm::Layout::MAX_BUFFERS as usize;
        if !(1..=max).contains(&self.count) {
            return Err(format!("--count {}: out of range, must be 1..={max}", self.count));
        }
        let (lo, hi) = (
            usize::from(onvm_proto::port::GenSpec::MIN_FRAME),
            usize::from(onvm_proto::port::GenSpec::MAX_FRAME),
        );
        if !(lo..=hi).contains(&self.size) {
            return Err(format!("--size {}: out of range, must be {lo}..={hi}", self.size));
        }
        Ok(SpeedTester::new(Config {
            dest,
            count: self.count,
            size: self.size,
            latency: self.latency,
            print: true,
        }))
    }
    fn report(nf: &SpeedTester) -> Option<String> {
        let m = nf.result?;
        Some(format!(
            "speed_tester: {:.2} Mpps over {:.1} s ({} packets in flight){}",
            m.mpps,
            m.window.as_secs_f64(),
            m.in_flight,
            match (m.p50_ns, m.p99_ns) {
                (Some(a), Some(b)) => format!("; latency p50 {a} ns, p99 {b} ns"),
                _ => String::new(),
            }
        ))
    }
}
