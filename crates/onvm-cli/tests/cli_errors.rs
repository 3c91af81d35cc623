//! Mistakes get a clear message and exit code 2, and never take a running manager down.

mod common;

use std::path::Path;

use common::{Proc, SOON, TempDir, nf_command, onvm, run_to_end, start_forwarder, start_mgr, stop_cleanly};
use onvm_proto::ctrl::{ABI_VERSION, MAX_MESSAGE_LEN, MgrMsg, NfMsg, RefuseReason, Register, RegisterFlags};
use onvm_shm::seqpacket::{Received, SeqPacket};

/// `onvm up FILE` that must fail before starting anything: its stderr.
fn up_fails(dir: &TempDir, file: &Path) -> String {
    let mut cmd = onvm();
    cmd.arg("up")
        .arg(file)
        .args(["--stats", "off", "--run-for", "1", "--socket"])
        .arg(dir.socket());
    let mut p = run_to_end("onvm up", cmd);
    assert_eq!(p.exit_code(SOON), 2, "{}", p.output());
    assert!(!dir.socket().exists(), "nothing was started");
    p.stderr.text()
}

#[test]
fn toml_syntax_error_names_the_file_and_the_line() {
    let dir = TempDir::new("err-syntax");
    let bad = dir.write(
        "bad.toml",
        "[manager]\nports = [\"null\"]\n\nshared_cores = = true\n\n[services]\na = 1\n",
    );
    let err = up_fails(&dir, &bad);
    assert!(err.contains(&bad.display().to_string()), "names the file: {err}");
    assert!(err.contains("line 4"), "names the line: {err}");
}

#[test]
fn chain_through_an_undeclared_service_names_it() {
    let dir = TempDir::new("err-unknown");
    let bad = dir.write(
        "bad.toml",
        r#"[manager]
ports = ["null", "null"]

[services]
a = 1
b = 2

[[chains]]
chain = ["a", "ghost", "out:1"]
in_port = 0
"#,
    );
    let err = up_fails(&dir, &bad);
    assert!(err.contains("\"ghost\""), "names the service: {err}");
    assert!(err.contains(&bad.display().to_string()), "names the file: {err}");
    assert!(err.contains("line 9"), "names the line: {err}");
}

#[test]
fn nf_asking_for_a_service_out_of_range_is_refused() {
    let dir = TempDir::new("err-service");
    let socket = dir.socket();
    let mut mgr = start_mgr(&socket, &[]);
    let mut nf = run_to_end("onvm nf", nf_command(&socket, 99, "far", &[], &["simple-forward"]));
    assert_eq!(nf.exit_code(SOON), 2, "{}", nf.output());
    assert!(nf.stderr.text().contains("out of range"), "{}", nf.output());

    // The manager checks too, whatever a client claims.
    let raw = SeqPacket::connect(&socket).expect("connect to the manager");
    let reg = NfMsg::Register(Register {
        abi_version: ABI_VERSION,
        tag: "raw".into(),
        service: 99,
        instance: None,
        core: None,
        parent: None,
        flags: RegisterFlags::SHARED_CORE,
    });
    raw.send(&reg.encode().unwrap()).unwrap();
    assert!(raw.wait_readable(10_000).unwrap(), "the manager answers");
    let mut buf = vec![0u8; MAX_MESSAGE_LEN + 1];
    let Received::Msg(n, _) = raw.recv(&mut buf).unwrap() else {
        panic!("no answer to the registration\n{}", mgr.output());
    };
    let answer = MgrMsg::decode(&buf[..n]).unwrap();
    assert!(
        matches!(
            answer,
            MgrMsg::Refused(RefuseReason::ServiceOutOfRange { service: 99, .. })
        ),
        "{answer:?}"
    );
    assert!(
        mgr.stderr
            .wait(SOON, |l| l.contains("refused") && l.contains("out of range"))
            .is_some(),
        "{}",
        mgr.output()
    );
    stop_cleanly(&mut mgr);
}

