//! One hand-written round trip per message type, with the fields that matter set.

use std::net::{Ipv4Addr, Ipv6Addr};

use super::round_trip;
use crate::*;

fn port(n: u32, name: &str) -> Port {
    Port {
        port_no: n,
        hw_addr: [2, 0, 0, 0, 0, n as u8],
        name: name.into(),
        config: ofppc::NO_PACKET_IN,
        state: ofpps::LIVE,
        curr: ofppf::TEN_GB_FD | ofppf::FIBER,
        advertised: 0,
        supported: ofppf::TEN_GB_FD,
        peer: 0,
        curr_speed: 10_000_000,
        max_speed: 10_000_000,
    }
}

fn tcp_match() -> Match {
    Match {
        in_port: Some(1),
        eth_dst: Some(Masked::with_mask([1, 0, 0x5e, 0, 0, 0], [0xff, 0xff, 0xff, 0x80, 0, 0])),
        eth_src: Some(Masked::exact([2, 0, 0, 0, 0, 1])),
        eth_type: Some(ETH_TYPE_IPV4),
        vlan_vid: Some(Masked::with_mask(OFPVID_PRESENT, OFPVID_PRESENT)),
        ip_proto: Some(IP_PROTO_TCP),
        ipv4_src: Some(Masked::with_mask(
            Ipv4Addr::new(10, 1, 0, 0),
            Ipv4Addr::new(255, 255, 0, 0),
        )),
        ipv4_dst: Some(Masked::exact(Ipv4Addr::new(10, 2, 0, 1))),
        tcp_src: Some(1234),
        tcp_dst: Some(80),
        ..Match::default()
    }
}

fn udp6_match() -> Match {
    Match {
        eth_type: Some(ETH_TYPE_IPV6),
        ip_proto: Some(IP_PROTO_UDP),
        ipv6_src: Some(Masked::with_mask(
            "2001:db8::".parse().unwrap(),
            "ffff:ffff::".parse().unwrap(),
        )),
        ipv6_dst: Some(Masked::exact(Ipv6Addr::LOCALHOST)),
        udp_src: Some(53),
        udp_dst: Some(5353),
        ..Match::default()
    }
}

fn all_actions() -> Vec<Action> {
    let mut v: Vec<Action> = [
        ofpp::CONTROLLER,
        ofpp::IN_PORT,
        ofpp::ALL,
        ofpp::FLOOD,
        ofpp::TABLE,
        ofpp::LOCAL,
        7,
    ]
    .into_iter()
    .map(|port| Action::Output {
        port,
        max_len: ofpcml::NO_BUFFER,
    })
    .collect();
    v.extend([
        Action::SetQueue(3),
        Action::Group(OFPG_MAX),
        Action::CopyTtlOut,
        Action::CopyTtlIn,
        Action::SetNwTtl(64),
        Action::DecNwTtl,
    ]);
    let mac = |b| [2, 0, 0, 0, 0, b];
    let v6 = Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 7);
    v.extend(
        [
            SetField::EthDst(mac(9)),
            SetField::EthSrc(mac(8)),
            SetField::TunnelId(u64::MAX),
            SetField::VlanVid(0xfff),
            SetField::VlanPcp(7),
            SetField::IpDscp(63),
            SetField::IpEcn(3),
            SetField::Ipv4Src(Ipv4Addr::new(1, 2, 3, 4)),
            SetField::Ipv4Dst(Ipv4Addr::new(5, 6, 7, 8)),
            SetField::Ipv6Src(Ipv6Addr::LOCALHOST),
            SetField::Ipv6Dst(Ipv6Addr::UNSPECIFIED),
            SetField::Ipv6Flabel(0xfffff),
            SetField::TcpSrc(1),
            SetField::TcpDst(2),
            SetField::UdpSrc(3),
            SetField::UdpDst(4),
            SetField::SctpSrc(5),
            SetField::SctpDst(6),
            SetField::Icmpv4Type(8),
            SetField::Icmpv4Code(1),
            SetField::Icmpv6Type(128),
            SetField::Icmpv6Code(2),
            SetField::ArpOp(2),
            SetField::ArpSpa(Ipv4Addr::new(10, 0, 0, 1)),
            SetField::ArpTpa(Ipv4Addr::new(10, 0, 0, 2)),
            SetField::ArpSha(mac(1)),
            SetField::ArpTha(mac(2)),
            SetField::Ipv6NdTarget(v6),
            SetField::Ipv6NdSll(mac(3)),
            SetField::Ipv6NdTll(mac(4)),
            SetField::MplsLabel(0xfffff),
            SetField::MplsTc(7),
            SetField::MplsBos(1),
        ]
        .map(Action::SetField),
    );
    // Pushes and pops last, each followed by what it makes possible: a flow keeps
    // these whatever its match (see `flow_mod_matching`).
    v.extend([
        Action::PushVlan(ETH_TYPE_VLAN),
        Action::SetField(SetField::VlanVid(0)),
        Action::PushVlan(ETH_TYPE_VLAN_QINQ),
        Action::SetField(SetField::VlanPcp(0)),
        Action::PushMpls(ETH_TYPE_MPLS),
        Action::SetField(SetField::MplsLabel(16)),
        Action::SetMplsTtl(9),
        Action::DecMplsTtl,
        Action::PushMpls(ETH_TYPE_MPLS_MCAST),
        Action::PopMpls(ETH_TYPE_MPLS),
        Action::PopMpls(ETH_TYPE_IPV4),
        Action::SetField(SetField::IpDscp(1)),
        Action::DecNwTtl,
        Action::PopVlan,
        Action::PopVlan,
    ]);
    v
}

