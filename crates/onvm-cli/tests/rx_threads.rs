//! `onvm mgr --rx-threads 2`: a second switch thread polls the second queue of each
//! port (`null` ports have as many as asked). Where a port's rule sends every packet to
//! one NF, the thread writes them straight into it (an edge it produces), and what
//! that NF forwards comes back to it (an edge it reads) to leave by its own queue of
//! the output port; a service of several instances gets each flow at the instance the
//! main thread would pick. Where packets need a lookup, it hands them to the main thread.
//! Either way every packet is accounted for, also when the NF crashes.

mod common;

use std::time::Duration;

use common::{
    KillBySocket, Proc, SOON, TempDir, assert_conserved, field, kill_nf, nf_command, onvm, port_line, run_to_end,
    serial, start_forwarder, start_mgr, stop_cleanly, summary_rx, wait_registered,
};

const CHAIN: &str = common::PORT_PATH;

/// The numbers in the `receive thread 1 stopped: received R, D straight into NFs, M
/// through the main thread, X dropped; sent S` event: (R, D).
fn lane_figures(mgr: &Proc) -> (u64, u64) {
    let (_, line) = mgr
        .stderr
        .find(|l| l.contains("receive thread 1 stopped"))
        .unwrap_or_else(|| panic!("no stop event for receive thread 1\n{}", mgr.output()));
    let num = |after: &str| -> u64 {
        let rest = line
            .split(after)
            .nth(1)
            .unwrap_or_else(|| panic!("{after:?} in {line:?}"));
        rest.trim_start()
            .split(|c: char| !c.is_ascii_digit())
            .next()
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("a number after {after:?} in {line:?}"))
    };
    (num("received"), num(","))
}

/// Whether receive thread 1 opened `n` direct edges into instances so far.
fn lane_edges(mgr: &Proc, n: usize) -> bool {
    common::wait_for(SOON, || {
        mgr.stderr
            .count(|l| l.contains("direct edge: receive thread 1 → instance"))
            >= n
    })
}

/// After the manager stopped: receive thread 1 was the port path for its queue. It
/// received plenty, wrote most of it straight into the NF, sent what came back out of
/// its queue of port 1, and port 0's figures include its queue's.
fn assert_lane_was_the_path(mgr: &Proc) {
    let (received, direct) = lane_figures(mgr);
    assert!(
        received > 10_000,
        "the second queue received {received}\n{}",
        mgr.output()
    );
    assert!(
        direct > received / 2,
        "most of the second queue's packets should go straight to the NF: {direct} of {received}\n{}",
        mgr.output()
    );
    let (_, stopped) = mgr.stderr.find(|l| l.contains("receive thread 1 stopped")).unwrap();
    let sent: u64 = stopped
        .rsplit("sent ")
        .next()
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("{stopped}"));
    assert!(sent > 0, "the thread sent nothing out: {stopped}");
    let port0 = port_line(mgr, 0);
    assert!(field(&port0, "rx").unwrap_or(0) > received, "{port0}");
}

#[test]
fn a_second_receive_thread_writes_straight_into_the_nf_and_survives_its_crash() {
    let _one = serial();
    let dir = TempDir::new("rx2");
    let socket = dir.socket();
    let _reap = KillBySocket(socket.clone());
    let cfg = dir.write("rx2.toml", CHAIN);
    let mut mgr = start_mgr(
        &socket,
        &[
            "--config",
            cfg.to_str().unwrap(),
            "--rx-threads",
            "2",
            "--rx-cores",
            "1",
        ],
    );
    assert!(
        mgr.stderr
            .wait(SOON, |l| l
                .contains("receive thread 1 (core 1): port 0 (null:64B queue 1)"))
            .is_some(),
        "{}",
        mgr.output()
    );
    let (mut a, _) = start_forwarder(&mgr, &socket, 1, "fwd-a");
    assert!(lane_edges(&mgr, 1), "no edge from the receive thread\n{}", mgr.output());
    std::thread::sleep(Duration::from_millis(400));

    // The NF dies while the thread writes into it: what was in its rings comes back.
    kill_nf(&mgr, &mut a, "fwd-a");
    let (mut b, _) = start_forwarder(&mgr, &socket, 1, "fwd-b");
    assert!(lane_edges(&mgr, 2), "no edge into the new NF\n{}", mgr.output());
    std::thread::sleep(Duration::from_millis(400));

    stop_cleanly(&mut mgr);
    assert_eq!(b.exit_code(SOON), 0, "{}", b.output());
    assert_lane_was_the_path(&mgr);
    // What the NF forwards goes back to the thread that has port 1's second queue,
    // which sends it out there.
    assert!(
        mgr.stderr
            .find(|l| l.contains("→ receive thread 1, out of port 1 (next hop)"))
            .is_some(),
        "{}",
        mgr.output()
    );
}

