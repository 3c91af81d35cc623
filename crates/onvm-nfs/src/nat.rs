//! NAT44: source NAT for an inside network behind one public IPv4 address, with port
//! allocation, static destination NAT rules, and both directions on one instance.
//!
//! Packets arriving on `--inside-port N` (default 0) are outbound, all others inbound
//! (direction by arrival port, as in [`stateful_firewall`](crate::stateful_firewall)).
//!
//! - Outbound TCP/UDP from an `--inside PREFIX` source (repeatable, IPv4) gets its source
//!   address rewritten to `--public IP` and its source port to one allocated from
//!   `--ports LO-HI` (default 1024-65535). Each protocol has its own pool; a mapping is
//!   endpoint-independent (RFC 4787: one inside address and port keep one public port,
//!   whatever the destination) and its port is not reused while it lives. ICMP echo
//!   requests are mapped the same way by their identifier.
//! - Inbound packets to the public address are translated back by their destination
//!   port (ICMP echo replies by identifier) if a mapping exists: filtering is
//!   endpoint-independent too (a "full cone"; put a
//!   [`stateful_firewall`](crate::stateful_firewall) in front for filtering). Without a
//!   mapping they are dropped (`no_mapping`).
//! - `--forward PROTO:PUBPORT=IP:PORT` (repeatable; tcp or udp) is a static DNAT rule:
//!   inbound to PUBPORT goes to IP:PORT, and that server's outbound replies leave from
//!   PUBPORT. Its port is never allocated dynamically.
//! - Mappings expire when idle: TCP after `--tcp-timeout` (default 7440 s, RFC 5382's
//!   2 h 4 min) once answered and not closing, else after `--tcp-transitory-timeout`
//!   (240 s: before an answer, after both FINs or an RST); UDP after `--udp-timeout`
//!   (300 s, RFC 4787); ICMP after `--icmp-timeout` (60 s, RFC 5508). Expired mappings are
//!   removed on the tick (`expired`) and their ports go to the back of the pool, so the
//!   longest-free port is reused first. A pool with no free port drops the packet
//!   (`no_ports`).
//! - The IPv4 header checksum, the TCP/UDP checksum (its pseudo-header holds the
//!   addresses) and the ICMP checksum are patched incrementally
//!   ([`onvm_packet::set_ip`], [`onvm_packet::set_port`], [`onvm_packet::recalc_csum16`]);
//!   a UDP checksum of 0 stays 0.
//!
//! Non-IP frames (ARP) pass unchanged (`passed`). Dropped as `dropped`: IPv6, IPv4 from
//! the inside whose source is not inside, malformed IP, fragments (no ports to map),
//! ICMP other than echo (errors would need their inner header translated) and other
//! protocols. Passed packets go to `--to-outside DEST` (outbound) or `--to-inside DEST`
//! (inbound): `next` (default), `out:PORT` or `service:ID`.
//!
//! openNetVM has no NAT among its examples (only the generated `NFD/napt`, without
//! timeouts or pools).

use std::collections::VecDeque;
use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

use onvm_nf::{Action, Batch, Ctx, Handler, PacketMut};
use onvm_packet::layout::{IP_PROTO_ICMP, IP_PROTO_TCP, IP_PROTO_UDP};
use onvm_packet::{recalc_csum16, set_ip, set_port};
use rustc_hash::FxHashMap;

use crate::catalogue::Catalogued;
use crate::net::{Ip, Prefix, be16};
use crate::netarg::{Dest, prefixes};

/// Pool index of a protocol: TCP 0, UDP 1, ICMP 2.
fn pool_of(proto: u8) -> Option<usize> {
    match proto {
        IP_PROTO_TCP => Some(0),
        IP_PROTO_UDP => Some(1),
        IP_PROTO_ICMP => Some(2),
        _ => None,
    }
}

/// TCP bits a mapping remembers.
const REPLIED: u8 = 1;
const FIN_OUT: u8 = 2;
const FIN_IN: u8 = 4;
const RST_SEEN: u8 = 8;

#[derive(Debug, Clone, Copy)]
struct Mapping {
    ip: [u8; 4],
    port: u16,
    /// Nanoseconds since start; `u64::MAX` for a static rule.
    expires: u64,
    tcp: u8,
}