fn flow_mod(command: FlowModCommand) -> FlowMod {
    flow_mod_matching(command, tcp_match())
}

/// A flow mod using every instruction, and every action its match allows.
fn flow_mod_matching(command: FlowModCommand, match_: Match) -> FlowMod {
    let mut instructions = vec![
        Instruction::ClearActions,
        Instruction::WriteActions(vec![Action::Output { port: 4, max_len: 0 }]),
        Instruction::ApplyActions(all_actions()),
        Instruction::WriteMetadata {
            metadata: 0xab00,
            mask: 0xff00,
        },
        Instruction::Meter(OFPM_MAX),
        Instruction::GotoTable(2),
    ];
    super::strategy::keep_consistent(&match_, &mut instructions);
    FlowMod {
        cookie: 0xdead_beef,
        cookie_mask: u64::MAX,
        table_id: 1,
        command,
        idle_timeout: 10,
        hard_timeout: 300,
        priority: 0x8000,
        buffer_id: 77,
        out_port: 3,
        out_group: OFPG_ANY,
        flags: ofpff::SEND_FLOW_REM | ofpff::CHECK_OVERLAP | ofpff::RESET_COUNTS,
        match_,
        instructions,
    }
}

/// Every action and every settable field, in a PACKET_OUT (which has no match to
/// check them against) and, where its match allows, in a FLOW_MOD.
#[test]
fn every_action_round_trips() {
    let actions = all_actions();
    let out = Message::PacketOut(PacketOut {
        buffer_id: OFP_NO_BUFFER,
        in_port: ofpp::CONTROLLER,
        actions: actions.clone(),
        data: vec![],
    });
    round_trip(&out, 1);
    // After the pushes, every set-field of the list is kept over the widest matches.
    let Instruction::ApplyActions(kept) = &flow_mod_matching(FlowModCommand::Add, Match::default()).instructions[2]
    else {
        panic!("apply-actions moved")
    };
    assert!(kept.contains(&Action::SetField(SetField::VlanVid(0))), "{kept:?}");
    assert!(kept.contains(&Action::SetField(SetField::MplsLabel(16))), "{kept:?}");
    assert!(kept.contains(&Action::SetField(SetField::IpDscp(1))), "{kept:?}");
    assert!(!kept.contains(&Action::SetField(SetField::TcpSrc(1))), "{kept:?}");
}

