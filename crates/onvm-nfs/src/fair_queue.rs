//! Fair queueing (openNetVM's `fair_queue`): packets are hashed by flow into `-n`
//! queues and leave by deficit round robin, so one heavy flow cannot starve the rest.
//!
//! Each packet's 5-tuple (addresses, protocol, ports; zero ports for other protocols)
//! is hashed with CRC32c ([`onvm_packet::crc32c`]) and the queue is the hash modulo
//! `-n`; a frame without an IPv4/IPv6 header goes to queue 0. Packets wait kept
//! ([`Action::Keep`]); each queue holds at most `--queue-len PKTS` (default: the NF's
//! buffer quota, at most 1024, shared equally), and a packet over that is dropped and
//! counted for its queue. Queues are served by deficit round robin: each turn a queue
//! earns `--quantum BYTES` (default 1514) and sends packets while its deficit covers
//! them. `--rate PPS` paces the output (at most 32 packets at once); 0 sends as fast
//! as packets arrive, still interleaving the queues of each burst. Packets leave to
//! `-d SERVICE` or the chain's next hop, on every burst and every tick (1 ms). Within
//! a queue the order is kept.
//!
//! Differences from openNetVM: there, a child thread dequeues round robin by packets
//! (not bytes) from advanced rings; here the NF's own loop does it, by bytes, and a
//! full queue drops instead of blocking the ring.

use std::collections::VecDeque;
use std::net::IpAddr;
use std::time::Duration;

use onvm_nf::{Action, Batch, Ctx, Handler, Kept, Nf, NfBuilder};
use onvm_packet::Headers;

use crate::catalogue::{Catalogued, Launched, check_service};
use crate::now_ns;
use crate::tbf::launch_ticking;

/// The tick interval: how late a waiting packet can leave an idle NF.
pub const TICK: Duration = Duration::from_millis(1);
/// Most packets a paced NF sends at once.
pub const MAX_BURST: f64 = 32.0;

/// A packet's flow: addresses, protocol and TCP/UDP ports (0 for other protocols).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FiveTuple {
    /// Source address.
    pub src: IpAddr,
    /// Destination address.
    pub dst: IpAddr,
    /// IP protocol.
    pub proto: u8,
    /// Source port.
    pub sport: u16,
    /// Destination port.
    pub dport: u16,
}

impl FiveTuple {
    /// The flow of a frame, if it has an IP header.
    pub fn of(frame: &[u8]) -> Option<FiveTuple> {
        let h = Headers::parse(frame).ok()?;
        Some(FiveTuple {
            src: h.src_ip()?,
            dst: h.dst_ip()?,
            proto: h.ip_proto()?,
            sport: h.src_port().unwrap_or(0),
            dport: h.dst_port().unwrap_or(0),
        })
    }

    /// Its bytes for hashing: source, destination (4 or 16 bytes each), protocol,
    /// source port, destination port (big-endian); the length used.
    pub fn bytes(&self, out: &mut [u8; 37]) -> usize {
        let mut n = 0;
        for ip in [self.src, self.dst] {
            match ip {
                IpAddr::V4(a) => {
                    out[n..n + 4].copy_from_slice(&a.octets());
                    n += 4;
                }
                IpAddr::V6(a) => {
                    out[n..n + 16].copy_from_slice(&a.octets());
                    n += 16;
                }
            }
        }
        out[n] = self.proto;
        out[n + 1..n + 3].copy_from_slice(&self.sport.to_be_bytes());
        out[n + 3..n + 5].copy_from_slice(&self.dport.to_be_bytes());
        n + 5
    }

    /// CRC32c of [`FiveTuple::bytes`].
    pub fn crc32c(&self) -> u32 {
        let mut b = [0u8; 37];
        let n = self.bytes(&mut b);
        onvm_packet::crc32c(&b[..n])
    }
}

/// The queue of a frame among `n`: its flow's CRC32c modulo `n`; 0 without an IP header.
pub fn queue_of(frame: &[u8], n: usize) -> usize {
    FiveTuple::of(frame).map_or(0, |t| t.crc32c() as usize % n)
}

