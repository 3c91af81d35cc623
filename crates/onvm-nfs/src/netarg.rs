//! Flag values several NFs share: IP prefixes, where a packet goes, and reading the
//! addresses, ports and protocol of a frame in one bounds-checked pass.

use std::net::IpAddr;

use onvm_nf::Action;
use onvm_packet::Layout;
use onvm_packet::layout::{IP_PROTO_ICMP, IP_PROTO_ICMPV6, IP_PROTO_TCP, IP_PROTO_UDP, IpVersion};

/// An IPv4 or IPv6 prefix (`10.0.0.0/8`, `2001:db8::/32`; a bare address is a host).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Prefix {
    /// The address with the host bits cleared (IPv4 in the first 4 bytes).
    pub addr: [u8; 16],
    /// Prefix length.
    pub len: u8,
    /// IPv6 (else IPv4).
    pub v6: bool,
}

impl Prefix {
    /// Parse `ADDR[/LEN]`; the error says what is wrong (callers add the flag).
    pub fn parse(s: &str) -> Result<Prefix, String> {
        let (a, l) = match s.split_once('/') {
            Some((a, l)) => (a, Some(l)),
            None => (s, None),
        };
        let ip: IpAddr = a.parse().map_err(|_| format!("{s:?}: not an IP address or prefix"))?;
        let (v6, max) = (ip.is_ipv6(), if ip.is_ipv6() { 128 } else { 32 });
        let len = match l {
            None => max,
            Some(l) => match l.parse::<u8>() {
                Ok(n) if n <= max => n,
                _ => return Err(format!("{s:?}: bad prefix length (0..={max})")),
            },
        };
        let mut addr = [0u8; 16];
        match ip {
            IpAddr::V4(v) => addr[..4].copy_from_slice(&v.octets()),
            IpAddr::V6(v) => addr.copy_from_slice(&v.octets()),
        }
        mask(&mut addr, len);
        Ok(Prefix { addr, len, v6 })
    }

    /// Whether `ip` (4 or 16 bytes, the packet's own version) lies in the prefix.
    pub fn contains(&self, ip: &[u8]) -> bool {
        if (ip.len() == 16) != self.v6 {
            return false;
        }
        let full = usize::from(self.len / 8);
        if ip[..full] != self.addr[..full] {
            return false;
        }
        let rest = self.len % 8;
        rest == 0 || (ip[full] & (0xffu8 << (8 - rest))) == self.addr[full]
    }
}

/// Clear every bit of `addr` after the first `len`.
pub fn mask(addr: &mut [u8; 16], len: u8) {
    for (i, b) in addr.iter_mut().enumerate() {
        let keep = (usize::from(len)).saturating_sub(i * 8).min(8);
        *b &= if keep == 0 { 0 } else { 0xffu8 << (8 - keep) };
    }
}

/// Parse every `--FLAG PREFIX`, naming the flag and value on an error.
pub fn prefixes(flag: &str, values: &[String]) -> Result<Vec<Prefix>, String> {
    values
        .iter()
        .map(|v| Prefix::parse(v).map_err(|e| format!("{flag} {e}")))
        .collect()
}

/// Where an NF sends the packets it passes: `next` (the chain's next hop), `out:N`
/// (a port), `service:N` (a service) or `drop`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dest(pub Action);

impl Dest {
    /// Parse a destination, naming `flag` on an error.
    pub fn parse(flag: &str, s: &str) -> Result<Dest, String> {
        let num = |t: &str| {
            t.parse::<u16>()
                .map_err(|_| format!("{flag} {s:?}: {t:?} is not a number"))
        };
        Ok(Dest(match s.split_once(':') {
            None if s == "next" => Action::Next,
            None if s == "drop" => Action::Drop,
            Some(("out", p)) => {
                let p = num(p)?;
                if p >= onvm_proto::limits::MAX_PORTS {
                    return Err(format!(
                        "{flag} {s:?}: port must be below {}",
                        onvm_proto::limits::MAX_PORTS
                    ));
                }
                Action::Out(p)
            }
            Some(("service", id)) => Action::ToService(crate::catalogue::check_service(flag, num(id)?)?),
            _ => {
                return Err(format!("{flag} {s:?}: expected next, drop, out:PORT or service:ID"));
            }
        }))
    }
}

/// Protocol numbers NFs name in flags (`tcp:22`).
pub fn proto_number(name: &str) -> Option<u8> {
    match name {
        "tcp" => Some(IP_PROTO_TCP),
        "udp" => Some(IP_PROTO_UDP),
        "icmp" => Some(IP_PROTO_ICMP),
        "icmpv6" => Some(IP_PROTO_ICMPV6),
        _ => None,
    }
}

