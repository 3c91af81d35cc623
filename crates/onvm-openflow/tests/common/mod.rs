//! What the interop tests feed to other OpenFlow implementations: one sample of every
//! message a switch sends, and the features of an onvm flow table.

use std::net::Ipv4Addr;

use onvm_openflow::*;

/// Fails the test without `ovs-ofctl` (`false` only with ONVM_ALLOW_SKIP=1: return).
#[allow(dead_code)] // each test binary uses one of the two tools
#[must_use]
#[track_caller]
pub fn have_ovs_ofctl() -> bool {
    onvm_testkit::require_tool("ovs-ofctl", "apt install openvswitch-common")
}

/// Fails the test without python3 and os-ken (`false` only with ONVM_ALLOW_SKIP=1: return).
#[allow(dead_code)] // each test binary uses one of the two tools
#[must_use]
#[track_caller]
pub fn have_os_ken() -> bool {
    onvm_testkit::require_python_module("os_ken", "python3 -m pip install os-ken")
}

/// Lower-case hex, as `ovs-ofctl ofp-print` and Python's `bytes.fromhex` take it.
pub fn to_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub fn port(n: u32, name: &str) -> Port {
    Port {
        port_no: n,
        hw_addr: [2, 0, 0, 0, 0, n as u8],
        name: name.into(),
        config: 0,
        state: ofpps::LIVE,
        curr: ofppf::TEN_GB_FD | ofppf::COPPER,
        advertised: 0,
        supported: 0,
        peer: 0,
        curr_speed: 10_000_000,
        max_speed: 10_000_000,
    }
}

pub fn tcp_match() -> Match {
    Match {
        in_port: Some(1),
        eth_type: Some(ETH_TYPE_IPV4),
        ip_proto: Some(IP_PROTO_TCP),
        ipv4_dst: Some(Masked::with_mask(
            Ipv4Addr::new(10, 0, 0, 0),
            Ipv4Addr::new(255, 255, 255, 0),
        )),
        tcp_dst: Some(80),
        ..Match::default()
    }
}

