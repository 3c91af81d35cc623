//! Why a manager could not start or had to stop.

use std::io;
use std::path::PathBuf;

use onvm_ports::PortError;
use onvm_shm::{BufError, RingError, ShmError};

use crate::placement::PlacementError;
use crate::topology::TopologyError;
use thiserror::Error;

/// A manager error; each names what to do about it.
#[derive(Debug, Error)]
pub enum MgrError {
    /// Another manager serves this socket.
    #[error("another NF manager is already running on {0} (stop it, or use another --socket)")]
    AlreadyRunning(PathBuf),
    /// The HTTP endpoint could not listen.
    #[error("http: cannot listen on {addr}: {source} (use another --http address, or port 0 for any)")]
    Http {
        /// The address.
        addr: std::net::SocketAddr,
        /// Why.
        source: io::Error,
    },
    /// The control socket could not be created.
    #[error("cannot listen on {path}: {source}")]
    Socket {
        /// The path.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// The socket's directory could let another user replace or intercept the socket.
    #[error("refusing {path} as the control socket's directory: {why}")]
    SocketDir {
        /// The directory.
        path: PathBuf,
        /// What is wrong with it.
        why: String,
    },
    /// Something that is not our socket is at the socket's path; it is left alone.
    #[error("{path} exists and is not {what}; refusing to replace it (remove it yourself, or use another --socket)")]
    NotOurSocket {
        /// The path.
        path: PathBuf,
        /// What it would have to be.
        what: &'static str,
    },
    /// The packet region.
    #[error("packet region: {0}")]
    Shm(#[from] ShmError),
    /// A ring of the region.
    #[error("ring: {0}")]
    Ring(#[from] RingError),
    /// A buffer.
    #[error("buffer: {0}")]
    Buf(#[from] BufError),
    /// A port.
    #[error("{0}")]
    Port(#[from] PortError),
    /// The CPU and NUMA topology could not be read.
    #[error("CPU topology: {0}")]
    Topology(#[from] TopologyError),
    /// The cores asked for are not on this machine.
    #[error("{0}")]
    Placement(#[from] PlacementError),
    /// The OpenFlow listener could not be opened.
    #[error("{0} (is another switch listening there? pick another ptcp: port)")]
    OpenFlow(io::Error),
    /// A receive thread (`--rx-threads`) could not start.
    #[error("cannot start receive thread {lane}: {source}")]
    Lane {
        /// Its number.
        lane: u16,
        /// Why.
        source: io::Error,
    },
}
