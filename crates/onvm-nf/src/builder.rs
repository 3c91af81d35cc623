//! openNetVM's NF options and the registration handshake.

use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use onvm_proto::ctrl::{ABI_VERSION, MAX_MESSAGE_LEN, MgrMsg, NfMsg, Register, RegisterFlags, Registered};
use onvm_proto::limits::{MAX_SERVICES, MAX_TAG_LEN};
use onvm_shm::Region;
use onvm_shm::seqpacket::{Received, SeqPacket, default_socket_path};

use crate::error::NfError;
use crate::handler::Handler;
use crate::runtime::{self, Summary};

/// Options of an NF, named after openNetVM's flags.
#[derive(Clone, Debug)]
pub struct NfBuilder {
    pub(crate) tag: String,
    pub(crate) service: u16,
    pub(crate) instance: Option<u16>,
    pub(crate) core: Option<u16>,
    pub(crate) shared_core: bool,
    pub(crate) weight: Option<u32>,
    pub(crate) ttl: Option<Duration>,
    pub(crate) packet_limit: Option<u64>,
    pub(crate) socket: Option<PathBuf>,
    pub(crate) tick: Duration,
    pub(crate) parent: Option<u16>,
    pub(crate) pin: bool,
    /// An environment variable [`NfBuilder::from_env`] could not use, reported by
    /// `connect`.
    pub(crate) env_error: Option<String>,
}

/// The service ID a launcher gives an NF ([`NfBuilder::from_env`]); `onvm up` sets it
/// to the config entry's `service`.
pub const ENV_SERVICE: &str = onvm_proto::ctrl::env::SERVICE;
/// The tag a launcher gives an NF: the config entry's `name`.
pub const ENV_TAG: &str = onvm_proto::ctrl::env::TAG;
/// `1` when the NF should share its core and sleep when idle (`shared_cores = true`).
pub const ENV_SHARED_CORE: &str = onvm_proto::ctrl::env::SHARED_CORE;
/// The NF's CPU weight, set by `onvm up` from the config's `weight`.
pub const ENV_WEIGHT: &str = onvm_proto::ctrl::env::WEIGHT;

/// A registered NF, ready to [`run`](Nf::run).
#[derive(Debug)]
pub struct Nf {
    pub(crate) opts: NfBuilder,
    pub(crate) sock: SeqPacket,
    pub(crate) region: Arc<Region>,
    pub(crate) reg: Registered,
}

/// Set by SIGINT/SIGTERM: every NF instance of this process stops gracefully.
pub(crate) fn signal_flag() -> &'static Arc<AtomicBool> {
    static FLAG: OnceLock<Arc<AtomicBool>> = OnceLock::new();
    FLAG.get_or_init(|| {
        let f = Arc::new(AtomicBool::new(false));
        for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
            // If a handler cannot be installed the NF still runs; it just dies on the signal
            // and the manager reclaims its buffers.
            let _ = signal_hook::flag::register(sig, f.clone());
        }
        f
    })
}

impl NfBuilder {
    /// An NF named `tag` (shown in stats) serving service 1.
    pub fn new(tag: impl Into<String>) -> Self {
        NfBuilder {
            tag: tag.into(),
            service: 1,
            instance: None,
            core: None,
            shared_core: false,
            weight: None,
            ttl: None,
            packet_limit: None,
            socket: None,
            tick: Duration::from_secs(1),
            parent: None,
            pin: true,
            env_error: None,
        }
    }

    /// An NF with the settings its launcher put in the environment: [`ENV_SERVICE`]
    /// (else service 1), [`ENV_TAG`] (else `default_tag`) and [`ENV_SHARED_CORE`], next to
    /// `ONVM_SOCKET`, which every NF reads. `onvm up` sets them for an NF of one's own
    /// (process or container), so its config entry says them once; the builder's
    /// methods still override them (an NF's own flags, say). A value that is not valid
    /// makes [`connect`](Self::connect) fail, naming it.
    pub fn from_env(default_tag: impl Into<String>) -> Self {
        Self::from_vars(default_tag, |k| std::env::var(k).ok())
    }

    /// [`from_env`](Self::from_env) with the variables looked up by `get`.
    fn from_vars(default_tag: impl Into<String>, get: impl Fn(&str) -> Option<String>) -> Self {
        let var = |k: &str| get(k).filter(|v| !v.is_empty());
        let mut b = NfBuilder::new(var(ENV_TAG).unwrap_or_else(|| default_tag.into()));
        if let Some(v) = var(ENV_SERVICE) {
            match v.parse() {
                Ok(id) => b.service = id,
                Err(_) => b.env_error = Some(format!("{ENV_SERVICE}={v:?} is not a service ID")),
            }
        }
        match var(ENV_SHARED_CORE).as_deref() {
            None | Some("0") => {}
            Some("1") => b.shared_core = true,
            Some(v) => b.env_error = Some(format!("{ENV_SHARED_CORE}={v:?} is neither 0 nor 1")),
        }
        if let Some(v) = var(ENV_WEIGHT) {
            match v.parse() {
                Ok(w) => b.weight = Some(w),
                Err(_) => b.env_error = Some(format!("{ENV_WEIGHT}={v:?} is not a weight")),
            }
        }
        b
    }