#[test]
fn second_nf_asking_for_a_taken_instance_id_is_refused() {
    let dir = TempDir::new("err-taken");
    let socket = dir.socket();
    let mut mgr = start_mgr(&socket, &[]);
    let first = Proc::spawn(
        "first",
        nf_command(&socket, 1, "first", &["-n", "5"], &["simple-forward"]),
    );
    let line = common::wait_registered(&mgr, "first", &first);
    assert_eq!(common::instance_of(&line), 5, "{line}");
    let mut second = run_to_end(
        "second",
        nf_command(&socket, 1, "second", &["-n", "5"], &["simple-forward"]),
    );
    assert_eq!(second.exit_code(SOON), 2, "{}", second.output());
    assert!(second.stderr.text().contains("already taken"), "{}", second.output());
    stop_cleanly(&mut mgr);
    drop(first);
}

#[test]
fn malformed_control_messages_are_reported_and_the_manager_carries_on() {
    let dir = TempDir::new("err-malformed");
    let socket = dir.socket();
    let mut mgr = start_mgr(&socket, &[]);
    for (k, garbage) in [&[0x42u8, 1, 2][..], &[0x01, 1, 0][..]].into_iter().enumerate() {
        let raw = SeqPacket::connect(&socket).expect("connect to the manager");
        raw.send(garbage).unwrap();
        let reported = common::wait_for(SOON, || {
            mgr.stderr.count(|l| l.contains("malformed control message")) > k
        });
        assert!(reported, "garbage {garbage:?} is reported\n{}", mgr.output());
        // The manager hangs up on that client.
        assert!(raw.wait_readable(10_000).unwrap());
        let mut buf = [0u8; 64];
        assert!(matches!(raw.recv(&mut buf), Ok(Received::Closed)), "connection closed");
    }
    // Still serving.
    let (nf, _) = start_forwarder(&mgr, &socket, 1, "after");
    stop_cleanly(&mut mgr);
    drop(nf);
}

/// Issue 12: an empty or malformed message from a registered NF is an error in that
/// message, not the NF's death: the manager reports it and the NF keeps its instance.
#[test]
fn an_empty_or_malformed_message_from_a_registered_nf_does_not_unregister_it() {
    let dir = TempDir::new("err-empty-dgram");
    let socket = dir.socket();
    let mut mgr = start_mgr(&socket, &[]);
    let raw = SeqPacket::connect(&socket).expect("connect to the manager");
    let reg = NfMsg::Register(Register {
        abi_version: ABI_VERSION,
        tag: "chatty".into(),
        service: 1,
        instance: Some(9),
        core: None,
        parent: None,
        flags: RegisterFlags::SHARED_CORE,
    });
    raw.send(&reg.encode().unwrap()).unwrap();
    assert!(raw.wait_readable(10_000).unwrap(), "the manager answers");
    let mut buf = vec![0u8; MAX_MESSAGE_LEN + 1];
    let Received::Msg(n, _) = raw.recv(&mut buf).unwrap() else {
        panic!("no answer to the registration\n{}", mgr.output());
    };
    assert!(
        matches!(MgrMsg::decode(&buf[..n]).unwrap(), MgrMsg::Registered(_)),
        "{}",
        mgr.output()
    );
    raw.send(&NfMsg::Ready.encode().unwrap()).unwrap();
    raw.send(b"").unwrap();
    raw.send(&[0x42, 1, 2]).unwrap();
    let reported = common::wait_for(SOON, || {
        mgr.stderr.count(|l| l.contains("bad control message from instance 9")) >= 2
    });
    assert!(reported, "both bad messages are reported\n{}", mgr.output());
    let text = mgr.stderr.text();
    assert!(text.contains("empty control message"), "{text}");
    assert!(text.contains("malformed control message"), "{text}");
    // The connection stays open ...
    assert!(
        !raw.wait_readable(300).unwrap(),
        "the manager hung up\n{}",
        mgr.output()
    );
    // ... and the instance stays taken: a second NF asking for it is refused.
    let mut second = run_to_end(
        "second",
        nf_command(&socket, 1, "second", &["-n", "9"], &["simple-forward"]),
    );
    assert_eq!(second.exit_code(SOON), 2, "{}", second.output());
    assert!(second.stderr.text().contains("already taken"), "{}", second.output());
    drop(raw);
    stop_cleanly(&mut mgr);
}

