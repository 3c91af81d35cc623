//! The manager as an OpenFlow 1.3 switch: the agent that lets controllers program the
//! one flow table.
//!
//! * **Connections**: active ones to each `--controller tcp:HOST:PORT` (redialled with
//!   a backoff of 1 s doubling to 8 s), and a passive listener
//!   (`--openflow-listen ptcp:PORT[:IP]`) for `ovs-ofctl` and controllers that dial in.
//!   Everything is non-blocking and polled from the manager's control tick (every
//!   millisecond under load), so a slow or dead controller never stalls the switch.
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

mod conn;
mod options;
mod reports;
mod switch;
pub mod translate;

#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::{Duration, Instant};

use onvm_openflow::{
    self as of, AggregateStats, Desc, FeaturesReply, FlowMod, FlowModCommand, FlowRemoved, FlowStats, Hello, Message,
    MultipartReply, MultipartReplyBody, MultipartRequestBody, OFP_NO_BUFFER, OFP_VERSION, OFPMPF_MORE, OFPTT_ALL,
    OfpError, PacketIn, PacketOut, Role, RoleMsg, SwitchConfig, TableFeatures, TableStats, VersionBitmap, error_reply,
    negotiate, ofpbrc, ofpc, ofpet, ofpff, ofpfmfc, ofpp, ofppr, ofpr, ofprrfc,
};
use onvm_proto::flow::{DeleteFilter, N_TABLES, PortNo, Rule};
use onvm_shm::Buf;

use conn::{Conn, Input, Origin};
pub use options::{FailMode, OpenFlowOptions, parse_controller, parse_listen};
use reports::{flow_stats, port_desc, port_stats, port_status, selected};
pub use switch::{Payload, PortCounters, PortView, Switch};
pub use translate::Out;
use translate::{from_match, of_port, onvm_port, packet_out_actions, to_actions, to_match};

