//! An L3 forwarder like DPDK's `l3fwd`: the destination address (or the whole
//! 5-tuple) chooses the output port.
//!
//! `onvm nf l3fwd -f TABLE [-e] [-n]`
//!
//! * LPM mode (default): `TABLE` holds routes `PREFIX/LEN PORT` (IPv4 and IPv6, a bare
//!   address is a host, `#` comments); the longest prefix holding the destination wins.
//! * Exact-match mode (`-e`): `TABLE` holds `SRC DST PROTO SPORT DPORT PORT` entries
//!   (PROTO a number or `tcp`, `udp`, `sctp`, `icmp`, `icmpv6`); a packet matches on all
//!   five (ports read as 0 for other protocols and non-first fragments).
//!
//! A forwarded packet's IPv4 TTL or IPv6 hop limit is decremented (the IPv4 header
//! checksum patched incrementally, RFC 1624); one that arrives with 1 or 0 is dropped
//! (`ttl_expired`). Its destination MAC becomes `02:00:00:00:00:<port>` and its source
//! MAC `02:00:00:00:00:<port + 0x10>` ([`crate::net::peer_mac`],
//! [`crate::net::port_mac`]), as DPDK's l3fwd addresses its peers, unless `-n`.
//! It then leaves by that port. No route: dropped (`no_route`); not IP or malformed:
//! dropped (`non_ip`, `malformed`).
//!
//! Differences from openNetVM's `l3fwd`: IPv6 routes, tables from a file (openNetVM
//! compiles its routes in and `-h` sizes the hash), `-n` as in its `l2fwd`, the source
//! MAC is our convention rather than the port's real one (an NF does not know it).

use std::net::IpAddr;
use std::path::PathBuf;

use onvm_nf::{Action, Ctx, Handler, PacketMut};
use onvm_packet::layout::{IP_PROTO_SCTP, IP_PROTO_TCP, IP_PROTO_UDP, IpVersion};
use onvm_packet::{Layout, recalc_csum16};
use rustc_hash::FxHashMap;

use crate::catalogue::Catalogued;
use crate::iptable::{Class, LpmTable, addr, classify};
use crate::net::{Prefix, peer_mac, port_mac};
use crate::table_file::{line_err, lines_of, read_text};

/// A 5-tuple, IPv4 addresses as IPv4-mapped IPv6 ones (with `v6` false).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Tuple {
    /// IPv6 (or IPv4).
    pub v6: bool,
    /// Source address.
    pub src: u128,
    /// Destination address.
    pub dst: u128,
    /// IP protocol.
    pub proto: u8,
    /// Source port (0 when there is none).
    pub sport: u16,
    /// Destination port.
    pub dport: u16,
}

impl Tuple {
    /// The 5-tuple of an IP frame laid out as `l`.
    #[inline]
    pub fn of(frame: &[u8], l: &Layout) -> Option<Tuple> {
        let ip = l.ip.as_ref()?;
        let a = |dst| {
            addr(frame, l, dst).map(|a| match a {
                crate::iptable::Addr::V4(a) => u128::from(a),
                crate::iptable::Addr::V6(a) => a,
            })
        };
        let (mut sport, mut dport) = (0, 0);
        if let Some(l4) = ip.l4
            && matches!(ip.proto, IP_PROTO_TCP | IP_PROTO_UDP | IP_PROTO_SCTP)
            && l4 + 4 <= ip.end
        {
            let p = frame.get(l4..l4 + 4)?;
            sport = u16::from_be_bytes([p[0], p[1]]);
            dport = u16::from_be_bytes([p[2], p[3]]);
        }
        Some(Tuple {
            v6: ip.version == IpVersion::V6,
            src: a(false)?,
            dst: a(true)?,
            proto: ip.proto,
            sport,
            dport,
        })
    }
}

/// Where l3fwd looks a packet's port up.
#[derive(Debug, Clone)]
pub enum Table {
    /// Longest prefix match on the destination.
    Lpm(Box<LpmTable<u16>>),
    /// Exact match on the 5-tuple.
    Exact(FxHashMap<Tuple, u16>),
}

