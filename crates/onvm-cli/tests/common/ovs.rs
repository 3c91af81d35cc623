//! Open vSwitch's userspace switch with all its state in a temp folder, for the tests
//! that hold onvm's manager against Open vSwitch: `ovsdb-server` on a database made
//! from the installed schema and `ovs-vswitchd --disable-system` (the kernel loads no
//! modules here, so only the `netdev` datapath works: ports are read with AF_PACKET),
//! both run inside a network namespace of the test's so that their ports and their
//! controller connections are that namespace's. Everything (daemons, folder) goes on
//! drop, however the test ends.

use std::path::PathBuf;
use std::process::Command;

use super::netns::Netns;
use super::{Proc, SOON, TempDir, wait_for};

/// The database schema Debian's openvswitch-common installs.
pub const SCHEMA: &str = "/usr/share/openvswitch/vswitch.ovsschema";

/// Fails the test without the Open vSwitch daemons and tools (`false` only with
/// ONVM_ALLOW_SKIP=1: return).
#[must_use]
#[track_caller]
pub fn can_run() -> bool {
    let switch = "apt install openvswitch-switch";
    onvm_testkit::require_tool("ovsdb-tool", switch)
        && onvm_testkit::require_tool("ovsdb-server", switch)
        && onvm_testkit::require_tool("ovs-vswitchd", switch)
        && onvm_testkit::require_tool("ovs-vsctl", switch)
        && onvm_testkit::require_tool("ovs-ofctl", "apt install openvswitch-common")
        && onvm_testkit::require(
            std::path::Path::new(SCHEMA).exists(),
            &format!("Open vSwitch's schema {SCHEMA}, which is not there"),
            "apt install openvswitch-common (scripts/deps.sh installs it)",
        )
}

/// A running Open vSwitch (database server and switch daemon). Its bridges, their
/// management sockets (`DIR/BRIDGE.mgmt`), database, logs and pid files are in one
/// temp folder.
pub struct Ovs {
    // Declared before `dir`: the daemons stop before their folder goes.
    vswitchd: Option<Proc>,
    ovsdb: Option<Proc>,
    dir: TempDir,
}

impl Ovs {
    /// Start both daemons in `ns`; returns once the switch daemon has read the database.
    pub fn start(tag: &str, ns: &Netns) -> Ovs {
        let dir = TempDir::new(&format!("ovs-{tag}"));
        let d = dir.path().display().to_string();
        let db = format!("{d}/conf.db");
        let mut create = Command::new("ovsdb-tool");
        create.args(["create", &db, SCHEMA]);
        run_ok(&mut create, "ovsdb-tool create");

        let mut ovs = Ovs {
            vswitchd: None,
            ovsdb: None,
            dir,
        };
        let mut server = ns.command("ovsdb-server");
        server
            .arg(&db)
            .arg(format!("--remote=punix:{d}/db.sock"))
            .arg(format!("--pidfile={d}/ovsdb-server.pid"))
            .arg(format!("--unixctl={d}/ovsdb-server.ctl"))
            .arg(format!("--log-file={d}/ovsdb-server.log"));
        ovs.env(&mut server);
        let mut server = Proc::spawn("ovsdb-server", server);
        let up = wait_for(SOON, || ovs.db_socket().exists() || server.exited());
        assert!(
            up && !server.exited(),
            "ovsdb-server did not start\n{}",
            server.output()
        );
        ovs.ovsdb = Some(server);
        ovs.vsctl(&["--no-wait", "init"]);

        let mut switch = ns.command("ovs-vswitchd");
        switch
            .arg(format!("unix:{d}/db.sock"))
            // No kernel datapath: the netdev (userspace) one only.
            .arg("--disable-system")
            .arg(format!("--pidfile={d}/ovs-vswitchd.pid"))
            .arg(format!("--unixctl={d}/ovs-vswitchd.ctl"))
            .arg(format!("--log-file={d}/ovs-vswitchd.log"));
        ovs.env(&mut switch);
        let mut switch = Proc::spawn("ovs-vswitchd", switch);
        let ctl = ovs.dir.join("ovs-vswitchd.ctl");
        let up = wait_for(SOON, || ctl.exists() || switch.exited());
        assert!(
            up && !switch.exited(),
            "ovs-vswitchd did not start\n{}\n{}",
            switch.output(),
            ovs.log()
        );
        ovs.vswitchd = Some(switch);
        ovs
    }

    /// Its state folder.
    pub fn dir(&self) -> PathBuf {
        self.dir.path().to_path_buf()
    }

    fn db_socket(&self) -> PathBuf {
        self.dir.join("db.sock")
    }

    /// Every Open vSwitch program looks for its files here, not under /var/run or /etc.
    fn env(&self, cmd: &mut Command) {
        for var in ["OVS_RUNDIR", "OVS_LOGDIR", "OVS_DBDIR", "OVS_SYSCONFDIR"] {
            cmd.env(var, self.dir.path());
        }
    }