#[test]
fn a_service_of_two_instances_is_fed_straight_by_the_second_thread_too() {
    let _one = serial();
    let dir = TempDir::new("rx2lb");
    let socket = dir.socket();
    let _reap = KillBySocket(socket.clone());
    // Two instances: each packet's instance depends on its flow (64 of them, the odd
    // ones on queue 1); the thread picks it as the main thread does and writes it there.
    let cfg = dir.write("rx2lb.toml", &CHAIN.replace("\"null:64B\"", "\"gen:64B,64flows\""));
    let mut mgr = start_mgr(&socket, &["--config", cfg.to_str().unwrap(), "--rx-threads", "2"]);
    let mut nfs = Vec::new();
    for tag in ["lb-a", "lb-b"] {
        let nf = Proc::spawn(tag, nf_command(&socket, 1, tag, &[], &["simple-forward"]));
        wait_registered(&mgr, tag, &nf);
        nfs.push(nf);
    }
    assert!(
        lane_edges(&mgr, 2),
        "no edges from the receive thread into both instances\n{}",
        mgr.output()
    );
    std::thread::sleep(Duration::from_millis(600));
    mgr.signal("TERM");
    assert_eq!(mgr.exit_code(SOON), 0, "{}", mgr.output());
    for nf in &mut nfs {
        assert_eq!(nf.exit_code(SOON), 0, "{}", nf.output());
    }
    assert_conserved(&mgr);
    assert_lane_was_the_path(&mgr);
    let out = mgr.output();
    for tag in ["lb-a", "lb-b"] {
        let rx = summary_rx(&out, tag).unwrap_or(0);
        assert!(rx > 1_000, "instance {tag} handled {rx}\n{out}");
    }
}

#[test]
fn onvm_bench_scales_a_port_scenario_out_to_instances_fed_by_both_threads() {
    let _one = serial();
    let dir = TempDir::new("rx2bench");
    let json = dir.join("bench.json");
    let mut cmd = onvm();
    cmd.args(["bench", "--only", "port-chain1-64B", "--seconds", "1.5"])
        .args(["--instances", "2", "--rx-threads", "2", "--json"])
        .arg(&json);
    let mut p = run_to_end("onvm bench", cmd);
    assert_eq!(p.exit_code(SOON), 0, "{}", p.output());
    let text = std::fs::read_to_string(&json).unwrap();
    let records: serde_json::Value = serde_json::from_str(&text).unwrap();
    let r = &records[0];
    assert_eq!(r["name"], "port-chain1-64B", "{text}");
    assert_eq!(r["nfs"], 2, "two instances: {text}");
    // Both instances' forwarding, summed; each NF thread shares the two CPUs here.
    assert!(r["mpps"].as_f64().unwrap_or(0.0) > 0.05, "{text}");
}

