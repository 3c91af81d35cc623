//! GROUP_MOD, METER_MOD and flows that use groups and meters, as a controller sees
//! them: installs, the errors Open vSwitch gives, stats and descriptions read back,
//! deletes that take their flows along (the harness of `tests.rs`).

use onvm_openflow::{
    Action, Bucket, FlowMod, FlowModCommand, GroupMod, GroupModCommand, GroupType, Instruction, Message, MeterBand,
    MeterBandKind, MeterMod, MeterModCommand, MultipartReplyBody, MultipartRequest, MultipartRequestBody,
    OFP_NO_BUFFER, OFPG_ALL, OFPG_ANY, OFPM_ALL, Role, RoleMsg, ofpbac, ofpet, ofpff, ofpgmfc, ofpmf, ofpmmfc, ofpp,
    ofprr,
};
use onvm_proto::flow::PortNo;

use super::tests::{FakeSwitch, Peer, setup_with};
use super::*;

fn setup() -> (Agent, FakeSwitch, Peer) {
    let sw = FakeSwitch {
        ports: (0..3)
            .map(|p| PortView {
                no: PortNo(p),
                name: format!("p{p}"),
                up: true,
            })
            .collect(),
        ..FakeSwitch::default()
    };
    let (mut agent, mut sw, mut p) = setup_with(sw, &[4]);
    // A controller, not a tool: it gets FLOW_REMOVED.
    p.send(
        99,
        &Message::RoleRequest(RoleMsg {
            role: Role::Equal,
            generation_id: 0,
        }),
    );
    assert!(matches!(p.expect(&mut agent, &mut sw), (99, Message::RoleReply(_))));
    (agent, sw, p)
}

fn out(port: u32) -> Action {
    Action::Output { port, max_len: 0 }
}

fn group(command: GroupModCommand, kind: GroupType, group_id: u32, buckets: Vec<Bucket>) -> Message {
    Message::GroupMod(GroupMod {
        command,
        kind,
        group_id,
        buckets,
    })
}

fn bucket(weight: u16, actions: Vec<Action>) -> Bucket {
    Bucket {
        weight,
        watch_port: ofpp::ANY,
        watch_group: OFPG_ANY,
        actions,
    }
}

fn flow(priority: u16, instructions: Vec<Instruction>) -> Message {
    Message::FlowMod(FlowMod {
        cookie: u64::from(priority),
        cookie_mask: 0,
        table_id: 0,
        command: FlowModCommand::Add,
        idle_timeout: 0,
        hard_timeout: 0,
        priority,
        buffer_id: OFP_NO_BUFFER,
        out_port: ofpp::ANY,
        out_group: OFPG_ANY,
        flags: ofpff::SEND_FLOW_REM,
        match_: onvm_openflow::Match {
            in_port: Some(u32::from(priority)),
            ..Default::default()
        },
        instructions,
    })
}

fn stats(p: &mut Peer, agent: &mut Agent, sw: &mut FakeSwitch, body: MultipartRequestBody) -> MultipartReplyBody {
    p.send(40, &Message::MultipartRequest(MultipartRequest { flags: 0, body }));
    match p.expect(agent, sw) {
        (40, Message::MultipartReply(r)) => r.body,
        other => panic!("expected a multipart reply, got {other:?}"),
    }
}