/// Timeouts of mappings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// TCP, answered and not closing.
    pub tcp: Duration,
    /// TCP before an answer or after closing.
    pub tcp_transitory: Duration,
    /// UDP.
    pub udp: Duration,
    /// ICMP echo.
    pub icmp: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            tcp: Duration::from_secs(7440),
            tcp_transitory: Duration::from_secs(240),
            udp: Duration::from_secs(300),
            icmp: Duration::from_secs(60),
        }
    }
}

/// The NAT's configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// The public address.
    pub public: [u8; 4],
    /// Inside prefixes (IPv4).
    pub inside: Vec<Prefix>,
    /// Packets arriving on this port are outbound.
    pub inside_port: u16,
    /// Port pool (inclusive).
    pub ports: (u16, u16),
    /// Static rules: (protocol, public port, inside address, inside port).
    pub forwards: Vec<(u8, u16, [u8; 4], u16)>,
    /// Timeouts.
    pub timeouts: Timeouts,
    /// Where outbound packets go.
    pub to_outside: Action,
    /// Where inbound packets go.
    pub to_inside: Action,
}

/// What the NAT counted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// Mappings made.
    pub translations: u64,
    /// Outbound packets translated.
    pub out: u64,
    /// Inbound packets translated.
    pub inbound: u64,
    /// Mappings expired.
    pub expired: u64,
    /// Packets dropped for want of a free port.
    pub no_ports: u64,
    /// Inbound packets dropped without a mapping.
    pub no_mapping: u64,
    /// Other packets dropped (see the module docs).
    pub dropped: u64,
    /// Non-IP frames passed unchanged.
    pub passed: u64,
}

/// The NAT. See the [module docs](self).
#[derive(Debug)]
pub struct Nat {
    cfg: Config,
    /// Per pool, the mapping of each public port.
    slots: [Vec<Option<Mapping>>; 3],
    /// (pool, inside address, inside port) → public port.
    by_inside: FxHashMap<(usize, [u8; 4], u16), u16>,
    /// Per pool, the free public ports, longest free first.
    free: [VecDeque<u16>; 3],
    started: Instant,
    /// Counts so far.
    pub counts: Counts,
}

impl Nat {
    /// A NAT for `cfg`: its tables are allocated here, once.
    pub fn new(cfg: Config) -> Nat {
        let mut slots: [Vec<Option<Mapping>>; 3] = std::array::from_fn(|_| vec![None; 65536]);
        let mut by_inside = FxHashMap::default();
        let (lo, hi) = cfg.ports;
        by_inside.reserve(3 * (usize::from(hi - lo) + 1) + cfg.forwards.len());
        for &(proto, pubport, ip, port) in &cfg.forwards {
            let Some(p) = pool_of(proto) else { continue };
            slots[p][usize::from(pubport)] = Some(Mapping {
                ip,
                port,
                expires: u64::MAX,
                tcp: REPLIED,
            });
            by_inside.insert((p, ip, port), pubport);
        }
        let free = std::array::from_fn(|p| {
            (lo..=hi)
                .filter(|&port| slots[p][usize::from(port)].is_none())
                .collect()
        });
        Nat {
            cfg,
            slots,
            by_inside,
            free,
            started: Instant::now(),
            counts: Counts::default(),
        }
    }

    /// Live mappings (static rules included).
    pub fn mappings(&self) -> usize {
        self.by_inside.len()
    }

    fn now(&self) -> u64 {
        self.started.elapsed().as_nanos() as u64
    }

    fn timeout(&self, pool: usize, tcp: u8) -> u64 {
        let t = &self.cfg.timeouts;
        let d = match pool {
            0 if tcp & RST_SEEN != 0 || tcp & (FIN_IN | FIN_OUT) == FIN_IN | FIN_OUT || tcp & REPLIED == 0 => {
                t.tcp_transitory
            }
            0 => t.tcp,
            1 => t.udp,
            _ => t.icmp,
        };
        d.as_nanos() as u64
    }

