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
        (reply(MultipartReplyBody::Flow(vec![flow.clone(), flow])), "tp_dst=80"),
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
    ]
}

/// The features of one onvm table (the crate's own description).
pub fn onvm_table(table_id: u8, n_tables: u8) -> TableFeatures {
    TableFeatures::onvm(table_id, n_tables)
}
