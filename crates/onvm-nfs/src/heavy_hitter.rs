//! Heavy-hitter detection: a count-min sketch estimates how many packets (or bytes)
//! each key sent in the current window, and a small top-K list keeps the keys whose
//! estimate exceeds the threshold.
//!
//! The key is the source address, the destination address or the 5-tuple (`--key
//! src|dst|flow`). The sketch has `--depth` rows of `--width` counters; row `i` of a
//! key is `(h1 + i·h2) mod width` for a seeded 64-bit hash of the key's bytes (`--seed`,
//! so runs are exact and repeatable). A key whose estimate goes over `--threshold`
//! packets (bytes with `--bytes`) within a `--window` of seconds is a heavy hitter
//! from that packet until the end of the next window; its packets are dropped with
//! `--drop`, sent to `--to SERVICE`, or passed on like the rest (`-d SERVICE` or the
//! chain's next hop). At the end of each window the top keys are printed (unless
//! `--quiet`) and the sketch starts again. Frames without an IP header pass, counted
//! as `other`.
//!
//! openNetVM has this NF only as generated C++ (NFD's `heavy_hitter_detection`, an
//! exact per-flow counter table); a sketch keeps the memory fixed whatever the traffic.

use std::io::Write as _;
use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use onvm_nf::{Action, Batch, Ctx, Handler, Nf, NfBuilder};

use crate::catalogue::{Catalogued, Launched, check_service};
use crate::fair_queue::FiveTuple;
use crate::now_ns;
use crate::tbf::launch_ticking;

/// What a key is made of.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum KeyKind {
    /// Source address.
    Src,
    /// Destination address.
    Dst,
    /// The 5-tuple.
    Flow,
}

/// A key: a 5-tuple with the fields the kind ignores zeroed.
pub type Key = FiveTuple;

const ZERO: IpAddr = IpAddr::V4(Ipv4Addr::UNSPECIFIED);

impl KeyKind {
    /// The key of a flow.
    pub fn key(self, t: FiveTuple) -> Key {
        match self {
            KeyKind::Flow => t,
            KeyKind::Src => FiveTuple {
                dst: ZERO,
                proto: 0,
                sport: 0,
                dport: 0,
                ..t
            },
            KeyKind::Dst => FiveTuple {
                src: ZERO,
                proto: 0,
                sport: 0,
                dport: 0,
                ..t
            },
        }
    }

    /// How a key prints.
    pub fn show(self, k: &Key) -> String {
        match self {
            KeyKind::Src => k.src.to_string(),
            KeyKind::Dst => k.dst.to_string(),
            KeyKind::Flow => format!("{}:{}>{}:{}/{}", k.src, k.sport, k.dst, k.dport, k.proto),
        }
    }
}

/// A count-min sketch with seeded hashing.
#[derive(Debug, Clone)]
pub struct Sketch {
    width: usize,
    depth: usize,
    seed: u64,
    counts: Vec<u64>,
}

impl Sketch {
    /// `depth` rows of `width` counters.
    pub fn new(width: usize, depth: usize, seed: u64) -> Self {
        Sketch {
            width,
            depth,
            seed,
            counts: vec![0; width * depth],
        }
    }

    /// Seeded FNV-1a over the bytes, then a 64-bit finaliser (murmur3's fmix64).
    fn hash(&self, bytes: &[u8]) -> u64 {
        let mut h = 0xcbf2_9ce4_8422_2325u64 ^ self.seed;
        for &b in bytes {
            h = (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3);
        }
        h ^= h >> 33;
        h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
        h ^= h >> 33;
        h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
        h ^ (h >> 33)
    }

    /// Add `n` for `key`; its estimate after.
    pub fn add(&mut self, key: &Key, n: u64) -> u64 {
        let mut b = [0u8; 37];
        let len = key.bytes(&mut b);
        let h = self.hash(&b[..len]);
        let (h1, h2) = (h as u32 as usize, ((h >> 32) as u32 | 1) as usize);
        let mut est = u64::MAX;
        for i in 0..self.depth {
            let c = &mut self.counts[i * self.width + h1.wrapping_add(i.wrapping_mul(h2)) % self.width];
            *c = c.saturating_add(n);
            est = est.min(*c);
        }
        est
    }

    /// Start again.
    pub fn clear(&mut self) {
        self.counts.fill(0);
    }
}

