//! A stateful firewall: connection tracking like Linux conntrack, for one inside and
//! one outside.
//!
//! Packets arriving on the inside port (`--inside-port N`, default 0; in a chain the NF
//! reads the physical arrival port from the packet's metadata) are *outbound*; packets
//! from every other port are *inbound*. Direction is decided by arrival port, not by
//! address; `--inside PREFIX` (repeatable, IPv4 or IPv6) additionally restricts which
//! source addresses may send from the inside (others are dropped as `dropped_invalid`;
//! without `--inside` any source may).
//!
//! - Outbound packets are allowed and open a tracked connection, keyed by protocol,
//!   both addresses and both ports (the ICMP echo identifier for pings). A TCP
//!   connection must start with a SYN; a first TCP packet without one is dropped
//!   (`dropped_invalid`) unless `--loose` (then it is picked up as established, as
//!   Linux's `nf_conntrack_tcp_loose` does).
//! - Inbound packets pass only if they belong to a tracked connection, or match
//!   `--allow-in PROTO:PORT` (`tcp:22`, `udp:53`; `icmp` for echo requests), which opens a
//!   connection from the outside. Others are dropped: `dropped_no_conn`.
//! - TCP follows a state machine ([`tcp_next`], a pure function): SYN_SENT → SYN_RECV (the
//!   SYN-ACK) → ESTABLISHED (the ACK) → FIN_WAIT (one FIN) → TIME_WAIT (both FINs;
//!   Linux's CLOSE_WAIT/LAST_ACK/TIME_WAIT in one) and CLOSED on an RST from either side.
//!   A packet the state does not allow (an inbound SYN on a SYN_SENT connection, data
//!   before the handshake) is dropped as `dropped_invalid`. A new SYN from the
//!   connection's opener reopens a TIME_WAIT or CLOSED connection.
//! - Each state has a timeout (Linux's defaults): `--tcp-established-timeout` (432000 s),
//!   `--tcp-transitory-timeout` (120 s: SYN_SENT, SYN_RECV, FIN_WAIT, TIME_WAIT; CLOSED
//!   keeps 10 s at most), `--udp-timeout` (120 s, Linux's `udp_timeout_stream`; Linux gives
//!   unreplied UDP 30 s, here both are one value), `--icmp-timeout` (30 s). Other IP
//!   protocols are tracked by addresses alone with the UDP timeout.
//! - The table holds `--max-conns` connections (default 65536); a new connection beyond
//!   it is dropped (`table_full`). Expired connections are removed on the tick (and found
//!   expired on lookup, so a late packet never revives one).
//!
//! Non-IP frames (ARP) pass both ways untracked; IP frames with a malformed header and
//! non-first fragments (which carry no ports) are dropped as `dropped_invalid`; inbound
//! ICMP other than echo (errors, which Linux tracks as RELATED) is dropped as
//! `dropped_no_conn`, outbound ICMP other than echo passes untracked.
//!
//! Passed packets go to `--to-outside DEST` (outbound) and `--to-inside DEST` (inbound):
//! `next` (default), `out:PORT` or `service:ID`.
//!
//! The time is one `Instant` read per burst. openNetVM has no stateful firewall (its
//! `firewall` is a stateless LPM on the source address; `NFD/stateful_firewall` is
//! compiler output without timeouts or TCP states).

use std::time::{Duration, Instant};

use onvm_nf::{Action, Batch, Ctx, Handler, PacketMut};
use onvm_packet::layout::{IP_PROTO_ICMP, IP_PROTO_ICMPV6, IP_PROTO_TCP, IP_PROTO_UDP};
use rustc_hash::FxHashMap;

use crate::catalogue::Catalogued;
use crate::net::{Ip, Prefix, be16};
use crate::netarg::{Dest, prefixes};

/// Which end of a connection sent a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Side {
    /// The end that opened the connection.
    Orig,
    /// The other end.
    Reply,
}