#[test]
fn session_messages() {
    for m in [
        Message::Hello(Hello {
            version: 4,
            bitmap: None,
        }),
        Message::Hello(Hello::ours(VersionBitmap::of(&[1, 4]))),
        Message::Error(ErrorMsg {
            ty: ofpet::BAD_MATCH,
            code: ofpbmc::BAD_PREREQ,
            data: vec![4, 14, 0, 8],
        }),
        Message::EchoRequest(vec![]),
        Message::EchoRequest(b"ping".to_vec()),
        Message::EchoReply(b"ping".to_vec()),
        Message::FeaturesRequest,
        Message::GetConfigRequest,
        Message::GetConfigReply(SwitchConfig {
            flags: ofpc_frag::NORMAL,
            miss_send_len: 128,
        }),
        Message::SetConfig(SwitchConfig {
            flags: ofpc_frag::DROP,
            miss_send_len: ofpcml::NO_BUFFER,
        }),
        Message::BarrierRequest,
        Message::BarrierReply,
        Message::RoleRequest(RoleMsg {
            role: Role::Master,
            generation_id: 5,
        }),
        Message::RoleReply(RoleMsg {
            role: Role::Slave,
            generation_id: u64::MAX,
        }),
    ] {
        round_trip(&m, 3);
    }
}

#[test]
fn flow_mod_every_command() {
    for c in [
        FlowModCommand::Add,
        FlowModCommand::Modify,
        FlowModCommand::ModifyStrict,
        FlowModCommand::Delete,
        FlowModCommand::DeleteStrict,
    ] {
        round_trip(&Message::FlowMod(flow_mod(c)), 1);
    }
    let mut del_all = flow_mod(FlowModCommand::Delete);
    (del_all.table_id, del_all.instructions, del_all.match_) = (OFPTT_ALL, vec![], Match::default());
    round_trip(&Message::FlowMod(del_all), 1);
    let v6 = flow_mod_matching(FlowModCommand::Add, udp6_match());
    round_trip(&Message::FlowMod(v6), 1);
}

#[test]
fn packet_in_out_flow_removed_port_status() {
    round_trip(
        &Message::PacketIn(PacketIn {
            buffer_id: 12,
            total_len: 1500,
            reason: ofpr::ACTION,
            table_id: 3,
            cookie: 9,
            match_: Match {
                in_port: Some(0x1002),
                ..Match::default()
            },
            data: vec![0xab; 128],
        }),
        1,
    );
    round_trip(
        &Message::PacketOut(PacketOut {
            buffer_id: OFP_NO_BUFFER,
            in_port: ofpp::CONTROLLER,
            actions: all_actions(),
            data: vec![1; 60],
        }),
        2,
    );
    round_trip(
        &Message::PacketOut(PacketOut {
            buffer_id: 4,
            in_port: 1,
            actions: vec![],
            data: vec![],
        }),
        2,
    );
    round_trip(
        &Message::FlowRemoved(FlowRemoved {
            cookie: 1,
            priority: 2,
            reason: ofprr::IDLE_TIMEOUT,
            table_id: 0,
            duration_sec: 30,
            duration_nsec: 999_999_999,
            idle_timeout: 10,
            hard_timeout: 0,
            packet_count: 1 << 40,
            byte_count: 1 << 50,
            match_: udp6_match(),
        }),
        3,
    );
    for reason in [ofppr::ADD, ofppr::DELETE, ofppr::MODIFY] {
        round_trip(
            &Message::PortStatus(PortStatus {
                reason,
                desc: port(1, "firewall"),
            }),
            4,
        );
    }
}

#[test]
fn port_status_is_80_bytes_and_cuts_long_names() {
    let long = Message::PortStatus(PortStatus {
        reason: ofppr::ADD,
        desc: port(1, "a-very-long-port-name"),
    });
    let bytes = long.encode(0).unwrap();
    assert_eq!(bytes.len(), 80);
    let (_, Message::PortStatus(back)) = Message::decode(&bytes).unwrap() else {
        panic!()
    };
    assert_eq!(back.desc.name, "a-very-long-por");
}