    /// Translate one frame that arrived on `port` at `now` (ns since start): its action.
    pub fn process(&mut self, frame: &mut [u8], port: u16, now: u64) -> Action {
        let outbound = port == self.cfg.inside_port;
        let ip = match Ip::of(frame) {
            Ok(Some(ip)) => ip,
            Ok(None) => {
                self.counts.passed += 1;
                return if outbound {
                    self.cfg.to_outside
                } else {
                    self.cfg.to_inside
                };
            }
            Err(_) => return self.drop_other(),
        };
        if ip.v6 {
            return self.drop_other();
        }
        let Some(pool) = pool_of(ip.proto) else {
            return self.drop_other();
        };
        // Where the port (or echo identifier) to rewrite is, and the TCP flags.
        let (l4, need) = match pool {
            0 => (ip.l4_with(20), 20),
            1 => (ip.l4_with(8), 8),
            _ => (ip.l4_with(8), 8),
        };
        let Some(l4) = l4 else { return self.drop_other() };
        debug_assert!(l4 + need <= frame.len());
        let flags = if pool == 0 { frame[l4 + 13] } else { 0 };
        if pool == 2 {
            let want = if outbound { 8 } else { 0 };
            if frame[l4] != want {
                return if outbound {
                    self.drop_other()
                } else {
                    self.drop_no_mapping()
                };
            }
        }
        if outbound {
            self.outbound(frame, &ip, pool, l4, flags, now)
        } else {
            self.inbound(frame, &ip, pool, l4, flags, now)
        }
    }

    fn drop_other(&mut self) -> Action {
        self.counts.dropped += 1;
        Action::Drop
    }

    fn drop_no_mapping(&mut self) -> Action {
        self.counts.no_mapping += 1;
        Action::Drop
    }

    fn outbound(&mut self, frame: &mut [u8], ip: &Ip, pool: usize, l4: usize, flags: u8, now: u64) -> Action {
        let src: [u8; 4] = [ip.src[0], ip.src[1], ip.src[2], ip.src[3]];
        if !self.cfg.inside.iter().any(|p| p.contains(&src)) {
            return self.drop_other();
        }
        // The inside port (TCP/UDP source port) or echo identifier.
        let sport = if pool == 2 {
            be16(frame, l4 + 4)
        } else {
            be16(frame, l4)
        };
        let key = (pool, src, sport);
        let mut public = self.by_inside.get(&key).copied();
        if let Some(p) = public
            && let Some(m) = self.slots[pool][usize::from(p)]
            && m.expires <= now
        {
            self.release(pool, p);
            public = None;
        }
        let public = match public {
            Some(p) => p,
            None => {
                let Some(p) = self.free[pool].pop_front() else {
                    self.counts.no_ports += 1;
                    return Action::Drop;
                };
                self.counts.translations += 1;
                self.by_inside.insert(key, p);
                self.slots[pool][usize::from(p)] = Some(Mapping {
                    ip: src,
                    port: sport,
                    expires: 0,
                    tcp: 0,
                });
                p
            }
        };
        let slot = usize::from(public);
        if let Some(m) = &mut self.slots[pool][slot] {
            if flags & 0x01 != 0 {
                m.tcp |= FIN_OUT;
            }
            if flags & 0x04 != 0 {
                m.tcp |= RST_SEEN;
            }
        }
        if let Some(m) = self.slots[pool][slot]
            && m.expires != u64::MAX
        {
            let t = self.timeout(pool, m.tcp);
            if let Some(m) = &mut self.slots[pool][slot] {
                m.expires = now + t;
            }
        }
        // The frame was checked to hold the IPv4 and L4 headers, so these succeed.
        let _ = set_ip(frame, true, IpAddr::V4(Ipv4Addr::from(self.cfg.public)));
        if pool == 2 {
            set_icmp_id(frame, l4, public);
        } else {
            let _ = set_port(frame, true, public);
        }
        self.counts.out += 1;
        self.cfg.to_outside
    }

    fn inbound(&mut self, frame: &mut [u8], ip: &Ip, pool: usize, l4: usize, flags: u8, now: u64) -> Action {
        if ip.dst[..4] != self.cfg.public {
            return self.drop_no_mapping();
        }
        let dport = if pool == 2 {
            be16(frame, l4 + 4)
        } else {
            be16(frame, l4 + 2)
        };
        let Some(m) = self.slots[pool][usize::from(dport)]
            .as_mut()
            .filter(|m| m.expires > now)
        else {
            return self.drop_no_mapping();
        };
        m.tcp |= REPLIED;
        if flags & 0x01 != 0 {
            m.tcp |= FIN_IN;
        }
        if flags & 0x04 != 0 {
            m.tcp |= RST_SEEN;
        }
        let (to_ip, to_port, tcp, fixed) = (m.ip, m.port, m.tcp, m.expires == u64::MAX);
        if !fixed {
            let t = self.timeout(pool, tcp);
            if let Some(m) = &mut self.slots[pool][usize::from(dport)] {
                m.expires = now + t;
            }
        }
        let _ = set_ip(frame, false, IpAddr::V4(Ipv4Addr::from(to_ip)));
        if pool == 2 {
            set_icmp_id(frame, l4, to_port);
        } else {
            let _ = set_port(frame, false, to_port);
        }
        self.counts.inbound += 1;
        self.cfg.to_inside
    }

