//! A policer: a token bucket per key (flow, source, destination or source prefix).
//!
//! `onvm nf rate-limiter [--rate PPS] [--bytes-rate BYTES_PER_S] [--burst N]
//! [--burst-bytes N] [--per flow|src|dst|src-prefix:LEN[:LEN6]] [--max-keys N]
//! [--mark --dscp N] [-d SERVICE]`
//!
//! - Each key has a packet bucket (`--rate` packets per second, depth `--burst` packets,
//!   default one second's worth) and/or a byte bucket (`--bytes-rate` bytes per second of
//!   frame data, depth `--burst-bytes`, default one second's worth); at least one rate is
//!   required. Buckets start full. A packet passes if every bucket of its key holds its
//!   cost (1, or its length in bytes), which is then taken; otherwise it is over the rate:
//!   dropped, or with `--mark` passed with its DSCP set to `--dscp N` (IPv4 header
//!   checksum patched; non-IP frames are dropped).
//! - Keys: `flow` (protocol, addresses, TCP/UDP ports), `src`, `dst`, `src-prefix:LEN`
//!   (IPv4 /LEN; IPv6 /LEN6, default 64). Non-IP and malformed frames are not policed and
//!   pass (counted `unkeyed`).
//! - The table holds `--max-keys` keys (default 65536). On the tick, keys whose buckets
//!   are full again are evicted (forgetting them changes nothing). While the table is
//!   full, new keys share one overflow bucket (counted `overflow`), so a flood of new keys
//!   is policed as one rather than let through or starving known keys.
//! - Tokens are integers (nanotokens), refilled from one `Instant` read per burst: no
//!   float drift, the same result for the same arrival times.
//!
//! openNetVM's `simple_fwd_tb` is one byte bucket for all traffic on its advanced rings,
//! which waits (queues) rather than polices; this is per key and never holds a packet.

use std::time::Instant;

use onvm_nf::{Action, Batch, Ctx, Handler, PacketMut};
use onvm_packet::layout::{IP_PROTO_TCP, IP_PROTO_UDP};
use onvm_packet::{Field, set_field};
use rustc_hash::FxHashMap;

use crate::catalogue::{Catalogued, check_service};
use crate::net::{Ip, mask};

/// Nanotokens per token: rates are per second and time is in nanoseconds.
const NANO: u64 = 1_000_000_000;

/// What a bucket is keyed on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Per {
    /// Protocol, both addresses, both ports.
    Flow,
    /// Source address.
    Src,
    /// Destination address.
    Dst,
    /// Source prefix: IPv4 length, IPv6 length.
    SrcPrefix(u8, u8),
}

impl Per {
    /// Parse `--per`.
    pub fn parse(s: &str) -> Result<Per, String> {
        let bad = || format!("--per {s:?}: expected flow, src, dst or src-prefix:LEN[:LEN6]");
        Ok(match s {
            "flow" => Per::Flow,
            "src" => Per::Src,
            "dst" => Per::Dst,
            _ => {
                let rest = s.strip_prefix("src-prefix:").ok_or_else(bad)?;
                let (v4, v6) = rest.split_once(':').unwrap_or((rest, "64"));
                let v4: u8 = v4.parse().ok().filter(|&l| l <= 32).ok_or_else(bad)?;
                let v6: u8 = v6.parse().ok().filter(|&l| l <= 128).ok_or_else(bad)?;
                Per::SrcPrefix(v4, v6)
            }
        })
    }
}

/// One key's buckets (nanotokens) and when they were last filled.
#[derive(Debug, Clone, Copy)]
struct Bucket {
    pkts: u64,
    bytes: u64,
    at: u64,
}

/// A rate and its depth in nanotokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Rate {
    per_sec: u64,
    depth: u64,
}

impl Rate {
    fn refill(&self, tokens: u64, dt: u64) -> u64 {
        let add = (u128::from(self.per_sec) * u128::from(dt)).min(u128::from(u64::MAX)) as u64;
        tokens.saturating_add(add).min(self.depth)
    }
}

