//! Who may use the control socket (and so read every packet): only the manager's user
//! and root unless a group or users are granted; a directory another user could tamper
//! with is refused; nothing that is not our socket is ever deleted. The tests that
//! switch users create one (`useradd`) and remove it whatever happens.

mod common;

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::{Command, Stdio};

use common::{Proc, SOON, TempDir, nf_command, onvm, run_to_end, serial, start_mgr, stop_cleanly, wait_registered};

/// A system user made for one test, removed (with its group) on drop.
struct TestUser {
    name: String,
    uid: u32,
    gid: u32,
}

impl TestUser {
    /// `onvmtest{PID}{tag}`; `tag` keeps the tests of one run apart.
    fn new(tag: &str) -> TestUser {
        let name = format!("onvmtest{}{tag}", std::process::id());
        // One left by a killed run.
        let _ = Command::new("userdel").arg(&name).stderr(Stdio::null()).status();
        let _ = Command::new("groupdel").arg(&name).stderr(Stdio::null()).status();
        let st = Command::new("useradd")
            .args([
                "--system",
                "--no-create-home",
                "--shell",
                "/usr/sbin/nologin",
                "--user-group",
            ])
            .arg(&name)
            .status()
            .expect("run useradd");
        assert!(st.success(), "useradd {name} failed");
        // From here on, drop removes it.
        let mut user = TestUser { name, uid: 0, gid: 0 };
        user.uid = id(&["-u", &user.name]);
        user.gid = id(&["-g", &user.name]);
        user
    }

    /// `cmd` run as this user (see [`as_user`]).
    fn command(&self, cmd: &Command) -> Command {
        as_user(self.uid, self.gid, cmd)
    }
}

/// `cmd` run as `uid` (primary group `gid`, no other groups), exec'd in place so that
/// killing it kills the program itself.
fn as_user(uid: u32, gid: u32, cmd: &Command) -> Command {
    let mut c = Command::new("setpriv");
    c.arg(format!("--reuid={uid}"))
        .arg(format!("--regid={gid}"))
        .arg("--clear-groups")
        .arg(cmd.get_program())
        .args(cmd.get_args());
    for (k, v) in cmd.get_envs() {
        match v {
            Some(v) => c.env(k, v),
            None => c.env_remove(k),
        };
    }
    c
}

impl Drop for TestUser {
    fn drop(&mut self) {
        let _ = Command::new("userdel").arg(&self.name).status();
    }
}

fn id(args: &[&str]) -> u32 {
    let out = Command::new("id").args(args).output().expect("run id");
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .unwrap_or_else(|_| panic!("id {args:?}: {out:?}"))
}

fn mode(p: &Path) -> u32 {
    std::fs::symlink_metadata(p).unwrap().mode() & 0o7777
}

