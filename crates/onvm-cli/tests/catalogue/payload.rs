//! NFs that work on payloads and flows: aes_encrypt / aes_decrypt.

use aes_gcm::aead::AeadInPlace;
use aes_gcm::{Aes128Gcm, KeyInit, Nonce, Tag};
use onvm_packet::{Headers, TcpSpec, UdpSpec};

use crate::common::golden::Golden;
use crate::common::udp_frames_up_to;

const KEY_HEX: &str = "00112233445566778899aabbccddeeff";
const KEY: [u8; 16] = [
    0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff,
];

/// Services `a` (1) and `b` (2) running `a` and `b` with their args, chained port 0 →
/// a → b → out (or port 0 → a → out when `b` is `None`).
fn chain(a: (&str, &[&str]), b: Option<(&str, &[&str])>) -> String {
    let mut s = String::from("[services]\na = 1\nb = 2\n\n");
    s += &format!("[[nfs]]\nname = {:?}\nservice = \"a\"\nargs = {:?}\n\n", a.0, a.1);
    let hops = match b {
        Some((name, args)) => {
            s += &format!("[[nfs]]\nname = {name:?}\nservice = \"b\"\nargs = {args:?}\n\n");
            "\"a\", \"b\""
        }
        None => "\"a\"",
    };
    s + &format!("[[chains]]\nname = \"through\"\nchain = [{hops}, \"out:1\"]\nin_port = 0\n")
}

/// What goes in: UDP frames of many lengths (IPv4 and IPv6) and a TCP one, which passes.
fn aes_input() -> Vec<Vec<u8>> {
    let mut input = udp_frames_up_to(120, 7, 1480);
    let (a, b): (std::net::Ipv6Addr, std::net::Ipv6Addr) =
        ("2001:db8::a".parse().unwrap(), "2001:db8::b".parse().unwrap());
    for n in [0usize, 1, 15, 16, 17, 100, 1000] {
        let payload: Vec<u8> = (0..n).map(|i| i as u8).collect();
        input.push(
            UdpSpec {
                payload: &payload,
                ..UdpSpec::new(a, b, 4000, 53)
            }
            .to_vec()
            .unwrap(),
        );
    }
    input.push(TcpSpec::new([10, 0, 0, 1], [10, 0, 0, 2], 1000, 80).to_vec().unwrap());
    input
}

/// The frame `f` with its UDP payload replaced by `payload`, built anew.
fn with_payload(f: &[u8], payload: &[u8]) -> Vec<u8> {
    let h = Headers::parse(f).unwrap();
    let spec = UdpSpec {
        src_mac: h.src_mac(),
        dst_mac: h.dst_mac(),
        payload,
        ..UdpSpec::new(
            h.src_ip().unwrap(),
            h.dst_ip().unwrap(),
            h.src_port().unwrap(),
            h.dst_port().unwrap(),
        )
    };
    spec.to_vec().unwrap()
}

fn is_udp(f: &[u8]) -> bool {
    Headers::parse(f).is_ok_and(|h| h.udp().is_some())
}

/// `nonce ‖ AES-128-GCM(payload) ‖ tag`, by the aes-gcm crate.
fn seal(nonce: &[u8], payload: &[u8]) -> Vec<u8> {
    let mut body = payload.to_vec();
    let tag = Aes128Gcm::new_from_slice(&KEY)
        .unwrap()
        .encrypt_in_place_detached(Nonce::from_slice(nonce), b"", &mut body)
        .unwrap();
    [nonce, &body, &tag[..]].concat()
}

#[test]
fn aes_encrypt_then_decrypt_gives_back_the_input_byte_for_byte() {
    let input = aes_input();
    let run = Golden::new(
        "aes-chain",
        &chain(
            ("aes_encrypt", &["-k", KEY_HEX]),
            Some(("aes_decrypt", &["-k", KEY_HEX])),
        ),
    )
    .input(input.clone())
    .run();
    run.assert_port(0, &input);
    let n = input.len() as u64;
    assert_eq!(run.counter("aes_encrypt", "encrypted"), n - 1);
    assert_eq!(run.counter("aes_encrypt", "passed"), 1);
    assert_eq!(run.counter("aes_decrypt", "decrypted"), n - 1);
    assert_eq!(run.counter("aes_decrypt", "auth_failed"), 0);
}

