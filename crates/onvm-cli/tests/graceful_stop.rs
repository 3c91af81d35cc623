//! An NF stopped by a signal while its ring is full (a scale-down, an operator's
//! `kill`): it tells the manager it is leaving, the manager stops sending it packets
//! and moves its flows to the instance that stays once it has handled what it was
//! sent, answers, and only then does the NF stop. No packet is lost on the way out:
//! before, what its ring held at the signal was reclaimed (dropped, counted).

mod common;

use std::time::Duration;

use common::{KillBySocket, Proc, SOON, TempDir, assert_conserved, field, instance_of, nf_command, serial, start_mgr};

#[test]
fn an_nf_stopped_by_a_signal_hands_on_what_was_sent_to_it_before_it_stops() {
    let _one = serial();
    let dir = TempDir::new("leave");
    let socket = dir.socket();
    let _reap = KillBySocket(socket.clone());
    // 200 kpps for 1.5 s into two forwarders that take 50 kpps each: both rings stay
    // full (the rest is dropped at them, counted as nf-ring-full) until the generator
    // ends.
    let cfg = dir.write(
        "leave.toml",
        r#"[manager]
ports = ["gen:64B,64flows,rate=200k,count=300000", "null"]
shared_cores = true

[services]
fwd = 1

[[chains]]
name = "main"
chain = ["fwd", "out:1"]
in_port = 0
"#,
    );
    let mut mgr = start_mgr(&socket, &["--config", cfg.to_str().unwrap()]);
    let slow = ["simple-forward", "--busy-ns", "20000"];
    let spawn = |tag: &str| {
        let nf = Proc::spawn(tag, nf_command(&socket, 1, tag, &[], &slow));
        let line = common::wait_registered(&mgr, tag, &nf);
        (nf, instance_of(&line))
    };
    let (mut a, _) = spawn("fwd-a");
    let (mut b, b_id) = spawn("fwd-b");
    std::thread::sleep(Duration::from_millis(500));

    b.signal("TERM");
    let leaving = mgr
        .stderr
        .wait(SOON, |l| l.contains("\"fwd-b\"") && l.contains("is leaving"));
    let (_, line) = leaving.unwrap_or_else(|| panic!("fwd-b did not ask to leave\n{}", mgr.output()));
    assert!(
        line.contains(&format!("instance {b_id}")) && line.contains("its flows go to the other instances"),
        "{line}"
    );
    let left = mgr
        .stderr
        .wait(SOON, |l| l.contains("\"fwd-b\"") && l.contains("left after"));
    assert!(left.is_some(), "the manager did not answer fwd-b\n{}", mgr.output());
    assert_eq!(b.exit_code(SOON), 0, "{}", b.output());
    assert!(
        mgr.stderr
            .find(|l| l.contains("\"fwd-b\"") && l.contains("died"))
            .is_none(),
        "fwd-b stopped, it did not die\n{}",
        mgr.output()
    );

    // The generator ends; fwd-a works off its ring; then everything stops.
    std::thread::sleep(Duration::from_millis(1500));
    mgr.signal("TERM");
    assert_eq!(mgr.exit_code(SOON), 0, "{}", mgr.output());
    assert_eq!(a.exit_code(SOON), 0, "{}", a.output());
    assert_conserved(&mgr);
    if std::env::var_os("ONVM_SHOW").is_some() {
        eprintln!("{}", mgr.output());
    }
    let out = mgr.stdout.text();
    let drops = out.lines().find(|l| l.starts_with("manager drops:")).unwrap_or("");
    assert!(
        !drops.contains("reclaimed="),
        "what was queued for fwd-b when it was told to stop was dropped: {drops}\n{out}"
    );
    // Both forwarded: b until it left, a throughout (and b's flows after).
    for tag in ["fwd-a", "fwd-b"] {
        let line = out
            .lines()
            .find(|l| l.starts_with(&format!("NF {tag} ")))
            .unwrap_or_else(|| panic!("no summary line for {tag}\n{out}"));
        assert!(field(line, "rx").is_some_and(|n| n > 0), "{line}");
    }
}
