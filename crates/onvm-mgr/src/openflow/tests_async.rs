//! The agent's async configs (SET_ASYNC / GET_ASYNC and the messages they filter),
//! TABLE_MOD, REQ_MORE requests and REPLY_MORE replies, and the error answers for a
//! PACKET_OUT from a port that is not there or too long for a buffer and for stats of
//! a table that does not exist: over real loopback TCP, with a switch whose table is
//! real and whose ports are a list (the harness of `tests.rs`).

use std::time::Duration;

use onvm_openflow::{
    Action, AsyncConfig, FlowMod, FlowModCommand, FlowStatsRequest, Message, MultipartReplyBody, MultipartRequest,
    MultipartRequestBody, OFP_NO_BUFFER, OFPG_ANY, OFPMPF_MORE, OFPTT_ALL, PacketOut, Role, RoleMsg, TableMod, ofpbrc,
    ofpet, ofpff, ofpp, ofppr, ofprr, ofpt, ofptmfc,
};
use onvm_proto::flow::PortNo;

use super::tests::{FakeSwitch, Peer, setup_with};
use super::*;

/// What this fake switch's buffers hold (a region's data room).
const ROOM: usize = 2048;

/// The agent, a switch with one port (p0) and buffers of `ROOM`, and a controller that
/// offered OpenFlow 1.3 only.
fn setup() -> (Agent, FakeSwitch, Peer) {
    let sw = FakeSwitch {
        ports: vec![PortView {
            no: PortNo(0),
            name: "p0".into(),
            up: true,
        }],
        room: Some(ROOM),
        ..FakeSwitch::default()
    };
    setup_with(sw, &[4])
}

fn add_flow(table_id: u8, flags: u16) -> Message {
    Message::FlowMod(FlowMod {
        cookie: 0,
        cookie_mask: 0,
        table_id,
        command: FlowModCommand::Add,
        idle_timeout: 0,
        hard_timeout: 0,
        priority: 5,
        buffer_id: OFP_NO_BUFFER,
        out_port: ofpp::ANY,
        out_group: OFPG_ANY,
        flags,
        match_: Default::default(),
        instructions: Vec::new(),
    })
}

fn delete_all() -> Message {
    let Message::FlowMod(mut f) = add_flow(OFPTT_ALL, 0) else {
        unreachable!()
    };
    f.command = FlowModCommand::Delete;
    Message::FlowMod(f)
}

fn masks(packet_in: u32, port_status: u32, flow_removed: u32) -> AsyncConfig {
    AsyncConfig {
        packet_in_mask: [packet_in, 0],
        port_status_mask: [port_status, port_status],
        flow_removed_mask: [flow_removed, 0],
    }
}

#[test]
fn get_async_answers_the_defaults_then_what_set_async_set() {
    let (mut agent, mut sw, mut c) = setup();
    c.send(2, &Message::GetAsyncRequest);
    assert_eq!(
        c.expect(&mut agent, &mut sw),
        (2, Message::GetAsyncReply(AsyncConfig::default()))
    );
    let mine = AsyncConfig {
        packet_in_mask: [0b100, 0b1],
        port_status_mask: [0b1, 0],
        flow_removed_mask: [0b1000, 0b10],
    };
    c.send(3, &Message::SetAsync(mine));
    c.send(4, &Message::GetAsyncRequest);
    assert_eq!(c.expect(&mut agent, &mut sw), (4, Message::GetAsyncReply(mine)));
}

#[test]
fn set_async_decides_which_async_messages_a_connection_gets() {
    let (mut agent, mut sw, mut c) = setup();
    // A listener connection gets no async messages until it asks (as a tool).
    assert!(!agent.has_controller());
    // Only NO_MATCH packet-ins, only DELETE port status, no FLOW_REMOVED.
    c.send(2, &Message::SetAsync(masks(1 << ofpr::NO_MATCH, 1 << ofppr::DELETE, 0)));
    assert!(c.until_barrier(&mut agent, &mut sw).is_empty());
    assert!(agent.wants_packet_in(ofpr::NO_MATCH) && !agent.wants_packet_in(ofpr::ACTION));
    c.send(3, &add_flow(0, ofpff::SEND_FLOW_REM));
    c.send(4, &delete_all());
    // A port comes, then goes: only the DELETE is announced.
    sw.ports.push(PortView {
        no: PortNo::service(3),
        name: "fw".into(),
        up: true,
    });
    assert!(c.recv(&mut agent, &mut sw, Duration::from_millis(100)).is_none());
    sw.ports.pop();
    match c.expect(&mut agent, &mut sw) {
        (_, Message::PortStatus(p)) => assert_eq!((p.reason, p.desc.name.as_str()), (ofppr::DELETE, "fw")),
        other => panic!("expected PORT_STATUS DELETE, got {other:?}"),
    }
    // FLOW_REMOVED for DELETE now, port status for nothing, no packet-ins.
    c.send(5, &Message::SetAsync(masks(0, 0, 1 << ofprr::DELETE)));
    assert!(c.until_barrier(&mut agent, &mut sw).is_empty());
    assert!(!agent.has_controller());
    c.send(6, &add_flow(0, ofpff::SEND_FLOW_REM));
    c.send(7, &delete_all());
    match c.expect(&mut agent, &mut sw) {
        (_, Message::FlowRemoved(f)) => assert_eq!(f.reason, ofprr::DELETE),
        other => panic!("expected FLOW_REMOVED, got {other:?}"),
    }
    sw.ports.push(PortView {
        no: PortNo::service(4),
        name: "nat".into(),
        up: true,
    });
    assert!(c.recv(&mut agent, &mut sw, Duration::from_millis(100)).is_none());
}

