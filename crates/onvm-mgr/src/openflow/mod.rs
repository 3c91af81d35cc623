//! The manager as an OpenFlow 1.3 switch: the agent that lets controllers program the
//! one flow table.
//!
//! * **Connections**: active ones to each `--controller tcp:HOST:PORT` (redialled with
//!   a backoff of 1 s doubling to 8 s), and a passive listener
//!   (`--openflow-listen ptcp:PORT[:IP]`) for `ovs-ofctl` and controllers that dial in.
//!   Everything is non-blocking and polled from the manager's control tick (every
//!   millisecond under load), so a slow or dead controller never stalls the switch.
//!   `ssl:HOST:PORT` and `pssl:PORT[:IP]` are the same over mutual TLS ([`tls`]); the
//!   handshake is polled like the rest, and a failed one is an event naming the peer.
//! * **Ports**: physical port `p` is OpenFlow port `p + 1`; every service is a
//!   logical port `0x1000 + id` named after it (PORT_DESC, `ovs-ofctl show`), up
//!   while it has a running instance. A change is announced with PORT_STATUS.
//! * **Table**: FLOW_MOD edits the same [`onvm_proto::flow::FlowTable`] that config
//!   chains fill, with its tables, goto, counters and timeouts, and ordered actions
//!   (outputs, copies, set-fields) that the manager carries out ([`translate`] says
//!   what cannot be expressed, and is refused with the spec's error).
//! * **PACKET_IN**: a rule's CONTROLLER action sends the packet's first `max_len`
//!   bytes and keeps the packet in a switch buffer (up to [`N_BUFFERS`], for
//!   [`BUFFER_TIMEOUT`]) that a later PACKET_OUT or FLOW_MOD names; `max_len =
//!   0xffff` (or full buffers) sends the whole packet instead. Without a controller
//!   the packet is dropped as `no-controller`.
//! * **PACKET_OUT** runs its actions on a buffered or carried packet: set-fields, and
//!   outputs to ports, services, the table (TABLE), IN_PORT, or every physical port
//!   (FLOOD/ALL).
//! * **Fail modes**: `secure` (default) keeps the table as controllers left it when
//!   the last one goes; `standalone` puts the config's rules back, so the manager's
//!   own chains carry traffic until a controller returns. Only `--controller`
//!   connections count: `ovs-ofctl` sessions come and go.
//! * **Service connections**: a connection to the listener gets replies but no
//!   asynchronous messages (PACKET_IN, FLOW_REMOVED, PORT_STATUS) until it sends a
//!   ROLE_REQUEST, as Open vSwitch treats `ovs-ofctl`: a tool that did not ask for one
//!   fails on it. A controller that dials in sends a ROLE_REQUEST (or is configured
//!   with `--controller` instead).
//! * **Roles**: EQUAL by default; a MASTER request makes every other master a slave;
//!   slaves may not change the table or send packets (IS_SLAVE) and get no PACKET_IN.
//! * **Async configs**: each connection keeps its SET_ASYNC reason masks (the spec's
//!   defaults until then: master/equal get PACKET_IN for NO_MATCH and ACTION and every
//!   PORT_STATUS and FLOW_REMOVED; a slave only PORT_STATUS), answers GET_ASYNC with
//!   them, and gets a PACKET_IN / FLOW_REMOVED / PORT_STATUS only where its mask for
//!   its role has the reason's bit. A tool's connection that sends SET_ASYNC gets what
//!   it asked for, as after a ROLE_REQUEST.
//! * **Multipart**: requests split with REQ_MORE are put back together per xid before
//!   they are answered (bounded per connection: MULTIPART_BUFFER_OVERFLOW); flow,
//!   port-stats and port-desc replies longer than one message go in parts with
//!   REPLY_MORE.

mod conn;
mod groups;
mod handle;
mod options;
mod reports;
mod tls;
pub mod translate;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_async;
#[cfg(test)]
mod tests_groups;

use std::collections::HashMap;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::{Duration, Instant};

