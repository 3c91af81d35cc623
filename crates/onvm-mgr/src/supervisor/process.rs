//! What the supervisor launches, and [`ProcessLauncher`], which launches NF processes.
//!
//! [`Launcher`] and [`Handle`] are the seam for other kinds of NF: a container launcher
//! (Docker through bollard) creates and starts a container from the same [`NfInstance`],
//! and its handle reports the container ID, polls the container's state, stops it with
//! `docker stop` semantics and removes it. The supervisor only ever calls these methods
//! from its own thread and never blocks in them, so a handle to an async API keeps a
//! runtime handle and answers from what it last learnt.

use std::fmt;
use std::io;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};

use onvm_proto::config::NfSpec;
use rustix::process::{Pid, Signal, kill_process};

use super::policy::Outcome;

/// One instance of a configured NF: the config entry, and which of its `instances` it is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NfInstance {
    /// The config entry.
    pub spec: NfSpec,
    /// 0..`spec.instances`.
    pub index: u16,
}

impl NfInstance {
    /// How logs name it: `simple_forward #1`.
    pub fn label(&self) -> Label {
        Label {
            name: self.spec.name.clone(),
            index: self.index,
        }
    }
}

/// An NF instance's name in events: its config name and instance index.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Label {
    /// The config name.
    pub name: String,
    /// Which instance.
    pub index: u16,
}

impl fmt::Display for Label {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} #{}", self.name, self.index)
    }
}

/// How a launched NF ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exit {
    /// A process's status (an exit code or a signal).
    Status(ExitStatus),
    /// A container's exit code, as Docker reports it.
    Code(i64),
}

impl Exit {
    /// Success (status 0) or failure, which is what restart policies look at.
    pub fn outcome(&self) -> Outcome {
        let ok = match self {
            Exit::Status(s) => s.success(),
            Exit::Code(c) => *c == 0,
        };
        if ok { Outcome::Success } else { Outcome::Failure }
    }
}

impl fmt::Display for Exit {
    /// `exit status: 1`, `signal: 9 (SIGKILL)`: the wording `onvm up` has always printed.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Exit::Status(s) => s.fmt(f),
            Exit::Code(c) => write!(f, "exit status: {c}"),
        }
    }
}

/// Starts NFs.
pub trait Launcher: fmt::Debug {
    /// What it returns for a running NF.
    type Handle: Handle;

    /// Start one instance. An error means nothing runs.
    fn launch(&mut self, nf: &NfInstance) -> io::Result<Self::Handle>;
}

/// A launched NF: poll it, stop it. None of these block.
pub trait Handle: fmt::Debug {
    /// What identifies it outside onvm: `pid 1234`, or a container ID.
    fn id(&self) -> String;

    /// Its exit, once it has exited (and been reaped); `None` while it runs. Once it has
    /// returned an exit, it keeps returning the same one.
    fn try_wait(&mut self) -> io::Result<Option<Exit>>;

    /// Ask it to stop (SIGTERM; `docker stop`). Does nothing once it has exited.
    fn stop(&mut self) -> io::Result<()>;

    /// Make it stop now (SIGKILL). Does nothing once it has exited.
    fn kill(&mut self) -> io::Result<()>;
}

/// Where a launched process's standard output goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NfOutput {
    /// This process's stdout.
    Inherit,
    /// Nowhere (`onvm demo`, whose screen belongs to the stats).
    Null,
}

/// Launches each NF as a child process connected to one manager.
///
/// A built-in NF (no `binary` in its spec) runs as `PROGRAM nf --service S --tag NAME
/// [--shared-core] --socket SOCK name-with-dashes ARGS…`, where PROGRAM is the `onvm`
/// binary; an NF with a `binary` runs as `BINARY ARGS…`. Both get `ONVM_SOCKET`,
/// `ONVM_SERVICE`, `ONVM_TAG` and `ONVM_SHARED_CORE` ([`onvm_proto::ctrl::env`]; an NF of
/// one's own takes them as defaults with `NfBuilder::from_env`) and a null stdin; stderr
/// is inherited, so their events reach the same log.
#[derive(Clone, Debug)]
pub struct ProcessLauncher {
    /// The `onvm` binary, for built-in NFs.
    pub program: PathBuf,
    /// The manager's control socket.
    pub socket: PathBuf,
    /// NFs share cores and sleep when idle (the config's `shared_cores`).
    pub shared_cores: bool,
    /// Where their stdout goes.
    pub stdout: NfOutput,
}

impl ProcessLauncher {
    /// The command that starts `nf` (not started).
    pub fn command(&self, nf: &NfInstance) -> Command {
        let spec = &nf.spec;
        let mut cmd = match &spec.binary {
            Some(bin) => Command::new(bin),
            None => {
                let mut c = Command::new(&self.program);
                c.arg("nf");
                c.args(["--service", &spec.service.to_string(), "--tag", &spec.name]);
                if self.shared_cores {
                    c.arg("--shared-core");
                }
                c.arg("--socket").arg(&self.socket);
                c.arg(spec.name.replace('_', "-"));
                c
            }
        };
        cmd.args(&spec.args);
        // What an NF of one's own learns only from here (a built-in one has the flags).
        use onvm_proto::ctrl::env;
        cmd.env(env::SOCKET, &self.socket);
        cmd.env(env::SERVICE, spec.service.to_string());
        cmd.env(env::TAG, &spec.name);
        cmd.env(env::SHARED_CORE, if self.shared_cores { "1" } else { "0" });
        if let Some(w) = spec.weight {
            cmd.env(env::WEIGHT, w.to_string());
        }
        cmd.stdin(Stdio::null());
        if self.stdout == NfOutput::Null {
            cmd.stdout(Stdio::null());
        }
        cmd
    }
}

