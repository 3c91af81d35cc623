//! Token-bucket shaper (openNetVM's `simple_fwd_tb`): a packet leaves when the bucket
//! holds as many tokens (bytes) as it is long; otherwise it waits, kept, in order.
//!
//! The bucket holds at most `-D BYTES` tokens and refills at `-R MBPS` (megabytes per
//! second, as openNetVM) or `--rate-bps BITS`. Packets go to `-d SERVICE` or the chain's
//! next hop. A packet that finds no tokens, or finds packets already waiting, is kept
//! ([`Action::Keep`]) in a queue of at most `--queue PKTS` (default: the NF's buffer
//! quota, at most 1024); over that it is dropped and counted. Waiting packets leave,
//! oldest first and never reordered, whenever tokens allow: on every burst that arrives
//! and on every tick, which [`Args`]'s `launch` sets to 1 ms so an idle NF still
//! drains. A packet longer than the bucket could ever hold is dropped (counted
//! `oversize`).
//!
//! Differences from openNetVM: there, a child thread spins on an advanced ring and
//! busy-waits for tokens, so one burst stalls the NF; here packets wait in the NF's
//! kept buffers and the loop goes on. Packets still waiting when the NF stops are
//! dropped (counted by the runtime as drops).

use std::collections::VecDeque;
use std::time::Duration;

use onvm_nf::{Action, Batch, Ctx, Handler, Kept, Nf, NfBuilder};

use crate::catalogue::{Catalogued, Launched, check_service};
use crate::now_ns;

/// The tick interval the NF runs with: how late a waiting packet can leave an idle NF.
pub const TICK: Duration = Duration::from_millis(1);

/// A token bucket in bytes. Time is a parameter (nanoseconds on any monotonic clock).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bucket {
    /// Most tokens it holds (bytes).
    pub depth: f64,
    /// Refill rate, bytes per second.
    pub rate: f64,
    tokens: f64,
    last_ns: Option<u64>,
}

impl Bucket {
    /// A full bucket.
    pub fn new(depth: u64, rate_bytes_per_s: f64) -> Self {
        Bucket {
            depth: depth as f64,
            rate: rate_bytes_per_s,
            tokens: depth as f64,
            last_ns: None,
        }
    }

    /// Add the tokens earned since the last refill.
    pub fn refill(&mut self, now_ns: u64) {
        if let Some(last) = self.last_ns {
            let dt = now_ns.saturating_sub(last) as f64 * 1e-9;
            self.tokens = (self.tokens + dt * self.rate).min(self.depth);
        }
        self.last_ns = Some(self.last_ns.map_or(now_ns, |l| l.max(now_ns)));
    }

    /// Take `len` tokens if there are that many.
    pub fn take(&mut self, len: usize) -> bool {
        let len = len as f64;
        if self.tokens >= len {
            self.tokens -= len;
            true
        } else {
            false
        }
    }

    /// Tokens now.
    pub fn tokens(&self) -> f64 {
        self.tokens
    }
}

/// What the shaper counted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// Packets that left at once (tokens, nothing waiting).
    pub passed: u64,
    /// Packets kept to wait for tokens.
    pub kept: u64,
    /// Kept packets that left later.
    pub released: u64,
    /// Packets dropped because the queue was full.
    pub dropped: u64,
    /// Packets dropped because they are longer than the bucket.
    pub oversize: u64,
}

/// The NF.
#[derive(Debug)]
pub struct Tbf {
    /// Where packets go.
    pub out: Action,
    /// The bucket.
    pub bucket: Bucket,
    /// The queue bound asked for (`None`: the quota, at most 1024).
    pub queue_flag: Option<usize>,
    /// What it counted.
    pub counts: Counts,
    /// The clock (nanoseconds); the real monotonic clock but in tests.
    pub clock: fn() -> u64,
    /// The bound in force (set at setup, from the quota).
    limit: usize,
    /// Waiting packets handed over by the runtime, oldest first.
    queue: VecDeque<Kept>,
    /// Lengths of every waiting packet, oldest first: those in `queue`, then those kept
    /// in the last burst and not yet taken from `ctx`.
    lens: VecDeque<u32>,
}

