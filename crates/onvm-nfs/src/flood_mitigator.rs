//! UDP flood and DNS amplification mitigation.
//!
//! Every UDP packet counts toward its destination's rate over a `--window` of seconds.
//! A destination that receives more than `--udp-threshold` packets per second on
//! average within a window is *under attack* from that packet until the end of the
//! next window: UDP to it is dropped (`dropped_flood`), except DNS responses that answer
//! a query seen leaving. DNS queries (UDP to port 53, QR bit clear) from addresses
//! inside `--inside PREFIX` (repeatable) are remembered by client address and port,
//! server address and query ID for `--dns-timeout` seconds; a DNS response (UDP from
//! port 53, QR bit set) that matches one passes (once), whatever the rate. A response
//! that matches none is unsolicited: dropped when its destination is under attack,
//! and always with `--dns-strict` (`dropped_unsolicited_dns`: the amplification
//! case). Everything else passes (`passed`) to `-d SERVICE` or the chain's next hop.
//!
//! DNS headers are read defensively: a "response" whose UDP payload is shorter than
//! the 12-byte header cannot match and is unsolicited; nothing else of the message is
//! read. Tables are bounded (`--max-tracked`, for destinations and for queries); when
//! full, a new destination is not rated (counted `untracked`) and a new query is not
//! remembered (its answer will be unsolicited).
//!
//! openNetVM has these NFs only as generated C++ (NFD's `udp_flood_mitigation` and
//! `dns_amplification_mitigation`); here they are one NF.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::Duration;

use onvm_nf::{Action, Batch, Ctx, Handler, Nf, NfBuilder};
use onvm_packet::Headers;

use crate::catalogue::{Catalogued, Launched, check_service};
use crate::net::{Prefix, PrefixError};
use crate::now_ns;
use crate::tbf::launch_ticking;

/// Parse `--inside`'s `ADDR/LEN` (or a bare address, or `ADDR/`: a host).
pub fn parse_prefix(s: &str) -> Result<Prefix, String> {
    let t = s.strip_suffix('/').filter(|t| !t.contains('/')).unwrap_or(s);
    Prefix::parse_text(t).map_err(|e| match e {
        PrefixError::Addr(a) => format!("bad address {a:?}"),
        PrefixError::Len(l, _) => format!("bad prefix length {l:?}"),
    })
}

/// A DNS query in flight: client address and port, server address, ID.
type Query = (IpAddr, u16, IpAddr, u16);

/// What the mitigator counted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// Packets passed on.
    pub passed: u64,
    /// UDP packets dropped because their destination is under attack.
    pub dropped_flood: u64,
    /// DNS responses that answer no query seen, dropped.
    pub dropped_unsolicited_dns: u64,
    /// DNS queries remembered.
    pub queries: u64,
    /// DNS responses that matched a query.
    pub answered: u64,
    /// Packets to destinations not rated (table full).
    pub untracked: u64,
    /// Destinations found under attack (once per window each).
    pub attacks: u64,
}

/// A destination's packet counts: this window, last window; whether it was found
/// under attack this window and last.
#[derive(Debug, Clone, Copy, Default)]
struct Rate {
    cur: u64,
    attacked_now: bool,
    attacked_before: bool,
}

/// The NF.
#[derive(Debug)]
pub struct FloodMitigator {
    /// Where passed packets go.
    pub out: Action,
    /// Packets per window over which a destination is under attack.
    pub per_window: u64,
    /// Window length.
    pub window: Duration,
    /// Prefixes whose DNS queries are remembered.
    pub inside: Vec<Prefix>,
    /// Drop every unsolicited DNS response.
    pub strict: bool,
    /// How long a query waits for its answer.
    pub dns_timeout: Duration,
    /// Table bound.
    pub max_tracked: usize,
    /// The clock (nanoseconds); the real monotonic clock but in tests.
    pub clock: fn() -> u64,
    /// What it counted.
    pub counts: Counts,
    rates: HashMap<IpAddr, Rate>,
    queries: HashMap<Query, u64>,
    window_start: Option<u64>,
    now: u64,
}

/// The DNS header facts used: ID and whether it is a response. `None` if shorter than
/// a header.
pub fn dns_header(payload: &[u8]) -> Option<(u16, bool)> {
    let h = payload.get(..12)?;
    Some((u16::from_be_bytes([h[0], h[1]]), h[2] & 0x80 != 0))
}