/// What l3fwd counted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// Packets sent out of a port.
    pub forwarded: u64,
    /// Dropped: no route or entry.
    pub no_route: u64,
    /// Dropped: TTL / hop limit 1 or 0.
    pub ttl_expired: u64,
    /// Dropped: not IP.
    pub non_ip: u64,
    /// Dropped: malformed.
    pub malformed: u64,
}

/// The l3fwd handler.
#[derive(Debug, Clone)]
pub struct L3fwd {
    table: Table,
    rewrite_macs: bool,
    /// Counts so far.
    pub counts: Counts,
}

impl L3fwd {
    /// A forwarder over `table`, rewriting MACs if `rewrite_macs`.
    pub fn new(table: Table, rewrite_macs: bool) -> Self {
        L3fwd {
            table,
            rewrite_macs,
            counts: Counts::default(),
        }
    }

    /// Forward `frame` (rewritten in place): its action, counted.
    #[inline]
    pub fn forward(&mut self, frame: &mut [u8]) -> Action {
        let c = &mut self.counts;
        let l = match classify(frame) {
            Class::Ip(l) => l,
            Class::NotIp => {
                c.non_ip += 1;
                return Action::Drop;
            }
            Class::Malformed => {
                c.malformed += 1;
                return Action::Drop;
            }
        };
        let port = match &self.table {
            Table::Lpm(t) => addr(frame, &l, true).and_then(|a| t.lookup(a)),
            Table::Exact(m) => Tuple::of(frame, &l).and_then(|k| m.get(&k)),
        };
        let Some(&port) = port else {
            c.no_route += 1;
            return Action::Drop;
        };
        if !dec_ttl(frame, &l) {
            c.ttl_expired += 1;
            return Action::Drop;
        }
        if self.rewrite_macs {
            frame[..6].copy_from_slice(&peer_mac(port));
            frame[6..12].copy_from_slice(&port_mac(port));
        }
        c.forwarded += 1;
        Action::Out(port)
    }
}

/// Decrement the TTL / hop limit of the IP header laid out as `l` (whole in the frame:
/// [`classify`] checked it); false (frame unchanged) if it is 1 or 0.
#[inline]
fn dec_ttl(frame: &mut [u8], l: &Layout) -> bool {
    let v4 = matches!(l.ip, Some(ip) if ip.version == IpVersion::V4);
    let at = l.l3 + if v4 { 8 } else { 7 };
    let ttl = frame[at];
    if ttl <= 1 {
        return false;
    }
    frame[at] = ttl - 1;
    if v4 {
        // The TTL is the high byte of the word it shares with the protocol.
        let (proto, c) = (u16::from(frame[l.l3 + 9]), l.l3 + 10);
        let sum = u16::from_be_bytes([frame[c], frame[c + 1]]);
        let new = recalc_csum16(sum, u16::from(ttl) << 8 | proto, u16::from(ttl - 1) << 8 | proto);
        frame[c..c + 2].copy_from_slice(&new.to_be_bytes());
    }
    true
}

impl Handler for L3fwd {
    fn packet(&mut self, pkt: &mut PacketMut<'_>, _ctx: &mut Ctx<'_>) -> Action {
        self.forward(pkt.data_mut())
    }
}

/// `onvm nf l3fwd -f TABLE [-e] [-n]`.
#[derive(clap::Args, Debug, Clone)]
pub struct Args {
    /// Routes (`PREFIX/LEN PORT`), or with -e entries (`SRC DST PROTO SPORT DPORT PORT`).
    #[arg(short = 'f', long = "table")]
    pub table: PathBuf,
    /// Exact match on the 5-tuple instead of LPM on the destination.
    #[arg(short = 'e', long)]
    pub exact: bool,
    /// Leave the MAC addresses as they are.
    #[arg(short = 'n', long)]
    pub no_mac_rewrite: bool,
}

fn parse_port(s: &str) -> Result<u16, String> {
    match s.parse::<u16>() {
        Ok(p) if p < onvm_proto::limits::MAX_PORTS => Ok(p),
        _ => Err(format!(
            "bad port {s:?}: must be 0..={}",
            onvm_proto::limits::MAX_PORTS - 1
        )),
    }
}

