//! The built-in traffic generator: UDP/IPv4 frames over a fixed set of flows.
//!
//! It lets the platform be benchmarked and tested with no NIC and no external tool.
//!
//! # Frames
//! Flow `i` (of `flows`, cycled in order: packet `n` belongs to flow `n % flows`) is
//! `198.18.x.y:p -> 198.19.255.254:9` with
//! - source address `198.18.0.1 + (i % 65536)`,
//! - source port `1024 + (i / 65536) % 64512`,
//!
//! so the 5-tuples are distinct for up to 4.2 billion flows and addresses stay in the
//! benchmarking range of RFC 2544. The payload is zeros; the frame is `frame_size - 4`
//! bytes long (the spec's size counts the FCS, which software never sees).
//!
//! # Fast path
//! One frame (flow 0) is built with etherparse's `PacketBuilder` at open. Per packet the
//! generator copies it and writes the flow's source address and port and both checksums,
//! which are finished from partial sums precomputed over everything that does not vary.
//! That costs the same for 1 or 4 billion flows, where a table of per-flow frames would
//! not fit in cache (or memory). Tests check every byte against `PacketBuilder` output.

use onvm_packet::checksum::{fold, sum};
use std::time::Instant;

use etherparse::PacketBuilder;
use onvm_proto::port::{GenSpec, PortSpec};
use onvm_shm::{Buf, Pool};

use crate::{BadBuffers, Port, PortStats, now_ns, swallow};

const ETH: usize = 14;
const IP_CSUM: usize = ETH + 10;
const IP_SRC: usize = ETH + 12;
const UDP: usize = ETH + 20;
const UDP_SRC: usize = UDP;
const UDP_CSUM: usize = UDP + 6;

/// First source address (198.18.0.1) of the generated flows.
const SRC_BASE: u32 = u32::from_be_bytes([198, 18, 0, 1]);
const DST_IP: [u8; 4] = [198, 19, 255, 254];
/// Discard service.
const DST_PORT: u16 = 9;
const TTL: u8 = 64;

/// Source address and port of flow `i` (see the module docs).
pub(crate) fn flow_tuple(i: u32) -> ([u8; 4], u16) {
    let ip = SRC_BASE + (i & 0xffff);
    let port = 1024 + ((i >> 16) % 64512) as u16;
    (ip.to_be_bytes(), port)
}

/// Frame of flow `i`, built the slow way: the reference the fast path must match.
pub(crate) fn build_frame(frame_size: u16, port_no: u16, i: u32) -> Vec<u8> {
    let (src, sport) = flow_tuple(i);
    let [hi, lo] = port_no.to_be_bytes();
    let b = PacketBuilder::ethernet2([0x02, 0, 0, 0, hi, lo], [0x02, 0, 0, 0xff, 0xff, 0xff])
        .ipv4(src, DST_IP, TTL)
        .udp(sport, DST_PORT);
    let len = frame_size as usize - 4;
    let payload = vec![0u8; len - b.size(0)];
    let mut v = Vec::with_capacity(len);
    b.write(&mut v, &payload).expect("writing to a Vec cannot fail");
    debug_assert_eq!(v.len(), len);
    v
}

/// Token bucket in nano-packets (one packet = 1e9), so integer arithmetic keeps the
/// fractions of packets that short intervals earn.
#[derive(Debug)]
struct Pace {
    rate: u64,
    last: Instant,
    tokens: u128,
    depth: u128,
}

const NANO: u128 = 1_000_000_000;

impl Pace {
    /// The bucket holds 10 ms of traffic (at least 32 packets): enough that a manager
    /// polling with millisecond-scale gaps still reaches the rate, small enough that a
    /// long stall does not turn into a long line-rate burst.
    fn new(rate: u64) -> Pace {
        Pace {
            rate,
            last: Instant::now(),
            tokens: 0,
            depth: (rate / 100).max(32) as u128 * NANO,
        }
    }

