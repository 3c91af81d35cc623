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
    let _ = Duration::ZERO;
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
