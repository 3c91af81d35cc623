//! What the agent does with each message a peer sends: the protocol's answers, the
//! table edits (FLOW_MOD, TABLE_MOD), packets (PACKET_OUT), statistics (MULTIPART, with
//! requests split by REQ_MORE put back together first), roles and async configs.

use onvm_openflow::{
    self as of, AggregateStats, Desc, FeaturesReply, FlowMod, FlowModCommand, FlowStats, Message, MultipartReply,
    MultipartReplyBody, MultipartRequestBody, OFP_NO_BUFFER, OFP_VERSION, OFPMPF_MORE, OFPTC_DEPRECATED_MASK,
    OFPTT_ALL, OfpError, PacketOut, Role, RoleMsg, TableFeatures, TableMod, TableStats, VersionBitmap, error_reply,
    negotiate, ofpbrc, ofpc, ofpet, ofpff, ofpfmfc, ofpp, ofppr, ofprrfc, ofptmfc,
};
use onvm_proto::flow::{Action, DeleteFilter, FlowTable, Instructions, N_TABLES, PortNo, Rule, RuleId, Spelling};

use super::conn::{Closed, Origin};
use super::groups::{
    group_desc, group_features, group_mod, group_stats, meter_config, meter_features, meter_mod, meter_stats,
};
use super::reports::{flow_stats, port_desc, port_stats, port_status, selected};
use super::translate::{of_port, onvm_port, packet_out_actions, rule_instructions, to_actions, to_match};
use super::{Agent, BUFFER_TIMEOUT, FIRST_BACKOFF, FLOWS_PER_PART, Held, N_BUFFERS, PORTS_PER_PART};
use crate::control_plane::{InjectError, Out, Payload, PortView, Switch};

