//! openNetVM's other examples: skeleton, tbf (simple_fwd_tb), fair_queue,
//! load_generator, scaling, messaging (test_messaging), heavy_hitter and
//! flood_mitigator (the NFD examples' heavy-hitter and DNS/UDP-flood NFs).

use std::time::Duration;

use crate::basics::one_nf;
use crate::common::distinct_udp_frames;
use crate::common::golden::Golden;

#[test]
fn skeleton_counts_and_passes_every_frame_in_order() {
    let input = distinct_udp_frames(150, 7);
    let bytes: u64 = input.iter().map(|f| f.len() as u64).sum();
    let run = Golden::new("skeleton", &one_nf("skeleton", &["-p", "0"]))
        .input(input.clone())
        .run();
    run.assert_port(0, &input);
    assert_eq!(run.counter("skeleton", "packets"), 150);
    assert_eq!(run.counter("skeleton", "bytes"), bytes);
}

#[test]
fn tbf_holds_a_burst_and_releases_it_in_order_without_loss() {
    // 200 frames of 1000 bytes against a 5000-byte bucket refilled at 1 MB/s: 5 leave
    // at once, the rest wait and leave about one a millisecond (0.2 s in all).
    let input: Vec<Vec<u8>> = (0..200u32)
        .map(|i| {
            let tag = i.to_be_bytes();
            onvm_packet::UdpSpec {
                payload: &tag,
                frame_len: Some(1000),
                ..onvm_packet::UdpSpec::new([10, 0, 0, 1], [10, 0, 0, 2], 1000, 2000)
            }
            .to_vec()
            .unwrap()
        })
        .collect();
    let run = Golden::new("tbf", &one_nf("tbf", &["-D", "5000", "-R", "1"]))
        .input(input.clone())
        .run();
    run.assert_port(0, &input);
    let (passed, released) = (run.counter("tbf", "passed"), run.counter("tbf", "released"));
    assert_eq!(passed + released, 200, "{}", run.report("tbf"));
    // The replay is far faster than 1 MB/s, so most frames had to wait.
    assert!(released >= 100, "{}", run.report("tbf"));
    assert_eq!(run.counter("tbf", "dropped"), 0);
    eprintln!("{}", run.report("tbf"));
}

/// A UDP frame of `len` bytes from source port `sport`, `seq` in its first payload bytes.
fn tagged(sport: u16, seq: u32, len: usize) -> Vec<u8> {
    let tag = seq.to_be_bytes();
    onvm_packet::UdpSpec {
        payload: &tag,
        frame_len: Some(len),
        ..onvm_packet::UdpSpec::new([10, 0, 0, 1], [10, 0, 0, 2], sport, 2000)
    }
    .to_vec()
    .unwrap()
}

/// A UDP frame from port `sport` to port `dport`, `seq` in its payload (64 bytes).
fn tagged_to(sport: u16, dport: u16, seq: u32) -> Vec<u8> {
    onvm_packet::UdpSpec {
        payload: &seq.to_be_bytes(),
        frame_len: Some(64),
        ..onvm_packet::UdpSpec::new([10, 0, 0, 1], [10, 0, 0, 2], sport, dport)
    }
    .to_vec()
    .unwrap()
}

/// The source port and tag of a frame from [`tagged`].
fn tag_of(f: &[u8]) -> (u16, u32) {
    (
        u16::from_be_bytes([f[34], f[35]]),
        u32::from_be_bytes([f[42], f[43], f[44], f[45]]),
    )
}

/// The queue fair_queue puts a [`tagged`] frame in among `n`: CRC32c of source and
/// destination address, protocol, source and destination port (its documented hash).
fn fq_queue(sport: u16, n: u32) -> u32 {
    let mut key = vec![10, 0, 0, 1, 10, 0, 0, 2, 17];
    key.extend_from_slice(&sport.to_be_bytes());
    key.extend_from_slice(&2000u16.to_be_bytes());
    onvm_packet::crc32c(&key) % n
}

