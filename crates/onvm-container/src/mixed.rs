//! One launcher for a config's NFs: each runs as a process, or as a container when its
//! entry names an `image`, so both kinds mix in one chain and one service.
//!
//! A container runs the command line the process would have had, minus the program:
//! for an image of the `onvm` binary (labelled [`crate::labels::BUILTIN`]) that is
//! `nf --service S --tag NAME --socket SOCK name ARGS…`, for an image of an NF binary
//! of one's own just its `args`. The socket path is the same inside, as its folder is
//! mounted at the same place.

use std::collections::HashMap;
use std::ffi::OsString;
use std::io;

use onvm_mgr::supervisor::{Exit, Handle, Launcher, NfInstance, ProcessHandle, ProcessLauncher};

use crate::engine::Engine;
use crate::image;
use crate::launcher::{ContainerHandle, ContainerLauncher};

/// Launches processes, and containers when there is an engine.
#[derive(Debug)]
pub struct NfLauncher {
    /// For processes, and the command line of built-in NFs.
    pub process: ProcessLauncher,
    /// For NFs with an `image`; `None` when the config has none.
    pub containers: Option<ContainerLauncher>,
    /// Per image: whether it runs built-in NFs.
    builtin: HashMap<String, bool>,
}

impl NfLauncher {
    /// A launcher of both kinds.
    pub fn new(process: ProcessLauncher, containers: Option<ContainerLauncher>) -> Self {
        NfLauncher {
            process,
            containers,
            builtin: HashMap::new(),
        }
    }

    /// Check that `nf`'s image exists and fits its entry: a built-in NF's name needs an
    /// image of the `onvm` binary. Returns whether the image runs built-in NFs.
    pub fn check_image(&mut self, engine: &Engine, nf: &NfInstance) -> Result<bool, String> {
        let Some(img) = &nf.spec.image else {
            return Ok(false);
        };
        if let Some(&b) = self.builtin.get(img) {
            return Ok(b);
        }
        let name = &nf.spec.name;
        let builtin = match image::inspect(engine, img) {
            Ok(Some(b)) => b,
            Ok(None) => {
                return Err(format!(
                    "NF {name:?}: image {img:?} is not on the Docker engine at {} (build it with `onvm image build`)",
                    engine.endpoint()
                ));
            }
            Err(e) => return Err(format!("NF {name:?}: image {img:?}: {e}")),
        };
        self.builtin.insert(img.clone(), builtin);
        Ok(builtin)
    }

    /// The container's environment for `nf`: the `ONVM_*` variables a process gets,
    /// but its weight, which the engine applies to the container's cgroup instead
    /// ([`crate::launcher::cpu_shares`]).
    pub fn container_env(&self, nf: &NfInstance) -> Vec<String> {
        self.process
            .command(nf)
            .get_envs()
            .filter(|(k, _)| *k != onvm_proto::ctrl::env::WEIGHT)
            .filter_map(|(k, v)| Some(format!("{}={}", k.to_str()?, v?.to_str()?)))
            .collect()
    }

    /// The container's command line for `nf` (see the module doc).
    pub fn container_args(&self, nf: &NfInstance, builtin: bool) -> Vec<OsString> {
        if builtin {
            self.process.command(nf).get_args().map(OsString::from).collect()
        } else {
            nf.spec.args.iter().map(OsString::from).collect()
        }
    }
}

impl Launcher for NfLauncher {
    type Handle = NfHandle;

    fn launch(&mut self, nf: &NfInstance) -> io::Result<NfHandle> {
        let Some(img) = nf.spec.image.clone() else {
            return self.process.launch(nf).map(NfHandle::Process);
        };
        let Some(containers) = self.containers.clone() else {
            return Err(io::Error::other(format!(
                "NF {:?} has an image but no Docker engine was connected",
                nf.spec.name
            )));
        };
        let builtin = self.check_image(containers.engine(), nf).map_err(io::Error::other)?;
        let args = self.container_args(nf, builtin);
        containers
            .start(
                &nf.label(),
                nf.spec.service,
                &img,
                args,
                self.container_env(nf),
                nf.spec.memory,
                nf.spec.weight,
            )
            .map(NfHandle::Container)
    }
}