/// The NF.
#[derive(Debug)]
pub struct HeavyHitter {
    /// Key kind.
    pub kind: KeyKind,
    /// The sketch.
    pub sketch: Sketch,
    /// Heavy above this many packets (or bytes) per window.
    pub threshold: u64,
    /// Count bytes instead of packets.
    pub bytes: bool,
    /// Window length.
    pub window: Duration,
    /// Keys kept in the top list.
    pub top_k: usize,
    /// What heavy hitters' packets get.
    pub heavy_action: Action,
    /// What the other packets get.
    pub out: Action,
    /// Print each window's top keys.
    pub print: bool,
    /// The clock (nanoseconds); the real monotonic clock but in tests.
    pub clock: fn() -> u64,
    /// This window's keys over the threshold, with their estimates (at most `top_k`).
    top: Vec<(Key, u64)>,
    /// The last window's.
    prev: Vec<(Key, u64)>,
    window_start: Option<u64>,
    /// Packets seen, from heavy hitters, other (not IP), windows ended.
    pub packets: u64,
    /// Packets of heavy hitters (dropped or diverted when so set).
    pub heavy: u64,
    /// Frames without an IP header.
    pub other: u64,
    /// Windows ended.
    pub windows: u64,
    /// The largest estimate seen over the threshold, and its key.
    pub max: Option<(Key, u64)>,
}

impl HeavyHitter {
    /// Whether `key` (whose estimate is now `est`) is a heavy hitter; updates the list.
    pub fn observe(&mut self, key: Key, est: u64) -> bool {
        if est <= self.threshold {
            return self.prev.iter().any(|(k, _)| *k == key);
        }
        if self.max.is_none_or(|(_, m)| est > m) {
            self.max = Some((key, est));
        }
        if let Some(e) = self.top.iter_mut().find(|(k, _)| *k == key) {
            e.1 = est;
        } else if self.top.len() < self.top_k {
            self.top.push((key, est));
        } else if let Some(min) = self.top.iter_mut().min_by_key(|(_, e)| *e)
            && min.1 < est
        {
            *min = (key, est);
        }
        true
    }

    /// End the window if it is over (at `now`).
    fn roll(&mut self, now: u64, instance: u16) {
        let start = *self.window_start.get_or_insert(now);
        if now.saturating_sub(start) < self.window.as_nanos() as u64 {
            return;
        }
        self.windows += 1;
        if self.print {
            let _ = writeln!(
                std::io::stdout().lock(),
                "heavy_hitter[{instance}]: window {}: {}",
                self.windows,
                self.top_line()
            );
        }
        self.prev = std::mem::take(&mut self.top);
        self.top.reserve(self.top_k);
        self.sketch.clear();
        self.window_start = Some(now);
    }

    /// This window's top keys, largest first (`KEY=EST …` or `none`).
    pub fn top_line(&self) -> String {
        let mut t = self.top.clone();
        t.sort_by(|a, b| {
            b.1.cmp(&a.1)
                .then_with(|| self.kind.show(&a.0).cmp(&self.kind.show(&b.0)))
        });
        if t.is_empty() {
            return "none".into();
        }
        t.iter()
            .map(|(k, e)| format!("{}={e}", self.kind.show(k)))
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// The action for one frame.
    pub fn decide(&mut self, frame: &[u8]) -> Action {
        self.packets += 1;
        let Some(t) = FiveTuple::of(frame) else {
            self.other += 1;
            return self.out;
        };
        let key = self.kind.key(t);
        let n = if self.bytes { frame.len() as u64 } else { 1 };
        let est = self.sketch.add(&key, n);
        if self.observe(key, est) {
            self.heavy += 1;
            self.heavy_action
        } else {
            self.out
        }
    }
}

impl Handler for HeavyHitter {
    fn batch(&mut self, batch: &mut Batch<'_>, ctx: &mut Ctx<'_>) {
        self.roll((self.clock)(), ctx.instance());
        batch.map(|p| self.decide(p.data()));
    }