fn chmod(p: &Path, mode: u32) {
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// An NF run as `user` against `socket`: it must fail, and never register.
fn assert_nf_refused(user: &TestUser, mgr: &Proc, socket: &Path, tag: &str) -> Proc {
    let mut nf = Proc::spawn(tag, user.command(&nf_command(socket, 1, tag, &[], &["simple-forward"])));
    let code = nf.exit_code(SOON);
    assert_ne!(code, 0, "an NF of another user was served\n{}", nf.output());
    assert!(
        !mgr.stderr.text().contains(&format!("NF {tag:?} registered")),
        "{}",
        mgr.output()
    );
    nf
}

#[test]
fn another_user_is_refused_by_the_modes_and_by_the_peer_check_and_let_in_when_granted() {
    if !onvm_testkit::require_root("to create a user and run an NF as that user") {
        return;
    }
    let _one = serial();
    let user = TestUser::new("p");
    let dir = TempDir::new("peer");
    let run = dir.join("run");
    let socket = run.join("onvm.sock");
    let mut mgr = start_mgr(&socket, &[]);
    assert_eq!((mode(&run), mode(&socket)), (0o700, 0o600), "default modes");

    // The modes keep it out: it cannot even connect.
    let nf = assert_nf_refused(&user, &mgr, &socket, "intruder");
    assert!(
        nf.stderr.text().to_lowercase().contains("permission denied"),
        "{}",
        nf.output()
    );

    // Loosened modes (a umask of 000, a chmod): the peer credentials still say no.
    chmod(&run, 0o755);
    chmod(&socket, 0o666);
    assert_nf_refused(&user, &mgr, &socket, "intruder2");
    let refused = mgr.stderr.wait(SOON, |l| l.contains("refused a control connection"));
    let (_, line) = refused.unwrap_or_else(|| panic!("no refusal logged\n{}", mgr.output()));
    assert!(line.contains(&format!("uid {}", user.uid)), "{line}");

    // The manager keeps serving its own user's NFs.
    let (nf, _) = common::start_forwarder(&mgr, &socket, 1, "ours");
    assert!(!mgr.exited(), "{}", mgr.output());
    stop_cleanly(&mut mgr);
    drop(nf);

    // Granted by group (here the user's own) or by user: it registers.
    for grant in [
        ["--socket-group", user.name.as_str()],
        ["--socket-uid", user.name.as_str()],
    ] {
        let dir = TempDir::new("granted");
        let run = dir.join("run");
        let socket = run.join("onvm.sock");
        let mut mgr = start_mgr(&socket, &grant);
        if grant[0] == "--socket-group" {
            assert_eq!((mode(&run), mode(&socket)), (0o750, 0o660), "{grant:?}");
            assert_eq!(std::fs::metadata(&socket).unwrap().gid(), user.gid);
        } else {
            assert_eq!((mode(&run), mode(&socket)), (0o711, 0o666), "{grant:?}");
        }
        let nf = Proc::spawn(
            "granted",
            user.command(&nf_command(&socket, 1, "granted", &[], &["simple-forward"])),
        );
        wait_registered(&mgr, "granted", &nf);
        stop_cleanly(&mut mgr);
    }
}

/// `onvm mgr` on `socket` run to its end (it must fail): its stderr.
fn mgr_fails(cmd: Command) -> String {
    let mut p = run_to_end("onvm mgr", cmd);
    assert_eq!(p.exit_code(SOON), 2, "the manager started\n{}", p.output());
    p.stderr.text()
}

fn mgr_on(socket: &Path) -> Command {
    let mut cmd = onvm();
    cmd.args([
        "mgr",
        "--stats",
        "off",
        "--buffers",
        "4095",
        "--run-for",
        "5",
        "--socket",
    ])
    .arg(socket);
    cmd
}

#[test]
fn a_regular_file_at_the_socket_path_is_refused_and_left_intact() {
    let _one = serial();
    let dir = TempDir::new("file");
    let precious = dir.write("precious.txt", "keep me");
    let err = mgr_fails(mgr_on(&precious));
    assert!(err.contains("is not a socket"), "{err}");
    assert_eq!(std::fs::read_to_string(&precious).unwrap(), "keep me");
}

#[test]
fn a_directory_others_can_write_to_is_refused() {
    let _one = serial();
    let dir = TempDir::new("loose");
    let run = dir.join("run");
    std::fs::create_dir(&run).unwrap();
    chmod(&run, 0o777);
    let err = mgr_fails(mgr_on(&run.join("onvm.sock")));
    assert!(err.contains("lets group or others write to it"), "{err}");
    assert!(!run.join("onvm.sock").exists());
}

#[test]
fn a_directory_squatted_by_another_user_is_refused() {
    if !onvm_testkit::require_root("to create a user and hand it a directory") {
        return;
    }
    let _one = serial();
    let user = TestUser::new("s");
    let dir = TempDir::new("squat");

    // An explicit --socket in another user's directory (0755: only they can write).
    let theirs = dir.join("theirs");
    std::fs::create_dir(&theirs).unwrap();
    std::os::unix::fs::chown(&theirs, Some(user.uid), Some(user.gid)).unwrap();
    let err = mgr_fails(mgr_on(&theirs.join("onvm.sock")));
    assert!(err.contains(&format!("owned by uid {}", user.uid)), "{err}");
    assert!(!theirs.join("onvm.sock").exists());

    // The default path of a non-root manager, TMPDIR/onvm-UID, created first by another
    // user (`nobody`) to receive its NFs.
    let squatted = dir.join(&format!("onvm-{}", user.uid));
    std::fs::create_dir(&squatted).unwrap();
    std::os::unix::fs::chown(&squatted, Some(65534), Some(65534)).unwrap();
    let mut cmd = onvm();
    cmd.args(["mgr", "--stats", "off", "--buffers", "4095", "--run-for", "5"])
        .env("TMPDIR", dir.path())
        .env_remove("ONVM_SOCKET")
        .env_remove("ONVM_RUN_DIR");
    let err = mgr_fails(user.command(&cmd));
    assert!(err.contains("owned by uid 65534"), "{err}");
    assert!(err.contains(&squatted.display().to_string()), "{err}");
}

#[test]
fn an_nf_at_the_default_path_does_not_register_with_another_users_manager() {
    if !onvm_testkit::require_root("to create a user and run processes as two users") {
        return;
    }
    let _one = serial();
    let victim = TestUser::new("d");
    let dir = TempDir::new("default-nf");
    // `nobody` created the victim's default directory first and runs a manager there.
    let squatted = dir.join(&format!("onvm-{}", victim.uid));
    std::fs::create_dir(&squatted).unwrap();
    std::os::unix::fs::chown(&squatted, Some(65534), Some(65534)).unwrap();
    chmod(&squatted, 0o755);
    let socket = squatted.join("onvm.sock");
    let mut cmd = onvm();
    cmd.args(["mgr", "--stats", "off", "--buffers", "4095", "--socket-uid"])
        .arg(victim.uid.to_string())
        .arg("--socket")
        .arg(&socket);
    let mut mgr = Proc::spawn("nobody's onvm mgr", as_user(65534, 65534, &cmd));
    let up = common::wait_for(SOON, || socket.exists() || mgr.exited());
    assert!(
        up && socket.exists(),
        "nobody's manager did not start\n{}",
        mgr.output()
    );

    // The victim's NF, given no socket, finds it at its default path and refuses it.
    let nf = |socket: Option<&Path>| {
        let mut cmd = onvm();
        cmd.arg("nf");
        if let Some(s) = socket {
            cmd.arg("--socket").arg(s);
        }
        cmd.args(["--service", "1", "--tag", "victim", "--shared-core", "simple-forward"])
            .env("TMPDIR", dir.path())
            .env_remove("ONVM_SOCKET")
            .env_remove("ONVM_RUN_DIR");
        Proc::spawn("victim NF", victim.command(&cmd))
    };
    let mut refused = nf(None);
    assert_ne!(refused.exit_code(SOON), 0, "{}", refused.output());
    assert!(
        refused.stderr.text().contains("runs as another user"),
        "{}",
        refused.output()
    );
    assert!(!mgr.stderr.text().contains("registered"), "{}", mgr.output());

    // Named explicitly, the same socket is trusted: it was the check that refused.
    let named = nf(Some(&socket));
    wait_registered(&mgr, "victim", &named);
    stop_cleanly(&mut mgr);
}