impl Tbf {
    /// A shaper sending to `out`.
    pub fn new(out: Action, bucket: Bucket, queue: Option<usize>) -> Self {
        Tbf {
            out,
            bucket,
            queue_flag: queue,
            counts: Counts::default(),
            clock: now_ns,
            limit: queue.unwrap_or(1024),
            queue: VecDeque::new(),
            lens: VecDeque::new(),
        }
    }

    /// Packets waiting now.
    pub fn waiting(&self) -> usize {
        self.lens.len()
    }

    /// Refill, then send waiting packets while tokens allow.
    fn release(&mut self, ctx: &mut Ctx<'_>) {
        self.bucket.refill((self.clock)());
        if ctx.kept_count() > 0 {
            self.queue.extend(ctx.take_kept());
        }
        while let Some(&len) = self.lens.front() {
            if self.queue.is_empty() || !self.bucket.take(len as usize) {
                break;
            }
            self.lens.pop_front();
            if let Some(k) = self.queue.pop_front() {
                ctx.return_pkt(k, self.out);
                self.counts.released += 1;
            }
        }
    }
}

impl Handler for Tbf {
    fn setup(&mut self, ctx: &mut Ctx<'_>) {
        let quota = ctx.quota() as usize;
        self.limit = self.queue_flag.unwrap_or(1024).min(quota);
        self.queue.reserve(self.limit);
        self.lens.reserve(self.limit);
    }

    fn batch(&mut self, batch: &mut Batch<'_>, ctx: &mut Ctx<'_>) {
        self.release(ctx);
        for i in 0..batch.len() {
            let Some(p) = batch.packet(i) else {
                batch.set_action(i, Action::Drop);
                continue;
            };
            let len = p.len();
            let a = if len as f64 > self.bucket.depth {
                self.counts.oversize += 1;
                Action::Drop
            } else if self.lens.is_empty() && self.bucket.take(len) {
                self.counts.passed += 1;
                self.out
            } else if self.lens.len() < self.limit {
                self.counts.kept += 1;
                self.lens.push_back(len as u32);
                Action::Keep
            } else {
                self.counts.dropped += 1;
                Action::Drop
            };
            batch.set_action(i, a);
        }
    }

    fn tick(&mut self, ctx: &mut Ctx<'_>) {
        self.release(ctx);
    }
}

/// `onvm nf tbf [-d SERVICE] [-D BYTES] [-R MBPS | --rate-bps BITS] [--queue PKTS]`.
#[derive(clap::Args, Debug, Clone)]
pub struct Args {
    /// Destination service (default: the chain's next hop).
    #[arg(short = 'd', long)]
    pub dest: Option<u16>,
    /// Bucket depth in bytes (the largest burst that leaves at once).
    #[arg(short = 'D', long, default_value_t = 10_000)]
    pub depth: u64,
    /// Refill rate in megabytes (10^6 bytes) per second, as openNetVM.
    #[arg(short = 'R', long, default_value_t = 1000.0, conflicts_with = "rate_bps")]
    pub rate: f64,
    /// Refill rate in bits per second (instead of -R).
    #[arg(long)]
    pub rate_bps: Option<u64>,
    /// Most packets waiting (default: the NF's buffer quota, at most 1024).
    #[arg(long)]
    pub queue: Option<usize>,
}

impl Catalogued for Args {
    const NAME: &'static str = "tbf";
    type Nf = Tbf;