    fn tick(&mut self, ctx: &mut Ctx<'_>) {
        self.roll((self.clock)(), ctx.instance());
    }
}

/// `onvm nf heavy-hitter [--key src|dst|flow] [--threshold N] [--bytes] [--window S] [--drop | --to SERVICE]`.
#[derive(clap::Args, Debug, Clone)]
pub struct Args {
    /// Destination service of the other packets (default: the chain's next hop).
    #[arg(short = 'd', long)]
    pub dest: Option<u16>,
    /// What a key is.
    #[arg(long, value_enum, default_value_t = KeyKind::Src)]
    pub key: KeyKind,
    /// Counters per sketch row.
    #[arg(long, default_value_t = 2048)]
    pub width: usize,
    /// Sketch rows.
    #[arg(long, default_value_t = 4)]
    pub depth: usize,
    /// Hash seed.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Heavy above this many packets (bytes with --bytes) per window.
    #[arg(long, default_value_t = 10_000)]
    pub threshold: u64,
    /// Count bytes instead of packets.
    #[arg(long)]
    pub bytes: bool,
    /// Window length in seconds.
    #[arg(long, default_value_t = 1.0)]
    pub window: f64,
    /// Heavy hitters listed per window.
    #[arg(long, default_value_t = 10)]
    pub top: usize,
    /// Drop heavy hitters' packets.
    #[arg(long, conflicts_with = "to")]
    pub drop: bool,
    /// Send heavy hitters' packets to this service.
    #[arg(long)]
    pub to: Option<u16>,
    /// Do not print each window's top keys.
    #[arg(long)]
    pub quiet: bool,
}

impl Catalogued for Args {
    const NAME: &'static str = "heavy_hitter";
    type Nf = HeavyHitter;

    fn build(&self) -> Result<HeavyHitter, String> {
        let out = match self.dest {
            Some(d) => Action::ToService(check_service("--dest", d)?),
            None => Action::Next,
        };
        let heavy_action = match (self.drop, self.to) {
            (true, _) => Action::Drop,
            (false, Some(s)) => Action::ToService(check_service("--to", s)?),
            (false, None) => out,
        };
        if !(1..=1 << 24).contains(&self.width) {
            return Err(format!("--width {}: out of range, must be 1..=16777216", self.width));
        }
        if !(1..=16).contains(&self.depth) {
            return Err(format!("--depth {}: out of range, must be 1..=16", self.depth));
        }
        if self.threshold == 0 {
            return Err("--threshold 0: must be at least 1".into());
        }
        if !(self.window.is_finite() && (0.001..=86_400.0).contains(&self.window)) {
            return Err(format!(
                "--window {}: out of range, must be 0.001..=86400 seconds",
                self.window
            ));
        }
        if !(1..=1000).contains(&self.top) {
            return Err(format!("--top {}: out of range, must be 1..=1000", self.top));
        }
        Ok(HeavyHitter {
            kind: self.key,
            sketch: Sketch::new(self.width, self.depth, self.seed),
            threshold: self.threshold,
            bytes: self.bytes,
            window: Duration::from_secs_f64(self.window),
            top_k: self.top,
            heavy_action,
            out,
            print: !self.quiet,
            clock: now_ns,
            top: Vec::with_capacity(self.top),
            prev: Vec::new(),
            window_start: None,
            packets: 0,
            heavy: 0,
            other: 0,
            windows: 0,
            max: None,
        })
    }

    fn report(nf: &HeavyHitter) -> Option<String> {
        Some(format!(
            "heavy_hitter: packets {}, heavy {}, other {}, windows {}; top {}",
            nf.packets,
            nf.heavy,
            nf.other,
            nf.windows,
            nf.top_line()
        ))
    }