#[test]
fn a_second_manager_on_the_same_socket_is_refused_and_the_socket_goes_with_the_first() {
    let dir = TempDir::new("err-two-mgrs");
    let socket = dir.socket();
    let mut mgr = start_mgr(&socket, &[]);
    let mut cmd = onvm();
    cmd.args(["mgr", "--stats", "off", "--buffers", "4095", "--socket"])
        .arg(&socket);
    let mut second = run_to_end("second onvm mgr", cmd);
    assert_eq!(second.exit_code(SOON), 2, "{}", second.output());
    assert!(second.stderr.text().contains("already running"), "{}", second.output());
    assert!(socket.exists(), "the first manager's socket is left alone");
    stop_cleanly(&mut mgr);
    assert!(!socket.exists(), "the socket file is removed when the manager exits");
}

/// `onvm mgr --config` takes chains from the file and `--port` replaces the config's
/// ports (flags override the file); the chains use them, and the manager says so.
#[test]
fn mgr_config_chains_may_use_ports_given_on_the_command_line() {
    let dir = TempDir::new("mgr-ports-config");
    let socket = dir.socket();
    let cfg = dir.write(
        "chain.toml",
        "[manager]\nports = [\"null\", \"null\", \"null\"]\n\n[services]\na = 1\n\n[[chains]]\nchain = [\"a\", \"out:1\"]\nin_port = 0\n",
    );
    let mut mgr = start_mgr(
        &socket,
        &[
            "--port",
            "gen:64B,4flows,rate=10k",
            "--port",
            "null",
            "--config",
            cfg.to_str().unwrap(),
        ],
    );
    stop_cleanly(&mut mgr);
    let err = mgr.stderr.text();
    assert!(err.contains("--port replaces the 3 port(s) of"), "{}", mgr.output());
    let out = mgr.stdout.text();
    assert!(
        out.lines().any(|l| l.starts_with("port 0 ") && l.contains("gen:"))
            && out.lines().any(|l| l.starts_with("port 1 ") && l.contains("null"))
            && !out.lines().any(|l| l.starts_with("port 2 ")),
        "the manager has the two ports of --port, not the file's three\n{out}"
    );
}

/// `onvm mgr ARGS` that must fail before starting anything: its stderr.
fn mgr_fails(dir: &TempDir, args: &[&str]) -> String {
    let mut cmd = onvm();
    cmd.args(["mgr", "--stats", "off", "--run-for", "1", "--socket"])
        .arg(dir.socket())
        .args(args);
    let mut p = run_to_end("onvm mgr", cmd);
    assert_eq!(p.exit_code(SOON), 2, "{}", p.output());
    assert!(!dir.socket().exists(), "nothing was started");
    p.stderr.text()
}

/// Cores are checked against the machine (here a fake two-node sysfs tree, and this
/// machine) before the manager starts; a sysfs file it cannot read is named.
#[test]
fn cores_the_machine_lacks_are_refused_naming_the_online_ones() {
    let dir = TempDir::new("err-cores");
    for (file, text) in [
        ("sys/devices/system/cpu/online", "0-3\n"),
        ("sys/devices/system/node/node0/cpulist", "0-1\n"),
        ("sys/devices/system/node/node1/cpulist", "2-3\n"),
    ] {
        let p = dir.join(file);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }
    let fake = dir.path().to_str().unwrap();
    let err = mgr_fails(&dir, &["--sysfs-root", fake, "--mgr-core", "7"]);
    assert!(
        err.contains("manager core 7") && err.contains("online CPUs: 0-3"),
        "{err}"
    );
    let err = mgr_fails(&dir, &["--sysfs-root", fake, "--nf-cores", "3,1,3"]);
    assert!(err.contains("NF core 3 is listed twice"), "{err}");
    let err = mgr_fails(&dir, &["--nf-cores", "0,99"]);
    assert!(err.contains("NF core 99") && err.contains("online CPUs: "), "{err}");

    std::fs::write(dir.join("sys/devices/system/cpu/online"), "0-x\n").unwrap();
    let err = mgr_fails(&dir, &["--sysfs-root", fake]);
    assert!(
        err.contains("sys/devices/system/cpu/online") && err.contains("\"0-x\""),
        "{err}"
    );
}