/// One queue's packets and counters.
#[derive(Debug, Default)]
pub struct Queue {
    /// Waiting packets handed over by the runtime, with their lengths.
    pkts: VecDeque<(Kept, u32)>,
    /// Packets kept for it in the last burst, not yet handed over.
    pending: usize,
    deficit: u64,
    /// Packets kept for it.
    pub enqueued: u64,
    /// Packets it sent.
    pub sent: u64,
    /// Bytes it sent.
    pub bytes: u64,
    /// Packets dropped because it was full.
    pub dropped: u64,
}

impl Queue {
    fn len(&self) -> usize {
        self.pkts.len() + self.pending
    }
}

/// The NF.
#[derive(Debug)]
pub struct FairQueue {
    /// Where packets go.
    pub out: Action,
    /// The queues.
    pub queues: Vec<Queue>,
    /// Bytes a queue earns per turn.
    pub quantum: u64,
    /// Packets per second; 0 = unpaced.
    pub rate: f64,
    /// The clock (nanoseconds); the real monotonic clock but in tests.
    pub clock: fn() -> u64,
    /// The per-queue bound asked for; `None` = the quota shared.
    len_flag: Option<usize>,
    limit: usize,
    /// Queue of each packet kept and not yet handed over, oldest first.
    pending: VecDeque<u16>,
    /// Packets handed over and waiting in queues.
    waiting: usize,
    /// The queue whose turn it is, and whether it already earned its quantum.
    cursor: usize,
    granted: bool,
    credit: f64,
    last_ns: Option<u64>,
}

impl FairQueue {
    /// `n` queues sending to `out`.
    pub fn new(out: Action, n: usize, quantum: u64, rate: f64, queue_len: Option<usize>) -> Self {
        FairQueue {
            out,
            queues: (0..n).map(|_| Queue::default()).collect(),
            quantum,
            rate,
            clock: now_ns,
            len_flag: queue_len,
            limit: queue_len.unwrap_or(1024 / n).max(1),
            pending: VecDeque::new(),
            waiting: 0,
            cursor: 0,
            granted: false,
            credit: 0.0,
            last_ns: None,
        }
    }

    /// Packets waiting in all queues (handed over or not).
    pub fn waiting(&self) -> usize {
        self.waiting + self.pending.len()
    }

    /// Hand kept packets to their queues, then send by deficit round robin as far as
    /// the pacing allows.
    fn release(&mut self, ctx: &mut Ctx<'_>) {
        if ctx.kept_count() > 0 {
            for mut k in ctx.take_kept() {
                let q = usize::from(self.pending.pop_front().unwrap_or(0));
                let len = ctx.packet(&mut k).map_or(0, |p| p.len() as u32);
                let queue = &mut self.queues[q];
                queue.pending = queue.pending.saturating_sub(1);
                queue.pkts.push_back((k, len));
                self.waiting += 1;
            }
        }
        let mut budget = if self.rate > 0.0 {
            let now = (self.clock)();
            if let Some(last) = self.last_ns {
                let dt = now.saturating_sub(last) as f64 * 1e-9;
                self.credit = (self.credit + dt * self.rate).min(MAX_BURST);
            }
            self.last_ns = Some(now);
            self.credit as usize
        } else {
            usize::MAX
        };
        let spent = self.drr(ctx, &mut budget);
        if self.rate > 0.0 {
            self.credit -= spent as f64;
        }
    }