#[test]
fn fair_queue_interleaves_a_flow_that_arrives_behind_another() {
    // Two flows in different queues; all of A arrives before B. Paced at 200 packets/s
    // with a quantum of one frame, B's packets leave between A's, not after them.
    let a = 1000;
    let b = (1001..2000).find(|&p| fq_queue(p, 4) != fq_queue(a, 4)).unwrap();
    let mut input: Vec<Vec<u8>> = (0..100).map(|i| tagged(a, i, 100)).collect();
    input.extend((0..100).map(|i| tagged(b, i, 100)));
    let run = Golden::new(
        "fair-queue",
        &one_nf("fair_queue", &["-n", "4", "--quantum", "100", "--rate", "200"]),
    )
    .input(input.clone())
    .run();
    let out: Vec<(u16, u32)> = run.port(0).iter().map(|f| tag_of(f)).collect();
    assert_eq!(out.len(), 200);
    for flow in [a, b] {
        let seqs: Vec<u32> = out.iter().filter(|t| t.0 == flow).map(|t| t.1).collect();
        assert_eq!(seqs, (0..100).collect::<Vec<_>>(), "flow {flow} out of order");
    }
    let first_b = out.iter().position(|t| t.0 == b).unwrap();
    assert!(first_b < 80, "B waited behind A: first at {first_b}");
    let bs = out[first_b..first_b + 100].iter().filter(|t| t.0 == b).count();
    assert!(bs >= 40, "B got {bs} of 100 places after it arrived");
    let r = run.report("fair_queue");
    assert!(
        r.starts_with("fair_queue: enqueued 200, sent 200, dropped 0, waiting 0"),
        "{r}"
    );
    for q in [fq_queue(a, 4), fq_queue(b, 4)] {
        assert_eq!(run.counter("fair_queue", &format!("q{q} sent")), 100, "{r}");
    }
}

/// A UDP frame from `src`:`sport` to `dst`:`dport` carrying `payload`.
fn udp(src: [u8; 4], sport: u16, dst: [u8; 4], dport: u16, payload: &[u8]) -> Vec<u8> {
    onvm_packet::UdpSpec {
        payload,
        ..onvm_packet::UdpSpec::new(src, dst, sport, dport)
    }
    .to_vec()
    .unwrap()
}

#[test]
fn heavy_hitter_drops_sources_past_the_threshold_and_lists_them() {
    // Sources .1 (100 packets), .2 (60) and .3 (20), interleaved; over 50 a window
    // (60 s: one window in the test) a source is heavy and the rest of its packets drop.
    let mut input = Vec::new();
    let mut want = Vec::new();
    let mut seen = [0u32; 4];
    for i in 0..100u16 {
        for (s, every) in [(1u8, 1), (2, 5), (3, 5)] {
            let take = match s {
                1 => true,
                2 => i % every != 4,
                _ => i % every == 4,
            };
            if !take {
                continue;
            }
            let f = udp([10, 0, 0, s], 1000 + i, [10, 9, 9, 9], 80, &i.to_be_bytes());
            seen[usize::from(s)] += 1;
            if seen[usize::from(s)] <= 50 {
                want.push(f.clone());
            }
            input.push(f);
        }
    }
    assert_eq!(seen[1..], [100, 80, 20]);
    let run = Golden::new(
        "heavy-hitter",
        &one_nf(
            "heavy_hitter",
            &[
                "--threshold",
                "50",
                "--window",
                "60",
                "--drop",
                "--quiet",
                "--seed",
                "7",
            ],
        ),
    )
    .input(input)
    .run();
    run.assert_port(0, &want);
    assert_eq!(run.counter("heavy_hitter", "packets"), 200);
    assert_eq!(run.counter("heavy_hitter", "heavy"), 50 + 30);
    let r = run.report("heavy_hitter");
    assert!(r.ends_with("; top 10.0.0.1=100 10.0.0.2=80"), "{r}");
}

/// A DNS message: `id`, a query or a response, one question for example.com.
fn dns(id: u16, response: bool) -> Vec<u8> {
    let mut m = id.to_be_bytes().to_vec();
    m.extend_from_slice(&[if response { 0x81 } else { 0x01 }, 0x80, 0, 1, 0, 0, 0, 0, 0, 0]);
    m.extend_from_slice(b"\x07example\x03com\x00\x00\x01\x00\x01");
    m
}

