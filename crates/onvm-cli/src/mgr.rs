//! `onvm mgr`.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, ValueEnum};
use onvm_mgr::openflow::{OpenFlowOptions, TlsConfig, parse_controller, parse_listen};
use onvm_mgr::{ManagerCore, Options, Report, StatsMode};
use onvm_proto::config::Config;
use onvm_proto::port::PortSpec;
use onvm_shm::seqpacket::default_socket_path;

use crate::{CliResult, bounds};

/// Stats output.
#[derive(Clone, Copy, Debug, ValueEnum, PartialEq, Eq)]
pub enum StatsArg {
    /// No stats.
    Off,
    /// openNetVM's console table.
    Console,
    /// openNetVM's raw CSV.
    Csv,
}

impl From<StatsArg> for StatsMode {
    fn from(s: StatsArg) -> Self {
        match s {
            StatsArg::Off => StatsMode::Off,
            StatsArg::Console => StatsMode::Console,
            StatsArg::Csv => StatsMode::Csv,
        }
    }
}

/// Settings shared by `mgr`, `up` and `demo`.
#[derive(Args, Debug, Clone)]
pub struct CommonMgr {
    /// Control socket (default: $ONVM_SOCKET, else onvm.sock in $ONVM_RUN_DIR, /run/onvm or a temp dir).
    /// Only the manager's user and root may use it unless granted below.
    #[arg(long)]
    pub socket: Option<PathBuf>,
    /// Let this group's members use the control socket (and so see every packet): the
    /// socket becomes 0660 and the directory the manager creates 0750, of this group.
    #[arg(long, value_name = "NAME|GID")]
    pub socket_group: Option<String>,
    /// Let these users use the control socket too (repeatable, or comma-separated);
    /// checked on each connection by the kernel's peer credentials.
    #[arg(long = "socket-uid", value_name = "USER|UID", value_delimiter = ',')]
    pub socket_uids: Vec<String>,
    /// Stats output.
    #[arg(long, value_enum, default_value = "console")]
    pub stats: StatsArg,
    /// Stats interval in seconds (openNetVM `-z`).
    #[arg(long, default_value_t = 1.0)]
    pub stats_every: f64,
    /// Stop after this many seconds (openNetVM `-t`).
    #[arg(long)]
    pub run_for: Option<f64>,
    /// Stop once every port is done receiving and nothing moved for this many seconds.
    #[arg(long)]
    pub exit_when_drained: Option<f64>,
    /// Count the switch thread's cycles per phase (rx, classify, enqueue, dequeue, tx,
    /// rest) and print them per packet at the end; costs a few cycles per packet.
    #[arg(long)]
    pub profile: bool,
    /// Switch threads that receive (1..=64): each port with several receive queues gets
    /// one thread per further queue, which writes the packets of a port whose rule sends
    /// them all to one NF straight into it (`null:64B` has as many queues as asked).
    /// (Default: the config's `rx_threads`, else 1.)
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub rx_threads: Option<u16>,
    /// Let NFs poll port queues themselves: where a `null` port's rule sends every
    /// packet to one NF whose next hop is a `null` port, that NF receives and sends
    /// them itself, and nothing crosses cores on that path (also `[manager] nf_queues`).
    #[arg(long)]
    pub nf_queues: bool,
    /// Serve the REST API (/api/v1), live stream, Prometheus /metrics and the web console
    /// at [ADDR:]PORT; a bare port listens on 127.0.0.1 only (port 0: any free port,
    /// named in the event log).
    #[arg(long, value_name = "[ADDR:]PORT", value_parser = parse_http)]
    pub http: Option<std::net::SocketAddr>,
    /// Cores handed out to NFs, e.g. 0,1; each an online CPU (default: every online CPU,
    /// those of the ports' NUMA node first, the manager's last).
    #[arg(long, value_delimiter = ',')]
    pub nf_cores: Option<Vec<u16>>,
    /// Core the manager's thread is pinned to, an online CPU (default: the first of the
    /// ports' NUMA node).
    #[arg(long)]
    pub mgr_core: Option<u16>,
    /// Cores the receive threads (`--rx-threads`) are pinned to, one each in order,
    /// e.g. 2,3; each an online CPU (default: not pinned).
    #[arg(long, value_delimiter = ',')]
    pub rx_cores: Option<Vec<u16>>,
    /// Read the CPU and NUMA topology from this sysfs root instead of / (default:
    /// $ONVM_SYSFS_ROOT, else /); for tests and for checking a placement.
    #[arg(long)]
    pub sysfs_root: Option<PathBuf>,
    /// Packet buffers in the pool.
    #[arg(long)]
    pub buffers: Option<u32>,
    /// Bytes of packet data per buffer (default 2048; 9216 for jumbo frames). AF_XDP
    /// ports need headroom + data room of at most 4096.
    #[arg(long)]
    pub data_room: Option<u32>,
    /// Start receiving from ports only once this many NFs run (at most 30 s later).
    #[arg(long)]
    pub wait_for_nfs: Option<usize>,
    /// An NF that leaves packets in its rx ring unread this long (ms) is reported hung
    /// and its flows go to its service's other instances; 0 = off [default: 500].
    #[arg(long, value_name = "MS")]
    pub watchdog_ms: Option<u64>,
    /// Kill a hung NF too (`onvm up` does, so its restart policy brings it back).
    #[arg(long)]
    pub kill_hung: bool,
    /// Chain-wide backpressure: while an NF's rings are more than 3/4 full, packets
    /// entering a chain that leads to it are dropped there (`backpressure` drops), so
    /// the NFs in front of it do no work for packets it would drop; until 1/4 full.
    #[arg(long)]
    pub backpressure: bool,
    /// Buffers an NF may hold outside its rings (kept and allocated packets); more
    /// are dropped as nf-over-quota [default: a quarter of the pool].
    #[arg(long, value_name = "BUFFERS")]
    pub nf_quota: Option<u32>,
    /// OpenFlow 1.3: listen for `ovs-ofctl` and controllers, as ptcp:PORT[:IP], or
    /// pssl:PORT[:IP] for TLS (without IP on 127.0.0.1 only; ptcp:PORT:0.0.0.0 for every
    /// address).
    #[arg(long, value_name = "ptcp:PORT[:IP]")]
    pub openflow_listen: Option<String>,
    /// OpenFlow 1.3: a controller to connect to, as tcp:HOST:PORT, or ssl:HOST:PORT for
    /// TLS (repeatable).
    #[arg(long = "controller", value_name = "tcp:HOST:PORT")]
    pub controllers: Vec<String>,
    /// When the last controller goes: keep its rules (secure, the default) or put the
    /// config's chains back (standalone).
    #[arg(long, value_name = "secure|standalone")]
    pub fail_mode: Option<String>,
    /// OpenFlow datapath ID, hex or decimal (default: derived from the socket path).
    #[arg(long)]
    pub datapath_id: Option<String>,
    #[command(flatten)]
    pub ssl: SslArgs,
}