    /// The tag.
    pub fn tag(&self) -> &str {
        &self.tag
    }

    /// Another tag (one given on an NF's command line over its launcher's).
    pub fn with_tag(mut self, tag: impl Into<String>) -> Self {
        self.tag = tag.into();
        self
    }

    /// Service ID (`-r`).
    pub fn service(mut self, id: u16) -> Self {
        self.service = id;
        self
    }

    /// Insist on an instance ID (`-n`).
    pub fn instance(mut self, id: u16) -> Self {
        self.instance = Some(id);
        self
    }

    /// Its CPU weight against the NFs it shares a core with, on cgroup v2's
    /// `cpu.weight` scale (1..=10000; 100, the default, is a plain thread's): its thread
    /// gets the nice value the kernel's scheduler weighs so (1.25× per step, so 200 is
    /// nice -3, 50 is nice 3). Above 100 needs CAP_SYS_NICE (root).
    pub fn weight(mut self, weight: u32) -> Self {
        self.weight = Some(weight);
        self
    }

    /// Ask for this core (`-m` with the core of `-l`).
    pub fn core(mut self, core: u16) -> Self {
        self.core = Some(core);
        self
    }

    /// Share a core and sleep when idle (`-s`).
    pub fn shared_core(mut self, on: bool) -> Self {
        self.shared_core = on;
        self
    }

    /// Stop after this long (`-t`).
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.ttl = Some(ttl);
        self
    }

    /// Stop after this many packets received (`-l`).
    pub fn packet_limit(mut self, n: u64) -> Self {
        self.packet_limit = Some(n);
        self
    }

    /// Control socket of the manager (default: [`default_socket_path`]).
    pub fn socket(mut self, path: impl Into<PathBuf>) -> Self {
        self.socket = Some(path.into());
        self
    }

    /// Interval of the [`Handler::tick`] callback.
    pub fn tick(mut self, every: Duration) -> Self {
        self.tick = every;
        self
    }

    /// Whether to pin the thread to the core the manager assigns (default yes).
    pub fn pin(mut self, on: bool) -> Self {
        self.pin = on;
        self
    }

    fn check(&self) -> Result<(), NfError> {
        if let Some(e) = &self.env_error {
            return Err(NfError::Option(e.clone()));
        }
        if self.tag.is_empty() || self.tag.len() > MAX_TAG_LEN {
            return Err(NfError::Option(format!(
                "tag {:?} must be 1 to {MAX_TAG_LEN} bytes",
                self.tag
            )));
        }
        if let Some(w) = self.weight
            && !(1..=10_000).contains(&w)
        {
            return Err(NfError::Option(format!(
                "weight {w} is out of range (1..=10000, 100 being a plain thread's)"
            )));
        }
        if self.service == 0 || self.service >= MAX_SERVICES {
            return Err(NfError::Option(format!(
                "service {} is out of range (valid: 1..{MAX_SERVICES})",
                self.service
            )));
        }
        Ok(())
    }

    /// Register with the manager and map the packet region.
    pub fn connect(self) -> Result<Nf, NfError> {
        self.check()?;
        signal_flag();
        // Where nothing names the socket, it is the per-user default (`/tmp/onvm-UID`),
        // whose directory another user may have created first: only a manager running
        // as this user or root gets this NF's packets there.
        let implicit = self.socket.is_none()
            && ["ONVM_SOCKET", "ONVM_RUN_DIR"]
                .iter()
                .all(|v| std::env::var_os(v).is_none());
        let path = self.socket.clone().unwrap_or_else(default_socket_path);
        let sock = SeqPacket::connect(&path).map_err(|source| NfError::Connect {
            path: path.clone(),
            source,
        })?;
        if implicit && !sock.peer_is_self_or_root()? {
            return Err(NfError::Connect {
                path,
                source: std::io::Error::new(
                    std::io::ErrorKind::PermissionDenied,
                    "its manager runs as another user (not this one, not root), who may have created the \
                     directory to receive this NF's packets; name the socket with --socket to trust it",
                ),
            });
        }
        let mut flags = RegisterFlags::NONE;
        if self.shared_core {
            flags = flags | RegisterFlags::SHARED_CORE;
        }
        if self.core.is_some() {
            flags = flags | RegisterFlags::MANUAL_CORE;
        }
        let msg = NfMsg::Register(Register {
            abi_version: ABI_VERSION,
            tag: self.tag.clone(),
            service: self.service,
            instance: self.instance,
            core: self.core,
            parent: self.parent,
            flags,
        });
        sock.send(&msg.encode().map_err(|e| NfError::Option(e.to_string()))?)?;
        let mut buf = vec![0u8; MAX_MESSAGE_LEN + 1];
        let (n, fd) = match sock.recv(&mut buf)? {
            Received::Msg(n, fd) => (n, fd),
            Received::Empty | Received::Closed => {
                return Err(NfError::Protocol(
                    "the manager closed the connection during registration".into(),
                ));
            }
        };
        let reg = match MgrMsg::decode(&buf[..n])? {
            MgrMsg::Registered(r) => r,
            MgrMsg::Refused(why) => return Err(NfError::Refused(why)),
            other => {
                return Err(NfError::Protocol(format!(
                    "expected a registration answer, got {other:?}"
                )));
            }
        };
        let fd = fd.ok_or_else(|| NfError::Protocol("the registration answer carried no region fd".into()))?;
        let region = Region::open(fd)?;
        Ok(Nf {
            opts: self,
            sock,
            region,
            reg,
        })
    }
}