/// Packets kept for the controller at most (FEATURES_REPLY's `n_buffers`).
pub const N_BUFFERS: usize = 256;
/// A buffered packet no PACKET_OUT or FLOW_MOD claimed is dropped after this long.
pub const BUFFER_TIMEOUT: Duration = Duration::from_secs(5);
/// First wait before redialling a controller; doubles up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_secs(1);
const MAX_BACKOFF: Duration = Duration::from_secs(8);
/// A peer silent this long gets an ECHO_REQUEST; silent twice as long, it is dropped.
const PROBE_AFTER: Duration = Duration::from_secs(5);
/// Connections served at once; more to the listener are closed as they come.
const MAX_CONNS: usize = 64;
/// Messages taken from one connection per tick, so a flood of them cannot stall packets.
const MSGS_PER_TICK: usize = 256;
/// Flow stats per MULTIPART_REPLY part (each well under 1 KB, the part under 64 KB).
const FLOWS_PER_PART: usize = 64;
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
            .map(|&addr| Dial {
                addr,
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
        self.conns.iter().any(|c| c.wants_async(false))
    }

    fn async_send(&mut self, msg: &Message, port_status: bool) {
        for c in self.conns.iter_mut().filter(|c| c.wants_async(port_status)) {
            c.send(msg);
        }
    }

    /// A rule sent `buf` (whose bytes are `data`) to the controller. Returns the buffer
    /// when it was sent whole (the caller frees it), `None` when the agent keeps it.
    pub fn packet_in(&mut self, buf: Buf, data: &[u8], in_port: PortNo, rule: &Rule, max_len: u16) -> Option<Buf> {
        let buffered = max_len != of::ofpcml::NO_BUFFER && self.held.len() < N_BUFFERS;
        let total_len = data.len().min(usize::from(u16::MAX)) as u16;
        let (buffer_id, data, kept) = if buffered {
            let id = self.fresh_buffer_id();
            self.held.insert(
                id,
                Held {
                    buf,
                    in_port,
                    at: Instant::now(),
                },
            );
            (id, &data[..data.len().min(usize::from(max_len))], None)
        } else {
            (OFP_NO_BUFFER, data, Some(buf))
        };
        let msg = Message::PacketIn(PacketIn {
            buffer_id,
            total_len,
            reason: if rule.is_table_miss() {
                ofpr::NO_MATCH
            } else {
                ofpr::ACTION
            },
            table_id: rule.table,
            cookie: rule.cookie,
            match_: of::Match {
                in_port: Some(of_port(in_port)),
                ..of::Match::default()
            },
            data: data.to_vec(),
        });
        self.async_send(&msg, false);
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
        self.async_send(&msg, false);
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
    pub fn poll(&mut self, sw: &mut impl Switch) -> bool {
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

    fn accept(&mut self, sw: &mut impl Switch) {
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
                    let mut c = Conn::new(s, peer, Origin::Passive, false);
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

    fn dial(&mut self, now: Instant, sw: &mut impl Switch) {
        for (i, d) in self.dials.iter_mut().enumerate() {
            if d.live || now < d.at {
                continue;
            }
            match connect_nonblocking(d.addr) {
                Ok(s) => {
                    d.live = true;
                    self.conns.push(Conn::new(s, d.addr, Origin::Active(i), true));
                }
                Err(e) => {
                    let wait = d.retry_later(now);
                    sw.event(format!("openflow: cannot dial {}: {e}; redialling in {wait:?}", d.addr));
                }
            }
        }
    }

    /// One connection's turn (whether a message came); an error closes it.
    fn serve(&mut self, k: usize, now: Instant, sw: &mut impl Switch) -> Result<bool, String> {
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
        if c.ready {
            let quiet = now.duration_since(c.last_rx);
            match c.probe_sent {
                Some(t) if now.duration_since(t) >= PROBE_AFTER => {
                    return Err(format!("no answer to an echo request for {quiet:?}"));
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

    /// One message from connection `k`.
    fn handle(
        &mut self,
        k: usize,
        bytes: &[u8],
        decoded: Result<(u32, Message), OfpError>,
        sw: &mut impl Switch,
    ) -> Result<(), String> {
        let (xid, msg) = match decoded {
            Ok(m) => m,
            Err(e) => {
                self.conns[k].send_bytes(&error_reply(bytes, &e));
                // The ERROR goes out as the connection closes (see `poll`).
                if e.kind.ty == ofpet::HELLO_FAILED {
                    return Err(e.message);
                }
                return Ok(());
            }
        };
        let reply = |agent: &mut Agent, m: Message| agent.conns[k].send_xid(xid, &m);
        let refuse = |agent: &mut Agent, e: OfpError| agent.conns[k].send_bytes(&error_reply(bytes, &e));
        match msg {
            Message::Hello(h) => match negotiate(&VersionBitmap::of(&[OFP_VERSION]), &h) {
                Ok(_) => {
                    let c = &mut self.conns[k];
                    if !c.ready {
                        c.ready = true;
                        if let Origin::Active(i) = c.origin {
                            self.dials[i].backoff = FIRST_BACKOFF;
                        }
                        sw.event(format!("openflow: {} connected", self.conns[k].peer));
                    }
                }
                Err(e) => {
                    refuse(self, e.clone());
                    return Err(e.message);
                }
            },
            Message::EchoRequest(d) => reply(self, Message::EchoReply(d)),
            Message::EchoReply(_) => {}
            Message::FeaturesRequest => reply(
                self,
                Message::FeaturesReply(FeaturesReply {
                    datapath_id: self.opts.datapath_id,
                    n_buffers: N_BUFFERS as u32,
                    n_tables: N_TABLES,
                    auxiliary_id: 0,
                    capabilities: ofpc::FLOW_STATS | ofpc::TABLE_STATS | ofpc::PORT_STATS,
                    reserved: 0,
                }),
            ),
            Message::GetConfigRequest => reply(self, Message::GetConfigReply(self.config)),
            Message::SetConfig(c) => self.config = c,
            Message::BarrierRequest => reply(self, Message::BarrierReply),
            Message::RoleRequest(r) => match self.role(k, r) {
                Ok(m) => reply(self, Message::RoleReply(m)),
                Err(e) => refuse(self, e),
            },
            Message::FlowMod(f) => {
                if let Err(e) = self.slave_check(k).and_then(|()| self.flow_mod(&f, sw)) {
                    refuse(self, e);
                }
            }
            Message::PacketOut(p) => {
                if let Err(e) = self.slave_check(k).and_then(|()| self.packet_out(p, sw)) {
                    refuse(self, e);
                }
            }
            Message::MultipartRequest(m) => match self.multipart(m.body, sw) {
                Ok(parts) => {
                    for m in parts {
                        reply(self, Message::MultipartReply(m));
                    }
                }
                Err(e) => refuse(self, e),
            },
            Message::Error(e) => sw.event(format!(
                "openflow: {} reported error type {} code {}",
                self.conns[k].peer, e.ty, e.code
            )),
            other => refuse(
                self,
                OfpError::of(
                    ofpet::BAD_REQUEST,
                    ofpbrc::BAD_TYPE,
                    format!("{} is not a message a switch takes", of::type_name(other.ty())),
                ),
            ),
        }
        Ok(())
    }

    fn slave_check(&self, k: usize) -> Result<(), OfpError> {
        if self.conns[k].role == Role::Slave {
            return Err(OfpError::of(
                ofpet::BAD_REQUEST,
                ofpbrc::IS_SLAVE,
                "a slave controller may not change the switch",
            ));
        }
        Ok(())
    }

    fn role(&mut self, k: usize, r: RoleMsg) -> Result<RoleMsg, OfpError> {
        if matches!(r.role, Role::Master | Role::Slave) {
            // Generation IDs compare as a wrapping sequence (spec 6.3.6).
            if let Some(g) = self.generation_id
                && (r.generation_id.wrapping_sub(g) as i64) < 0
            {
                return Err(OfpError::of(
                    ofpet::ROLE_REQUEST_FAILED,
                    ofprrfc::STALE,
                    format!("generation id {} is older than {g}", r.generation_id),
                ));
            }
            self.generation_id = Some(r.generation_id);
        }
        if r.role == Role::Master {
            for c in self.conns.iter_mut().filter(|c| c.role == Role::Master) {
                c.role = Role::Slave;
            }
        }
        if r.role != Role::NoChange {
            self.conns[k].role = r.role;
        }
        self.conns[k].async_on = true;
        Ok(RoleMsg {
            role: self.conns[k].role,
            generation_id: self.generation_id.unwrap_or(0),
        })
    }

    fn flow_mod(&mut self, f: &FlowMod, sw: &mut impl Switch) -> Result<(), OfpError> {
        let failed = |code, m: String| OfpError::of(ofpet::FLOW_MOD_FAILED, code, m);
        let bad_table = || {
            failed(
                ofpfmfc::BAD_TABLE_ID,
                format!(
                    "table {} does not exist (this switch has tables 0..{N_TABLES})",
                    f.table_id
                ),
            )
        };
        let matcher = to_match(&f.match_)?;
        let now = sw.now();
        let cookie = (f.cookie_mask != 0).then_some((f.cookie, f.cookie_mask));
        match f.command {
            FlowModCommand::Add => {
                if f.table_id >= N_TABLES {
                    return Err(bad_table());
                }
                let actions = to_actions(&f.instructions, f.table_id)?;
                if f.flags & ofpff::CHECK_OVERLAP != 0 && sw.table().overlaps(f.table_id, f.priority, &matcher) {
                    return Err(failed(
                        ofpfmfc::OVERLAP,
                        format!("a priority-{} rule of table {} overlaps", f.priority, f.table_id),
                    ));
                }
                let mut rule = Rule::new(f.priority, matcher, actions);
                rule.table = f.table_id;
                rule.cookie = f.cookie;
                rule.idle_timeout = f.idle_timeout;
                rule.hard_timeout = f.hard_timeout;
                rule.flags = f.flags;
                let (id, old) = sw.table().add(rule, now);
                // An identical rule's counters carry over unless asked otherwise (spec 6.4).
                if let Some(old) = old
                    && f.flags & ofpff::RESET_COUNTS == 0
                {
                    sw.table().record(id, old.packets, old.bytes, now);
                }
            }
            FlowModCommand::Modify | FlowModCommand::ModifyStrict => {
                if f.table_id >= N_TABLES {
                    return Err(bad_table());
                }
                let actions = to_actions(&f.instructions, f.table_id)?;
                let filter = DeleteFilter {
                    table: Some(f.table_id),
                    cookie,
                    out_port: None,
                };
                let strict = (f.command == FlowModCommand::ModifyStrict).then_some(f.priority);
                sw.table().modify(
                    &matcher,
                    strict,
                    &filter,
                    &actions,
                    f.flags,
                    f.flags & ofpff::RESET_COUNTS != 0,
                );
            }
            FlowModCommand::Delete | FlowModCommand::DeleteStrict => {
                let table = match f.table_id {
                    OFPTT_ALL => None,
                    t if t < N_TABLES => Some(t),
                    _ => return Err(bad_table()),
                };
                let out_port = match f.out_port {
                    ofpp::ANY => None,
                    ofpp::IN_PORT => Some(PortNo::IN_PORT),
                    // A port that does not exist is output to by no rule.
                    n => Some(onvm_port(n).unwrap_or(PortNo(u32::MAX))),
                };
                let filter = DeleteFilter {
                    table,
                    cookie,
                    out_port,
                };
                let gone = if f.command == FlowModCommand::DeleteStrict {
                    sw.table()
                        .delete_strict(f.priority, &matcher, &filter)
                        .into_iter()
                        .collect()
                } else {
                    sw.table().delete(&matcher, &filter)
                };
                for r in &gone {
                    self.flow_removed(r, of::ofprr::DELETE, now);
                }
            }
        }
        // The packet that made the controller add the rule goes through it now.
        if f.buffer_id != OFP_NO_BUFFER && !matches!(f.command, FlowModCommand::Delete | FlowModCommand::DeleteStrict) {
            let h = self.take_buffer(f.buffer_id)?;
            if let Err(e) = sw.inject(Payload::Held(h.buf), h.in_port, &[Out::Table]) {
                sw.event(format!("openflow: buffered packet {}: {e}", f.buffer_id));
            }
        }
        Ok(())
    }

    fn take_buffer(&mut self, id: u32) -> Result<Held, OfpError> {
        self.held.remove(&id).ok_or_else(|| {
            OfpError::of(
                ofpet::BAD_REQUEST,
                ofpbrc::BUFFER_UNKNOWN,
                format!("no buffered packet {id} (used already, or older than {BUFFER_TIMEOUT:?})"),
            )
        })
    }

    fn packet_out(&mut self, p: PacketOut, sw: &mut impl Switch) -> Result<(), OfpError> {
        let outs = packet_out_actions(&p.actions)?;
        let in_port = match p.in_port {
            ofpp::CONTROLLER | ofpp::ANY => PortNo::CONTROLLER,
            n => onvm_port(n).ok_or_else(|| {
                OfpError::of(
                    ofpet::BAD_REQUEST,
                    ofpbrc::BAD_PORT,
                    format!("packet-out in_port {n:#x} is no port of this switch"),
                )
            })?,
        };
        let payload = if p.buffer_id == OFP_NO_BUFFER {
            Payload::Data(p.data)
        } else {
            Payload::Held(self.take_buffer(p.buffer_id)?.buf)
        };
        if outs.is_empty() {
            if let Payload::Held(b) = payload {
                sw.release(b, false);
            }
            return Ok(());
        }
        if let Err(e) = sw.inject(payload, in_port, &outs) {
            sw.event(format!("openflow: packet-out: {e}"));
        }
        Ok(())
    }

    fn multipart(&mut self, body: MultipartRequestBody, sw: &mut impl Switch) -> Result<Vec<MultipartReply>, OfpError> {
        let one = |body| vec![MultipartReply { flags: 0, body }];
        Ok(match body {
            MultipartRequestBody::Desc => one(MultipartReplyBody::Desc(Desc {
                mfr_desc: "onvm-rs".into(),
                hw_desc: "onvm-rs NF manager (shared-memory NFV switch)".into(),
                sw_desc: env!("CARGO_PKG_VERSION").into(),
                serial_num: String::new(),
                dp_desc: format!("onvm mgr, datapath {:#018x}", self.opts.datapath_id),
            })),
            MultipartRequestBody::Flow(req) => {
                let now = sw.now();
                let stats: Vec<FlowStats> = selected(sw.table(), &req)?
                    .into_iter()
                    .map(|r| flow_stats(r, now))
                    .collect();
                let mut parts: Vec<MultipartReply> = stats
                    .chunks(FLOWS_PER_PART)
                    .map(|c| MultipartReply {
                        flags: OFPMPF_MORE,
                        body: MultipartReplyBody::Flow(c.to_vec()),
                    })
                    .collect();
                match parts.last_mut() {
                    Some(last) => last.flags = 0,
                    None => parts = one(MultipartReplyBody::Flow(Vec::new())),
                }
                parts
            }
            MultipartRequestBody::Aggregate(req) => {
                let rules = selected(sw.table(), &req)?;
                one(MultipartReplyBody::Aggregate(AggregateStats {
                    packet_count: rules.iter().map(|r| r.packets).sum(),
                    byte_count: rules.iter().map(|r| r.bytes).sum(),
                    flow_count: rules.len() as u32,
                }))
            }
            MultipartRequestBody::Table => {
                let stats = (0..N_TABLES)
                    .map(|t| {
                        let (lookup_count, matched_count) = sw.table_counts(t);
                        TableStats {
                            table_id: t,
                            active_count: sw.table().iter().filter(|(_, r)| r.table == t).count() as u32,
                            lookup_count,
                            matched_count,
                        }
                    })
                    .collect();
                one(MultipartReplyBody::Table(stats))
            }
            MultipartRequestBody::PortStats { port_no } => {
                let ports = sw.ports();
                let chosen: Vec<&PortView> = ports
                    .iter()
                    .filter(|p| port_no == ofpp::ANY || of_port(p.no) == port_no)
                    .collect();
                if chosen.is_empty() && port_no != ofpp::ANY {
                    return Err(OfpError::of(
                        ofpet::BAD_REQUEST,
                        ofpbrc::BAD_PORT,
                        format!("port {port_no:#x} does not exist"),
                    ));
                }
                let up = sw.now();
                one(MultipartReplyBody::PortStats(
                    chosen
                        .iter()
                        .map(|p| port_stats(p.no, sw.port_counters(p.no), up))
                        .collect(),
                ))
            }
            MultipartRequestBody::PortDesc => {
                one(MultipartReplyBody::PortDesc(sw.ports().iter().map(port_desc).collect()))
            }
            MultipartRequestBody::TableFeatures => one(MultipartReplyBody::TableFeatures(
                (0..N_TABLES).map(|t| TableFeatures::onvm(t, N_TABLES)).collect(),
            )),
        })
    }

    fn announce_ports(&mut self, sw: &mut impl Switch) {
        let now = sw.ports();
        if now == self.ports {
            return;
        }
        let before = std::mem::take(&mut self.ports);
        for p in &now {
            match before.iter().find(|b| b.no == p.no) {
                None => self.async_send(&port_status(ofppr::ADD, p), true),
                Some(b) if b != p => self.async_send(&port_status(ofppr::MODIFY, p), true),
                Some(_) => {}
            }
        }
        for b in before.iter().filter(|b| now.iter().all(|p| p.no != b.no)) {
            self.async_send(&port_status(ofppr::DELETE, b), true);
        }
        self.ports = now;
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
