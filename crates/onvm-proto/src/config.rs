//! The `onvm up` config file: manager, services, NFs to launch, chains.
//!
//! openNetVM spreads this over `go.sh` flags, per-NF `go.sh` scripts and C code (the
//! default chain is hard-coded). One TOML file replaces all of it, and it is checked as
//! a whole before anything starts: every error names the offending entry and, where the
//! TOML parser knows it, the line.
//!
//! ```toml
//! [manager]
//! socket = "/run/onvm/onvm.sock"          # optional
//! ports = ["gen:64B,1000flows", "pcapout:out.pcap"]
//! shared_cores = false
//! controllers = ["tcp:10.0.0.1:6653"]     # optional: OpenFlow controllers to dial
//! openflow_listen = "ptcp:6634:127.0.0.1" # optional: for ovs-ofctl
//! fail_mode = "secure"                    # or "standalone"
//! ssl_private_key = "sc-privkey.pem"      # for ssl: and pssl: (all three, PEM)
//! ssl_certificate = "sc-cert.pem"
//! ssl_ca_cert = "cacert.pem"              # the CA that signs controllers
//! datapath_id = 0xa
//! socket_group = "onvm"                   # optional: this group may use the socket
//! socket_uids = [1001, "alice"]           # optional: so may these users
//! watchdog_ms = 500                        # an NF not reading its ring this long is hung (0: off)
//! kill_hung = true                         # and is killed (onvm up then restarts it per policy)
//! backpressure = true                      # drop at a chain's entry while an NF on it is behind
//! nf_queues = true                         # NFs poll null port queues themselves where rules allow
//! nf_quota = 4096                          # buffers an NF may hold outside its rings (default: pool / 4)
//! rx_threads = 2                           # switch threads that receive (a port's further queues; default 1)
//!
//! [services]                              # name -> service ID (1..32)
//! firewall = 1
//! monitor = 2
//!
//! [[nfs]]
//! name = "firewall"                       # built-in NF, or set `binary`
//! service = "firewall"
//! instances = 2
//! args = ["--allow", "10.0.0.0/8"]
//! restart = "on-failure"                  # never | on-failure | always
//! max_restarts = 3                       # over the NF's life; default 5
//! backoff = { initial_ms = 100, max_ms = 10000, factor = 2 }   # optional; these are the defaults
//! weight = 200                            # CPU weight against NFs sharing its core (100 = default)
//! autoscale = { max = 4, ring_percent = 50, after_ms = 200, idle_ms = 2000 }   # instances follow load
//!
//! [[chains]]
//! name = "main"
//! chain = ["firewall", "monitor", "out:1"]
//! in_port = 0                             # optional; default: every port
//! default = true
//! # match = { ip_proto = 6, l4_dst = 80, ipv4_dst = "10.0.0.0/8" }
//! # priority = 100
//! ```
//!
//! Parsing is two steps: serde reads the file into `Raw*` shapes (which keep source
//! spans), then [`Config::from_toml`] checks and resolves them into [`Config`], whose
//! fields are plain, valid values and whose chains are already compiled to flow rules.

use std::collections::BTreeMap;
use std::fmt;
use std::ops::{Range, RangeInclusive};
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;
use thiserror::Error;
use toml::Spanned;

use crate::chain::{self, Chain, ChainError, Hop, HopSpec};
use crate::flow::{Ipv4Prefix, Ipv6Prefix, Match, PrefixError, Rule};
use crate::limits::{MAX_INSTANCES, MAX_INSTANCES_PER_SERVICE, MAX_SERVICES};
use crate::port::{PortSpec, PortSpecError};

/// Restarts allowed when `restart` is given without `max_restarts`.
pub const DEFAULT_MAX_RESTARTS: u32 = 5;

/// The watchdog's time when it is on, in ms (`[manager] watchdog_ms`, `--watchdog-ms`;
/// 0 turns it off): shorter would call a busy NF hung (a scheduler slice on a loaded
/// machine is tens of ms), longer is no watchdog.
pub const WATCHDOG_MS: RangeInclusive<u64> = 50..=600_000;

/// Checks a watchdog time in ms (`[manager] watchdog_ms`, `--watchdog-ms`): 0 (off) or
/// in [`WATCHDOG_MS`]. The error says what is allowed.
pub fn check_watchdog_ms(ms: u64) -> Result<(), String> {
    if ms == 0 || WATCHDOG_MS.contains(&ms) {
        Ok(())
    } else {
        Err(format!(
            "out of range, must be 0 (off) or {}..={}",
            WATCHDOG_MS.start(),
            WATCHDOG_MS.end()
        ))
    }
}

/// Switch threads that receive (`[manager] rx_threads`, `--rx-threads`): the main one
/// and one per further receive queue.
pub const RX_THREADS: RangeInclusive<u16> = 1..=64;

/// Checks `rx_threads` against [`RX_THREADS`].
pub fn check_rx_threads(n: u16) -> Result<(), String> {
    if RX_THREADS.contains(&n) {
        Ok(())
    } else {
        Err(format!(
            "out of range, must be {}..={}",
            RX_THREADS.start(),
            RX_THREADS.end()
        ))
    }
}

/// Checks an NF's buffer quota (`[manager] nf_quota`, an NF's `quota`, `--nf-quota`): an
/// NF must be able to hold at least one packet.
pub fn check_nf_quota(quota: u32) -> Result<(), &'static str> {
    if quota == 0 {
        Err("out of range, must be at least 1 (an NF must be able to hold a packet)")
    } else {
        Ok(())
    }
}

/// When an NF that exits is started again (`restart = ...`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RestartMode {
    /// Leave it stopped.
    Never,
    /// Restart it after a failure (non-zero exit or signal).
    OnFailure,
    /// Restart it after any exit.
    Always,
}

/// How long the supervisor waits before a restart (`backoff = { ... }`).
///
/// The first restart waits `initial`; each further restart after a short run waits
/// `factor` times longer, up to `max`. A crash loop then costs little CPU and log, while
/// a single crash is repaired at once (100 ms by default, as Docker does). When the
/// delay drops back to `initial` is the supervisor's business (`onvm_mgr::supervisor`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Backoff {
    /// Delay before the first restart.
    pub initial: Duration,
    /// The longest delay.
    pub max: Duration,
    /// Growth per consecutive restart (1 = a fixed delay).
    pub factor: u32,
}

impl Backoff {
    /// 100 ms, doubling.
    pub const DEFAULT_INITIAL: Duration = Duration::from_millis(100);
    /// At most 10 s: a chain waits no longer than that for a hop that keeps crashing.
    pub const DEFAULT_MAX: Duration = Duration::from_secs(10);
    /// Doubling.
    pub const DEFAULT_FACTOR: u32 = 2;
    /// The largest `factor` accepted (beyond it the first restarts jump to `max` anyway).
    pub const MAX_FACTOR: u32 = 16;
    /// The largest `max` accepted: a longer wait looks like a hang, not a backoff.
    pub const MAX_DELAY: Duration = Duration::from_secs(3600);
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            initial: Self::DEFAULT_INITIAL,
            max: Self::DEFAULT_MAX,
            factor: Self::DEFAULT_FACTOR,
        }
    }
}

/// What the supervisor does when an NF exits. Data only: the decisions are made by
/// `onvm_mgr::supervisor`, which also launches containers with the same policy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RestartPolicy {
    /// Which exits are followed by a restart.
    pub mode: RestartMode,
    /// Restarts allowed over the NF's life; `None` = no limit. A config file always
    /// gives a limit ([`DEFAULT_MAX_RESTARTS`] when unset).
    pub max_restarts: Option<u32>,
    /// Delay before each restart.
    pub backoff: Backoff,
}

impl RestartPolicy {
    /// Never restart.
    pub const NEVER: RestartPolicy = RestartPolicy {
        mode: RestartMode::Never,
        max_restarts: Some(0),
        backoff: Backoff {
            initial: Backoff::DEFAULT_INITIAL,
            max: Backoff::DEFAULT_MAX,
            factor: Backoff::DEFAULT_FACTOR,
        },
    };

