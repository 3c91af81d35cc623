//! `onvm mgr --nf-queues`: where a `null` port's rule sends every packet to one NF
//! whose next hop is a `null` port, the NF polls the port itself and sends out of the
//! other, and the switch leaves the port alone. Every packet is still accounted for,
//! when the NF crashes while it polls, and when a second instance takes the queue back
//! to the switch.

mod common;

use std::time::Duration;

use common::{
    KillBySocket, Proc, SOON, TempDir, field, kill_nf, port_line, serial, start_forwarder, start_mgr, stop_cleanly,
};

/// A manager on `examples/port-path.toml` with `nf_queues = true`, in `dir`.
fn start(dir: &TempDir) -> (Proc, KillBySocket) {
    let socket = dir.socket();
    let cfg = dir.write(
        "nfq.toml",
        &common::PORT_PATH.replace("[manager]\n", "[manager]\nnf_queues = true\n"),
    );
    (
        start_mgr(&socket, &["--config", cfg.to_str().unwrap()]),
        KillBySocket(socket),
    )
}

#[test]
fn an_nf_polls_a_null_port_itself_and_sends_every_packet_out() {
    let _one = serial();
    let dir = TempDir::new("nfq");
    let (mut mgr, _reap) = start(&dir);
    let (mut nf, _) = start_forwarder(&mgr, &dir.socket(), 1, "fwd");
    assert!(
        mgr.stderr
            .wait(SOON, |l| l
                .contains("polls port 0 itself and sends its next hop out of port 1"))
            .is_some(),
        "the NF was not given port 0's queue\n{}",
        mgr.output()
    );
    std::thread::sleep(Duration::from_millis(500));
    stop_cleanly(&mut mgr);
    assert_eq!(nf.exit_code(SOON), 0, "{}", nf.output());
    let rx = field(&port_line(&mgr, 0), "rx").unwrap_or(0);
    let tx = field(&port_line(&mgr, 1), "tx").unwrap_or(0);
    assert!(rx > 100_000, "port 0 received {rx}\n{}", mgr.output());
    // What the NF received it sent; what the switch received at the start and at
    // the end (before the NF had the queue, while it stops) may meet a full ring.
    assert!(
        tx >= rx - rx / 100 && tx <= rx,
        "port 0 rx {rx}, port 1 tx {tx}\n{}",
        mgr.output()
    );
}

#[test]
fn a_crash_while_polling_and_a_second_instance_give_the_queue_back() {
    let _one = serial();
    let dir = TempDir::new("nfqcrash");
    let (mut mgr, _reap) = start(&dir);
    let given =
        |mgr: &Proc, n: usize| common::wait_for(SOON, || mgr.stderr.count(|l| l.contains("polls port 0 itself")) >= n);
    let (mut a, _) = start_forwarder(&mgr, &dir.socket(), 1, "fwd-a");
    assert!(given(&mgr, 1), "{}", mgr.output());
    std::thread::sleep(Duration::from_millis(300));
    // It dies while it polls: what it held comes back, the switch polls the port.
    kill_nf(&mgr, &mut a, "fwd-a");
    let (mut b, _) = start_forwarder(&mgr, &dir.socket(), 1, "fwd-b");
    assert!(given(&mgr, 2), "the new NF was not given the queue\n{}", mgr.output());
    std::thread::sleep(Duration::from_millis(300));
    // A second instance: packets are shared out by flow, so the switch takes it back.
    let (mut c, _) = start_forwarder(&mgr, &dir.socket(), 1, "fwd-c");
    assert!(
        mgr.stderr
            .wait(SOON, |l| l.contains("no longer polls a port queue"))
            .is_some(),
        "{}",
        mgr.output()
    );
    std::thread::sleep(Duration::from_millis(300));
    stop_cleanly(&mut mgr);
    for nf in [&mut b, &mut c] {
        assert_eq!(nf.exit_code(SOON), 0, "{}", nf.output());
    }
    let tx = field(&port_line(&mgr, 1), "tx").unwrap_or(0);
    assert!(tx > 100_000, "port 1 sent {tx}\n{}", mgr.output());
}