    /// Free the mapping of `public` in `pool`.
    fn release(&mut self, pool: usize, public: u16) {
        if let Some(m) = self.slots[pool][usize::from(public)].take() {
            self.by_inside.remove(&(pool, m.ip, m.port));
            self.free[pool].push_back(public);
            self.counts.expired += 1;
        }
    }

    /// Remove the mappings expired at `now`.
    pub fn expire(&mut self, now: u64) {
        let (lo, hi) = self.cfg.ports;
        for pool in 0..3 {
            for port in lo..=hi {
                if self.slots[pool][usize::from(port)].is_some_and(|m| m.expires <= now) {
                    self.release(pool, port);
                }
            }
        }
    }
}

/// Set the ICMP echo identifier at `l4 + 4` (in bounds) and patch the ICMP checksum.
fn set_icmp_id(frame: &mut [u8], l4: usize, id: u16) {
    let old = be16(frame, l4 + 4);
    let sum = recalc_csum16(be16(frame, l4 + 2), old, id);
    frame[l4 + 2..l4 + 4].copy_from_slice(&sum.to_be_bytes());
    frame[l4 + 4..l4 + 6].copy_from_slice(&id.to_be_bytes());
}

impl Handler for Nat {
    fn packet(&mut self, pkt: &mut PacketMut<'_>, _ctx: &mut Ctx<'_>) -> Action {
        let now = self.now();
        let port = pkt.meta().in_port();
        self.process(pkt.data_mut(), port, now)
    }

    fn batch(&mut self, batch: &mut Batch<'_>, _ctx: &mut Ctx<'_>) {
        let now = self.now();
        batch.map(|p| {
            let port = p.meta().in_port();
            self.process(p.data_mut(), port, now)
        });
    }

    fn tick(&mut self, _ctx: &mut Ctx<'_>) {
        let now = self.now();
        self.expire(now);
    }
}

/// `onvm nf nat --public IP --inside PREFIX… [--ports LO-HI] [--forward PROTO:PUBPORT=IP:PORT]…`.
#[derive(clap::Args, Debug, Clone)]
pub struct Args {
    /// The public IPv4 address inside sources are translated to.
    #[arg(long)]
    pub public: String,
    /// Inside prefix (IPv4, repeatable; at least one).
    #[arg(long, required = true)]
    pub inside: Vec<String>,
    /// Packets arriving on this port are outbound; others inbound.
    #[arg(long, default_value_t = 0)]
    pub inside_port: u16,
    /// Public ports to allocate, per protocol (LO-HI).
    #[arg(long, default_value = "1024-65535")]
    pub ports: String,
    /// Static DNAT rule PROTO:PUBPORT=IP:PORT (tcp or udp; repeatable).
    #[arg(long)]
    pub forward: Vec<String>,
    /// Seconds an answered, open TCP mapping lives idle.
    #[arg(long, default_value_t = 7440)]
    pub tcp_timeout: u64,
    /// Seconds a TCP mapping lives idle before an answer or after closing.
    #[arg(long, default_value_t = 240)]
    pub tcp_transitory_timeout: u64,
    /// Seconds a UDP mapping lives idle.
    #[arg(long, default_value_t = 300)]
    pub udp_timeout: u64,
    /// Seconds an ICMP echo mapping lives idle.
    #[arg(long, default_value_t = 60)]
    pub icmp_timeout: u64,
    /// Where outbound packets go: next, out:PORT, service:ID.
    #[arg(long, default_value = "next")]
    pub to_outside: String,
    /// Where inbound packets go: next, out:PORT, service:ID.
    #[arg(long, default_value = "next")]
    pub to_inside: String,
}

fn ipv4(flag: &str, s: &str) -> Result<[u8; 4], String> {
    s.parse::<Ipv4Addr>()
        .map(|a| a.octets())
        .map_err(|_| format!("{flag} {s:?}: not an IPv4 address"))
}

