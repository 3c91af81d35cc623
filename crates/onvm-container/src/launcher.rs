//! Container NF instances for the supervisor.
//!
//! [`ContainerLauncher::start`] creates and starts one container: the image's entrypoint
//! with the NF's command line, `ONVM_SOCKET` set, and only the socket's folder mounted
//! (read-only: connecting to a socket needs no write access to its file system). No
//! network, every capability dropped, `no-new-privileges`, a read-only root, a cpuset
//! and a memory limit ([`Limits`]), and labels that say whose it is ([`crate::labels`]).
//! The image's non-root user reaches the socket through the manager's allow-list: the
//! launcher adds the socket's group to the container's groups.
//!
//! Its [`ContainerHandle`] never blocks the supervisor for longer than an API call: a task
//! on the engine's runtime waits for the container to stop and records its exit code,
//! which `try_wait` reads; the container is removed once its exit has been seen. The
//! manager notices the NF's death on its own, through the control socket, as for a
//! process: a container is just where the process runs.

use std::collections::HashMap;
use std::ffi::OsString;
use std::io;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bollard::container::LogOutput;
use bollard::models::{ContainerCreateBody, HostConfig};
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, KillContainerOptionsBuilder, ListContainersOptionsBuilder, LogsOptionsBuilder,
    RemoveContainerOptionsBuilder, WaitContainerOptionsBuilder,
};
use futures_util::StreamExt;
use onvm_mgr::supervisor::{Exit, Handle, Label};

use crate::engine::{Engine, io_error, is_gone};
use crate::labels;

/// Resource limits of every container the launcher starts.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Limits {
    /// CPUs it may run on (a CPU list, `1-3,5`): the manager's NF cores, so the core the
    /// manager assigns an NF is always among them.
    pub cpuset: Option<String>,
    /// Memory limit in bytes (no swap beyond it). The packet region is the manager's
    /// memory, mapped, not counted here.
    pub memory: Option<u64>,
    /// Processes and threads it may have.
    pub pids: Option<i64>,
}

/// Starts NF containers for one manager.
#[derive(Clone, Debug)]
pub struct ContainerLauncher {
    engine: Arc<Engine>,
    /// The manager's control socket; its folder is the one mount.
    socket: PathBuf,
    /// A group the container's user gets, so it may use the socket (the manager's
    /// `--socket-group`).
    group: Option<u32>,
    /// Limits for every container.
    pub limits: Limits,
    /// A container's standard output goes to ours (its standard error always does, as
    /// a process's does).
    pub stdout: bool,
}

impl ContainerLauncher {
    /// A launcher for the manager at `socket`, granting access by `group`.
    pub fn new(engine: Arc<Engine>, socket: PathBuf, group: Option<u32>, limits: Limits) -> Self {
        ContainerLauncher {
            engine,
            socket,
            group,
            limits,
            stdout: true,
        }
    }

    /// The engine.
    pub fn engine(&self) -> &Arc<Engine> {
        &self.engine
    }

    /// The value of [`labels::SOCKET`] on this manager's containers.
    fn owner(&self) -> String {
        self.socket.display().to_string()
    }

    /// The container name of an NF instance: stable across restarts (the old container
    /// is removed first), distinct between managers on different sockets.
    pub fn name_of(&self, nf: &Label, service: u16) -> String {
        container_name(&self.owner(), nf, service)
    }

