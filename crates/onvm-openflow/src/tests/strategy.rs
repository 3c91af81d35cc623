//! proptest strategies for valid messages: what a correct peer could send.

use std::net::{Ipv4Addr, Ipv6Addr};

use proptest::collection::vec;
use proptest::option::of as maybe;
use proptest::prelude::*;

use crate::*;

fn bytes(max: usize) -> impl Strategy<Value = Vec<u8>> {
    vec(any::<u8>(), 0..max)
}

/// A value and, maybe, a mask it fits in.
fn masked<T: Copy + std::fmt::Debug, const N: usize>(from: fn([u8; N]) -> T) -> impl Strategy<Value = Masked<T>> {
    (any::<[u8; N]>(), maybe(any::<[u8; N]>())).prop_map(move |(v, m)| match m {
        None => Masked::exact(from(v)),
        Some(m) => Masked::with_mask(from(std::array::from_fn(|i| v[i] & m[i])), from(m)),
    })
}

fn mac() -> impl Strategy<Value = Masked<[u8; 6]>> {
    masked(|b| b)
}

fn v4() -> impl Strategy<Value = Masked<Ipv4Addr>> {
    masked(Ipv4Addr::from)
}

fn v6() -> impl Strategy<Value = Masked<Ipv6Addr>> {
    masked(Ipv6Addr::from)
}

fn vlan() -> impl Strategy<Value = Masked<u16>> {
    prop_oneof![
        Just(Masked::exact(OFPVID_NONE)),
        (0u16..0x1000).prop_map(|v| Masked::exact(OFPVID_PRESENT | v)),
        (0u16..0x2000, 0u16..0x2000).prop_map(|(v, m)| Masked::with_mask(v & m, m)),
    ]
}

/// Matches that satisfy the prerequisites: layer 3 and 4 fields are chosen together.
pub(crate) fn a_match() -> impl Strategy<Value = Match> {
    let l2 = (maybe(any::<u32>()), maybe(mac()), maybe(mac()), maybe(vlan()));
    // 0 = no eth_type, 1 = other, 2 = IPv4, 3 = IPv6; proto 0 = none, 1 = TCP, 2 = UDP, 3 = other.
    let l3 = (
        0u8..4,
        any::<u16>(),
        0u8..4,
        any::<u8>(),
        maybe(v4()),
        maybe(v4()),
        maybe(v6()),
        maybe(v6()),
    );
    let l4 = (maybe(any::<u16>()), maybe(any::<u16>()));
    (l2, l3, l4).prop_map(
        |((in_port, eth_dst, eth_src, vlan_vid), (l3, other_type, proto, other_proto, s4, d4, s6, d6), (sp, dp))| {
            let mut m = Match {
                in_port,
                eth_dst,
                eth_src,
                vlan_vid,
                ..Match::default()
            };
            m.eth_type = match l3 {
                0 => None,
                1 => Some(other_type),
                2 => Some(ETH_TYPE_IPV4),
                _ => Some(ETH_TYPE_IPV6),
            };
            match m.eth_type {
                Some(ETH_TYPE_IPV4) => (m.ipv4_src, m.ipv4_dst) = (s4, d4),
                Some(ETH_TYPE_IPV6) => (m.ipv6_src, m.ipv6_dst) = (s6, d6),
                _ => return m,
            }
            m.ip_proto = match proto {
                0 => None,
                1 => Some(IP_PROTO_TCP),
                2 => Some(IP_PROTO_UDP),
                _ => Some(other_proto),
            };
            match m.ip_proto {
                Some(IP_PROTO_TCP) => (m.tcp_src, m.tcp_dst) = (sp, dp),
                Some(IP_PROTO_UDP) => (m.udp_src, m.udp_dst) = (sp, dp),
                _ => {}
            }
            m
        },
    )
}