#[test]
fn aes_encrypt_alone_gives_payloads_the_aes_gcm_crate_decrypts_to_the_input() {
    let input = aes_input();
    let run = Golden::new("aes-encrypt", &chain(("aes_encrypt", &["-k", KEY_HEX]), None))
        .input(input.clone())
        .run();
    let out = run.port(0);
    assert_eq!(out.len(), input.len());
    let mut want = Vec::new();
    let mut nonces = std::collections::HashSet::new();
    for (o, i) in out.iter().zip(&input) {
        if !is_udp(i) {
            want.push(i.clone());
            continue;
        }
        let sealed = Headers::parse(o).unwrap().payload().to_vec();
        assert!(sealed.len() >= 28, "{sealed:?}");
        let (nonce, rest) = sealed.split_at(12);
        let (ct, tag) = rest.split_at(rest.len() - 16);
        let mut plain = ct.to_vec();
        Aes128Gcm::new_from_slice(&KEY)
            .unwrap()
            .decrypt_in_place_detached(Nonce::from_slice(nonce), b"", &mut plain, Tag::from_slice(tag))
            .expect("the tag verifies");
        assert_eq!(plain, Headers::parse(i).unwrap().payload());
        assert!(nonces.insert(nonce.to_vec()), "a nonce repeated");
        // The whole frame, lengths and checksums included, built from the input.
        want.push(with_payload(i, &seal(nonce, &plain)));
    }
    run.assert_port(0, &want);
}

#[test]
fn aes_decrypt_drops_and_counts_a_tampered_frame() {
    let plain: Vec<Vec<u8>> = udp_frames_up_to(20, 3, 800);
    let mut sealed: Vec<Vec<u8>> = plain
        .iter()
        .enumerate()
        .map(|(i, f)| {
            let mut nonce = [0u8; 12];
            nonce[..4].copy_from_slice(&(i as u32).to_be_bytes());
            with_payload(f, &seal(&nonce, Headers::parse(f).unwrap().payload()))
        })
        .collect();
    // Flip a bit of the ciphertext of frame 5 and of the tag of frame 9 (checksums fixed,
    // so only the tag tells).
    for (i, back) in [(5usize, 20usize), (9, 1)] {
        let n = sealed[i].len();
        sealed[i][n - back] ^= 0x40;
        onvm_packet::fix_checksums(&mut sealed[i]).unwrap();
    }
    let run = Golden::new("aes-decrypt", &chain(("aes_decrypt", &["-k", KEY_HEX]), None))
        .input(sealed)
        .run();
    let want: Vec<Vec<u8>> = plain
        .into_iter()
        .enumerate()
        .filter(|(i, _)| *i != 5 && *i != 9)
        .map(|(_, f)| f)
        .collect();
    run.assert_port(0, &want);
    assert_eq!(run.counter("aes_decrypt", "auth_failed"), 2);
    assert_eq!(run.counter("aes_decrypt", "decrypted"), 18);
}

#[test]
fn payload_scan_forwards_payloads_holding_a_pattern_and_drops_the_rest() {
    let words: [&[u8]; 6] = [
        b"GET /evil HTTP/1.1",
        b"nothing here",
        b"x\0attack\0",
        b"ev il",
        b"signature-in-file",
        b"",
    ];
    let mut input = Vec::new();
    for (i, w) in words.iter().cycle().take(60).enumerate() {
        let f = if i % 2 == 0 {
            UdpSpec {
                payload: w,
                ..UdpSpec::new([10, 0, 0, 1], [10, 0, 0, 2], 1000 + i as u16, 53)
            }
            .to_vec()
        } else {
            TcpSpec {
                payload: w,
                ..TcpSpec::new([10, 0, 0, 1], [10, 0, 0, 2], 1000 + i as u16, 80)
            }
            .to_vec()
        };
        input.push(f.unwrap());
    }
    // No TCP/UDP payload to search: not a match.
    let mut arp = vec![0xff; 6];
    arp.extend_from_slice(&[2, 0, 0, 0, 0, 1, 0x08, 0x06]);
    arp.resize(60, 0);
    input.push(arp);
    let dir = crate::common::TempDir::new("scan-patterns");
    let file = dir.write("patterns.txt", "signature-in-file\r\n\n");
    let file = file.display().to_string();
    let holds = |f: &Vec<u8>| {
        let p = Headers::parse(f).map(|h| h.payload().to_vec()).unwrap_or_default();
        [&b"evil"[..], b"attack", b"signature-in-file"]
            .iter()
            .any(|pat| p.windows(pat.len()).any(|w| w == *pat))
    };
    let want: Vec<Vec<u8>> = input.iter().filter(|f| holds(f)).cloned().collect();
    assert_eq!(want.len(), 30);
    let args = ["-s", "evil", "-s", "attack", "-f", file.as_str()];
    let run = Golden::new("payload-scan", &chain(("payload_scan", &args), None))
        .input(input.clone())
        .run();
    run.assert_port(0, &want);
    assert_eq!(run.counter("payload_scan", "matched"), 30);
    assert_eq!(run.counter("payload_scan", "unmatched"), 30);
    assert_eq!(run.counter("payload_scan", "no_payload"), 1);
    assert_eq!(run.counter("payload_scan", "dropped"), 31);

    let inverted = ["-i", "-s", "evil", "-s", "attack", "-f", file.as_str()];
    let run = Golden::new("payload-scan-i", &chain(("payload_scan", &inverted), None))
        .input(input.clone())
        .run();
    let rest: Vec<Vec<u8>> = input.iter().filter(|f| !holds(f)).cloned().collect();
    run.assert_port(0, &rest);
    assert_eq!(run.counter("payload_scan", "forwarded"), 31);
}