fn parse_proto(s: &str) -> Result<u8, String> {
    Ok(match s {
        "tcp" => 6,
        "udp" => 17,
        "sctp" => 132,
        "icmp" => 1,
        "icmpv6" => 58,
        _ => s
            .parse()
            .map_err(|_| format!("bad protocol {s:?}: a number 0..=255 or tcp, udp, sctp, icmp, icmpv6"))?,
    })
}

/// Parse a table file's `text` (`path` names it in errors).
pub fn parse_table(path: &std::path::Path, text: &str, exact: bool) -> Result<Table, String> {
    const FLAG: &str = "--table";
    let err = |no, e| line_err(FLAG, path, no, e);
    if !exact {
        let mut t = LpmTable::new();
        for l in lines_of(text) {
            let [p, port] = &l.words[..] else {
                return Err(err(l.no, "want `PREFIX/LEN PORT`".to_string()));
            };
            let p: Prefix = p.parse().map_err(|e| err(l.no, e))?;
            t.insert(p, parse_port(port).map_err(|e| err(l.no, e))?);
        }
        return Ok(Table::Lpm(Box::new(t)));
    }
    let mut m = FxHashMap::default();
    for l in lines_of(text) {
        let [s, d, proto, sp, dp, port] = &l.words[..] else {
            return Err(err(l.no, "want `SRC DST PROTO SPORT DPORT PORT`".to_string()));
        };
        let ip = |a: &String| a.parse::<IpAddr>().map_err(|_| err(l.no, format!("bad address {a:?}")));
        let (s, d) = (ip(s)?, ip(d)?);
        let v6 = match (s, d) {
            (IpAddr::V4(_), IpAddr::V4(_)) => false,
            (IpAddr::V6(_), IpAddr::V6(_)) => true,
            _ => return Err(err(l.no, "SRC and DST of different IP versions".to_string())),
        };
        let bits = |a: IpAddr| match a {
            IpAddr::V4(a) => u128::from(a.to_bits()),
            IpAddr::V6(a) => a.to_bits(),
        };
        let l4 = |p: &String| p.parse::<u16>().map_err(|_| err(l.no, format!("bad L4 port {p:?}")));
        let key = Tuple {
            v6,
            src: bits(s),
            dst: bits(d),
            proto: parse_proto(proto).map_err(|e| err(l.no, e))?,
            sport: l4(sp)?,
            dport: l4(dp)?,
        };
        m.insert(key, parse_port(port).map_err(|e| err(l.no, e))?);
    }
    Ok(Table::Exact(m))
}

