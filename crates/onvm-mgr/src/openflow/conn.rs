//! One OpenFlow connection: a non-blocking TCP stream cut into messages.
//!
//! The manager's thread must never wait on a controller, so the stream is polled from
//! the control tick: reads take what the kernel has, writes queue what does not fit
//! and go on at the next tick. A controller that stops reading while the switch has
//! more than [`MAX_QUEUED`] bytes for it is cut off rather than letting the queue grow.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use onvm_openflow::{Message, OfpError, Role, frame_len};
use thiserror::Error;

/// Bytes queued for a peer before it counts as stuck.
pub const MAX_QUEUED: usize = 16 << 20;

/// Whence a connection came.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Origin {
    /// We connected to `--controller` number `n`.
    Active(usize),
    /// It connected to our `--openflow-listen` socket (`ovs-ofctl`, a controller).
    Passive,
}

/// Why a connection closed (said in the event log).
#[derive(Debug, Error)]
pub enum Closed {
    #[error("closed by the peer")]
    ByPeer,
    #[error("closed while writing")]
    WhileWriting,
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// A length below the header's own: nothing after it can be framed.
    #[error("unframeable stream: {0}")]
    Unframeable(OfpError),
    #[error("{0} bytes queued for a peer that does not read")]
    Stuck(usize),
    /// No version in common, or a HELLO that did not parse.
    #[error("{0}")]
    HelloFailed(String),
    #[error("no answer to an echo request for {0:?}")]
    NoEchoReply(Duration),
}

/// What a read brought.
pub enum Input {
    /// One whole message: its bytes (for ERROR replies) and what they decode to.
    Msg(Vec<u8>, Box<Result<(u32, Message), OfpError>>),
    /// Nothing more for now.
    Idle,
    /// The peer closed, or the stream failed.
    Closed(Closed),
}

/// A TCP connection to a controller or tool.
#[derive(Debug)]
pub struct Conn {
    stream: TcpStream,
    pub peer: SocketAddr,
    pub origin: Origin,
    /// The non-blocking connect has not finished.
    pub connecting: bool,
    /// HELLO exchanged and a version agreed.
    pub ready: bool,
    pub role: Role,
    /// Whether it gets asynchronous messages: controllers do; a connection to the
    /// listener is a tool's (`ovs-ofctl` fails on a message it did not ask for) until
    /// it sends a ROLE_REQUEST, as a controller that dials in does.
    pub async_on: bool,
    /// Last time anything came in (for the inactivity probe).
    pub last_rx: Instant,
    /// An ECHO_REQUEST of ours is unanswered since then.
    pub probe_sent: Option<Instant>,
    rx: Vec<u8>,
    tx: Vec<u8>,
    xid: u32,
    /// The stream could not be cut into messages any more; it closes.
    unframeable: Option<OfpError>,
}

impl Conn {
    /// A connection over `stream`, which must be non-blocking.
    pub fn new(stream: TcpStream, peer: SocketAddr, origin: Origin, connecting: bool) -> Conn {
        let _ = stream.set_nodelay(true);
        Conn {
            stream,
            peer,
            origin,
            connecting,
            ready: false,
            role: Role::Equal,
            async_on: origin != Origin::Passive,
            last_rx: Instant::now(),
            probe_sent: None,
            rx: Vec::new(),
            tx: Vec::new(),
            xid: 0,
            unframeable: None,
        }
    }

    /// Whether this peer gets asynchronous messages (PACKET_IN, FLOW_REMOVED,
    /// PORT_STATUS): a slave gets only PORT_STATUS, as in the spec's default.
    pub fn wants_async(&self, port_status: bool) -> bool {
        self.ready && self.async_on && (port_status || self.role != Role::Slave)
    }

    /// Whether a pending connect finished: `Ok(true)` connected, `Ok(false)` not yet.
    pub fn check_connected(&mut self) -> Result<bool, Closed> {
        if let Ok(Some(e)) | Err(e) = self.stream.take_error() {
            return Err(e.into());
        }
        match self.stream.peer_addr() {
            Ok(_) => {
                self.connecting = false;
                Ok(true)
            }
            Err(e) if e.kind() == ErrorKind::NotConnected => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// Queues `msg` with transaction id `xid`.
    pub fn send_xid(&mut self, xid: u32, msg: &Message) {
        match msg.encode(xid) {
            Ok(b) => self.tx.extend_from_slice(&b),
            // Only multipart replies can be too long, and those are split before this.
            Err(e) => crate::stats::emit_err(format_args!("onvm mgr: openflow: not sent to {}: {e}\n", self.peer)),
        }
    }

    /// Queues `msg` with a fresh transaction id of ours (asynchronous messages).
    pub fn send(&mut self, msg: &Message) {
        self.xid = self.xid.wrapping_add(1);
        self.send_xid(self.xid, msg);
    }

    /// Queues raw bytes (an ERROR built from the offending message).
    pub fn send_bytes(&mut self, b: &[u8]) {
        self.tx.extend_from_slice(b);
    }

    /// The next whole message, reading what the kernel has when none is buffered.
    pub fn next(&mut self) -> Input {
        if let Some(e) = &self.unframeable {
            return Input::Closed(Closed::Unframeable(e.clone()));
        }
        loop {
            match frame_len(&self.rx) {
                Ok(Some(n)) => {
                    let bytes: Vec<u8> = self.rx.drain(..n).collect();
                    let decoded = Message::decode(&bytes);
                    return Input::Msg(bytes, Box::new(decoded));
                }
                Ok(None) => {}
                // A length below the header's own: nothing after it can be framed. The
                // peer gets the ERROR for it, then the connection closes.
                Err(e) => {
                    let head = self.rx[..onvm_openflow::HEADER_LEN].to_vec();
                    self.unframeable = Some(e.clone());
                    return Input::Msg(head, Box::new(Err(e)));
                }
            }
            let mut chunk = [0u8; 16 * 1024];
            match self.stream.read(&mut chunk) {
                Ok(0) => return Input::Closed(Closed::ByPeer),
                Ok(n) => {
                    self.last_rx = Instant::now();
                    self.probe_sent = None;
                    self.rx.extend_from_slice(&chunk[..n]);
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => return Input::Idle,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Input::Closed(e.into()),
            }
        }
    }

    /// Writes what is queued, as far as the kernel takes it.
    pub fn flush(&mut self) -> Result<(), Closed> {
        while !self.tx.is_empty() {
            match self.stream.write(&self.tx) {
                Ok(0) => return Err(Closed::WhileWriting),
                Ok(n) => {
                    self.tx.drain(..n);
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(e.into()),
            }
        }
        if self.tx.len() > MAX_QUEUED {
            return Err(Closed::Stuck(self.tx.len()));
        }
        Ok(())
    }
}
