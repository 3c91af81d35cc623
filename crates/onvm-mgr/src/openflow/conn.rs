//! One OpenFlow connection: a non-blocking TCP stream, plain or TLS, cut into messages.
//!
//! The manager's thread must never wait on a controller, so the stream is polled from
//! the control tick: reads take what the kernel has, writes queue what does not fit
//! and go on at the next tick. A controller that stops reading while the switch has
//! more than [`MAX_QUEUED`] bytes for it is cut off rather than letting the queue grow.
//!
//! Over TLS (`ssl:`, `pssl:`) the same holds: rustls only ever gets the bytes the
//! kernel has (`read_tls`) and hands back records for the kernel to take
//! (`write_tls`), so the handshake moves on at each tick as its messages come and go,
//! and the queue of OpenFlow bytes ([`MAX_QUEUED`]) waits until it is done.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use onvm_openflow::{AsyncConfig, Message, OfpError, RequestAssembler, Role, frame_len};
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
    /// Connected (or dialled) this long ago and no HELLO exchanged yet (a peer that
    /// never speaks, or never finishes its TLS handshake): its slot goes to others.
    #[error("no HELLO within {0:?}")]
    NoHello(Duration),
    /// The TLS handshake failed (a certificate refused, a peer that does not speak
    /// TLS), or a record did not decrypt.
    #[error("TLS: {0}")]
    Tls(#[from] rustls::Error),
}

/// The byte stream under the messages.
#[derive(Debug)]
enum Link {
    Tcp(TcpStream),
    /// TLS over the TCP stream: rustls holds the records both ways.
    Tls(TcpStream, Box<rustls::Connection>),
}

/// What one read from the link brought.
enum Fill {
    /// Plain bytes (TLS decrypted) in the buffer.
    Got(usize),
    /// Nothing for now (a TLS record may be half here).
    Idle,
    Closed(Closed),
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

/// A TCP or TLS connection to a controller or tool.
#[derive(Debug)]
pub struct Conn {
    link: Link,
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
    /// Which asynchronous messages it wants, by reason and role (SET_ASYNC; the
    /// spec's defaults until then).
    pub async_config: AsyncConfig,
    /// Multipart requests split with REQ_MORE, until their last part.
    pub parts: RequestAssembler,
    /// Last time anything came in (for the inactivity probe).
    pub last_rx: Instant,
    /// When it was accepted or dialled.
    pub opened: Instant,
    /// An ECHO_REQUEST of ours is unanswered since then.
    pub probe_sent: Option<Instant>,
    rx: Vec<u8>,
    tx: Vec<u8>,
    xid: u32,
    /// The stream could not be cut into messages any more; it closes.
    unframeable: Option<OfpError>,
}

impl Conn {
    /// A connection over `stream`, which must be non-blocking; with `tls`, a TLS
    /// session over it (the client or server side, whose handshake starts at once).
    pub fn new(
        stream: TcpStream,
        tls: Option<rustls::Connection>,
        peer: SocketAddr,
        origin: Origin,
        connecting: bool,
    ) -> Conn {
        let _ = stream.set_nodelay(true);
        Conn {
            link: match tls {
                None => Link::Tcp(stream),
                Some(t) => Link::Tls(stream, Box::new(t)),
            },
            peer,
            origin,
            connecting,
            ready: false,
            role: Role::Equal,
            async_on: origin != Origin::Passive,
            async_config: AsyncConfig::default(),
            parts: RequestAssembler::default(),
            last_rx: Instant::now(),
            opened: Instant::now(),
            probe_sent: None,
            rx: Vec::new(),
            tx: Vec::new(),
            xid: 0,
            unframeable: None,
        }
    }

    /// Whether this peer gets an asynchronous message of type `ty` (PACKET_IN,
    /// FLOW_REMOVED, PORT_STATUS) sent for `reason` (`None`: for some reason), as its
    /// [`AsyncConfig`] says for its role: by default a slave gets only PORT_STATUS.
    pub fn wants_async(&self, ty: u8, reason: Option<u8>) -> bool {
        let slave = self.role == Role::Slave;
        self.ready
            && self.async_on
            && match reason {
                Some(r) => self.async_config.wants(ty, r, slave),
                None => (0..32).any(|r| self.async_config.wants(ty, r, slave)),
            }
    }

