//! Container NFs with a real Docker engine (`DOCKER_HOST`; scripts/test.sh starts a
//! private dockerd): the image `onvm image build` makes, chains of containers and of
//! containers mixed with processes, a container killed or stopped under load, scaling
//! a container service while it runs, and nothing of ours left behind.
//!
//! The `docker` client is the independent witness here: it kills, stops, lists and
//! inspects what `onvm up` made through the Engine API.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use common::{
    Proc, SOON, TempDir, assert_conserved, distinct_udp_frames, onvm, read_pcap, registered, serial, wait_for,
    write_pcap,
};

/// The image of the built-in NFs, as the tests build it.
const IMAGE: &str = "onvm-test/nfs:latest";

/// Whether a Docker engine and client are there; fails the test (naming why) if not.
fn docker_ready() -> bool {
    onvm_testkit::require_docker() && onvm_testkit::require_tool("docker", "apt install docker.io")
}

/// `docker ARGS`: its stdout, trimmed; panics with its stderr when it fails.
fn docker(args: &[&str]) -> String {
    let out = Command::new("docker").args(args).output().expect("run docker");
    assert!(
        out.status.success(),
        "docker {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Build [`IMAGE`] with `onvm image build`, once per test binary; its output.
fn image() -> &'static str {
    static BUILT: OnceLock<String> = OnceLock::new();
    BUILT.get_or_init(|| {
        let out = onvm()
            .args(["image", "build", "--tag", IMAGE])
            .output()
            .expect("run onvm image build");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.status.success(), "onvm image build failed:\n{text}");
        text
    })
}

/// The containers labelled as serving the manager on `socket` (running or not).
fn ours(socket: &Path) -> Vec<String> {
    let filter = format!("label=org.onvm-rs.socket={}", socket.display());
    let list = docker(&["ps", "-a", "--filter", &filter, "--format", "{{.Names}}"]);
    list.lines().map(String::from).collect()
}

/// A config: `ports`, then `body` (services, NFs, chains); the socket in its own
/// folder, which the manager creates (0750, group of the NF image's user).
fn config(dir: &TempDir, ports: &[&str], body: &str) -> (PathBuf, PathBuf) {
    let socket = dir.join("run/onvm.sock");
    let ports: Vec<String> = ports.iter().map(|p| format!("{p:?}")).collect();
    let text = format!(
        "[manager]\nsocket = {:?}\nports = [{}]\nshared_cores = true\n\n{body}",
        socket.display().to_string(),
        ports.join(", ")
    );
    (dir.write("up.toml", &text), socket)
}

/// [`config`], and the [`Leftovers`] guard of its socket.
fn configured(dir: &TempDir, ports: &[&str], body: &str) -> (PathBuf, PathBuf, Leftovers) {
    let (cfg, socket) = config(dir, ports, body);
    let left = Leftovers(socket.clone());
    (cfg, socket, left)
}

/// An `[[nfs]]` entry: NF `name` for `service`, then `more` (TOML lines).
fn nf(name: &str, service: &str, more: &str) -> String {
    format!("[[nfs]]\nname = {name:?}\nservice = {service:?}\n{more}\n")
}

/// [`nf`] in a container of `image`.
fn nf_in(image: &str, name: &str, service: &str, more: &str) -> String {
    nf(name, service, &format!("image = {image:?}\n{more}"))
}

/// A config's body: the services of `chain`, numbered from 1 in its order, the `nfs`
/// entries, and chain `c`: port 0, the services, port 1.
fn chain_body(chain: &[&str], nfs: &[String]) -> String {
    let services: String = chain.iter().zip(1..).map(|(s, n)| format!("{s} = {n}\n")).collect();
    let hops: Vec<String> = chain.iter().chain(&["out:1"]).map(|h| format!("{h:?}")).collect();
    format!(
        "[services]\n{services}\n{}\n[[chains]]\nname = \"c\"\nchain = [{}]\nin_port = 0\n",
        nfs.join("\n"),
        hops.join(", ")
    )
}

/// Removes the containers of the manager on its socket however the test ends: a failed
/// assertion kills `onvm up` outright, which leaves them to the engine.
struct Leftovers(PathBuf);