#[test]
fn multipart_requests() {
    let flows = FlowStatsRequest {
        table_id: OFPTT_ALL,
        out_port: ofpp::ANY,
        out_group: OFPG_ANY,
        cookie: 0,
        cookie_mask: 0,
        match_: tcp_match(),
    };
    for body in [
        MultipartRequestBody::Desc,
        MultipartRequestBody::Flow(flows.clone()),
        MultipartRequestBody::Aggregate(flows),
        MultipartRequestBody::Table,
        MultipartRequestBody::PortStats { port_no: ofpp::ANY },
        MultipartRequestBody::PortDesc,
        MultipartRequestBody::Group { group_id: OFPG_ALL },
        MultipartRequestBody::Group { group_id: 7 },
        MultipartRequestBody::GroupDesc,
        MultipartRequestBody::GroupFeatures,
        MultipartRequestBody::Meter { meter_id: OFPM_ALL },
        MultipartRequestBody::MeterConfig { meter_id: 1 },
        MultipartRequestBody::MeterFeatures,
    ] {
        round_trip(&Message::MultipartRequest(MultipartRequest { flags: 0, body }), 5);
    }
}

#[test]
fn multipart_replies() {
    let stats = FlowStats {
        table_id: 0,
        duration_sec: 1,
        duration_nsec: 2,
        priority: 3,
        idle_timeout: 4,
        hard_timeout: 5,
        flags: ofpff::SEND_FLOW_REM,
        cookie: 6,
        packet_count: 7,
        byte_count: 8,
        match_: tcp_match(),
        instructions: flow_mod(FlowModCommand::Add).instructions,
    };
    let port_stats = PortStats {
        port_no: 1,
        rx_packets: 10,
        tx_bytes: 20,
        collisions: 1,
        duration_sec: 3,
        ..PortStats::default()
    };
    for (flags, body) in [
        (
            0,
            MultipartReplyBody::Desc(Desc {
                mfr_desc: "onvm-rs".into(),
                hw_desc: "NFV host".into(),
                sw_desc: "0.1.0".into(),
                serial_num: "None".into(),
                dp_desc: "manager on host a".into(),
            }),
        ),
        (OFPMPF_MORE, MultipartReplyBody::Flow(vec![stats.clone(), stats])),
        (0, MultipartReplyBody::Flow(vec![])),
        (
            0,
            MultipartReplyBody::Aggregate(AggregateStats {
                packet_count: 1,
                byte_count: 2,
                flow_count: 3,
            }),
        ),
        (
            0,
            MultipartReplyBody::Table(vec![TableStats {
                table_id: 0,
                active_count: 4,
                lookup_count: 100,
                matched_count: 90,
            }]),
        ),
        (OFPMPF_MORE, MultipartReplyBody::PortStats(vec![port_stats, port_stats])),
        (
            0,
            MultipartReplyBody::PortDesc(vec![port(1, "eth0"), port(0x1001, "firewall")]),
        ),
        (
            OFPMPF_MORE,
            MultipartReplyBody::Group(vec![
                GroupStats {
                    group_id: 1,
                    ref_count: 2,
                    packet_count: 3,
                    byte_count: 4,
                    duration_sec: 5,
                    duration_nsec: 6,
                    bucket_stats: vec![
                        BucketCounter {
                            packet_count: 7,
                            byte_count: 8,
                        };
                        3
                    ],
                },
                GroupStats::default(),
            ]),
        ),
        (0, MultipartReplyBody::Group(vec![])),
        (
            0,
            MultipartReplyBody::GroupDesc(vec![
                GroupDesc {
                    kind: GroupType::Select,
                    group_id: 1,
                    buckets: select_group().buckets,
                },
                GroupDesc {
                    kind: GroupType::All,
                    group_id: 2,
                    buckets: vec![],
                },
            ]),
        ),
        (
            0,
            MultipartReplyBody::GroupFeatures(GroupFeatures {
                types: 0xf,
                capabilities: ofpgfc::SELECT_WEIGHT | ofpgfc::CHAINING,
                max_groups: [1, 2, 3, 4],
                actions: [1 << ofpat::OUTPUT, 2, 3, 1 << ofpat::GROUP],
            }),
        ),
        (
            OFPMPF_MORE,
            MultipartReplyBody::Meter(vec![
                MeterStats {
                    meter_id: 1,
                    flow_count: 2,
                    packet_in_count: 3,
                    byte_in_count: 4,
                    duration_sec: 5,
                    duration_nsec: 6,
                    band_stats: vec![MeterBandStats {
                        packet_band_count: 7,
                        byte_band_count: 8,
                    }],
                },
                MeterStats::default(),
            ]),
        ),
        (
            0,
            MultipartReplyBody::MeterConfig(vec![
                MeterConfig {
                    flags: ofpmf::PKTPS | ofpmf::BURST,
                    meter_id: 1,
                    bands: meter_mod().bands,
                },
                MeterConfig {
                    flags: 0,
                    meter_id: 2,
                    bands: vec![],
                },
            ]),
        ),
        (
            0,
            MultipartReplyBody::MeterFeatures(MeterFeatures {
                max_meter: 1024,
                band_types: 1 << ofpmbt::DROP | 1 << ofpmbt::DSCP_REMARK,
                capabilities: u32::from(ofpmf::ALL),
                max_bands: 4,
                max_color: 8,
            }),
        ),
    ] {
        round_trip(&Message::MultipartReply(MultipartReply { flags, body }), 6);
    }
}