    /// `mode` with `max_restarts` and the default backoff.
    pub fn new(mode: RestartMode, max_restarts: Option<u32>) -> Self {
        RestartPolicy {
            mode,
            max_restarts,
            backoff: Backoff::default(),
        }
    }
}

/// Manager settings.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct ManagerConfig {
    /// Control socket path; `None` = the manager's default.
    pub socket: Option<PathBuf>,
    /// Ports, in port-number order (port 0 first).
    pub ports: Vec<PortSpec>,
    /// How many ports the file itself named (`ports` may be others given in their place).
    pub file_ports: usize,
    /// Let NFs share cores and sleep when idle.
    pub shared_cores: bool,
    /// OpenFlow controllers to dial (`tcp:HOST:PORT`, checked by the manager).
    pub controllers: Vec<String>,
    /// OpenFlow listener (`ptcp:PORT[:IP]`).
    pub openflow_listen: Option<String>,
    /// `secure` or `standalone`.
    pub fail_mode: Option<String>,
    /// OpenFlow datapath ID.
    pub datapath_id: Option<u64>,
    /// OpenFlow over TLS (`ssl:`, `pssl:`): the switch's private key, its certificate,
    /// and the CA certificate that its peers' certificates must chain to (PEM files).
    pub ssl_private_key: Option<PathBuf>,
    pub ssl_certificate: Option<PathBuf>,
    pub ssl_ca_cert: Option<PathBuf>,
    /// A group (name or GID) whose members may use the control socket.
    pub socket_group: Option<String>,
    /// Further users (names or UIDs) who may use the control socket.
    pub socket_uids: Vec<String>,
    /// Milliseconds an NF may leave packets in its rx ring unread before it counts as
    /// hung (`Some(0)`: the watchdog is off; `None`: the manager's default).
    pub watchdog_ms: Option<u64>,
    /// A hung NF is killed (so a supervisor restarts it); `None`: the command's default.
    pub kill_hung: Option<bool>,
    /// Chain-wide backpressure (`None`: the command's default, off).
    pub backpressure: Option<bool>,
    /// NFs poll `null` port queues themselves where the rules allow (`None`: off).
    pub nf_queues: Option<bool>,
    /// Buffers an NF may hold outside its rings, unless its entry says otherwise;
    /// `None`: the manager's default (a quarter of the pool).
    pub nf_quota: Option<u32>,
    /// Switch threads that receive (`None`: the command's default, 1).
    pub rx_threads: Option<u16>,
    /// The Docker engine for container NFs (`unix:///PATH`); `None`: `DOCKER_HOST`, or
    /// `/var/run/docker.sock`.
    pub docker: Option<String>,
}

/// One NF (or group of identical instances) to launch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NfSpec {
    /// Name (tag) of the NF: a built-in NF when `binary` is `None`.
    pub name: String,
    /// Program to run instead of a built-in NF.
    pub binary: Option<PathBuf>,
    /// Service ID it serves.
    pub service: u16,
    /// Instances to start (1..=[`MAX_INSTANCES_PER_SERVICE`]).
    pub instances: u16,
    /// Extra arguments.
    pub args: Vec<String>,
    /// What to do when it exits.
    pub restart: RestartPolicy,
    /// Run it in a container of this image (`onvm image build` makes one) instead of as
    /// a process.
    pub image: Option<String>,
    /// A container's memory limit in bytes (`memory = "256M"`); `None`: the launcher's
    /// default.
    pub memory: Option<u64>,
    /// CPU weight against the NFs sharing its core (`weight = 200`; cgroup v2's
    /// `cpu.weight` scale, 1..=10000, 100 = default): handed to it as `ONVM_WEIGHT`.
    pub weight: Option<u32>,
    /// Autoscaling between `instances` and a maximum (`autoscale = { max = 4 }`).
    pub autoscale: Option<Autoscale>,
}

/// When an NF entry's instances follow its load (`autoscale = { max = 4, ring_percent
/// = 50, after_ms = 200, idle_ms = 2000 }` in its `[[nfs]]` entry): the manager asks for
/// one more instance when its instances' fullest rings stay over `ring_percent` for
/// `after_ms`, up to `max`, and for one fewer when they stay under a quarter of that
/// for `idle_ms`, down to `instances`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Autoscale {
    /// Most instances.
    pub max: u16,
    /// Ring occupancy (percent of the fullest ring an instance reads) that is load.
    pub ring_percent: u8,
    /// How long load must last before an instance is added.
    pub after: std::time::Duration,
    /// How long it must be quiet before one is removed.
    pub idle: std::time::Duration,
}

/// A checked config.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// Manager settings.
    pub manager: ManagerConfig,
    /// Service name → ID.
    pub services: BTreeMap<String, u16>,
    /// NFs to launch.
    pub nfs: Vec<NfSpec>,
    /// The chains, resolved.
    pub chains: Vec<Chain>,
    /// The chains compiled to flow rules.
    pub rules: Vec<Rule>,
    /// Service → the buffer quota of each of its NFs (`quota` of its `[[nfs]]` entry).
    pub quotas: BTreeMap<u16, u32>,
}

