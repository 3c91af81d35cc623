//! What several NFs read from text or from a frame: IPv4/IPv6 prefixes ([`Prefix`]),
//! MAC addresses ([`parse_mac`], the default [`peer_mac`]/[`port_mac`]), and a frame's
//! addresses, protocol and ports read in one bounds-checked pass ([`Ip`]).

use std::net::IpAddr;

use onvm_packet::layout::{IP_PROTO_TCP, IP_PROTO_UDP, IpVersion};
use onvm_packet::{Layout, MacAddr};

/// An IPv4 or IPv6 prefix (`10.0.0.0/8`, `2001:db8::/32`; a bare address is a host).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Prefix {
    /// The address as written (host bits may be set; every use ignores them).
    pub addr: IpAddr,
    /// Its length: 0..=32 for IPv4, 0..=128 for IPv6.
    pub len: u8,
}

/// What is wrong with a prefix's text: the address part, or the length part (and the
/// family's longest length). Each user words it its own way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PrefixError<'a> {
    /// `.0` is not an IP address.
    Addr(&'a str),
    /// `.0` is not a length of `0..=.1`.
    Len(&'a str, u8),
}

impl Prefix {
    /// `ADDR/LEN`, or a bare `ADDR` (a host: /32 or /128).
    pub fn parse_text(s: &str) -> Result<Prefix, PrefixError<'_>> {
        let (a, l) = match s.split_once('/') {
            Some((a, l)) => (a, Some(l)),
            None => (s, None),
        };
        let addr: IpAddr = a.parse().map_err(|_| PrefixError::Addr(a))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let len = match l {
            None => max,
            Some(l) => match l.parse::<u8>() {
                Ok(n) if n <= max => n,
                _ => return Err(PrefixError::Len(l, max)),
            },
        };
        Ok(Prefix { addr, len })
    }

    /// [`Prefix::parse_text`], the error saying what is wrong (callers add the flag).
    pub fn parse(s: &str) -> Result<Prefix, String> {
        Prefix::parse_text(s).map_err(|e| match e {
            PrefixError::Addr(_) => format!("{s:?}: not an IP address or prefix"),
            PrefixError::Len(_, max) => format!("{s:?}: bad prefix length (0..={max})"),
        })
    }

    /// Whether `ip` (4 or 16 bytes, the packet's own version) lies in the prefix.
    #[inline]
    pub fn contains(&self, ip: &[u8]) -> bool {
        match (self.addr, ip.len()) {
            (IpAddr::V4(n), 4) => {
                let a = u32::from_be_bytes([ip[0], ip[1], ip[2], ip[3]]);
                mask32(n.to_bits() ^ a, self.len) == 0
            }
            (IpAddr::V6(n), 16) => {
                let mut b = [0u8; 16];
                b.copy_from_slice(ip);
                mask128(n.to_bits() ^ u128::from_be_bytes(b), self.len) == 0
            }
            _ => false,
        }
    }

    /// Whether the `std` address `ip` lies in the prefix.
    #[inline]
    pub fn contains_ip(&self, ip: IpAddr) -> bool {
        match ip {
            IpAddr::V4(a) => self.contains(&a.octets()),
            IpAddr::V6(a) => self.contains(&a.octets()),
        }
    }
}

impl std::str::FromStr for Prefix {
    type Err = String;

    /// [`Prefix::parse_text`], worded for table files.
    fn from_str(s: &str) -> Result<Prefix, String> {
        Prefix::parse_text(s).map_err(|e| match e {
            PrefixError::Addr(a) => format!("bad prefix {s:?}: {a:?} is not an IP address"),
            PrefixError::Len(l, max) => format!("bad prefix {s:?}: length {l:?} is not 0..={max}"),
        })
    }
}

/// `a` with every bit after the first `len` cleared.
#[inline]
pub fn mask32(a: u32, len: u8) -> u32 {
    a & u32::MAX.checked_shl(32 - u32::from(len)).unwrap_or(0)
}

/// `a` with every bit after the first `len` cleared.
#[inline]
pub fn mask128(a: u128, len: u8) -> u128 {
    a & u128::MAX.checked_shl(128 - u32::from(len)).unwrap_or(0)
}