impl Catalogued for Args {
    const NAME: &'static str = "nat";
    type Nf = Nat;

    fn build(&self) -> Result<Nat, String> {
        let public = ipv4("--public", &self.public)?;
        let inside = prefixes("--inside", &self.inside)?;
        if let Some(i) = self.inside.iter().zip(&inside).find(|(_, p)| p.addr.is_ipv6()) {
            return Err(format!("--inside {:?}: NAT44 takes IPv4 prefixes only", i.0));
        }
        let bad_ports = || format!("--ports {:?}: expected LO-HI with 1 <= LO <= HI <= 65535", self.ports);
        let (lo, hi) = self.ports.split_once('-').ok_or_else(bad_ports)?;
        let (lo, hi): (u16, u16) = (
            lo.parse().map_err(|_| bad_ports())?,
            hi.parse().map_err(|_| bad_ports())?,
        );
        if lo == 0 || lo > hi {
            return Err(bad_ports());
        }
        let mut forwards = Vec::new();
        for f in &self.forward {
            let bad = |why: &str| format!("--forward {f:?}: {why}");
            let (rule, to) = f.split_once('=').ok_or_else(|| bad("expected PROTO:PUBPORT=IP:PORT"))?;
            let (proto, pubport) = rule
                .split_once(':')
                .ok_or_else(|| bad("expected PROTO:PUBPORT=IP:PORT"))?;
            let proto = match proto {
                "tcp" => IP_PROTO_TCP,
                "udp" => IP_PROTO_UDP,
                _ => return Err(bad("the protocol must be tcp or udp")),
            };
            let pubport: u16 = pubport
                .parse()
                .ok()
                .filter(|&p| p != 0)
                .ok_or_else(|| bad("bad public port"))?;
            let (ip, port) = to.rsplit_once(':').ok_or_else(|| bad("expected IP:PORT after ="))?;
            let ip = ipv4("--forward", ip).map_err(|_| bad("bad inside address"))?;
            let port: u16 = port.parse().map_err(|_| bad("bad inside port"))?;
            if forwards.iter().any(|&(p, pp, _, _)| p == proto && pp == pubport) {
                return Err(bad("that public port is forwarded twice"));
            }
            forwards.push((proto, pubport, ip, port));
        }
        let secs = |flag: &str, s: u64| {
            if s == 0 || s > 10 * 365 * 86400 {
                Err(format!("{flag} {s}: must be 1..=315360000 seconds"))
            } else {
                Ok(Duration::from_secs(s))
            }
        };
        Ok(Nat::new(Config {
            public,
            inside,
            inside_port: self.inside_port,
            ports: (lo, hi),
            forwards,
            timeouts: Timeouts {
                tcp: secs("--tcp-timeout", self.tcp_timeout)?,
                tcp_transitory: secs("--tcp-transitory-timeout", self.tcp_transitory_timeout)?,
                udp: secs("--udp-timeout", self.udp_timeout)?,
                icmp: secs("--icmp-timeout", self.icmp_timeout)?,
            },
            to_outside: Dest::parse("--to-outside", &self.to_outside)?.0,
            to_inside: Dest::parse("--to-inside", &self.to_inside)?.0,
        }))
    }

