//! What the routing NFs (`firewall`, `l3fwd`, `nf_router`) share: IPv4/IPv6 prefixes
//! parsed from text, a longest-prefix-match table over both families, where a frame's
//! addresses are, and the line format of their table files.
//!
//! The table is [`prefix_trie`]'s tree bitmap (one per family, keyed by the address as
//! an integer); a lookup walks it without allocating. Prefixes with host bits set
//! (`10.1.2.3/8`) are taken as their network (`10.0.0.0/8`), as DPDK's `rte_lpm_add`
//! takes them.

use std::net::IpAddr;
use std::path::Path;

use onvm_packet::Layout;
use onvm_packet::layout::IpVersion;
use prefix_trie::PrefixMap;

/// An IPv4 or IPv6 prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Prefix {
    /// The address (host bits may be set; they are ignored).
    pub addr: IpAddr,
    /// Its length: 0..=32 for IPv4, 0..=128 for IPv6.
    pub len: u8,
}

impl std::str::FromStr for Prefix {
    type Err = String;

    /// `ADDR/LEN`, or a bare `ADDR` (a host: /32 or /128).
    fn from_str(s: &str) -> Result<Prefix, String> {
        let (a, l) = match s.split_once('/') {
            Some((a, l)) => (a, Some(l)),
            None => (s, None),
        };
        let addr: IpAddr = a
            .parse()
            .map_err(|_| format!("bad prefix {s:?}: {a:?} is not an IP address"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let len = match l {
            None => max,
            Some(l) => match l.parse::<u8>() {
                Ok(n) if n <= max => n,
                _ => return Err(format!("bad prefix {s:?}: length {l:?} is not 0..={max}")),
            },
        };
        Ok(Prefix { addr, len })
    }
}

/// An address read from a frame: IPv4 or IPv6, as an integer (network order's value).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Addr {
    /// IPv4.
    V4(u32),
    /// IPv6.
    V6(u128),
}

/// A longest-prefix-match table over IPv4 and IPv6 prefixes.
#[derive(Clone)]
pub struct LpmTable<T> {
    v4: PrefixMap<(u32, u8), T>,
    v6: PrefixMap<(u128, u8), T>,
    len: usize,
}

impl<T> std::fmt::Debug for LpmTable<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LpmTable").field("prefixes", &self.len).finish()
    }
}

impl<T> Default for LpmTable<T> {
    fn default() -> Self {
        LpmTable {
            v4: PrefixMap::new(),
            v6: PrefixMap::new(),
            len: 0,
        }
    }
}

impl<T> LpmTable<T> {
    /// An empty table.
    pub fn new() -> Self {
        Self::default()
    }

    /// Add `p` → `v`; the value it replaces, if `p` was there.
    pub fn insert(&mut self, p: Prefix, v: T) -> Option<T> {
        let old = match p.addr {
            IpAddr::V4(a) => self.v4.insert((mask32(a.to_bits(), p.len), p.len), v),
            IpAddr::V6(a) => self.v6.insert((mask128(a.to_bits(), p.len), p.len), v),
        };
        self.len += usize::from(old.is_none());
        old
    }

    /// Prefixes in the table.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the table is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The value of the longest prefix holding `a`.
    #[inline]
    pub fn lookup(&self, a: Addr) -> Option<&T> {
        match a {
            Addr::V4(a) => self.v4.get_lpm(&(a, 32)).map(|(_, v)| v),
            Addr::V6(a) => self.v6.get_lpm(&(a, 128)).map(|(_, v)| v),
        }
    }

    /// [`LpmTable::lookup`] of a `std` address.
    pub fn lookup_ip(&self, a: IpAddr) -> Option<&T> {
        self.lookup(match a {
            IpAddr::V4(a) => Addr::V4(a.to_bits()),
            IpAddr::V6(a) => Addr::V6(a.to_bits()),
        })
    }
}

fn mask32(a: u32, len: u8) -> u32 {
    a & u32::MAX.checked_shl(32 - u32::from(len)).unwrap_or(0)
}

fn mask128(a: u128, len: u8) -> u128 {
    a & u128::MAX.checked_shl(128 - u32::from(len)).unwrap_or(0)
}

/// What a frame is, to an NF that looks at its IP header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// An IPv4 or IPv6 packet whose header is whole (`Layout::ip` is `Some`).
    Ip(Layout),
    /// A well-formed Ethernet frame of another EtherType (ARP, …).
    NotIp,
    /// Shorter than an Ethernet header, a cut VLAN tag, or a truncated or malformed IP
    /// header (bad version, header or total length).
    Malformed,
}

/// Classify `frame` (bounds-checked reads of a few header bytes, no allocation).
#[inline]
pub fn classify(frame: &[u8]) -> Class {
    match Layout::of(frame) {
        Ok(l) if l.ip.is_some() => Class::Ip(l),
        Ok(_) => Class::NotIp,
        Err(_) => Class::Malformed,
    }
}