/// What is wrong with a config.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ConfigErrorKind {
    /// TOML syntax error or a value of the wrong type (the message has the line).
    #[error("{0}")]
    Toml(toml::de::Error),
    /// A service name not in `[services]`.
    #[error("unknown service {name:?} in {used_in} (known: {known})")]
    UnknownService {
        /// The name.
        name: String,
        /// Where it was used.
        used_in: String,
        /// The declared names, comma-separated.
        known: String,
    },
    /// Two services with one ID.
    #[error("services {first:?} and {second:?} both have ID {id}")]
    DuplicateServiceId {
        /// The ID.
        id: u16,
        /// One service.
        first: String,
        /// The other.
        second: String,
    },
    /// A service ID outside `1..MAX_SERVICES`.
    #[error("service {name:?} has ID {id}, but service IDs must be 1..={}", max - 1)]
    ServiceIdOutOfRange {
        /// Service name.
        name: String,
        /// The ID given.
        id: i64,
        /// [`MAX_SERVICES`].
        max: u16,
    },
    /// A service name that could be mistaken for another kind of hop.
    #[error("service name {name:?} is not allowed: {reason}")]
    BadServiceName {
        /// The name.
        name: String,
        /// Why.
        reason: &'static str,
    },
    /// A port spec that does not parse.
    #[error("manager.ports[{index}]: {error}")]
    BadPortSpec {
        /// Index in `manager.ports`.
        index: usize,
        /// The parse error.
        error: PortSpecError,
    },
    /// An address prefix in a chain match that does not parse.
    #[error("chain {chain:?}, match.{field}: {error}")]
    BadPrefix {
        /// Chain name.
        chain: String,
        /// Field name.
        field: &'static str,
        /// The parse error.
        error: PrefixError,
    },
    /// A VLAN ID above 4095.
    #[error("chain {chain:?}: VLAN ID {vlan} is above 4095")]
    BadVlan {
        /// Chain name.
        chain: String,
        /// The ID.
        vlan: u16,
    },
    /// `instances` outside `1..=MAX_INSTANCES_PER_SERVICE`.
    #[error("NF {nf:?}: instances = {instances}, must be 1..={max}")]
    BadInstances {
        /// NF name.
        nf: String,
        /// The count given.
        instances: i64,
        /// The limit.
        max: usize,
    },
    /// The NFs of one service add up to too many instances.
    #[error("service {service:?} would have {total} instances, more than {max}")]
    TooManyInstancesForService {
        /// Service name.
        service: String,
        /// Instances asked for.
        total: usize,
        /// The limit.
        max: usize,
    },
    /// All NFs add up to more instances than there are instance IDs.
    #[error("the NFs add up to {total} instances, more than the {max} instance IDs")]
    TooManyInstances {
        /// Instances asked for.
        total: usize,
        /// Instance IDs available.
        max: usize,
    },
    /// `max_restarts` with `restart = "never"`.
    #[error("NF {nf:?}: max_restarts makes no sense with restart = \"never\"")]
    MaxRestartsWithNever {
        /// NF name.
        nf: String,
    },
    /// A `quota` of 0 (an NF must be able to hold a packet), or two NF entries of one
    /// service with different quotas.
    #[error("NF {nf:?}: quota {quota}: {problem}")]
    BadQuota {
        /// NF name.
        nf: String,
        /// The quota given.
        quota: u32,
        /// What is wrong.
        problem: &'static str,
    },
    /// A `weight` outside 1..=10000.
    #[error("NF {nf:?}: weight {weight} is out of range (1..=10000, 100 = default)")]
    BadWeight {
        /// NF name.
        nf: String,
        /// The weight given.
        weight: u32,
    },
    /// An `autoscale` table that cannot work.
    #[error("NF {nf:?}: autoscale: {problem}")]
    BadAutoscale {
        /// NF name.
        nf: String,
        /// What is wrong.
        problem: String,
    },
    /// Both `image` and `binary`: a container runs its image's entrypoint.
    #[error("NF {nf:?}: give `image` (a container) or `binary` (a process), not both")]
    ImageAndBinary {
        /// NF name.
        nf: String,
    },
    /// An empty image name, or one with spaces.
    #[error("NF {nf:?}: {image:?} is not an image name (NAME[:TAG], as `onvm image build` prints it)")]
    BadImage {
        /// NF name.
        nf: String,
        /// What was given.
        image: String,
    },
    /// `memory` for an NF that runs as a process.
    #[error("NF {nf:?}: `memory` limits a container; this NF has no `image`")]
    MemoryWithoutImage {
        /// NF name.
        nf: String,
    },
    /// A `memory` value that is not a size.
    #[error("NF {nf:?}: memory {value:?}: {problem}")]
    BadMemory {
        /// NF name.
        nf: String,
        /// What was given.
        value: String,
        /// What is wrong.
        problem: String,
    },
    /// `backoff` with `restart = "never"`.
    #[error("NF {nf:?}: backoff makes no sense with restart = \"never\"")]
    BackoffWithNever {
        /// NF name.
        nf: String,
    },
    /// A `backoff` value out of range.
    #[error("NF {nf:?}: backoff: {problem}")]
    BadBackoff {
        /// NF name.
        nf: String,
        /// What is wrong, with the limits.
        problem: String,
    },
    /// A `[manager]` number out of range (`watchdog_ms`, `nf_quota`, `rx_threads`).
    #[error("manager.{key} = {value}: {problem}")]
    BadManagerValue {
        /// The key.
        key: &'static str,
        /// The value given.
        value: u64,
        /// What is wrong, with the range allowed.
        problem: String,
    },
    /// More ports than the flow table can number.
    #[error("{count} ports configured, at most {max} allowed")]
    TooManyPorts {
        /// Ports given.
        count: usize,
        /// Limit.
        max: u16,
    },
    /// A chain problem (empty, loop, bad hop, conflict, port out of range, ...).
    #[error(transparent)]
    Chain(#[from] ChainError),
}

/// A config error, with the line it refers to when known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// 1-based line in the file.
    pub line: Option<usize>,
    /// The problem.
    pub kind: ConfigErrorKind,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.kind, self.line) {
            // toml's own message already shows the line and a snippet.
            (ConfigErrorKind::Toml(_), _) | (_, None) => self.kind.fmt(f),
            (kind, Some(line)) => write!(f, "line {line}: {kind}"),
        }
    }
}

impl std::error::Error for ConfigError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.kind.source()
    }
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    manager: RawManager,
    #[serde(default)]
    services: BTreeMap<String, Spanned<i64>>,
    #[serde(default)]
    nfs: Vec<RawNf>,
    #[serde(default)]
    chains: Vec<RawChain>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawManager {
    socket: Option<PathBuf>,
    #[serde(default)]
    ports: Vec<Spanned<String>>,
    #[serde(default)]
    shared_cores: bool,
    #[serde(default)]
    controllers: Vec<String>,
    openflow_listen: Option<String>,
    fail_mode: Option<String>,
    datapath_id: Option<u64>,
    ssl_private_key: Option<PathBuf>,
    ssl_certificate: Option<PathBuf>,
    ssl_ca_cert: Option<PathBuf>,
    socket_group: Option<NameOrId>,
    #[serde(default)]
    socket_uids: Vec<NameOrId>,
    watchdog_ms: Option<Spanned<u64>>,
    kill_hung: Option<bool>,
    backpressure: Option<bool>,
    nf_queues: Option<bool>,
    nf_quota: Option<Spanned<u32>>,
    rx_threads: Option<Spanned<u16>>,
    docker: Option<String>,
}

/// A user or group, by name or by number.
#[derive(Deserialize)]
#[serde(untagged)]
enum NameOrId {
    Id(u32),
    Name(String),
}

impl NameOrId {
    fn into_string(self) -> String {
        match self {
            NameOrId::Id(n) => n.to_string(),
            NameOrId::Name(s) => s,
        }
    }
}

#[derive(Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
enum RawRestart {
    Never,
    OnFailure,
    Always,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawNf {
    name: Spanned<String>,
    binary: Option<PathBuf>,
    service: Spanned<String>,
    instances: Option<Spanned<i64>>,
    #[serde(default)]
    args: Vec<String>,
    restart: Option<RawRestart>,
    max_restarts: Option<u32>,
    backoff: Option<Spanned<RawBackoff>>,
    quota: Option<Spanned<u32>>,
    image: Option<Spanned<String>>,
    memory: Option<Spanned<String>>,
    weight: Option<Spanned<u32>>,
    autoscale: Option<Spanned<RawAutoscale>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawAutoscale {
    max: u16,
    ring_percent: Option<u8>,
    after_ms: Option<u64>,
    idle_ms: Option<u64>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawBackoff {
    initial_ms: Option<u64>,
    max_ms: Option<u64>,
    factor: Option<u32>,
}

/// Checks a `backoff` table; unset values take [`Backoff`]'s defaults, and an unset `max_ms`
/// is raised to `initial_ms` when that is longer.
fn build_backoff(raw: &RawBackoff) -> Result<Backoff, String> {
    let initial = raw.initial_ms.map_or(Backoff::DEFAULT_INITIAL, Duration::from_millis);
    let max = match raw.max_ms {
        Some(ms) => Duration::from_millis(ms),
        None => Backoff::DEFAULT_MAX.max(initial),
    };
    let factor = raw.factor.unwrap_or(Backoff::DEFAULT_FACTOR);
    if initial.is_zero() {
        // Zero stays zero whatever the factor: no backoff at all.
        return Err("initial_ms = 0, must be at least 1".into());
    }
    if max > Backoff::MAX_DELAY {
        return Err(format!(
            "max_ms = {}, must be at most {}",
            max.as_millis(),
            Backoff::MAX_DELAY.as_millis()
        ));
    }
    if max < initial {
        return Err(format!(
            "max_ms = {} is below initial_ms = {}",
            max.as_millis(),
            initial.as_millis()
        ));
    }
    if !(1..=Backoff::MAX_FACTOR).contains(&factor) {
        return Err(format!("factor = {factor}, must be 1..={}", Backoff::MAX_FACTOR));
    }
    Ok(Backoff { initial, max, factor })
}

/// A chain's header match as a config (or a REST request) writes it.
#[derive(Deserialize, Default, Debug, Clone, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct MatchSpec {
    pub eth_type: Option<u16>,
    pub vlan_id: Option<u16>,
    pub ipv4_src: Option<String>,
    pub ipv4_dst: Option<String>,
    pub ipv6_src: Option<String>,
    pub ipv6_dst: Option<String>,
    pub ip_proto: Option<u8>,
    pub l4_src: Option<u16>,
    pub l4_dst: Option<u16>,
}

impl MatchSpec {
    /// The flow-table match; `used_in` names the chain or request in errors.
    pub fn to_match(&self, used_in: &str) -> Result<Match, ConfigErrorKind> {
        build_match(self, used_in)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawChain {
    name: Option<String>,
    chain: Spanned<Vec<Spanned<String>>>,
    in_port: Option<u16>,
    #[serde(rename = "match")]
    matcher: Option<Spanned<MatchSpec>>,
    #[serde(default)]
    default: bool,
    priority: Option<u16>,
}

/// Turns byte offsets into line numbers.
struct Lines<'a>(&'a str);

impl Lines<'_> {
    fn at(&self, span: Range<usize>) -> Option<usize> {
        let upto = self.0.get(..span.start)?;
        Some(upto.bytes().filter(|&b| b == b'\n').count() + 1)
    }

    fn err(&self, span: Range<usize>, kind: impl Into<ConfigErrorKind>) -> ConfigError {
        ConfigError {
            line: self.at(span),
            kind: kind.into(),
        }
    }
}

fn check_service_name(name: &str) -> Result<(), &'static str> {
    if name.is_empty() {
        Err("it is empty")
    } else if name == "drop" {
        Err("\"drop\" is a chain keyword")
    } else if !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
        Err("use letters, digits, '-' and '_' only")
    } else {
        Ok(())
    }
}