/// The files of OpenFlow over TLS (`ssl:`, `pssl:`), the three of `ovs-vsctl set-ssl`,
/// all PEM: flags of every command that starts a manager, before the config's
/// `[manager]` keys `ssl_private_key`, `ssl_certificate` and `ssl_ca_cert`.
#[derive(Args, Debug, Clone, Default)]
pub struct SslArgs {
    /// OpenFlow over TLS: the switch's private key.
    #[arg(long, value_name = "FILE")]
    pub ssl_private_key: Option<PathBuf>,
    /// OpenFlow over TLS: the switch's certificate (chain), which peers check.
    #[arg(long, value_name = "FILE")]
    pub ssl_certificate: Option<PathBuf>,
    /// OpenFlow over TLS: the CA certificate that controllers' and tools' certificates
    /// must chain to (both ways: the switch refuses a peer without one).
    #[arg(long, value_name = "FILE")]
    pub ssl_ca_cert: Option<PathBuf>,
}

/// `onvm mgr`.
#[derive(Args, Debug)]
pub struct MgrArgs {
    /// Ports (repeatable), e.g. gen:64B,100flows  pcap:in.pcap  pcapout:out.pcap  null  null:64B (a source as fast as
    /// polled, as DPDK's net_null).
    #[arg(long = "port", short = 'p')]
    pub ports: Vec<String>,
    /// Take ports, services and chains from this `onvm up` file (its NFs are not started).
    #[arg(long)]
    pub config: Option<PathBuf>,
    #[command(flatten)]
    pub common: CommonMgr,
}