/// Messages a switch sends, each with a phrase OVS prints for it.
pub fn samples() -> Vec<(Message, &'static str)> {
    let flow = FlowStats {
        table_id: 0,
        duration_sec: 5,
        duration_nsec: 0,
        priority: 100,
        idle_timeout: 10,
        hard_timeout: 0,
        flags: ofpff::SEND_FLOW_REM,
        cookie: 0x42,
        packet_count: 7,
        byte_count: 700,
        match_: tcp_match(),
        instructions: vec![
            Instruction::ApplyActions(vec![
                Action::SetField(SetField::TcpDst(8080)),
                Action::Output { port: 2, max_len: 0 },
            ]),
            Instruction::GotoTable(1),
        ],
    };
    let reply = |body| Message::MultipartReply(MultipartReply { flags: 0, body });
    vec![
        (
            Message::Hello(Hello::ours(VersionBitmap::of(&[OFP_VERSION]))),
            "OFPT_HELLO",
        ),
        (
            Message::FeaturesReply(FeaturesReply {
                datapath_id: 0xabc,
                n_buffers: 256,
                n_tables: 4,
                auxiliary_id: 0,
                capabilities: ofpc::FLOW_STATS | ofpc::TABLE_STATS | ofpc::PORT_STATS,
                reserved: 0,
            }),
            "dpid:0000000000000abc",
        ),
        (
            Message::GetConfigReply(SwitchConfig {
                flags: 0,
                miss_send_len: 128,
            }),
            "miss_send_len=128",
        ),
        (Message::EchoReply(b"x".to_vec()), "OFPT_ECHO_REPLY"),
        (Message::BarrierReply, "OFPT_BARRIER_REPLY"),
        (
            Message::RoleReply(RoleMsg {
                role: Role::Master,
                generation_id: 3,
            }),
            "generation_id=3",
        ),
        (
            Message::Error(ErrorMsg {
                ty: ofpet::BAD_MATCH,
                code: ofpbmc::BAD_PREREQ,
                data: Message::BarrierRequest.encode(9).unwrap(),
            }),
            "OFPBMC_BAD_PREREQ",
        ),
        (
            Message::PacketIn(PacketIn {
                buffer_id: OFP_NO_BUFFER,
                total_len: 60,
                reason: ofpr::NO_MATCH,
                table_id: 0,
                cookie: u64::MAX,
                match_: Match {
                    in_port: Some(3),
                    ..Match::default()
                },
                data: vec![0; 60],
            }),
            "in_port=3",
        ),
        (
            Message::FlowRemoved(FlowRemoved {
                cookie: 0x42,
                priority: 100,
                reason: ofprr::IDLE_TIMEOUT,
                table_id: 0,
                duration_sec: 12,
                duration_nsec: 0,
                idle_timeout: 10,
                hard_timeout: 0,
                packet_count: 7,
                byte_count: 700,
                match_: tcp_match(),
            }),
            "reason=idle",
        ),
        (
            Message::PortStatus(PortStatus {
                reason: ofppr::ADD,
                desc: port(1, "eth0"),
            }),
            "ADD: 1(eth0)",
        ),
        (
            reply(MultipartReplyBody::Desc(Desc {
                mfr_desc: "onvm-rs".into(),
                hw_desc: "NFV host".into(),
                sw_desc: "0.1.0".into(),
                serial_num: "1".into(),
                dp_desc: "manager".into(),
            })),
            "Manufacturer: onvm-rs",
        ),
        (
            reply(MultipartReplyBody::Flow(vec![flow.clone(), flow.clone()])),
            "tp_dst=80",
        ),
        (
            reply(MultipartReplyBody::Aggregate(AggregateStats {
                packet_count: 7,
                byte_count: 700,
                flow_count: 1,
            })),
            "flow_count=1",
        ),
        (
            reply(MultipartReplyBody::Table(vec![TableStats {
                table_id: 0,
                active_count: 1,
                lookup_count: 10,
                matched_count: 9,
            }])),
            "active=1",
        ),
        (
            reply(MultipartReplyBody::PortStats(vec![PortStats {
                port_no: 1,
                rx_packets: 5,
                tx_packets: 6,
                ..PortStats::default()
            }])),
            "rx pkts=5",
        ),
        (
            reply(MultipartReplyBody::PortDesc(vec![
                port(1, "eth0"),
                port(0x1001, "firewall"),
            ])),
            "4097(firewall)",
        ),
        (
            reply(MultipartReplyBody::Flow(vec![FlowStats {
                match_: Match {
                    in_port: Some(1),
                    eth_type: Some(ETH_TYPE_IPV4),
                    ..Match::default()
                },
                instructions: pipeline_instructions(),
                ..flow
            }])),
            "actions=meter:1,dec_ttl,push_vlan:0x8100,set_field:4101->vlan_vid,push_mpls:0x8847,\
             set_field:100->mpls_label,output:2,write_metadata:0xab00/0xff00,goto_table:1",
        ),
        (
            reply(MultipartReplyBody::Group(vec![GroupStats {
                group_id: 1,
                ref_count: 2,
                packet_count: 30,
                byte_count: 3000,
                duration_sec: 5,
                duration_nsec: 0,
                bucket_stats: vec![
                    BucketCounter {
                        packet_count: 10,
                        byte_count: 1000,
                    },
                    BucketCounter {
                        packet_count: 20,
                        byte_count: 2000,
                    },
                ],
            }])),
            "group_id=1,duration=5s,ref_count=2,packet_count=30,byte_count=3000,\
             bucket0:packet_count=10,byte_count=1000,bucket1:packet_count=20,byte_count=2000",
        ),
        (
            reply(MultipartReplyBody::GroupDesc(vec![GroupDesc {
                kind: GroupType::Select,
                group_id: 1,
                buckets: select_group().buckets,
            }])),
            "group_id=1,type=select,bucket=weight:50,actions=set_field:02:00:00:00:00:01->eth_dst,output:1",
        ),
        (
            reply(MultipartReplyBody::GroupFeatures(GroupFeatures {
                types: 1 << ofpgt::ALL | 1 << ofpgt::SELECT,
                capabilities: ofpgfc::SELECT_WEIGHT,
                max_groups: [16, 8, 0, 0],
                actions: [1 << ofpat::OUTPUT, 1 << ofpat::OUTPUT | 1 << ofpat::PUSH_VLAN, 0, 0],
            })),
            "max_groups=0x8",
        ),
        (
            reply(MultipartReplyBody::Meter(vec![MeterStats {
                meter_id: 1,
                flow_count: 2,
                packet_in_count: 100,
                byte_in_count: 10000,
                duration_sec: 3,
                duration_nsec: 0,
                band_stats: vec![MeterBandStats {
                    packet_band_count: 5,
                    byte_band_count: 500,
                }],
            }])),
            "meter:1 flow_count:2 packet_in_count:100 byte_in_count:10000 duration:3s bands:\n0: packet_count:5 byte_count:500",
        ),
        (
            reply(MultipartReplyBody::MeterConfig(vec![MeterConfig {
                flags: ofpmf::PKTPS | ofpmf::BURST,
                meter_id: 1,
                bands: meter_mod().bands,
            }])),
            "meter=1 pktps burst bands=",
        ),
        (
            reply(MultipartReplyBody::MeterFeatures(MeterFeatures {
                max_meter: 1024,
                band_types: 1 << ofpmbt::DROP,
                capabilities: u32::from(ofpmf::PKTPS | ofpmf::BURST),
                max_bands: 1,
                max_color: 0,
            })),
            "max_meter:1024 max_bands:1 max_color:0",
        ),
    ]
}