#[test]
fn flood_mitigator_drops_a_flood_and_amplified_answers_but_not_the_asked_one() {
    const CLIENT: [u8; 4] = [192, 168, 1, 10];
    const VICTIM: [u8; 4] = [192, 168, 1, 20];
    const RESOLVER: [u8; 4] = [8, 8, 8, 8];
    // 1 packet/s over a 60 s window: a destination's 61st UDP packet is a flood.
    let query = udp(CLIENT, 5353, RESOLVER, 53, &dns(0x1234, false));
    let flood: Vec<Vec<u8>> = (0..80u8)
        .map(|i| udp([203, 0, 113, i], 40000, VICTIM, 9999, &[i; 32]))
        .collect();
    let amplified: Vec<Vec<u8>> = (0..70u16)
        .map(|i| udp([198, 51, 100, i as u8], 53, CLIENT, 5353, &dns(i, true)))
        .collect();
    let answer = udp(RESOLVER, 53, CLIENT, 5353, &dns(0x1234, true));
    let tcp = onvm_packet::TcpSpec::new([203, 0, 113, 1], VICTIM, 40000, 80)
        .to_vec()
        .unwrap();
    let mut input = vec![query.clone()];
    input.extend(flood.iter().cloned());
    input.extend(amplified.iter().cloned());
    input.push(answer.clone());
    input.push(tcp.clone());
    let mut want = vec![query];
    want.extend(flood[..60].iter().cloned());
    want.push(answer);
    want.push(tcp);
    let run = Golden::new(
        "flood-mitigator",
        &one_nf(
            "flood_mitigator",
            &[
                "--udp-threshold",
                "1",
                "--window",
                "60",
                "--inside",
                "192.168.1.0/24",
                "--dns-strict",
            ],
        ),
    )
    .input(input)
    .run();
    run.assert_port(0, &want);
    let c = |k| run.counter("flood_mitigator", k);
    assert_eq!(
        (
            c("passed"),
            c("dropped_flood"),
            c("dropped_unsolicited_dns"),
            c("answered")
        ),
        (63, 20, 70, 1)
    );
}

#[test]
fn messaging_passes_its_self_tests_through_the_manager_while_packets_pass() {
    // The frames come 2 s after the start, so the tests (about 1.3 MB of messages
    // through the manager) run while the manager is up; the chain takes only IPv4,
    // leaving the lead-in frame to the manager.
    let input = distinct_udp_frames(100, 9);
    let body = one_nf("messaging", &[]).replace("in_port = 0", "in_port = 0\nmatch = { eth_type = 2048 }");
    let run = Golden::new("messaging", &body)
        .input_after(input.clone(), Duration::from_secs(2))
        .run();
    run.assert_port(0, &input);
    let r = run.report("messaging");
    assert_eq!(run.counter("messaging", "passed"), 5, "{r}");
    assert_eq!(run.counter("messaging", "failed"), 0, "{r}");
    assert_eq!(run.counter("messaging", "received"), 1 + 32 + 1 + 256, "{r}");
    assert_eq!(run.counter("messaging", "packets"), 100, "{r}");
}

/// A frame no chain takes (IEEE 802 local experimental ethertype): the manager drops
/// it. An input of it 2 s late keeps `onvm up` running while an NF generates.
fn keep_alive() -> Vec<Vec<u8>> {
    let mut f = vec![0xffu8; 12];
    f.extend_from_slice(&0x88b5u16.to_be_bytes());
    f.resize(60, 0);
    vec![f]
}

#[test]
fn load_generator_sends_its_flows_out_of_a_port_and_stops_at_the_count() {
    let body = r#"
[services]
gen = 1

[[nfs]]
name = "load_generator"
service = "gen"
args = ["-o", "1", "-t", "2000", "-s", "128", "-m", "02:00:00:00:00:aa", "--flows", "4", "--count", "100", "--quiet"]
"#;
    let run = Golden::new("load-generator-out", body)
        .input_after(keep_alive(), Duration::from_secs(2))
        .run();
    let want: Vec<Vec<u8>> = (0..100u32)
        .map(|i| {
            let mut f = onvm_packet::build_udp_for_flow_vec(i % 4, 124).unwrap();
            f[..6].copy_from_slice(&[2, 0, 0, 0, 0, 0xaa]);
            f
        })
        .collect();
    run.assert_port(0, &want);
    assert_eq!(run.counter("load_generator", "sent"), 100);
    // Paced at 2000/s: 100 packets take about 50 ms; a busy machine only slows it.
    let pps = run.counter("load_generator", "tx_pps");
    assert!(pps <= 2200, "{}", run.report("load_generator"));
}