fn prefix<P: std::str::FromStr<Err = PrefixError>>(
    text: &Option<String>,
    chain: &str,
    field: &'static str,
) -> Result<Option<P>, ConfigErrorKind> {
    text.as_deref()
        .map(str::parse)
        .transpose()
        .map_err(|error| ConfigErrorKind::BadPrefix {
            chain: chain.to_string(),
            field,
            error,
        })
}

fn build_match(raw: &MatchSpec, chain: &str) -> Result<Match, ConfigErrorKind> {
    if let Some(vlan) = raw.vlan_id.filter(|&v| v > 0x0fff) {
        return Err(ConfigErrorKind::BadVlan {
            chain: chain.to_string(),
            vlan,
        });
    }
    Ok(Match {
        in_port: None,
        eth_src: None,
        eth_dst: None,
        eth_type: raw.eth_type,
        vlan_id: raw.vlan_id,
        ipv4_src: prefix::<Ipv4Prefix>(&raw.ipv4_src, chain, "ipv4_src")?,
        ipv4_dst: prefix::<Ipv4Prefix>(&raw.ipv4_dst, chain, "ipv4_dst")?,
        ipv6_src: prefix::<Ipv6Prefix>(&raw.ipv6_src, chain, "ipv6_src")?,
        ipv6_dst: prefix::<Ipv6Prefix>(&raw.ipv6_dst, chain, "ipv6_dst")?,
        ip_proto: raw.ip_proto,
        l4_src: raw.l4_src,
        l4_dst: raw.l4_dst,
        ..Match::any()
    })
}

impl Config {
    /// Parses and checks a config file's text.
    pub fn from_toml(text: &str) -> Result<Config, ConfigError> {
        Self::from_toml_with_ports(text, &[])
    }