impl Drop for Leftovers {
    fn drop(&mut self) {
        let filter = format!("label=org.onvm-rs.socket={}", self.0.display());
        let Ok(out) = Command::new("docker").args(["ps", "-aq", "--filter", &filter]).output() else {
            return;
        };
        for id in String::from_utf8_lossy(&out.stdout).split_whitespace() {
            let _ = Command::new("docker").args(["rm", "-f", id]).output();
        }
    }
}

fn up(cfg: &Path, extra: &[&str]) -> Proc {
    let mut cmd = onvm();
    cmd.arg("up")
        .arg(cfg)
        .args(["--stats", "off", "--buffers", "4095"])
        .args(extra);
    Proc::spawn("onvm up", cmd)
}

/// [`up`], once `n` NFs have registered.
fn up_registered(cfg: &Path, n: usize) -> Proc {
    let p = up(cfg, &[]);
    assert!(wait_for(SOON, || registered(&p) >= n), "{}", p.output());
    p
}

/// Waits (up to 60 s) for `onvm up` to exit by itself; it must exit 0 and account for
/// every buffer.
fn finished(p: &mut Proc) {
    assert_eq!(
        p.exit_code(Duration::from_secs(60)),
        0,
        "onvm up failed\n{}",
        p.output()
    );
    assert_conserved(p);
}

/// SIGTERM to `onvm up`, which must exit 0.
fn stop(p: &mut Proc) {
    p.signal("TERM");
    assert_eq!(p.exit_code(SOON), 0, "{}", p.output());
}

/// From the summary, the `rx` of every NF instance tagged `tag`.
fn rx_of(p: &Proc, tag: &str) -> Vec<u64> {
    let prefix = format!("NF {tag} ");
    p.stdout
        .text()
        .lines()
        .filter(|l| l.starts_with(&prefix))
        .map(|l| common::field(l, "rx").unwrap_or(0))
        .collect()
}

#[test]
fn the_nf_image_is_small_from_scratch_not_root_and_runs() {
    if !docker_ready() {
        return;
    }
    let _g = serial();
    let built = image();
    assert!(
        built.contains("/lib64/ld-linux") || built.contains("ld-linux"),
        "{built}"
    );
    let info = docker(&[
        "image",
        "inspect",
        IMAGE,
        "--format",
        "{{.Size}} {{.Config.User}} {{len .RootFS.Layers}} {{index .Config.Labels \"org.onvm-rs.builtin-nfs\"}}",
    ]);
    let f: Vec<&str> = info.split_whitespace().collect();
    let size: u64 = f[0].parse().unwrap();
    assert!(size < 50_000_000, "image of {size} bytes: {info}");
    assert_eq!(f[1], "65532:65532", "the default user is not root: {info}");
    assert_eq!(f[2], "1", "FROM scratch: one layer, ours: {info}");
    assert_eq!(f[3], "true", "{info}");
    // Its binary, loader and libraries are all there: `onvm nf --help` runs inside.
    let help = docker(&["run", "--rm", "--network", "none", IMAGE, "nf", "--help"]);
    assert!(help.contains("simple-forward"), "{help}");
    // And nothing else: no shell to fall back on.
    let shell = Command::new("docker")
        .args([
            "run",
            "--rm",
            "--network",
            "none",
            "--entrypoint",
            "/bin/sh",
            IMAGE,
            "-c",
            "true",
        ])
        .output()
        .unwrap();
    assert!(!shell.status.success(), "the image has a shell");
}