use onvm_openflow::{
    self as of, FlowRemoved, Hello, Message, OFP_NO_BUFFER, OFP_VERSION, PacketIn, SwitchConfig, VersionBitmap, ofpff,
    ofpr,
};
use onvm_proto::flow::{Expiry, PortNo, Rule};
use onvm_shm::Buf;

use crate::control_plane::{self, ControlPlane, Fate};
pub use crate::control_plane::{Payload, PortCounters, PortView, Switch};
use conn::{Closed, Conn, Input, Origin};
pub(crate) use handle::add_flow;
pub use options::{Endpoint, FailMode, OpenFlowOptions, OptionError, Transport, parse_controller, parse_listen};
pub use tls::{TlsConfig, TlsError};
pub use translate::Out;
use translate::{from_match, of_port};

/// Packets kept for the controller at most (FEATURES_REPLY's `n_buffers`).
pub const N_BUFFERS: usize = 256;
/// A buffered packet no PACKET_OUT or FLOW_MOD claimed is dropped after this long.
pub const BUFFER_TIMEOUT: Duration = Duration::from_secs(5);
/// First wait before redialling a controller; doubles up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_secs(1);
const MAX_BACKOFF: Duration = Duration::from_secs(8);
/// A peer silent this long gets an ECHO_REQUEST; silent twice as long, it is dropped.
const PROBE_AFTER: Duration = Duration::from_secs(5);
/// How long a connection may take to exchange HELLOs (its TLS handshake included)
/// before it is closed: one that never does would hold one of [`MAX_CONNS`] for ever.
const HELLO_WITHIN: Duration = Duration::from_secs(10);
/// Connections served at once; more to the listener are closed as they come.
const MAX_CONNS: usize = 64;
/// Messages taken from one connection per tick, so a flood of them cannot stall packets.
const MSGS_PER_TICK: usize = 256;
/// Flow stats per MULTIPART_REPLY part (each well under 1 KB, the part under 64 KB).
const FLOWS_PER_PART: usize = 64;
/// Port stats (112 bytes each) or descriptions (64) per MULTIPART_REPLY part: under
/// 64 KB. Today's ports (physical ones and 32 services) fit one part.
const PORTS_PER_PART: usize = 512;
/// How often the port list is compared for PORT_STATUS.
const PORT_CHECK_EVERY: Duration = Duration::from_millis(20);

#[derive(Debug)]
struct Held {
    buf: Buf,
    in_port: PortNo,
    at: Instant,
}

/// One `--controller`: when to dial it next.
#[derive(Debug)]
struct Dial {
    addr: SocketAddr,
    transport: Transport,
    at: Instant,
    backoff: Duration,
    /// A connection to it exists (connecting or up).
    live: bool,
}

impl Dial {
    /// The dial failed or the connection went: try again after the backoff, which
    /// doubles for next time. Returns the wait.
    fn retry_later(&mut self, now: Instant) -> Duration {
        let wait = self.backoff;
        self.live = false;
        self.at = now + wait;
        self.backoff = (wait * 2).min(MAX_BACKOFF);
        wait
    }
}

/// The OpenFlow agent.
#[derive(Debug)]
pub struct Agent {
    opts: OpenFlowOptions,
    listener: Option<TcpListener>,
    conns: Vec<Conn>,
    dials: Vec<Dial>,
    held: HashMap<u32, Held>,
    next_buffer: u32,
    config: SwitchConfig,
    generation_id: Option<u64>,
    ports: Vec<PortView>,
    next_port_check: Instant,
    /// A `--controller` connection was up at the last poll.
    had_controller: bool,
}