    /// Create and start a container of `image` running `args` with `env` (`KEY=VALUE`;
    /// the launcher's `ONVM_*` variables) for `nf`, with `memory` as its limit and
    /// `weight` (cgroup v2's `cpu.weight` scale, 100 a plain process's) as its CPU
    /// shares (see [`cpu_shares`]).
    #[allow(clippy::too_many_arguments)]
    pub fn start(
        &self,
        nf: &Label,
        service: u16,
        image: &str,
        args: Vec<OsString>,
        env: Vec<String>,
        memory: Option<u64>,
        weight: Option<u32>,
    ) -> io::Result<ContainerHandle> {
        let name = self.name_of(nf, service);
        let dir = self.socket.parent().unwrap_or(std::path::Path::new("/"));
        let memory = memory.or(self.limits.memory).map(|m| m as i64);
        let host = HostConfig {
            binds: Some(vec![format!("{}:{}:ro", dir.display(), dir.display())]),
            network_mode: Some("none".into()),
            cap_drop: Some(vec!["ALL".into()]),
            security_opt: Some(vec!["no-new-privileges".into()]),
            readonly_rootfs: Some(true),
            cpuset_cpus: self.limits.cpuset.clone(),
            memory,
            memory_swap: memory,
            pids_limit: self.limits.pids,
            group_add: self.group.map(|g| vec![g.to_string()]),
            cpu_shares: weight.map(cpu_shares),
            ..Default::default()
        };
        let labels = HashMap::from([
            (labels::SOCKET.to_string(), self.owner()),
            (labels::NF.to_string(), nf.name.clone()),
            (labels::SERVICE.to_string(), service.to_string()),
            (labels::INSTANCE.to_string(), nf.index.to_string()),
        ]);
        let body = ContainerCreateBody {
            image: Some(image.into()),
            cmd: Some(args.iter().map(|a| a.to_string_lossy().into_owned()).collect()),
            env: Some(
                env.into_iter()
                    .chain([format!("{}={name}", onvm_proto::ctrl::env::CONTAINER)])
                    .collect(),
            ),
            labels: Some(labels),
            network_disabled: Some(true),
            host_config: Some(host),
            ..Default::default()
        };
        let docker = self.engine.docker();
        // A container of this name is a leftover of ours (a restart whose removal
        // failed, or a dead manager's): it goes first.
        remove(&self.engine, &name)?;
        let created = self
            .engine
            .block_on(docker.create_container(Some(CreateContainerOptionsBuilder::new().name(&name).build()), body))
            .map_err(|e| io_error(&format!("creating container {name} from image {image}"), e))?;
        let id = created.id;
        if let Err(e) = self.engine.block_on(docker.start_container(&id, None)) {
            let _ = remove(&self.engine, &id);
            return Err(io_error(&format!("starting container {name}"), e));
        }
        let exit = Arc::new(Mutex::new(None));
        let logs_done = Arc::new(AtomicBool::new(false));
        self.engine
            .spawn(wait_for_exit(docker.clone(), id.clone(), exit.clone()));
        self.engine
            .spawn(forward_logs(docker.clone(), id.clone(), self.stdout, logs_done.clone()));
        Ok(ContainerHandle {
            engine: self.engine.clone(),
            id,
            name,
            exit,
            logs_done,
            exit_seen: None,
            removed: false,
        })
    }

    /// The IDs and names of this manager's containers that exist now (running or not).
    pub fn ours(&self) -> io::Result<Vec<(String, String)>> {
        let filters = HashMap::from([("label", vec![format!("{}={}", labels::SOCKET, self.owner())])]);
        let opts = ListContainersOptionsBuilder::new().all(true).filters(&filters).build();
        let list = self
            .engine
            .block_on(self.engine.docker().list_containers(Some(opts)))
            .map_err(|e| io_error("listing containers", e))?;
        Ok(list
            .into_iter()
            .map(|c| {
                let name = c
                    .names
                    .and_then(|n| n.into_iter().next())
                    .unwrap_or_default()
                    .trim_start_matches('/')
                    .to_string();
                (c.id.unwrap_or_default(), name)
            })
            .collect())
    }

    /// Remove every container of this manager's socket (left by a manager that died, or
    /// by this one); returns their names.
    pub fn remove_ours(&self) -> io::Result<Vec<String>> {
        let mut gone = Vec::new();
        for (id, name) in self.ours()? {
            remove(&self.engine, &id)?;
            gone.push(name);
        }
        Ok(gone)
    }
}

/// Remove container `id` (name or ID), running or not; one that is not there is fine.
fn remove(engine: &Engine, id: &str) -> io::Result<()> {
    let opts = RemoveContainerOptionsBuilder::new().force(true).v(true).build();
    match engine.block_on(engine.docker().remove_container(id, Some(opts))) {
        Ok(()) => Ok(()),
        Err(e) if is_gone(&e) => Ok(()),
        Err(e) => Err(io_error(&format!("removing container {id}"), e)),
    }
}

/// Copy container `id`'s output to ours as it comes (its standard output only when
/// `stdout`), until it ends; then set `done`. Its log is removed with the container, so
/// this is the one place an NF's last words (its summary) can be read.
async fn forward_logs(docker: bollard::Docker, id: String, stdout: bool, done: Arc<AtomicBool>) {
    use std::io::Write as _;
    let opts = LogsOptionsBuilder::new().follow(true).stdout(true).stderr(true).build();
    let mut logs = docker.logs(&id, Some(opts));
    while let Some(Ok(out)) = logs.next().await {
        // Errors writing our own output (a closed pipe) are not the NF's problem.
        let _ = match out {
            LogOutput::StdErr { message } => std::io::stderr().lock().write_all(&message),
            LogOutput::StdOut { message } | LogOutput::Console { message } if stdout => {
                std::io::stdout().lock().write_all(&message)
            }
            _ => Ok(()),
        };
    }
    done.store(true, Ordering::Release);
}

/// How long `try_wait` holds back an exit while the container's output is still being
/// copied.
const LOG_GRACE: Duration = Duration::from_millis(500);

