//! `onvm demo`: generator → basic_monitor → simple_forward → a pcap file, for a while.

mod common;

use common::{Proc, TempDir, onvm, read_pcap, serial};

#[test]
fn demo_runs_and_accounts_for_every_packet() {
    let _one = serial();
    let dir = TempDir::new("demo");
    // What an earlier demo left (its process is gone: no PID is this large) is removed.
    let stale = std::env::temp_dir().join("onvm-demo-4000000000");
    std::fs::create_dir_all(&stale).unwrap();
    std::fs::write(stale.join("demo-out.pcap"), b"old").unwrap();
    let mut cmd = onvm();
    cmd.args(["demo", "--seconds", "2", "--socket"]).arg(dir.socket());
    let mut p = Proc::spawn("onvm demo", cmd);
    assert_eq!(p.exit_code(common::SOON), 0, "{}", p.output());
    let out = p.stdout.text();
    let line = out
        .lines()
        .find(|l| l.contains("conservation"))
        .unwrap_or_else(|| panic!("no conservation line\n{}", p.output()));
    assert!(line.contains("OK"), "{line}");

    assert!(!stale.exists(), "the old demo's folder is removed");

    // The first packets sent out of port 1 are in the capture it names, and no more.
    let capture = out
        .lines()
        .find_map(|l| l.strip_prefix("onvm demo: the first 100000 packets sent out are in "))
        .and_then(|rest| rest.split(" (").next())
        .unwrap_or_else(|| panic!("the demo names its capture\n{out}"));
    let capture = std::path::Path::new(capture);
    let frames = read_pcap(capture);
    let sent = out
        .lines()
        .find(|l| l.starts_with("port 1 "))
        .and_then(|l| common::field(l, "tx"))
        .unwrap_or_else(|| panic!("no port 1 row\n{out}"));
    assert!(sent > 0, "{out}");
    assert_eq!(
        frames.len() as u64,
        sent.min(100_000),
        "the capture holds the first 100000 packets port 1 sent"
    );
    if let Some(d) = capture.parent().filter(|d| d.starts_with(std::env::temp_dir())) {
        let _ = std::fs::remove_dir_all(d);
    }
}