fn out_port() -> impl Strategy<Value = u32> {
    prop_oneof![
        1u32..=ofpp::MAX,
        prop::sample::select(vec![
            ofpp::IN_PORT,
            ofpp::TABLE,
            ofpp::NORMAL,
            ofpp::FLOOD,
            ofpp::ALL,
            ofpp::CONTROLLER,
            ofpp::LOCAL,
        ]),
    ]
}

/// Every settable field, each value within its field's width.
fn set_field() -> impl Strategy<Value = SetField> {
    use SetField as S;
    let ip4 = || any::<[u8; 4]>().prop_map(Ipv4Addr::from);
    let ip6 = || any::<[u8; 16]>().prop_map(Ipv6Addr::from);
    let l2 = prop_oneof![
        any::<[u8; 6]>().prop_map(S::EthDst),
        any::<[u8; 6]>().prop_map(S::EthSrc),
        (0u16..0x1000).prop_map(S::VlanVid),
        (0u8..8).prop_map(S::VlanPcp),
        any::<u64>().prop_map(S::TunnelId),
        (0u32..1 << 20).prop_map(S::MplsLabel),
        (0u8..8).prop_map(S::MplsTc),
        (0u8..2).prop_map(S::MplsBos),
    ];
    let l3 = prop_oneof![
        (0u8..64).prop_map(S::IpDscp),
        (0u8..4).prop_map(S::IpEcn),
        ip4().prop_map(S::Ipv4Src),
        ip4().prop_map(S::Ipv4Dst),
        ip6().prop_map(S::Ipv6Src),
        ip6().prop_map(S::Ipv6Dst),
        (0u32..1 << 20).prop_map(S::Ipv6Flabel),
        any::<u16>().prop_map(S::ArpOp),
        ip4().prop_map(S::ArpSpa),
        ip4().prop_map(S::ArpTpa),
        any::<[u8; 6]>().prop_map(S::ArpSha),
        any::<[u8; 6]>().prop_map(S::ArpTha),
    ];
    let l4 = prop_oneof![
        any::<u16>().prop_map(S::TcpSrc),
        any::<u16>().prop_map(S::TcpDst),
        any::<u16>().prop_map(S::UdpSrc),
        any::<u16>().prop_map(S::UdpDst),
        any::<u16>().prop_map(S::SctpSrc),
        any::<u16>().prop_map(S::SctpDst),
        any::<u8>().prop_map(S::Icmpv4Type),
        any::<u8>().prop_map(S::Icmpv4Code),
        any::<u8>().prop_map(S::Icmpv6Type),
        any::<u8>().prop_map(S::Icmpv6Code),
        ip6().prop_map(S::Ipv6NdTarget),
        any::<[u8; 6]>().prop_map(S::Ipv6NdSll),
        any::<[u8; 6]>().prop_map(S::Ipv6NdTll),
    ];
    prop_oneof![l2, l3, l4]
}

/// Every action, with valid arguments (no header checks: see [`flow_mod`]).
pub(crate) fn action() -> impl Strategy<Value = Action> {
    let ttl = prop_oneof![
        Just(Action::CopyTtlOut),
        Just(Action::CopyTtlIn),
        any::<u8>().prop_map(Action::SetMplsTtl),
        Just(Action::DecMplsTtl),
        any::<u8>().prop_map(Action::SetNwTtl),
        Just(Action::DecNwTtl),
    ];
    let tags = prop_oneof![
        prop::sample::select(vec![ETH_TYPE_VLAN, ETH_TYPE_VLAN_QINQ]).prop_map(Action::PushVlan),
        Just(Action::PopVlan),
        prop::sample::select(vec![ETH_TYPE_MPLS, ETH_TYPE_MPLS_MCAST]).prop_map(Action::PushMpls),
        prop_oneof![
            Just(ETH_TYPE_IPV4),
            Just(ETH_TYPE_IPV6),
            Just(ETH_TYPE_MPLS),
            any::<u16>()
        ]
        .prop_map(Action::PopMpls),
    ];
    prop_oneof![
        2 => (out_port(), any::<u16>()).prop_map(|(port, max_len)| Action::Output { port, max_len }),
        1 => ttl,
        1 => tags,
        1 => any::<u32>().prop_map(Action::SetQueue),
        1 => (0..=OFPG_MAX).prop_map(Action::Group),
        3 => set_field().prop_map(Action::SetField),
    ]
}

