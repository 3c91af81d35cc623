//! tcpdump, an independent decoder, reads the VLAN, QinQ and MPLS frames this crate
//! pushes as the headers they claim to be, with their fields in the right bits.

use std::io::Write;
use std::process::Command;

use onvm_packet::etherparse::PacketBuilder;
use onvm_packet::{
    Field, TPID_8021AD, TPID_8021Q, push_mpls_vec, push_vlan_vec, set_field, set_mpls_label, set_mpls_ttl,
};

/// A classic pcap file (microsecond timestamps, Ethernet link type) holding `frames`.
fn pcap(frames: &[Vec<u8>]) -> Vec<u8> {
    let mut out = 0xa1b2_c3d4u32.to_le_bytes().to_vec(); // magic
    out.extend_from_slice(&[2, 0, 4, 0]); // version 2.4
    for word in [0u32, 0, 65535, 1] {
        // thiszone, sigfigs, snaplen, link type (Ethernet).
        out.extend_from_slice(&word.to_le_bytes());
    }
    for (i, f) in frames.iter().enumerate() {
        let len = f.len() as u32;
        for word in [i as u32, 0, len, len] {
            out.extend_from_slice(&word.to_le_bytes());
        }
        out.extend_from_slice(f);
    }
    out
}

fn udp4() -> Vec<u8> {
    let mut v = Vec::new();
    PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2])
        .ipv4([10, 0, 0, 1], [10, 0, 0, 2], 33)
        .udp(1234, 53)
        .write_to_vec(&mut v, b"hello")
        .unwrap();
    v
}

#[test]
fn tcpdump_decodes_pushed_tags_and_labels() {
    // Not onvm-testkit's require_tool: this crate keeps to no workspace dependencies. A
    // missing tcpdump fails the test (scripts/deps.sh installs it).
    let version = Command::new("tcpdump").arg("--version").output();
    assert!(
        version.is_ok_and(|o| o.status.success()),
        "this test needs tcpdump: apt install tcpdump (scripts/deps.sh installs it)"
    );
    let mut qinq = udp4();
    push_vlan_vec(&mut qinq, TPID_8021Q).unwrap();
    set_field(&mut qinq, Field::VlanVid(100)).unwrap();
    set_field(&mut qinq, Field::VlanPcp(3)).unwrap();
    let single = qinq.clone();
    push_vlan_vec(&mut qinq, TPID_8021AD).unwrap();
    set_field(&mut qinq, Field::VlanVid(4000)).unwrap();

    let mut mpls = udp4();
    set_field(&mut mpls, Field::IpDscp(46)).unwrap();
    push_mpls_vec(&mut mpls, 0x8847).unwrap();
    push_mpls_vec(&mut mpls, 0x8847).unwrap();
    set_mpls_label(&mut mpls, 1000).unwrap();
    set_mpls_ttl(&mut mpls, 7).unwrap();

    let dir = std::env::temp_dir().join(format!("onvm-packet-tcpdump-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("pushed.pcap");
    std::fs::File::create(&path)
        .unwrap()
        .write_all(&pcap(&[single, qinq, mpls]))
        .unwrap();
    let out = Command::new("tcpdump")
        .args(["-nn", "-e", "-v", "-r"])
        .arg(&path)
        .output()
        .expect("run tcpdump");
    std::fs::remove_dir_all(&dir).unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}{}", String::from_utf8_lossy(&out.stderr));
    let all = text.replace('\n', " ");
    let has = |needle: &str| assert!(all.contains(needle), "tcpdump output lacks {needle:?}:\n{text}");
    has("vlan 100, p 3, ethertype IPv4");
    has("ethertype 802.1Q-QinQ (0x88a8)");
    has("vlan 4000, p 0, ethertype 802.1Q");
    has("label 1000");
    has("label 0 (IPv4 explicit NULL), tc 6, [S], ttl 33");
    has("ttl 7");
    has("10.0.0.1.1234 > 10.0.0.2.53");
}
