//! The routing NFs: firewall, l3fwd, nf_router, l2fwd, arp_response.

use std::net::IpAddr;

use onvm_packet::UdpSpec;

use crate::basics::one_nf;
use crate::common::TempDir;
use crate::common::golden::Golden;

/// A UDP frame `src` → `dst` (same family) with TTL `ttl`, source port `sport`, and
/// the MACs given.
fn udp(src: &str, dst: &str, ttl: u8, sport: u16, macs: Option<([u8; 6], [u8; 6])>) -> Vec<u8> {
    let (s, d): (IpAddr, IpAddr) = (src.parse().unwrap(), dst.parse().unwrap());
    let mut spec = UdpSpec {
        ttl,
        payload: b"golden routing payload",
        ..UdpSpec::new(s, d, sport, 53)
    };
    if let Some((dst_mac, src_mac)) = macs {
        spec.dst_mac = dst_mac;
        spec.src_mac = src_mac;
    }
    spec.to_vec().unwrap()
}

/// A raw Ethernet frame of EtherType `et` (60 bytes).
fn raw(et: u16) -> Vec<u8> {
    let mut f = vec![0xff; 6];
    f.extend_from_slice(&[2, 0, 0, 0, 0, 0x77]);
    f.extend_from_slice(&et.to_be_bytes());
    f.resize(60, 0xab);
    f
}

#[test]
fn firewall_passes_and_drops_v4_and_v6_by_longest_source_prefix() {
    let files = TempDir::new("golden-firewall-rules");
    let rules = files.write(
        "rules.txt",
        "# allow 10/8 but not 10.66/16, except one host\n\
         10.0.0.0/8 pass\n10.66.0.0/16 drop\n10.66.0.7 pass\n\
         2001:db8::/32 pass\n2001:db8:dead::/48 drop\n",
    );
    let srcs = [
        ("10.1.2.3", true),
        ("10.66.1.1", false),
        ("10.66.0.7", true),
        ("192.0.2.1", false),
        ("2001:db8:1::1", true),
        ("2001:db8:dead::1", false),
        ("2001:db9::1", false),
    ];
    let mut input = Vec::new();
    let mut want = Vec::new();
    for round in 0..20u16 {
        for (i, (src, pass)) in srcs.iter().enumerate() {
            let dst = if src.contains(':') { "2001:db8::99" } else { "10.0.0.99" };
            let f = udp(src, dst, 64, 1000 + round * 16 + i as u16, None);
            if *pass {
                want.push(f.clone());
            }
            input.push(f);
        }
    }
    // Not IP (dropped: no --pass-non-ip) and a truncated IPv4 header (malformed).
    input.push(raw(0x0806));
    input.push(input[0][..30].to_vec());
    let args = ["-f", rules.to_str().unwrap()];
    let run = Golden::new("firewall", &one_nf("firewall", &args)).input(input).run();
    run.assert_port(0, &want);
    assert_eq!(run.counter("firewall", "passed"), 60);
    assert_eq!(run.counter("firewall", "dropped"), 80);
    assert_eq!(run.counter("firewall", "non_ip"), 1);
    assert_eq!(run.counter("firewall", "malformed"), 1);
}

#[test]
fn l3fwd_routes_v4_and_v6_by_longest_prefix_and_exact_tuple() {
    let files = TempDir::new("golden-l3fwd-routes");
    // Port 0 is the input; ports 1 and 2 the outputs.
    let routes = files.write(
        "routes.txt",
        "10.0.0.0/8 1\n10.2.0.0/16 2\n2001:db8::/32 2\n2001:db8:1::/48 1\n",
    );
    let cases = [
        ("10.9.9.9", 1u16),
        ("10.2.3.4", 2),
        ("2001:db8:7::1", 2),
        ("2001:db8:1::1", 1),
        ("11.0.0.1", 0), // no route
    ];
    let mut input = Vec::new();
    let mut want = [Vec::new(), Vec::new()];
    for round in 0..10u16 {
        for (dst, port) in cases {
            let src = if dst.contains(':') { "2001:db8::1" } else { "192.0.2.1" };
            input.push(udp(src, dst, 64, 2000 + round, None));
            if port > 0 {
                let mac = |b: u16| [2, 0, 0, 0, 0, b as u8];
                let out = udp(src, dst, 63, 2000 + round, Some((mac(port), mac(port + 0x10))));
                want[usize::from(port) - 1].push(out);
            }
        }
    }
    // TTL 1: expires.
    input.push(udp("192.0.2.1", "10.9.9.9", 1, 1, None));
    let body = r#"
[services]
l3fwd = 1

[[nfs]]
name = "l3fwd"
service = "l3fwd"
args = ARGS

[[chains]]
name = "in"
chain = ["l3fwd"]
in_port = 0
"#;
    let args = format!("{:?}", ["-f", routes.to_str().unwrap()]);
    let run = Golden::new("l3fwd-lpm", &body.replace("ARGS", &args))
        .input(input)
        .outputs(2)
        .run();
    run.assert_port(0, &want[0]);
    run.assert_port(1, &want[1]);
    assert_eq!(run.counter("l3fwd", "forwarded"), 40);
    assert_eq!(run.counter("l3fwd", "no_route"), 10);
    assert_eq!(run.counter("l3fwd", "ttl_expired"), 1);

    // Exact match (-e), MACs left (-n): only the listed 5-tuples go, to their port.
    let exact = files.write(
        "exact.txt",
        "192.0.2.1 10.9.9.9 udp 7 53 2\n2001:db8::1 2001:db8:1::1 17 8 53 1\n",
    );
    let input = vec![
        udp("192.0.2.1", "10.9.9.9", 64, 7, None),
        udp("192.0.2.1", "10.9.9.9", 64, 9, None),
        udp("2001:db8::1", "2001:db8:1::1", 64, 8, None),
    ];
    let args = format!("{:?}", ["-e", "-n", "-f", exact.to_str().unwrap()]);
    let run = Golden::new("l3fwd-exact", &body.replace("ARGS", &args))
        .input(input)
        .outputs(2)
        .run();
    run.assert_port(0, &[udp("2001:db8::1", "2001:db8:1::1", 63, 8, None)]);
    run.assert_port(1, &[udp("192.0.2.1", "10.9.9.9", 63, 7, None)]);
    assert_eq!(run.counter("l3fwd", "no_route"), 1);
}