    /// Like [`Config::from_toml`], with `ports`, when there are any, in place of the
    /// file's own (`onvm mgr --config FILE --port SPEC`: flags override the file, as
    /// every other flag does; the chains' port numbers then name these ports). The
    /// file's ports are still checked.
    pub fn from_toml_with_ports(text: &str, ports_given: &[PortSpec]) -> Result<Config, ConfigError> {
        let raw: RawFile = toml::from_str(text).map_err(|e| ConfigError {
            line: e.span().and_then(|s| Lines(text).at(s)),
            kind: ConfigErrorKind::Toml(e),
        })?;
        let lines = Lines(text);

        // The manager's numbers.
        if let Some(ms) = &raw.manager.watchdog_ms {
            check_watchdog_ms(*ms.get_ref()).map_err(|problem| {
                let value = *ms.get_ref();
                lines.err(
                    ms.span(),
                    ConfigErrorKind::BadManagerValue {
                        key: "watchdog_ms",
                        value,
                        problem,
                    },
                )
            })?;
        }
        if let Some(q) = &raw.manager.nf_quota {
            check_nf_quota(*q.get_ref()).map_err(|problem| {
                let value = u64::from(*q.get_ref());
                let problem = problem.to_string();
                lines.err(
                    q.span(),
                    ConfigErrorKind::BadManagerValue {
                        key: "nf_quota",
                        value,
                        problem,
                    },
                )
            })?;
        }

        if let Some(n) = &raw.manager.rx_threads {
            check_rx_threads(*n.get_ref()).map_err(|problem| {
                lines.err(
                    n.span(),
                    ConfigErrorKind::BadManagerValue {
                        key: "rx_threads",
                        value: u64::from(*n.get_ref()),
                        problem,
                    },
                )
            })?;
        }

        // Ports.
        let mut ports = Vec::with_capacity(raw.manager.ports.len());
        for (index, p) in raw.manager.ports.iter().enumerate() {
            let spec = p
                .get_ref()
                .parse()
                .map_err(|error| lines.err(p.span(), ConfigErrorKind::BadPortSpec { index, error }))?;
            ports.push(spec);
        }
        let file_ports = ports.len();
        if !ports_given.is_empty() {
            ports = ports_given.to_vec();
        }
        let port_count = u16::try_from(ports.len())
            .ok()
            .filter(|&n| n <= crate::limits::MAX_PORTS)
            .ok_or(ConfigError {
                line: None,
                kind: ConfigErrorKind::TooManyPorts {
                    count: ports.len(),
                    max: crate::limits::MAX_PORTS,
                },
            })?;

        // Services.
        let mut services = BTreeMap::new();
        let mut by_id: BTreeMap<u16, &str> = BTreeMap::new();
        for (name, id) in &raw.services {
            check_service_name(name).map_err(|reason| {
                lines.err(
                    id.span(),
                    ConfigErrorKind::BadServiceName {
                        name: name.clone(),
                        reason,
                    },
                )
            })?;
            let sid = u16::try_from(*id.get_ref())
                .ok()
                .filter(|&s| (1..MAX_SERVICES).contains(&s))
                .ok_or_else(|| {
                    lines.err(
                        id.span(),
                        ConfigErrorKind::ServiceIdOutOfRange {
                            name: name.clone(),
                            id: *id.get_ref(),
                            max: MAX_SERVICES,
                        },
                    )
                })?;
            if let Some(first) = by_id.insert(sid, name) {
                return Err(lines.err(
                    id.span(),
                    ConfigErrorKind::DuplicateServiceId {
                        id: sid,
                        first: first.to_string(),
                        second: name.clone(),
                    },
                ));
            }
            services.insert(name.clone(), sid);
        }
        let known = || {
            if services.is_empty() {
                "none declared".to_string()
            } else {
                services.keys().cloned().collect::<Vec<_>>().join(", ")
            }
        };
        let resolve = |name: &Spanned<String>, used_in: String| {
            services.get(name.get_ref()).copied().ok_or_else(|| {
                lines.err(
                    name.span(),
                    ConfigErrorKind::UnknownService {
                        name: name.get_ref().clone(),
                        used_in,
                        known: known(),
                    },
                )
            })
        };

        // NFs.
        let mut nfs = Vec::with_capacity(raw.nfs.len());
        let mut quotas = BTreeMap::new();
        let mut per_service: BTreeMap<u16, usize> = BTreeMap::new();
        for nf in &raw.nfs {
            let name = nf.name.get_ref().clone();
            let service = resolve(&nf.service, format!("NF {name:?}"))?;
            let instances = match &nf.instances {
                None => 1,
                Some(n) => u16::try_from(*n.get_ref())
                    .ok()
                    .filter(|&i| i >= 1 && usize::from(i) <= MAX_INSTANCES_PER_SERVICE)
                    .ok_or_else(|| {
                        lines.err(
                            n.span(),
                            ConfigErrorKind::BadInstances {
                                nf: name.clone(),
                                instances: *n.get_ref(),
                                max: MAX_INSTANCES_PER_SERVICE,
                            },
                        )
                    })?,
            };
            let total = per_service.entry(service).or_default();
            *total += usize::from(instances);
            if *total > MAX_INSTANCES_PER_SERVICE {
                return Err(lines.err(
                    nf.service.span(),
                    ConfigErrorKind::TooManyInstancesForService {
                        service: nf.service.get_ref().clone(),
                        total: *total,
                        max: MAX_INSTANCES_PER_SERVICE,
                    },
                ));
            }
            let max_restarts = Some(nf.max_restarts.unwrap_or(DEFAULT_MAX_RESTARTS));
            let backoff = match &nf.backoff {
                None => Backoff::default(),
                Some(b) => build_backoff(b.get_ref()).map_err(|problem| {
                    lines.err(
                        b.span(),
                        ConfigErrorKind::BadBackoff {
                            nf: name.clone(),
                            problem,
                        },
                    )
                })?,
            };
            let restart = match nf.restart.unwrap_or(RawRestart::OnFailure) {
                RawRestart::Never if nf.max_restarts.is_some() => {
                    return Err(lines.err(nf.name.span(), ConfigErrorKind::MaxRestartsWithNever { nf: name }));
                }
                RawRestart::Never if nf.backoff.is_some() => {
                    return Err(lines.err(nf.name.span(), ConfigErrorKind::BackoffWithNever { nf: name }));
                }
                RawRestart::Never => RestartPolicy::NEVER,
                RawRestart::OnFailure => RestartPolicy {
                    mode: RestartMode::OnFailure,
                    max_restarts,
                    backoff,
                },
                RawRestart::Always => RestartPolicy {
                    mode: RestartMode::Always,
                    max_restarts,
                    backoff,
                },
            };
            if let Some(q) = &nf.quota {
                let quota = *q.get_ref();
                let problem = match quotas.insert(service, quota) {
                    _ if let Err(problem) = check_nf_quota(quota) => Some(problem),
                    Some(other) if other != quota => Some("another entry of its service says otherwise"),
                    _ => None,
                };
                if let Some(problem) = problem {
                    return Err(lines.err(
                        q.span(),
                        ConfigErrorKind::BadQuota {
                            nf: name,
                            quota,
                            problem,
                        },
                    ));
                }
            }
            let image = match &nf.image {
                Some(i) if nf.binary.is_some() => {
                    return Err(lines.err(i.span(), ConfigErrorKind::ImageAndBinary { nf: name }));
                }
                Some(i) if i.get_ref().trim().is_empty() || i.get_ref().chars().any(char::is_whitespace) => {
                    return Err(lines.err(
                        i.span(),
                        ConfigErrorKind::BadImage {
                            nf: name,
                            image: i.get_ref().clone(),
                        },
                    ));
                }
                i => i.as_ref().map(|i| i.get_ref().clone()),
            };
            let memory = match &nf.memory {
                None => None,
                Some(m) if image.is_none() => {
                    return Err(lines.err(m.span(), ConfigErrorKind::MemoryWithoutImage { nf: name }));
                }
                Some(m) => Some(parse_bytes(m.get_ref()).map_err(|problem| {
                    lines.err(
                        m.span(),
                        ConfigErrorKind::BadMemory {
                            nf: name.clone(),
                            value: m.get_ref().clone(),
                            problem,
                        },
                    )
                })?),
            };
            let weight = match &nf.weight {
                Some(w) if !(1..=10_000).contains(w.get_ref()) => {
                    return Err(lines.err(
                        w.span(),
                        ConfigErrorKind::BadWeight {
                            nf: name,
                            weight: *w.get_ref(),
                        },
                    ));
                }
                w => w.as_ref().map(|w| *w.get_ref()),
            };
            let autoscale = match &nf.autoscale {
                None => None,
                Some(a) => {
                    let r = a.get_ref();
                    let ring_percent = r.ring_percent.unwrap_or(50);
                    let problem = if r.max < instances || usize::from(r.max) > MAX_INSTANCES_PER_SERVICE {
                        Some(format!(
                            "max {} must be between its instances ({instances}) and {MAX_INSTANCES_PER_SERVICE}",
                            r.max
                        ))
                    } else if !(1..=99).contains(&ring_percent) {
                        Some(format!("ring_percent {ring_percent} must be 1..=99"))
                    } else {
                        None
                    };
                    if let Some(problem) = problem {
                        return Err(lines.err(a.span(), ConfigErrorKind::BadAutoscale { nf: name, problem }));
                    }
                    Some(Autoscale {
                        max: r.max,
                        ring_percent,
                        after: std::time::Duration::from_millis(r.after_ms.unwrap_or(200)),
                        idle: std::time::Duration::from_millis(r.idle_ms.unwrap_or(2000)),
                    })
                }
            };
            nfs.push(NfSpec {
                name,
                binary: nf.binary.clone(),
                service,
                instances,
                args: nf.args.clone(),
                restart,
                image,
                memory,
                weight,
                autoscale,
            });
        }
        let total: usize = per_service.values().sum();
        // Instance 0 is reserved.
        let max = usize::from(MAX_INSTANCES) - 1;
        if total > max {
            return Err(ConfigError {
                line: None,
                kind: ConfigErrorKind::TooManyInstances { total, max },
            });
        }

        // Chains.
        let mut chains = Vec::with_capacity(raw.chains.len());
        let mut chain_lines = Vec::with_capacity(raw.chains.len());
        for (i, c) in raw.chains.iter().enumerate() {
            let name = c.name.clone().unwrap_or_else(|| format!("chains[{i}]"));
            let mut hops = Vec::with_capacity(c.chain.get_ref().len());
            for h in c.chain.get_ref() {
                let hop = match h.get_ref().parse::<HopSpec>().map_err(|e| lines.err(h.span(), e))? {
                    HopSpec::Service(s) => Hop::Service {
                        id: resolve(h, format!("chain {name:?}"))?,
                        name: s,
                    },
                    HopSpec::Out(p) => Hop::Out(p),
                    HopSpec::Drop => Hop::Drop,
                };
                hops.push(hop);
            }
            let matcher = match &c.matcher {
                None => Match::any(),
                Some(m) => build_match(m.get_ref(), &name).map_err(|k| lines.err(m.span(), k))?,
            };
            chain_lines.push(lines.at(c.chain.span()));
            chains.push(Chain {
                name,
                hops,
                in_port: c.in_port,
                matcher,
                default: c.default,
                priority: c.priority,
            });
        }
        let rules = chain::compile(&chains, port_count).map_err(|e| {
            // Point at the chain the error names, when it names one.
            let named = match &e {
                ChainError::Empty { chain }
                | ChainError::HopAfterEnd { chain, .. }
                | ChainError::Loop { chain, .. }
                | ChainError::PortOutOfRange { chain, .. }
                | ChainError::InPortInMatch { chain } => Some(chain),
                ChainError::MultipleDefaults { second, .. } | ChainError::Conflict { second, .. } => Some(second),
                ChainError::BadHop { .. } | ChainError::CrossLoop { .. } => None,
            };
            let line = named
                .and_then(|n| chains.iter().position(|c| &c.name == n))
                .and_then(|i| chain_lines[i]);
            ConfigError { line, kind: e.into() }
        })?;

        Ok(Config {
            manager: ManagerConfig {
                file_ports,
                socket: raw.manager.socket,
                ports,
                shared_cores: raw.manager.shared_cores,
                controllers: raw.manager.controllers,
                openflow_listen: raw.manager.openflow_listen,
                fail_mode: raw.manager.fail_mode,
                datapath_id: raw.manager.datapath_id,
                ssl_private_key: raw.manager.ssl_private_key,
                ssl_certificate: raw.manager.ssl_certificate,
                ssl_ca_cert: raw.manager.ssl_ca_cert,
                socket_group: raw.manager.socket_group.map(NameOrId::into_string),
                socket_uids: raw.manager.socket_uids.into_iter().map(NameOrId::into_string).collect(),
                watchdog_ms: raw.manager.watchdog_ms.map(Spanned::into_inner),
                kill_hung: raw.manager.kill_hung,
                backpressure: raw.manager.backpressure,
                nf_queues: raw.manager.nf_queues,
                nf_quota: raw.manager.nf_quota.map(Spanned::into_inner),
                rx_threads: raw.manager.rx_threads.map(Spanned::into_inner),
                docker: raw.manager.docker,
            },
            services,
            nfs,
            chains,
            rules,
            quotas,
        })
    }
}