#[test]
fn bad_openflow_settings_name_the_flag() {
    let dir = TempDir::new("err-openflow");
    for (args, want) in [
        (&["--controller", "127.0.0.1:6653"][..], "a controller is tcp:HOST:PORT"),
        (&["--controller", "tcp:no-such-host.invalid:6653"], "cannot resolve"),
        (&["--openflow-listen", "ptcp:http"], "not a TCP port"),
        (&["--fail-mode", "open"], "expected secure or standalone"),
        (&["--datapath-id", "0xzz"], "--datapath-id"),
    ] {
        let mut cmd = onvm();
        cmd.args(["mgr", "--stats", "off", "--socket"])
            .arg(dir.socket())
            .args(args);
        let mut p = run_to_end("onvm mgr", cmd);
        assert_eq!(p.exit_code(SOON), 2, "{args:?}: {}", p.output());
        assert!(p.stderr.text().contains(want), "{args:?}: {}", p.output());
    }
    // A listener port already taken: the manager says which, and starts nothing.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let listen = format!("ptcp:{}:127.0.0.1", taken.local_addr().unwrap().port());
    let mut cmd = onvm();
    cmd.args(["mgr", "--stats", "off", "--openflow-listen", &listen, "--socket"])
        .arg(dir.socket());
    let mut p = run_to_end("onvm mgr", cmd);
    assert_ne!(p.exit_code(SOON), 0);
    let err = p.stderr.text();
    assert!(
        err.contains("OpenFlow listener") && err.contains("pick another ptcp: port"),
        "{err}"
    );
    assert!(!dir.socket().exists(), "the control socket went with it");
}

/// Issue 12: `pcap:/dev/zero` used to read until memory ran out; now its header is
/// refused at once (and the manager never starts).
#[test]
fn a_pcap_port_on_dev_zero_is_refused_at_once() {
    let dir = TempDir::new("err-pcap-zero");
    let t0 = std::time::Instant::now();
    let err = mgr_fails(&dir, &["--port", "pcap:/dev/zero"]);
    assert!(
        err.contains("/dev/zero") && err.contains("no pcap magic number"),
        "{err}"
    );
    let err = mgr_fails(&dir, &["--port", "pcap:/dev/zero,loop"]);
    assert!(err.contains("`loop` needs a regular file"), "{err}");
    assert!(t0.elapsed() < SOON, "took {:?}", t0.elapsed());
}

/// Issue 12: `onvm up` checks every NF before it starts anything. An unknown NF used to
/// be retried six times while the run went on without it and ended "conservation: OK".
#[test]
fn up_refuses_an_nf_it_cannot_launch_before_starting_anything() {
    let dir = TempDir::new("err-up-nf");
    let sh = dir.write("not-exec.sh", "#!/bin/sh\n");
    for (nf, want) in [
        (
            "name = \"ghost\"".to_string(),
            "NF \"ghost\" is neither a built-in NF nor has a `binary` or `image` \
             (built-in: speed_tester, simple_forward, basic_monitor, bridge, firewall,",
        ),
        (
            "name = \"firewall\"\nargs = [\"-f\", \"/no/such/rules\"]".to_string(),
            "NF \"firewall\": its args [\"-f\", \"/no/such/rules\"] are refused: ",
        ),
        (
            "name = \"fw\"\nbinary = \"/no/such/dir/fw\"".to_string(),
            "NF \"fw\": binary /no/such/dir/fw: No such file",
        ),
        (
            "name = \"fw\"\nbinary = \"no-such-onvm-nf-binary\"".to_string(),
            "no such executable on PATH",
        ),
        (
            format!("name = \"fw\"\nbinary = \"{}\"", sh.display()),
            "not executable",
        ),
        (
            "name = \"simple_forward\"\nargs = [\"--quiet\"]".to_string(),
            "NF \"simple_forward\": its args [\"--quiet\"] are refused: unexpected argument '--quiet'",
        ),
    ] {
        let file = dir.write(
            "up.toml",
            &format!(
                "[manager]\nports = [\"null\"]\n\n[services]\na = 1\n\n[[nfs]]\n{nf}\nservice = \"a\"\nrestart = \"always\"\n"
            ),
        );
        let err = up_fails(&dir, &file);
        assert!(err.contains(want), "{nf}: want {want:?} in: {err}");
    }
}