/// A process or a container.
#[derive(Debug)]
pub enum NfHandle {
    /// A child process.
    Process(ProcessHandle),
    /// A container.
    Container(ContainerHandle),
}

impl NfHandle {
    fn inner(&mut self) -> &mut dyn Handle {
        match self {
            NfHandle::Process(p) => p,
            NfHandle::Container(c) => c,
        }
    }
}

impl Handle for NfHandle {
    fn id(&self) -> String {
        match self {
            NfHandle::Process(p) => p.id(),
            NfHandle::Container(c) => c.id(),
        }
    }

    fn try_wait(&mut self) -> io::Result<Option<Exit>> {
        self.inner().try_wait()
    }

    fn stop(&mut self) -> io::Result<()> {
        self.inner().stop()
    }

    fn kill(&mut self) -> io::Result<()> {
        self.inner().kill()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use onvm_mgr::supervisor::NfOutput;
    use onvm_proto::config::{NfSpec, RestartPolicy};

    fn nf(name: &str, image: Option<&str>) -> NfInstance {
        NfInstance {
            spec: NfSpec {
                name: name.into(),
                binary: None,
                service: 2,
                instances: 1,
                args: vec!["--quiet".into()],
                restart: RestartPolicy::NEVER,
                image: image.map(String::from),
                memory: None,
                weight: None,
                autoscale: None,
            },
            index: 0,
        }
    }

    fn launcher() -> NfLauncher {
        NfLauncher::new(
            ProcessLauncher {
                program: "/usr/bin/onvm".into(),
                socket: "/run/onvm/onvm.sock".into(),
                shared_cores: false,
                stdout: NfOutput::Null,
            },
            None,
        )
    }

    #[test]
    fn a_builtin_image_gets_the_nf_command_line_and_an_own_image_only_its_args() {
        let l = launcher();
        let args: Vec<String> = l
            .container_args(&nf("basic_monitor", Some("onvm/nfs")), true)
            .into_iter()
            .map(|a| a.into_string().unwrap())
            .collect();
        assert_eq!(
            args,
            [
                "nf",
                "--service",
                "2",
                "--tag",
                "basic_monitor",
                "--socket",
                "/run/onvm/onvm.sock",
                "basic-monitor",
                "--quiet"
            ]
        );
        assert_eq!(
            l.container_args(&nf("mine", Some("me/nf")), false),
            [OsString::from("--quiet")]
        );
    }

    #[test]
    fn a_container_s_weight_goes_to_the_engine_not_to_the_nf() {
        let l = launcher();
        let mut weighted = nf("basic_monitor", Some("onvm/nfs"));
        weighted.spec.weight = Some(200);
        let env = l.container_env(&weighted);
        assert!(env.iter().any(|e| e == "ONVM_SERVICE=2"), "{env:?}");
        assert!(
            !env.iter().any(|e| e.starts_with("ONVM_WEIGHT=")),
            "a container cannot renice itself above 100: {env:?}"
        );
        assert_eq!(crate::launcher::cpu_shares(200), 2048);
        assert_eq!(crate::launcher::cpu_shares(100), 1024);
        assert_eq!(crate::launcher::cpu_shares(1), 10);
        assert_eq!(crate::launcher::cpu_shares(10_000), 102_400);
    }

    #[test]
    fn an_image_without_an_engine_is_a_launch_error() {
        let mut l = launcher();
        let e = l.launch(&nf("basic_monitor", Some("onvm/nfs"))).unwrap_err();
        assert!(e.to_string().contains("no Docker engine"), "{e}");
    }
}