impl Nf {
    /// Options for an NF named `tag`.
    pub fn builder(tag: impl Into<String>) -> NfBuilder {
        NfBuilder::new(tag)
    }

    /// Instance ID the manager assigned.
    pub fn instance(&self) -> u16 {
        self.reg.instance
    }

    /// Service ID.
    pub fn service(&self) -> u16 {
        self.reg.service
    }

    /// Core the manager assigned, if any.
    pub fn core(&self) -> Option<u16> {
        self.reg.core
    }

    /// Run `handler` until stopped (signal, manager, TTL, packet limit or
    /// [`Ctx::stop`](crate::Ctx::stop)).
    pub fn run<H: Handler>(self, mut handler: H) -> Result<Summary, NfError> {
        runtime::run(self, &mut handler)
    }

    /// Start `n` child instances of this NF's service on their own threads (openNetVM's
    /// scaling API); each registers with this NF as parent and runs a handler from
    /// `make`. Join the handles for their summaries.
    pub fn scale<H, F>(
        &self,
        n: usize,
        make: F,
    ) -> Result<Vec<std::thread::JoinHandle<Result<Summary, NfError>>>, NfError>
    where
        H: Handler + 'static,
        F: Fn() -> H + Send + Sync + 'static,
    {
        let make = Arc::new(make);
        let mut opts = self.opts.clone();
        opts.parent = Some(self.reg.instance);
        opts.instance = None;
        opts.core = None;
        let mut handles = Vec::with_capacity(n);
        for i in 0..n {
            // Register here, so a refusal is reported to the caller, not lost in a thread.
            let mut child = opts.clone();
            child.tag = format!("{}#{}", opts.tag, i + 1);
            child.tag.truncate(MAX_TAG_LEN);
            let nf = child.connect()?;
            let make = make.clone();
            handles.push(std::thread::spawn(move || nf.run(make())));
        }
        Ok(handles)
    }
}

#[cfg(test)]
mod env_tests {
    use super::*;

    fn vars(list: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let list: Vec<(String, String)> = list.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        move |k| list.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone())
    }

    #[test]
    fn a_launcher_s_settings_are_defaults_the_methods_override() {
        let b = NfBuilder::from_vars(
            "mine",
            vars(&[(ENV_SERVICE, "7"), (ENV_TAG, "fw"), (ENV_SHARED_CORE, "1")]),
        );
        assert_eq!((b.service, b.tag.as_str(), b.shared_core), (7, "fw", true));
        assert!(b.check().is_ok());
        let b = b.service(3).shared_core(false);
        assert_eq!((b.service, b.shared_core), (3, false));
        let b = NfBuilder::from_vars("mine", vars(&[]));
        assert_eq!((b.service, b.tag.as_str(), b.shared_core), (1, "mine", false));
    }

    #[test]
    fn a_bad_value_is_named_when_connecting() {
        let b = NfBuilder::from_vars("mine", vars(&[(ENV_SERVICE, "seven")]));
        let e = b.check().unwrap_err().to_string();
        assert!(e.contains("ONVM_SERVICE=\"seven\""), "{e}");
        let b = NfBuilder::from_vars("mine", vars(&[(ENV_SHARED_CORE, "yes")]));
        assert!(b.check().unwrap_err().to_string().contains("ONVM_SHARED_CORE"));
    }
}