/// What the policer counted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// Packets within the rate.
    pub passed: u64,
    /// Packets over the rate, dropped.
    pub dropped: u64,
    /// Packets over the rate, marked and passed.
    pub marked: u64,
    /// Packets not policed (non-IP, malformed).
    pub unkeyed: u64,
    /// Packets of new keys while the table was full (the overflow bucket).
    pub overflow: u64,
    /// Keys evicted.
    pub evicted: u64,
}

/// The policer's configuration.
#[derive(Debug, Clone, Copy)]
pub struct Config {
    /// Packets per second and burst (packets); `None`: not policed by packets.
    pub pps: Option<(u64, u64)>,
    /// Bytes per second and burst (bytes); `None`: not policed by bytes.
    pub bps: Option<(u64, u64)>,
    /// The key.
    pub per: Per,
    /// Most keys.
    pub max_keys: usize,
    /// DSCP to mark over-rate packets with instead of dropping them.
    pub mark: Option<u8>,
    /// Where passed packets go.
    pub dest: Action,
}

/// A key: protocol, two addresses, two ports (unused parts zero).
type Key = (u8, [u8; 16], [u8; 16], u16, u16);

/// The policer. See the [module docs](self).
#[derive(Debug)]
pub struct RateLimiter {
    cfg: Config,
    pps: Option<Rate>,
    bps: Option<Rate>,
    keys: FxHashMap<Key, Bucket>,
    overflow: Bucket,
    started: Instant,
    /// Counts so far.
    pub counts: Counts,
}

impl RateLimiter {
    /// A policer for `cfg`; the table is allocated here, once.
    pub fn new(cfg: Config) -> RateLimiter {
        let rate = |r: Option<(u64, u64)>| {
            r.map(|(per_sec, burst)| Rate {
                per_sec,
                depth: burst.saturating_mul(NANO),
            })
        };
        let (pps, bps) = (rate(cfg.pps), rate(cfg.bps));
        let mut keys = FxHashMap::default();
        keys.reserve(cfg.max_keys);
        RateLimiter {
            cfg,
            pps,
            bps,
            keys,
            overflow: Bucket {
                pkts: pps.map_or(0, |r| r.depth),
                bytes: bps.map_or(0, |r| r.depth),
                at: 0,
            },
            started: Instant::now(),
            counts: Counts::default(),
        }
    }

    /// Keys tracked now.
    pub fn keys(&self) -> usize {
        self.keys.len()
    }

    fn now(&self) -> u64 {
        self.started.elapsed().as_nanos() as u64
    }

    fn key(&self, frame: &[u8]) -> Option<Key> {
        let ip = Ip::of(frame).ok()??;
        Some(match self.cfg.per {
            Per::Flow => {
                let (s, d) = match ip.proto {
                    IP_PROTO_TCP | IP_PROTO_UDP => ip.ports(frame).unwrap_or((0, 0)),
                    _ => (0, 0),
                };
                (ip.proto, ip.src, ip.dst, s, d)
            }
            Per::Src => (0, ip.src, [0; 16], 0, 0),
            Per::Dst => (0, [0; 16], ip.dst, 0, 0),
            Per::SrcPrefix(v4, v6) => {
                let mut a = ip.src;
                mask(&mut a, if ip.v6 { v6 } else { v4 });
                (u8::from(ip.v6), a, [0; 16], 0, 0)
            }
        })
    }