#[test]
fn groups_install_read_back_refuse_and_take_their_flows_when_deleted() {
    let (mut agent, mut sw, mut p) = setup();
    let select = vec![
        bucket(1, vec![out(1)]),
        bucket(2, vec![out(2)]),
        bucket(1, vec![out(3)]),
    ];
    p.send(1, &group(GroupModCommand::Add, GroupType::Select, 1, select.clone()));
    // A flow to a group that does not exist; then one to group 1, applied and written.
    p.send(2, &flow(2, vec![Instruction::ApplyActions(vec![Action::Group(9)])]));
    assert_eq!(
        p.error_of(&mut agent, &mut sw),
        (ofpet::BAD_ACTION, ofpbac::BAD_OUT_GROUP)
    );
    p.send(3, &flow(3, vec![Instruction::ApplyActions(vec![Action::Group(1)])]));
    p.send(4, &flow(4, vec![Instruction::WriteActions(vec![Action::Group(1)])]));
    p.send(5, &flow(5, vec![Instruction::ApplyActions(vec![out(1)])]));
    assert!(p.until_barrier(&mut agent, &mut sw).is_empty(), "all taken");
    // The same id again; an indirect group with two buckets (OVS: INVALID_GROUP).
    p.send(6, &group(GroupModCommand::Add, GroupType::Select, 1, select.clone()));
    assert_eq!(
        p.error_of(&mut agent, &mut sw),
        (ofpet::GROUP_MOD_FAILED, ofpgmfc::GROUP_EXISTS)
    );
    p.send(7, &group(GroupModCommand::Add, GroupType::Indirect, 2, select.clone()));
    assert_eq!(
        p.error_of(&mut agent, &mut sw),
        (ofpet::GROUP_MOD_FAILED, ofpgmfc::INVALID_GROUP)
    );
    p.send(8, &group(GroupModCommand::Modify, GroupType::All, 3, vec![]));
    assert_eq!(
        p.error_of(&mut agent, &mut sw),
        (ofpet::GROUP_MOD_FAILED, ofpgmfc::UNKNOWN_GROUP)
    );
    // Read back as installed, with its two referring flows.
    let MultipartReplyBody::GroupDesc(desc) = stats(&mut p, &mut agent, &mut sw, MultipartRequestBody::GroupDesc)
    else {
        panic!("a group description")
    };
    assert_eq!(
        (desc.len(), desc[0].kind, &desc[0].buckets),
        (1, GroupType::Select, &select)
    );
    let MultipartReplyBody::Group(g) = stats(
        &mut p,
        &mut agent,
        &mut sw,
        MultipartRequestBody::Group { group_id: OFPG_ALL },
    ) else {
        panic!("group stats")
    };
    assert_eq!((g[0].group_id, g[0].ref_count, g[0].bucket_stats.len()), (1, 2, 3));
    let MultipartReplyBody::GroupFeatures(f) = stats(&mut p, &mut agent, &mut sw, MultipartRequestBody::GroupFeatures)
    else {
        panic!("group features")
    };
    assert_eq!(f.types, 0xf, "all four types");
    assert_ne!(f.actions[1] & (1 << onvm_openflow::ofpat::PUSH_VLAN), 0);
    // Deleting it takes both flows, each with a FLOW_REMOVED (reason GROUP_DELETE).
    p.send(9, &group(GroupModCommand::Delete, GroupType::All, 1, vec![]));
    let mut removed: Vec<(u64, u8)> = p
        .until_barrier(&mut agent, &mut sw)
        .into_iter()
        .filter_map(|m| match m {
            Message::FlowRemoved(r) => Some((r.cookie, r.reason)),
            _ => None,
        })
        .collect();
    removed.sort_unstable();
    assert_eq!(removed, [(3, ofprr::GROUP_DELETE), (4, ofprr::GROUP_DELETE)]);
    assert_eq!(sw.table.len(), 1, "the flow that used no group stays");
    assert!(sw.table.groups.is_empty());
}