impl Catalogued for Args {
    const NAME: &'static str = "l3fwd";
    type Nf = L3fwd;
    fn build(&self) -> Result<L3fwd, String> {
        let text = read_text("--table", &self.table)?;
        Ok(L3fwd::new(
            parse_table(&self.table, &text, self.exact)?,
            !self.no_mac_rewrite,
        ))
    }
    fn report(nf: &L3fwd) -> Option<String> {
        let c = nf.counts;
        Some(format!(
            "l3fwd: forwarded {}, no_route {}, ttl_expired {}, non_ip {}, malformed {}",
            c.forwarded, c.no_route, c.ttl_expired, c.non_ip, c.malformed
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_frames::{arp_request, garbage, malformed_variants, tcp, udp};
    use onvm_nf::offline::Offline;
    use onvm_packet::verify_checksums;
    use std::path::Path;

    const ROUTES: &str = "10.0.0.0/8 1\n10.2.0.0/16 2\n2001:db8::/32 3\n2001:db8:1::/48 4\n";

    fn lpm() -> L3fwd {
        L3fwd::new(parse_table(Path::new("r"), ROUTES, false).unwrap(), true)
    }

    #[test]
    fn routes_v4_and_v6_decrementing_ttl_and_rewriting_macs() {
        let mut f = lpm();
        for (dst, port) in [
            ("10.1.1.1", 1u16),
            ("10.2.1.1", 2),
            ("2001:db8::9", 3),
            ("2001:db8:1::9", 4),
        ] {
            let src = if dst.contains(':') { "2001:db8::1" } else { "192.0.2.1" };
            let mut fr = udp(src, dst, 64);
            assert_eq!(f.forward(&mut fr), Action::Out(port), "{dst}");
            // Built independently: what the frame must become.
            let mut want = udp(src, dst, 63);
            want[..6].copy_from_slice(&[2, 0, 0, 0, 0, port as u8]);
            want[6..12].copy_from_slice(&[2, 0, 0, 0, 0, port as u8 + 0x10]);
            assert_eq!(fr, want, "{dst}");
            assert_eq!(verify_checksums(&fr), Ok(true));
        }
        assert_eq!(f.forward(&mut udp("10.1.1.1", "11.0.0.1", 64)), Action::Drop);
        assert_eq!(f.forward(&mut udp("10.1.1.1", "10.0.0.1", 1)), Action::Drop);
        assert_eq!(f.forward(&mut udp("::1", "2001:db8::1", 0)), Action::Drop);
        assert_eq!(f.forward(&mut arp_request([1; 6], [1; 4], [2; 4])), Action::Drop);
        assert_eq!(
            f.counts,
            Counts {
                forwarded: 4,
                no_route: 1,
                ttl_expired: 2,
                non_ip: 1,
                malformed: 0
            }
        );
        // -n leaves the MACs.
        let mut f = L3fwd::new(parse_table(Path::new("r"), ROUTES, false).unwrap(), false);
        let mut fr = udp("1.1.1.1", "10.0.0.1", 9);
        f.forward(&mut fr);
        assert_eq!(fr, udp("1.1.1.1", "10.0.0.1", 8));
    }

    #[test]
    fn exact_match_on_the_five_tuple() {
        let t = "10.0.0.1 10.0.0.2 tcp 1000 80 5\n2001:db8::1 2001:db8::2 17 1000 2000 6\n";
        let mut f = L3fwd::new(parse_table(Path::new("e"), t, true).unwrap(), false);
        assert_eq!(f.forward(&mut tcp("10.0.0.1", 1000, "10.0.0.2", 80)), Action::Out(5));
        assert_eq!(f.forward(&mut tcp("10.0.0.1", 1001, "10.0.0.2", 80)), Action::Drop);
        assert_eq!(f.forward(&mut udp("2001:db8::1", "2001:db8::2", 5)), Action::Out(6));
        assert_eq!(f.forward(&mut udp("10.0.0.1", "10.0.0.2", 5)), Action::Drop);
        assert_eq!((f.counts.forwarded, f.counts.no_route), (2, 2));
    }

    #[test]
    fn bad_tables_name_file_and_line() {
        let p = Path::new("/r");
        let e = parse_table(p, "10.0.0.0/8 1\n10.0.0.0/8 99999\n", false).unwrap_err();
        assert!(e.starts_with("--table /r: line 2: bad port \"99999\""), "{e}");
        let e = parse_table(p, "10.0.0.0/40 1\n", false).unwrap_err();
        assert!(e.starts_with("--table /r: line 1: bad prefix"), "{e}");
        let e = parse_table(p, "10.0.0.1 ::1 tcp 1 2 3\n", true).unwrap_err();
        assert!(e.contains("line 1: SRC and DST of different IP versions"), "{e}");
        let e = parse_table(p, "10.0.0.1 10.0.0.2 xtp 1 2 3\n", true).unwrap_err();
        assert!(e.contains("bad protocol \"xtp\""), "{e}");
    }

    #[test]
    fn malformed_frames_are_dropped_never_panic() {
        let t = "0.0.0.0/0 1\n::/0 1\n";
        for exact in [false, true] {
            let table = if exact { "" } else { t };
            let mut f = L3fwd::new(parse_table(Path::new("r"), table, exact).unwrap(), true);
            let mut off = Offline::new().unwrap();
            let mut sim = off.start(&mut f);
            for good in [udp("10.1.1.1", "10.2.2.2", 64), udp("2001:db8::1", "2001:db8::2", 64)] {
                let bad = malformed_variants(&good);
                assert_eq!(sim.frames(&mut f, 0, &bad).unwrap().len(), bad.len());
            }
            assert_eq!(sim.frames(&mut f, 0, &garbage(500)).unwrap().len(), 500);
        }
    }
}