    /// Runs with a 10 ms tick, so windows end on time on an idle NF.
    fn launch(self, b: NfBuilder, connected: &dyn Fn(&Nf)) -> Result<Launched, String> {
        launch_ticking(self, b.tick(Duration::from_millis(10)), connected)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_frames::{fake_now, garbage, prefixes, set_now};
    use onvm_nf::offline::Offline;

    fn hh(flags: &[&str]) -> HeavyHitter {
        let mut h = crate::parse_flags::<Args>(flags).unwrap().build().unwrap();
        h.clock = fake_now;
        h
    }

    fn from(src: [u8; 4], sport: u16, len: usize) -> Vec<u8> {
        onvm_packet::UdpSpec {
            frame_len: Some(len),
            ..onvm_packet::UdpSpec::new(src, [10, 9, 9, 9], sport, 80)
        }
        .to_vec()
        .unwrap()
    }

    #[test]
    fn the_packets_over_the_threshold_are_dropped_and_listed() {
        set_now(0);
        let mut h = hh(&["--threshold", "20", "--drop", "--quiet", "--window", "10"]);
        let mut off = Offline::new().unwrap();
        let mut sim = off.start(&mut h);
        let mut frames = Vec::new();
        for i in 0..50u16 {
            frames.push(from([10, 0, 0, 1], i, 60));
            if i % 2 == 0 {
                frames.push(from([10, 0, 0, 2], i, 60));
            }
            if i % 5 == 0 {
                frames.push(from([10, 0, 0, 3], i, 60));
            }
        }
        let out = sim.frames(&mut h, 0, &frames).unwrap();
        let dropped = out.iter().filter(|s| s.action == Action::Drop).count();
        // 10.0.0.1: packets 21..50 dropped; 10.0.0.2: 25 packets, 21..25 dropped.
        assert_eq!(dropped, 30 + 5);
        assert_eq!(h.top_line(), "10.0.0.1=50 10.0.0.2=25");
        // In the next window the listed keys are still heavy from the first packet.
        set_now(11_000_000_000);
        sim.tick(&mut h);
        let out = sim
            .frames(&mut h, 0, &[from([10, 0, 0, 1], 1, 60), from([10, 0, 0, 3], 1, 60)])
            .unwrap();
        assert_eq!(out[0].action, Action::Drop);
        assert_eq!(out[1].action, Action::Next);
        assert_eq!(h.windows, 1);
        let r = Args::report(&h).unwrap();
        assert_eq!(r, "heavy_hitter: packets 87, heavy 36, other 0, windows 1; top none");
    }

    #[test]
    fn flow_keys_bytes_and_diversion() {
        set_now(0);
        let mut h = hh(&[
            "--key",
            "flow",
            "--bytes",
            "--threshold",
            "1000",
            "--to",
            "9",
            "--quiet",
        ]);
        let mut off = Offline::new().unwrap();
        let mut sim = off.start(&mut h);
        let frames: Vec<Vec<u8>> = (0..20).map(|_| from([10, 0, 0, 1], 7, 100)).collect();
        let out = sim.frames(&mut h, 0, &frames).unwrap();
        assert_eq!(out.iter().filter(|s| s.action == Action::ToService(9)).count(), 10);
        assert_eq!(h.top_line(), "10.0.0.1:7>10.9.9.9:80/17=2000");
    }

    #[test]
    fn a_sketch_never_underestimates() {
        let mut s = Sketch::new(64, 3, 42);
        let keys: Vec<Key> = (0..500u16)
            .map(|i| KeyKind::Src.key(FiveTuple::of(&from([10, 1, (i >> 8) as u8, i as u8], 1, 60)).unwrap()))
            .collect();
        let mut truth = vec![0u64; keys.len()];
        for r in 0..5 {
            for (i, k) in keys.iter().enumerate() {
                if i % (r + 1) == 0 {
                    truth[i] += 1;
                    assert!(s.add(k, 1) >= truth[i]);
                }
            }
        }
    }

    #[test]
    fn bad_flags_are_named_and_malformed_frames_pass() {
        let e = |f: &[&str]| crate::parse_flags::<Args>(f).unwrap().build().unwrap_err();
        assert!(e(&["--width", "0"]).contains("--width 0"));
        assert!(e(&["--depth", "17"]).contains("--depth 17"));
        assert!(e(&["--threshold", "0"]).contains("--threshold 0"));
        assert!(e(&["--window", "0"]).contains("--window 0"));
        assert!(e(&["--to", "0"]).contains("--to 0"));
        assert!(crate::parse_flags::<Args>(&["--drop", "--to", "3"]).is_err());
        set_now(0);
        let mut h = hh(&["--threshold", "1", "--quiet"]);
        let mut off = Offline::new().unwrap();
        let mut sim = off.start(&mut h);
        let good = from([10, 0, 0, 1], 1, 80);
        let mut frames = prefixes(&good);
        let mut bad = good.clone();
        bad[14] = 0x41;
        frames.push(bad);
        frames.extend(garbage(40));
        let out = sim.frames(&mut h, 0, &frames).unwrap();
        assert_eq!(out.len(), frames.len());
    }
}