/// Keeps the actions that have their header where they stand (in a flow whose match
/// is `m`): apply-actions first in their order, then write-actions in the order the
/// action set runs them, as [`HeaderState`] checks them. (A refused step leaves the
/// state as it was, so dropping it does not change what follows.)
pub(crate) fn keep_consistent(m: &Match, instructions: &mut [Instruction]) {
    let mut state = HeaderState::of(m);
    for i in instructions.iter_mut() {
        if let Instruction::ApplyActions(a) = i {
            a.retain(|a| state.step(a).is_ok());
        }
    }
    for i in instructions.iter_mut() {
        if let Instruction::WriteActions(a) = i {
            let mut order: Vec<usize> = (0..a.len()).collect();
            order.sort_by_key(|&k| a[k].set_order());
            let fine: Vec<bool> = {
                let mut fine = vec![false; a.len()];
                for k in order {
                    fine[k] = state.step(&a[k]).is_ok();
                }
                fine
            };
            let mut k = 0;
            a.retain(|_| {
                k += 1;
                fine[k - 1]
            });
        }
    }
}

/// Instructions; a GOTO_TABLE target is in `1..=OFPTT_MAX` (flow mods fix it up to go forward).
pub(crate) fn instructions() -> impl Strategy<Value = Vec<Instruction>> {
    let one = prop_oneof![
        (1u8..=OFPTT_MAX).prop_map(Instruction::GotoTable),
        vec(action(), 0..4).prop_map(Instruction::WriteActions),
        vec(action(), 0..4).prop_map(Instruction::ApplyActions),
        Just(Instruction::ClearActions),
        any::<(u64, u64)>().prop_map(|(metadata, mask)| Instruction::WriteMetadata { metadata, mask }),
        (1..=OFPM_MAX).prop_map(Instruction::Meter),
    ];
    vec(one, 0..4)
}

fn command() -> impl Strategy<Value = FlowModCommand> {
    prop::sample::select(vec![
        FlowModCommand::Add,
        FlowModCommand::Modify,
        FlowModCommand::ModifyStrict,
        FlowModCommand::Delete,
        FlowModCommand::DeleteStrict,
    ])
}

pub(crate) fn flow_mod() -> impl Strategy<Value = FlowMod> {
    (
        (
            any::<u64>(),
            any::<u64>(),
            0u8..OFPTT_MAX,
            command(),
            any::<u16>(),
            any::<u16>(),
            any::<u16>(),
        ),
        (any::<u32>(), any::<u32>(), any::<u32>(), 0u16..=ofpff::ALL),
        a_match(),
        instructions(),
    )
        .prop_map(
            |(
                (cookie, cookie_mask, table_id, command, idle, hard, priority),
                (buffer_id, out_port, out_group, flags),
                match_,
                mut instructions,
            )| {
                for i in &mut instructions {
                    if let Instruction::GotoTable(t) = i {
                        *t = table_id + 1 + *t % (OFPTT_MAX - table_id);
                    }
                }
                keep_consistent(&match_, &mut instructions);
                FlowMod {
                    cookie,
                    cookie_mask,
                    table_id,
                    command,
                    idle_timeout: idle,
                    hard_timeout: hard,
                    priority,
                    buffer_id,
                    out_port,
                    out_group,
                    flags,
                    match_,
                    instructions,
                }
            },
        )
}

/// Printable text without NULs, at most `max` bytes (what fits a `char[max + 1]`).
fn text(max: usize) -> impl Strategy<Value = String> {
    proptest::string::string_regex(&format!("[ -~]{{0,{max}}}")).expect("valid regex")
}