/// `--http`: an address and port, or a port on loopback.
fn parse_http(s: &str) -> Result<std::net::SocketAddr, String> {
    if let Ok(a) = s.parse() {
        return Ok(a);
    }
    s.parse::<u16>()
        .map(|p| std::net::SocketAddr::from(([127, 0, 0, 1], p)))
        .map_err(|_| format!("{s:?} is neither ADDR:PORT (e.g. 127.0.0.1:8080, [::1]:8080) nor a port number"))
}

/// Seconds as a `Duration`. `bounds::check_mgr` has refused what is out of range
/// already; the error is for a value that no check saw, instead of a panic.
fn secs(v: f64, what: &str) -> Result<Duration, String> {
    Duration::try_from_secs_f64(v).map_err(|_| format!("{what} must be a non-negative number of seconds"))
}

/// Manager options from the command line and an optional config. The numbers are checked
/// where their bounds live: the flags by [`bounds::check_mgr`], called here so that every
/// command that starts a manager (`mgr`, `up`, `demo`) has them checked, and the
/// config's by `Config::from_toml`.
pub fn options(common: &CommonMgr, config: Option<&Config>, extra_ports: &[String]) -> Result<Options, String> {
    bounds::check_mgr(common)?;
    let socket = common
        .socket
        .clone()
        .or_else(|| config.and_then(|c| c.manager.socket.clone()))
        .unwrap_or_else(default_socket_path);
    let mut o = Options::new(socket);
    o.socket_access = socket_access(common, config.map(|c| &c.manager))?;
    match config {
        // The config already holds the --port ports, if any (see `load_config`).
        Some(c) => {
            o.ports = c.manager.ports.clone();
            o.rules = c.rules.clone();
        }
        None => o.ports = parse_ports(extra_ports)?,
    }
    o.stats = common.stats.into();
    o.stats_every = secs(common.stats_every, "--stats-every")?;
    o.run_for = common.run_for.map(|s| secs(s, "--run-for")).transpose()?;
    o.profile = common.profile;
    o.http = common.http;
    o.exit_when_drained = common
        .exit_when_drained
        .map(|s| secs(s, "--exit-when-drained"))
        .transpose()?;
    // The manager checks cores against the machine's topology when it starts.
    o.nf_cores.clone_from(&common.nf_cores);
    o.rx_cores.clone_from(&common.rx_cores);
    if let Some(c) = common.mgr_core {
        o.core = ManagerCore::Core(c);
    }
    if let Some(r) = &common.sysfs_root {
        o.sysfs_root.clone_from(r);
    }
    if let Some(b) = common.buffers {
        o.region.buffers = b;
    }
    if let Some(d) = common.data_room {
        o.region.data_room = d;
    }
    o.wait_for_nfs = common.wait_for_nfs.map(|n| (n, Duration::from_secs(30)));
    let manager = config.map(|c| &c.manager);
    if let Some(ms) = common.watchdog_ms.or_else(|| manager.and_then(|m| m.watchdog_ms)) {
        o.watchdog = Duration::from_millis(ms);
    }
    o.kill_hung = common.kill_hung || manager.and_then(|m| m.kill_hung).unwrap_or(false);
    o.backpressure = common.backpressure || manager.and_then(|m| m.backpressure).unwrap_or(false);
    o.rx_threads = common.rx_threads.or(manager.and_then(|m| m.rx_threads)).unwrap_or(1);
    o.nf_queues = common.nf_queues || manager.and_then(|m| m.nf_queues).unwrap_or(false);
    o.nf_quota = common.nf_quota.or_else(|| manager.and_then(|m| m.nf_quota));
    if let Some(c) = config {
        o.service_quota = c.quotas.clone();
    }
    if let Some(c) = config {
        o.service_names = c.services.iter().map(|(name, &id)| (id, name.clone())).collect();
    }
    o.openflow = openflow_options(common, &common.ssl, config.map(|c| &c.manager), &o.socket)?;
    Ok(o)
}