#[test]
fn meters_install_read_back_refuse_and_take_their_flows_when_deleted() {
    let (mut agent, mut sw, mut p) = setup();
    let band = |rate, burst_size| MeterBand {
        kind: MeterBandKind::Drop,
        rate,
        burst_size,
    };
    let meter = |command, meter_id, flags, bands| {
        Message::MeterMod(MeterMod {
            command,
            flags,
            meter_id,
            bands,
        })
    };
    let flags = ofpmf::PKTPS | ofpmf::BURST;
    p.send(1, &meter(MeterModCommand::Add, 1, flags, vec![band(10, 5)]));
    let metered = |priority, m| {
        flow(
            priority,
            vec![Instruction::Meter(m), Instruction::ApplyActions(vec![out(1)])],
        )
    };
    p.send(2, &metered(2, 7));
    assert_eq!(
        p.error_of(&mut agent, &mut sw),
        (ofpet::METER_MOD_FAILED, ofpmmfc::INVALID_METER),
        "no meter 7"
    );
    p.send(3, &metered(3, 1));
    assert!(p.until_barrier(&mut agent, &mut sw).is_empty());
    p.send(4, &meter(MeterModCommand::Add, 1, flags, vec![band(10, 5)]));
    assert_eq!(
        p.error_of(&mut agent, &mut sw),
        (ofpet::METER_MOD_FAILED, ofpmmfc::METER_EXISTS)
    );
    p.send(
        5,
        &meter(MeterModCommand::Add, 2, ofpmf::KBPS | ofpmf::PKTPS, vec![band(10, 5)]),
    );
    assert_eq!(
        p.error_of(&mut agent, &mut sw),
        (ofpet::METER_MOD_FAILED, ofpmmfc::BAD_FLAGS)
    );
    p.send(6, &meter(MeterModCommand::Add, 2, ofpmf::KBPS, vec![band(0, 0)]));
    assert_eq!(
        p.error_of(&mut agent, &mut sw),
        (ofpet::METER_MOD_FAILED, ofpmmfc::BAD_RATE)
    );
    // Config, stats (the flow that uses it) and features read back.
    let MultipartReplyBody::MeterConfig(c) = stats(
        &mut p,
        &mut agent,
        &mut sw,
        MultipartRequestBody::MeterConfig { meter_id: OFPM_ALL },
    ) else {
        panic!("meter config")
    };
    assert_eq!(
        (c.len(), c[0].meter_id, c[0].flags, &c[0].bands),
        (1, 1, flags, &vec![band(10, 5)])
    );
    let MultipartReplyBody::Meter(m) = stats(&mut p, &mut agent, &mut sw, MultipartRequestBody::Meter { meter_id: 1 })
    else {
        panic!("meter stats")
    };
    assert_eq!((m[0].meter_id, m[0].flow_count, m[0].band_stats.len()), (1, 1, 1));
    let MultipartReplyBody::MeterFeatures(f) = stats(&mut p, &mut agent, &mut sw, MultipartRequestBody::MeterFeatures)
    else {
        panic!("meter features")
    };
    assert_eq!(f.band_types, 0b110, "drop and DSCP remark");
    // The flow reads back with its meter first.
    assert_eq!(
        flow_instructions(&mut p, &mut agent, &mut sw),
        vec![Instruction::Meter(1), Instruction::ApplyActions(vec![out(1)])]
    );
    // Deleting the meter takes its flow (OpenFlow 1.3 has no METER_DELETE reason).
    p.send(7, &meter(MeterModCommand::Delete, 1, 0, vec![]));
    let removed = p
        .until_barrier(&mut agent, &mut sw)
        .into_iter()
        .filter(|m| matches!(m, Message::FlowRemoved(r) if r.reason == ofprr::DELETE))
        .count();
    assert_eq!(removed, 1);
    assert!(sw.table.is_empty() && sw.table.meters.is_empty());
}

/// The instructions of the one flow of the table, from a FLOW stats request.
fn flow_instructions(p: &mut Peer, agent: &mut Agent, sw: &mut FakeSwitch) -> Vec<Instruction> {
    let MultipartReplyBody::Flow(f) = stats(
        p,
        agent,
        sw,
        MultipartRequestBody::Flow(onvm_openflow::FlowStatsRequest {
            table_id: onvm_openflow::OFPTT_ALL,
            out_port: ofpp::ANY,
            out_group: OFPG_ANY,
            cookie: 0,
            cookie_mask: 0,
            match_: Default::default(),
        }),
    ) else {
        panic!("flow stats")
    };
    assert_eq!(f.len(), 1);
    f[0].instructions.clone()
}
