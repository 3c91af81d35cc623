//! What the NFs' unit tests share: well-formed frames, the malformed variants every NF
//! must survive (drop or pass on, never panic), and a clock set by hand.

use std::net::IpAddr;

use onvm_packet::{TcpSpec, UdpSpec};

/// A UDP frame `src` → `dst` (IPv4 or IPv6 by the addresses) with TTL / hop limit `ttl`.
pub fn udp(src: &str, dst: &str, ttl: u8) -> Vec<u8> {
    let (s, d): (IpAddr, IpAddr) = (src.parse().unwrap(), dst.parse().unwrap());
    UdpSpec {
        ttl,
        payload: b"test payload",
        ..UdpSpec::new(s, d, 1000, 2000)
    }
    .to_vec()
    .unwrap()
}

/// A TCP frame `src:sport` → `dst:dport`.
pub fn tcp(src: &str, sport: u16, dst: &str, dport: u16) -> Vec<u8> {
    let (s, d): (IpAddr, IpAddr) = (src.parse().unwrap(), dst.parse().unwrap());
    TcpSpec::new(s, d, sport, dport).to_vec().unwrap()
}

/// An ARP request from `sha`/`spa` for `tpa`, padded to 60 bytes.
pub fn arp_request(sha: [u8; 6], spa: [u8; 4], tpa: [u8; 4]) -> Vec<u8> {
    let mut f = [&[0xff; 6][..], &sha, &[0x08, 0x06, 0, 1, 0x08, 0, 6, 4, 0, 1]].concat();
    f.extend_from_slice(&sha);
    f.extend_from_slice(&spa);
    f.extend_from_slice(&[0; 6]);
    f.extend_from_slice(&tpa);
    f.resize(60, 0);
    f
}

/// Every prefix of `frame` shorter than it (the empty one first).
pub fn prefixes(frame: &[u8]) -> Vec<Vec<u8>> {
    (0..frame.len()).map(|n| frame[..n].to_vec()).collect()
}

/// Every prefix of `good`, and `good` with its IP version, header length and total
/// length set wrong (IPv4 or IPv6, found from the EtherType at 12).
pub fn malformed_variants(good: &[u8]) -> Vec<Vec<u8>> {
    let mut v = prefixes(good);
    let v6 = good.get(12..14) == Some(&[0x86, 0xdd][..]);
    let set = |at: usize, bytes: &[u8]| {
        let mut f = good.to_vec();
        f[at..at + bytes.len()].copy_from_slice(bytes);
        f
    };
    for b in [0x00, 0x55, 0x65, 0x45, 0x4f, 0x41, 0xff] {
        v.push(set(14, &[b]));
    }
    let (len_at, lens): (usize, &[u16]) = if v6 {
        (18, &[0, 1, 39, 41, 1500, 0xffff])
    } else {
        (16, &[0, 1, 19, 21, 1500, 0xffff])
    };
    for l in lens {
        v.push(set(len_at, &l.to_be_bytes()));
    }
    v.push(set(12, &[0x81, 0x00])); // a VLAN tag made of the IP header
    v
}

/// `n` random byte strings of 0..120 bytes (a fixed seed), some with an IP EtherType.
pub fn garbage(n: usize) -> Vec<Vec<u8>> {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    (0..n)
        .map(|i| {
            let len = (next() % 120) as usize;
            let mut f: Vec<u8> = (0..len).map(|_| next() as u8).collect();
            if f.len() >= 15 {
                let et: &[u8] = match i % 4 {
                    0 => &[0x08, 0x00],
                    1 => &[0x86, 0xdd],
                    2 => &[0x08, 0x06],
                    _ => &[0x81, 0x00],
                };
                f[12..14].copy_from_slice(et);
                if i % 4 == 0 {
                    f[14] = 0x45;
                }
            }
            f
        })
        .collect()
}

thread_local! {
    static NOW: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

/// A clock the test sets by hand ([`set_now`]), in nanoseconds: NFs that age state or
/// pace packets read time through a `clock: fn() -> u64` field, which tests point here.
pub fn fake_now() -> u64 {
    NOW.with(std::cell::Cell::get)
}

/// Set [`fake_now`] (per test thread).
pub fn set_now(ns: u64) {
    NOW.with(|c| c.set(ns));
}