#[test]
fn a_receive_thread_on_a_cpu_the_machine_lacks_is_refused_by_name() {
    let dir = TempDir::new("rx2bad");
    let pinned = ["--rx-threads", "2", "--rx-cores", "999"];
    let mut mgr = onvm();
    mgr.args(["mgr", "--stats", "off", "--port", "null:64B"])
        .args(pinned)
        .arg("--socket")
        .arg(dir.socket());
    // `onvm bench` passes the pins to its managers (scripts/bench-scale.sh needs them).
    let mut bench = onvm();
    bench
        .args(["bench", "--only", "nullport-chain1-64B", "--seconds", "1"])
        .args(pinned);
    for (name, cmd) in [("onvm mgr", mgr), ("onvm bench", bench)] {
        let mut p = run_to_end(name, cmd);
        assert_ne!(p.exit_code(SOON), 0, "{name}: {}", p.output());
        assert!(
            p.output()
                .contains("receive thread 1: --rx-cores: CPU 999 is not online"),
            "{name}: {}",
            p.output()
        );
    }
}

#[test]
fn a_generator_split_over_two_threads_delivers_its_count_exactly() {
    let _one = serial();
    let dir = TempDir::new("rx2gen");
    let socket = dir.socket();
    let _reap = KillBySocket(socket.clone());
    // Slow enough for a shared-core forwarder: nothing needs to be dropped.
    let cfg = dir.write(
        "rx2gen.toml",
        &CHAIN.replace("\"null:64B\"", "\"gen:64B,64flows,rate=100k,count=60000\""),
    );
    let mgr = start_mgr(
        &socket,
        &[
            "--config",
            cfg.to_str().unwrap(),
            "--rx-threads",
            "2",
            "--wait-for-nfs",
            "1",
            "--exit-when-drained",
            "0.3",
        ],
    );
    let mut mgr = mgr;
    let mut nf = Proc::spawn("fwd", nf_command(&socket, 1, "fwd", &[], &["simple-forward"]));
    wait_registered(&mgr, "fwd", &nf);
    assert_eq!(mgr.exit_code(SOON), 0, "{}", mgr.output());
    assert_eq!(nf.exit_code(SOON), 0, "{}", nf.output());
    assert_conserved(&mgr);
    let (received, _) = lane_figures(&mgr);
    assert_eq!(received, 30_000, "queue 1 generates half the count\n{}", mgr.output());
    assert_eq!(field(&port_line(&mgr, 0), "rx"), Some(60_000), "{}", mgr.output());
    assert_eq!(
        field(&port_line(&mgr, 1), "tx"),
        Some(60_000),
        "every packet out\n{}",
        mgr.output()
    );
}

/// DPDK's `net_null` with two queues each side (`--features dpdk`): the second switch
/// thread polls the receive queue 1 and sends on the transmit queue 1, refilling from
/// its own pool share; every packet is accounted for and the pool is whole.
#[cfg(feature = "dpdk")]
#[test]
fn dpdk_null_queues_split_between_two_switch_threads() {
    let _one = serial();
    let dir = TempDir::new("rx2dpdk");
    let socket = dir.socket();
    let _reap = KillBySocket(socket.clone());
    let cfg = dir.write(
        "rx2dpdk.toml",
        &CHAIN.replace(
            r#"["null:64B", "null"]"#,
            r#"["dpdk:net_null0,size=64;queues=2", "dpdk:net_null1,no-rx=1;queues=2"]"#,
        ),
    );
    let mut mgr = start_mgr(&socket, &["--config", cfg.to_str().unwrap(), "--rx-threads", "2"]);
    assert!(
        mgr.stderr
            .wait(SOON, |l| l.contains(
                "receive thread 1 (not pinned): port 0 (dpdk:net_null0,size=64;queues=2 queue 1), port 1 (dpdk:net_null1,no-rx=1;queues=2 queue 1)"
            ))
            .is_some(),
        "{}",
        mgr.output()
    );
    let (mut nf, _) = start_forwarder(&mgr, &socket, 1, "fwd");
    assert!(lane_edges(&mgr, 1), "no edge from the receive thread\n{}", mgr.output());
    std::thread::sleep(Duration::from_millis(600));
    stop_cleanly(&mut mgr);
    assert_eq!(nf.exit_code(SOON), 0, "{}", nf.output());
    assert_lane_was_the_path(&mgr);
}