/// Issue 12: nonsense numbers (zero, negative, NaN, forever) are refused before anything
/// starts, naming the flag and the range it takes.
#[test]
fn nonsense_numbers_are_refused_naming_the_flag_and_its_range() {
    let dir = TempDir::new("err-numbers");
    for (args, want) in [
        (
            &["--stats-every", "0"][..],
            "--stats-every 0: out of range, must be 0.01..=3600 seconds",
        ),
        (&["--stats-every=-1"], "--stats-every -1: out of range, must be"),
        (&["--stats-every", "NaN"], "--stats-every NaN: out of range, must be"),
        (
            &["--run-for", "0"],
            "--run-for 0: out of range, must be 0.001..=31536000 seconds",
        ),
        (
            &["--exit-when-drained", "0"],
            "--exit-when-drained 0: out of range, must be",
        ),
        (&["--buffers", "0"], "--buffers 0: out of range, must be 1..=16777216"),
        (
            &["--data-room", "0"],
            "--data-room 0: out of range, must be 64..=1048576",
        ),
        (
            &["--data-room", "100000000"],
            "--data-room 100000000: out of range, must be 64..=1048576",
        ),
        (
            &["--wait-for-nfs", "128"],
            "--wait-for-nfs 128: out of range, must be 0..=127",
        ),
        (
            &["--watchdog-ms", "10"],
            "--watchdog-ms 10: out of range, must be 0 (off) or 50..=600000",
        ),
        (&["--nf-quota", "0"], "--nf-quota 0: out of range, must be at least 1"),
    ] {
        // `--run-for` comes from `mgr_fails` too: give the one under test last.
        let mut cmd = onvm();
        cmd.args(["mgr", "--stats", "off", "--socket"])
            .arg(dir.socket())
            .args(args);
        let mut p = run_to_end("onvm mgr", cmd);
        assert_eq!(p.exit_code(SOON), 2, "{args:?}: {}", p.output());
        assert!(
            p.stderr.text().contains(want),
            "{args:?}: want {want:?}: {}",
            p.output()
        );
        assert!(!dir.socket().exists(), "nothing was started");
    }

    // `onvm up` takes the same flags.
    let file = dir.write("up.toml", "[manager]\nports = [\"null\"]\n");
    let mut cmd = onvm();
    cmd.arg("up")
        .arg(&file)
        .args(["--stats-every", "0", "--socket"])
        .arg(dir.socket());
    let mut p = run_to_end("onvm up", cmd);
    assert_eq!(p.exit_code(SOON), 2, "{}", p.output());
    assert!(
        p.stderr.text().contains("--stats-every 0: out of range, must be"),
        "{}",
        p.output()
    );
    // And its file's numbers are checked with the same bounds, naming the line.
    let file = dir.write("up-watchdog.toml", "[manager]\nports = [\"null\"]\nwatchdog_ms = 10\n");
    let err = up_fails(&dir, &file);
    assert!(
        err.contains("line 3: manager.watchdog_ms = 10: out of range, must be 0 (off) or 50..=600000"),
        "{err}"
    );

    // `onvm nf`, before it connects (no manager runs here).
    for (args, want) in [
        (&["--ttl", "0", "simple-forward"][..], "--ttl 0: out of range, must be"),
        (
            &["--packet-limit", "0", "simple-forward"],
            "--packet-limit 0: out of range, must be 1..=",
        ),
        (
            &["-r", "0", "simple-forward"],
            "--service 0: out of range, must be 1..=31",
        ),
        (
            &["-n", "0", "simple-forward"],
            "--instance 0: out of range, must be 1..=127",
        ),
        (
            &["simple-forward", "-d", "99"],
            "--dest 99: out of range, must be 1..=31",
        ),
        (&["speed-tester", "-c", "0"], "--count 0: out of range, must be 1..="),
        (
            &["speed-tester", "-s", "10"],
            "--size 10: out of range, must be 64..=9216",
        ),
    ] {
        let mut cmd = onvm();
        cmd.args(["nf", "--socket"]).arg(dir.socket()).args(args);
        let mut p = run_to_end("onvm nf", cmd);
        assert_eq!(p.exit_code(SOON), 2, "{args:?}: {}", p.output());
        assert!(
            p.stderr.text().contains(want),
            "{args:?}: want {want:?}: {}",
            p.output()
        );
    }

    // An NF of an `onvm up` file gets the same checks, before anything starts.
    let file = dir.write(
        "nf.toml",
        "[manager]\nports = [\"null\"]\n\n[services]\na = 1\n\n[[nfs]]\nname = \"speed_tester\"\nservice = \"a\"\nargs = [\"-c\", \"0\"]\n",
    );
    let err = up_fails(&dir, &file);
    assert!(
        err.contains("NF \"speed_tester\": its args [\"-c\", \"0\"] are refused: --count 0: out of range, must be"),
        "{err}"
    );

    for (cmd_name, want) in [
        ("bench", "--seconds 0: out of range, must be 0.1..=3600"),
        ("demo", "--seconds 0: out of range, must be"),
    ] {
        let mut cmd = onvm();
        cmd.args([cmd_name, "--seconds", "0"]);
        let mut p = run_to_end(cmd_name, cmd);
        assert_eq!(p.exit_code(SOON), 2, "{}", p.output());
        assert!(p.stderr.text().contains(want), "{}", p.output());
    }
}

