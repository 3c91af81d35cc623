//! `onvm up`: a capture replayed through a chain of three NF processes comes out
//! unchanged, packet by packet, in order.

mod common;

use std::process::Command;

use common::{Proc, TempDir, assert_conserved, distinct_udp_frames, onvm, read_pcap, write_pcap};

const PACKETS: usize = 500;

fn chain_config(dir: &TempDir, input: &str) -> std::path::PathBuf {
    let text = format!(
        r#"[manager]
socket = {socket:?}
ports = [{input:?}, {output:?}]
shared_cores = true

[services]
a = 1
b = 2
c = 3

[[nfs]]
name = "simple_forward"
service = "a"

[[nfs]]
name = "simple_forward"
service = "b"

[[nfs]]
name = "simple_forward"
service = "c"

[[chains]]
name = "abc"
chain = ["a", "b", "c", "out:1"]
in_port = 0
"#,
        socket = dir.socket().display().to_string(),
        output = format!("pcapout:{}", dir.join("out.pcap").display()),
    );
    dir.write("chain.toml", &text)
}

fn run_up(cfg: &std::path::Path) -> Proc {
    let mut cmd = onvm();
    cmd.arg("up")
        .arg(cfg)
        .args(["--stats", "off", "--exit-when-drained", "1", "--buffers", "4095"]);
    let mut up = Proc::spawn("onvm up", cmd);
    let code = up.exit_code(common::SOON);
    assert_eq!(code, 0, "onvm up failed\n{}", up.output());
    assert_conserved(&up);
    up
}

/// Compare the capture written by port 1 with what went in.
fn assert_same_packets(out: &[Vec<u8>], input: &[Vec<u8>], up: &Proc) {
    assert_eq!(
        out.len(),
        input.len(),
        "packets out vs in (every one must come out)\n{}",
        up.output()
    );
    for (i, (o, e)) in out.iter().zip(input).enumerate() {
        assert_eq!(o.len(), e.len(), "packet {i}: length");
        assert!(o == e, "packet {i}: bytes differ (or order changed)");
    }
}

/// tcpdump must read the output and list every packet.
fn check_with_tcpdump(path: &std::path::Path, expect: usize) {
    if !onvm_testkit::require_tool("tcpdump", "apt install tcpdump") {
        return;
    }
    let out = Command::new("tcpdump")
        .arg("-r")
        .arg(path)
        .arg("-nn")
        .output()
        .expect("run tcpdump -r");
    assert!(
        out.status.success(),
        "tcpdump -r failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let listed = String::from_utf8_lossy(&out.stdout).lines().count();
    assert_eq!(listed, expect, "tcpdump lists every packet");
}

#[test]
fn pcap_through_three_nf_processes_comes_out_identical() {
    let dir = TempDir::new("pcap-chain");
    let input = distinct_udp_frames(PACKETS, 37);
    let in_path = dir.join("in.pcap");
    write_pcap(&in_path, &input, std::time::Duration::from_secs(1_700_000_000));
    let cfg = chain_config(&dir, &format!("pcap:{}", in_path.display()));
    let up = run_up(&cfg);
    let out = read_pcap(&dir.join("out.pcap"));
    assert_same_packets(&out, &input, &up);
    check_with_tcpdump(&dir.join("out.pcap"), PACKETS);
}

/// The same path, with the replay held back until the NFs are surely up: one lead-in
/// packet at t = 0 (which may be dropped while no NF is registered), then the frames
/// under test 2 s later, replayed with the file's timing.
#[test]
fn pcap_through_three_nf_processes_comes_out_identical_after_a_lead_in() {
    let dir = TempDir::new("pcap-chain-lead");
    let input = distinct_udp_frames(PACKETS, 37);
    let lead_in = distinct_udp_frames(PACKETS + 1, 37).pop().unwrap();
    let in_path = dir.join("in.pcap");
    {
        use pcap_file::pcap::{PcapHeader, PcapPacket, PcapWriter};
        let t0 = std::time::Duration::from_secs(1_700_000_000);
        let mut w = PcapWriter::with_header(std::fs::File::create(&in_path).unwrap(), PcapHeader::default()).unwrap();
        w.write_packet(&PcapPacket::new(t0, lead_in.len() as u32, &lead_in))
            .unwrap();
        for f in &input {
            let at = t0 + std::time::Duration::from_secs(2);
            w.write_packet(&PcapPacket::new(at, f.len() as u32, f)).unwrap();
        }
    }
    let cfg = chain_config(&dir, &format!("pcap:{},timing=file", in_path.display()));
    let up = run_up(&cfg);
    let mut out = read_pcap(&dir.join("out.pcap"));
    let written = out.len();
    if out.first() == Some(&lead_in) {
        out.remove(0);
    }
    assert_same_packets(&out, &input, &up);
    check_with_tcpdump(&dir.join("out.pcap"), written);
}