impl Launcher for ProcessLauncher {
    type Handle = ProcessHandle;

    fn launch(&mut self, nf: &NfInstance) -> io::Result<ProcessHandle> {
        let child = self.command(nf).spawn()?;
        Ok(ProcessHandle { child, exit: None })
    }
}

/// A child process started by [`ProcessLauncher`].
///
/// It is signalled only while it has not been reaped: until `try_wait` has seen it exit,
/// its PID cannot have been reused, so SIGTERM cannot reach another process.
#[derive(Debug)]
pub struct ProcessHandle {
    child: Child,
    exit: Option<ExitStatus>,
}

impl ProcessHandle {
    /// Reaps it if it has exited; whether it still runs.
    fn running(&mut self) -> io::Result<bool> {
        Ok(self.try_wait()?.is_none())
    }
}

impl Handle for ProcessHandle {
    fn id(&self) -> String {
        format!("pid {}", self.child.id())
    }

    fn try_wait(&mut self) -> io::Result<Option<Exit>> {
        if self.exit.is_none() {
            self.exit = self.child.try_wait()?;
        }
        Ok(self.exit.map(Exit::Status))
    }

    fn stop(&mut self) -> io::Result<()> {
        if self.running()? {
            kill_process(Pid::from_child(&self.child), Signal::TERM)?;
        }
        Ok(())
    }

    fn kill(&mut self) -> io::Result<()> {
        if self.running()? {
            self.child.kill()?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use onvm_proto::config::RestartPolicy;

    fn instance(name: &str, binary: Option<&str>, args: &[&str]) -> NfInstance {
        NfInstance {
            spec: NfSpec {
                name: name.into(),
                binary: binary.map(PathBuf::from),
                service: 3,
                instances: 2,
                args: args.iter().map(|a| a.to_string()).collect(),
                restart: RestartPolicy::NEVER,
                image: None,
                memory: None,
                weight: None,
                autoscale: None,
            },
            index: 1,
        }
    }

    fn launcher(shared_cores: bool) -> ProcessLauncher {
        ProcessLauncher {
            program: "/opt/onvm".into(),
            socket: "/run/onvm.sock".into(),
            shared_cores,
            stdout: NfOutput::Inherit,
        }
    }

    fn args(cmd: &Command) -> Vec<String> {
        cmd.get_args().map(|a| a.to_string_lossy().into_owned()).collect()
    }

    #[test]
    fn builtin_nfs_run_as_onvm_nf() {
        let nf = instance("simple_forward", None, &["-d", "2"]);
        let cmd = launcher(true).command(&nf);
        assert_eq!(cmd.get_program(), "/opt/onvm");
        assert_eq!(
            args(&cmd),
            [
                "nf",
                "--service",
                "3",
                "--tag",
                "simple_forward",
                "--shared-core",
                "--socket",
                "/run/onvm.sock",
                "simple-forward",
                "-d",
                "2"
            ]
        );
        assert!(
            cmd.get_envs()
                .any(|(k, v)| k == "ONVM_SOCKET" && v == Some("/run/onvm.sock".as_ref()))
        );
        assert!(!args(&launcher(false).command(&nf)).contains(&"--shared-core".to_string()));
        assert_eq!(nf.label().to_string(), "simple_forward #1");
    }

    #[test]
    fn nfs_with_a_binary_run_it_with_their_args() {
        let cmd = launcher(true).command(&instance("mine", Some("/usr/bin/my-nf"), &["--x"]));
        assert_eq!(cmd.get_program(), "/usr/bin/my-nf");
        assert_eq!(args(&cmd), ["--x"]);
        let env: Vec<(String, String)> = cmd
            .get_envs()
            .map(|(k, v)| {
                (
                    k.to_string_lossy().into(),
                    v.unwrap_or_default().to_string_lossy().into(),
                )
            })
            .collect();
        for (k, v) in [
            ("ONVM_SOCKET", "/run/onvm.sock"),
            ("ONVM_SERVICE", "3"),
            ("ONVM_TAG", "mine"),
            ("ONVM_SHARED_CORE", "1"),
        ] {
            assert!(env.contains(&(k.into(), v.into())), "{k}={v} in {env:?}");
        }
    }

    #[test]
    fn exits_read_as_outcomes_and_print_as_before() {
        assert_eq!(Exit::Code(0).outcome(), Outcome::Success);
        assert_eq!(Exit::Code(137).outcome(), Outcome::Failure);
        assert_eq!(Exit::Code(3).to_string(), "exit status: 3");
        let mut h =
            ProcessLauncher::launch(&mut launcher(false), &instance("f", Some("/bin/sh"), &["-c", "exit 3"])).unwrap();
        let exit = loop {
            if let Some(e) = h.try_wait().unwrap() {
                break e;
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        };
        assert_eq!(exit.outcome(), Outcome::Failure);
        assert_eq!(exit.to_string(), "exit status: 3");
        assert_eq!(h.try_wait().unwrap(), Some(exit), "the exit is kept");
        // Signalling an exited (reaped) process is a no-op, not an error.
        h.stop().unwrap();
        h.kill().unwrap();
    }
}
