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