    /// Whole packets allowed now, at most `max`.
    fn allowed(&mut self, max: usize) -> usize {
        let now = Instant::now();
        let el = now.duration_since(self.last).as_nanos();
        self.last = now;
        self.tokens = (self.tokens + el * self.rate as u128).min(self.depth);
        ((self.tokens / NANO) as usize).min(max)
    }

    fn take(&mut self, n: usize) {
        self.tokens -= n as u128 * NANO;
    }
}

/// The traffic generator port (`gen:...`).
#[derive(Debug)]
pub struct GenPort {
    name: String,
    port_no: u16,
    flows: u32,
    /// Frame of flow 0; per-flow fields and checksums are overwritten per packet.
    template: Vec<u8>,
    /// Sum of the IPv4 header words other than the checksum and source address.
    ip_base: u64,
    /// Sum of the UDP pseudo-header, header and payload words other than the checksum,
    /// source address and source port.
    udp_base: u64,
    next_flow: u32,
    /// This queue's flows: `first_flow`, then every `stride`-th (1 and 0 for a port not
    /// split into queues; see [`Port::queues`]).
    first_flow: u32,
    stride: u32,
    pace: Option<Pace>,
    /// Packets still to generate when a count was given.
    remaining: Option<u64>,
    stats: PortStats,
    bad: BadBuffers,
}

impl GenPort {
    /// A generator for `spec` on port `port_no`; with `count`, it stops after that many
    /// packets (then [`Port::rx_done`]).
    pub fn new(spec: &GenSpec, port_no: u16, count: Option<u64>) -> GenPort {
        // The spec's own count is the one this port has (a caller may pass another).
        let name = PortSpec::Gen(GenSpec { count, ..*spec }).to_string();
        let template = build_frame(spec.frame_size, port_no, 0);
        let mut ip = template[ETH..UDP].to_vec();
        ip[10..16].fill(0); // checksum, source address
        let ip_base = sum(&ip, 0);
        let mut udp = template[UDP..].to_vec();
        udp[0..2].fill(0); // source port
        udp[6..8].fill(0); // checksum
        let udp_len = udp.len() as u64;
        // Pseudo header: (source address varies), destination address, protocol, UDP length.
        let udp_base = sum(&DST_IP, 0) + 17 + udp_len + sum(&udp, 0);
        GenPort {
            name,
            port_no,
            flows: spec.flows,
            template,
            ip_base,
            udp_base,
            next_flow: 0,
            first_flow: 0,
            stride: 1,
            pace: spec.rate_pps.map(Pace::new),
            remaining: count,
            stats: PortStats::default(),
            bad: BadBuffers::default(),
        }
    }

    /// Write flow `i`'s fields into a copy of the template.
    #[inline]
    fn patch(&self, frame: &mut [u8], i: u32) {
        let (src, sport) = flow_tuple(i);
        let var = sum(&src, 0);
        frame[IP_SRC..IP_SRC + 4].copy_from_slice(&src);
        frame[IP_CSUM..IP_CSUM + 2].copy_from_slice(&(!fold(self.ip_base + var)).to_be_bytes());
        frame[UDP_SRC..UDP_SRC + 2].copy_from_slice(&sport.to_be_bytes());
        let c = !fold(self.udp_base + var + sport as u64);
        // A computed UDP checksum of 0 is sent as 0xffff (0 means "no checksum").
        let c = if c == 0 { 0xffff } else { c };
        frame[UDP_CSUM..UDP_CSUM + 2].copy_from_slice(&c.to_be_bytes());
    }
}

impl Port for GenPort {
    fn name(&self) -> &str {
        &self.name
    }

