//! NFs that keep per-connection or per-flow state: stateful_firewall, nat, vxlan
//! (encap/decap) and rate_limiter.

use std::time::Duration;

use onvm_packet::{TcpFlags, TcpSpec, UdpSpec};

use crate::common::golden::Golden;

/// Port 0 is the inside, port 1 the outside (its frames come after port 0's); the NF
/// `name` on service 1 with `args` sends outbound packets out of port 2 and inbound out
/// of port 3 (its args say so).
fn two_sided(name: &str, args: &[&str]) -> String {
    format!(
        r#"
[services]
nf = 1

[[nfs]]
name = "{name}"
service = "nf"
args = {args:?}

[[chains]]
name = "outbound"
chain = ["nf"]
in_port = 0

[[chains]]
name = "inbound"
chain = ["nf"]
in_port = 1
match = {{ eth_type = 2048 }}
"#
    )
}

const IN: [u8; 4] = [10, 0, 0, 5];
const OUT: [u8; 4] = [198, 51, 100, 7];

fn tcp(src: [u8; 4], dst: [u8; 4], sp: u16, dp: u16, flags: TcpFlags) -> Vec<u8> {
    TcpSpec {
        flags,
        seq: 1000,
        ..TcpSpec::new(src, dst, sp, dp)
    }
    .to_vec()
    .unwrap()
}

fn udp(src: [u8; 4], dst: [u8; 4], sp: u16, dp: u16) -> Vec<u8> {
    UdpSpec {
        payload: b"query",
        ..UdpSpec::new(src, dst, sp, dp)
    }
    .to_vec()
    .unwrap()
}

#[test]
fn stateful_firewall_passes_replies_and_allowed_inbound_and_drops_the_rest() {
    let syn = tcp(IN, OUT, 40000, 80, TcpFlags::SYN);
    let query = udp(IN, OUT, 5000, 53);
    let no_syn = tcp(IN, OUT, 40001, 80, TcpFlags::ACK);
    let synack = tcp(OUT, IN, 80, 40000, TcpFlags::SYN | TcpFlags::ACK);
    let answer = udp(OUT, IN, 53, 5000);
    let unsolicited = udp(OUT, IN, 53, 6000);
    let ssh = tcp(OUT, IN, 5555, 22, TcpFlags::SYN);
    let rst = tcp(OUT, IN, 80, 40000, TcpFlags::RST);
    let after_rst = tcp(OUT, IN, 80, 40000, TcpFlags::ACK);
    let args = [
        "--inside",
        "10.0.0.0/8",
        "--allow-in",
        "tcp:22",
        "--to-outside",
        "out:2",
        "--to-inside",
        "out:3",
    ];
    let run = Golden::new("stateful-firewall", &two_sided("stateful_firewall", &args))
        .input(vec![syn.clone(), query.clone(), no_syn])
        .input_after(
            vec![
                synack.clone(),
                answer.clone(),
                unsolicited,
                ssh.clone(),
                rst.clone(),
                after_rst,
            ],
            Duration::from_millis(500),
        )
        .outputs(2)
        .run();
    run.assert_port(0, &[syn, query]);
    run.assert_port(1, &[synack, answer, ssh, rst]);
    let c = |k| run.counter("stateful_firewall", k);
    assert_eq!(
        (
            c("new"),
            c("closed"),
            c("dropped_invalid"),
            c("dropped_no_conn"),
            c("table_full"),
            c("passed")
        ),
        (3, 1, 2, 1, 0, 6)
    );
}

fn icmp_echo(src: [u8; 4], dst: [u8; 4], request: bool, id: u16) -> Vec<u8> {
    let b =
        onvm_packet::etherparse::PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2]).ipv4(src, dst, 64);
    let b = if request {
        b.icmpv4_echo_request(id, 1)
    } else {
        b.icmpv4_echo_reply(id, 1)
    };
    let mut v = Vec::new();
    b.write(&mut v, b"ping").unwrap();
    v
}

#[test]
fn nat_translates_out_and_back_with_a_two_port_pool_and_a_static_rule() {
    const PUB: [u8; 4] = [203, 0, 113, 1];
    const A: [u8; 4] = [10, 0, 0, 5];
    const B: [u8; 4] = [10, 0, 0, 6];
    const SRV: [u8; 4] = [10, 0, 0, 9];
    let args = [
        "--public",
        "203.0.113.1",
        "--inside",
        "10.0.0.0/8",
        "--ports",
        "20000-20001",
        "--forward",
        "tcp:2222=10.0.0.9:22",
        "--to-outside",
        "out:2",
        "--to-inside",
        "out:3",
    ];
    let syn = |s, d, sp, dp| tcp(s, d, sp, dp, TcpFlags::SYN);
    let synack = |s, d, sp, dp| tcp(s, d, sp, dp, TcpFlags::SYN | TcpFlags::ACK);
    let outbound = vec![
        udp(A, OUT, 5000, 53),
        syn(B, OUT, 40000, 80),
        udp(B, OUT, 5001, 53),
        udp([10, 0, 0, 7], OUT, 5002, 53), // the UDP pool is used up
        icmp_echo(A, OUT, true, 7),
        udp(A, OUT, 5000, 123), // the same inside endpoint keeps its port
    ];
    let inbound = vec![
        udp(OUT, PUB, 53, 20000),
        synack(OUT, PUB, 80, 20000),
        icmp_echo(OUT, PUB, false, 20000),
        udp(OUT, PUB, 53, 20005), // no mapping
        syn(OUT, PUB, 5555, 2222),
        udp(OUT, PUB, 53, 20001),
    ];
    let run = Golden::new("nat", &two_sided("nat", &args))
        .input(outbound)
        .input_after(inbound, Duration::from_millis(500))
        .outputs(2)
        .run();
    run.assert_port(
        0,
        &[
            udp(PUB, OUT, 20000, 53),
            syn(PUB, OUT, 20000, 80),
            udp(PUB, OUT, 20001, 53),
            icmp_echo(PUB, OUT, true, 20000),
            udp(PUB, OUT, 20000, 123),
        ],
    );
    run.assert_port(
        1,
        &[
            udp(OUT, A, 53, 5000),
            synack(OUT, B, 80, 40000),
            icmp_echo(OUT, A, false, 7),
            syn(OUT, SRV, 5555, 22),
            udp(OUT, B, 53, 5001),
        ],
    );
    let c = |k| run.counter("nat", k);
    assert_eq!(
        (
            c("translations"),
            c("out"),
            c("in"),
            c("no_ports"),
            c("no_mapping"),
            c("dropped")
        ),
        (4, 5, 5, 1, 1, 0)
    );
}