/// A TCP connection's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TcpState {
    /// The opener's SYN seen.
    SynSent,
    /// The reply's SYN-ACK seen.
    SynRecv,
    /// The opener's ACK of the SYN-ACK seen: data flows.
    Established,
    /// One side sent a FIN.
    FinWait,
    /// Both sides sent a FIN (CLOSE_WAIT/LAST_ACK/TIME_WAIT).
    TimeWait,
    /// An RST was seen.
    Closed,
}

/// TCP flag bits.
const FIN: u8 = 0x01;
const SYN: u8 = 0x02;
const RST: u8 = 0x04;
const ACK: u8 = 0x10;

/// The state a TCP connection in `state` moves to when `side` sends a segment with
/// `flags`, or `None` if the segment is invalid there (it is dropped and the state kept).
pub fn tcp_next(state: TcpState, side: Side, flags: u8) -> Option<TcpState> {
    use Side::*;
    use TcpState::*;
    let (syn, ack, fin, rst) = (flags & SYN != 0, flags & ACK != 0, flags & FIN != 0, flags & RST != 0);
    if rst {
        return Some(Closed);
    }
    match state {
        SynSent => match side {
            Orig if syn && !ack => Some(SynSent),
            Reply if syn => Some(SynRecv),
            _ => None,
        },
        SynRecv => match side {
            Reply if syn && ack => Some(SynRecv),
            Orig if syn && !ack => Some(SynRecv),
            _ if syn => None,
            _ if fin => Some(FinWait),
            Orig if ack => Some(Established),
            _ => None,
        },
        Established => match () {
            _ if syn => None,
            _ if fin => Some(FinWait),
            _ => Some(Established),
        },
        // Who sent the first FIN is not kept: a FIN from the same side again (a
        // retransmission) also moves on, which only shortens nothing (same timeout).
        FinWait => match () {
            _ if syn => None,
            _ if fin => Some(TimeWait),
            _ => Some(FinWait),
        },
        TimeWait | Closed => match side {
            Orig if syn && !ack => Some(SynSent),
            _ if state == TimeWait && !syn => Some(TimeWait),
            _ => None,
        },
    }
}

/// Timeouts per state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// ESTABLISHED.
    pub tcp_established: Duration,
    /// SYN_SENT, SYN_RECV, FIN_WAIT, TIME_WAIT.
    pub tcp_transitory: Duration,
    /// UDP and other protocols.
    pub udp: Duration,
    /// ICMP echo.
    pub icmp: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            tcp_established: Duration::from_secs(432_000),
            tcp_transitory: Duration::from_secs(120),
            udp: Duration::from_secs(120),
            icmp: Duration::from_secs(30),
        }
    }
}

/// A CLOSED connection is kept this long at most (Linux's `tcp_timeout_close`).
const CLOSED_TIMEOUT: Duration = Duration::from_secs(10);

impl Timeouts {
    fn of(&self, state: ConnState) -> Duration {
        match state {
            ConnState::Tcp(TcpState::Established) => self.tcp_established,
            ConnState::Tcp(TcpState::Closed) => self.tcp_transitory.min(CLOSED_TIMEOUT),
            ConnState::Tcp(_) => self.tcp_transitory,
            ConnState::Icmp => self.icmp,
            ConnState::Other => self.udp,
        }
    }
}

/// A connection's key: protocol, the inside end, the outside end.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ConnKey {
    proto: u8,
    inside: [u8; 16],
    outside: [u8; 16],
    in_port: u16,
    out_port: u16,
}

/// What is tracked of a connection's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ConnState {
    Tcp(TcpState),
    Icmp,
    Other,
}

#[derive(Debug, Clone, Copy)]
struct Conn {
    state: ConnState,
    /// Which way the opener sent: whether the opener is inside.
    opened_inside: bool,
    /// Nanoseconds since the NF started when it expires.
    expires: u64,
}