#[test]
fn a_slave_uses_the_slave_masks() {
    let (mut agent, mut sw, mut c) = setup();
    c.send(
        2,
        &Message::RoleRequest(RoleMsg {
            role: Role::Slave,
            generation_id: 1,
        }),
    );
    assert!(matches!(c.expect(&mut agent, &mut sw), (2, Message::RoleReply(_))));
    // By default a slave gets no packet-in; its own mask can ask for them.
    assert!(!agent.has_controller());
    c.send(
        3,
        &Message::SetAsync(AsyncConfig {
            packet_in_mask: [0, 1 << ofpr::ACTION],
            ..AsyncConfig::default()
        }),
    );
    assert!(c.until_barrier(&mut agent, &mut sw).is_empty());
    assert!(agent.wants_packet_in(ofpr::ACTION) && !agent.wants_packet_in(ofpr::NO_MATCH));
    // SET_ASYNC is allowed to a slave; TABLE_MOD is not.
    c.send(4, &Message::TableMod(TableMod { table_id: 0, config: 0 }));
    assert_eq!(c.error_of(&mut agent, &mut sw), (ofpet::BAD_REQUEST, ofpbrc::IS_SLAVE));
}

#[test]
fn table_mod_is_accepted_for_tables_that_exist() {
    let (mut agent, mut sw, mut c) = setup();
    for (table_id, config) in [(0, 0), (1, 3), (7, 1), (OFPTT_ALL, 0)] {
        c.send(2, &Message::TableMod(TableMod { table_id, config }));
    }
    assert_eq!(c.until_barrier(&mut agent, &mut sw), Vec::<Message>::new());
    c.send(3, &Message::TableMod(TableMod { table_id: 9, config: 0 }));
    assert_eq!(
        c.error_of(&mut agent, &mut sw),
        (ofpet::TABLE_MOD_FAILED, ofptmfc::BAD_TABLE)
    );
    c.send(4, &Message::TableMod(TableMod { table_id: 0, config: 4 }));
    assert_eq!(
        c.error_of(&mut agent, &mut sw),
        (ofpet::TABLE_MOD_FAILED, ofptmfc::BAD_CONFIG)
    );
}

/// A raw multipart request part.
fn part(xid: u32, ty: u16, flags: u16, body: &[u8]) -> Vec<u8> {
    let len = (16 + body.len()) as u16;
    let mut b = vec![4, ofpt::MULTIPART_REQUEST];
    b.extend_from_slice(&len.to_be_bytes());
    b.extend_from_slice(&xid.to_be_bytes());
    b.extend_from_slice(&ty.to_be_bytes());
    b.extend_from_slice(&flags.to_be_bytes());
    b.extend_from_slice(&[0; 4]);
    b.extend_from_slice(body);
    b
}

#[test]
fn a_request_split_with_req_more_is_answered_once_whole() {
    let (mut agent, mut sw, mut c) = setup();
    // PORT_STATS for port 1 (p0) in three parts, another request in between.
    c.raw(&part(9, onvm_openflow::ofpmp::PORT_STATS, OFPMPF_MORE, &[0, 0]));
    c.raw(&part(9, onvm_openflow::ofpmp::PORT_STATS, OFPMPF_MORE, &[0, 1]));
    c.send(10, &Message::EchoRequest(vec![1]));
    assert_eq!(c.expect(&mut agent, &mut sw), (10, Message::EchoReply(vec![1])));
    c.raw(&part(9, onvm_openflow::ofpmp::PORT_STATS, 0, &[0, 0, 0, 0]));
    match c.expect(&mut agent, &mut sw) {
        (9, Message::MultipartReply(r)) => match r.body {
            MultipartReplyBody::PortStats(s) => {
                assert_eq!((r.flags, s.len(), s[0].port_no), (0, 1, 1));
            }
            other => panic!("expected port stats, got {other:?}"),
        },
        other => panic!("expected the reply, got {other:?}"),
    }
    // Parts past what one connection may hold: MULTIPART_BUFFER_OVERFLOW, once.
    let chunk = vec![0u8; 40_000];
    c.raw(&part(11, onvm_openflow::ofpmp::TABLE_FEATURES, OFPMPF_MORE, &chunk));
    c.raw(&part(11, onvm_openflow::ofpmp::TABLE_FEATURES, OFPMPF_MORE, &chunk));
    assert_eq!(
        c.error_of(&mut agent, &mut sw),
        (ofpet::BAD_REQUEST, ofpbrc::MULTIPART_BUFFER_OVERFLOW)
    );
    assert!(c.until_barrier(&mut agent, &mut sw).is_empty());
}