impl FloodMitigator {
    /// End the window if it is over; forget old queries.
    fn roll(&mut self, now: u64) {
        self.now = now;
        let start = *self.window_start.get_or_insert(now);
        if now.saturating_sub(start) < self.window.as_nanos() as u64 {
            return;
        }
        self.window_start = Some(now);
        self.rates.retain(|_, r| {
            r.attacked_before = r.attacked_now;
            r.attacked_now = false;
            let keep = r.cur > 0 || r.attacked_before;
            r.cur = 0;
            keep
        });
        let timeout = self.dns_timeout.as_nanos() as u64;
        self.queries.retain(|_, t| now.saturating_sub(*t) < timeout);
    }

    /// Count a UDP packet to `dst`; whether `dst` is under attack now.
    fn rate(&mut self, dst: IpAddr) -> bool {
        let full = self.rates.len() >= self.max_tracked;
        let r = match self.rates.get_mut(&dst) {
            Some(r) => r,
            None if full => {
                self.counts.untracked += 1;
                return false;
            }
            None => self.rates.entry(dst).or_default(),
        };
        r.cur += 1;
        if r.cur > self.per_window && !r.attacked_now {
            r.attacked_now = true;
            self.counts.attacks += 1;
        }
        r.attacked_now || r.attacked_before
    }

    /// The action for one frame.
    pub fn decide(&mut self, frame: &[u8]) -> Action {
        let Ok(h) = Headers::parse(frame) else {
            return self.pass();
        };
        let (Some(u), Some(src), Some(dst)) = (h.udp(), h.src_ip(), h.dst_ip()) else {
            return self.pass();
        };
        let (sport, dport) = (u.source_port(), u.destination_port());
        let attacked = self.rate(dst);
        let dns = dns_header(h.payload());
        if dport == 53
            && let Some((id, false)) = dns
            && self.inside.iter().any(|p| p.contains_ip(src))
        {
            if self.queries.len() < self.max_tracked || self.queries.contains_key(&(src, sport, dst, id)) {
                self.queries.insert((src, sport, dst, id), self.now);
                self.counts.queries += 1;
            }
        } else if sport == 53 && !matches!(dns, Some((_, false))) {
            // A response, or too short to tell: it must answer a query.
            let answered = dns.is_some_and(|(id, _)| self.queries.remove(&(dst, dport, src, id)).is_some());
            if answered {
                self.counts.answered += 1;
                return self.pass();
            }
            if self.strict || attacked {
                self.counts.dropped_unsolicited_dns += 1;
                return Action::Drop;
            }
            return self.pass();
        }
        if attacked {
            self.counts.dropped_flood += 1;
            return Action::Drop;
        }
        self.pass()
    }

    fn pass(&mut self) -> Action {
        self.counts.passed += 1;
        self.out
    }
}

impl Handler for FloodMitigator {
    fn batch(&mut self, batch: &mut Batch<'_>, _ctx: &mut Ctx<'_>) {
        self.roll((self.clock)());
        batch.map(|p| self.decide(p.data()));
    }

    fn tick(&mut self, _ctx: &mut Ctx<'_>) {
        self.roll((self.clock)());
    }
}

/// `onvm nf flood-mitigator --udp-threshold PPS [--window S] [--inside PREFIX]… [--dns-strict]`.
#[derive(clap::Args, Debug, Clone)]
pub struct Args {
    /// Destination service of passed packets (default: the chain's next hop).
    #[arg(short = 'd', long)]
    pub dest: Option<u16>,
    /// UDP packets per second to one destination above which it is under attack.
    #[arg(long, default_value_t = 100_000.0)]
    pub udp_threshold: f64,
    /// Window over which the rate is measured, in seconds.
    #[arg(long, default_value_t = 1.0)]
    pub window: f64,
    /// A prefix whose DNS queries are remembered (repeatable).
    #[arg(long)]
    pub inside: Vec<String>,
    /// Drop every DNS response that answers no query seen.
    #[arg(long)]
    pub dns_strict: bool,
    /// Seconds a DNS query waits for its answer.
    #[arg(long, default_value_t = 5.0)]
    pub dns_timeout: f64,
    /// Most destinations rated and most queries remembered.
    #[arg(long, default_value_t = 65_536)]
    pub max_tracked: usize,
}

impl Catalogued for Args {
    const NAME: &'static str = "flood_mitigator";
    type Nf = FloodMitigator;

