//! What the switch reports: flow and port stats, port descriptions and status, built from
//! the table and the manager's ports.

use std::time::Duration;

use onvm_openflow::{
    self as of, FlowStats, FlowStatsRequest, Message, OFPTT_ALL, OfpError, PortStatus, ofpbrc, ofpet, ofpp, ofpps,
};
use onvm_proto::flow::{DeleteFilter, FlowTable, Match, N_TABLES, PortKind, PortNo, Rule};

use super::translate::{from_match, of_port, onvm_port, to_instructions, to_match};
use super::{PortCounters, PortView};

/// The rules a FLOW / AGGREGATE request selects: its table, cookie, out_port and a
/// match that covers theirs (the non-strict rule). A table that does not exist (other
/// than OFPTT_ALL) is `OFPBRC_BAD_TABLE_ID`, as Open vSwitch answers, not an empty reply.
pub fn selected<'t>(table: &'t FlowTable, req: &FlowStatsRequest) -> Result<Vec<&'t Rule>, OfpError> {
    if req.table_id != OFPTT_ALL && req.table_id >= N_TABLES {
        return Err(OfpError::of(
            ofpet::BAD_REQUEST,
            ofpbrc::BAD_TABLE_ID,
            format!(
                "table {} does not exist (this switch has tables 0..{N_TABLES})",
                req.table_id
            ),
        ));
    }
    let m: Match = to_match(&req.match_)?;
    let filter = DeleteFilter {
        table: (req.table_id != OFPTT_ALL).then_some(req.table_id),
        cookie: (req.cookie_mask != 0).then_some((req.cookie, req.cookie_mask)),
        out_port: (req.out_port != ofpp::ANY).then(|| onvm_port(req.out_port).unwrap_or(PortNo(u32::MAX))),
        out_group: (req.out_group != of::OFPG_ANY).then_some(req.out_group),
    };
    Ok(table
        .iter()
        .map(|(_, r)| r)
        .filter(|r| m.covers(&r.matcher) && filter.admits(r))
        .collect())
}

pub fn flow_stats(r: &Rule, now: Duration) -> FlowStats {
    let age = now.saturating_sub(r.installed);
    FlowStats {
        table_id: r.table,
        duration_sec: age.as_secs() as u32,
        duration_nsec: age.subsec_nanos(),
        priority: r.priority,
        idle_timeout: r.idle_timeout,
        hard_timeout: r.hard_timeout,
        flags: r.flags,
        cookie: r.cookie,
        packet_count: r.packets,
        byte_count: r.bytes,
        match_: from_match(&r.matcher),
        instructions: to_instructions(&r.actions, r.matcher.ip_proto),
    }
}

/// A locally administered address per port ("on" in its second and third bytes).
fn hw_addr(p: PortNo) -> [u8; 6] {
    let [_, _, hi, lo] = p.0.to_be_bytes();
    let kind = u8::from(matches!(p.kind(), PortKind::Service(_)));
    [0x02, b'o', b'n', kind, hi, lo]
}

pub fn port_desc(p: &PortView) -> of::Port {
    of::Port {
        port_no: of_port(p.no),
        hw_addr: hw_addr(p.no),
        name: p.name.clone(),
        config: 0,
        state: if p.up { ofpps::LIVE } else { ofpps::LINK_DOWN },
        curr: 0,
        advertised: 0,
        supported: 0,
        peer: 0,
        curr_speed: 0,
        max_speed: 0,
    }
}

pub fn port_status(reason: u8, p: &PortView) -> Message {
    Message::PortStatus(PortStatus {
        reason,
        desc: port_desc(p),
    })
}

pub fn port_stats(no: PortNo, c: PortCounters, up: Duration) -> of::PortStats {
    of::PortStats {
        port_no: of_port(no),
        rx_packets: c.rx_packets,
        tx_packets: c.tx_packets,
        rx_bytes: c.rx_bytes,
        tx_bytes: c.tx_bytes,
        rx_dropped: c.rx_dropped,
        tx_dropped: c.tx_dropped,
        rx_errors: c.errors,
        tx_errors: 0,
        rx_frame_err: 0,
        rx_over_err: 0,
        rx_crc_err: 0,
        collisions: 0,
        duration_sec: up.as_secs() as u32,
        duration_nsec: up.subsec_nanos(),
    }
}