#[test]
fn a_capture_crosses_a_chain_of_containers_unchanged() {
    if !docker_ready() {
        return;
    }
    let _g = serial();
    image();
    let dir = TempDir::new("ct-pcap");
    let frames = distinct_udp_frames(500, 32);
    write_pcap(&dir.join("in.pcap"), &frames, Duration::ZERO);
    // One NF for two services: two entries of one name, two containers.
    let body = chain_body(
        &["mon", "fwd"],
        &[
            nf_in(IMAGE, "simple_forward", "mon", ""),
            nf_in(IMAGE, "simple_forward", "fwd", "memory = \"128M\""),
        ],
    );
    let (input, output) = (
        format!("pcap:{}", dir.join("in.pcap").display()),
        format!("pcapout:{}", dir.join("out.pcap").display()),
    );
    let (cfg, socket, _left) = configured(&dir, &[&input, &output], &body);
    let mut p = up(&cfg, &["--exit-when-drained", "1"]);
    finished(&mut p);
    let err = p.stderr.text();
    assert_eq!(err.matches("started (container onvm-").count(), 2, "{err}");
    assert!(
        !err.contains("exited"),
        "neither container was removed by the other's start: {err}"
    );
    let out = read_pcap(&dir.join("out.pcap"));
    assert_eq!(out.len(), frames.len(), "every packet comes out\n{}", p.output());
    for (i, (o, e)) in out.iter().zip(&frames).enumerate() {
        assert!(o == e, "packet {i} differs (or the order changed)");
    }
    assert!(ours(&socket).is_empty(), "containers left: {:?}", ours(&socket));
}

/// The NF catalogue runs from the image as it does as processes: a chain of catalogue
/// NFs that change packets (AES-GCM out and back, then NAT) writes the same capture
/// either way. (What they write is checked frame by frame in tests/catalogue/.)
#[test]
fn catalogue_nfs_in_containers_write_what_they_write_as_processes() {
    if !docker_ready() {
        return;
    }
    let _g = serial();
    image();
    let key = "000102030405060708090a0b0c0d0e0f";
    let frames = distinct_udp_frames(300, 24);
    let run = |name: &str, image: Option<&str>| {
        let dir = TempDir::new(name);
        write_pcap(&dir.join("in.pcap"), &frames, Duration::ZERO);
        let entry = |nf_name: &str, service: &str, args: &[&str]| {
            let more = format!("args = {args:?}");
            match image {
                Some(i) => nf_in(i, nf_name, service, &more),
                None => nf(nf_name, service, &more),
            }
        };
        let body = chain_body(
            &["enc", "dec", "nat"],
            &[
                entry("aes_encrypt", "enc", &["-k", key]),
                entry("aes_decrypt", "dec", &["-k", key]),
                entry("nat", "nat", &["--inside", "10.0.0.0/16", "--public", "198.18.0.1"]),
            ],
        );
        let (input, output) = (
            format!("pcap:{}", dir.join("in.pcap").display()),
            format!("pcapout:{}", dir.join("out.pcap").display()),
        );
        let (cfg, socket, _left) = configured(&dir, &[&input, &output], &body);
        let mut p = up(&cfg, &["--exit-when-drained", "1"]);
        finished(&mut p);
        let started = p.stderr.text().matches("started (container onvm-").count();
        assert_eq!(started, if image.is_some() { 3 } else { 0 }, "{}", p.output());
        assert!(ours(&socket).is_empty(), "containers left: {:?}", ours(&socket));
        read_pcap(&dir.join("out.pcap"))
    };
    let as_processes = run("ct-cat-proc", None);
    let in_containers = run("ct-cat-img", Some(IMAGE));
    assert_eq!(as_processes.len(), frames.len(), "every packet comes out");
    assert_ne!(as_processes[0], frames[0], "NAT rewrote the source");
    assert!(
        as_processes == in_containers,
        "the containers wrote other frames than the processes"
    );
}