    fn build(&self) -> Result<FloodMitigator, String> {
        let out = match self.dest {
            Some(d) => Action::ToService(check_service("--dest", d)?),
            None => Action::Next,
        };
        let secs = |flag: &str, v: f64| {
            if v.is_finite() && (0.001..=86_400.0).contains(&v) {
                Ok(Duration::from_secs_f64(v))
            } else {
                Err(format!("{flag} {v}: out of range, must be 0.001..=86400 seconds"))
            }
        };
        let window = secs("--window", self.window)?;
        let dns_timeout = secs("--dns-timeout", self.dns_timeout)?;
        if !(self.udp_threshold.is_finite() && self.udp_threshold >= 0.0) {
            return Err(format!(
                "--udp-threshold {}: must be a number of packets per second",
                self.udp_threshold
            ));
        }
        let inside = self
            .inside
            .iter()
            .map(|s| parse_prefix(s).map_err(|e| format!("--inside {s}: {e}")))
            .collect::<Result<Vec<_>, _>>()?;
        if !(1..=1 << 24).contains(&self.max_tracked) {
            return Err(format!(
                "--max-tracked {}: out of range, must be 1..=16777216",
                self.max_tracked
            ));
        }
        Ok(FloodMitigator {
            out,
            per_window: (self.udp_threshold * window.as_secs_f64()) as u64,
            window,
            inside,
            strict: self.dns_strict,
            dns_timeout,
            max_tracked: self.max_tracked,
            clock: now_ns,
            counts: Counts::default(),
            rates: HashMap::new(),
            queries: HashMap::new(),
            window_start: None,
            now: 0,
        })
    }