    fn build(&self) -> Result<Tbf, String> {
        let out = match self.dest {
            Some(d) => Action::ToService(check_service("--dest", d)?),
            None => Action::Next,
        };
        if !(64..=1 << 40).contains(&self.depth) {
            return Err(format!("--depth {}: out of range, must be 64..=2^40 bytes", self.depth));
        }
        let rate = match self.rate_bps {
            Some(0) => return Err("--rate-bps 0: must be above 0".into()),
            Some(b) => b as f64 / 8.0,
            None if self.rate.is_finite() && self.rate > 0.0 && self.rate <= 1e7 => self.rate * 1e6,
            None => {
                return Err(format!(
                    "--rate {}: out of range, must be above 0 and at most 1e7 MB/s",
                    self.rate
                ));
            }
        };
        if let Some(q) = self.queue
            && !(1..=onvm_shm::Layout::MAX_BUFFERS as usize).contains(&q)
        {
            return Err(format!(
                "--queue {q}: out of range, must be 1..={}",
                onvm_shm::Layout::MAX_BUFFERS
            ));
        }
        Ok(Tbf::new(out, Bucket::new(self.depth, rate), self.queue))
    }

    fn report(nf: &Tbf) -> Option<String> {
        let c = nf.counts;
        Some(format!(
            "tbf: passed {}, kept {}, released {}, dropped {}, oversize {}, waiting {}",
            c.passed,
            c.kept,
            c.released,
            c.dropped,
            c.oversize,
            nf.waiting()
        ))
    }

    /// Runs with a 1 ms tick ([`TICK`]), so waiting packets leave an idle NF on time.
    fn launch(self, b: NfBuilder, connected: &dyn Fn(&Nf)) -> Result<Launched, String> {
        launch_ticking(self, b.tick(TICK), connected)
    }
}