    fn report(nf: &Nat) -> Option<String> {
        let c = nf.counts;
        Some(format!(
            "nat: translations {}, out {}, in {}, expired {}, no_ports {}, no_mapping {}, dropped {}, passed {}, mappings {}",
            c.translations,
            c.out,
            c.inbound,
            c.expired,
            c.no_ports,
            c.no_mapping,
            c.dropped,
            c.passed,
            nf.mappings()
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_frames::{garbage, prefixes};
    use onvm_nf::offline::Offline;
    use onvm_packet::etherparse::PacketBuilder;
    use onvm_packet::{Headers, TcpFlags, TcpSpec, UdpSpec, verify_checksums};

    const PUB: [u8; 4] = [203, 0, 113, 1];
    const REMOTE: [u8; 4] = [198, 51, 100, 7];
    const SEC: u64 = 1_000_000_000;

    fn nat(ports: (u16, u16)) -> Nat {
        Nat::new(Config {
            public: PUB,
            inside: vec![Prefix::parse("10.0.0.0/8").unwrap()],
            inside_port: 0,
            ports,
            forwards: vec![(IP_PROTO_TCP, 2222, [10, 0, 0, 9], 22)],
            timeouts: Timeouts {
                udp: Duration::from_secs(30),
                ..Timeouts::default()
            },
            to_outside: Action::Out(1),
            to_inside: Action::Out(0),
        })
    }

    fn udp(s: [u8; 4], d: [u8; 4], sp: u16, dp: u16) -> Vec<u8> {
        UdpSpec {
            payload: b"data",
            ..UdpSpec::new(s, d, sp, dp)
        }
        .to_vec()
        .unwrap()
    }

    fn tuple(f: &[u8]) -> (IpAddr, IpAddr, u16, u16) {
        let h = Headers::parse(f).unwrap();
        (
            h.src_ip().unwrap(),
            h.dst_ip().unwrap(),
            h.src_port().unwrap(),
            h.dst_port().unwrap(),
        )
    }

    #[test]
    fn outbound_is_mapped_replies_come_back_and_checksums_hold() {
        let mut n = nat((5000, 5009));
        let mut f = udp([10, 0, 0, 5], REMOTE, 1234, 53);
        assert_eq!(n.process(&mut f, 0, 0), Action::Out(1));
        assert_eq!(tuple(&f), (PUB.into(), REMOTE.into(), 5000, 53));
        assert_eq!(verify_checksums(&f), Ok(true));
        // The same inside endpoint keeps its port, to any destination.
        let mut g = udp([10, 0, 0, 5], [1, 1, 1, 1], 1234, 53);
        n.process(&mut g, 0, 0);
        assert_eq!(tuple(&g).2, 5000);
        let mut r = udp(REMOTE, PUB, 53, 5000);
        assert_eq!(n.process(&mut r, 1, SEC), Action::Out(0));
        assert_eq!(tuple(&r), (REMOTE.into(), [10, 0, 0, 5].into(), 53, 1234));
        assert_eq!(verify_checksums(&r), Ok(true));
        // No mapping, not to us.
        assert_eq!(n.process(&mut udp(REMOTE, PUB, 53, 5001), 1, 0), Action::Drop);
        assert_eq!(n.process(&mut udp(REMOTE, REMOTE, 53, 5000), 1, 0), Action::Drop);
        // Not from inside.
        assert_eq!(n.process(&mut udp([11, 0, 0, 1], REMOTE, 1, 2), 0, 0), Action::Drop);
        let c = n.counts;
        assert_eq!(
            (c.translations, c.out, c.inbound, c.no_mapping, c.dropped),
            (1, 2, 1, 2, 1)
        );
        // TCP has its own pool; the static rule forwards 2222 and its replies leave from it.
        let mut t = TcpSpec {
            flags: TcpFlags::SYN,
            ..TcpSpec::new([10, 0, 0, 6], REMOTE, 40000, 80)
        }
        .to_vec()
        .unwrap();
        n.process(&mut t, 0, 0);
        assert_eq!(tuple(&t).2, 5000);
        assert_eq!(verify_checksums(&t), Ok(true));
        let mut ssh = TcpSpec::new(REMOTE, PUB, 5555, 2222).to_vec().unwrap();
        assert_eq!(n.process(&mut ssh, 1, 0), Action::Out(0));
        assert_eq!(tuple(&ssh), (REMOTE.into(), [10, 0, 0, 9].into(), 5555, 22));
        let mut back = TcpSpec::new([10, 0, 0, 9], REMOTE, 22, 5555).to_vec().unwrap();
        n.process(&mut back, 0, 0);
        assert_eq!(tuple(&back), (PUB.into(), REMOTE.into(), 2222, 5555));
    }

    #[test]
    fn icmp_echo_is_mapped_by_identifier() {
        let mut n = nat((7000, 7000));
        let mut req = Vec::new();
        PacketBuilder::ethernet2([2; 6], [4; 6])
            .ipv4([10, 0, 0, 5], REMOTE, 64)
            .icmpv4_echo_request(77, 1)
            .write(&mut req, b"ping")
            .unwrap();
        assert_eq!(n.process(&mut req, 0, 0), Action::Out(1));
        let h = Headers::parse(&req).unwrap();
        assert_eq!(h.src_ip(), Some(PUB.into()));
        assert_eq!(&req[38..40], &7000u16.to_be_bytes());
        assert_eq!(verify_checksums(&req), Ok(true));
        let mut rep = Vec::new();
        PacketBuilder::ethernet2([4; 6], [2; 6])
            .ipv4(REMOTE, PUB, 64)
            .icmpv4_echo_reply(7000, 1)
            .write(&mut rep, b"ping")
            .unwrap();
        assert_eq!(n.process(&mut rep, 1, 0), Action::Out(0));
        assert_eq!(&rep[38..40], &77u16.to_be_bytes());
        assert_eq!(verify_checksums(&rep), Ok(true));
    }

    #[test]
    fn the_pool_runs_out_and_ports_come_back_after_their_timeout() {
        let mut n = nat((6000, 6001));
        for p in 1..=3 {
            n.process(&mut udp([10, 0, 0, 5], REMOTE, p, 53), 0, 0);
        }
        assert_eq!((n.counts.translations, n.counts.no_ports), (2, 1));
        // Still alive at 29 s (refreshed by nothing), gone at 30 s.
        n.expire(29 * SEC);
        assert_eq!(n.counts.expired, 0);
        n.expire(30 * SEC);
        assert_eq!((n.counts.expired, n.mappings()), (2, 1)); // the static rule stays
        assert_eq!(n.process(&mut udp(REMOTE, PUB, 53, 6000), 1, 31 * SEC), Action::Drop);
        let mut f = udp([10, 0, 0, 5], REMOTE, 3, 53);
        assert_eq!(n.process(&mut f, 0, 31 * SEC), Action::Out(1));
        assert_eq!(tuple(&f).2, 6000);
        // An expired mapping not yet swept is not used inbound, and is replaced outbound.
        assert_eq!(n.process(&mut udp(REMOTE, PUB, 53, 6000), 1, 70 * SEC), Action::Drop);
        let mut f = udp([10, 0, 0, 5], REMOTE, 3, 53);
        n.process(&mut f, 0, 70 * SEC);
        assert_eq!(tuple(&f).2, 6001);
    }

    #[test]
    fn malformed_frames_never_panic() {
        let mut n = nat((5000, 5010));
        let good = udp([10, 0, 0, 5], REMOTE, 1, 2);
        let tcp = TcpSpec::new([10, 0, 0, 5], REMOTE, 1, 2).to_vec().unwrap();
        let mut frames: Vec<Vec<u8>> = Vec::new();
        for g in [&good, &tcp] {
            frames.extend(prefixes(g));
            let mut b = g.clone();
            b[16..18].copy_from_slice(&[0xff, 0xff]);
            frames.push(b);
            let mut b = g.clone();
            b[14] = 0x4f;
            frames.push(b);
            let mut b = g.clone();
            b[16..18].copy_from_slice(&[0, 21]); // IP total length too short for L4
            frames.push(b);
        }
        frames.extend(garbage(200));
        for f in &frames {
            n.process(&mut f.clone(), 0, 0);
            n.process(&mut f.clone(), 1, 0);
        }
        let mut off = Offline::new().unwrap();
        let mut sim = off.start(&mut n);
        assert_eq!(sim.frames(&mut n, 1, &frames).unwrap().len(), frames.len());
    }

    #[test]
    fn flags_are_checked() {
        let a = |v: &[&str]| {
            let mut argv = vec!["x", "--public", "203.0.113.1", "--inside", "10.0.0.0/8"];
            argv.extend_from_slice(v);
            #[derive(clap::Parser)]
            struct P {
                #[command(flatten)]
                a: Args,
            }
            <P as clap::Parser>::try_parse_from(argv).unwrap().a.build().map(drop)
        };
        assert!(a(&["--forward", "tcp:80=10.0.0.1:8080", "--ports", "2000-3000"]).is_ok());
        for (args, want) in [
            (&["--ports", "5-1"][..], "--ports \"5-1\""),
            (&["--ports", "0-10"][..], "--ports \"0-10\""),
            (
                &["--forward", "icmp:1=10.0.0.1:1"][..],
                "--forward \"icmp:1=10.0.0.1:1\"",
            ),
            (&["--forward", "tcp:80=10.0.0.1"][..], "--forward \"tcp:80=10.0.0.1\""),
            (&["--inside", "2001:db8::/32"][..], "--inside \"2001:db8::/32\""),
            (&["--udp-timeout", "0"][..], "--udp-timeout 0"),
        ] {
            let e = a(args).unwrap_err();
            assert!(e.contains(want), "{e}");
        }
    }
}