/// The outer frame RFC 7348 puts around `inner`, built with etherparse; the source port
/// by the documented formula (49152 + CRC32c of the inner addresses, protocol and ports).
fn vxlan_outer(inner: &[u8], vni: u32) -> Vec<u8> {
    use onvm_packet::etherparse::{IpHeaders, Ipv4Header, PacketBuilder};
    let mut key = inner[26..34].to_vec(); // inner IPv4 source and destination
    key.push(inner[23]); // protocol
    key.extend_from_slice(&inner[34..38]); // ports
    let sport = 49152 + (onvm_packet::crc32c(&key) % 16384) as u16;
    let mut ip = Ipv4Header::new(0, 64, 17.into(), [192, 0, 2, 1], [192, 0, 2, 2]).unwrap();
    ip.dont_fragment = true;
    let mut payload = vec![0x08, 0, 0, 0];
    payload.extend_from_slice(&(vni << 8).to_be_bytes());
    payload.extend_from_slice(inner);
    let mut v = Vec::new();
    PacketBuilder::ethernet2([2, 0, 0, 0, 0, 0xa], [2, 0, 0, 0, 0, 0xb])
        .ip(IpHeaders::Ipv4(ip, Default::default()))
        .udp(sport, 4789)
        .write(&mut v, &payload)
        .unwrap();
    v[40..42].copy_from_slice(&[0, 0]); // no UDP checksum
    v
}

#[test]
fn vxlan_encap_builds_rfc7348_frames_and_decap_gives_the_input_back() {
    let encap = r#"["--mode", "encap", "--vni", "4242", "--local", "192.0.2.1", "--remote", "192.0.2.2", "--src-mac", "02:00:00:00:00:0a", "--dst-mac", "02:00:00:00:00:0b"]"#;
    let body = format!(
        r#"
[services]
enc1 = 1
enc2 = 2
dec = 3

[[nfs]]
name = "vxlan"
service = "enc1"
args = {encap}

[[nfs]]
name = "vxlan"
service = "enc2"
args = {encap}

[[nfs]]
name = "vxlan"
service = "dec"
args = ["--mode", "decap", "--vni", "4242"]

[[chains]]
name = "wrap"
chain = ["enc1", "out:2"]
in_port = 0

[[chains]]
name = "there-and-back"
chain = ["enc2", "dec", "out:3"]
in_port = 1
"#
    );
    let input = crate::common::distinct_udp_frames(200, 23);
    let run = Golden::new("vxlan", &body)
        .input(input.clone())
        .input(input.clone())
        .outputs(2)
        .run();
    let want: Vec<Vec<u8>> = input.iter().map(|f| vxlan_outer(f, 4242)).collect();
    run.assert_port(0, &want);
    run.assert_port(1, &input);
    let lines: Vec<&str> = run.log.lines().filter(|l| l.starts_with("vxlan: ")).collect();
    assert_eq!(
        lines
            .iter()
            .filter(|l| l.contains("encapsulated 200, dropped 0"))
            .count(),
        2,
        "{lines:?}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.contains("decapsulated 200, wrong_vni 0, not_vxlan 0")),
        "{lines:?}"
    );
}

#[test]
fn rate_limiter_passes_the_burst_of_a_flood_and_leaves_another_flow_alone() {
    // Flow A: 1000 packets at once (numbered in the payload); flow B: 100, one after
    // every 10th of A's. 10 pps with a burst of 100: A gets its burst (plus what refills
    // while the capture replays, a packet per 100 ms), B all of its 100.
    let frame = |sport: u16, i: u32| {
        let payload = i.to_be_bytes();
        UdpSpec {
            payload: &payload,
            frame_len: Some(60),
            ..UdpSpec::new(IN, OUT, sport, 53)
        }
        .to_vec()
        .unwrap()
    };
    let mut input = Vec::new();
    for i in 0..1000 {
        input.push((true, frame(1000, i)));
        if i % 10 == 9 {
            input.push((false, frame(2000, i)));
        }
    }
    let body = crate::basics::one_nf("rate_limiter", &["--rate", "10", "--burst", "100", "--per", "flow"]);
    let run = Golden::new("rate-limiter", &body)
        .input(input.iter().map(|(_, f)| f.clone()).collect())
        .run();
    let a_passed = run.counter("rate_limiter", "passed") - 100;
    assert!((100..=110).contains(&a_passed), "{}", run.report("rate_limiter"));
    let mut left = a_passed;
    let want: Vec<Vec<u8>> = input
        .into_iter()
        .filter(|(a, _)| {
            if *a && left > 0 {
                left -= 1;
                return true;
            }
            !*a
        })
        .map(|(_, f)| f)
        .collect();
    run.assert_port(0, &want);
    assert_eq!(run.counter("rate_limiter", "dropped"), 1000 - a_passed);
    assert_eq!(run.counter("rate_limiter", "keys"), 2);
}