#[test]
fn processes_and_containers_share_a_chain_and_a_service() {
    if !docker_ready() {
        return;
    }
    let _g = serial();
    image();
    let dir = TempDir::new("ct-mixed");
    // Service fwd: one process and one container; then a container monitor.
    let body = chain_body(
        &["fwd", "mon"],
        &[
            nf("simple_forward", "fwd", ""),
            nf_in(IMAGE, "simple_forward", "fwd", ""),
            nf_in(IMAGE, "basic_monitor", "mon", "args = [\"--quiet\"]"),
        ],
    );
    let (cfg, socket, _left) = configured(&dir, &["gen:64B,64flows,rate=200k", "null"], &body);
    let mut p = up(&cfg, &["--run-for", "3"]);
    finished(&mut p);
    let fwd = rx_of(&p, "simple_forward");
    assert_eq!(fwd.len(), 2, "{}", p.output());
    assert!(
        fwd.iter().all(|&n| n > 1000),
        "both instances of the service, process and container, get flows: {fwd:?}"
    );
    let mon = rx_of(&p, "basic_monitor");
    // The container after them gets what they pass on (less what a busy machine drops
    // on full rings, which the conservation line above has accounted for).
    assert!(mon[0] > 0 && mon[0] <= fwd.iter().sum::<u64>(), "{mon:?} after {fwd:?}");
    // The manager names the container each NF runs in (from its cgroup), as docker does.
    let out = p.stdout.text();
    let in_container: Vec<&str> = out
        .lines()
        .filter(|l| l.starts_with("NF ") && l.contains(" container "))
        .collect();
    assert_eq!(in_container.len(), 2, "the monitor and one forwarder:\n{out}");
    let err = p.stderr.text();
    for line in in_container {
        // `... container NAME (ID)`, as onvm up said when it started it.
        let named = line.split(" container ").nth(1).unwrap();
        let id = named.rsplit(['(', ')']).nth(1).unwrap();
        assert_eq!(id.len(), 12, "{line}");
        assert!(named.starts_with("onvm-"), "{line}");
        assert!(
            err.contains(&format!("(container {named})")),
            "onvm up named container {named} when it started it:\n{err}"
        );
        assert!(
            err.contains(&format!(", container {named}")),
            "the manager's registration names it:\n{err}"
        );
    }
    assert!(ours(&socket).is_empty());
}

#[test]
fn a_killed_or_stopped_container_is_reclaimed_and_restarted_under_load() {
    if !docker_ready() {
        return;
    }
    let _g = serial();
    image();
    let dir = TempDir::new("ct-kill");
    let body = chain_body(
        &["mon", "fwd"],
        &[
            nf("basic_monitor", "mon", "args = [\"--quiet\"]"),
            nf_in(IMAGE, "simple_forward", "fwd", "restart = \"always\""),
        ],
    );
    let (cfg, socket, _left) = configured(&dir, &["gen:64B,64flows,rate=200k", "null"], &body);
    let mut p = up_registered(&cfg, 2);
    let name = ours(&socket)
        .into_iter()
        .find(|n| n.contains("simple_forward"))
        .expect("its container");
    std::thread::sleep(Duration::from_millis(500));

    // docker kill: the NF dies without stopping; the manager sees its socket close.
    let t = Instant::now();
    docker(&["kill", &name]);
    let killed = t.elapsed();
    let seen = p
        .stderr
        .wait(SOON, |l| l.contains("died without stopping") && l.contains("reclaimed"));
    let (at, line) = seen.unwrap_or_else(|| panic!("the kill was not noticed\n{}", p.output()));
    let detect = at.saturating_duration_since(t).saturating_sub(killed);
    eprintln!(
        "docker kill noticed {:?} after the call began, {detect:?} after the engine answered ({killed:?}): {line}",
        at.saturating_duration_since(t)
    );
    assert!(detect < Duration::from_secs(2), "{detect:?}");
    assert!(wait_for(SOON, || registered(&p) >= 3), "not restarted\n{}", p.output());

    // docker stop: SIGTERM, the NF stops cleanly and, restart = "always", comes back.
    std::thread::sleep(Duration::from_millis(500));
    docker(&["stop", "-t", "5", &name]);
    assert!(
        p.stderr
            .wait(SOON, |l| l.contains("\"simple_forward\"") && l.contains("stopped;"))
            .is_some(),
        "{}",
        p.output()
    );
    assert!(
        wait_for(SOON, || registered(&p) >= 4),
        "not restarted after docker stop\n{}",
        p.output()
    );
    std::thread::sleep(Duration::from_millis(800));
    stop(&mut p);
    assert_conserved(&p);
    let fwd = rx_of(&p, "simple_forward");
    assert_eq!(fwd.len(), 3, "three runs of the forwarder\n{}", p.output());
    assert!(fwd.iter().all(|&n| n > 0), "traffic resumed after each: {fwd:?}");
    assert!(
        p.stdout.text().contains("NF crashes noticed and reclaimed: 1"),
        "{}",
        p.output()
    );
    assert!(ours(&socket).is_empty());
}

