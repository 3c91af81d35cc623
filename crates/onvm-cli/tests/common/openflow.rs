//! For the tests of the manager as an OpenFlow switch against the real tools
//! (`openflow*.rs`): the tools they need, a manager with an OpenFlow listener, and
//! `ovs-ofctl -O OpenFlow13`.

use std::ffi::OsStr;
use std::net::{SocketAddr, TcpListener};
use std::process::Command;
use std::time::Duration;

use onvm_openflow as of;

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

/// A controller written against the codec, for what the tools do not do (PACKET_IN
/// contents, SET_ASYNC): it takes one connection from the manager (`--controller
/// tcp:ADDR` of its listener) and speaks through blocking reads, answering echoes.
pub struct RawController {
    s: std::net::TcpStream,
    rx: Vec<u8>,
}

impl RawController {
    /// The manager's connection on `l`, greeted with an OpenFlow 1.3 HELLO.
    pub fn accept(l: &TcpListener) -> RawController {
        let (s, _) = l.accept().expect("the manager dials");
        s.set_read_timeout(Some(SOON)).unwrap();
        let mut c = RawController { s, rx: Vec::new() };
        c.send(&of::Message::Hello(of::Hello::ours(of::VersionBitmap::of(&[4]))));
        c
    }

    pub fn send(&mut self, m: &of::Message) {
        use std::io::Write;
        self.s.write_all(&m.encode(1).unwrap()).unwrap();
    }

    /// The next message that is not an echo request.
    pub fn recv(&mut self) -> of::Message {
        use std::io::Read;
        loop {
            if let Ok(Some(n)) = of::frame_len(&self.rx) {
                let b: Vec<u8> = self.rx.drain(..n).collect();
                match of::Message::decode(&b).unwrap().1 {
                    of::Message::EchoRequest(d) => self.send(&of::Message::EchoReply(d)),
                    m => return m,
                }
                continue;
            }
            let mut buf = [0u8; 65536];
            let n = self.s.read(&mut buf).expect("a message from the manager");
            assert!(n > 0, "the manager closed the connection");
            self.rx.extend_from_slice(&buf[..n]);
        }
    }

    /// Send `m` and a BARRIER_REQUEST; return once the BARRIER_REPLY came (skipping
    /// everything before it).
    pub fn send_and_sync(&mut self, m: &of::Message) {
        self.send(m);
        self.send(&of::Message::BarrierRequest);
        while self.recv() != of::Message::BarrierReply {}
    }

    /// The next PACKET_IN, skipping everything else.
    pub fn packet_in(&mut self) -> of::PacketIn {
        loop {
            if let of::Message::PacketIn(p) = self.recv() {
                return p;
            }
        }
    }
}