/// What the firewall counted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// Connections opened.
    pub new: u64,
    /// TCP connections that reached ESTABLISHED.
    pub established: u64,
    /// TCP connections closed (both FINs or an RST).
    pub closed: u64,
    /// Connections removed after their timeout.
    pub expired: u64,
    /// Packets dropped as invalid (state, malformed, no SYN, spoofed source).
    pub dropped_invalid: u64,
    /// Inbound packets dropped without a connection.
    pub dropped_no_conn: u64,
    /// New connections dropped because the table was full.
    pub table_full: u64,
    /// Packets passed.
    pub passed: u64,
}

/// The firewall's configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// Packets arriving on this port are outbound.
    pub inside_port: u16,
    /// Sources allowed on the inside port (empty: any).
    pub inside: Vec<Prefix>,
    /// Inbound `(protocol, destination port)` that may open connections (ICMP: port 0).
    pub allow_in: Vec<(u8, u16)>,
    /// Pick up TCP connections without a SYN.
    pub loose: bool,
    /// Timeouts.
    pub timeouts: Timeouts,
    /// Most connections tracked.
    pub max_conns: usize,
    /// Where outbound packets go.
    pub to_outside: Action,
    /// Where inbound packets go.
    pub to_inside: Action,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            inside_port: 0,
            inside: Vec::new(),
            allow_in: Vec::new(),
            loose: false,
            timeouts: Timeouts::default(),
            max_conns: 65536,
            to_outside: Action::Next,
            to_inside: Action::Next,
        }
    }
}

/// The stateful firewall. See the [module docs](self).
#[derive(Debug)]
pub struct StatefulFirewall {
    cfg: Config,
    conns: FxHashMap<ConnKey, Conn>,
    started: Instant,
    /// Counts so far.
    pub counts: Counts,
}

/// Why a packet is dropped.
enum Verdict {
    Pass,
    Invalid,
    NoConn,
    Full,
}

impl StatefulFirewall {
    /// A firewall with `cfg`; the table is allocated here, once.
    pub fn new(cfg: Config) -> Self {
        let mut conns = FxHashMap::default();
        conns.reserve(cfg.max_conns);
        StatefulFirewall {
            cfg,
            conns,
            started: Instant::now(),
            counts: Counts::default(),
        }
    }

    /// Connections tracked now.
    pub fn conns(&self) -> usize {
        self.conns.len()
    }

    fn now(&self) -> u64 {
        self.started.elapsed().as_nanos() as u64
    }

    /// Decide one frame that arrived on `port` at `now` (ns since start): its action.
    pub fn decide(&mut self, frame: &[u8], port: u16, now: u64) -> Action {
        let outbound = port == self.cfg.inside_port;
        let pass = if outbound {
            self.cfg.to_outside
        } else {
            self.cfg.to_inside
        };
        match self.judge(frame, outbound, now) {
            Verdict::Pass => {
                self.counts.passed += 1;
                pass
            }
            Verdict::Invalid => {
                self.counts.dropped_invalid += 1;
                Action::Drop
            }
            Verdict::NoConn => {
                self.counts.dropped_no_conn += 1;
                Action::Drop
            }
            Verdict::Full => {
                self.counts.table_full += 1;
                Action::Drop
            }
        }
    }