#[test]
fn scaling_a_container_service_while_it_runs_loses_nothing_uncounted() {
    if !docker_ready() {
        return;
    }
    let _g = serial();
    image();
    let dir = TempDir::new("ct-scale");
    let body = |n: u16| {
        chain_body(
            &["fwd"],
            &[nf_in(IMAGE, "simple_forward", "fwd", &format!("instances = {n}"))],
        )
    };
    let ports = ["gen:64B,256flows,rate=200k", "null"];
    let (cfg, socket, _left) = configured(&dir, &ports, &body(1));
    let mut p = up_registered(&cfg, 1);
    std::thread::sleep(Duration::from_millis(500));
    config(&dir, &ports, &body(3));
    p.signal("HUP");
    assert!(wait_for(SOON, || registered(&p) >= 3), "not scaled up\n{}", p.output());
    assert_eq!(ours(&socket).len(), 3);
    std::thread::sleep(Duration::from_secs(1));
    config(&dir, &ports, &body(1));
    p.signal("HUP");
    assert!(
        wait_for(SOON, || p.stderr.count(|l| l.contains("scaled away")) == 2
            && p.stderr.count(|l| l.contains("stopped;")) >= 2),
        "not scaled down\n{}",
        p.output()
    );
    assert!(wait_for(SOON, || ours(&socket).len() == 1), "{:?}", ours(&socket));
    // A change other than instances is refused while running.
    dir.write(
        "up.toml",
        &std::fs::read_to_string(&cfg).unwrap().replace("256flows", "128flows"),
    );
    p.signal("HUP");
    assert!(
        p.stderr.wait(SOON, |l| l.contains("only the `instances`")).is_some(),
        "{}",
        p.output()
    );
    std::thread::sleep(Duration::from_millis(500));
    stop(&mut p);
    assert_conserved(&p);
    let fwd = rx_of(&p, "simple_forward");
    assert_eq!(fwd.len(), 3, "{}", p.output());
    assert!(
        fwd.iter().all(|&n| n > 1000),
        "every instance took flows while it ran: {fwd:?}"
    );
    assert!(ours(&socket).is_empty());
}

#[test]
fn no_container_outlives_its_manager() {
    if !docker_ready() {
        return;
    }
    let _g = serial();
    image();
    let networks = docker(&["network", "ls", "-q"]);
    let volumes = docker(&["volume", "ls", "-q"]);
    let dir = TempDir::new("ct-left");
    let body = chain_body(&["fwd"], &[nf_in(IMAGE, "simple_forward", "fwd", "")]);
    let (cfg, socket, _left) = configured(&dir, &["gen:64B,8flows,rate=10k", "null"], &body);
    // onvm up killed outright: its container stays (the NF ends when its manager goes).
    let mut p = up_registered(&cfg, 1);
    p.kill();
    assert_eq!(ours(&socket).len(), 1);
    // The next onvm up on that socket removes it first, and its own at the end.
    let mut p = up(&cfg, &[]);
    assert!(
        p.stderr
            .wait(SOON, |l| l
                .contains("removed 1 container(s) left by an earlier manager"))
            .is_some(),
        "{}",
        p.output()
    );
    assert!(wait_for(SOON, || registered(&p) >= 1), "{}", p.output());
    stop(&mut p);
    assert!(ours(&socket).is_empty(), "{:?}", ours(&socket));
    assert_eq!(docker(&["network", "ls", "-q"]), networks, "no network of ours");
    assert_eq!(docker(&["volume", "ls", "-q"]), volumes, "no volume of ours");
}