    fn tcp(&self) -> &TcpStream {
        match &self.link {
            Link::Tcp(s) | Link::Tls(s, _) => s,
        }
    }

    /// Whether a pending connect finished: `Ok(true)` connected, `Ok(false)` not yet.
    pub fn check_connected(&mut self) -> Result<bool, Closed> {
        if let Ok(Some(e)) | Err(e) = self.tcp().take_error() {
            return Err(e.into());
        }
        match self.tcp().peer_addr() {
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
            match self.fill(&mut chunk) {
                Fill::Got(n) => {
                    self.last_rx = Instant::now();
                    self.probe_sent = None;
                    self.rx.extend_from_slice(&chunk[..n]);
                }
                Fill::Idle => return Input::Idle,
                Fill::Closed(why) => return Input::Closed(why),
            }
        }
    }

    /// Reads what the kernel has into `chunk`, through TLS when it is on.
    fn fill(&mut self, chunk: &mut [u8]) -> Fill {
        let io = |e: std::io::Error| match e.kind() {
            ErrorKind::WouldBlock => Fill::Idle,
            _ => Fill::Closed(e.into()),
        };
        match &mut self.link {
            Link::Tcp(s) => loop {
                match s.read(chunk) {
                    Ok(0) => return Fill::Closed(Closed::ByPeer),
                    Ok(n) => return Fill::Got(n),
                    Err(e) if e.kind() == ErrorKind::Interrupted => {}
                    Err(e) => return io(e),
                }
            },
            Link::Tls(s, tls) => loop {
                // Plaintext already decrypted first; `Ok(0)` is the peer's close_notify.
                match tls.reader().read(chunk) {
                    Ok(0) => return Fill::Closed(Closed::ByPeer),
                    Ok(n) => return Fill::Got(n),
                    Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                    Err(e) => return io(e),
                }
                match tls.read_tls(s) {
                    Ok(0) => return Fill::Closed(Closed::ByPeer),
                    Ok(_) => {
                        // A refused certificate, or bytes that are not TLS. rustls has
                        // queued the alert that says so; the close flushes it.
                        if let Err(e) = tls.process_new_packets() {
                            return Fill::Closed(e.into());
                        }
                    }
                    Err(e) if e.kind() == ErrorKind::Interrupted => {}
                    Err(e) => return io(e),
                }
            },
        }
    }