    fn judge(&mut self, frame: &[u8], outbound: bool, now: u64) -> Verdict {
        let ip = match Ip::of(frame) {
            Ok(Some(ip)) => ip,
            Ok(None) => return Verdict::Pass,
            Err(_) => return Verdict::Invalid,
        };
        let alen = ip.alen();
        if outbound && !self.cfg.inside.is_empty() && !self.cfg.inside.iter().any(|p| p.contains(&ip.src[..alen])) {
            return Verdict::Invalid;
        }
        let Some(l4) = ip.l4 else {
            return Verdict::Invalid;
        };
        // Ports (or the echo identifier) and TCP flags, each checked to be in the packet.
        let (sport, dport, flags, state) = match ip.proto {
            IP_PROTO_TCP => match ip.l4_with(14) {
                Some(l4) => (be16(frame, l4), be16(frame, l4 + 2), frame[l4 + 13], None),
                None => return Verdict::Invalid,
            },
            IP_PROTO_UDP => match ip.ports(frame) {
                Some((s, d)) => (s, d, 0, Some(ConnState::Other)),
                None => return Verdict::Invalid,
            },
            IP_PROTO_ICMP | IP_PROTO_ICMPV6 => {
                if ip.l4_with(8).is_none() || (ip.proto == IP_PROTO_ICMP) == ip.v6 {
                    return Verdict::Invalid;
                }
                let (request, reply) = if ip.v6 { (128, 129) } else { (8, 0) };
                let t = frame[l4];
                if t != request && t != reply {
                    return if outbound { Verdict::Pass } else { Verdict::NoConn };
                }
                // The identifier is the same both ways; a request may open.
                let id = be16(frame, l4 + 4);
                let opens = if t == request { 1 } else { 0 };
                (id, id, opens, Some(ConnState::Icmp))
            }
            _ => (0, 0, 0, Some(ConnState::Other)),
        };
        let key = if outbound {
            ConnKey {
                proto: ip.proto,
                inside: ip.src,
                outside: ip.dst,
                in_port: sport,
                out_port: dport,
            }
        } else {
            ConnKey {
                proto: ip.proto,
                inside: ip.dst,
                outside: ip.src,
                in_port: dport,
                out_port: sport,
            }
        };
        let t = self.cfg.timeouts;
        if let Some(c) = self.conns.get_mut(&key) {
            if c.expires > now {
                let side = if c.opened_inside == outbound {
                    Side::Orig
                } else {
                    Side::Reply
                };
                let next = match c.state {
                    ConnState::Tcp(s) => match tcp_next(s, side, flags) {
                        Some(n) => {
                            if n == TcpState::Established && s != TcpState::Established {
                                self.counts.established += 1;
                            }
                            if matches!(n, TcpState::TimeWait | TcpState::Closed)
                                && !matches!(s, TcpState::TimeWait | TcpState::Closed)
                            {
                                self.counts.closed += 1;
                            }
                            if n == TcpState::SynSent && s != TcpState::SynSent {
                                self.counts.new += 1;
                            }
                            ConnState::Tcp(n)
                        }
                        None => return Verdict::Invalid,
                    },
                    s => s,
                };
                c.state = next;
                c.expires = now + t.of(next).as_nanos() as u64;
                return Verdict::Pass;
            }
            // Expired but not yet swept: it is gone.
            self.conns.remove(&key);
            self.counts.expired += 1;
        }
        // No connection: may this packet open one?
        if !outbound {
            let port = if ip.proto == IP_PROTO_ICMP || ip.proto == IP_PROTO_ICMPV6 {
                0
            } else {
                dport
            };
            let icmp_request = state == Some(ConnState::Icmp) && flags == 1;
            let allowed =
                self.cfg.allow_in.contains(&(ip.proto, port)) && (state != Some(ConnState::Icmp) || icmp_request);
            if !allowed {
                return Verdict::NoConn;
            }
        }
        let state = match state {
            Some(ConnState::Icmp) if flags == 0 => return if outbound { Verdict::Pass } else { Verdict::NoConn },
            Some(s) => s,
            None if flags & (SYN | ACK | RST | FIN) == SYN => ConnState::Tcp(TcpState::SynSent),
            None if self.cfg.loose && flags & (RST | SYN) == 0 => ConnState::Tcp(TcpState::Established),
            None => return Verdict::Invalid,
        };
        if self.conns.len() >= self.cfg.max_conns {
            return Verdict::Full;
        }
        self.counts.new += 1;
        self.conns.insert(
            key,
            Conn {
                state,
                opened_inside: outbound,
                expires: now + t.of(state).as_nanos() as u64,
            },
        );
        Verdict::Pass
    }