impl Agent {
    /// An agent with these options; binds the listener (an error names the address).
    pub fn new(opts: OpenFlowOptions) -> std::io::Result<Agent> {
        if opts.uses_tls() && opts.tls.is_none() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "ssl: and pssl: need a private key, a certificate and a CA certificate",
            ));
        }
        let listener = match opts.listen {
            Some(a) => {
                let l = TcpListener::bind(a)
                    .map_err(|e| std::io::Error::new(e.kind(), format!("OpenFlow listener {a}: {e}")))?;
                l.set_nonblocking(true)?;
                Some(l)
            }
            None => None,
        };
        let now = Instant::now();
        let dials = opts
            .controllers
            .iter()
            .map(|c| Dial {
                addr: c.addr,
                transport: c.transport,
                at: now,
                backoff: FIRST_BACKOFF,
                live: false,
            })
            .collect();
        Ok(Agent {
            opts,
            listener,
            conns: Vec::new(),
            dials,
            held: HashMap::new(),
            next_buffer: 0,
            config: SwitchConfig {
                flags: 0,
                miss_send_len: 128,
            },
            generation_id: None,
            ports: Vec::new(),
            next_port_check: now,
            had_controller: false,
        })
    }

    /// Where it listens (the real port when 0 was asked for).
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.listener.as_ref().and_then(|l| l.local_addr().ok())
    }

    /// Whether a controller would get a PACKET_IN now.
    pub fn has_controller(&self) -> bool {
        self.conns.iter().any(|c| c.wants_async(of::ofpt::PACKET_IN, None))
    }

    /// Whether a controller would get a PACKET_IN sent for `reason` ([`ofpr`]).
    fn wants_packet_in(&self, reason: u8) -> bool {
        self.conns
            .iter()
            .any(|c| c.wants_async(of::ofpt::PACKET_IN, Some(reason)))
    }

    /// Sends an asynchronous message, sent for `reason`, to every connection whose
    /// role and async config ask for it.
    fn async_send(&mut self, msg: &Message, reason: u8) {
        let ty = msg.ty();
        for c in self.conns.iter_mut().filter(|c| c.wants_async(ty, Some(reason))) {
            c.send(msg);
        }
    }

    /// A rule sent a packet (whose bytes are `data`) to the controller. Returns the
    /// buffer when it was sent whole (the caller frees it), `None` when the agent keeps it.
    pub fn packet_in(&mut self, p: control_plane::PacketIn, data: &[u8]) -> Option<Buf> {
        let reason = packet_in_reason(&p);
        let buffered = p.max_len != of::ofpcml::NO_BUFFER && self.held.len() < N_BUFFERS;
        let total_len = data.len().min(usize::from(u16::MAX)) as u16;
        let (buffer_id, data, kept) = if buffered {
            let id = self.fresh_buffer_id();
            self.held.insert(
                id,
                Held {
                    buf: p.buf,
                    in_port: p.in_port,
                    at: Instant::now(),
                },
            );
            (id, &data[..data.len().min(usize::from(p.max_len))], None)
        } else {
            (OFP_NO_BUFFER, data, Some(p.buf))
        };
        let msg = Message::PacketIn(PacketIn {
            buffer_id,
            total_len,
            reason,
            table_id: p.table_id,
            cookie: p.cookie,
            match_: of::Match {
                in_port: Some(of_port(p.in_port)),
                ..of::Match::default()
            },
            data: data.to_vec(),
        });
        self.async_send(&msg, reason);
        kept
    }

    fn fresh_buffer_id(&mut self) -> u32 {
        loop {
            self.next_buffer = self.next_buffer.wrapping_add(1);
            if self.next_buffer != OFP_NO_BUFFER && !self.held.contains_key(&self.next_buffer) {
                return self.next_buffer;
            }
        }
    }

    /// A rule left the table (`reason`: [`of::ofprr`]); tells controllers that asked.
    pub fn flow_removed(&mut self, rule: &Rule, reason: u8, now: Duration) {
        if rule.flags & ofpff::SEND_FLOW_REM == 0 {
            return;
        }
        let age = now.saturating_sub(rule.installed);
        let msg = Message::FlowRemoved(FlowRemoved {
            cookie: rule.cookie,
            priority: rule.priority,
            reason,
            table_id: rule.table,
            duration_sec: age.as_secs() as u32,
            duration_nsec: age.subsec_nanos(),
            idle_timeout: rule.idle_timeout,
            hard_timeout: rule.hard_timeout,
            packet_count: rule.packets,
            byte_count: rule.bytes,
            match_: from_match(&rule.matcher),
        });
        self.async_send(&msg, reason);
    }

    /// Every buffered packet, for the manager to free at shutdown.
    pub fn take_held(&mut self) -> Vec<Buf> {
        self.held.drain().map(|(_, h)| h.buf).collect()
    }

    /// Accept, dial, read and answer, write; expire buffers; announce port changes.
    /// Returns whether a message came in: a controller in a request-reply exchange
    /// (`ovs-ofctl add-flows` waits for each answer) sends the next one at once, so the
    /// manager must not fall asleep for a millisecond (`scripts/bench-openflow.sh`:
    /// 867 rules/s with that sleep, 24 190 without; Open vSwitch 13 296).
    pub fn poll(&mut self, sw: &mut dyn Switch) -> bool {
        let mut busy = false;
        let now = Instant::now();
        self.accept(sw);
        self.dial(now, sw);
        let mut k = 0;
        while k < self.conns.len() {
            match self.serve(k, now, sw) {
                Ok(got) => {
                    busy |= got;
                    k += 1;
                }
                Err(why) => {
                    let mut c = self.conns.swap_remove(k);
                    // Best effort: an ERROR that explains the close goes out first.
                    let _ = c.flush();
                    if let Origin::Active(i) = c.origin {
                        let wait = self.dials[i].retry_later(now);
                        sw.event(format!(
                            "openflow: controller {} gone ({why}); redialling in {wait:?}",
                            c.peer
                        ));
                    } else if c.ready {
                        sw.event(format!("openflow: {} disconnected ({why})", c.peer));
                    } else if matches!(why, Closed::Tls(_) | Closed::NoHello(_)) {
                        sw.event(format!("openflow: {} refused ({why})", c.peer));
                    }
                }
            }
        }
        for (_, h) in self.held.extract_if(|_, h| now.duration_since(h.at) >= BUFFER_TIMEOUT) {
            sw.release(h.buf, true);
        }
        if now >= self.next_port_check {
            self.next_port_check = now + PORT_CHECK_EVERY;
            self.announce_ports(sw);
        }
        let controller = self
            .conns
            .iter()
            .any(|c| c.ready && matches!(c.origin, Origin::Active(_)));
        if self.had_controller && !controller && self.opts.fail_mode == FailMode::Standalone {
            sw.restore_config_rules();
            sw.event("openflow: no controller left; fail-standalone: the config's rules are back".into());
        }
        self.had_controller = controller;
        busy
    }

    fn accept(&mut self, sw: &mut dyn Switch) {
        let Some(l) = &self.listener else { return };
        loop {
            match l.accept() {
                Ok((s, peer)) => {
                    if self.conns.len() >= MAX_CONNS {
                        // Closed at once: a flood of connections must not slow the switch.
                        sw.event(format!("openflow: {peer} refused: {MAX_CONNS} connections open"));
                        continue;
                    }
                    if s.set_nonblocking(true).is_err() {
                        continue;
                    }
                    let tls = match (self.opts.listen_transport, &self.opts.tls) {
                        (Transport::Tcp, _) => None,
                        (Transport::Ssl, Some(t)) => match t.server() {
                            Ok(t) => Some(rustls::Connection::Server(t)),
                            Err(e) => {
                                sw.event(format!("openflow: {peer} refused: TLS: {e}"));
                                continue;
                            }
                        },
                        // `new` refused options with pssl: and no TLS config.
                        (Transport::Ssl, None) => continue,
                    };
                    let mut c = Conn::new(s, tls, peer, Origin::Passive, false);
                    c.send(&hello());
                    self.conns.push(c);
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(e) => {
                    sw.event(format!("openflow: accept failed: {e}"));
                    break;
                }
            }
        }
    }

    fn dial(&mut self, now: Instant, sw: &mut dyn Switch) {
        for (i, d) in self.dials.iter_mut().enumerate() {
            if d.live || now < d.at {
                continue;
            }
            let tls = match (d.transport, &self.opts.tls) {
                (Transport::Tcp, _) => Ok(None),
                (Transport::Ssl, Some(t)) => t
                    .client(d.addr)
                    .map(|t| Some(rustls::Connection::Client(t)))
                    .map_err(|e| std::io::Error::other(format!("TLS: {e}"))),
                (Transport::Ssl, None) => Err(std::io::Error::other("TLS: no key, certificate and CA")),
            };
            match tls.and_then(|tls| connect_nonblocking(d.addr).map(|s| (s, tls))) {
                Ok((s, tls)) => {
                    d.live = true;
                    self.conns.push(Conn::new(s, tls, d.addr, Origin::Active(i), true));
                }
                Err(e) => {
                    let wait = d.retry_later(now);
                    sw.event(format!("openflow: cannot dial {}: {e}; redialling in {wait:?}", d.addr));
                }
            }
        }
    }

    /// One connection's turn (whether a message came); an error closes it.
    fn serve(&mut self, k: usize, now: Instant, sw: &mut dyn Switch) -> Result<bool, Closed> {
        if self.conns[k].connecting {
            if !self.conns[k].check_connected()? {
                return Ok(false);
            }
            self.conns[k].send(&hello());
        }
        let mut got = false;
        for _ in 0..MSGS_PER_TICK {
            match self.conns[k].next() {
                Input::Idle => break,
                Input::Closed(why) => return Err(why),
                Input::Msg(bytes, decoded) => {
                    got = true;
                    self.handle(k, &bytes, *decoded, sw)?;
                }
            }
        }
        let c = &mut self.conns[k];
        if !c.ready && now.duration_since(c.opened) >= HELLO_WITHIN {
            return Err(Closed::NoHello(now.duration_since(c.opened)));
        }
        if c.ready {
            let quiet = now.duration_since(c.last_rx);
            match c.probe_sent {
                Some(t) if now.duration_since(t) >= PROBE_AFTER => {
                    return Err(Closed::NoEchoReply(quiet));
                }
                None if quiet >= PROBE_AFTER => {
                    c.send(&Message::EchoRequest(Vec::new()));
                    c.probe_sent = Some(now);
                }
                _ => {}
            }
        }
        c.flush().map(|()| got)
    }
}

