//! For the tests of the manager as an OpenFlow switch against the real tools
//! (`openflow*.rs`): the tools they need, a manager with an OpenFlow listener, and
//! `ovs-ofctl -O OpenFlow13`.

use std::ffi::OsStr;
use std::net::{SocketAddr, TcpListener};
use std::process::Command;
use std::time::Duration;

use super::{Proc, SOON, TempDir, wait_for, write_pcap};

/// Fails the test without `ovs-ofctl` (`false` only with ONVM_ALLOW_SKIP=1: return).
#[must_use]
#[track_caller]
pub fn have_ovs_ofctl() -> bool {
    onvm_testkit::require_tool("ovs-ofctl", "apt install openvswitch-common")
}

/// Fails the test without python3 and os-ken (`false` only with ONVM_ALLOW_SKIP=1: return).
#[must_use]
#[track_caller]
pub fn have_os_ken() -> bool {
    onvm_testkit::require_python_module("os_ken", "python3 -m pip install os-ken")
}

/// A TCP port nobody listens on now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// `onvm mgr --stats off --buffers 4095 --socket DIR/onvm.sock ARGS`, started.
pub fn spawn_mgr(dir: &TempDir, args: &[impl AsRef<OsStr>]) -> Proc {
    let mut cmd = super::onvm();
    cmd.args(["mgr", "--stats", "off", "--buffers", "4095", "--socket"])
        .arg(dir.socket())
        .args(args);
    Proc::spawn("onvm mgr", cmd)
}

/// [`spawn_mgr`], once its socket is there.
pub fn start_mgr(dir: &TempDir, args: &[impl AsRef<OsStr>]) -> Proc {
    let mut p = spawn_mgr(dir, args);
    let up = wait_for(SOON, || dir.socket().exists() || p.exited());
    assert!(up && dir.socket().exists(), "the manager did not start\n{}", p.output());
    p
}

/// [`start_mgr`] with a pcap input (OpenFlow port 1) holding `frames` and an output
/// (port 2, DIR/out.pcap) and these arguments; it receives only once `nfs` NFs run, so
/// the rules can be set up first.
pub fn start_pcap_mgr(dir: &TempDir, frames: &[Vec<u8>], nfs: usize, extra: &[&str]) -> Proc {
    let input = dir.join("in.pcap");
    write_pcap(&input, frames, Duration::from_secs(1_700_000_000));
    let (pcap, pcapout) = (
        format!("pcap:{}", input.display()),
        format!("pcapout:{}", dir.join("out.pcap").display()),
    );
    let nfs = nfs.to_string();
    let mut args = vec!["-p", &pcap, "-p", &pcapout, "--wait-for-nfs", &nfs];
    args.extend_from_slice(extra);
    start_mgr(dir, &args)
}

/// Where the manager's OpenFlow listener is (asked for as port 0).
pub fn listen_socket(mgr: &Proc) -> SocketAddr {
    let (_, line) = mgr
        .stderr
        .wait(SOON, |l| l.contains("openflow: listening on "))
        .unwrap_or_else(|| panic!("no OpenFlow listener\n{}", mgr.output()));
    line.rsplit(' ').next().unwrap().parse().unwrap()
}

/// [`listen_socket`] as an `ovs-ofctl` target: `tcp:ADDR`.
pub fn listen_addr(mgr: &Proc) -> String {
    format!("tcp:{}", listen_socket(mgr))
}

/// `ovs-ofctl -O OpenFlow13 --no-names OPTIONS CMD TARGET ARGS`: (success, stdout +
/// stderr).
pub fn ofctl_with(options: &[String], cmd: &str, target: &str, args: &[&str]) -> (bool, String) {
    let out = Command::new("timeout")
        .args(["10", "ovs-ofctl", "-O", "OpenFlow13", "--no-names"])
        .args(options)
        .args([cmd, target])
        .args(args)
        .output()
        .expect("run ovs-ofctl");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// `ovs-ofctl -O OpenFlow13 --no-names CMD TARGET ARGS`: (success, stdout + stderr).
pub fn ofctl(cmd: &str, target: &str, args: &[&str]) -> (bool, String) {
    ofctl_with(&[], cmd, target, args)
}

/// [`ofctl_with`], which must succeed: its output.
pub fn ofctl_ok_with(options: &[String], cmd: &str, target: &str, args: &[&str]) -> String {
    let (ok, text) = ofctl_with(options, cmd, target, args);
    assert!(ok, "ovs-ofctl {cmd} {args:?} failed:\n{text}");
    text
}

/// [`ofctl`], which must succeed: its output.
pub fn ofctl_ok(cmd: &str, target: &str, args: &[&str]) -> String {
    ofctl_ok_with(&[], cmd, target, args)
}

/// The flow lines of a dump-flows.
pub fn flows(dump: &str) -> Vec<&str> {
    dump.lines().filter(|l| l.contains("cookie=")).collect()
}