#[test]
fn long_port_replies_are_split_with_reply_more() {
    let (mut agent, mut sw, mut c) = setup();
    sw.ports = (0..PORTS_PER_PART as u32 + 10)
        .map(|i| PortView {
            no: PortNo(i),
            name: format!("p{i}"),
            up: true,
        })
        .collect();
    for body in [
        MultipartRequestBody::PortDesc,
        MultipartRequestBody::PortStats { port_no: ofpp::ANY },
    ] {
        c.send(2, &Message::MultipartRequest(MultipartRequest { flags: 0, body }));
        let mut sizes = Vec::new();
        loop {
            let (_, Message::MultipartReply(r)) = c.expect(&mut agent, &mut sw) else {
                panic!("expected a multipart reply")
            };
            sizes.push(match r.body {
                MultipartReplyBody::PortDesc(p) => p.len(),
                MultipartReplyBody::PortStats(p) => p.len(),
                other => panic!("{other:?}"),
            });
            if r.flags & OFPMPF_MORE == 0 {
                break;
            }
        }
        assert_eq!(sizes, [PORTS_PER_PART, 10]);
    }
}

fn packet_out(in_port: u32, data: Vec<u8>) -> Message {
    Message::PacketOut(PacketOut {
        buffer_id: OFP_NO_BUFFER,
        in_port,
        actions: vec![Action::Output { port: 1, max_len: 0 }],
        data,
    })
}

#[test]
fn packet_out_from_a_port_that_is_not_there_or_too_long_is_refused() {
    let (mut agent, mut sw, mut c) = setup();
    // Port 1 (p0) exists; port 9 does not, but is where a physical port can be: taken,
    // as Open vSwitch takes a port number below its maximum.
    c.send(2, &packet_out(1, vec![0; 60]));
    c.send(3, &packet_out(ofpp::CONTROLLER, vec![0; 60]));
    c.send(3, &packet_out(9, vec![0; 60]));
    assert!(c.until_barrier(&mut agent, &mut sw).is_empty());
    assert_eq!(sw.injected.len(), 3);
    let beyond_services = PortNo::SERVICE_BASE + u32::from(onvm_proto::limits::MAX_SERVICES);
    for bad in [0, ofpp::LOCAL, ofpp::FLOOD, beyond_services, 0xffff_0000] {
        c.send(4, &packet_out(bad, vec![0; 60]));
        assert_eq!(
            c.error_of(&mut agent, &mut sw),
            (ofpet::BAD_REQUEST, ofpbrc::BAD_PORT),
            "in_port {bad:#x}"
        );
    }
    c.send(5, &packet_out(1, vec![0; 65_000]));
    assert_eq!(c.error_of(&mut agent, &mut sw), (ofpet::BAD_REQUEST, ofpbrc::BAD_LEN));
    assert_eq!(sw.injected.len(), 3);
}

#[test]
fn stats_of_a_table_that_does_not_exist_are_bad_table_id() {
    let (mut agent, mut sw, mut c) = setup();
    let req = |table_id| FlowStatsRequest {
        table_id,
        out_port: ofpp::ANY,
        out_group: OFPG_ANY,
        cookie: 0,
        cookie_mask: 0,
        match_: Default::default(),
    };
    for body in [
        MultipartRequestBody::Flow(req(9)),
        MultipartRequestBody::Aggregate(req(200)),
    ] {
        c.send(2, &Message::MultipartRequest(MultipartRequest { flags: 0, body }));
        assert_eq!(
            c.error_of(&mut agent, &mut sw),
            (ofpet::BAD_REQUEST, ofpbrc::BAD_TABLE_ID)
        );
    }
    for t in [0, 7, OFPTT_ALL] {
        c.send(
            3,
            &Message::MultipartRequest(MultipartRequest {
                flags: 0,
                body: MultipartRequestBody::Flow(req(t)),
            }),
        );
        assert!(matches!(c.expect(&mut agent, &mut sw), (3, Message::MultipartReply(_))));
    }
}