/// Record container `id`'s exit code in `exit` once it stops. A wait that fails (the
/// engine restarting, say) is retried; a container removed by someone else counts as
/// killed (137).
async fn wait_for_exit(docker: bollard::Docker, id: String, exit: Arc<Mutex<Option<i64>>>) {
    loop {
        let opts = WaitContainerOptionsBuilder::new().condition("not-running").build();
        let first = docker.wait_container(&id, Some(opts)).next().await;
        let code = match first {
            Some(Ok(r)) => Some(r.status_code),
            Some(Err(bollard::errors::Error::DockerContainerWaitError { code, .. })) => Some(code),
            Some(Err(e)) if is_gone(&e) => Some(137),
            _ => match docker.inspect_container(&id, None).await {
                Ok(i) => i
                    .state
                    .filter(|s| s.running != Some(true))
                    .map(|s| s.exit_code.unwrap_or(137)),
                Err(e) if is_gone(&e) => Some(137),
                Err(_) => None,
            },
        };
        if let Some(c) = code {
            *exit.lock().unwrap_or_else(|p| p.into_inner()) = Some(c);
            return;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// A running (or exited, not yet reaped) NF container.
#[derive(Debug)]
pub struct ContainerHandle {
    engine: Arc<Engine>,
    id: String,
    name: String,
    exit: Arc<Mutex<Option<i64>>>,
    /// Its output has all been copied.
    logs_done: Arc<AtomicBool>,
    /// When `try_wait` first saw its exit.
    exit_seen: Option<Instant>,
    removed: bool,
}

impl ContainerHandle {
    /// The container's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The container's full ID.
    pub fn container_id(&self) -> &str {
        &self.id
    }

    fn signal(&self, signal: &str) -> io::Result<()> {
        if self.exit.lock().unwrap_or_else(|p| p.into_inner()).is_some() {
            return Ok(());
        }
        let opts = KillContainerOptionsBuilder::new().signal(signal).build();
        match self
            .engine
            .block_on(self.engine.docker().kill_container(&self.id, Some(opts)))
        {
            Ok(()) => Ok(()),
            Err(e) if is_gone(&e) => Ok(()),
            Err(e) => Err(io_error(&format!("sending {signal} to container {}", self.name), e)),
        }
    }
}

impl Handle for ContainerHandle {
    /// `container NAME (ID12)`.
    fn id(&self) -> String {
        format!("container {} ({})", self.name, &self.id[..self.id.len().min(12)])
    }

    fn try_wait(&mut self) -> io::Result<Option<Exit>> {
        let Some(code) = *self.exit.lock().unwrap_or_else(|p| p.into_inner()) else {
            return Ok(None);
        };
        // Its output first (for at most LOG_GRACE): the container and its log go next.
        let seen = *self.exit_seen.get_or_insert_with(Instant::now);
        if !self.logs_done.load(Ordering::Acquire) && seen.elapsed() < LOG_GRACE {
            return Ok(None);
        }
        if !self.removed {
            // Its exit is known; nothing more to learn from it. A failure here leaves it
            // to the next start under its name, or to `remove_ours`.
            self.removed = remove(&self.engine, &self.id).is_ok();
        }
        Ok(Some(Exit::Code(code)))
    }

    /// SIGTERM (the NF stops cleanly and unregisters), without `docker stop`'s wait.
    fn stop(&mut self) -> io::Result<()> {
        self.signal("SIGTERM")
    }

    fn kill(&mut self) -> io::Result<()> {
        self.signal("SIGKILL")
    }
}

/// `onvm-NAME-sSERVICE-INDEX-TAG`, TAG a hash of the owner (the socket path): an entry is
/// its name and service (two entries may run one NF for two services); characters Docker
/// refuses in names become `-`.
fn container_name(owner: &str, nf: &Label, service: u16) -> String {
    let clean: String = nf
        .name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '-'
            }
        })
        .collect();
    format!(
        "onvm-{clean}-s{service}-{}-{:08x}",
        nf.index,
        fnv(owner.as_bytes()) as u32
    )
}

/// FNV-1a, for a short stable tag of a socket path.
fn fnv(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// A container NF's CPU weight (cgroup v2's `cpu.weight` scale: 1..=10000, 100 a
/// plain process's) as the engine's CPU shares (1024 a plain container's), which the
/// engine writes to the container's cgroup: `cpu.shares` on a cgroup v1 host, converted
/// to `cpu.weight` on a cgroup v2 one. So a weight holds between containers without
/// the NF setting its own nice value, which a container (every capability dropped)
/// may not do above 100.
pub fn cpu_shares(weight: u32) -> i64 {
    (i64::from(weight) * 1024 / 100).clamp(2, 262_144)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_valid_docker_names_and_differ_between_sockets() {
        let label = Label {
            name: "my nf/1".into(),
            index: 2,
        };
        let a = container_name("/tmp/a/onvm.sock", &label, 7);
        assert!(a.starts_with("onvm-my-nf-1-s7-2-"), "{a}");
        assert_ne!(a, container_name("/tmp/b/onvm.sock", &label, 7));
        assert_ne!(
            a,
            container_name("/tmp/a/onvm.sock", &label, 8),
            "one NF for two services"
        );
        assert_eq!(
            a,
            container_name("/tmp/a/onvm.sock", &label, 7),
            "stable across restarts"
        );
    }
}