pub(crate) fn port() -> impl Strategy<Value = Port> {
    (
        any::<u32>(),
        any::<[u8; 6]>(),
        text(MAX_PORT_NAME_LEN - 1),
        any::<[u32; 8]>(),
    )
        .prop_map(|(port_no, hw_addr, name, v)| Port {
            port_no,
            hw_addr,
            name,
            config: v[0],
            state: v[1],
            curr: v[2],
            advertised: v[3],
            supported: v[4],
            peer: v[5],
            curr_speed: v[6],
            max_speed: v[7],
        })
}

fn flow_stats_request() -> impl Strategy<Value = FlowStatsRequest> {
    (
        any::<u8>(),
        any::<u32>(),
        any::<u32>(),
        any::<u64>(),
        any::<u64>(),
        a_match(),
    )
        .prop_map(
            |(table_id, out_port, out_group, cookie, cookie_mask, match_)| FlowStatsRequest {
                table_id,
                out_port,
                out_group,
                cookie,
                cookie_mask,
                match_,
            },
        )
}

fn flow_stats() -> impl Strategy<Value = FlowStats> {
    (
        any::<(u8, u32, u32, u16, u16, u16, u16)>(),
        any::<(u64, u64, u64)>(),
        a_match(),
        instructions(),
    )
        .prop_map(
            |(
                (table_id, duration_sec, duration_nsec, priority, idle_timeout, hard_timeout, flags),
                (cookie, packet_count, byte_count),
                match_,
                instructions,
            )| FlowStats {
                table_id,
                duration_sec,
                duration_nsec,
                priority,
                idle_timeout,
                hard_timeout,
                flags,
                cookie,
                packet_count,
                byte_count,
                match_,
                instructions,
            },
        )
}

fn port_stats() -> impl Strategy<Value = PortStats> {
    (any::<u32>(), any::<[u64; 12]>(), any::<(u32, u32)>()).prop_map(|(port_no, c, (duration_sec, duration_nsec))| {
        PortStats {
            port_no,
            rx_packets: c[0],
            tx_packets: c[1],
            rx_bytes: c[2],
            tx_bytes: c[3],
            rx_dropped: c[4],
            tx_dropped: c[5],
            rx_errors: c[6],
            tx_errors: c[7],
            rx_frame_err: c[8],
            rx_over_err: c[9],
            rx_crc_err: c[10],
            collisions: c[11],
            duration_sec,
            duration_nsec,
        }
    })
}

fn multipart_request() -> impl Strategy<Value = MultipartRequest> {
    let body = prop_oneof![
        Just(MultipartRequestBody::Desc),
        flow_stats_request().prop_map(MultipartRequestBody::Flow),
        flow_stats_request().prop_map(MultipartRequestBody::Aggregate),
        Just(MultipartRequestBody::Table),
        any::<u32>().prop_map(|port_no| MultipartRequestBody::PortStats { port_no }),
        Just(MultipartRequestBody::PortDesc),
        Just(MultipartRequestBody::TableFeatures),
        any::<u32>().prop_map(|group_id| MultipartRequestBody::Group { group_id }),
        Just(MultipartRequestBody::GroupDesc),
        Just(MultipartRequestBody::GroupFeatures),
        any::<u32>().prop_map(|meter_id| MultipartRequestBody::Meter { meter_id }),
        any::<u32>().prop_map(|meter_id| MultipartRequestBody::MeterConfig { meter_id }),
        Just(MultipartRequestBody::MeterFeatures),
    ];
    (prop::sample::select(vec![0, OFPMPF_MORE]), body).prop_map(|(flags, body)| MultipartRequest { flags, body })
}

