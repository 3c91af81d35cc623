//! Network namespaces, veth pairs and tcpdump captures for the tests that move real
//! frames through kernel interfaces. Everything a test creates is removed on drop.

use std::path::Path;
use std::process::Command;

use super::{Proc, SOON};

/// A network namespace, deleted (with every interface in it) on drop.
pub struct Netns(pub String);

impl Netns {
    pub fn create(tag: &str) -> Netns {
        let name = format!("onvmt-{tag}-{}", std::process::id());
        let _ = Command::new("ip").args(["netns", "del", &name]).output();
        let st = Command::new("ip")
            .args(["netns", "add", &name])
            .status()
            .expect("run ip netns add");
        assert!(st.success(), "ip netns add {name} failed");
        let ns = Netns(name);
        ns.ip(&["link", "set", "lo", "up"]);
        // No IPv6 on the test links: no router solicitations or MLD reports in the way.
        for key in ["all", "default"] {
            ns.exec(&["sysctl", "-q", "-w", &format!("net.ipv6.conf.{key}.disable_ipv6=1")]);
        }
        ns
    }

    /// Run `cmd` inside the namespace; panics with its stderr if it fails.
    pub fn exec(&self, cmd: &[&str]) {
        let out = Command::new("ip")
            .args(["netns", "exec", &self.0])
            .args(cmd)
            .output()
            .expect("run ip netns exec");
        assert!(
            out.status.success(),
            "{cmd:?} in {}: {}",
            self.0,
            String::from_utf8_lossy(&out.stderr)
        );
    }

    pub fn ip(&self, args: &[&str]) {
        let mut cmd = vec!["ip"];
        cmd.extend_from_slice(args);
        self.exec(&cmd);
    }

    /// A command that runs inside the namespace.
    pub fn command(&self, program: &str) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.0, program]);
        c
    }

    pub fn veth(&self, a: &str, b: &str) {
        self.ip(&["link", "add", a, "type", "veth", "peer", "name", b]);
        self.ip(&["link", "set", a, "up"]);
        self.ip(&["link", "set", b, "up"]);
    }

    /// A veth pair from `a` here to `b` in `other`, both up.
    pub fn veth_to(&self, a: &str, other: &Netns, b: &str) {
        self.ip(&["link", "add", a, "type", "veth", "peer", "name", b]);
        self.ip(&["link", "set", b, "netns", &other.0]);
        self.ip(&["link", "set", a, "up"]);
        other.ip(&["link", "set", b, "up"]);
    }

    /// Give `iface` here the address `cidr` (e.g. `10.9.1.1/24`).
    pub fn addr(&self, iface: &str, cidr: &str) {
        self.ip(&["addr", "add", cidr, "dev", iface]);
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).output();
    }
}

/// Requires what these tests need: root, `ip`, tcpreplay and tcpdump. The test fails
/// without them; `false` only with ONVM_ALLOW_SKIP=1 (onvm-testkit): the caller returns.
#[must_use]
#[track_caller]
pub fn can_run() -> bool {
    onvm_testkit::require_root("to create network namespaces, veth pairs and raw sockets")
        && onvm_testkit::require_tool("ip", "apt install iproute2")
        && onvm_testkit::require_tool("tcpreplay", "apt install tcpreplay")
        && onvm_testkit::require_tool("tcpdump", "apt install tcpdump")
}

/// Whole records in a capture tcpdump is still writing (its last one may be half
/// written: that one does not count yet).
pub fn whole_records(path: &Path) -> usize {
    let Ok(file) = std::fs::File::open(path) else { return 0 };
    let Ok(mut r) = pcap_file::pcap::PcapReader::new(file) else {
        return 0;
    };
    let mut n = 0;
    while let Some(Ok(_)) = r.next_packet() {
        n += 1;
    }
    n
}

/// Start tcpdump on `iface` in `ns`, writing `path`; returns once it listens.
pub fn capture(ns: &Netns, iface: &str, path: &Path) -> Proc {
    let mut c = ns.command("tcpdump");
    c.args(["-i", iface, "-U", "-n", "-w"]).arg(path).arg("udp");
    let p = Proc::spawn("tcpdump", c);
    assert!(
        p.stderr.wait(SOON, |l| l.contains("listening on")).is_some(),
        "tcpdump did not start\n{}",
        p.output()
    );
    p
}

/// Like [`capture`], with tcpdump filter `filter` (e.g. `vlan`, `tcp`) instead of `udp`.
pub fn capture_filtered(ns: &Netns, iface: &str, path: &Path, filter: &str) -> Proc {
    let mut c = ns.command("tcpdump");
    c.args(["-i", iface, "-U", "-n", "-w"]).arg(path).arg(filter);
    let p = Proc::spawn("tcpdump", c);
    assert!(
        p.stderr.wait(SOON, |l| l.contains("listening on")).is_some(),
        "tcpdump did not start\n{}",
        p.output()
    );
    p
}