/// The source (`dst == false`) or destination address of an IP frame laid out as `l`
/// (from [`classify`], so the header is in the frame).
#[inline]
pub fn addr(frame: &[u8], l: &Layout, dst: bool) -> Option<Addr> {
    let ip = l.ip.as_ref()?;
    Some(match ip.version {
        IpVersion::V4 => {
            let at = l.l3 + if dst { 16 } else { 12 };
            Addr::V4(u32::from_be_bytes(frame.get(at..at + 4)?.try_into().ok()?))
        }
        IpVersion::V6 => {
            let at = l.l3 + if dst { 24 } else { 8 };
            Addr::V6(u128::from_be_bytes(frame.get(at..at + 16)?.try_into().ok()?))
        }
    })
}

/// One meaningful line of a table file: its number (from 1) and its words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    /// Line number, from 1.
    pub no: usize,
    /// Whitespace-separated words, `#` comments removed.
    pub words: Vec<String>,
}

/// Read the text file `path` given with `flag` (an error names both).
pub fn read_text(flag: &str, path: &Path) -> Result<String, String> {
    std::fs::read_to_string(path).map_err(|e| format!("{flag} {}: {e}", path.display()))
}

/// The meaningful lines of `text`: non-empty once `#` comments are cut.
pub fn lines_of(text: &str) -> Vec<Line> {
    text.lines()
        .enumerate()
        .filter_map(|(i, l)| {
            let l = l.split('#').next().unwrap_or("");
            let words: Vec<String> = l.split_whitespace().map(str::to_string).collect();
            (!words.is_empty()).then_some(Line { no: i + 1, words })
        })
        .collect()
}

/// An error about line `no` of the file `path` given with `flag`.
pub fn line_err(flag: &str, path: &Path, no: usize, what: impl std::fmt::Display) -> String {
    format!("{flag} {}: line {no}: {what}", path.display())
}

/// A MAC address `aa:bb:cc:dd:ee:ff` (or with `-`).
pub fn parse_mac(s: &str) -> Result<[u8; 6], String> {
    let parts: Vec<&str> = s.split([':', '-']).collect();
    let mut mac = [0u8; 6];
    if parts.len() != 6 {
        return Err(format!("bad MAC {s:?}: want six hex bytes aa:bb:cc:dd:ee:ff"));
    }
    for (m, p) in mac.iter_mut().zip(parts) {
        *m = match u8::from_str_radix(p, 16) {
            Ok(b) if (1..=2).contains(&p.len()) => b,
            _ => return Err(format!("bad MAC {s:?}: {p:?} is not a hex byte")),
        };
    }
    Ok(mac)
}

/// The MAC this catalogue gives port `p` when none is configured, as DPDK's `l3fwd` and
/// openNetVM's `l2fwd` address a port's peer: `02:00:00:00:00:<p>` (the low byte of
/// the port number; locally administered).
pub fn peer_mac(p: u16) -> [u8; 6] {
    [0x02, 0, 0, 0, 0, p as u8]
}

/// The MAC a port's own frames carry as their source when none is configured:
/// `02:00:00:00:00:<p + 0x10>` (the low byte), so it never equals [`peer_mac`] of a
/// port of the first 16.
pub fn port_mac(p: u16) -> [u8; 6] {
    [0x02, 0, 0, 0, 0, (p as u8).wrapping_add(0x10)]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn longest_prefix_wins_in_both_families() {
        let mut t = LpmTable::new();
        for (p, v) in [
            ("10.0.0.0/8", 1),
            ("10.1.0.0/16", 2),
            ("10.1.2.3", 3),
            ("0.0.0.0/0", 9),
            ("2001:db8::/32", 4),
            ("2001:db8:1::/48", 5),
        ] {
            t.insert(p.parse().unwrap(), v);
        }
        let l = |a: &str| t.lookup_ip(a.parse().unwrap()).copied();
        assert_eq!(l("10.1.2.3"), Some(3));
        assert_eq!(l("10.1.2.4"), Some(2));
        assert_eq!(l("10.2.0.0"), Some(1));
        assert_eq!(l("11.0.0.1"), Some(9));
        assert_eq!(l("2001:db8:1::7"), Some(5));
        assert_eq!(l("2001:db8:2::7"), Some(4));
        assert_eq!(l("2001:db9::"), None);
        assert_eq!(t.len(), 6);
        // Host bits are ignored: the same prefix again replaces it.
        assert_eq!(t.insert("10.9.9.9/8".parse().unwrap(), 7), Some(1));
        assert_eq!(t.lookup_ip("10.2.0.0".parse().unwrap()), Some(&7));
    }

    #[test]
    fn prefixes_parse_or_say_why() {
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
        assert!(parse_mac("02:00:00:00:00:1").is_ok());
        assert!(parse_mac("02:00:00:00:00").is_err());
        assert!(parse_mac("02:00:00:00:00:100").is_err());
    }

    #[test]
    fn lines_lose_comments_and_blanks() {
        let l = lines_of("# head\n\n10.0.0.0/8 pass # ok\n  ::/0   drop\n");
        assert_eq!(l.len(), 2);
        assert_eq!(
            (l[0].no, l[0].words.clone()),
            (3, vec!["10.0.0.0/8".to_string(), "pass".into()])
        );
        assert_eq!(l[1].no, 4);
    }
}