fn multipart_reply() -> impl Strategy<Value = MultipartReply> {
    let desc = (
        text(DESC_STR_LEN - 1),
        text(DESC_STR_LEN - 1),
        text(DESC_STR_LEN - 1),
        text(SERIAL_NUM_LEN - 1),
        text(DESC_STR_LEN - 1),
    )
        .prop_map(|(mfr_desc, hw_desc, sw_desc, serial_num, dp_desc)| Desc {
            mfr_desc,
            hw_desc,
            sw_desc,
            serial_num,
            dp_desc,
        });
    let table =
        any::<(u8, u32, u64, u64)>().prop_map(|(table_id, active_count, lookup_count, matched_count)| TableStats {
            table_id,
            active_count,
            lookup_count,
            matched_count,
        });
    let body = prop_oneof![
        desc.prop_map(MultipartReplyBody::Desc),
        vec(flow_stats(), 0..4).prop_map(MultipartReplyBody::Flow),
        any::<(u64, u64, u32)>().prop_map(|(packet_count, byte_count, flow_count)| MultipartReplyBody::Aggregate(
            AggregateStats {
                packet_count,
                byte_count,
                flow_count
            }
        )),
        vec(table, 0..4).prop_map(MultipartReplyBody::Table),
        vec(port_stats(), 0..4).prop_map(MultipartReplyBody::PortStats),
        vec(port(), 0..4).prop_map(MultipartReplyBody::PortDesc),
        vec(table_features(), 0..3).prop_map(MultipartReplyBody::TableFeatures),
        vec(group_stats(), 0..3).prop_map(MultipartReplyBody::Group),
        vec(group_desc(), 0..3).prop_map(MultipartReplyBody::GroupDesc),
        any::<(u32, u32, [u32; 4], [u32; 4])>().prop_map(|(types, capabilities, max_groups, actions)| {
            MultipartReplyBody::GroupFeatures(GroupFeatures {
                types,
                capabilities,
                max_groups,
                actions,
            })
        }),
        vec(meter_stats(), 0..3).prop_map(MultipartReplyBody::Meter),
        vec(meter_config(), 0..3).prop_map(MultipartReplyBody::MeterConfig),
        any::<(u32, u32, u32, u8, u8)>().prop_map(|(max_meter, band_types, capabilities, max_bands, max_color)| {
            MultipartReplyBody::MeterFeatures(MeterFeatures {
                max_meter,
                band_types,
                capabilities,
                max_bands,
                max_color,
            })
        }),
    ];
    (prop::sample::select(vec![0, OFPMPF_MORE]), body).prop_map(|(flags, body)| MultipartReply { flags, body })
}

fn role() -> impl Strategy<Value = RoleMsg> {
    (
        prop::sample::select(vec![Role::NoChange, Role::Equal, Role::Master, Role::Slave]),
        any::<u64>(),
    )
        .prop_map(|(role, generation_id)| RoleMsg { role, generation_id })
}

fn config() -> impl Strategy<Value = SwitchConfig> {
    (0u16..=ofpc_frag::MASK, any::<u16>()).prop_map(|(flags, miss_send_len)| SwitchConfig { flags, miss_send_len })
}