    /// Generates `max` packets, or fewer when the rate or the count allows fewer.
    ///
    /// Buffer shortage: an unlimited generator just generates fewer packets (there is
    /// no "offered load" to drop from, and counting every short poll as drops would make
    /// `rx_drop` meaningless); a rate-limited one counts packets its rate allowed but the
    /// pool could not hold in `rx_drop`, like a NIC whose ring is full. A count counts
    /// delivered packets only.
    fn rx_burst(&mut self, pool: &mut Pool, out: &mut Vec<Buf>, max: usize) -> usize {
        let mut want = max;
        if let Some(r) = self.remaining {
            want = want.min(r.min(usize::MAX as u64) as usize);
        }
        if let Some(p) = &mut self.pace {
            want = p.allowed(want);
            p.take(want);
        }
        if want == 0 || self.first_flow >= self.flows {
            return 0;
        }
        if self.template.len() > pool.region().layout().data_room as usize {
            // The frame does not fit any buffer: the config is wrong. Count, don't spin.
            self.stats.errors += want as u64;
            return 0;
        }
        let start = out.len();
        let got = pool.alloc_burst(want, out);
        if self.pace.is_some() {
            self.stats.rx_drop += (want - got) as u64;
        }
        let now = now_ns();
        let mut i = start;
        while i < out.len() {
            // Written over, never read: an NF's stray write into a fresh buffer's
            // metadata line cannot stop the manager (see `Holder::packet_reset`). The
            // errors cannot happen (a buffer of our pool, a template that fits, checked
            // above); should one, the buffer goes back and is counted, no panic.
            let filled = pool
                .holder()
                .packet_reset(&mut out[i])
                .and_then(|mut pkt| pkt.copy_from(&self.template).map(|()| pkt));
            let mut pkt = match filled {
                Ok(pkt) => pkt,
                Err(e) => {
                    let index = out[i].index();
                    self.bad.count(&mut self.stats, "receiving into", index, &e);
                    let b = out.remove(i);
                    pool.free(b);
                    continue;
                }
            };
            self.patch(pkt.data_mut(), self.next_flow);
            let m = pkt.meta();
            m.set_in_port(self.port_no);
            m.set_timestamp(now);
            self.next_flow = match self.next_flow.checked_add(self.stride) {
                Some(f) if f < self.flows => f,
                _ => self.first_flow,
            };
            i += 1;
        }
        let n = out.len() - start;
        self.stats.rx += n as u64;
        self.stats.rx_bytes += (n * self.template.len()) as u64;
        if let Some(r) = &mut self.remaining {
            *r -= n as u64;
        }
        n
    }

    fn tx_burst(&mut self, pool: &mut Pool, bufs: &mut Vec<Buf>) -> usize {
        swallow(pool, bufs, &mut self.stats, &mut self.bad)
    }

    fn stats(&self) -> PortStats {
        self.stats
    }

    fn take_bad_buffers(&mut self, out: &mut Vec<String>) {
        self.bad.take(out);
    }

    /// Queues as a NIC whose RSS spreads the flows evenly would have them: queue `q` of
    /// `n + 1` generates flows `q`, `q + n + 1`, … (so each flow stays on one queue) at
    /// its share of the rate and of the count (the first queues get the remainders).
    /// Only before the first poll.
    fn queues(&mut self, n: usize) -> Vec<Box<dyn Port>> {
        let total = n as u64 + 1;
        // A rate too low to give each queue a packet per second is not split.
        if n == 0 || self.stats.rx > 0 || self.stride != 1 || self.pace.as_ref().is_some_and(|p| p.rate < total) {
            return Vec::new();
        }
        let share = |q: u64, x: u64| x / total + u64::from(q < x % total);
        let rate = self.pace.as_ref().map(|p| p.rate);
        let count = self.remaining;
        let queues = (1..total)
            .map(|q| {
                Box::new(GenPort {
                    name: format!("{} queue {q}", self.name),
                    template: self.template.clone(),
                    next_flow: q as u32,
                    first_flow: q as u32,
                    stride: total as u32,
                    pace: rate.map(|r| Pace::new(share(q, r))),
                    remaining: count.map(|c| share(q, c)),
                    stats: PortStats::default(),
                    bad: BadBuffers::default(),
                    ..*self
                }) as Box<dyn Port>
            })
            .collect();
        self.stride = total as u32;
        self.pace = rate.map(|r| Pace::new(share(0, r)));
        self.remaining = count.map(|c| share(0, c));
        queues
    }