    /// Police one frame at `now` (ns since start): its action.
    pub fn police(&mut self, frame: &mut [u8], now: u64) -> Action {
        let Some(key) = self.key(frame) else {
            self.counts.unkeyed += 1;
            return self.cfg.dest;
        };
        let fresh = Bucket {
            pkts: self.pps.map_or(0, |r| r.depth),
            bytes: self.bps.map_or(0, |r| r.depth),
            at: now,
        };
        let full = self.keys.len() >= self.cfg.max_keys;
        let b = match self.keys.get_mut(&key) {
            Some(b) => b,
            None if full => {
                self.counts.overflow += 1;
                &mut self.overflow
            }
            None => self.keys.entry(key).or_insert(fresh),
        };
        let dt = now.saturating_sub(b.at);
        b.at = b.at.max(now);
        let cost_b = (frame.len() as u64).saturating_mul(NANO);
        let mut ok = true;
        if let Some(r) = self.pps {
            b.pkts = r.refill(b.pkts, dt);
            ok &= b.pkts >= NANO;
        }
        if let Some(r) = self.bps {
            b.bytes = r.refill(b.bytes, dt);
            ok &= b.bytes >= cost_b;
        }
        if ok {
            if self.pps.is_some() {
                b.pkts -= NANO;
            }
            if self.bps.is_some() {
                b.bytes -= cost_b;
            }
            self.counts.passed += 1;
            return self.cfg.dest;
        }
        match self.cfg.mark {
            Some(dscp) if set_field(frame, Field::IpDscp(dscp)).is_ok() => {
                self.counts.marked += 1;
                self.cfg.dest
            }
            _ => {
                self.counts.dropped += 1;
                Action::Drop
            }
        }
    }

    /// Evict the keys whose buckets are full again at `now`.
    pub fn evict(&mut self, now: u64) {
        let (pps, bps) = (self.pps, self.bps);
        let before = self.keys.len();
        self.keys.retain(|_, b| {
            let dt = now.saturating_sub(b.at);
            let pk_full = pps.is_none_or(|r| r.refill(b.pkts, dt) >= r.depth);
            let by_full = bps.is_none_or(|r| r.refill(b.bytes, dt) >= r.depth);
            !(pk_full && by_full)
        });
        self.counts.evicted += (before - self.keys.len()) as u64;
    }
}

impl Handler for RateLimiter {
    fn packet(&mut self, pkt: &mut PacketMut<'_>, _ctx: &mut Ctx<'_>) -> Action {
        let now = self.now();
        self.police(pkt.data_mut(), now)
    }

    fn batch(&mut self, batch: &mut Batch<'_>, _ctx: &mut Ctx<'_>) {
        let now = self.now();
        batch.map(|p| self.police(p.data_mut(), now));
    }

    fn tick(&mut self, _ctx: &mut Ctx<'_>) {
        let now = self.now();
        self.evict(now);
    }
}

/// `onvm nf rate-limiter --rate PPS | --bytes-rate BPS …`.
#[derive(clap::Args, Debug, Clone)]
pub struct Args {
    /// Packets per second per key.
    #[arg(long)]
    pub rate: Option<u64>,
    /// Bytes per second per key.
    #[arg(long)]
    pub bytes_rate: Option<u64>,
    /// Bucket depth in packets (default: one second of --rate).
    #[arg(long)]
    pub burst: Option<u64>,
    /// Bucket depth in bytes (default: one second of --bytes-rate).
    #[arg(long)]
    pub burst_bytes: Option<u64>,
    /// Key: flow, src, dst or src-prefix:LEN[:LEN6].
    #[arg(long, default_value = "flow")]
    pub per: String,
    /// Most keys tracked; new keys beyond share one bucket.
    #[arg(long, default_value_t = 65536)]
    pub max_keys: usize,
    /// Mark over-rate packets (DSCP --dscp) and pass them instead of dropping.
    #[arg(long)]
    pub mark: bool,
    /// DSCP for --mark (0..=63).
    #[arg(long, default_value_t = 0)]
    pub dscp: u8,
    /// Destination service (default: the chain's next hop).
    #[arg(short = 'd', long)]
    pub dest: Option<u16>,
}

impl Catalogued for Args {
    const NAME: &'static str = "rate_limiter";
    type Nf = RateLimiter;

