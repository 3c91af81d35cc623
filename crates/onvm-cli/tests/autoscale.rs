//! Autoscaling through `onvm up`: a forwarder that spends 10 µs per packet gets 150
//! kpps for three seconds (the generator's `count`), more than one instance takes. The
//! manager asks for a second instance once its ring stays over half full, the
//! supervisor starts it and it takes flows; when the generator stops, the quiet second
//! brings it back to one. Every packet is accounted for throughout.

mod common;

use std::time::Duration;

use common::{TempDir, assert_conserved, serial, start_up};

#[test]
fn a_service_s_instances_follow_its_load_up_and_down() {
    let _one = serial();
    let dir = TempDir::new("autoscale");
    let config = dir.write(
        "up.toml",
        r#"
[manager]
ports = ["gen:64B,256flows,rate=150k,count=450000", "null"]
shared_cores = true

[services]
fwd = 1

[[nfs]]
name = "simple_forward"
service = "fwd"
args = ["--busy-ns", "10000"]
autoscale = { max = 2, ring_percent = 50, after_ms = 100, idle_ms = 1000 }

[[chains]]
name = "main"
chain = ["fwd", "out:1"]
in_port = 0
"#,
    );
    let mut up = start_up(&config, &dir.socket(), 1);
    let log = |p: &common::Proc| p.output();
    let up_ask = up.stderr.wait(Duration::from_secs(10), |l| {
        l.contains("autoscale: service fwd: 1 -> 2 instance(s): its fullest ring over 50 %")
    });
    assert!(up_ask.is_some(), "no scale-up\n{}", log(&up));
    let took = up
        .stderr
        .wait(Duration::from_secs(10), |l| {
            l.contains("autoscale: service fwd: instance") && l.contains("took traffic")
        })
        .unwrap_or_else(|| panic!("the new instance took no traffic\n{}", log(&up)));
    eprintln!("{}", took.1);
    if std::env::var_os("ONVM_SHOW").is_some() {
        eprintln!("{}", log(&up));
    }
    // The generator stops after 3 s; a quiet second later, back to one.
    let down = up.stderr.wait(Duration::from_secs(15), |l| {
        l.contains("autoscale: service fwd: 2 -> 1 instance(s): its fullest ring under 12 %")
    });
    assert!(down.is_some(), "no scale-down\n{}", log(&up));
    assert!(
        up.stderr
            .wait(Duration::from_secs(10), |l| l.contains("NF simple_forward")
                && l.contains("scaled away"))
            .is_some(),
        "the supervisor did not stop the instance\n{}",
        log(&up)
    );
    up.signal("TERM");
    assert_eq!(up.exit_code(Duration::from_secs(20)), 0, "{}", log(&up));
    assert_conserved(&up);
}