#[test]
fn a_container_nf_gets_the_socket_folder_and_nothing_else() {
    if !docker_ready() {
        return;
    }
    let _g = serial();
    image();
    let dir = TempDir::new("ct-inspect");
    let body = chain_body(
        &["fwd"],
        &[nf_in(IMAGE, "simple_forward", "fwd", "memory = \"96M\"\nweight = 200")],
    );
    let (cfg, socket, _left) = configured(&dir, &["gen:64B,8flows,rate=10k", "null"], &body);
    let mut p = up_registered(&cfg, 1);
    let name = ours(&socket).pop().expect("its container");
    let f = "{{.HostConfig.NetworkMode}}|{{json .HostConfig.CapDrop}}|{{json .HostConfig.CapAdd}}|\
             {{.HostConfig.Privileged}}|{{json .HostConfig.SecurityOpt}}|{{.HostConfig.ReadonlyRootfs}}|\
             {{json .HostConfig.Binds}}|{{json .HostConfig.Devices}}|{{.HostConfig.Memory}}|\
             {{.HostConfig.CpusetCpus}}|{{.Config.User}}|{{json .HostConfig.GroupAdd}}|{{len .Mounts}}|\
             {{.HostConfig.CpuShares}}";
    let info = docker(&["inspect", &name, "--format", f]);
    let v: Vec<&str> = info.split('|').collect();
    let run = socket.parent().unwrap().display().to_string();
    assert_eq!(v[0], "none", "no network: {info}");
    assert_eq!(v[1], "[\"ALL\"]", "every capability dropped: {info}");
    assert_eq!(v[2], "null", "none added: {info}");
    assert_eq!(v[3], "false", "not privileged: {info}");
    assert_eq!(v[4], "[\"no-new-privileges\"]", "{info}");
    assert_eq!(v[5], "true", "read-only root: {info}");
    assert_eq!(
        v[6],
        format!("[\"{run}:{run}:ro\"]"),
        "only the socket's folder, read-only: {info}"
    );
    assert!(v[7] == "null" || v[7] == "[]", "no devices: {info}");
    assert_eq!(v[8], (96u64 << 20).to_string(), "the config's memory limit: {info}");
    // The cpuset is the manager's NF cores.
    let err = p.stderr.text();
    let cores = err
        .split("NF cores [")
        .nth(1)
        .and_then(|r| r.split(']').next())
        .expect("NF cores");
    for c in cores.split(", ") {
        let c: u16 = c.parse().unwrap();
        let cpus = onvm_mgr_cpulist(v[9]);
        assert!(cpus.contains(&c), "NF core {c} not in cpuset {:?}: {info}", v[9]);
    }
    assert_eq!(v[10], "65532:65532", "the image's user: {info}");
    assert_eq!(v[11], "[\"65532\"]", "the socket's group: {info}");
    assert_eq!(v[12], "1", "one mount: {info}");
    // Its weight (200) is its cgroup's CPU shares, not a nice value it could not set
    // without CAP_SYS_NICE (it registered: `up_registered`).
    assert_eq!(v[13], "2048", "the config's weight as CPU shares: {info}");
    // Its user is 65532 and reaches the socket by the group: 0750 / 0660, no more.
    use std::os::unix::fs::MetadataExt;
    let d = std::fs::metadata(socket.parent().unwrap()).unwrap();
    let s = std::fs::metadata(&socket).unwrap();
    assert_eq!((d.mode() & 0o777, d.gid()), (0o750, 65532));
    assert_eq!((s.mode() & 0o777, s.gid()), (0o660, 65532));
    let pid = docker(&["inspect", &name, "--format", "{{.State.Pid}}"]);
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let uid = status.lines().find(|l| l.starts_with("Uid:")).unwrap();
    assert!(uid.split_whitespace().skip(1).all(|u| u == "65532"), "{uid}");
    // And the kernel weighs it so: its cgroup's cpu.shares (cgroup v1), or on a cgroup
    // v2 host the cpu.weight the engine converts 2048 shares to (1 + 2046 * 9999 / 262142).
    let cgroups = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    let weight = cgroups
        .lines()
        .filter_map(|l| {
            let mut f = l.splitn(3, ':').skip(1);
            let (controllers, path) = (f.next()?, f.next()?);
            let (files, want) = match controllers {
                "" => (
                    vec![
                        format!("/sys/fs/cgroup{path}/cpu.weight"),
                        format!("/sys/fs/cgroup/unified{path}/cpu.weight"),
                    ],
                    "79",
                ),
                c if c.split(',').any(|c| c == "cpu") => (vec![format!("/sys/fs/cgroup/{c}{path}/cpu.shares")], "2048"),
                _ => return None,
            };
            files
                .into_iter()
                .find_map(|f| Some((std::fs::read_to_string(&f).ok()?, want, f)))
        })
        .next()
        .unwrap_or_else(|| panic!("no cpu.shares or cpu.weight for the container's cgroups:\n{cgroups}"));
    assert_eq!(weight.0.trim(), weight.1, "{weight:?}");
    stop(&mut p);
    assert_conserved(&p);
}