/// Container memory limits below this cannot start an NF (Docker's own floor is 6 MiB).
pub const MIN_CONTAINER_MEMORY: u64 = 16 << 20;

/// A size as `256M`, `1G`, `65536K` or bytes (binary units), at least
/// [`MIN_CONTAINER_MEMORY`].
pub fn parse_bytes(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let (digits, unit) = t.split_at(t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len()));
    let shift = match unit
        .trim()
        .to_ascii_uppercase()
        .trim_end_matches("IB")
        .trim_end_matches('B')
    {
        "" => 0,
        "K" => 10,
        "M" => 20,
        "G" => 30,
        _ => return Err("not a size (use bytes, or a number with K, M or G)".into()),
    };
    let n: u64 = digits
        .parse()
        .map_err(|_| "not a size (use bytes, or a number with K, M or G)".to_string())?;
    let bytes = n.checked_mul(1 << shift).filter(|b| *b <= 1 << 50).ok_or("too large")?;
    if bytes < MIN_CONTAINER_MEMORY {
        return Err(format!(
            "below the {} MiB an NF container needs",
            MIN_CONTAINER_MEMORY >> 20
        ));
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flow::{Action, PortNo};
    use crate::port::GenSpec;

    const EXAMPLE: &str = r#"
[manager]
socket = "/run/onvm/test.sock"
ports = ["gen:64B,1000flows", "pcapout:out.pcap"]

[services]
firewall = 1
monitor = 2

[[nfs]]
name = "firewall"
service = "firewall"
instances = 2
args = ["--allow", "10.0.0.0/8"]
restart = "always"
max_restarts = 3

[[nfs]]
name = "monitor"
binary = "/usr/bin/my-monitor"
service = "monitor"

[[chains]]
name = "main"
chain = ["firewall", "monitor", "out:1"]
in_port = 0
default = true

[[chains]]
name = "web"
chain = ["monitor", "drop"]
match = { ip_proto = 6, l4_dst = 80, ipv4_dst = "10.0.0.0/8" }
"#;

    fn err(text: &str) -> ConfigError {
        Config::from_toml(text).unwrap_err()
    }

    #[test]
    fn example_parses() {
        let c = Config::from_toml(EXAMPLE).unwrap();
        assert_eq!(c.manager.socket, Some("/run/onvm/test.sock".into()));
        assert_eq!(
            c.manager.ports,
            vec![
                PortSpec::Gen(GenSpec {
                    frame_size: 64,
                    flows: 1000,
                    rate_pps: None,
                    count: None
                }),
                PortSpec::PcapOut(crate::port::PcapOutSpec::new("out.pcap"))
            ]
        );
        assert_eq!(c.services["monitor"], 2);
        assert_eq!(c.nfs.len(), 2);
        assert_eq!(c.nfs[0].instances, 2);
        assert_eq!(c.nfs[0].restart, RestartPolicy::new(RestartMode::Always, Some(3)));
        assert_eq!(c.nfs[1].instances, 1);
        assert_eq!(
            c.nfs[1].restart,
            RestartPolicy::new(RestartMode::OnFailure, Some(DEFAULT_MAX_RESTARTS))
        );
        assert_eq!(c.nfs[1].binary, Some("/usr/bin/my-monitor".into()));
        assert!(c.chains[0].default);
        assert_eq!(c.chains[1].matcher.l4_dst, Some(80));
        // main: 3 rules; web: one entry rule per port (2) + monitor -> drop.
        assert_eq!(c.rules.len(), 6);
        assert!(c.rules.iter().any(|r| r.matcher.in_port == Some(PortNo::service(1))
            && r.actions == [Action::Output(PortNo::service(2))]
            && r.priority == chain::DEFAULT_CHAIN_PRIORITY));
        assert!(c.rules.iter().any(|r| r.matcher.in_port == Some(PortNo::service(2))
            && r.actions == [Action::Drop]
            && r.matcher.ipv4_dst == Some("10.0.0.0/8".parse().unwrap())));
    }

    #[test]
    fn empty_file_is_an_empty_config() {
        let c = Config::from_toml("").unwrap();
        assert!(c.manager.ports.is_empty() && c.services.is_empty() && c.rules.is_empty());
    }

    #[test]
    fn socket_access_in_the_manager_section() {
        let c = Config::from_toml("[manager]\nsocket_group = \"onvm\"\nsocket_uids = [1001, \"alice\"]\n").unwrap();
        assert_eq!(c.manager.socket_group.as_deref(), Some("onvm"));
        assert_eq!(c.manager.socket_uids, ["1001", "alice"]);
        let c = Config::from_toml("[manager]\nsocket_group = 50\n").unwrap();
        assert_eq!(c.manager.socket_group.as_deref(), Some("50"));
    }

    #[test]
    fn openflow_settings_in_the_manager_section() {
        let c = Config::from_toml(
            "[manager]\ncontrollers = [\"tcp:10.0.0.1:6653\", \"tcp:10.0.0.2:6653\"]\n\
             openflow_listen = \"ptcp:6634\"\nfail_mode = \"standalone\"\ndatapath_id = 0xa\n",
        )
        .unwrap();
        assert_eq!(c.manager.controllers, ["tcp:10.0.0.1:6653", "tcp:10.0.0.2:6653"]);
        assert_eq!(c.manager.openflow_listen.as_deref(), Some("ptcp:6634"));
        assert_eq!(
            (c.manager.fail_mode.as_deref(), c.manager.datapath_id),
            (Some("standalone"), Some(10))
        );
        let e = err("[manager]\ncontroller = \"tcp:1.2.3.4:1\"\n");
        assert!(e.to_string().contains("controller"), "a misspelt key is named: {e}");
    }

    #[test]
    fn openflow_tls_files_in_the_manager_section() {
        let c = Config::from_toml(
            "[manager]\ncontrollers = [\"ssl:10.0.0.1:6653\"]\nssl_private_key = \"/etc/onvm/key.pem\"\n\
             ssl_certificate = \"cert.pem\"\nssl_ca_cert = \"ca.pem\"\n",
        )
        .unwrap();
        assert_eq!(
            (
                c.manager.ssl_private_key.as_deref(),
                c.manager.ssl_certificate.as_deref(),
                c.manager.ssl_ca_cert.as_deref()
            ),
            (
                Some(std::path::Path::new("/etc/onvm/key.pem")),
                Some(std::path::Path::new("cert.pem")),
                Some(std::path::Path::new("ca.pem"))
            )
        );
        let e = err("[manager]\nssl_ca_certificate = \"ca.pem\"\n");
        assert!(e.to_string().contains("ssl_ca_certificate"), "{e}");
    }

    #[test]
    fn toml_syntax_error_has_line() {
        let e = err("[manager]\nports = [\"null\"\n\n[services]\n");
        assert!(matches!(e.kind, ConfigErrorKind::Toml(_)));
        assert!(e.line.is_some());
        assert!(e.to_string().contains("line"), "{e}");
    }

    #[test]
    fn unknown_fields_are_rejected() {
        let e = err("[manager]\nport = [\"null\"]\n");
        assert!(matches!(e.kind, ConfigErrorKind::Toml(_)));
        assert!(e.to_string().contains("port"), "{e}");
    }

    #[test]
    fn unknown_service_is_named_with_its_line() {
        let e = err("[services]\nfw = 1\n\n[[chains]]\nchain = [\"fw\", \"mon\"]\n");
        assert_eq!(e.line, Some(5));
        let ConfigErrorKind::UnknownService { name, used_in, known } = &e.kind else {
            panic!("{e}");
        };
        assert_eq!(
            (name.as_str(), used_in.as_str(), known.as_str()),
            ("mon", "chain \"chains[0]\"", "fw")
        );
        assert!(e.to_string().starts_with("line 5: unknown service \"mon\""), "{e}");
        let e = err("[[nfs]]\nname = \"x\"\nservice = \"nope\"\n");
        assert!(matches!(e.kind, ConfigErrorKind::UnknownService { .. }));
        assert_eq!(e.line, Some(3));
    }

    #[test]
    fn service_id_errors() {
        let e = err("[services]\na = 3\nb = 3\n");
        assert_eq!(
            e.kind,
            ConfigErrorKind::DuplicateServiceId {
                id: 3,
                first: "a".into(),
                second: "b".into()
            }
        );
        assert_eq!(e.line, Some(3));
        for bad in ["0", "32", "-1", "70000"] {
            let e = err(&format!("[services]\na = {bad}\n"));
            assert!(
                matches!(e.kind, ConfigErrorKind::ServiceIdOutOfRange { max: 32, .. }),
                "{bad}: {e}"
            );
            assert!(e.to_string().contains("1..=31"), "{e}");
        }
        assert!(Config::from_toml("[services]\na = 31\n").is_ok());
        let e = err("[services]\ndrop = 1\n");
        assert!(matches!(e.kind, ConfigErrorKind::BadServiceName { .. }));
        let e = err("[services]\n\"a:b\" = 1\n");
        assert!(matches!(e.kind, ConfigErrorKind::BadServiceName { .. }));
    }

    #[test]
    fn bad_port_spec_is_named() {
        let e = err("[manager]\nports = [\"null\",\n  \"gen:12B\"]\n");
        assert_eq!(e.line, Some(3));
        let ConfigErrorKind::BadPortSpec { index, error } = &e.kind else {
            panic!("{e}");
        };
        assert_eq!(*index, 1);
        assert_eq!(error.spec, "gen:12B");
        assert!(e.to_string().contains("manager.ports[1]"), "{e}");
    }

    #[test]
    fn chain_errors_pass_through() {
        let base = "[manager]\nports = [\"null\", \"null\"]\n[services]\na = 1\nb = 2\n";
        let e = err(&format!("{base}[[chains]]\nname = \"x\"\nchain = []\n"));
        assert_eq!(e.kind, ConfigErrorKind::Chain(ChainError::Empty { chain: "x".into() }));
        assert_eq!(e.line, Some(8));
        let e = err(&format!("{base}[[chains]]\nchain = [\"a\", \"b\", \"a\"]\n"));
        assert!(matches!(e.kind, ConfigErrorKind::Chain(ChainError::Loop { .. })));
        let e = err(&format!("{base}[[chains]]\nchain = [\"a\", \"out:7\"]\n"));
        assert!(matches!(
            e.kind,
            ConfigErrorKind::Chain(ChainError::PortOutOfRange { port: 7, ports: 2, .. })
        ));
        let e = err(&format!("{base}[[chains]]\nchain = [\"a\", \"out:x\"]\n"));
        assert!(matches!(e.kind, ConfigErrorKind::Chain(ChainError::BadHop { .. })));
        assert_eq!(e.line, Some(7));
        let e = err(&format!(
            "{base}[[chains]]\nchain = [\"a\", \"b\"]\n[[chains]]\nchain = [\"b\", \"a\"]\nin_port = 1\nmatch = {{ l4_dst = 1 }}\n"
        ));
        assert!(
            matches!(e.kind, ConfigErrorKind::Chain(ChainError::CrossLoop { .. })),
            "{e}"
        );
        let e = err(&format!(
            "{base}[[chains]]\nchain = [\"a\"]\nmatch = {{ ipv4_src = \"10.0.0.0/40\" }}\n"
        ));
        assert!(
            matches!(e.kind, ConfigErrorKind::BadPrefix { field: "ipv4_src", .. }),
            "{e}"
        );
        let e = err(&format!(
            "{base}[[chains]]\nchain = [\"a\"]\nmatch = {{ in_port = 1 }}\n"
        ));
        assert!(matches!(e.kind, ConfigErrorKind::Toml(_)), "{e}");
    }

    #[test]
    fn instance_limits() {
        let base = "[services]\na = 1\nb = 2\n";
        let e = err(&format!(
            "{base}[[nfs]]\nname = \"n\"\nservice = \"a\"\ninstances = 0\n"
        ));
        assert!(matches!(e.kind, ConfigErrorKind::BadInstances { instances: 0, .. }));
        let e = err(&format!(
            "{base}[[nfs]]\nname = \"n\"\nservice = \"a\"\ninstances = 33\n"
        ));
        assert!(matches!(e.kind, ConfigErrorKind::BadInstances { max: 32, .. }));
        let nf = |svc: &str, n: u32| format!("[[nfs]]\nname = \"n\"\nservice = \"{svc}\"\ninstances = {n}\n");
        let e = err(&format!("{base}{}{}", nf("a", 20), nf("a", 13)));
        assert!(matches!(
            e.kind,
            ConfigErrorKind::TooManyInstancesForService { total: 33, .. }
        ));
        let mut many = String::from("[services]\n");
        for s in 1..=4 {
            many += &format!("s{s} = {s}\n");
        }
        for s in 1..=4 {
            many += &nf(&format!("s{s}"), 32);
        }
        let e = err(&many);
        assert_eq!(e.kind, ConfigErrorKind::TooManyInstances { total: 128, max: 127 });
    }

    #[test]
    fn restart_policies() {
        let e =
            err("[services]\na = 1\n[[nfs]]\nname = \"n\"\nservice = \"a\"\nrestart = \"never\"\nmax_restarts = 2\n");
        assert!(matches!(e.kind, ConfigErrorKind::MaxRestartsWithNever { .. }));
        let e = err("[services]\na = 1\n[[nfs]]\nname = \"n\"\nservice = \"a\"\nrestart = \"sometimes\"\n");
        assert!(matches!(e.kind, ConfigErrorKind::Toml(_)));

        let nf = |extra: &str| format!("[services]\na = 1\n[[nfs]]\nname = \"n\"\nservice = \"a\"\n{extra}");
        let policy = |extra: &str| Config::from_toml(&nf(extra)).unwrap().nfs[0].restart;
        assert_eq!(
            policy(""),
            RestartPolicy::new(RestartMode::OnFailure, Some(DEFAULT_MAX_RESTARTS)),
            "on-failure, 5 restarts, default backoff when nothing is said"
        );
        assert_eq!(policy("restart = \"never\"\n"), RestartPolicy::NEVER);
        assert_eq!(
            policy("restart = \"always\"\nmax_restarts = 0\n"),
            RestartPolicy::new(RestartMode::Always, Some(0))
        );
    }

    #[test]
    fn rx_threads_in_range_or_a_clear_error() {
        let c = Config::from_toml("[manager]\nrx_threads = 2\n").unwrap();
        assert_eq!(c.manager.rx_threads, Some(2));
        assert_eq!(Config::from_toml("[manager]\n").unwrap().manager.rx_threads, None);
        for bad in ["0", "65"] {
            let e = Config::from_toml(&format!("[manager]\nrx_threads = {bad}\n")).unwrap_err();
            assert!(
                matches!(e.kind, ConfigErrorKind::BadManagerValue { key: "rx_threads", .. }) && e.line == Some(2),
                "{bad}: {e}"
            );
            assert!(e.to_string().contains("1..=64"), "{e}");
        }
    }

    #[test]
    fn quotas_and_watchdog() {
        let two = |a: &str, b: &str| {
            format!(
                "[manager]\nnf_quota = 4096\nwatchdog_ms = 300\nkill_hung = false\nbackpressure = true\n[services]\na = 1\nb = 2\n\
                 [[nfs]]\nname = \"n\"\nservice = \"a\"\n{a}\n[[nfs]]\nname = \"m\"\nservice = \"b\"\n{b}\n"
            )
        };
        let c = Config::from_toml(&two("quota = 100", "")).unwrap();
        assert_eq!(c.quotas, BTreeMap::from([(1, 100)]));
        assert_eq!(
            (
                c.manager.nf_quota,
                c.manager.watchdog_ms,
                c.manager.kill_hung,
                c.manager.backpressure
            ),
            (Some(4096), Some(300), Some(false), Some(true))
        );
        let c = Config::from_toml(&two("autoscale = { max = 3, after_ms = 50 }", "")).unwrap();
        let a = c.nfs[0].autoscale.unwrap();
        assert_eq!(
            (a.max, a.ring_percent, a.after.as_millis(), a.idle.as_millis()),
            (3, 50, 50, 2000)
        );
        for bad in ["autoscale = { max = 0 }", "autoscale = { max = 2, ring_percent = 100 }"] {
            let e = Config::from_toml(&two(bad, "")).unwrap_err();
            assert!(
                matches!(e.kind, ConfigErrorKind::BadAutoscale { .. }) && e.line.is_some(),
                "{bad}: {e}"
            );
        }
        let c = Config::from_toml(&two("weight = 200", "")).unwrap();
        assert_eq!((c.nfs[0].weight, c.nfs[1].weight), (Some(200), None));
        let e = Config::from_toml(&two("", "weight = 0")).unwrap_err();
        assert!(
            matches!(e.kind, ConfigErrorKind::BadWeight { weight: 0, .. }) && e.line.is_some(),
            "{e}"
        );
        let e = Config::from_toml(&two("quota = 0", "")).unwrap_err();
        assert!(matches!(e.kind, ConfigErrorKind::BadQuota { quota: 0, .. }), "{e}");
        assert!(e.line.is_some(), "the error has the line: {e}");
        let same = "[services]\na = 1\n[[nfs]]\nname = \"n\"\nservice = \"a\"\nquota = 5\n\
                    [[nfs]]\nname = \"m\"\nservice = \"a\"\nquota = 6\n";
        let e = Config::from_toml(same).unwrap_err();
        assert!(e.to_string().contains("another entry of its service"), "{e}");
        // The manager's numbers are checked with the file, naming key, value and line.
        for (text, msg) in [
            (
                "watchdog_ms = 10",
                "line 2: manager.watchdog_ms = 10: out of range, must be 0 (off) or 50..=600000",
            ),
            ("watchdog_ms = 700000", "manager.watchdog_ms = 700000: out of range"),
            (
                "nf_quota = 0",
                "line 2: manager.nf_quota = 0: out of range, must be at least 1",
            ),
        ] {
            let e = Config::from_toml(&format!("[manager]\n{text}\n")).unwrap_err();
            assert!(e.to_string().contains(msg), "{text}: {e}");
        }
        for ok in [
            "watchdog_ms = 0",
            "watchdog_ms = 50",
            "watchdog_ms = 600000",
            "nf_quota = 1",
        ] {
            assert!(Config::from_toml(&format!("[manager]\n{ok}\n")).is_ok(), "{ok}");
        }
    }

    #[test]
    fn container_nfs() {
        let nf = |extra: &str| format!("[services]\na = 1\n[[nfs]]\nname = \"n\"\nservice = \"a\"\n{extra}");
        let c = Config::from_toml(&nf("image = \"onvm/nfs:1\"\nmemory = \"256M\"\n")).unwrap();
        assert_eq!(
            (c.nfs[0].image.as_deref(), c.nfs[0].memory),
            (Some("onvm/nfs:1"), Some(256 << 20))
        );
        let c = Config::from_toml(&nf("")).unwrap();
        assert_eq!((c.nfs[0].image.as_deref(), c.nfs[0].memory), (None, None));
        let err = |extra: &str| Config::from_toml(&nf(extra)).unwrap_err();
        let e = err("image = \"x\"\nbinary = \"/bin/true\"\n");
        assert!(
            matches!(e.kind, ConfigErrorKind::ImageAndBinary { .. }) && e.line.is_some(),
            "{e}"
        );
        assert!(matches!(
            err("image = \"a b\"\n").kind,
            ConfigErrorKind::BadImage { .. }
        ));
        assert!(matches!(
            err("memory = \"1G\"\n").kind,
            ConfigErrorKind::MemoryWithoutImage { .. }
        ));
        let e = err("image = \"x\"\nmemory = \"lots\"\n");
        assert!(e.to_string().contains("not a size"), "{e}");
        let e = err("image = \"x\"\nmemory = \"1M\"\n");
        assert!(e.to_string().contains("below the 16 MiB"), "{e}");
        assert_eq!(parse_bytes("1G"), Ok(1 << 30));
        assert_eq!(parse_bytes("65536K"), Ok(64 << 20));
        assert_eq!(parse_bytes("512MiB"), Ok(512 << 20));
        assert_eq!(parse_bytes("33554432"), Ok(32 << 20));
        assert!(parse_bytes("99999999999G").is_err());
        let c = Config::from_toml("[manager]\ndocker = \"unix:///tmp/d.sock\"\n").unwrap();
        assert_eq!(c.manager.docker.as_deref(), Some("unix:///tmp/d.sock"));
    }

    #[test]
    fn restart_backoff() {
        let nf = |extra: &str| format!("[services]\na = 1\n[[nfs]]\nname = \"n\"\nservice = \"a\"\n{extra}");
        let backoff = |extra: &str| Config::from_toml(&nf(extra)).unwrap().nfs[0].restart.backoff;
        let ms = Duration::from_millis;
        assert_eq!(backoff(""), Backoff::default());
        assert_eq!(
            Backoff::default(),
            Backoff {
                initial: ms(100),
                max: ms(10_000),
                factor: 2
            }
        );
        assert_eq!(
            backoff("backoff = { initial_ms = 50, max_ms = 400, factor = 3 }\n"),
            Backoff {
                initial: ms(50),
                max: ms(400),
                factor: 3
            }
        );
        assert_eq!(
            backoff("backoff = { factor = 1 }\n"),
            Backoff {
                factor: 1,
                ..Backoff::default()
            }
        );
        // An unset max is raised to a longer initial delay rather than refused.
        assert_eq!(backoff("backoff = { initial_ms = 20000 }\n").max, ms(20_000));
        assert_eq!(
            backoff("[nfs.backoff]\ninitial_ms = 200\n").initial,
            ms(200),
            "a sub-table works too"
        );

        for (bad, says) in [
            ("{ initial_ms = 0 }", "initial_ms = 0"),
            ("{ initial_ms = 500, max_ms = 100 }", "below initial_ms"),
            ("{ max_ms = 3600001 }", "at most 3600000"),
            ("{ factor = 0 }", "factor = 0, must be 1..=16"),
            ("{ factor = 17 }", "factor = 17"),
        ] {
            let e = err(&nf(&format!("\nbackoff = {bad}\n")));
            assert!(matches!(e.kind, ConfigErrorKind::BadBackoff { .. }), "{bad}: {e}");
            assert_eq!(e.line, Some(7), "{bad}: {e}");
            assert!(e.to_string().contains(says), "{bad}: {e}");
        }
        let e = err(&nf("backoff = { initial = 5 }\n"));
        assert!(
            matches!(e.kind, ConfigErrorKind::Toml(_)),
            "a misspelt key is refused: {e}"
        );
        let e = err(&nf("backoff = { initial_ms = -5 }\n"));
        assert!(matches!(e.kind, ConfigErrorKind::Toml(_)), "{e}");
        let e = err(&nf("restart = \"never\"\nbackoff = { factor = 2 }\n"));
        assert!(matches!(e.kind, ConfigErrorKind::BackoffWithNever { .. }), "{e}");
    }
}