#[test]
fn desc_reply_is_1056_bytes_of_body() {
    let m = Message::MultipartReply(MultipartReply {
        flags: 0,
        body: MultipartReplyBody::Desc(Desc::default()),
    });
    assert_eq!(m.encode(0).unwrap().len(), 8 + 8 + 1056);
}

#[test]
fn too_long_a_reply_is_an_encode_error() {
    let ports = vec![PortStats::default(); 600]; // 600 * 112 bytes > 64 KiB
    let m = Message::MultipartReply(MultipartReply {
        flags: 0,
        body: MultipartReplyBody::PortStats(ports),
    });
    assert_eq!(m.encode(0), Err(EncodeError(16 + 600 * 112)));
}

/// Matches using every field of the codec beyond the classic ones, each with its
/// prerequisites.
fn wide_matches() -> Vec<Match> {
    let mac = |b| [2, 0, 0, 0, 0, b];
    vec![
        Match {
            in_port: Some(1),
            in_phy_port: Some(1),
            metadata: Some(Masked::with_mask(0xab00, 0xff00)),
            tunnel_id: Some(Masked::exact(7)),
            vlan_vid: Some(Masked::exact(OFPVID_PRESENT | 10)),
            vlan_pcp: Some(5),
            eth_type: Some(ETH_TYPE_IPV4),
            ip_dscp: Some(46),
            ip_ecn: Some(3),
            ip_proto: Some(IP_PROTO_ICMP),
            ipv4_dst: Some(Masked::with_mask(
                Ipv4Addr::new(10, 0, 0, 1),
                Ipv4Addr::new(255, 0, 255, 255),
            )),
            icmpv4_type: Some(8),
            icmpv4_code: Some(0),
            ..Match::default()
        },
        Match {
            vlan_vid: Some(Masked::exact(OFPVID_NONE)),
            eth_type: Some(ETH_TYPE_IPV6),
            ip_proto: Some(IP_PROTO_SCTP),
            ipv6_flabel: Some(Masked::with_mask(0x12000, 0xff000)),
            sctp_src: Some(5000),
            sctp_dst: Some(80),
            ..Match::default()
        },
        Match {
            vlan_vid: Some(Masked::with_mask(OFPVID_PRESENT, OFPVID_PRESENT)),
            eth_type: Some(ETH_TYPE_ARP),
            arp_op: Some(1),
            arp_spa: Some(Masked::with_mask(
                Ipv4Addr::new(10, 0, 0, 0),
                Ipv4Addr::new(255, 255, 255, 0),
            )),
            arp_tpa: Some(Masked::exact(Ipv4Addr::new(10, 0, 0, 9))),
            arp_sha: Some(Masked::exact(mac(1))),
            arp_tha: Some(Masked::with_mask(mac(0), [0xff, 0xff, 0xff, 0, 0, 0])),
            ..Match::default()
        },
        Match {
            eth_type: Some(ETH_TYPE_IPV6),
            ip_proto: Some(IP_PROTO_ICMPV6),
            icmpv6_type: Some(ICMPV6_ND_SOLICIT),
            icmpv6_code: Some(0),
            ipv6_nd_target: Some(Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 2)),
            ipv6_nd_sll: Some(mac(3)),
            ..Match::default()
        },
        Match {
            eth_type: Some(ETH_TYPE_IPV6),
            ip_proto: Some(IP_PROTO_ICMPV6),
            icmpv6_type: Some(ICMPV6_ND_ADVERT),
            ipv6_nd_tll: Some(mac(4)),
            ..Match::default()
        },
        Match {
            eth_type: Some(ETH_TYPE_MPLS),
            mpls_label: Some(0xfffff),
            mpls_tc: Some(7),
            mpls_bos: Some(1),
            ..Match::default()
        },
    ]
}