    /// Writes what is queued, as far as the kernel takes it. Over TLS, rustls's own
    /// records (handshake, alerts) go first; queued messages are encrypted once the
    /// handshake is done and only as fast as the records leave, so that they wait in
    /// `tx`, where [`MAX_QUEUED`] counts them.
    pub fn flush(&mut self) -> Result<(), Closed> {
        match &mut self.link {
            Link::Tcp(s) => {
                while !self.tx.is_empty() {
                    match s.write(&self.tx) {
                        Ok(0) => return Err(Closed::WhileWriting),
                        Ok(n) => {
                            self.tx.drain(..n);
                        }
                        Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                        Err(e) if e.kind() == ErrorKind::Interrupted => {}
                        Err(e) => return Err(e.into()),
                    }
                }
            }
            Link::Tls(s, tls) => 'records: loop {
                while tls.wants_write() {
                    match tls.write_tls(s) {
                        Ok(0) => return Err(Closed::WhileWriting),
                        Ok(_) => {}
                        Err(e) if e.kind() == ErrorKind::WouldBlock => break 'records,
                        Err(e) if e.kind() == ErrorKind::Interrupted => {}
                        Err(e) => return Err(e.into()),
                    }
                }
                if self.tx.is_empty() || tls.is_handshaking() {
                    break;
                }
                // Encrypts into rustls's buffer (never blocks); 0 when that is full.
                match tls.writer().write(&self.tx)? {
                    0 => break,
                    n => {
                        self.tx.drain(..n);
                    }
                }
            },
        }
        if self.tx.len() > MAX_QUEUED {
            return Err(Closed::Stuck(self.tx.len()));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::net::TcpListener;

    use onvm_openflow::{Hello, VersionBitmap};

    use super::super::tls::TlsConfig;
    use super::super::tls::testing::Ca;
    use super::*;

    /// A client and a server connection over loopback: `client` and `server` say
    /// whether each side speaks TLS, and with which config.
    fn pair(client: Option<&TlsConfig>, server: Option<&TlsConfig>) -> (Conn, Conn) {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        let c = TcpStream::connect(addr).unwrap();
        let (s, peer) = l.accept().unwrap();
        c.set_nonblocking(true).unwrap();
        s.set_nonblocking(true).unwrap();
        let ct = client.map(|t| rustls::Connection::Client(t.client(addr).unwrap()));
        let st = server.map(|t| rustls::Connection::Server(t.server().unwrap()));
        (
            Conn::new(c, ct, addr, Origin::Active(0), false),
            Conn::new(s, st, peer, Origin::Passive, false),
        )
    }

    /// Flushes and reads both sides until one has a message or closes; which one.
    fn pump(a: &mut Conn, b: &mut Conn) -> (Input, Input) {
        for _ in 0..2000 {
            let fa = a.flush();
            let fb = b.flush();
            let (ia, ib) = (a.next(), b.next());
            if let (Err(e), _) | (_, Err(e)) = (fa, fb) {
                return (Input::Closed(e), Input::Idle);
            }
            if !matches!((&ia, &ib), (Input::Idle, Input::Idle)) {
                return (ia, ib);
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        panic!("neither side got anything")
    }

    fn hello() -> Message {
        Message::Hello(Hello::ours(VersionBitmap::of(&[4])))
    }

    #[test]
    fn messages_cross_mutual_tls_both_ways() {
        let dir = tempfile::tempdir().unwrap();
        let ca = Ca::new("OpenFlow CA");
        let (switch, controller) = (ca.config(dir.path(), "switch"), ca.config(dir.path(), "controller"));
        let (mut c, mut s) = pair(Some(&switch), Some(&controller));
        // Queued before the handshake: it waits in `tx` and goes once it is done.
        c.send(&hello());
        match pump(&mut c, &mut s) {
            (Input::Idle, Input::Msg(_, m)) => assert!(matches!(*m, Ok((1, Message::Hello(_))))),
            _ => panic!("the server did not get the HELLO"),
        }
        // More than rustls buffers and the socket takes at once: it goes over ticks.
        for xid in 0..20 {
            s.send_xid(xid, &Message::EchoRequest(vec![xid as u8; 60_000]));
        }
        for xid in 0..20 {
            match pump(&mut c, &mut s) {
                (Input::Msg(_, m), Input::Idle) => assert!(
                    matches!(*m, Ok((x, Message::EchoRequest(ref d))) if x == xid && d.len() == 60_000 && d[0] == xid as u8)
                ),
                _ => panic!("the client did not get ECHO_REQUEST {xid}"),
            }
        }
    }

    /// Whichever side notices first closes with the TLS reason.
    fn refused(a: &mut Conn, b: &mut Conn) -> String {
        a.send(&hello());
        match pump(a, b) {
            (Input::Closed(why), _) | (_, Input::Closed(why)) => why.to_string(),
            _ => panic!("a message crossed"),
        }
    }

    #[test]
    fn a_certificate_from_another_ca_is_refused_both_ways() {
        let dir = tempfile::tempdir().unwrap();
        let (ours, theirs) = (Ca::new("ours"), Ca::new("theirs"));
        let (switch, stranger) = (ours.config(dir.path(), "switch"), theirs.config(dir.path(), "stranger"));
        // A stranger dialling our pssl: listener.
        let (mut c, mut s) = pair(Some(&stranger), Some(&switch));
        let why = refused(&mut c, &mut s);
        assert!(why.starts_with("TLS: ") && why.contains("UnknownIssuer"), "{why}");
        // Our ssl: connection to a controller whose certificate our CA did not sign.
        let (mut c, mut s) = pair(Some(&switch), Some(&stranger));
        let why = refused(&mut c, &mut s);
        assert!(why.starts_with("TLS: ") && why.contains("UnknownIssuer"), "{why}");
    }

    #[test]
    fn plain_openflow_to_a_tls_listener_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let switch = Ca::new("ours").config(dir.path(), "switch");
        let (mut c, mut s) = pair(None, Some(&switch));
        let why = refused(&mut c, &mut s);
        assert!(why.starts_with("TLS: "), "{why}");
    }
}