impl Agent {
    /// One message from connection `k`.
    pub(super) fn handle(
        &mut self,
        k: usize,
        bytes: &[u8],
        decoded: Result<(u32, Message), OfpError>,
        sw: &mut dyn Switch,
    ) -> Result<(), Closed> {
        // A multipart request's parts wait for the last one; then the whole request
        // is decoded as one (its errors name the last part).
        let decoded = match self.conns[k].parts.push(bytes) {
            Ok(Some(std::borrow::Cow::Borrowed(_))) => decoded,
            Ok(Some(std::borrow::Cow::Owned(whole))) => Message::decode(&whole),
            Ok(None) => return Ok(()),
            Err(e) => Err(e),
        };
        let (xid, msg) = match decoded {
            Ok(m) => m,
            Err(e) => {
                self.conns[k].send_bytes(&error_reply(bytes, &e));
                // The ERROR goes out as the connection closes (see `poll`).
                if e.kind.ty == ofpet::HELLO_FAILED {
                    return Err(Closed::HelloFailed(e.message));
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
                    return Err(Closed::HelloFailed(e.message));
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
            Message::SetAsync(c) => {
                // A connection that says what it wants gets it, a tool's included.
                let conn = &mut self.conns[k];
                conn.async_config = c;
                conn.async_on = true;
            }
            Message::GetAsyncRequest => reply(self, Message::GetAsyncReply(self.conns[k].async_config)),
            Message::GroupMod(g) => {
                let now = sw.now();
                match self.slave_check(k).and_then(|()| group_mod(sw.table(), &g, now)) {
                    Ok(gone) => {
                        for r in &gone {
                            self.flow_removed(r, of::ofprr::GROUP_DELETE, now);
                        }
                    }
                    Err(e) => refuse(self, e),
                }
            }
            Message::MeterMod(m) => {
                let now = sw.now();
                match self.slave_check(k).and_then(|()| meter_mod(sw.table(), &m, now)) {
                    // OpenFlow 1.3 has no METER_DELETE reason (1.4 does): DELETE, as
                    // Open vSwitch says.
                    Ok(gone) => {
                        for r in &gone {
                            self.flow_removed(r, of::ofprr::DELETE, now);
                        }
                    }
                    Err(e) => refuse(self, e),
                }
            }
            Message::TableMod(t) => {
                if let Err(e) = self.slave_check(k).and_then(|()| table_mod(t)) {
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

    fn flow_mod(&mut self, f: &FlowMod, sw: &mut dyn Switch) -> Result<(), OfpError> {
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
                add_flow(f, sw)?;
            }
            FlowModCommand::Modify | FlowModCommand::ModifyStrict => {
                if f.table_id >= N_TABLES {
                    return Err(bad_table());
                }
                let (actions, extra, spelling) = rule_parts(f, sw.table())?;
                let filter = DeleteFilter {
                    table: Some(f.table_id),
                    cookie,
                    ..Default::default()
                };
                let strict = (f.command == FlowModCommand::ModifyStrict).then_some(f.priority);
                sw.table().modify(
                    &matcher,
                    strict,
                    &filter,
                    &actions,
                    &extra,
                    spelling,
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
                    out_group: (f.out_group != of::OFPG_ANY).then_some(f.out_group),
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

    fn packet_out(&mut self, p: PacketOut, sw: &mut dyn Switch) -> Result<(), OfpError> {
        let outs = packet_out_actions(&p.actions)?;
        let in_port = match p.in_port {
            ofpp::CONTROLLER | ofpp::ANY => PortNo::CONTROLLER,
            // As Open vSwitch does, a number where a port can be is taken whether or not
            // the port is there now (a packet "from" a port that just went is still
            // sendable); numbers outside the ranges (0, LOCAL, 0x1000 + 32 and up, other
            // reserved ones) are OFPBRC_BAD_PORT.
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
        let carried = matches!(payload, Payload::Data(_));
        match sw.inject(payload, in_port, &outs) {
            Ok(()) => Ok(()),
            // Carried bytes that no buffer of the region holds (or, the same answer
            // from the switch, no buffer free): the controller learns the packet did
            // not go. Open vSwitch has no such limit below the message's 64 KiB.
            Err(InjectError::NoBuffer { len }) if carried => Err(OfpError::of(
                ofpet::BAD_REQUEST,
                ofpbrc::BAD_LEN,
                format!("packet-out of {len} bytes: larger than a packet buffer holds, or none is free"),
            )),
            Err(e) => {
                sw.event(format!("openflow: packet-out: {e}"));
                Ok(())
            }
        }
    }

    fn multipart(&mut self, body: MultipartRequestBody, sw: &mut dyn Switch) -> Result<Vec<MultipartReply>, OfpError> {
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
                    .map(|r| FlowStats {
                        // As the FLOW_MOD wrote them (FLOOD, write-actions), not plainly.
                        instructions: rule_instructions(r),
                        ..flow_stats(r, now)
                    })
                    .collect();
                Self::parts(&stats, FLOWS_PER_PART, MultipartReplyBody::Flow)
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
                let stats: Vec<of::PortStats> = chosen
                    .iter()
                    .map(|p| port_stats(p.no, sw.port_counters(p.no), up))
                    .collect();
                Self::parts(&stats, PORTS_PER_PART, MultipartReplyBody::PortStats)
            }
            MultipartRequestBody::PortDesc => {
                let ports: Vec<of::Port> = sw.ports().iter().map(port_desc).collect();
                Self::parts(&ports, PORTS_PER_PART, MultipartReplyBody::PortDesc)
            }
            MultipartRequestBody::TableFeatures => one(MultipartReplyBody::TableFeatures(
                (0..N_TABLES).map(|t| TableFeatures::onvm(t, N_TABLES)).collect(),
            )),
            MultipartRequestBody::Group { group_id } => {
                let now = sw.now();
                let stats = group_stats(sw.table(), group_id, now);
                MultipartReply::split(MultipartReplyBody::Group(stats))
            }
            MultipartRequestBody::GroupDesc => {
                let desc = group_desc(sw.table());
                MultipartReply::split(MultipartReplyBody::GroupDesc(desc))
            }
            MultipartRequestBody::GroupFeatures => one(MultipartReplyBody::GroupFeatures(group_features())),
            MultipartRequestBody::Meter { meter_id } => {
                let now = sw.now();
                let stats = meter_stats(sw.table(), meter_id, now);
                MultipartReply::split(MultipartReplyBody::Meter(stats))
            }
            MultipartRequestBody::MeterConfig { meter_id } => {
                let config = meter_config(sw.table(), meter_id);
                MultipartReply::split(MultipartReplyBody::MeterConfig(config))
            }
            MultipartRequestBody::MeterFeatures => one(MultipartReplyBody::MeterFeatures(meter_features())),
        })
    }

    /// Splits `entries` into replies of at most `per_part` entries, REPLY_MORE on all
    /// but the last; an empty list is one empty reply.
    fn parts<T: Clone>(
        entries: &[T],
        per_part: usize,
        body: impl Fn(Vec<T>) -> MultipartReplyBody,
    ) -> Vec<MultipartReply> {
        let mut parts: Vec<MultipartReply> = entries
            .chunks(per_part)
            .map(|c| MultipartReply {
                flags: OFPMPF_MORE,
                body: body(c.to_vec()),
            })
            .collect();
        match parts.last_mut() {
            Some(last) => last.flags = 0,
            None => parts.push(MultipartReply {
                flags: 0,
                body: body(Vec::new()),
            }),
        }
        parts
    }

    pub(super) fn announce_ports(&mut self, sw: &mut dyn Switch) {
        let now = sw.ports();
        if now == self.ports {
            return;
        }
        let before = std::mem::take(&mut self.ports);
        for p in &now {
            match before.iter().find(|b| b.no == p.no) {
                None => self.async_send(&port_status(ofppr::ADD, p), ofppr::ADD),
                Some(b) if b != p => self.async_send(&port_status(ofppr::MODIFY, p), ofppr::MODIFY),
                Some(_) => {}
            }
        }
        for b in before.iter().filter(|b| now.iter().all(|p| p.no != b.no)) {
            self.async_send(&port_status(ofppr::DELETE, b), ofppr::DELETE);
        }
        self.ports = now;
    }
}

/// TABLE_MOD: OpenFlow 1.3 has no table config left to set (its two bits are the
/// deprecated table-miss ones, which Open vSwitch accepts and ignores, as here); the
/// table must exist.
fn table_mod(t: TableMod) -> Result<(), OfpError> {
    if t.table_id != OFPTT_ALL && t.table_id >= N_TABLES {
        return Err(OfpError::of(
            ofpet::TABLE_MOD_FAILED,
            ofptmfc::BAD_TABLE,
            format!(
                "table {} does not exist (this switch has tables 0..{N_TABLES})",
                t.table_id
            ),
        ));
    }
    if t.config & !OFPTC_DEPRECATED_MASK != 0 {
        return Err(OfpError::of(
            ofpet::TABLE_MOD_FAILED,
            ofptmfc::BAD_CONFIG,
            format!(
                "table config {:#x}: OpenFlow 1.3 defines only the deprecated bits 0x3",
                t.config
            ),
        ));
    }
    Ok(())
}

/// A FLOW_MOD's actions, other instructions and spelling, once the groups it sends to
/// and the meter it names are known to exist (`OFPBAC_BAD_OUT_GROUP` and
/// `OFPMMFC_INVALID_METER` otherwise, as Open vSwitch answers).
/// A FLOW_MOD ADD, checked as OpenFlow checks it (table, match, actions, groups,
/// meters, overlap) and installed: the OpenFlow agent and the REST API both add rules
/// through it, so both refuse the same rules with the same errors.
pub(crate) fn add_flow(f: &FlowMod, sw: &mut dyn Switch) -> Result<RuleId, OfpError> {
    if f.table_id >= N_TABLES {
        return Err(OfpError::of(
            ofpet::FLOW_MOD_FAILED,
            ofpfmfc::BAD_TABLE_ID,
            format!(
                "table {} does not exist (this switch has tables 0..{N_TABLES})",
                f.table_id
            ),
        ));
    }
    f.match_.check_prereqs()?;
    let matcher = to_match(&f.match_)?;
    let now = sw.now();
    let (actions, extra, spelling) = rule_parts(f, sw.table())?;
    if f.flags & ofpff::CHECK_OVERLAP != 0 && sw.table().overlaps(f.table_id, f.priority, &matcher) {
        return Err(OfpError::of(
            ofpet::FLOW_MOD_FAILED,
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
    rule.spelling = spelling;
    rule.instructions = extra;
    let (id, old) = sw.table().add(rule, now);
    // An identical rule's counters carry over unless asked otherwise (spec 6.4).
    if let Some(old) = old
        && f.flags & ofpff::RESET_COUNTS == 0
    {
        sw.table().record(id, old.packets, old.bytes, now);
    }
    Ok(id)
}

fn rule_parts(f: &FlowMod, table: &FlowTable) -> Result<(Vec<Action>, Instructions, Spelling), OfpError> {
    let (actions, extra, spelling) = to_actions(&f.instructions, f.table_id)?;
    let all: Vec<Action> = actions.iter().chain(&extra.write).copied().collect();
    table.groups.check_actions(&all).map_err(|e| {
        let (ty, code) = e.ofp_error();
        OfpError::of(ty, code, e.to_string())
    })?;
    if let Some(m) = extra.meter
        && table.meters.get(m).is_none()
    {
        return Err(OfpError::of(
            ofpet::METER_MOD_FAILED,
            of::ofpmmfc::INVALID_METER,
            format!("meter {m} does not exist"),
        ));
    }
    Ok((actions, extra, spelling))
}