/// Clear every bit of `addr` after the first `len`.
pub fn mask(addr: &mut [u8; 16], len: u8) {
    for (i, b) in addr.iter_mut().enumerate() {
        let keep = (usize::from(len)).saturating_sub(i * 8).min(8);
        *b &= if keep == 0 { 0 } else { 0xffu8 << (8 - keep) };
    }
}

/// A MAC address `aa:bb:cc:dd:ee:ff` (or with `-`; one or two hex digits a byte).
/// NFs that take only colons, or only two digits a byte, check that besides.
pub fn parse_mac(s: &str) -> Result<MacAddr, String> {
    if s.split([':', '-']).count() != 6 {
        return Err(format!("bad MAC {s:?}: want six hex bytes aa:bb:cc:dd:ee:ff"));
    }
    let mut mac = [0u8; 6];
    for (m, p) in mac.iter_mut().zip(s.split([':', '-'])) {
        *m = match u8::from_str_radix(p, 16) {
            Ok(b) if (1..=2).contains(&p.len()) => b,
            _ => return Err(format!("bad MAC {s:?}: {p:?} is not a hex byte")),
        };
    }
    Ok(mac)
}

/// Whether `s` is written `aa:bb:cc:dd:ee:ff` exactly: colons, two digits a byte (for
/// the NFs whose flags take only that form; [`parse_mac`] does the rest).
pub fn is_colon_mac(s: &str) -> bool {
    s.len() == 17 && !s.contains('-')
}

/// The MAC this catalogue gives port `p` when none is configured, as DPDK's `l3fwd` and
/// openNetVM's `l2fwd` address a port's peer: `02:00:00:00:00:<p>` (the low byte of
/// the port number; locally administered).
pub fn peer_mac(p: u16) -> MacAddr {
    [0x02, 0, 0, 0, 0, p as u8]
}

/// The MAC a port's own frames carry as their source when none is configured:
/// `02:00:00:00:00:<p + 0x10>` (the low byte), so it never equals [`peer_mac`] of a
/// port of the first 16.
pub fn port_mac(p: u16) -> MacAddr {
    [0x02, 0, 0, 0, 0, (p as u8).wrapping_add(0x10)]
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
    #[inline]
    pub fn of(frame: &[u8]) -> Result<Option<Ip>, onvm_packet::Error> {
        let layout = Layout::of(frame)?;
        Ok(Ip::in_layout(frame, &layout))
    }

    /// The IP part of `frame` laid out as `layout` (`None` if it is not IP).
    #[inline]
    pub fn in_layout(frame: &[u8], layout: &Layout) -> Option<Ip> {
        let ip = layout.ip.as_ref()?;
        let l3 = layout.l3;
        let v6 = ip.version == IpVersion::V6;
        let (mut src, mut dst) = ([0u8; 16], [0u8; 16]);
        if v6 {
            src.copy_from_slice(frame.get(l3 + 8..l3 + 24)?);
            dst.copy_from_slice(frame.get(l3 + 24..l3 + 40)?);
        } else {
            src[..4].copy_from_slice(frame.get(l3 + 12..l3 + 16)?);
            dst[..4].copy_from_slice(frame.get(l3 + 16..l3 + 20)?);
        }
        Some(Ip {
            v6,
            l3,
            src,
            dst,
            proto: ip.proto,
            l4: ip.l4,
            end: ip.end,
        })
    }

    /// The address length (4 or 16).
    pub fn alen(&self) -> usize {
        if self.v6 { 16 } else { 4 }
    }

    /// The L4 header's first `n` bytes are in the packet: its offset.
    pub fn l4_with(&self, n: usize) -> Option<usize> {
        self.l4.filter(|&l4| l4 + n <= self.end)
    }

    /// The two 16-bit words that start the L4 header (the ports of TCP, UDP and SCTP),
    /// whatever the protocol, if they are in the packet.
    #[inline]
    pub fn l4_words(&self, frame: &[u8]) -> Option<(u16, u16)> {
        let l4 = self.l4_with(4)?;
        Some((be16(frame, l4), be16(frame, l4 + 2)))
    }

    /// Source and destination ports of TCP/UDP (if the header's first 4 bytes are in).
    #[inline]
    pub fn ports(&self, frame: &[u8]) -> Option<(u16, u16)> {
        if self.proto != IP_PROTO_TCP && self.proto != IP_PROTO_UDP {
            return None;
        }
        self.l4_words(frame)
    }

    /// The source address as a `std` address.
    pub fn src_ip(&self) -> IpAddr {
        to_ip(&self.src, self.v6)
    }

    /// The destination address as a `std` address.
    pub fn dst_ip(&self) -> IpAddr {
        to_ip(&self.dst, self.v6)
    }
}