    /// Remove connections expired at `now`.
    pub fn expire(&mut self, now: u64) {
        let before = self.conns.len();
        self.conns.retain(|_, c| c.expires > now);
        self.counts.expired += (before - self.conns.len()) as u64;
    }
}

impl Handler for StatefulFirewall {
    fn packet(&mut self, pkt: &mut PacketMut<'_>, _ctx: &mut Ctx<'_>) -> Action {
        let now = self.now();
        self.decide(pkt.data(), pkt.meta().in_port(), now)
    }

    fn batch(&mut self, batch: &mut Batch<'_>, _ctx: &mut Ctx<'_>) {
        let now = self.now();
        batch.map(|p| self.decide(p.data(), p.meta().in_port(), now));
    }

    fn tick(&mut self, _ctx: &mut Ctx<'_>) {
        let now = self.now();
        self.expire(now);
    }
}

/// `onvm nf stateful-firewall [--inside-port N] [--inside PREFIX]… [--allow-in PROTO:PORT]… …`.
#[derive(clap::Args, Debug, Clone)]
pub struct Args {
    /// Packets arriving on this port are outbound (from the inside); others inbound.
    #[arg(long, default_value_t = 0)]
    pub inside_port: u16,
    /// Inside source prefix (repeatable, IPv4 or IPv6); default any source.
    #[arg(long)]
    pub inside: Vec<String>,
    /// Inbound traffic that may open a connection: tcp:PORT, udp:PORT or icmp (echo).
    #[arg(long)]
    pub allow_in: Vec<String>,
    /// Pick up TCP connections that start without a SYN (as established).
    #[arg(long)]
    pub loose: bool,
    /// Seconds an ESTABLISHED TCP connection lives idle.
    #[arg(long, default_value_t = 432_000)]
    pub tcp_established_timeout: u64,
    /// Seconds a TCP connection lives idle in SYN_SENT, SYN_RECV, FIN_WAIT, TIME_WAIT.
    #[arg(long, default_value_t = 120)]
    pub tcp_transitory_timeout: u64,
    /// Seconds a UDP (or other protocol's) connection lives idle.
    #[arg(long, default_value_t = 120)]
    pub udp_timeout: u64,
    /// Seconds an ICMP echo connection lives idle.
    #[arg(long, default_value_t = 30)]
    pub icmp_timeout: u64,
    /// Most connections tracked; new ones beyond are dropped.
    #[arg(long, default_value_t = 65536)]
    pub max_conns: usize,
    /// Where outbound packets go: next, out:PORT, service:ID.
    #[arg(long, default_value = "next")]
    pub to_outside: String,
    /// Where inbound packets go: next, out:PORT, service:ID.
    #[arg(long, default_value = "next")]
    pub to_inside: String,
}

impl Catalogued for Args {
    const NAME: &'static str = "stateful_firewall";
    type Nf = StatefulFirewall;

    fn build(&self) -> Result<StatefulFirewall, String> {
        let mut allow_in = Vec::new();
        for a in &self.allow_in {
            let bad = || format!("--allow-in {a:?}: expected tcp:PORT, udp:PORT or icmp");
            let rule = match a.split_once(':') {
                None if a == "icmp" => (IP_PROTO_ICMP, 0),
                None if a == "icmpv6" => (IP_PROTO_ICMPV6, 0),
                Some(("tcp", p)) => (IP_PROTO_TCP, p.parse().map_err(|_| bad())?),
                Some(("udp", p)) => (IP_PROTO_UDP, p.parse().map_err(|_| bad())?),
                _ => return Err(bad()),
            };
            allow_in.push(rule);
        }
        let secs = |flag: &str, s: u64| {
            if s == 0 || s > 10 * 365 * 86400 {
                Err(format!("{flag} {s}: must be 1..=315360000 seconds"))
            } else {
                Ok(Duration::from_secs(s))
            }
        };
        if self.max_conns == 0 || self.max_conns > 1 << 24 {
            return Err(format!("--max-conns {}: must be 1..=16777216", self.max_conns));
        }
        Ok(StatefulFirewall::new(Config {
            inside_port: self.inside_port,
            inside: prefixes("--inside", &self.inside)?,
            allow_in,
            loose: self.loose,
            timeouts: Timeouts {
                tcp_established: secs("--tcp-established-timeout", self.tcp_established_timeout)?,
                tcp_transitory: secs("--tcp-transitory-timeout", self.tcp_transitory_timeout)?,
                udp: secs("--udp-timeout", self.udp_timeout)?,
                icmp: secs("--icmp-timeout", self.icmp_timeout)?,
            },
            max_conns: self.max_conns,
            to_outside: Dest::parse("--to-outside", &self.to_outside)?.0,
            to_inside: Dest::parse("--to-inside", &self.to_inside)?.0,
        }))
    }