/// Who may use the control socket: `--socket-group` and `--socket-uid`, else the
/// config's `socket_group` and `socket_uids`.
fn socket_access(
    common: &CommonMgr,
    config: Option<&onvm_proto::config::ManagerConfig>,
) -> Result<onvm_mgr::SocketAccess, String> {
    let group = common
        .socket_group
        .as_deref()
        .or_else(|| config.and_then(|c| c.socket_group.as_deref()));
    let users = match (&common.socket_uids, config) {
        (flags, Some(c)) if flags.is_empty() => c.socket_uids.as_slice(),
        (flags, _) => flags.as_slice(),
    };
    Ok(onvm_mgr::SocketAccess {
        group: group.map(|g| id_of("group", g)).transpose()?,
        uids: users.iter().map(|u| id_of("passwd", u)).collect::<Result<_, _>>()?,
    })
}

/// A group's GID or a user's UID (`db` is `group` or `passwd`): a number as it is, a
/// name looked up with getent(1), so that names from LDAP and the like work too.
fn id_of(db: &str, name: &str) -> Result<u32, String> {
    let what = if db == "group" {
        "--socket-group"
    } else {
        "--socket-uid"
    };
    if let Ok(n) = name.parse() {
        return Ok(n);
    }
    let out = std::process::Command::new("getent")
        .args([db, name])
        .output()
        .map_err(|e| format!("{what} {name:?}: cannot run getent to look it up ({e}); give a number"))?;
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .next()
        .and_then(|l| l.split(':').nth(2))
        .and_then(|n| n.parse().ok())
        .ok_or_else(|| {
            let kind = if db == "group" { "group" } else { "user" };
            format!("{what} {name:?}: no such {kind}")
        })
}

/// The OpenFlow settings: each flag, else the config's `[manager]` key, else the default
/// (`--controller` flags replace the config's list).
fn openflow_options(
    common: &CommonMgr,
    ssl: &SslArgs,
    config: Option<&onvm_proto::config::ManagerConfig>,
    socket: &std::path::Path,
) -> Result<OpenFlowOptions, String> {
    let listen = common
        .openflow_listen
        .as_deref()
        .or_else(|| config.and_then(|c| c.openflow_listen.as_deref()));
    let controllers = match (&common.controllers, config) {
        (flags, Some(c)) if flags.is_empty() => c.controllers.as_slice(),
        (flags, _) => flags.as_slice(),
    };
    let fail_mode = common
        .fail_mode
        .as_deref()
        .or_else(|| config.and_then(|c| c.fail_mode.as_deref()))
        .unwrap_or("secure");
    let datapath_id = match (&common.datapath_id, config.and_then(|c| c.datapath_id)) {
        (None, Some(d)) => d,
        (Some(d), _) => {
            let parsed = match d.strip_prefix("0x") {
                Some(hex) => u64::from_str_radix(hex, 16),
                None => d.parse(),
            };
            parsed.map_err(|_| format!("--datapath-id {d:?}: expected a number such as 0x1 or 42"))?
        }
        // Stable per manager: FNV-1a of the socket path, in the 48 bits a MAC has.
        (None, None) => {
            let h = socket
                .as_os_str()
                .as_encoded_bytes()
                .iter()
                .fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
                    (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
                });
            h & 0xffff_ffff_ffff
        }
    };
    let listen = listen.map(parse_listen).transpose().map_err(|e| e.to_string())?;
    let mut o = OpenFlowOptions {
        listen: listen.map(|l| l.addr),
        listen_transport: listen.map(|l| l.transport).unwrap_or_default(),
        controllers: controllers
            .iter()
            .map(|c| parse_controller(c))
            .collect::<Result<_, _>>()
            .map_err(|e| e.to_string())?,
        tls: None,
        fail_mode: fail_mode
            .parse()
            .map_err(|e: onvm_mgr::openflow::OptionError| e.to_string())?,
        datapath_id,
    };
    if o.uses_tls() {
        o.tls = Some(tls_config(ssl, config)?);
    }
    Ok(o)
}