    /// `ovs-vsctl ARGS` on this database (which waits, unless told `--no-wait`, until
    /// the switch has applied the change); its output. Panics with it and the daemon's
    /// log on failure.
    pub fn vsctl(&self, args: &[&str]) -> String {
        let mut cmd = Command::new("ovs-vsctl");
        cmd.arg(format!("--db=unix:{}", self.db_socket().display()))
            .arg("--timeout=15")
            .args(args);
        self.env(&mut cmd);
        let out = cmd.output().expect("run ovs-vsctl");
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "ovs-vsctl {args:?} failed: {}{text}\n{}",
            String::from_utf8_lossy(&out.stderr),
            self.log()
        );
        text
    }

    /// `ovs-ofctl -O OpenFlow13 --no-names CMD unix:DIR/BRIDGE.mgmt ARGS` (the bridge's
    /// management socket, beside any controller); its output. Panics on failure.
    pub fn ofctl(&self, bridge: &str, cmd: &str, args: &[&str]) -> String {
        let target = format!("unix:{}", self.dir.join(&format!("{bridge}.mgmt")).display());
        let out = Command::new("timeout")
            .args(["10", "ovs-ofctl", "-O", "OpenFlow13", "--no-names", cmd, &target])
            .args(args)
            .output()
            .expect("run ovs-ofctl");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            out.status.success(),
            "ovs-ofctl {cmd} {bridge} {args:?} failed:\n{text}"
        );
        text
    }

    /// A userspace bridge (`datapath_type=netdev`) that only its controllers program
    /// (`fail_mode=secure`: no NORMAL forwarding, ever), speaking OpenFlow 1.3, with
    /// datapath id `dpid`.
    pub fn bridge(&self, name: &str, dpid: u64) {
        let dpid = format!("other-config:datapath-id={dpid:016x}");
        self.vsctl(&[
            "add-br",
            name,
            "--",
            "set",
            "bridge",
            name,
            "datapath_type=netdev",
            "fail_mode=secure",
            "protocols=OpenFlow13",
            &dpid,
        ]);
    }

    /// `bridge` dials `target` (`tcp:IP:PORT`), redialling at least every second. Set
    /// it once the ports are there: a controller learns them when it connects.
    pub fn controller(&self, bridge: &str, target: &str) {
        self.vsctl(&["set-controller", bridge, target]);
        self.vsctl(&["set", "controller", bridge, "max_backoff=1000"]);
    }

    /// Kernel interface `iface` (a veth end in the daemons' namespace) as port `ofport`.
    pub fn port(&self, bridge: &str, iface: &str, ofport: u16) {
        let request = format!("ofport_request={ofport}");
        self.vsctl(&["add-port", bridge, iface, "--", "set", "interface", iface, &request]);
    }

    /// A stand-in for an NF service that hands every packet back, as onvm's service
    /// port `ofport` does with a forwarding NF: a patch port `ofport` on `bridge` to a
    /// bridge `name` of its own (no controller) whose one rule sends every packet back
    /// out IN_PORT, so it re-enters `bridge` on `ofport`.
    pub fn loopback_service(&self, bridge: &str, ofport: u16, name: &str) {
        self.bridge(name, 0xf000 + u64::from(ofport));
        let (near, far) = (format!("{name}-a"), format!("{name}-b"));
        let (peer_far, peer_near) = (format!("options:peer={far}"), format!("options:peer={near}"));
        let request = format!("ofport_request={ofport}");
        self.vsctl(&[
            "add-port",
            bridge,
            &near,
            "--",
            "set",
            "interface",
            &near,
            "type=patch",
            &peer_far,
            &request,
            "--",
            "add-port",
            name,
            &far,
            "--",
            "set",
            "interface",
            &far,
            "type=patch",
            &peer_near,
            "ofport_request=1",
        ]);
        self.ofctl(name, "add-flow", &["actions=in_port"]);
    }

    /// The end of the switch daemon's log, for failure messages.
    pub fn log(&self) -> String {
        let log = std::fs::read_to_string(self.dir.join("ovs-vswitchd.log")).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        let tail = lines[lines.len().saturating_sub(30)..].join("\n");
        format!("--- the end of ovs-vswitchd.log\n{tail}")
    }
}

impl Drop for Ovs {
    fn drop(&mut self) {
        // SIGKILL through Proc's drop: nothing of them outlives the test (their tap
        // devices go with the namespace).
        self.vswitchd.take();
        self.ovsdb.take();
    }
}

fn run_ok(cmd: &mut Command, what: &str) {
    let out = cmd.output().unwrap_or_else(|e| panic!("cannot run {what}: {e}"));
    assert!(
        out.status.success(),
        "{what} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}
