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

/// Two hosts on one switch: namespace `tag` with veths `p0` and `p1` to the namespaces
/// `{tag}1` (interface `h1`, address `h1_cidr`) and `{tag}2` (`h2`, `h2_cidr`). Bound
/// with one `let`, the switch's namespace is dropped last.
pub fn two_hosts(tag: &str, h1_cidr: &str, h2_cidr: &str) -> (Netns, Netns, Netns) {
    let sw = Netns::create(tag);
    let (h1, h2) = (Netns::create(&format!("{tag}1")), Netns::create(&format!("{tag}2")));
    sw.veth_to("p0", &h1, "h1");
    sw.veth_to("p1", &h2, "h2");
    h1.addr("h1", h1_cidr);
    h2.addr("h2", h2_cidr);
    (sw, h1, h2)
}

/// A python3 script that moves `bytes` over TCP to `server`, port 5001. The server
/// (`role` "server") prints `listening`, then `received N SHA-256`; the client prints
/// `sent N SHA-256`.
pub fn tcp_script(role: &str, server: &str, bytes: usize) -> String {
    format!(
        r#"
import hashlib, socket
n = {bytes}
if "{role}" == "server":
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("{server}", 5001))
    s.listen(1)
    s.settimeout(60)
    print("listening", flush=True)
    c, _ = s.accept()
    c.settimeout(60)
    h, got = hashlib.sha256(), 0
    while True:
        d = c.recv(1 << 16)
        if not d:
            break
        h.update(d)
        got += len(d)
    print("received", got, h.hexdigest(), flush=True)
else:
    data = bytes((i * 7 + i // 1000) % 256 for i in range(n))
    s = socket.create_connection(("{server}", 5001), timeout=60)
    s.sendall(data)
    s.close()
    print("sent", n, hashlib.sha256(data).hexdigest(), flush=True)
"#
    )
}

/// [`tcp_script`]'s server in `server_ns` at `server` (once it listens), then its client
/// in `client_ns`: (client, server).
pub fn start_tcp_transfer(client_ns: &Netns, server_ns: &Netns, server: &str, bytes: usize) -> (Proc, Proc) {
    let mut cmd = server_ns.command("python3");
    cmd.args(["-c", &tcp_script("server", server, bytes)]);
    let server_proc = Proc::spawn("tcp server", cmd);
    assert!(
        server_proc.stdout.wait(SOON, |l| l.contains("listening")).is_some(),
        "the server did not start\n{}",
        server_proc.output()
    );
    let mut cmd = client_ns.command("python3");
    cmd.args(["-c", &tcp_script("client", server, bytes)]);
    (Proc::spawn("tcp client", cmd), server_proc)
}