    fn report(nf: &StatefulFirewall) -> Option<String> {
        let c = nf.counts;
        Some(format!(
            "stateful_firewall: new {}, established {}, closed {}, expired {}, dropped_invalid {}, \
             dropped_no_conn {}, table_full {}, passed {}, conns {}",
            c.new,
            c.established,
            c.closed,
            c.expired,
            c.dropped_invalid,
            c.dropped_no_conn,
            c.table_full,
            c.passed,
            nf.conns()
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_frames::{garbage, prefixes};
    use onvm_nf::offline::Offline;
    use onvm_packet::{TcpFlags, TcpSpec, UdpSpec};

    const IN: [u8; 4] = [10, 0, 0, 5];
    const OUT: [u8; 4] = [198, 51, 100, 7];
    const SEC: u64 = 1_000_000_000;

    fn tcp(out: bool, flags: TcpFlags) -> Vec<u8> {
        let (s, d, sp, dp) = if out {
            (IN, OUT, 40000, 80)
        } else {
            (OUT, IN, 80, 40000)
        };
        TcpSpec {
            flags,
            ..TcpSpec::new(s, d, sp, dp)
        }
        .to_vec()
        .unwrap()
    }

    fn udp(src: [u8; 4], dst: [u8; 4], sp: u16, dp: u16) -> Vec<u8> {
        UdpSpec::new(src, dst, sp, dp).to_vec().unwrap()
    }

    fn fw(cfg: Config) -> StatefulFirewall {
        StatefulFirewall::new(cfg)
    }

    #[test]
    fn the_tcp_state_machine_follows_a_connection() {
        use Side::*;
        use TcpState::*;
        let s = tcp_next(SynSent, Reply, SYN | ACK).unwrap();
        assert_eq!(s, SynRecv);
        let s = tcp_next(s, Orig, ACK).unwrap();
        assert_eq!(s, Established);
        assert_eq!(tcp_next(s, Reply, ACK), Some(Established));
        let s = tcp_next(s, Orig, FIN | ACK).unwrap();
        assert_eq!(s, FinWait);
        assert_eq!(tcp_next(s, Reply, ACK), Some(FinWait));
        let s = tcp_next(s, Reply, FIN | ACK).unwrap();
        assert_eq!(s, TimeWait);
        assert_eq!(tcp_next(s, Orig, ACK), Some(TimeWait));
        assert_eq!(tcp_next(s, Orig, SYN), Some(SynSent));
        // Invalid moves.
        assert_eq!(tcp_next(SynSent, Reply, ACK), None);
        assert_eq!(tcp_next(SynSent, Orig, ACK), None);
        assert_eq!(tcp_next(Established, Reply, SYN), None);
        assert_eq!(tcp_next(Closed, Reply, ACK), None);
        assert_eq!(tcp_next(Closed, Reply, SYN), None);
        // RST closes from anywhere.
        for st in [SynSent, SynRecv, Established, FinWait, TimeWait] {
            assert_eq!(tcp_next(st, Reply, RST), Some(Closed));
        }
    }

    #[test]
    fn outbound_opens_inbound_follows_and_unsolicited_is_dropped() {
        let mut f = fw(Config::default());
        let t = 0;
        assert_eq!(f.decide(&tcp(true, TcpFlags::SYN), 0, t), Action::Next);
        assert_eq!(f.decide(&tcp(false, TcpFlags::SYN | TcpFlags::ACK), 1, t), Action::Next);
        assert_eq!(f.decide(&tcp(true, TcpFlags::ACK), 0, t), Action::Next);
        assert_eq!(f.decide(&tcp(false, TcpFlags::ACK | TcpFlags::PSH), 1, t), Action::Next);
        // Unsolicited inbound: another port, another host.
        assert_eq!(f.decide(&udp(OUT, IN, 53, 5000), 1, t), Action::Drop);
        let mut other = tcp(false, TcpFlags::SYN);
        other[37] = 81; // source port 81 (low byte), checksum irrelevant here
        assert_eq!(f.decide(&other, 1, t), Action::Drop);
        // A non-SYN first packet from inside.
        let mut mid = tcp(true, TcpFlags::ACK);
        mid[35] = 1; // another source port
        assert_eq!(f.decide(&mid, 0, t), Action::Drop);
        // Closing.
        assert_eq!(f.decide(&tcp(true, TcpFlags::FIN | TcpFlags::ACK), 0, t), Action::Next);
        assert_eq!(f.decide(&tcp(false, TcpFlags::FIN | TcpFlags::ACK), 1, t), Action::Next);
        let c = f.counts;
        assert_eq!(
            (
                c.new,
                c.established,
                c.closed,
                c.dropped_no_conn,
                c.dropped_invalid,
                c.passed
            ),
            (1, 1, 1, 2, 1, 6)
        );
        // --loose picks it up.
        let mut f = fw(Config {
            loose: true,
            ..Config::default()
        });
        assert_eq!(f.decide(&mid, 0, t), Action::Next);
        assert_eq!(f.counts.new, 1);
    }

    #[test]
    fn timeouts_expire_connections_and_udp_replies_pass_until_then() {
        let mut f = fw(Config {
            timeouts: Timeouts {
                udp: Duration::from_secs(30),
                ..Timeouts::default()
            },
            to_inside: Action::Out(0),
            to_outside: Action::Out(1),
            ..Config::default()
        });
        let q = udp(IN, OUT, 5000, 53);
        let r = udp(OUT, IN, 53, 5000);
        assert_eq!(f.decide(&q, 0, 0), Action::Out(1));
        assert_eq!(f.decide(&r, 1, 29 * SEC), Action::Out(0));
        // The reply refreshed it: still alive at 58 s, gone at 60 s.
        assert_eq!(f.decide(&r, 1, 58 * SEC), Action::Out(0));
        assert_eq!(f.decide(&r, 1, 89 * SEC), Action::Drop);
        assert_eq!(f.counts.expired, 1);
        assert_eq!(f.decide(&q, 0, 100 * SEC), Action::Out(1));
        f.expire(200 * SEC);
        assert_eq!((f.counts.expired, f.conns()), (2, 0));
        // A SYN_SENT connection expires after the transitory timeout.
        assert_eq!(f.decide(&tcp(true, TcpFlags::SYN), 0, 0), Action::Out(1));
        f.expire(119 * SEC);
        assert_eq!(f.conns(), 1);
        f.expire(121 * SEC);
        assert_eq!(f.conns(), 0);
    }

    #[test]
    fn the_table_is_bounded_and_allow_in_and_inside_prefixes_apply() {
        let mut f = fw(Config {
            max_conns: 2,
            allow_in: vec![(IP_PROTO_TCP, 22), (IP_PROTO_ICMP, 0)],
            inside: vec![Prefix::parse("10.0.0.0/8").unwrap()],
            ..Config::default()
        });
        for p in 1..=3 {
            f.decide(&udp(IN, OUT, p, 53), 0, 0);
        }
        assert_eq!((f.counts.new, f.counts.table_full, f.conns()), (2, 1, 2));
        let mut f = fw(Config {
            allow_in: vec![(IP_PROTO_TCP, 22), (IP_PROTO_ICMP, 0)],
            inside: vec![Prefix::parse("10.0.0.0/8").unwrap()],
            ..Config::default()
        });
        // Spoofed inside source.
        assert_eq!(f.decide(&udp(OUT, IN, 1, 2), 0, 0), Action::Drop);
        assert_eq!(f.counts.dropped_invalid, 1);
        // ssh in, answered from inside (a SYN-ACK: not a SYN, but the connection exists).
        let syn = TcpSpec {
            flags: TcpFlags::SYN,
            ..TcpSpec::new(OUT, IN, 5555, 22)
        }
        .to_vec()
        .unwrap();
        let synack = TcpSpec {
            flags: TcpFlags::SYN | TcpFlags::ACK,
            ..TcpSpec::new(IN, OUT, 22, 5555)
        }
        .to_vec()
        .unwrap();
        assert_eq!(f.decide(&syn, 1, 0), Action::Next);
        assert_eq!(f.decide(&synack, 0, 0), Action::Next);
        // Ping in and its reply out; a reply in without a request is dropped.
        let ping = |t: u8, s: [u8; 4], d: [u8; 4], id: u16| {
            let mut v = Vec::new();
            let b = onvm_packet::etherparse::PacketBuilder::ethernet2([2; 6], [4; 6]).ipv4(s, d, 64);
            let b = if t == 8 {
                b.icmpv4_echo_request(id, 1)
            } else {
                b.icmpv4_echo_reply(id, 1)
            };
            b.write(&mut v, b"ping").unwrap();
            v
        };
        assert_eq!(f.decide(&ping(8, OUT, IN, 7), 1, 0), Action::Next);
        assert_eq!(f.decide(&ping(0, IN, OUT, 7), 0, 0), Action::Next);
        assert_eq!(f.decide(&ping(0, OUT, IN, 8), 1, 0), Action::Drop);
        assert_eq!(f.counts.new, 2);
    }

    #[test]
    fn malformed_frames_never_panic_and_non_ip_passes() {
        let mut f = fw(Config::default());
        let mut h = fw(Config::default());
        let mut off = Offline::new().unwrap();
        let mut sim = off.start(&mut h);
        let good = tcp(true, TcpFlags::SYN);
        let mut frames = prefixes(&good);
        let mut bad_len = good.clone();
        bad_len[16..18].copy_from_slice(&[0xff, 0xff]); // IPv4 total length past the end
        frames.push(bad_len);
        let mut bad_ihl = good.clone();
        bad_ihl[14] = 0x4f;
        frames.push(bad_ihl);
        let mut short_ihl = good.clone();
        short_ihl[14] = 0x42;
        frames.push(short_ihl);
        frames.extend(garbage(200));
        for fr in &frames {
            f.decide(fr, 0, 0);
            f.decide(fr, 1, 0);
        }
        let out = sim.frames(&mut h, 1, &frames).unwrap();
        assert_eq!(out.len(), frames.len());
        let arp = [&[0xffu8; 12][..], &[0x08, 0x06], &[0; 28]].concat();
        assert_eq!(f.decide(&arp, 1, 0), Action::Next);
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
        assert!(a(&[]).is_ok());
        assert!(a(&["--inside", "10.0.0.0/8", "--allow-in", "tcp:22", "--allow-in", "icmp"]).is_ok());
        let e = a(&["--inside", "10.0.0/33"]).unwrap_err();
        assert!(e.contains("--inside \"10.0.0/33\""), "{e}");
        let e = a(&["--allow-in", "sctp:1"]).unwrap_err();
        assert!(e.contains("--allow-in \"sctp:1\""), "{e}");
        let e = a(&["--udp-timeout", "0"]).unwrap_err();
        assert!(e.contains("--udp-timeout 0"), "{e}");
        let e = a(&["--to-inside", "out:x"]).unwrap_err();
        assert!(e.contains("--to-inside"), "{e}");
    }
}