/// An address as [`Ip`] keeps it (IPv4 in the first 4 bytes) as a `std` address.
pub fn to_ip(a: &[u8; 16], v6: bool) -> IpAddr {
    if v6 {
        std::net::Ipv6Addr::from(*a).into()
    } else {
        std::net::Ipv4Addr::new(a[0], a[1], a[2], a[3]).into()
    }
}

/// The big-endian u16 at `at` (in bounds).
#[inline]
pub fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_parse_and_match() {
        let p = Prefix::parse("10.1.2.3/15").unwrap();
        assert_eq!(p.len, 15);
        assert!(p.contains(&[10, 1, 9, 9]) && p.contains(&[10, 0, 0, 0]));
        assert!(!p.contains(&[10, 2, 0, 0]));
        assert!(!p.contains(&[0; 16]));
        let h = Prefix::parse("192.168.0.1").unwrap();
        assert!(h.contains(&[192, 168, 0, 1]) && !h.contains(&[192, 168, 0, 2]));
        let six = Prefix::parse("2001:db8::/32").unwrap();
        let a: std::net::Ipv6Addr = "2001:db8:1::5".parse().unwrap();
        assert!(six.contains(&a.octets()) && !six.contains(&[10, 0, 0, 1]));
        assert!(six.contains_ip(a.into()) && !six.contains_ip("10.0.0.1".parse().unwrap()));
        assert!(Prefix::parse("0.0.0.0/0").unwrap().contains(&[1, 2, 3, 4]));
        for bad in ["10.0.0/8", "10.0.0.0/33", "x", "::/129", "1.2.3.4/"] {
            assert!(Prefix::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(
            "::/0".parse::<Prefix>(),
            Ok(Prefix {
                addr: "::".parse().unwrap(),
                len: 0
            })
        );
        assert!("10.0.0/8".parse::<Prefix>().unwrap_err().contains("not an IP address"));
        assert!("10.0.0.0/33".parse::<Prefix>().unwrap_err().contains("0..=32"));
        assert!("::1/129".parse::<Prefix>().unwrap_err().contains("0..=128"));
        let mut m = [0xff; 16];
        mask(&mut m, 12);
        assert_eq!(&m[..3], &[0xff, 0xf0, 0]);
    }

    #[test]
    fn macs_parse() {
        assert_eq!(parse_mac("02:00:00:00:00:0a"), Ok([2, 0, 0, 0, 0, 10]));
        assert_eq!(parse_mac("02-00-00-00-00-1"), Ok([2, 0, 0, 0, 0, 1]));
        for bad in [
            "02:00:00:00:00",
            "02:00:00:00:00:100",
            "02:00:00:00:00:0a:1",
            "",
            "02:00:00:00:00:",
        ] {
            assert!(parse_mac(bad).is_err(), "{bad}");
        }
        assert!(is_colon_mac("02:00:00:00:00:0a") && !is_colon_mac("02:00:00:00:00:a"));
        assert!(!is_colon_mac("02-00-00-00-00-0a"));
    }

    #[test]
    fn the_ip_part_and_ports_of_a_frame() {
        let f = onvm_packet::UdpSpec::new([10, 0, 0, 1], [10, 0, 0, 2], 1000, 53)
            .to_vec()
            .unwrap();
        let ip = Ip::of(&f).unwrap().unwrap();
        assert_eq!((ip.v6, ip.proto, ip.alen()), (false, 17, 4));
        assert_eq!(ip.ports(&f), Some((1000, 53)));
        assert_eq!(ip.src_ip(), "10.0.0.1".parse::<IpAddr>().unwrap());
        assert_eq!(ip.dst_ip(), "10.0.0.2".parse::<IpAddr>().unwrap());
        for cut in crate::test_frames::prefixes(&f) {
            let _ = Ip::of(&cut).map(|ip| ip.map(|ip| ip.ports(&cut)));
        }
    }
}