#[test]
fn load_generator_measures_the_packets_a_forwarder_sends_back() {
    let body = r#"
[services]
gen = 1
back = 2

[[nfs]]
name = "load_generator"
service = "gen"
args = ["-d", "2", "-t", "5000", "--flows", "8", "--count", "300", "--quiet", "--delay", "0.5"]

[[nfs]]
name = "simple_forward"
service = "back"
args = ["-d", "1"]
"#;
    let run = Golden::new("load-generator-loop", body)
        .input_after(keep_alive(), Duration::from_secs(2))
        .run();
    let c = |k| run.counter("load_generator", k);
    let r = run.report("load_generator");
    assert_eq!((c("sent"), c("received")), (300, 300), "{r}\n{}", run.log);
    let (p50, p99) = (c("p50_ns"), c("p99_ns"));
    assert!(p50 > 0 && p50 <= p99 && p99 < 1_000_000_000, "{r}");
    // Packets a tick allocates leave before the NF sleeps (up to 5 ms on a shared core,
    // which the median round trip once was): typically tens of µs, 2.5 ms on a busy box.
    assert!(p50 < 2_500_000, "{r}");
    assert!(c("rx_pps") > 0, "{r}");
}

#[test]
fn scaling_starts_two_children_and_every_packet_passes_through_the_three() {
    // The frames come 1 s after the start, when the children have registered. The
    // flows differ in their destination port: `distinct_udp_frames`' flows move the
    // source address's and port's low bytes together, which the symmetric RSS key
    // (0x6d5a repeated) cancels out, so they would all hash to one instance.
    let input: Vec<Vec<u8>> = (0..300u32)
        .map(|i| tagged_to(1000, 3000 + (i % 64) as u16, i))
        .collect();
    let body = one_nf("scaling", &["-n", "2"]);
    let run = Golden::new("scaling", &body)
        .input_after(input.clone(), Duration::from_secs(1))
        .run();
    // The service has 1 + 2 instances: the manager logs each registration (its lines
    // may be cut by an NF's output, so only this piece of them is looked for).
    let mut instances: Vec<&str> = run
        .log
        .split("registered: instance ")
        .skip(1)
        .filter_map(|rest| rest.split_once(", service 1,").map(|(id, _)| id))
        .collect();
    instances.sort();
    assert_eq!(instances, ["1", "2", "3"], "{}", run.log);
    let r = run.report("scaling");
    assert_eq!(run.counter("scaling", "children"), 2, "{r}");
    assert_eq!(run.counter("scaling", "failed"), 0, "{r}");
    assert_eq!(run.counter("scaling", "total"), 301, "{r}");
    // The lead-in frame (no flow) goes to the parent; the flows spread over all three.
    for who in [
        "parent packets",
        "scaling#1 (instance 2) rx",
        "scaling#2 (instance 3) rx",
    ] {
        assert!(run.counter("scaling", who) > 0, "{who}: {r}");
    }
    // Instances may interleave flows; each flow keeps its order and nothing is lost.
    let out: Vec<Vec<u8>> = run.port(0).iter().filter(|f| f[12..14] == [8, 0]).cloned().collect();
    assert_eq!(out.len(), 300);
    let flow_of = |f: &[u8]| f[26..38].to_vec();
    for f in input
        .iter()
        .map(|f| flow_of(f))
        .collect::<std::collections::BTreeSet<_>>()
    {
        let a: Vec<&Vec<u8>> = input.iter().filter(|x| flow_of(x) == f).collect();
        let b: Vec<&Vec<u8>> = out.iter().filter(|x| flow_of(x) == f).collect();
        assert_eq!(a, b, "a flow changed");
    }
}
