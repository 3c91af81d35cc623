//! Why an NF could not start or had to stop.

use std::io;
use std::path::PathBuf;

use onvm_proto::ctrl::{DecodeError, RefuseReason};
use onvm_shm::{BufError, RingError, ShmError};
use thiserror::Error;

/// An error of the NF library; every variant says what to do about it.
#[derive(Debug, Error)]
pub enum NfError {
    /// No manager listens on the control socket.
    #[error("cannot reach the NF manager at {path}: {source} (is `onvm mgr` running? set ONVM_SOCKET or --socket)")]
    Connect {
        /// Socket path tried.
        path: PathBuf,
        /// What the connect said.
        source: io::Error,
    },
    /// The manager refused the registration.
    #[error("the manager refused this NF: {0}")]
    Refused(RefuseReason),
    /// The manager said something that is not the protocol.
    #[error("control protocol error: {0}")]
    Protocol(String),
    /// A control message did not decode.
    #[error("malformed control message from the manager: {0}")]
    Decode(#[from] DecodeError),
    /// The shared region could not be mapped or is not valid.
    #[error("shared packet region: {0}")]
    Shm(#[from] ShmError),
    /// A ring in the region is corrupt.
    #[error("ring: {0}")]
    Ring(#[from] RingError),
    /// Buffer ownership.
    #[error("buffer: {0}")]
    Buf(#[from] BufError),
    /// The control socket failed.
    #[error("control socket: {0}")]
    Io(#[from] io::Error),
    /// A message the NF asked to send was refused (too long, too many waiting).
    #[error("message not sent: {0}")]
    Message(String),
    /// A builder option is out of range.
    #[error("bad NF option: {0}")]
    Option(String),
}
