//! The stats views of a running manager: openNetVM's raw CSV and the console table.

mod common;

use common::{Proc, TempDir, onvm, serial};

fn run_mgr(dir: &TempDir, stats: &str) -> String {
    let mut cmd = onvm();
    cmd.args(["mgr", "--stats", stats, "--stats-every", "0.3", "--run-for", "1.2"])
        .args(["--port", "gen:64B,4flows,rate=20k", "--port", "null", "--socket"])
        .arg(dir.socket());
    let mut p = Proc::spawn("onvm mgr", cmd);
    // No chain: every packet is dropped with the reason `no-rule`, and still accounted for.
    assert_eq!(p.exit_code(common::SOON), 0, "{}", p.output());
    p.stdout.text()
}

#[test]
fn csv_mode_prints_open_netvm_columns_every_interval() {
    let _one = serial();
    let dir = TempDir::new("csv");
    let out = run_mgr(&dir, "csv");
    let mut lines = out.lines();
    assert!(
        lines
            .next()
            .unwrap()
            .starts_with("#YYYY-MM-DD HH:MM:SS,nic_rx_pkts,nic_rx_pps")
    );
    let nf_header = lines.next().unwrap();
    assert!(
        nf_header.contains("nf_tag,instance_id,service_id,core,parent,state"),
        "{nf_header}"
    );
    let port0: Vec<&str> = out
        .lines()
        .filter(|l| !l.starts_with('#') && l.split(',').nth(1) == Some("0"))
        .collect();
    assert!(port0.len() >= 2, "a port line per interval:\n{out}");
    for l in &port0 {
        assert_eq!(
            l.split(',').count(),
            9,
            "ts,port,rx,rx_pps,tx,tx_pps,rx_drop,tx_drop,errors: {l}"
        );
    }
    let rx: Vec<u64> = port0
        .iter()
        .map(|l| l.split(',').nth(2).unwrap().parse().unwrap())
        .collect();
    assert!(rx.windows(2).all(|w| w[0] <= w[1]) && rx.last() > Some(&0), "{rx:?}");
    assert!(out.contains("conservation: OK"), "{out}");
    assert!(out.contains("no-rule="), "drops carry their reason: {out}");
}

#[test]
fn console_mode_shows_ports_and_the_nf_table() {
    let _one = serial();
    let dir = TempDir::new("console");
    let out = run_mgr(&dir, "console");
    assert!(out.contains("PORTS\n-----"), "{out}");
    assert!(out.contains("Port 0 (gen:64B,4flows,rate=20000) - rx:"), "{out}");
    assert!(out.contains("rx_pps / tx_pps"), "{out}");
    assert!(out.contains("manager drops: no-rule="), "{out}");
}

#[test]
fn profile_prints_the_switch_threads_cycles_per_packet_by_phase() {
    let _one = serial();
    let dir = TempDir::new("profile");
    let mut cmd = onvm();
    cmd.args([
        "mgr",
        "--stats",
        "off",
        "--run-for",
        "0.5",
        "--profile",
        "--buffers",
        "4095",
    ])
    .args(["--port", "null:64B", "--port", "null", "--socket"])
    .arg(dir.socket());
    let mut p = Proc::spawn("onvm mgr", cmd);
    assert_eq!(p.exit_code(common::SOON), 0, "{}", p.output());
    let out = p.stdout.text();
    // A receiving null port: every free buffer filled as fast as polled, all dropped
    // (no chain), all accounted for.
    let line = out
        .lines()
        .find(|l| l.starts_with("switch thread, TSC cycles per packet received:"))
        .unwrap_or_else(|| panic!("no profile line:\n{out}"));
    for phase in ["rx ", "classify ", "enqueue ", "dequeue ", "tx ", "rest "] {
        assert!(line.contains(phase), "{phase} missing: {line}");
    }
    let total: f64 = line
        .split(" = ")
        .nth(1)
        .and_then(|t| t.split_whitespace().next())
        .and_then(|t| t.parse().ok())
        .unwrap_or_else(|| panic!("no total: {line}"));
    assert!(total > 0.0, "{line}");
    assert!(out.contains("no-rule="), "{out}");
    assert!(out.contains("conservation: OK"), "{out}");
}