    fn build(&self) -> Result<RateLimiter, String> {
        let dest = self
            .dest
            .map(|d| check_service("--dest", d))
            .transpose()?
            .map_or(Action::Next, Action::ToService);
        if self.rate.is_none() && self.bytes_rate.is_none() {
            return Err("give --rate PPS and/or --bytes-rate BPS".into());
        }
        let limit = 1u64 << 34; // rates, bursts: far beyond any port, never overflowing nanotokens
        for (flag, v) in [
            ("--rate", self.rate),
            ("--bytes-rate", self.bytes_rate),
            ("--burst", self.burst),
            ("--burst-bytes", self.burst_bytes),
        ] {
            if let Some(v) = v
                && (v == 0 || v > limit)
            {
                return Err(format!("{flag} {v}: must be 1..={limit}"));
            }
        }
        if self.burst.is_some() && self.rate.is_none() {
            return Err("--burst needs --rate".into());
        }
        if self.burst_bytes.is_some() && self.bytes_rate.is_none() {
            return Err("--burst-bytes needs --bytes-rate".into());
        }
        if self.dscp > 63 {
            return Err(format!("--dscp {}: must be 0..=63", self.dscp));
        }
        if self.max_keys == 0 || self.max_keys > 1 << 24 {
            return Err(format!("--max-keys {}: must be 1..=16777216", self.max_keys));
        }
        Ok(RateLimiter::new(Config {
            pps: self.rate.map(|r| (r, self.burst.unwrap_or(r))),
            bps: self.bytes_rate.map(|r| (r, self.burst_bytes.unwrap_or(r))),
            per: Per::parse(&self.per)?,
            max_keys: self.max_keys,
            mark: self.mark.then_some(self.dscp),
            dest,
        }))
    }