/// Issue 12: a generator whose frames cannot fit a buffer used to run and send nothing.
#[test]
fn a_generator_frame_bigger_than_the_data_room_is_refused() {
    let dir = TempDir::new("err-gen-room");
    let err = mgr_fails(&dir, &["--port", "gen:9000B"]);
    assert!(
        err.contains("port gen:9000B,1flows: 9000-byte frames") && err.contains("do not fit the 2048-byte data room"),
        "{err}"
    );
}

/// An NF that fails every time is given up on by its policy; `onvm up` runs on with
/// the rest, and then ends with a failure saying so (it used to exit 0).
#[test]
fn up_ends_with_a_failure_when_an_nf_was_given_up() {
    let dir = TempDir::new("up-gives-up");
    let file = dir.write(
        "up.toml",
        r#"[manager]
ports = ["gen:64B,4flows,rate=1k", "null"]

[services]
a = 1

[[nfs]]
name = "always-fails"
binary = "/bin/false"
service = "a"
restart = "on-failure"
max_restarts = 1
backoff = { initial_ms = 10 }

[[chains]]
name = "a"
chain = ["a", "out:1"]
in_port = 0
"#,
    );
    let mut cmd = onvm();
    cmd.arg("up")
        .arg(&file)
        .args(["--stats", "off", "--run-for", "2", "--socket"])
        .arg(dir.socket());
    let mut p = run_to_end("onvm up", cmd);
    assert_eq!(p.exit_code(SOON), 1, "{}", p.output());
    let err = p.stderr.text();
    assert!(err.contains("1 NF(s) failed and were not restarted"), "{}", p.output());
    // The packets are still all accounted for: the failure is the config's, not theirs.
    assert!(p.stdout.text().contains("conservation: OK"), "{}", p.output());
}

/// An NF on a service that no chain or rule reaches is told about, not left to idle
/// silently while the manager drops everything as `no-rule`; one a chain reaches is not.
#[test]
fn an_nf_no_chain_reaches_is_warned_about() {
    let dir = TempDir::new("unreached-nf");
    let socket = dir.socket();
    let cfg = dir.write(
        "chain.toml",
        "[services]\na = 1\nb = 2\n\n[[chains]]\nchain = [\"a\", \"out:0\"]\nin_port = 0\n",
    );
    let mut mgr = start_mgr(&socket, &["--port", "null", "--config", cfg.to_str().unwrap()]);
    let (_a, _) = start_forwarder(&mgr, &socket, 1, "reached");
    let (_b, _) = start_forwarder(&mgr, &socket, 2, "lonely");
    let warned = |tag: &str| {
        mgr.stderr.count(|l| {
            l.contains(&format!("NF {tag:?} (instance")) && l.contains("no chain or rule sends packets to service")
        })
    };
    assert_eq!(warned("lonely"), 1, "{}", mgr.output());
    assert_eq!(warned("reached"), 0, "{}", mgr.output());
    stop_cleanly(&mut mgr);
}