/// `n` UDP frames over `flows` conversations, every third round of them replies (ports and
/// addresses swapped).
fn conversations(n: usize, flows: u8) -> Vec<Vec<u8>> {
    (0..n)
        .map(|i| {
            let f = (i % usize::from(flows)) as u8;
            let payload = (i as u32).to_be_bytes();
            let spec = UdpSpec {
                payload: &payload,
                ..UdpSpec::new([10, 0, 1, f], [10, 0, 2, 1], 5000 + u16::from(f), 80)
            };
            let spec = if (i / usize::from(flows)) % 3 == 2 {
                UdpSpec {
                    payload: &payload,
                    ..UdpSpec::new(spec.dst_ip, spec.src_ip, spec.dst_port, spec.src_port)
                }
            } else {
                spec
            };
            spec.to_vec().unwrap()
        })
        .collect()
}

#[test]
fn flow_tracker_counts_conversations_and_passes_every_frame() {
    let mut input = conversations(200, 9);
    input.push(vec![0xee; 20]);
    let args = ["--bidir", "-p", "1", "--max-flows", "100"];
    let run = Golden::new("flow-tracker", &chain(("flow_tracker", &args), None))
        .input(input.clone())
        .run();
    run.assert_port(0, &input);
    assert_eq!(run.counter("flow_tracker", "flows"), 9);
    assert_eq!(run.counter("flow_tracker", "packets"), 201);
    assert_eq!(run.counter("flow_tracker", "other"), 1);
    assert_eq!(run.counter("flow_tracker", "evicted"), 0);

    // One way only, in a table of 8: the 18 directions do not fit, so flows are evicted
    // and the table never holds more than 8.
    let args = ["-p", "0", "--max-flows", "8"];
    let run = Golden::new("flow-tracker-small", &chain(("flow_tracker", &args), None))
        .input(input.clone())
        .run();
    run.assert_port(0, &input);
    assert!(run.counter("flow_tracker", "active") <= 8);
    assert!(run.counter("flow_tracker", "evicted") > 0);
    assert_eq!(
        run.counter("flow_tracker", "flows"),
        run.counter("flow_tracker", "active") + run.counter("flow_tracker", "evicted")
    );
}

#[test]
fn test_flow_dir_sends_each_flow_s_first_packet_to_its_service_and_the_rest_on() {
    let input = conversations(90, 6);
    let body = r#"
[services]
dir = 1
side = 2

[[nfs]]
name = "test_flow_dir"
service = "dir"
args = ["-d", "2"]

[[nfs]]
name = "simple_forward"
service = "side"

[[chains]]
name = "through"
chain = ["dir", "out:1"]
in_port = 0

[[chains]]
name = "detour"
chain = ["side", "out:2"]
in_port = 1
"#;
    let run = Golden::new("test-flow-dir", body).input(input.clone()).outputs(2).run();
    // Each direction of each conversation is a flow: 12, whose first packets go round.
    let mut seen = std::collections::HashSet::new();
    let (mut first, mut rest) = (Vec::new(), Vec::new());
    for f in &input {
        let h = Headers::parse(f).unwrap();
        if seen.insert((h.src_ip(), h.src_port(), h.dst_ip(), h.dst_port())) {
            first.push(f.clone());
        } else {
            rest.push(f.clone());
        }
    }
    assert_eq!(first.len(), 12);
    run.assert_port(0, &rest);
    run.assert_port(1, &first);
    assert_eq!(run.counter("test_flow_dir", "new"), 12);
    assert_eq!(run.counter("test_flow_dir", "hits"), 78);
}

const VIP: [u8; 4] = [10, 0, 0, 100];
const VIP_MAC: [u8; 6] = [2, 0, 0, 0, 1, 0];

fn backend_ip(i: usize) -> [u8; 4] {
    [192, 168, 1, 1 + i as u8]
}

fn backend_mac(i: usize) -> [u8; 6] {
    [2, 0, 0, 0, 2, i as u8]
}