/// [`Catalogued::launch`]'s default body, for NFs that override `launch` only to set
/// builder options (the tick interval).
pub(crate) fn launch_ticking<A: Catalogued>(a: A, b: NfBuilder, connected: &dyn Fn(&Nf)) -> Result<Launched, String> {
    let mut h = a.build()?;
    let nf = b.connect().map_err(|e| e.to_string())?;
    connected(&nf);
    let summary = nf.run(&mut h).map_err(|e| e.to_string())?;
    Ok(Launched {
        summary,
        report: A::report(&h),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_frames::{fake_now, set_now};
    use onvm_nf::offline::Offline;

    fn tbf(flags: &[&str]) -> Tbf {
        let mut t = crate::parse_flags::<Args>(flags).unwrap().build().unwrap();
        t.clock = fake_now;
        t
    }

    /// Frame `i`: `len` bytes, its index in the first two.
    fn frame(i: u16, len: usize) -> Vec<u8> {
        let mut f = vec![0u8; len];
        f[..2].copy_from_slice(&i.to_be_bytes());
        f
    }

    fn ids(out: &[onvm_nf::offline::Sent]) -> Vec<u16> {
        out.iter()
            .map(|s| u16::from_be_bytes([s.frame[0], s.frame[1]]))
            .collect()
    }

    #[test]
    fn a_burst_beyond_the_depth_waits_and_leaves_in_order_as_tokens_refill() {
        set_now(0);
        // 1000-byte bucket, 1 MB/s: 1000 bytes per ms.
        let mut h = tbf(&["-D", "1000", "-R", "1", "-d", "5"]);
        let mut off = Offline::new().unwrap();
        let mut sim = off.start(&mut h);
        let frames: Vec<Vec<u8>> = (0..10).map(|i| frame(i, 500)).collect();
        let out = sim.frames(&mut h, 0, &frames).unwrap();
        assert_eq!(ids(&out), [0, 1]);
        assert!(out.iter().all(|s| s.action == Action::ToService(5)));
        assert_eq!(sim.kept(), 8);
        // Half a millisecond: one more.
        set_now(500_000);
        assert_eq!(ids(&sim.tick(&mut h)), [2]);
        // A new packet queues behind the waiting ones even though it would fit later.
        set_now(1_000_000);
        let out = sim.frames(&mut h, 0, &[frame(10, 100)]).unwrap();
        assert_eq!(ids(&out), [3]);
        set_now(10_000_000);
        assert_eq!(ids(&sim.tick(&mut h)), [4, 5]);
        set_now(20_000_000);
        assert_eq!(ids(&sim.tick(&mut h)), [6, 7]);
        set_now(30_000_000);
        assert_eq!(ids(&sim.tick(&mut h)), [8, 9]);
        set_now(40_000_000);
        assert_eq!(ids(&sim.tick(&mut h)), [10]);
        sim.stop(&mut h);
        assert_eq!(
            h.counts,
            Counts {
                passed: 2,
                kept: 9,
                released: 9,
                ..Default::default()
            }
        );
    }

    #[test]
    fn a_full_queue_drops_and_an_oversize_packet_is_dropped() {
        set_now(0);
        let mut h = tbf(&["-D", "100", "--rate-bps", "8000", "--queue", "3"]);
        let mut off = Offline::new().unwrap();
        let mut sim = off.start(&mut h);
        let mut frames: Vec<Vec<u8>> = (0..6).map(|i| frame(i, 60)).collect();
        frames.push(frame(6, 101));
        let out = sim.frames(&mut h, 0, &frames).unwrap();
        assert_eq!(ids(&out), [0, 4, 5, 6]);
        assert_eq!(out[0].action, Action::Next);
        assert!(out[1..].iter().all(|s| s.action == Action::Drop));
        // 1000 bytes/s: 60 bytes take 60 ms (40 are left); the bucket holds 100.
        set_now(20_000_000);
        assert_eq!(ids(&sim.tick(&mut h)), [1]);
        set_now(100_000_000);
        assert_eq!(ids(&sim.tick(&mut h)), [2]);
        set_now(120_000_000);
        assert!(ids(&sim.tick(&mut h)).is_empty());
        set_now(200_000_000);
        assert_eq!(ids(&sim.tick(&mut h)), [3]);
        sim.stop(&mut h);
        assert_eq!((h.counts.dropped, h.counts.oversize, h.counts.released), (2, 1, 3));
    }

    #[test]
    fn the_queue_is_bounded_by_the_quota() {
        set_now(0);
        let mut h = tbf(&["-D", "64", "-R", "0.000001"]);
        let mut off = Offline::new().unwrap().quota(5);
        let mut sim = off.start(&mut h);
        let frames: Vec<Vec<u8>> = (0..10).map(|i| frame(i, 64)).collect();
        let out = sim.frames(&mut h, 0, &frames).unwrap();
        assert_eq!(out.len(), 5);
        assert_eq!(sim.kept(), 5);
        assert_eq!(h.counts.dropped, 4);
    }

    #[test]
    fn bad_flags_are_named() {
        let e = |f: &[&str]| crate::parse_flags::<Args>(f).unwrap().build().unwrap_err();
        assert!(e(&["-D", "10"]).contains("--depth 10"));
        assert!(e(&["-R", "0"]).contains("--rate 0"));
        assert!(e(&["-R", "NaN"]).contains("--rate NaN"));
        assert!(e(&["--rate-bps", "0"]).contains("--rate-bps 0"));
        assert!(e(&["--queue", "0"]).contains("--queue 0"));
        assert!(e(&["-d", "0"]).contains("--dest 0"));
        assert!(crate::parse_flags::<Args>(&["-R", "1", "--rate-bps", "8"]).is_err());
    }

    #[test]
    fn any_bytes_are_shaped_without_panic() {
        set_now(0);
        let mut h = tbf(&["-D", "2000", "-R", "1"]);
        let mut off = Offline::new().unwrap();
        let mut sim = off.start(&mut h);
        let frames: Vec<Vec<u8>> = (0..200).map(|n| vec![0x5a; n * 7 % 1600]).collect();
        let out = sim.frames(&mut h, 0, &frames).unwrap();
        let mut n = out.len();
        for ms in 1..1000 {
            set_now(ms * 1_000_000);
            n += sim.tick(&mut h).len();
        }
        assert_eq!(n, 200);
        assert_eq!(h.waiting(), 0);
    }
}