/// The TLS files, each from its flag or else the config's key, read and checked now:
/// a missing or bad one is a start-up error that names it.
fn tls_config(ssl: &SslArgs, config: Option<&onvm_proto::config::ManagerConfig>) -> Result<TlsConfig, String> {
    let files = [
        (
            "--ssl-private-key",
            (ssl.ssl_private_key.as_deref()).or_else(|| config.and_then(|c| c.ssl_private_key.as_deref())),
        ),
        (
            "--ssl-certificate",
            (ssl.ssl_certificate.as_deref()).or_else(|| config.and_then(|c| c.ssl_certificate.as_deref())),
        ),
        (
            "--ssl-ca-cert",
            (ssl.ssl_ca_cert.as_deref()).or_else(|| config.and_then(|c| c.ssl_ca_cert.as_deref())),
        ),
    ];
    match files {
        [(_, Some(key)), (_, Some(cert)), (_, Some(ca))] => TlsConfig::load(key, cert, ca).map_err(|e| e.to_string()),
        _ => {
            let missing: Vec<&str> = files.iter().filter(|f| f.1.is_none()).map(|f| f.0).collect();
            Err(format!(
                "OpenFlow over TLS (ssl:, pssl:) needs {} (or the [manager] keys ssl_private_key, ssl_certificate, \
                 ssl_ca_cert)",
                missing.join(", ")
            ))
        }
    }
}

fn parse_ports(specs: &[String]) -> Result<Vec<PortSpec>, String> {
    specs
        .iter()
        .map(|p| p.parse::<PortSpec>().map_err(|e| e.to_string()))
        .collect()
}

/// Read and check an `onvm up` file; `ports` (from `--port`), if any, replace its own
/// (said on stderr when the file had some).
pub fn load_config(path: &std::path::Path, ports: &[String]) -> Result<Config, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let cfg =
        Config::from_toml_with_ports(&text, &parse_ports(ports)?).map_err(|e| format!("{}: {e}", path.display()))?;
    let own = cfg.manager.file_ports;
    if !ports.is_empty() && own > 0 {
        onvm_mgr::stats::emit_err(format_args!(
            "onvm mgr: --port replaces the {own} port(s) of {} (the chains' port numbers name the --port list)\n",
            path.display()
        ));
    }
    Ok(cfg)
}

/// Print the end-of-run summary; the exit code says whether every packet was accounted for.
pub fn print_report(r: &Report) -> ExitCode {
    // One string, written once and never fatal: stdout may be a pipe whose reader left
    // (`| head`), and the exit code must still say whether packets were conserved.
    let mut out = String::new();
    let _ = writeln!(out, "\n=== onvm summary ({:.1} s) ===", r.uptime.as_secs_f64());
    for p in &r.ports {
        let _ = writeln!(
            out,
            "port {} {:<32} rx {:>12}  tx {:>12}  rx_drop {}  tx_drop {}  errors {}",
            p.no, p.name, p.stats.rx, p.stats.tx, p.stats.rx_drop, p.stats.tx_drop, p.stats.errors
        );
    }
    for n in &r.nfs {
        let c = &n.counters;
        let _ = writeln!(
            out,
            "NF {:<16} instance {:>3} service {:>2}: rx {} tx {} drop {} next {} tonf {} out {} tx_drop {} rx_drop {}",
            n.tag, n.id, n.service, c.rx, c.tx, c.act_drop, c.act_next, c.act_tonf, c.act_out, c.tx_drop, n.rx_drop
        );
        if let Some(id) = &n.container {
            out.pop();
            let _ = writeln!(out, " container {id}");
        }
    }
    if !r.drops.is_empty() {
        let list: Vec<String> = r.drops.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let _ = writeln!(out, "manager drops: {}", list.join(" "));
    }
    if r.crashes > 0 {
        let _ = writeln!(out, "NF crashes noticed and reclaimed: {}", r.crashes);
    }
    if r.rejected > 0 {
        let _ = writeln!(
            out,
            "ring entries from NFs refused (not a buffer sent to the manager): {}",
            r.rejected
        );
    }
    if let Some(p) = &r.profile {
        let _ = writeln!(out, "switch thread, TSC cycles per packet received: {}", p.line());
    }
    let _ = writeln!(out, "{}", r.conservation_line());
    onvm_mgr::stats::emit(format_args!("{out}"));
    if r.conserved() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// `onvm mgr`.
pub fn run(a: MgrArgs) -> CliResult {
    let config = a.config.as_deref().map(|p| load_config(p, &a.ports)).transpose()?;
    let opts = options(&a.common, config.as_ref(), &a.ports)?;
    onvm_mgr::stats::emit_err(format_args!("onvm mgr: listening on {}\n", opts.socket.display()));
    let stop = crate::stop_on_signals();
    let report = onvm_mgr::run(opts, &stop).map_err(|e| e.to_string())?;
    Ok(print_report(&report))
}