    /// Deficit round robin over the handed-over packets, at most `budget` of them; how
    /// many were sent.
    fn drr(&mut self, ctx: &mut Ctx<'_>, budget: &mut usize) -> usize {
        let mut sent = 0;
        let n = self.queues.len();
        while *budget > 0 && self.waiting > 0 {
            let q = &mut self.queues[self.cursor];
            if q.pkts.is_empty() {
                q.deficit = 0;
                self.cursor = (self.cursor + 1) % n;
                self.granted = false;
                continue;
            }
            if !self.granted {
                q.deficit += self.quantum;
                self.granted = true;
            }
            while *budget > 0
                && let Some(&(_, len)) = q.pkts.front()
                && u64::from(len) <= q.deficit
            {
                let Some((k, _)) = q.pkts.pop_front() else { break };
                q.deficit -= u64::from(len);
                q.sent += 1;
                q.bytes += u64::from(len);
                ctx.return_pkt(k, self.out);
                self.waiting -= 1;
                *budget -= 1;
                sent += 1;
            }
            if q.pkts.is_empty() {
                q.deficit = 0;
            } else if *budget == 0 && q.pkts.front().is_some_and(|&(_, l)| u64::from(l) <= q.deficit) {
                // Out of budget mid-turn: the queue goes on next time.
                break;
            }
            self.cursor = (self.cursor + 1) % n;
            self.granted = false;
        }
        sent
    }
}

impl Handler for FairQueue {
    fn setup(&mut self, ctx: &mut Ctx<'_>) {
        let n = self.queues.len();
        let share = (ctx.quota() as usize).min(1024) / n;
        self.limit = self.len_flag.map_or(share, |l| l.min(share)).max(1);
        self.pending.reserve(self.limit * n);
    }

    fn batch(&mut self, batch: &mut Batch<'_>, ctx: &mut Ctx<'_>) {
        self.release(ctx);
        let n = self.queues.len();
        let quota = ctx.quota() as usize;
        for i in 0..batch.len() {
            let Some(p) = batch.packet(i) else {
                batch.set_action(i, Action::Drop);
                continue;
            };
            let q = queue_of(p.data(), n);
            let queue = &mut self.queues[q];
            let a = if queue.len() < self.limit && self.waiting + self.pending.len() < quota {
                queue.enqueued += 1;
                queue.pending += 1;
                self.pending.push_back(q as u16);
                Action::Keep
            } else {
                queue.dropped += 1;
                Action::Drop
            };
            batch.set_action(i, a);
        }
    }

    fn tick(&mut self, ctx: &mut Ctx<'_>) {
        self.release(ctx);
    }
}

/// `onvm nf fair-queue [-d SERVICE] [-n QUEUES] [--quantum BYTES] [--rate PPS] [--queue-len PKTS]`.
#[derive(clap::Args, Debug, Clone)]
pub struct Args {
    /// Destination service (default: the chain's next hop).
    #[arg(short = 'd', long)]
    pub dest: Option<u16>,
    /// Number of queues.
    #[arg(short = 'n', long, default_value_t = 4)]
    pub queues: usize,
    /// Bytes a queue may send per round.
    #[arg(long, default_value_t = 1514)]
    pub quantum: u64,
    /// Packets per second out (0 = as fast as they come).
    #[arg(long, default_value_t = 0.0)]
    pub rate: f64,
    /// Most packets waiting per queue (default: the buffer quota shared, at most 1024 in all).
    #[arg(long)]
    pub queue_len: Option<usize>,
}

impl Catalogued for Args {
    const NAME: &'static str = "fair_queue";
    type Nf = FairQueue;

    fn build(&self) -> Result<FairQueue, String> {
        let out = match self.dest {
            Some(d) => Action::ToService(check_service("--dest", d)?),
            None => Action::Next,
        };
        if !(1..=256).contains(&self.queues) {
            return Err(format!("--queues {}: out of range, must be 1..=256", self.queues));
        }
        if !(64..=1 << 20).contains(&self.quantum) {
            return Err(format!(
                "--quantum {}: out of range, must be 64..=1048576 bytes",
                self.quantum
            ));
        }
        if !(self.rate.is_finite() && (0.0..=1e9).contains(&self.rate)) {
            return Err(format!("--rate {}: out of range, must be 0..=1e9 packets/s", self.rate));
        }
        if let Some(l) = self.queue_len
            && l == 0
        {
            return Err("--queue-len 0: must be at least 1".into());
        }
        Ok(FairQueue::new(
            out,
            self.queues,
            self.quantum,
            self.rate,
            self.queue_len,
        ))
    }

