//! openNetVM's first four examples: simple_forward, basic_monitor and bridge.

use crate::common::distinct_udp_frames;
use crate::common::golden::Golden;

const ONE_NF: &str = r#"
[services]
nf = 1

[[nfs]]
name = "NAME"
service = "nf"
args = ARGS

[[chains]]
name = "through"
chain = ["nf", "out:1"]
in_port = 0
"#;

/// A config with one NF `name` (with `args`) on service 1, chained port 0 → NF → port 1.
pub fn one_nf(name: &str, args: &[&str]) -> String {
    ONE_NF.replace("NAME", name).replace("ARGS", &format!("{args:?}"))
}

#[test]
fn simple_forward_passes_every_frame_unchanged_in_order() {
    let input = distinct_udp_frames(300, 17);
    let run = Golden::new("simple-forward", &one_nf("simple_forward", &[]))
        .input(input.clone())
        .run();
    run.assert_port(0, &input);
}

#[test]
fn basic_monitor_counts_protocols_and_malformed_frames_and_passes_them_on() {
    let mut input = distinct_udp_frames(100, 5);
    let tcp = onvm_packet::TcpSpec::new([10, 0, 0, 1], [10, 0, 0, 2], 1000, 80)
        .to_vec()
        .unwrap();
    input.extend(std::iter::repeat_n(tcp, 20));
    // A truncated IPv4 header and a runt: counted as malformed, passed on untouched.
    input.push(input[0][..20].to_vec());
    input.push(vec![0xff; 10]);
    let run = Golden::new("basic-monitor", &one_nf("basic_monitor", &["--quiet"]))
        .input(input.clone())
        .run();
    run.assert_port(0, &input);
    let r = run.report("basic_monitor");
    assert!(
        r.contains("packets: 122") && r.contains("udp: 100") && r.contains("tcp: 20") && r.contains("malformed: 2"),
        "{r}"
    );
}

#[test]
fn bridge_sends_port_0_s_frames_out_of_port_1() {
    let input = distinct_udp_frames(64, 3);
    let body = r#"
[services]
bridge = 1

[[nfs]]
name = "bridge"
service = "bridge"

[[chains]]
name = "in"
chain = ["bridge"]
in_port = 0
"#;
    let run = Golden::new("bridge", body).input(input.clone()).run();
    run.assert_port(0, &input);
}