    fn report(nf: &FloodMitigator) -> Option<String> {
        let c = nf.counts;
        Some(format!(
            "flood_mitigator: passed {}, dropped_flood {}, dropped_unsolicited_dns {}, queries {}, answered {}, attacks {}, untracked {}",
            c.passed, c.dropped_flood, c.dropped_unsolicited_dns, c.queries, c.answered, c.attacks, c.untracked
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

    fn fm(flags: &[&str]) -> FloodMitigator {
        let mut f = crate::parse_flags::<Args>(flags).unwrap().build().unwrap();
        f.clock = fake_now;
        f
    }

    fn udp(src: [u8; 4], sport: u16, dst: [u8; 4], dport: u16, payload: &[u8]) -> Vec<u8> {
        onvm_packet::UdpSpec {
            payload,
            ..onvm_packet::UdpSpec::new(src, dst, sport, dport)
        }
        .to_vec()
        .unwrap()
    }

    fn dns(id: u16, response: bool) -> Vec<u8> {
        let mut m = id.to_be_bytes().to_vec();
        m.extend_from_slice(&[if response { 0x81 } else { 0x01 }, 0x80, 0, 1, 0, 0, 0, 0, 0, 0]);
        m.extend_from_slice(b"\x07example\x03com\x00\x00\x01\x00\x01");
        m
    }

    const CLIENT: [u8; 4] = [192, 168, 1, 10];
    const VICTIM: [u8; 4] = [192, 168, 1, 20];
    const RESOLVER: [u8; 4] = [8, 8, 8, 8];

    #[test]
    fn a_flood_is_dropped_and_the_answer_to_a_query_still_passes() {
        set_now(0);
        let mut f = fm(&["--udp-threshold", "10", "--window", "1", "--inside", "192.168.1.0/24"]);
        let mut off = Offline::new().unwrap();
        let mut sim = off.start(&mut f);
        let mut frames = vec![udp(VICTIM, 4000, RESOLVER, 53, &dns(7, false))];
        frames.extend((0..15).map(|i| udp([1, 2, 3, i], 999, VICTIM, 4000, b"junk")));
        // Amplified answers nobody asked for, then the real answer.
        frames.extend((0..3).map(|i| udp([9, 9, 9, i], 53, VICTIM, 4000, &dns(100 + u16::from(i), true))));
        frames.push(udp(RESOLVER, 53, VICTIM, 4000, &dns(7, true)));
        // Its second copy is unsolicited.
        frames.push(udp(RESOLVER, 53, VICTIM, 4000, &dns(7, true)));
        let out = sim.frames(&mut f, 0, &frames).unwrap();
        let acts: Vec<bool> = out.iter().map(|s| s.action == Action::Next).collect();
        let mut want = vec![true; 11];
        want.extend([false; 5 + 3]);
        want.extend([true, false]);
        assert_eq!(acts, want);
        assert_eq!(
            f.counts,
            Counts {
                passed: 12,
                dropped_flood: 5,
                dropped_unsolicited_dns: 4,
                queries: 1,
                answered: 1,
                attacks: 1,
                untracked: 0,
            }
        );
        // Still under attack through the next window, then not.
        set_now(1_500_000_000);
        sim.tick(&mut f);
        let one = [udp([1, 2, 3, 4], 999, VICTIM, 4000, b"x")];
        assert_eq!(sim.frames(&mut f, 0, &one).unwrap()[0].action, Action::Drop);
        set_now(3_000_000_000);
        sim.tick(&mut f);
        assert_eq!(sim.frames(&mut f, 0, &one).unwrap()[0].action, Action::Next);
    }

    #[test]
    fn strict_mode_drops_unsolicited_answers_and_outsiders_queries_are_not_remembered() {
        set_now(0);
        let mut f = fm(&["--inside", "192.168.1.0/24", "--dns-strict", "-d", "4"]);
        let mut off = Offline::new().unwrap();
        let mut sim = off.start(&mut f);
        let frames = vec![
            udp([172, 16, 0, 1], 5000, RESOLVER, 53, &dns(1, false)),
            udp(RESOLVER, 53, [172, 16, 0, 1], 5000, &dns(1, true)),
            udp(CLIENT, 5000, RESOLVER, 53, &dns(2, false)),
            // Wrong port, wrong server, wrong ID: unsolicited.
            udp(RESOLVER, 53, CLIENT, 5001, &dns(2, true)),
            udp([8, 8, 4, 4], 53, CLIENT, 5000, &dns(2, true)),
            udp(RESOLVER, 53, CLIENT, 5000, &dns(3, true)),
            // Too short for a header.
            udp(RESOLVER, 53, CLIENT, 5000, &[0x81; 5]),
            udp(RESOLVER, 53, CLIENT, 5000, &dns(2, true)),
        ];
        let out = sim.frames(&mut f, 0, &frames).unwrap();
        let acts: Vec<Action> = out.iter().map(|s| s.action).collect();
        let (p, d) = (Action::ToService(4), Action::Drop);
        assert_eq!(acts, [p, d, p, d, d, d, d, p]);
        // Queries are forgotten after the timeout.
        sim.frames(&mut f, 0, &[udp(CLIENT, 6000, RESOLVER, 53, &dns(9, false))])
            .unwrap();
        set_now(10_000_000_000);
        sim.tick(&mut f);
        let late = sim
            .frames(&mut f, 0, &[udp(RESOLVER, 53, CLIENT, 6000, &dns(9, true))])
            .unwrap();
        assert_eq!(late[0].action, Action::Drop);
    }

    #[test]
    fn prefixes_and_bad_flags() {
        let p = parse_prefix("10.1.0.0/16").unwrap();
        assert!(p.contains_ip("10.1.200.3".parse().unwrap()) && !p.contains_ip("10.2.0.1".parse().unwrap()));
        assert!(
            parse_prefix("0.0.0.0/0")
                .unwrap()
                .contains_ip("1.2.3.4".parse().unwrap())
        );
        assert!(
            parse_prefix("fd00::/8")
                .unwrap()
                .contains_ip("fd12::1".parse().unwrap())
        );
        assert!(
            !parse_prefix("fd00::/8")
                .unwrap()
                .contains_ip("10.0.0.1".parse().unwrap())
        );
        let e = |f: &[&str]| crate::parse_flags::<Args>(f).unwrap().build().unwrap_err();
        assert_eq!(
            e(&["--inside", "10.0.0/33"]),
            "--inside 10.0.0/33: bad address \"10.0.0\""
        );
        assert_eq!(
            e(&["--inside", "10.0.0.0/33"]),
            "--inside 10.0.0.0/33: bad prefix length \"33\""
        );
        assert!(e(&["--window", "0"]).contains("--window 0"));
        assert!(e(&["--udp-threshold", "NaN"]).contains("--udp-threshold NaN"));
        assert!(e(&["--max-tracked", "0"]).contains("--max-tracked 0"));
    }

    #[test]
    fn tables_are_bounded_and_malformed_frames_pass() {
        set_now(0);
        let mut f = fm(&["--udp-threshold", "0", "--max-tracked", "2", "--inside", "0.0.0.0/0"]);
        let mut off = Offline::new().unwrap();
        let mut sim = off.start(&mut f);
        let frames: Vec<Vec<u8>> = (0..5).map(|i| udp(CLIENT, 1, [10, 0, 0, i], 2, b"")).collect();
        let out = sim.frames(&mut f, 0, &frames).unwrap();
        // Threshold 0: the first packet to a rated destination is already too many.
        assert_eq!(out.iter().filter(|s| s.action == Action::Drop).count(), 2);
        assert_eq!(f.counts.untracked, 3);
        let good = udp(RESOLVER, 53, CLIENT, 5000, &dns(2, true));
        let mut frames = prefixes(&good);
        let mut bad = good.clone();
        bad[16..18].copy_from_slice(&20u16.to_be_bytes());
        frames.push(bad);
        frames.extend(garbage(40));
        assert_eq!(sim.frames(&mut f, 0, &frames).unwrap().len(), frames.len());
    }
}