    fn report(nf: &FairQueue) -> Option<String> {
        let sum = |f: fn(&Queue) -> u64| nf.queues.iter().map(f).sum::<u64>();
        let mut line = format!(
            "fair_queue: enqueued {}, sent {}, dropped {}, waiting {}",
            sum(|q| q.enqueued),
            sum(|q| q.sent),
            sum(|q| q.dropped),
            nf.waiting()
        );
        for (i, q) in nf.queues.iter().enumerate() {
            if q.enqueued + q.dropped > 0 {
                line.push_str(&format!(
                    "; q{i} sent {} bytes {} dropped {}",
                    q.sent, q.bytes, q.dropped
                ));
            }
        }
        Some(line)
    }

    /// Runs with a 1 ms tick ([`TICK`]), so waiting packets leave an idle NF on time.
    fn launch(self, b: NfBuilder, connected: &dyn Fn(&Nf)) -> Result<Launched, String> {
        launch_ticking(self, b.tick(TICK), connected)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_frames::{fake_now, garbage, prefixes, set_now};
    use onvm_nf::offline::{Offline, Sent};

    fn fq(flags: &[&str]) -> FairQueue {
        let mut f = crate::parse_flags::<Args>(flags).unwrap().build().unwrap();
        f.clock = fake_now;
        f
    }

    /// Two flows that land in different queues of `n`, and packet `i` of flow `f`.
    fn frame(flow: u16, i: u16, len: usize) -> Vec<u8> {
        onvm_packet::UdpSpec {
            payload: &i.to_be_bytes(),
            frame_len: Some(len),
            ..onvm_packet::UdpSpec::new([10, 0, 0, 1], [10, 0, 0, 2], 1000 + flow, 53)
        }
        .to_vec()
        .unwrap()
    }

    fn id(s: &Sent) -> (u16, u16) {
        let h = Headers::parse(&s.frame).unwrap();
        let p = h.payload();
        (h.src_port().unwrap() - 1000, u16::from_be_bytes([p[0], p[1]]))
    }

    /// Flows 0..k whose queues among `n` all differ.
    fn distinct_flows(n: usize, k: usize) -> Vec<u16> {
        let mut seen = Vec::new();
        let mut flows = Vec::new();
        for f in 0..1000u16 {
            let q = queue_of(&frame(f, 0, 60), n);
            if !seen.contains(&q) {
                seen.push(q);
                flows.push(f);
                if flows.len() == k {
                    break;
                }
            }
        }
        flows
    }

    #[test]
    fn a_heavy_flow_and_a_light_one_alternate_by_bytes() {
        set_now(0);
        let mut h = fq(&["-n", "4", "--quantum", "100"]);
        let [a, b] = distinct_flows(4, 2)[..] else { panic!() };
        let mut off = Offline::new().unwrap();
        let mut sim = off.start(&mut h);
        // Flow a: 6 packets of 100 bytes, then flow b: 3 of 100, in one burst.
        let mut frames: Vec<Vec<u8>> = (0..6).map(|i| frame(a, i, 100)).collect();
        frames.extend((0..3).map(|i| frame(b, i, 100)));
        assert!(sim.frames(&mut h, 0, &frames).unwrap().is_empty());
        let out = sim.tick(&mut h);
        let ids: Vec<(u16, u16)> = out.iter().map(id).collect();
        let want = |q: u16, i: u16| if q == 0 { (a, i) } else { (b, i) };
        // Round robin starting from the lower queue.
        let (first, second) = if queue_of(&frames[0], 4) < queue_of(&frames[6], 4) {
            (0, 1)
        } else {
            (1, 0)
        };
        let mut expect = Vec::new();
        for i in 0..3 {
            expect.push(want(first, i));
            expect.push(want(second, i));
        }
        expect.extend((3..6).map(|i| (a, i)));
        assert_eq!(ids, expect);
        assert!(out.iter().all(|s| s.action == Action::Next));
        assert_eq!(h.waiting(), 0);
    }

    #[test]
    fn deficit_counts_bytes_a_big_packet_waits_for_two_quanta() {
        set_now(0);
        let mut h = fq(&["-n", "2", "--quantum", "600", "-d", "3"]);
        let [a, b] = distinct_flows(2, 2)[..] else { panic!() };
        let mut off = Offline::new().unwrap();
        let mut sim = off.start(&mut h);
        let mut frames = vec![frame(a, 0, 1000), frame(a, 1, 1000)];
        frames.extend((0..4).map(|i| frame(b, i, 300)));
        sim.frames(&mut h, 0, &frames).unwrap();
        let ids: Vec<(u16, u16)> = sim.tick(&mut h).iter().map(id).collect();
        // Each round a earns 600 (sends a 1000-byte packet every second round), b sends 2.
        let qa = queue_of(&frames[0], 2);
        let expect: Vec<(u16, u16)> = if qa == 0 {
            vec![(b, 0), (b, 1), (a, 0), (b, 2), (b, 3), (a, 1)]
        } else {
            vec![(b, 0), (b, 1), (b, 2), (b, 3), (a, 0), (a, 1)]
        };
        assert_eq!(ids, expect);
    }

    #[test]
    fn pacing_sends_at_the_rate_and_full_queues_drop() {
        set_now(0);
        let mut h = fq(&["-n", "1", "--rate", "1000", "--queue-len", "10"]);
        let mut off = Offline::new().unwrap();
        let mut sim = off.start(&mut h);
        let frames: Vec<Vec<u8>> = (0..15).map(|i| frame(0, i, 80)).collect();
        let out = sim.frames(&mut h, 0, &frames).unwrap();
        assert_eq!(out.len(), 5);
        assert!(out.iter().all(|s| s.action == Action::Drop));
        assert!(sim.tick(&mut h).is_empty());
        set_now(3_000_000);
        let out = sim.tick(&mut h);
        assert_eq!(out.iter().map(|s| id(s).1).collect::<Vec<_>>(), [0, 1, 2]);
        set_now(1_000_000_000);
        // At most a burst of 32 at once; the 7 left go.
        assert_eq!(sim.tick(&mut h).len(), 7);
        assert_eq!(h.queues[0].dropped, 5);
        let r = Args::report(&h).unwrap();
        assert!(
            r.contains("enqueued 10, sent 10, dropped 5, waiting 0; q0 sent 10 bytes 800 dropped 5"),
            "{r}"
        );
    }

    #[test]
    fn bad_flags_are_named() {
        let e = |f: &[&str]| crate::parse_flags::<Args>(f).unwrap().build().unwrap_err();
        assert!(e(&["-n", "0"]).contains("--queues 0"));
        assert!(e(&["--quantum", "1"]).contains("--quantum 1"));
        assert!(e(&["--rate", "inf"]).contains("--rate inf"));
        assert!(e(&["--queue-len", "0"]).contains("--queue-len 0"));
    }

    #[test]
    fn malformed_frames_go_to_queue_0_and_all_leave() {
        set_now(0);
        let mut h = fq(&["-n", "8"]);
        let mut off = Offline::new().unwrap();
        let mut sim = off.start(&mut h);
        let good = frame(7, 0, 90);
        let mut frames = prefixes(&good);
        let mut bad_ihl = good.clone();
        bad_ihl[14] = 0x4f;
        let mut bad_len = good.clone();
        bad_len[16..18].copy_from_slice(&9000u16.to_be_bytes());
        frames.push(bad_ihl);
        frames.push(bad_len);
        frames.extend(garbage(50));
        let n = frames.len();
        let mut out = sim.frames(&mut h, 0, &frames).unwrap().len();
        out += sim.tick(&mut h).len();
        assert_eq!(out, n);
    }
}