/// The IP part of a frame, read once: addresses, protocol, where L4 starts and ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ip {
    /// IPv6 (else IPv4).
    pub v6: bool,
    /// Offset of the IP header.
    pub l3: usize,
    /// Source address (IPv4 in the first 4 bytes, the rest zero).
    pub src: [u8; 16],
    /// Destination address.
    pub dst: [u8; 16],
    /// Protocol of the payload (after IPv6 extension headers).
    pub proto: u8,
    /// Offset of the L4 header; `None` for a non-first fragment.
    pub l4: Option<usize>,
    /// One past the IP packet (from its length field).
    pub end: usize,
}

impl Ip {
    /// The IP part of `frame`, `Ok(None)` if it is not IP, `Err` if its IP header is
    /// truncated or malformed.
    pub fn of(frame: &[u8]) -> Result<Option<Ip>, onvm_packet::Error> {
        let layout = Layout::of(frame)?;
        let Some(ip) = layout.ip else { return Ok(None) };
        let l3 = layout.l3;
        let v6 = ip.version == IpVersion::V6;
        let (mut src, mut dst) = ([0u8; 16], [0u8; 16]);
        if v6 {
            src.copy_from_slice(&frame[l3 + 8..l3 + 24]);
            dst.copy_from_slice(&frame[l3 + 24..l3 + 40]);
        } else {
            src[..4].copy_from_slice(&frame[l3 + 12..l3 + 16]);
            dst[..4].copy_from_slice(&frame[l3 + 16..l3 + 20]);
        }
        Ok(Some(Ip {
            v6,
            l3,
            src,
            dst,
            proto: ip.proto,
            l4: ip.l4,
            end: ip.end,
        }))
    }

    /// The address length (4 or 16).
    pub fn alen(&self) -> usize {
        if self.v6 { 16 } else { 4 }
    }

    /// The L4 header's first `n` bytes are in the packet: its offset.
    pub fn l4_with(&self, n: usize) -> Option<usize> {
        self.l4.filter(|&l4| l4 + n <= self.end)
    }

    /// Source and destination ports of TCP/UDP (if the header's first 4 bytes are in).
    pub fn ports(&self, frame: &[u8]) -> Option<(u16, u16)> {
        if self.proto != IP_PROTO_TCP && self.proto != IP_PROTO_UDP {
            return None;
        }
        let l4 = self.l4_with(4)?;
        Some((be16(frame, l4), be16(frame, l4 + 2)))
    }
}

/// The big-endian u16 at `at` (in bounds).
pub fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_parse_and_match() {
        let p = Prefix::parse("10.1.2.3/15").unwrap();
        assert_eq!((&p.addr[..4], p.len, p.v6), (&[10, 0, 0, 0][..], 15, false));
        assert!(p.contains(&[10, 1, 9, 9]));
        assert!(!p.contains(&[10, 2, 0, 0]));
        assert!(!p.contains(&[0; 16]));
        let h = Prefix::parse("192.168.0.1").unwrap();
        assert!(h.contains(&[192, 168, 0, 1]) && !h.contains(&[192, 168, 0, 2]));
        let six = Prefix::parse("2001:db8::/32").unwrap();
        let a: std::net::Ipv6Addr = "2001:db8:1::5".parse().unwrap();
        assert!(six.contains(&a.octets()) && !six.contains(&[10, 0, 0, 1]));
        assert!(Prefix::parse("0.0.0.0/0").unwrap().contains(&[1, 2, 3, 4]));
        for bad in ["10.0.0/8", "10.0.0.0/33", "x", "::/129", "1.2.3.4/"] {
            assert!(Prefix::parse(bad).is_err(), "{bad}");
        }
        let e = prefixes("--inside", &["10.0.0.0/33".into()]).unwrap_err();
        assert!(e.starts_with("--inside \"10.0.0.0/33\""), "{e}");
    }

    #[test]
    fn destinations_parse() {
        assert_eq!(Dest::parse("--to", "next").unwrap().0, Action::Next);
        assert_eq!(Dest::parse("--to", "out:3").unwrap().0, Action::Out(3));
        assert_eq!(Dest::parse("--to", "service:2").unwrap().0, Action::ToService(2));
        assert_eq!(Dest::parse("--to", "drop").unwrap().0, Action::Drop);
        for bad in ["out:x", "service:0", "nowhere", "out:99999"] {
            let e = Dest::parse("--to", bad).unwrap_err();
            assert!(e.starts_with("--to"), "{e}");
        }
    }
}
