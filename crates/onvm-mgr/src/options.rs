//! How a manager is set up.

use std::path::PathBuf;
use std::time::Duration;

use std::collections::BTreeMap;

use onvm_proto::flow::Rule;
use onvm_proto::port::PortSpec;
use onvm_shm::RegionConfig;

/// Where the per-interval stats go.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StatsMode {
    /// Nowhere.
    Off,
    /// The console table, on stdout.
    Console,
    /// openNetVM's raw CSV, on stdout.
    Csv,
}

/// Where the manager's thread runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum ManagerCore {
    /// Pinned to the first CPU of the node its ports are on (see [`crate::placement`]).
    #[default]
    Auto,
    /// Pinned to this core, which must be an online CPU.
    Core(u16),
    /// Not pinned.
    Unpinned,
}

/// Who may use the control socket. Its user (the manager's) and root always may;
/// by default nobody else can even reach it (directory 0700, socket 0600). Every
/// accepted connection is checked again with `SO_PEERCRED` against this list, so
/// loosened file modes (a umask of 000, a `chmod`) give no one else access.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SocketAccess {
    /// Members of this group may connect: the directory the manager creates is 0750
    /// and the socket 0660, both of this group.
    pub group: Option<u32>,
    /// These users may connect too. The socket is then 0666 and the directory the
    /// manager creates searchable by all (0711, or 0751 with a group): the kernel's
    /// peer credentials, not the file modes, decide.
    pub uids: Vec<u32>,
}

impl SocketAccess {
    /// The mode of a directory the manager creates for its socket.
    pub fn dir_mode(&self) -> u32 {
        let group = if self.group.is_some() { 0o050 } else { 0 };
        let others = if self.uids.is_empty() { 0 } else { 0o011 };
        0o700 | group | others
    }

    /// The mode of the socket.
    pub fn socket_mode(&self) -> u32 {
        let group = if self.group.is_some() { 0o060 } else { 0 };
        let others = if self.uids.is_empty() { 0 } else { 0o066 };
        0o600 | group | others
    }

    /// Whether a peer with these credentials may use the socket of a manager running
    /// as `me`; `groups` are the peer's supplementary groups (asked for only when the
    /// answer depends on them).
    pub fn allows(&self, me: u32, uid: u32, gid: u32, groups: impl FnOnce() -> Vec<u32>) -> bool {
        if uid == me || uid == 0 || self.uids.contains(&uid) {
            return true;
        }
        match self.group {
            Some(g) => gid == g || groups().contains(&g),
            None => false,
        }
    }
}