/// Any valid message.
pub(crate) fn message() -> impl Strategy<Value = Message> {
    prop_oneof![
        (any::<u8>(), maybe(vec(any::<u32>(), 0..3))).prop_map(|(version, bitmap)| Message::Hello(Hello {
            version,
            bitmap: bitmap.map(VersionBitmap)
        })),
        (any::<u16>(), any::<u16>(), bytes(80)).prop_map(|(ty, code, data)| Message::Error(ErrorMsg {
            ty,
            code,
            data
        })),
        bytes(64).prop_map(Message::EchoRequest),
        bytes(64).prop_map(Message::EchoReply),
        Just(Message::FeaturesRequest),
        any::<(u64, u32, u8, u8, u32, u32)>().prop_map(
            |(datapath_id, n_buffers, n_tables, auxiliary_id, capabilities, reserved)| {
                Message::FeaturesReply(FeaturesReply {
                    datapath_id,
                    n_buffers,
                    n_tables,
                    auxiliary_id,
                    capabilities,
                    reserved,
                })
            }
        ),
        Just(Message::GetConfigRequest),
        config().prop_map(Message::GetConfigReply),
        config().prop_map(Message::SetConfig),
        (any::<(u32, u16, u8, u8, u64)>(), a_match(), bytes(128)).prop_map(
            |((buffer_id, total_len, reason, table_id, cookie), match_, data)| {
                Message::PacketIn(PacketIn {
                    buffer_id,
                    total_len,
                    reason,
                    table_id,
                    cookie,
                    match_,
                    data,
                })
            }
        ),
        (
            any::<(u64, u16, u8, u8, u32, u32, u16, u16)>(),
            any::<(u64, u64)>(),
            a_match()
        )
            .prop_map(
                |(
                    (cookie, priority, reason, table_id, duration_sec, duration_nsec, idle_timeout, hard_timeout),
                    (packet_count, byte_count),
                    match_,
                )| {
                    Message::FlowRemoved(FlowRemoved {
                        cookie,
                        priority,
                        reason,
                        table_id,
                        duration_sec,
                        duration_nsec,
                        idle_timeout,
                        hard_timeout,
                        packet_count,
                        byte_count,
                        match_,
                    })
                }
            ),
        (0u8..3, port()).prop_map(|(reason, desc)| Message::PortStatus(PortStatus { reason, desc })),
        (
            any::<u32>(),
            prop_oneof![
                1u32..=ofpp::MAX,
                Just(ofpp::CONTROLLER),
                Just(ofpp::LOCAL),
                Just(ofpp::ANY)
            ],
            vec(action(), 0..4),
            bytes(128)
        )
            .prop_map(|(buffer_id, in_port, actions, data)| Message::PacketOut(PacketOut {
                buffer_id,
                in_port,
                actions,
                data
            })),
        flow_mod().prop_map(Message::FlowMod),
        multipart_request().prop_map(Message::MultipartRequest),
        multipart_reply().prop_map(Message::MultipartReply),
        Just(Message::BarrierRequest),
        Just(Message::BarrierReply),
        role().prop_map(Message::RoleRequest),
        role().prop_map(Message::RoleReply),
        any::<(u8, u32)>().prop_map(|(table_id, config)| Message::TableMod(TableMod { table_id, config })),
        Just(Message::GetAsyncRequest),
        async_config().prop_map(Message::GetAsyncReply),
        async_config().prop_map(Message::SetAsync),
        group_mod().prop_map(Message::GroupMod),
        meter_mod().prop_map(Message::MeterMod),
    ]
}

fn group_type() -> impl Strategy<Value = GroupType> {
    prop::sample::select(vec![
        GroupType::All,
        GroupType::Select,
        GroupType::Indirect,
        GroupType::FastFailover,
    ])
}

pub(crate) fn bucket() -> impl Strategy<Value = Bucket> {
    (any::<(u16, u32, u32)>(), vec(action(), 0..3)).prop_map(|((weight, watch_port, watch_group), actions)| Bucket {
        weight,
        watch_port,
        watch_group,
        actions,
    })
}

/// Group mods a switch accepts: ids in range (OFPG_ALL for deletes), one bucket at
/// most in an indirect group that is not deleted.
pub(crate) fn group_mod() -> impl Strategy<Value = GroupMod> {
    let command = prop::sample::select(vec![
        GroupModCommand::Add,
        GroupModCommand::Modify,
        GroupModCommand::Delete,
    ]);
    (command, group_type(), 0..=OFPG_MAX, any::<bool>(), vec(bucket(), 0..4)).prop_map(
        |(command, kind, group_id, all, mut buckets)| {
            let deletes = command == GroupModCommand::Delete;
            if kind == GroupType::Indirect && !deletes {
                buckets.truncate(1);
            }
            GroupMod {
                command,
                kind,
                group_id: if deletes && all { OFPG_ALL } else { group_id },
                buckets,
            }
        },
    )
}

fn meter_band() -> impl Strategy<Value = MeterBand> {
    let kind = prop_oneof![
        Just(MeterBandKind::Drop),
        any::<u8>().prop_map(|prec_level| MeterBandKind::DscpRemark { prec_level }),
    ];
    (kind, any::<u32>(), any::<u32>()).prop_map(|(kind, rate, burst_size)| MeterBand { kind, rate, burst_size })
}