#[test]
fn every_supported_field_round_trips() {
    for m in wide_matches() {
        round_trip(&Message::FlowMod(flow_mod_matching(FlowModCommand::Add, m.clone())), 7);
        round_trip(
            &Message::FlowRemoved(FlowRemoved {
                cookie: 1,
                priority: 2,
                reason: ofprr::DELETE,
                table_id: 0,
                duration_sec: 1,
                duration_nsec: 0,
                idle_timeout: 0,
                hard_timeout: 0,
                packet_count: 0,
                byte_count: 0,
                match_: m,
            }),
            8,
        );
    }
}

#[test]
fn value_bits_outside_the_mask_are_cleared_as_open_vswitch_does() {
    use super::{hex, msg};
    // eth_src 02:00:00:00:00:01/ff:ff:ff:ff:ff:00, metadata 0xffff/0x00ff.
    let tlvs = hex(
        "80 00 09 0c 02 00 00 00 00 01 ff ff ff ff ff 00 80 00 05 10 00 00 00 00 00 00 ff ff 00 00 00 00 00 00 00 ff",
    );
    let mut body = vec![0u8; 40];
    body[24..28].copy_from_slice(&[0xff; 4]); // buffer_id
    body[28..32].copy_from_slice(&[0xff; 4]); // out_port
    body[32..36].copy_from_slice(&[0xff; 4]); // out_group
    body.extend(OFPMT_OXM.to_be_bytes());
    body.extend(u16::try_from(4 + tlvs.len()).unwrap().to_be_bytes());
    body.extend(&tlvs);
    body.resize(body.len() + (8 - (4 + tlvs.len()) % 8) % 8, 0);
    let (_, m) = Message::decode(&msg(4, ofpt::FLOW_MOD, 1, &body)).unwrap();
    let Message::FlowMod(f) = m else {
        panic!("not a flow mod")
    };
    assert_eq!(
        f.match_.eth_src,
        Some(Masked::with_mask([2, 0, 0, 0, 0, 0], [0xff, 0xff, 0xff, 0xff, 0xff, 0]))
    );
    assert_eq!(f.match_.metadata, Some(Masked::with_mask(0xff, 0xff)));
}

#[test]
fn prerequisites_may_come_after_the_field() {
    // tcp_dst before ip_proto before eth_type: the order of the TLVs does not matter.
    let m = Match {
        eth_type: Some(ETH_TYPE_IPV4),
        ip_proto: Some(IP_PROTO_TCP),
        tcp_dst: Some(80),
        ..Match::default()
    };
    assert_eq!(m.check_prereqs(), Ok(()));
}

/// A select group of three weighted buckets, one watching a port.
fn select_group() -> GroupMod {
    let out = |port| Action::Output { port, max_len: 0 };
    GroupMod {
        command: GroupModCommand::Add,
        kind: GroupType::Select,
        group_id: 1,
        buckets: vec![
            Bucket {
                weight: 50,
                watch_port: ofpp::ANY,
                watch_group: OFPG_ANY,
                actions: vec![Action::SetField(SetField::EthDst([2, 0, 0, 0, 0, 1])), out(1)],
            },
            Bucket {
                weight: 30,
                watch_port: 2,
                watch_group: OFPG_ANY,
                actions: vec![out(2)],
            },
            Bucket {
                weight: 20,
                watch_port: ofpp::ANY,
                watch_group: OFPG_ANY,
                actions: vec![Action::PushVlan(ETH_TYPE_VLAN), Action::Group(7)],
            },
        ],
    }
}