/// Manager settings.
#[derive(Clone, Debug)]
pub struct Options {
    /// Control socket path.
    pub socket: PathBuf,
    /// Who besides the manager's own user and root may connect to it.
    pub socket_access: SocketAccess,
    /// Ports, port 0 first.
    pub ports: Vec<PortSpec>,
    /// Flow rules (compiled chains).
    pub rules: Vec<Rule>,
    /// Cores handed out to NFs, in the order they are given out; `None` = every online
    /// CPU, those of the switch's node first (see [`crate::placement`]). Each must be an
    /// online CPU.
    pub nf_cores: Option<Vec<u16>>,
    /// Where the manager's thread runs.
    pub core: ManagerCore,
    /// Root of the sysfs tree the CPU and NUMA topology is read from: `/`, or
    /// `$ONVM_SYSFS_ROOT` when set (tests point it at a fake tree).
    pub sysfs_root: PathBuf,
    /// Packet region.
    pub region: RegionConfig,
    /// Stats output.
    pub stats: StatsMode,
    /// Stats interval.
    pub stats_every: Duration,
    /// Stop after this long.
    pub run_for: Option<Duration>,
    /// Stop once every port has nothing more to receive and no packet moved for this long.
    pub exit_when_drained: Option<Duration>,
    /// Print events (NF start/stop/crash) on stderr as they happen.
    pub log_events: bool,
    /// An NF whose rx ring holds packets and has not moved for this long is reported
    /// hung, and its flows go to its service's other instances (`Duration::ZERO`: off).
    pub watchdog: Duration,
    /// A hung NF is also killed (SIGKILL to the process on its socket's other end), so
    /// that a supervisor (`onvm up`) restarts it per its policy.
    pub kill_hung: bool,
    /// Chain-wide backpressure: packets for an NF whose rings are more than 3/4 full
    /// are dropped where they enter its chain (counted `backpressure`) until they are
    /// less than 1/4 full, so NFs in front of it do no work for packets it would drop.
    pub backpressure: bool,
    /// Buffers one NF may hold outside its rings (kept and allocated packets), unless
    /// its service has its own in `service_quota`; `None`: a quarter of the pool, so
    /// one hoarding NF cannot starve every other chain.
    pub nf_quota: Option<u32>,
    /// Per service, the quota of each of its NFs.
    pub service_quota: BTreeMap<u16, u32>,
    /// Do not receive from ports until this many NFs are running (or the time has
    /// passed): a pcap file replayed before its chain exists would be dropped whole.
    pub wait_for_nfs: Option<(usize, Duration)>,
    /// Service names (the config's `[services]`), for the OpenFlow port list.
    pub service_names: BTreeMap<u16, String>,
    /// OpenFlow controllers and listener (off when neither is given).
    pub openflow: crate::openflow::OpenFlowOptions,
    /// Count the switch thread's cycles per phase of its pass (a TSC read at each phase
    /// boundary), reported in [`crate::Report::profile`].
    pub profile: bool,
    /// Switch threads that receive: with more than 1, each port that has several
    /// receive queues (`null:64B` has as many as asked) gets one further thread per
    /// queue beyond the first ([`crate::lane`]); the main thread keeps queue 0, every
    /// transmit and the control plane.
    pub rx_threads: u16,
    /// Cores the receive threads are pinned to, the k-th thread beside the main one to
    /// the k-th core; `None` (or fewer cores than threads): the rest are not pinned.
    /// Each must be an online CPU.
    pub rx_cores: Option<Vec<u16>>,
    /// Let NFs poll port queues themselves (`crate::manager` `nf_queues`): where a
    /// `null` port's fixed rule sends everything to one NF whose `Next` leaves by a
    /// `null` port, that NF receives and sends them itself and the manager stops
    /// polling the port, so nothing crosses cores on that path.
    pub nf_queues: bool,
    /// Serve the REST API, live stream, metrics and web console here ([`crate::http`]);
    /// off when `None`.
    pub http: Option<std::net::SocketAddr>,
    /// Where the HTTP endpoint sends NF stops, restarts and scaling: the supervisor of
    /// `onvm up`, which runs the NFs (a manager alone has none).
    pub supervisor: Option<std::sync::mpsc::Sender<crate::supervisor::Request>>,
    /// Services whose instances follow their load (`onvm up`, from the config's
    /// `autoscale`): the manager asks [`Options::supervisor`] for more or fewer.
    pub autoscale: Vec<AutoscaleRule>,
}

/// One service's autoscaling (see `onvm_proto::config::Autoscale`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AutoscaleRule {
    /// Service ID.
    pub service: u16,
    /// Its name, as the supervisor knows it.
    pub name: String,
    /// Fewest instances.
    pub min: u16,
    /// When to add and remove one, and the most.
    pub policy: onvm_proto::config::Autoscale,
}

impl Options {
    /// The quota of an NF of `service`, in a pool of `pool` buffers.
    pub fn quota_of(&self, service: u16, pool: u32) -> u32 {
        self.service_quota
            .get(&service)
            .copied()
            .or(self.nf_quota)
            .unwrap_or(pool / 4)
            .max(1)
    }

    /// Defaults: no ports, no rules, console stats; cores placed from the topology at
    /// start: the manager on the first core of its ports' node and NFs on every online
    /// CPU, the manager's last (on a 2-core machine the first NF gets core 1 to itself,
    /// a second shares core 0 with the manager, which sleeps when idle).
    pub fn new(socket: PathBuf) -> Self {
        Options {
            socket,
            socket_access: SocketAccess::default(),
            ports: Vec::new(),
            rules: Vec::new(),
            nf_cores: None,
            core: ManagerCore::Auto,
            sysfs_root: std::env::var_os("ONVM_SYSFS_ROOT").map_or_else(|| "/".into(), PathBuf::from),
            region: RegionConfig {
                rings: crate::registry::TOTAL_RINGS,
                ..RegionConfig::default()
            },
            stats: StatsMode::Console,
            stats_every: Duration::from_secs(1),
            run_for: None,
            exit_when_drained: None,
            log_events: true,
            watchdog: Duration::from_millis(500),
            kill_hung: false,
            backpressure: false,
            nf_quota: None,
            service_quota: BTreeMap::new(),
            wait_for_nfs: None,
            service_names: BTreeMap::new(),
            openflow: crate::openflow::OpenFlowOptions::default(),
            profile: false,
            rx_threads: 1,
            nf_queues: false,
            rx_cores: None,
            http: None,
            supervisor: None,
            autoscale: Vec::new(),
        }
    }
}
