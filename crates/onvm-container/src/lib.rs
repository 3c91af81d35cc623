//! NFs in Docker containers.
//!
//! An NF needs nothing from its container but the manager's control socket: it connects,
//! and the packet region's memfd arrives over the socket (SCM_RIGHTS), so packets stay
//! zero-copy across the container boundary. So a container NF gets only the socket's
//! folder mounted (read-only), no network, no capabilities, no `/dev` or hugepage mounts,
//! and runs as a non-root user that the manager lets in by its group (the socket's
//! allow-list, checked with `SO_PEERCRED`), not by loosened modes.
//!
//! - [`image`] builds a minimal image (`FROM scratch`) from any NF binary: the binary and
//!   exactly the shared libraries it loads, found by reading its ELF headers.
//! - [`launcher`] runs NF instances as containers for the supervisor
//!   ([`onvm_mgr::supervisor`]), polls them without blocking, and cleans up after itself
//!   and after a manager that died.
//! - [`mixed`] launches each NF of a config as a process or a container, so both mix in
//!   one chain and one service.
//! - [`engine`] is the connection to the Docker engine (Engine API over its unix socket,
//!   through bollard), with a small runtime of its own so callers stay synchronous.

pub mod engine;
pub mod image;
pub mod launcher;
pub mod mixed;

pub use engine::{Engine, EngineError};
pub use image::{ImageError, ImageSpec, NF_USER};
pub use launcher::{ContainerHandle, ContainerLauncher, Limits};
pub use mixed::{NfHandle, NfLauncher};

/// Labels on everything of ours, so that it can be found and removed.
pub mod labels {
    /// On containers: the control socket of the manager they serve. A new manager on the
    /// same socket removes containers left with it (their manager died).
    pub const SOCKET: &str = "org.onvm-rs.socket";
    /// On containers: the NF's config name.
    pub const NF: &str = "org.onvm-rs.nf";
    /// On containers: the service ID it serves.
    pub const SERVICE: &str = "org.onvm-rs.service";
    /// On containers: the instance index.
    pub const INSTANCE: &str = "org.onvm-rs.instance";
    /// On images: the image holds the `onvm` binary, whose `onvm nf NAME` runs every
    /// built-in NF (so the launcher passes the built-in NF's command line).
    pub const BUILTIN: &str = "org.onvm-rs.builtin-nfs";
    /// On images: the NF binary the image was built from.
    pub const BINARY: &str = "org.onvm-rs.binary";
}
