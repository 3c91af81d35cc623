//! The routing NFs: firewall, l3fwd, nf_router, l2fwd, arp_response.

use std::net::IpAddr;
use std::time::Duration;

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

#[test]
fn nf_router_sends_each_destination_to_its_service() {
    let files = TempDir::new("golden-nf-router-conf");
    let conf = files.write(
        "route.conf",
        "LIST_SIZE 4\n10.0.0.1 2\n10.0.0.2 3\n10.7.0.0/16 3\n2001:db8:a::/48 2\n",
    );
    // Service a leaves by port 1, b by port 2; their chains' entry ports are outputs,
    // which receive nothing: only the router sends to them.
    let body = format!(
        r#"
[services]
router = 1
a = 2
b = 3

[[nfs]]
name = "nf_router"
service = "router"
args = ["-f", {conf:?}]

[[nfs]]
name = "simple_forward"
service = "a"

[[nfs]]
name = "simple_forward"
service = "b"

[[chains]]
name = "in"
chain = ["router"]
in_port = 0

[[chains]]
name = "a"
chain = ["a", "out:1"]
in_port = 1

[[chains]]
name = "b"
chain = ["b", "out:2"]
in_port = 2
"#
    );
    let cases = [
        ("10.0.0.1", Some(0)),
        ("10.0.0.2", Some(1)),
        ("10.7.3.3", Some(1)),
        ("2001:db8:a::5", Some(0)),
        ("10.0.0.3", None),
        ("2001:db8:b::5", None),
    ];
    let mut input = Vec::new();
    let mut want = [Vec::new(), Vec::new()];
    for round in 0..10u16 {
        for (dst, out) in cases {
            let src = if dst.contains(':') { "2001:db8::1" } else { "192.0.2.1" };
            let f = udp(src, dst, 64, 3000 + round, None);
            if let Some(j) = out {
                want[j].push(f.clone());
            }
            input.push(f);
        }
    }
    input.push(raw(0x0806));
    let run = Golden::new(
        "nf-router",
        &body.replace("{conf:?}", &format!("{:?}", conf.to_str().unwrap())),
    )
    .input(input)
    .outputs(2)
    .run();
    run.assert_port(0, &want[0]);
    run.assert_port(1, &want[1]);
    assert_eq!(run.counter("nf_router", "routed"), 40);
    assert_eq!(run.counter("nf_router", "no_route"), 20);
    assert_eq!(run.counter("nf_router", "non_ip"), 1);
}

#[test]
fn l2fwd_sends_port_0_s_frames_out_of_port_1_with_its_macs() {
    let body = r#"
[services]
l2fwd = 1

[[nfs]]
name = "l2fwd"
service = "l2fwd"
args = ARGS

[[chains]]
name = "in"
chain = ["l2fwd"]
in_port = 0
"#;
    let mut input: Vec<Vec<u8>> = (0..50u16)
        .map(|i| udp("192.0.2.1", "198.51.100.1", 64, 4000 + i, None))
        .collect();
    input.push(raw(0x0806));
    // Out of port 1: to its peer 02:00:00:00:00:01, from the port's own 02:00:00:00:00:11.
    let want: Vec<Vec<u8>> = input
        .iter()
        .map(|f| {
            let mut w = f.clone();
            w[..12].copy_from_slice(&[2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 0x11]);
            w
        })
        .collect();
    let run = Golden::new("l2fwd", &body.replace("ARGS", "[]"))
        .input(input.clone())
        .run();
    run.assert_port(0, &want);
    assert_eq!(run.counter("l2fwd", "forwarded"), 51);
    let run = Golden::new("l2fwd-n", &body.replace("ARGS", r#"["-n"]"#))
        .input(input.clone())
        .run();
    run.assert_port(0, &input);
}

/// An ARP request from `sha`/`spa` for `tpa` (60 bytes), written out byte by byte.
fn arp(op: u8, eth_dst: [u8; 6], sha: [u8; 6], spa: [u8; 4], tha: [u8; 6], tpa: [u8; 4]) -> Vec<u8> {
    let mut f = [&eth_dst[..], &sha, &[0x08, 0x06, 0, 1, 0x08, 0, 6, 4, 0, op]].concat();
    f.extend_from_slice(&sha);
    f.extend_from_slice(&spa);
    f.extend_from_slice(&tha);
    f.extend_from_slice(&tpa);
    f.resize(60, 0);
    f
}

/// Two input ports (0 and 1, each with its address) and one output (2). A `pcap:` input
/// cannot send, so the replies leave by `--out-port 2` instead of the arrival port
/// (which the unit tests check); port 1's frames come after port 0's, so the output's
/// order is known, and its chain takes ARP only (its lead-in frame stays out of the NF).
#[test]
fn arp_response_answers_each_port_s_address_and_passes_other_frames() {
    let body = r#"
[services]
arp = 1

[[nfs]]
name = "arp_response"
service = "arp"
args = ["-s", "10.0.0.1,10.0.1.1", "--mac", "0a:00:00:00:00:a0,0a:00:00:00:00:a1", "--out-port", "2"]

[[chains]]
name = "port0"
chain = ["arp", "out:2"]
in_port = 0

[[chains]]
name = "port1"
chain = ["arp", "out:2"]
in_port = 1
match = { eth_type = 2054 }
"#;
    let bcast = [0xff; 6];
    let host = |i: u8| [0x0a, 0xbb, 0, 0, 0, i];
    let mac0 = [0x0a, 0, 0, 0, 0, 0xa0];
    let mac1 = [0x0a, 0, 0, 0, 0, 0xa1];
    let req = |i: u8, tpa| arp(1, bcast, host(i), [10, 0, 0, 100 + i], [0; 6], tpa);
    let rep = |i: u8, mac, spa| arp(2, host(i), mac, spa, host(i), [10, 0, 0, 100 + i]);
    let ip = udp("192.0.2.1", "10.0.0.1", 64, 5000, None);
    // Port 0: requests for its address (answered), for port 1's (not ours here), a
    // reply (dropped), an IP frame (passed on).
    let in0 = vec![
        req(1, [10, 0, 0, 1]),
        req(2, [10, 0, 1, 1]),
        req(3, [10, 0, 0, 1]),
        arp(2, mac0, host(4), [10, 0, 0, 104], mac0, [10, 0, 0, 1]),
        ip.clone(),
    ];
    let in1 = vec![req(5, [10, 0, 1, 1]), req(6, [10, 0, 0, 1])];
    let want = vec![
        rep(1, mac0, [10, 0, 0, 1]),
        rep(3, mac0, [10, 0, 0, 1]),
        ip,
        rep(5, mac1, [10, 0, 1, 1]),
    ];
    let run = Golden::new("arp-response", body)
        .input(in0)
        .input_after(in1, Duration::from_millis(300))
        .run();
    run.assert_port(0, &want);
    assert_eq!(run.counter("arp_response", "replied"), 3);
    assert_eq!(run.counter("arp_response", "not_for_us"), 3);
    assert_eq!(run.counter("arp_response", "passed"), 1);
}