/// The agent is the manager's OpenFlow control plane.
impl ControlPlane for Agent {
    fn poll(&mut self, sw: &mut dyn Switch) -> bool {
        Agent::poll(self, sw)
    }

    fn takes_packets(&self) -> bool {
        self.has_controller()
    }

    fn packet_in(&mut self, p: control_plane::PacketIn, data: &[u8]) -> Fate {
        if !self.wants_packet_in(packet_in_reason(&p)) {
            return Fate::Refused(p.buf);
        }
        match Agent::packet_in(self, p, data) {
            Some(whole) => Fate::Sent(whole),
            None => Fate::Kept,
        }
    }

    fn flow_removed(&mut self, rule: &Rule, why: Expiry, now: Duration) {
        let reason = match why {
            Expiry::Idle => of::ofprr::IDLE_TIMEOUT,
            Expiry::Hard => of::ofprr::HARD_TIMEOUT,
        };
        Agent::flow_removed(self, rule, reason, now);
    }

    fn take_kept(&mut self) -> Vec<Buf> {
        self.take_held()
    }
}

/// Why a rule sends a packet to the controller ([`ofpr`]).
fn packet_in_reason(p: &control_plane::PacketIn) -> u8 {
    match (p.invalid_ttl, p.table_miss) {
        (true, _) => ofpr::INVALID_TTL,
        (false, true) => ofpr::NO_MATCH,
        (false, false) => ofpr::ACTION,
    }
}

fn hello() -> Message {
    Message::Hello(Hello::ours(VersionBitmap::of(&[OFP_VERSION])))
}

/// A TCP connect that returns at once; [`Conn::check_connected`] sees it finish.
fn connect_nonblocking(addr: SocketAddr) -> std::io::Result<TcpStream> {
    let s = socket2::Socket::new(socket2::Domain::for_address(addr), socket2::Type::STREAM, None)?;
    s.set_nonblocking(true)?;
    match s.connect(&addr.into()) {
        Ok(()) => {}
        // What a non-blocking connect answers while the handshake goes on.
        Err(e) if e.raw_os_error() == Some(rustix::io::Errno::INPROGRESS.raw_os_error()) => {}
        Err(e) => return Err(e),
    }
    Ok(s.into())
}