/// Meter mods a switch accepts: known flags, not both KBPS and PKTPS but in a
/// delete, ids of a meter (virtual ones included; OFPM_ALL for deletes).
pub(crate) fn meter_mod() -> impl Strategy<Value = MeterMod> {
    let command = prop::sample::select(vec![
        MeterModCommand::Add,
        MeterModCommand::Modify,
        MeterModCommand::Delete,
    ]);
    let id = prop_oneof![
        4 => 1..=OFPM_MAX,
        1 => prop::sample::select(vec![OFPM_SLOWPATH, OFPM_CONTROLLER, OFPM_ALL]),
    ];
    (command, 0..=ofpmf::ALL, id, vec(meter_band(), 0..4)).prop_map(|(command, mut flags, mut meter_id, bands)| {
        if command != MeterModCommand::Delete {
            if flags & ofpmf::KBPS != 0 {
                flags &= !ofpmf::PKTPS;
            }
            if meter_id == OFPM_ALL {
                meter_id = OFPM_MAX;
            }
        }
        MeterMod {
            command,
            flags,
            meter_id,
            bands,
        }
    })
}

fn group_stats() -> impl Strategy<Value = GroupStats> {
    (any::<(u32, u32, u64, u64, u32, u32)>(), vec(any::<(u64, u64)>(), 0..4)).prop_map(
        |((group_id, ref_count, packet_count, byte_count, duration_sec, duration_nsec), b)| GroupStats {
            group_id,
            ref_count,
            packet_count,
            byte_count,
            duration_sec,
            duration_nsec,
            bucket_stats: b
                .into_iter()
                .map(|(packet_count, byte_count)| BucketCounter {
                    packet_count,
                    byte_count,
                })
                .collect(),
        },
    )
}

fn group_desc() -> impl Strategy<Value = GroupDesc> {
    (group_type(), any::<u32>(), vec(bucket(), 0..3)).prop_map(|(kind, group_id, buckets)| GroupDesc {
        kind,
        group_id,
        buckets,
    })
}

fn meter_stats() -> impl Strategy<Value = MeterStats> {
    (any::<(u32, u32, u64, u64, u32, u32)>(), vec(any::<(u64, u64)>(), 0..4)).prop_map(
        |((meter_id, flow_count, packet_in_count, byte_in_count, duration_sec, duration_nsec), b)| MeterStats {
            meter_id,
            flow_count,
            packet_in_count,
            byte_in_count,
            duration_sec,
            duration_nsec,
            band_stats: b
                .into_iter()
                .map(|(packet_band_count, byte_band_count)| MeterBandStats {
                    packet_band_count,
                    byte_band_count,
                })
                .collect(),
        },
    )
}

fn meter_config() -> impl Strategy<Value = MeterConfig> {
    (any::<(u16, u32)>(), vec(meter_band(), 0..4)).prop_map(|((flags, meter_id), bands)| MeterConfig {
        flags,
        meter_id,
        bands,
    })
}

fn async_config() -> impl Strategy<Value = AsyncConfig> {
    any::<[u32; 6]>().prop_map(|m| AsyncConfig {
        packet_in_mask: [m[0], m[1]],
        port_status_mask: [m[2], m[3]],
        flow_removed_mask: [m[4], m[5]],
    })
}

fn table_features() -> impl Strategy<Value = TableFeatures> {
    let prop = (any::<u16>(), bytes(40)).prop_map(|(ty, data)| TableFeatureProp { ty, data });
    (
        any::<u8>(),
        text(MAX_TABLE_NAME_LEN - 1),
        any::<(u64, u64, u32, u32)>(),
        vec(prop, 0..5),
    )
        .prop_map(
            |(table_id, name, (metadata_match, metadata_write, config, max_entries), properties)| TableFeatures {
                table_id,
                name,
                metadata_match,
                metadata_write,
                config,
                max_entries,
                properties,
            },
        )
}