fn meter_mod() -> MeterMod {
    MeterMod {
        command: MeterModCommand::Add,
        flags: ofpmf::PKTPS | ofpmf::BURST | ofpmf::STATS,
        meter_id: 1,
        bands: vec![
            MeterBand {
                kind: MeterBandKind::Drop,
                rate: 1000,
                burst_size: 100,
            },
            MeterBand {
                kind: MeterBandKind::DscpRemark { prec_level: 1 },
                rate: 500,
                burst_size: 50,
            },
        ],
    }
}

#[test]
fn group_mods() {
    round_trip(&Message::GroupMod(select_group()), 9);
    for (command, kind, group_id, buckets) in [
        (GroupModCommand::Modify, GroupType::All, 2, select_group().buckets),
        (
            GroupModCommand::Add,
            GroupType::Indirect,
            OFPG_MAX,
            select_group().buckets[..1].to_vec(),
        ),
        (GroupModCommand::Add, GroupType::FastFailover, 3, select_group().buckets),
        (GroupModCommand::Delete, GroupType::All, OFPG_ALL, vec![]),
        (GroupModCommand::Add, GroupType::All, 0, vec![]),
    ] {
        let g = GroupMod {
            command,
            kind,
            group_id,
            buckets,
        };
        round_trip(&Message::GroupMod(g), 9);
    }
}

#[test]
fn meter_mods() {
    round_trip(&Message::MeterMod(meter_mod()), 10);
    for (command, flags, meter_id) in [
        (MeterModCommand::Modify, ofpmf::KBPS, OFPM_MAX),
        (MeterModCommand::Add, 0, OFPM_CONTROLLER),
        (MeterModCommand::Add, ofpmf::KBPS, OFPM_SLOWPATH),
        (MeterModCommand::Delete, 0, OFPM_ALL),
    ] {
        let m = MeterMod {
            command,
            flags,
            meter_id,
            bands: vec![],
        };
        round_trip(&Message::MeterMod(m), 10);
    }
}

/// Replies too long for one message are packed into parts by encoded size, each of
/// which encodes, REPLY_MORE on all but the last, the entries in order.
#[test]
fn long_replies_split_into_parts_that_fit() {
    let groups: Vec<GroupDesc> = (0..300)
        .map(|i| GroupDesc {
            kind: GroupType::All,
            group_id: i,
            // 1 to 20 buckets: entries of 8 + 32 to 8 + 640 bytes.
            buckets: vec![select_group().buckets[1].clone(); 1 + i as usize % 20],
        })
        .collect();
    let parts = MultipartReply::split(MultipartReplyBody::GroupDesc(groups.clone()));
    assert!(parts.len() > 1, "{} parts", parts.len());
    let entries = |p: &MultipartReply| match &p.body {
        MultipartReplyBody::GroupDesc(g) => g.clone(),
        _ => panic!("kind changed"),
    };
    let mut back = Vec::new();
    for (k, part) in parts.iter().enumerate() {
        let bytes = round_trip(&Message::MultipartReply(part.clone()), 1);
        assert_eq!(part.flags, if k + 1 < parts.len() { OFPMPF_MORE } else { 0 });
        // Each part but the last is full: the next entry would not have fitted.
        if let Some(next) = parts.get(k + 1) {
            let next_len = 8 + 32 * entries(next)[0].buckets.len();
            assert!(
                bytes.len() - 16 + next_len > MAX_REPLY_BODY,
                "part {k} of {} bytes",
                bytes.len()
            );
        }
        back.extend(entries(part));
    }
    assert_eq!(back, groups);

    let ports = vec![PortStats::default(); 600];
    let parts = MultipartReply::split(MultipartReplyBody::PortStats(ports));
    let sizes: Vec<usize> = parts
        .iter()
        .map(|p| match &p.body {
            MultipartReplyBody::PortStats(v) => v.len(),
            _ => 0,
        })
        .collect();
    assert_eq!(sizes, [MAX_REPLY_BODY / 112, 600 - MAX_REPLY_BODY / 112]);

    for one in [
        MultipartReplyBody::Meter(vec![]),
        MultipartReplyBody::MeterFeatures(MeterFeatures::default()),
    ] {
        let parts = MultipartReply::split(one.clone());
        assert_eq!(parts, [MultipartReply { flags: 0, body: one }]);
    }
}