/// FNV-1a (32 bits), the `hash` policy's function as its docs give it.
fn fnv1a(bytes: &[u8]) -> u32 {
    bytes
        .iter()
        .fold(0x811c_9dc5u32, |h, &b| (h ^ u32::from(b)).wrapping_mul(0x0100_0193))
}

#[test]
fn load_balancer_spreads_two_clients_flows_per_policy_and_rewrites_replies_back() {
    // Client c (10.0.0.1, .2) flow f (ports 1000, 1001, 1002), UDP to VIP:80, in order
    // of first appearance: (1,1000), (2,1000), (1,1001), (2,1001), (1,1002), (2,1002).
    let flows: Vec<(u8, u16)> = (0..3).flat_map(|f| [(1, 1000 + f), (2, 1000 + f)]).collect();
    let client_mac = |c: u8| [2, 0, 0, 0, 0, 0xc0 + c];
    let dir = crate::common::TempDir::new("lb-backends");
    let file = dir.write(
        "server.conf",
        "LIST_SIZE 3\n192.168.1.1 02:00:00:00:02:00 2\n192.168.1.2 02:00:00:00:02:01 # weight 1\n192.168.1.3 02:00:00:00:02:02 1\n",
    );
    for policy in ["round-robin", "weighted", "hash"] {
        // The backend of each flow, by the policy's definition.
        let pick: Vec<usize> = match policy {
            "round-robin" => vec![0, 1, 2, 0, 1, 2],
            // Smooth weighted round-robin over weights 2, 1, 1: a b c a, a b c a, …
            "weighted" => vec![0, 1, 2, 0, 0, 1],
            _ => flows
                .iter()
                .map(|&(c, p)| {
                    let key = [&[10, 0, 0, c][..], &p.to_be_bytes(), &80u16.to_be_bytes(), &[17]].concat();
                    match fnv1a(&key) % 4 {
                        0 | 1 => 0,
                        2 => 1,
                        _ => 2,
                    }
                })
                .collect(),
        };
        let (mut input, mut to_servers, mut replies, mut to_clients) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for round in 0..4u8 {
            for (i, &(c, p)) in flows.iter().enumerate() {
                let payload = [round, i as u8];
                let b = pick[i];
                let spec = |src, dst, sp, dp, src_mac, dst_mac| UdpSpec {
                    payload: &payload,
                    src_mac,
                    dst_mac,
                    ..UdpSpec::new(src, dst, sp, dp)
                };
                let client = [10, 0, 0, c];
                input.push(spec(client, VIP, p, 80, client_mac(c), VIP_MAC).to_vec().unwrap());
                to_servers.push(
                    spec(client, backend_ip(b), p, 80, VIP_MAC, backend_mac(b))
                        .to_vec()
                        .unwrap(),
                );
                if round < 2 {
                    replies.push(
                        spec(backend_ip(b), client, 80, p, backend_mac(b), VIP_MAC)
                            .to_vec()
                            .unwrap(),
                    );
                    to_clients.push(spec(VIP, client, 80, p, VIP_MAC, client_mac(c)).to_vec().unwrap());
                }
            }
        }
        let args = [
            "--vip",
            "10.0.0.100",
            "--vip-mac",
            "02:00:00:00:01:00",
            "-f",
            &file.display().to_string(),
            "--policy",
            policy,
            "--server-port",
            "2",
            "--client-port",
            "3",
        ]
        .map(String::from);
        let body = format!(
            "[services]\nlb = 1\n\n[[nfs]]\nname = \"load_balancer\"\nservice = \"lb\"\nargs = {args:?}\n\n\
             [[chains]]\nname = \"clients\"\nchain = [\"lb\"]\nin_port = 0\n\n\
             [[chains]]\nname = \"servers\"\nchain = [\"lb\"]\nin_port = 1\nmatch = {{ eth_type = 2048 }}\n"
        );
        let run = Golden::new(&format!("lb-{policy}"), &body)
            .input(input)
            .input_after(replies, std::time::Duration::from_millis(300))
            .outputs(2)
            .run();
        run.assert_port(0, &to_servers);
        run.assert_port(1, &to_clients);
        assert_eq!(run.counter("load_balancer", "flows"), 6);
        assert_eq!(run.counter("load_balancer", "to_server"), 24);
        assert_eq!(run.counter("load_balancer", "to_client"), 12);
        assert_eq!(run.counter("load_balancer", "reply_unknown"), 0);
        if policy != "hash" {
            let mut per = [0u64; 3];
            pick.iter().for_each(|&b| per[b] += 4);
            let want = format!("per_backend [{} {} {}]", per[0], per[1], per[2]);
            assert!(
                run.report("load_balancer").contains(&want),
                "{}",
                run.report("load_balancer")
            );
        }
    }
}