/// A CPU list (`0-2,5`) as CPUs.
fn onvm_mgr_cpulist(text: &str) -> Vec<u16> {
    text.split(',')
        .filter(|r| !r.is_empty())
        .flat_map(|r| match r.split_once('-') {
            Some((a, b)) => (a.parse().unwrap()..=b.parse().unwrap()).collect::<Vec<u16>>(),
            None => vec![r.parse().unwrap()],
        })
        .collect()
}

/// count-nf (examples/count-nf, an NF of one's own) built here and put in an image by
/// `onvm image build --binary`, once per test binary; the image's name.
fn count_nf_image() -> &'static str {
    static BUILT: OnceLock<()> = OnceLock::new();
    const TAG: &str = "onvm-test/count-nf:latest";
    BUILT.get_or_init(|| {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let st = Command::new(cargo)
            .args(["build", "-q", "-p", "count-nf"])
            .current_dir(&root)
            .status()
            .expect("run cargo build");
        assert!(st.success(), "cargo build -p count-nf failed");
        let bin = Path::new(env!("CARGO_BIN_EXE_onvm")).with_file_name("count-nf");
        let out = onvm()
            .args(["image", "build", "--tag", TAG, "--binary"])
            .arg(&bin)
            .output()
            .expect("run onvm image build");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    });
    TAG
}

#[test]
fn flows_spread_over_container_instances_and_each_stays_on_one() {
    if !docker_ready() {
        return;
    }
    let _g = serial();
    let img = count_nf_image();
    let dir = TempDir::new("ct-affinity");
    let body = chain_body(
        &["cnt"],
        &[nf_in(img, "count-nf", "cnt", "instances = 3\nargs = [\"--per-flow\"]")],
    );
    let (cfg, _socket, _left) = configured(&dir, &["gen:64B,64flows,rate=100k", "null"], &body);
    let mut p = up(&cfg, &["--run-for", "3"]);
    finished(&mut p);
    // Each container's totals reach onvm up's stderr (its log is copied out before the
    // container goes): `count-nf (instance N) flow A:P > B:Q udp: ...`.
    let err = p.stderr.text();
    let mut seen: std::collections::BTreeMap<String, std::collections::BTreeSet<String>> = Default::default();
    for l in err
        .lines()
        .filter(|l| l.starts_with("count-nf (instance ") && l.contains(") flow "))
    {
        let (who, flow) = l.split_once(") flow ").unwrap();
        let flow = flow.split(':').take(3).collect::<Vec<_>>().join(":");
        seen.entry(flow).or_default().insert(who.to_string());
    }
    assert_eq!(seen.len(), 64, "every flow counted once somewhere:\n{err}");
    let split: Vec<_> = seen.iter().filter(|(_, who)| who.len() > 1).collect();
    assert!(split.is_empty(), "flows seen by several instances: {split:?}");
    let used: std::collections::BTreeSet<&String> = seen.values().flatten().collect();
    assert_eq!(used.len(), 3, "every container instance got flows: {used:?}");
    let totals: u64 = err
        .lines()
        .filter(|l| l.starts_with("count-nf (instance ") && l.contains(") total: "))
        .map(|l| common::field(l, "total:").unwrap_or(0))
        .sum();
    let rx: u64 = rx_of(&p, "count-nf").iter().sum();
    assert_eq!(totals, rx, "the NFs' own totals add up to what the manager counted");
}