    fn report(nf: &RateLimiter) -> Option<String> {
        let c = nf.counts;
        Some(format!(
            "rate_limiter: passed {}, dropped {}, marked {}, unkeyed {}, keys {}, overflow {}, evicted {}",
            c.passed,
            c.dropped,
            c.marked,
            c.unkeyed,
            nf.keys(),
            c.overflow,
            c.evicted
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_frames::{garbage, prefixes};
    use onvm_nf::offline::Offline;
    use onvm_packet::{UdpSpec, verify_checksums};

    const MS: u64 = 1_000_000;

    fn cfg(pps: Option<(u64, u64)>, bps: Option<(u64, u64)>, per: Per) -> Config {
        Config {
            pps,
            bps,
            per,
            max_keys: 100,
            mark: None,
            dest: Action::Next,
        }
    }

    fn flow(src: [u8; 4], sport: u16, len: usize) -> Vec<u8> {
        UdpSpec {
            frame_len: Some(len),
            ..UdpSpec::new(src, [10, 9, 9, 9], sport, 53)
        }
        .to_vec()
        .unwrap()
    }

    #[test]
    fn a_burst_passes_then_the_rate_and_other_flows_are_unaffected() {
        let mut r = RateLimiter::new(cfg(Some((10, 100)), None, Per::Flow));
        let a = flow([10, 0, 0, 1], 1, 60);
        let b = flow([10, 0, 0, 1], 2, 60);
        let passed = (0..1000)
            .filter(|_| r.police(&mut a.clone(), 0) == Action::Next)
            .count();
        assert_eq!(passed, 100);
        assert!((0..50).all(|_| r.police(&mut b.clone(), 0) == Action::Next));
        // 10 pps: one more token every 100 ms.
        assert_eq!(r.police(&mut a.clone(), 99 * MS), Action::Drop);
        assert_eq!(r.police(&mut a.clone(), 100 * MS), Action::Next);
        assert_eq!(r.police(&mut a.clone(), 100 * MS), Action::Drop);
        let passed = (0..100)
            .filter(|_| r.police(&mut a.clone(), 1100 * MS) == Action::Next)
            .count();
        assert_eq!(passed, 10);
        assert_eq!((r.counts.passed, r.counts.dropped, r.keys()), (161, 992, 2));
    }

    #[test]
    fn bytes_keys_by_prefix_marking_eviction_and_overflow() {
        // 1000 B/s, 1000 B burst: 10 frames of 100 bytes, then none.
        let mut r = RateLimiter::new(cfg(None, Some((1000, 1000)), Per::SrcPrefix(24, 64)));
        let n = (0..20u8)
            .filter(|i| r.police(&mut flow([10, 0, 0, *i], 1, 100), 0) == Action::Next)
            .count();
        assert_eq!((n, r.keys()), (10, 1));
        assert_eq!(r.police(&mut flow([10, 0, 1, 1], 1, 100), 0), Action::Next);
        // Full again: evicted (the emptied /24 after a whole second).
        r.evict(999 * MS);
        assert_eq!(r.keys(), 1);
        r.evict(1000 * MS);
        assert_eq!((r.keys(), r.counts.evicted), (0, 2));
        // Marking: DSCP set, checksum valid.
        let mut r = RateLimiter::new(Config {
            mark: Some(46),
            ..cfg(Some((1, 1)), None, Per::Src)
        });
        let mut f = flow([10, 0, 0, 1], 1, 60);
        r.police(&mut f, 0);
        assert_eq!(f[15], 0);
        assert_eq!(r.police(&mut f, 0), Action::Next);
        assert_eq!((f[15] >> 2, r.counts.marked), (46, 1));
        assert_eq!(verify_checksums(&f), Ok(true));
        // Overflow: two keys fit; the others share one bucket.
        let mut r = RateLimiter::new(Config {
            max_keys: 2,
            ..cfg(Some((1, 1)), None, Per::Src)
        });
        let pass = (0..6u8)
            .filter(|i| r.police(&mut flow([10, 0, 0, *i], 1, 60), 0) == Action::Next)
            .count();
        assert_eq!((pass, r.keys(), r.counts.overflow), (3, 2, 4));
        // Non-IP passes unpoliced.
        let mut arp = [&[0xffu8; 12][..], &[0x08, 0x06], &[0; 28]].concat();
        assert_eq!(r.police(&mut arp, 0), Action::Next);
        assert_eq!(r.counts.unkeyed, 1);
    }

    #[test]
    fn malformed_frames_never_panic() {
        let mut r = RateLimiter::new(Config {
            mark: Some(10),
            ..cfg(Some((1, 1)), Some((100, 100)), Per::Flow)
        });
        let good = flow([10, 0, 0, 1], 1, 80);
        let mut frames = prefixes(&good);
        let mut b = good.clone();
        b[16..18].copy_from_slice(&[0xff, 0xff]);
        frames.push(b);
        let mut b = good.clone();
        b[14] = 0x41;
        frames.push(b);
        frames.extend(garbage(200));
        for f in &frames {
            r.police(&mut f.clone(), 0);
        }
        let mut off = Offline::new().unwrap();
        let mut sim = off.start(&mut r);
        assert_eq!(sim.frames(&mut r, 0, &frames).unwrap().len(), frames.len());
    }

    #[test]
    fn flags_are_checked() {
        let a = |v: &[&str]| {
            let mut argv = vec!["x"];
            argv.extend_from_slice(v);
            #[derive(clap::Parser)]
            struct P {
                #[command(flatten)]
                a: Args,
            }
            <P as clap::Parser>::try_parse_from(argv).unwrap().a.build().map(drop)
        };
        assert!(a(&["--rate", "10", "--burst", "100", "--per", "src-prefix:24"]).is_ok());
        assert!(a(&["--bytes-rate", "1000", "--mark", "--dscp", "46"]).is_ok());
        for (args, want) in [
            (&[][..], "--rate"),
            (&["--rate", "0"][..], "--rate 0"),
            (
                &["--rate", "1", "--per", "src-prefix:33"][..],
                "--per \"src-prefix:33\"",
            ),
            (&["--rate", "1", "--dscp", "64"][..], "--dscp 64"),
            (&["--bytes-rate", "1", "--burst", "3"][..], "--burst needs --rate"),
        ] {
            let e = a(args).unwrap_err();
            assert!(e.contains(want), "{e}");
        }
    }
}