    fn rx_done(&self) -> bool {
        self.remaining == Some(0) || self.first_flow >= self.flows
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;
    use std::time::Duration;

    use etherparse::{NetSlice, SlicedPacket, TransportSlice};

    use super::*;
    use crate::testutil;

    fn spec(frame_size: u16, flows: u32, rate_pps: Option<u64>) -> GenSpec {
        GenSpec {
            frame_size,
            flows,
            rate_pps,
            count: None,
        }
    }

    /// (source address, source port) of a valid UDP/IPv4 frame, checksums checked.
    fn tuple(frame: &[u8]) -> ([u8; 4], u16) {
        let p = SlicedPacket::from_ethernet(frame).unwrap();
        let Some(NetSlice::Ipv4(ip)) = &p.net else {
            panic!("not IPv4")
        };
        let h = ip.header().to_header();
        assert_eq!(h.header_checksum, h.calc_header_checksum());
        let Some(TransportSlice::Udp(udp)) = &p.transport else {
            panic!("not UDP")
        };
        let uh = udp.to_header();
        assert_eq!(uh.checksum, uh.calc_checksum_ipv4(&h, udp.payload()).unwrap());
        (h.source, uh.source_port)
    }

    #[test]
    fn generates_the_flows_in_order_with_valid_headers() {
        let (_r, mut pool) = testutil::pool(256, 2048);
        let mut port = GenPort::new(&spec(64, 5, None), 3, None);
        assert_eq!(port.name(), "gen:64B,5flows");
        let mut out = Vec::new();
        assert_eq!(port.rx_burst(&mut pool, &mut out, 32), 32);
        for b in &out {
            assert_eq!(pool.holder().meta(b).in_port(), 3);
            assert!(pool.holder().meta(b).timestamp() > 0);
        }
        let frames = testutil::take(&mut pool, &mut out);
        let mut seen = HashSet::new();
        for (n, f) in frames.iter().enumerate() {
            assert_eq!(f.len(), 60);
            assert_eq!(*f, build_frame(64, 3, n as u32 % 5), "packet {n}");
            seen.insert(tuple(f));
        }
        assert_eq!(seen.len(), 5);
        let s = port.stats();
        assert_eq!((s.rx, s.rx_bytes, s.rx_drop, s.errors), (32, 32 * 60, 0, 0));
        assert!(!port.rx_done());
        testutil::assert_whole(&pool);
    }

    #[test]
    fn fast_path_matches_packet_builder_for_many_flows_and_sizes() {
        for size in [64u16, 65, 128, 1518] {
            let port = GenPort::new(&spec(size, u32::MAX, None), 0, None);
            let flows = (0..300u32).chain([65535, 65536, 65537, 1 << 20, 4_000_000_000, u32::MAX]);
            for i in flows {
                let mut f = port.template.clone();
                port.patch(&mut f, i);
                assert_eq!(f, build_frame(size, 0, i), "size {size}, flow {i}");
                assert_eq!(tuple(&f), flow_tuple(i));
            }
        }
    }

    #[test]
    fn many_flows_are_distinct() {
        let (_r, mut pool) = testutil::pool(512, 2048);
        let mut port = GenPort::new(&spec(128, 1000, None), 0, None);
        let mut seen = HashSet::new();
        let mut out = Vec::new();
        for _ in 0..4 {
            port.rx_burst(&mut pool, &mut out, 500);
            for f in testutil::take(&mut pool, &mut out) {
                assert_eq!(f.len(), 124);
                seen.insert(tuple(&f));
            }
        }
        assert_eq!(seen.len(), 1000);
        testutil::assert_whole(&pool);
    }

    #[test]
    fn queues_split_the_flows_the_rate_and_the_count() {
        let (_r, mut pool) = testutil::pool(256, 2048);
        let mut port = GenPort::new(&spec(64, 5, None), 2, Some(10));
        let mut qs = port.queues(2);
        assert_eq!(qs.len(), 2);
        assert_eq!(qs[1].name(), "gen:64B,5flows,count=10 queue 2");
        assert!(port.queues(1).is_empty(), "split once");
        // Queue q generates flows q, q + 3, ... and its share of the 10 packets.
        let mut expect = |p: &mut dyn Port, flows: &[u32], count: usize| {
            let mut out = Vec::new();
            assert_eq!(p.rx_burst(&mut pool, &mut out, 32), count);
            assert_eq!(p.rx_burst(&mut pool, &mut out, 32), 0);
            assert!(p.rx_done());
            let frames = testutil::take(&mut pool, &mut out);
            for (n, f) in frames.iter().enumerate() {
                assert_eq!(*f, build_frame(64, 2, flows[n % flows.len()]), "packet {n}");
            }
        };
        expect(&mut port, &[0, 3], 4);
        expect(qs[0].as_mut(), &[1, 4], 3);
        expect(qs[1].as_mut(), &[2], 3);
        testutil::assert_whole(&pool);
        // More queues than flows: the extra ones never generate and are done at once.
        let mut two = GenPort::new(&spec(64, 1, None), 0, None);
        let mut qs = two.queues(1);
        let mut out = Vec::new();
        assert_eq!(qs[0].rx_burst(&mut pool, &mut out, 32), 0);
        assert!(qs[0].rx_done() && !two.rx_done());
        // A rate is shared too: 3 queues of 3000 pps, each its third.
        let mut paced = GenPort::new(&spec(64, 8, Some(3000)), 0, None);
        let qs = paced.queues(2);
        assert_eq!(qs.len(), 2);
        assert_eq!(paced.pace.as_ref().map(|p| p.rate), Some(1000));
        assert!(
            GenPort::new(&spec(64, 8, Some(2)), 0, None).queues(2).is_empty(),
            "2 pps for 3 queues"
        );
    }

    #[test]
    fn count_stops_the_generator() {
        let (_r, mut pool) = testutil::pool(64, 2048);
        let mut port = GenPort::new(&spec(64, 2, None), 0, Some(70));
        assert_eq!(port.name(), "gen:64B,2flows,count=70");
        // As `open` makes it (the count in the spec too): named once, not twice.
        let mut counted = spec(64, 2, None);
        counted.count = Some(70);
        assert_eq!(
            GenPort::new(&counted, 0, counted.count).name(),
            "gen:64B,2flows,count=70"
        );
        let mut out = Vec::new();
        let mut total = 0;
        for _ in 0..10 {
            total += port.rx_burst(&mut pool, &mut out, 32);
            testutil::take(&mut pool, &mut out);
        }
        assert_eq!(total, 70);
        assert!(port.rx_done());
        assert_eq!(port.stats().rx, 70);
        testutil::assert_whole(&pool);
    }

    #[test]
    fn an_empty_pool_shortens_bursts_without_drops_unless_rate_limited() {
        let (_r, mut pool) = testutil::pool(10, 2048);
        let mut port = GenPort::new(&spec(64, 1, None), 0, None);
        let mut out = Vec::new();
        assert_eq!(port.rx_burst(&mut pool, &mut out, 32), 10);
        assert_eq!(port.rx_burst(&mut pool, &mut out, 32), 0);
        assert_eq!(port.stats().rx_drop, 0);

        // The pool is empty; a rate-limited generator drops what its rate allowed.
        let mut limited = GenPort::new(&spec(64, 1, Some(1_000_000)), 0, None);
        std::thread::sleep(Duration::from_millis(2));
        assert_eq!(limited.rx_burst(&mut pool, &mut Vec::new(), 32), 0);
        assert_eq!(limited.stats().rx_drop, 32);
        testutil::take(&mut pool, &mut out);
        testutil::assert_whole(&pool);
    }

    #[test]
    fn frames_bigger_than_the_buffers_are_errors() {
        let (_r, mut pool) = testutil::pool(16, 1024);
        let mut port = GenPort::new(&spec(1518, 1, None), 0, None);
        let mut out = Vec::new();
        assert_eq!(port.rx_burst(&mut pool, &mut out, 8), 0);
        assert!(out.is_empty());
        assert_eq!(port.stats().errors, 8);
        testutil::assert_whole(&pool);
    }

    /// An NF with a stale pointer writes garbage into every buffer's metadata line, free
    /// ones included, while the generator fills buffers: no panic, every frame whole.
    #[test]
    fn a_scribbled_metadata_line_does_not_stop_the_generator() {
        let (r, mut pool) = testutil::pool(64, 2048);
        let mut port = GenPort::new(&spec(64, 4, None), 0, None);
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let scribbler = {
            let (r, stop) = (r.clone(), stop.clone());
            std::thread::spawn(move || {
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    for i in 1..=r.buffers() {
                        scribble(&r, i);
                    }
                }
            })
        };
        let mut out = Vec::new();
        for _ in 0..2000 {
            assert_eq!(port.rx_burst(&mut pool, &mut out, 32), 32);
            for b in out.drain(..) {
                pool.free(b);
            }
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        scribbler.join().unwrap();
        assert_eq!(port.stats().errors, 0);
        testutil::assert_whole(&pool);
    }

    /// Length and offset of buffer `i` far outside its slot, as a peer could write them.
    fn scribble(r: &onvm_shm::Region, i: u32) {
        let line = r.meta(r.buf_idx(i).unwrap()) as *const onvm_shm::PktMeta as *const std::sync::atomic::AtomicU32;
        // Words 1 and 2 of the line are the length and data offset (atomics, so a racy
        // write from here is what a peer process would do).
        // SAFETY: the line is 64 bytes of atomics inside the live mapping `r` keeps.
        unsafe {
            (*line.add(1)).store(0xffff_fff0, std::sync::atomic::Ordering::Relaxed);
            (*line.add(2)).store(0x7fff_ffff, std::sync::atomic::Ordering::Relaxed);
        }
    }

    #[test]
    fn rate_is_roughly_honoured() {
        let (_r, mut pool) = testutil::pool(256, 2048);
        let rate = 20_000;
        let depth = (rate / 100).max(32);
        let mut port = GenPort::new(&spec(64, 1, Some(rate)), 0, None);
        // A quarter of the rate over 200 ms. The bucket holds 10 ms of packets, so time
        // this thread spends without a core (a busy machine) is time without packets:
        // poll for 200 ms at least, and on until that many came out (20 s at most).
        let want = rate / 20;
        let t0 = Instant::now();
        let mut out = Vec::new();
        let mut total = 0u64;
        while (t0.elapsed() < Duration::from_millis(200) || total < want) && t0.elapsed() < Duration::from_secs(20) {
            total += port.rx_burst(&mut pool, &mut out, 32) as u64;
            testutil::take(&mut pool, &mut out);
            // Never ahead of the rate, at any moment (however the thread was scheduled).
            let el = t0.elapsed().as_secs_f64();
            assert!(
                total as f64 <= rate as f64 * el + depth as f64,
                "{total} packets in {el:.3}s at {rate}/s"
            );
            std::thread::sleep(Duration::from_micros(200));
        }
        let el = t0.elapsed().as_secs_f64();
        assert!(total >= want, "only {total} packets in {el:.3}s at {rate}/s");
        assert_eq!(port.stats().rx_drop, 0);
        testutil::assert_whole(&pool);
    }

    /// Not a check, a measurement: `cargo test -p onvm-ports --release -- --ignored --nocapture`.
    #[test]
    #[ignore]
    fn throughput() {
        let (_r, mut pool) = testutil::pool(4096, 2048);
        let mut port = GenPort::new(&spec(64, 1000, None), 0, None);
        let mut out = Vec::with_capacity(32);
        let t0 = Instant::now();
        let mut n = 0u64;
        while t0.elapsed() < Duration::from_secs(1) {
            for _ in 0..1000 {
                n += port.rx_burst(&mut pool, &mut out, 32) as u64;
                for b in out.drain(..) {
                    pool.free(b);
                }
            }
        }
        println!("generator: {:.1} Mpps", n as f64 / t0.elapsed().as_secs_f64() / 1e6);
        testutil::assert_whole(&pool);
    }
}