/// A FLOW_MOD's instructions that use the actions beyond output and set-field: meter,
/// TTL, VLAN and MPLS pushes (the pushes meeting the set-fields' prerequisites),
/// write-metadata.
pub fn pipeline_instructions() -> Vec<Instruction> {
    vec![
        Instruction::Meter(1),
        Instruction::ApplyActions(vec![
            Action::DecNwTtl,
            Action::PushVlan(ETH_TYPE_VLAN),
            Action::SetField(SetField::VlanVid(5)),
            Action::PushMpls(ETH_TYPE_MPLS),
            Action::SetField(SetField::MplsLabel(100)),
            Action::Output { port: 2, max_len: 0 },
        ]),
        Instruction::WriteMetadata {
            metadata: 0xab00,
            mask: 0xff00,
        },
        Instruction::GotoTable(1),
    ]
}

/// A select group of three weighted buckets, one watching a port, one pushing a tag.
pub fn select_group() -> GroupMod {
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
                actions: vec![
                    Action::PushVlan(ETH_TYPE_VLAN),
                    Action::SetField(SetField::VlanVid(5)),
                    out(3),
                ],
            },
        ],
    }
}

/// A packets-per-second meter with a burst and one drop band.
pub fn meter_mod() -> MeterMod {
    MeterMod {
        command: MeterModCommand::Add,
        flags: ofpmf::PKTPS | ofpmf::BURST,
        meter_id: 1,
        bands: vec![MeterBand {
            kind: MeterBandKind::Drop,
            rate: 1000,
            burst_size: 100,
        }],
    }
}

/// Messages a controller sends that use groups, meters and the newer actions, each
/// with what `ovs-ofctl ofp-print` shows for it. `tests/osken_parse.rs` builds the same
/// messages, in this order, with os-ken.
#[allow(dead_code)] // each test binary uses what it needs
pub fn controller_samples() -> Vec<(Message, &'static str)> {
    let flow = FlowMod {
        cookie: 0,
        cookie_mask: 0,
        table_id: 0,
        command: FlowModCommand::Add,
        idle_timeout: 0,
        hard_timeout: 0,
        priority: 10,
        buffer_id: OFP_NO_BUFFER,
        out_port: ofpp::ANY,
        out_group: OFPG_ANY,
        flags: 0,
        match_: Match {
            in_port: Some(1),
            eth_type: Some(ETH_TYPE_IPV4),
            ..Match::default()
        },
        instructions: pipeline_instructions(),
    };
    vec![
        (
            Message::GroupMod(select_group()),
            "ADD group_id=1,type=select,bucket=weight:50,actions=set_field:02:00:00:00:00:01->eth_dst,output:1,\
             bucket=weight:30,watch_port:2,actions=output:2,\
             bucket=weight:20,actions=push_vlan:0x8100,set_field:4101->vlan_vid,output:3",
        ),
        (
            Message::MeterMod(meter_mod()),
            "ADD meter=1 pktps burst bands=\ntype=drop rate=1000 burst_size=100",
        ),
        (
            Message::FlowMod(flow),
            "ADD priority=10,ip,in_port=1 actions=meter:1,dec_ttl,push_vlan:0x8100,set_field:4101->vlan_vid,\
             push_mpls:0x8847,set_field:100->mpls_label,output:2,write_metadata:0xab00/0xff00,goto_table:1",
        ),
    ]
}

/// The features of one onvm table (the crate's own description).
pub fn onvm_table(table_id: u8, n_tables: u8) -> TableFeatures {
    TableFeatures::onvm(table_id, n_tables)
}
