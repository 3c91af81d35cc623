//! Exact byte layouts of known messages, written out from the spec's structs.

use super::{hex, round_trip};
use crate::*;

#[test]
fn hello_with_version_bitmap() {
    let m = Message::Hello(Hello::ours(VersionBitmap::of(&[OFP_VERSION])));
    let bytes = round_trip(&m, 0x0102_0304);
    assert_eq!(bytes, hex("04 00 00 10 01 02 03 04  00 01 00 08 00 00 00 10"));
}

#[test]
fn hello_of_several_versions_pads_its_element() {
    // OpenFlow 1.0, 1.3 and 1.5 (wire 1, 4, 6) in one bitmap word; element length 8.
    let m = Message::Hello(Hello::ours(VersionBitmap::of(&[1, 4, 6])));
    assert_eq!(
        round_trip(&m, 9),
        hex("06 00 00 10 00 00 00 09  00 01 00 08 00 00 00 52")
    );
    // Two words: element length 12, padded to 16.
    let m = Message::Hello(Hello::ours(VersionBitmap::of(&[4, 33])));
    assert_eq!(
        round_trip(&m, 9),
        hex("21 00 00 18 00 00 00 09  00 01 00 0c 00 00 00 10 00 00 00 02 00 00 00 00")
    );
}

#[test]
fn plain_hello_of_an_old_switch_decodes() {
    let (xid, m) = Message::decode(&hex("01 00 00 08 00 00 00 2a")).unwrap();
    assert_eq!(
        (xid, m),
        (
            42,
            Message::Hello(Hello {
                version: 1,
                bitmap: None
            })
        )
    );
}

#[test]
fn features_reply() {
    let m = Message::FeaturesReply(FeaturesReply {
        datapath_id: 1,
        n_buffers: 256,
        n_tables: 254,
        auxiliary_id: 0,
        capabilities: ofpc::FLOW_STATS | ofpc::TABLE_STATS | ofpc::PORT_STATS | ofpc::GROUP_STATS | ofpc::QUEUE_STATS,
        reserved: 0,
    });
    assert_eq!(
        round_trip(&m, 7),
        hex("04 06 00 20 00 00 00 07  00 00 00 00 00 00 00 01  00 00 01 00 fe 00 00 00  00 00 00 4f 00 00 00 00")
    );
}

/// What Ryu's `simple_switch_13` style `add_flow` sends: in_port=1 → apply output:2.
#[test]
fn flow_mod_with_oxm_match_and_apply_output() {
    let m = Message::FlowMod(FlowMod {
        cookie: 0,
        cookie_mask: 0,
        table_id: 0,
        command: FlowModCommand::Add,
        idle_timeout: 0,
        hard_timeout: 0,
        priority: 1,
        buffer_id: OFP_NO_BUFFER,
        out_port: ofpp::ANY,
        out_group: OFPG_ANY,
        flags: ofpff::SEND_FLOW_REM,
        match_: Match {
            in_port: Some(1),
            ..Match::default()
        },
        instructions: vec![Instruction::ApplyActions(vec![Action::Output {
            port: 2,
            max_len: ofpcml::MAX,
        }])],
    });
    assert_eq!(
        round_trip(&m, 0x11),
        hex("04 0e 00 58 00 00 00 11
             00 00 00 00 00 00 00 00  00 00 00 00 00 00 00 00
             00 00 00 00 00 00 00 01  ff ff ff ff ff ff ff ff
             ff ff ff ff 00 01 00 00
             00 01 00 0c 80 00 00 04  00 00 00 01 00 00 00 00
             00 04 00 18 00 00 00 00  00 00 00 10 00 00 00 02  ff e5 00 00 00 00 00 00")
    );
}

#[test]
fn packet_in_table_miss() {
    let m = Message::PacketIn(PacketIn {
        buffer_id: OFP_NO_BUFFER,
        total_len: 4,
        reason: ofpr::NO_MATCH,
        table_id: 0,
        cookie: 0,
        match_: Match {
            in_port: Some(3),
            ..Match::default()
        },
        data: vec![0xde, 0xad, 0xbe, 0xef],
    });
    assert_eq!(
        round_trip(&m, 0),
        hex(
            "04 0a 00 2e 00 00 00 00  ff ff ff ff 00 04 00 00  00 00 00 00 00 00 00 00
             00 01 00 0c 80 00 00 04  00 00 00 03 00 00 00 00  00 00 de ad be ef"
        )
    );
}

/// OXM headers of masked and unmasked fields, as `oxm_fields.h` / Ryu spell them.
#[test]
fn oxm_headers_match_the_spec() {
    use std::net::{Ipv4Addr, Ipv6Addr};
    let m = Match {
        eth_dst: Some(Masked::with_mask([1, 0, 0, 0, 0, 0], [1, 0, 0, 0, 0, 0])),
        eth_type: Some(ETH_TYPE_IPV4),
        vlan_vid: Some(Masked::exact(OFPVID_PRESENT | 10)),
        ip_proto: Some(IP_PROTO_TCP),
        ipv4_src: Some(Masked::with_mask(
            Ipv4Addr::new(10, 0, 0, 0),
            Ipv4Addr::new(255, 0, 0, 0),
        )),
        tcp_dst: Some(80),
        ..Match::default()
    };
    let mut w = crate::wire::Writer::default();
    m.encode(&mut w);
    assert_eq!(
        w.buf,
        hex("00 01 00 37
             80 00 07 0c 01 00 00 00 00 00 01 00 00 00 00 00
             80 00 0a 02 08 00
             80 00 0c 02 10 0a
             80 00 14 01 06
             80 00 17 08 0a 00 00 00 ff 00 00 00
             80 00 1c 02 00 50
             00")
    );
    let v6 = Match {
        eth_type: Some(ETH_TYPE_IPV6),
        ipv6_src: Some(Masked::exact(Ipv6Addr::LOCALHOST)),
        ..Match::default()
    };
    let mut w = crate::wire::Writer::default();
    v6.encode(&mut w);
    assert_eq!(&w.buf[10..14], &hex("80 00 34 10")[..]);
}

#[test]
fn error_reply_echoes_xid_and_first_64_bytes() {
    let mut bad = super::msg(OFP_VERSION, 99, 0xabcd, &[0x55; 100]);
    let err = Message::decode(&bad).unwrap_err();
    let reply = error_reply(&bad, &err);
    assert_eq!(&reply[..12], &hex("04 01 00 4c 00 00 ab cd 00 01 00 01")[..]);
    bad.truncate(ERROR_DATA_LEN);
    assert_eq!(&reply[12..], &bad[..]);
}

#[test]
fn hello_failed_reply_carries_text() {
    let ours = VersionBitmap::of(&[OFP_VERSION]);
    let peer = Hello {
        version: 1,
        bitmap: None,
    };
    let err = negotiate(&ours, &peer).unwrap_err();
    let reply = error_reply(&hex("01 00 00 08 00 00 00 05"), &err);
    let (xid, Message::Error(e)) = Message::decode(&reply).unwrap() else {
        panic!("not an error")
    };
    assert_eq!((xid, e.ty, e.code), (5, ofpet::HELLO_FAILED, ofphfc::INCOMPATIBLE));
    assert!(
        std::str::from_utf8(&e.data)
            .unwrap()
            .contains("no common OpenFlow version")
    );
}

#[test]
fn error_reply_to_garbage_shorter_than_a_header() {
    let err = Message::decode(&[4, 0]).unwrap_err();
    let reply = error_reply(&[4, 0], &err);
    assert_eq!(reply, hex("04 01 00 0e 00 00 00 00 00 01 00 06 04 00"));
}

#[test]
fn frame_len_cuts_a_stream() {
    let mut stream = hex("04 02 00 0a 00 00 00 01 aa bb  04 14 00 08");
    assert_eq!(frame_len(&stream), Ok(Some(10)));
    assert_eq!(frame_len(&stream[10..]), Ok(None));
    stream.extend_from_slice(&[0, 0, 0, 2]);
    assert_eq!(frame_len(&stream[10..]), Ok(Some(8)));
    assert_eq!(Message::decode(&stream[10..]), Ok((2, Message::BarrierRequest)));
    assert_eq!(
        frame_len(&hex("04 02 00 04 00 00 00 01")).unwrap_err().kind.code,
        ofpbrc::BAD_LEN
    );
}

/// What `ovs-ofctl -O OpenFlow13 dump-flows` asks: every table, any port/group/cookie,
/// an empty match.
#[test]
fn flow_stats_request_of_dump_flows() {
    let m = Message::MultipartRequest(MultipartRequest {
        flags: 0,
        body: MultipartRequestBody::Flow(FlowStatsRequest {
            table_id: OFPTT_ALL,
            out_port: ofpp::ANY,
            out_group: OFPG_ANY,
            cookie: 0,
            cookie_mask: 0,
            match_: Match::default(),
        }),
    });
    assert_eq!(
        round_trip(&m, 2),
        hex("04 12 00 38 00 00 00 02  00 01 00 00 00 00 00 00
             ff 00 00 00 ff ff ff ff  ff ff ff ff 00 00 00 00
             00 00 00 00 00 00 00 00  00 00 00 00 00 00 00 00
             00 01 00 04 00 00 00 00")
    );
}

#[test]
fn port_desc_request_and_port_status() {
    let req = Message::MultipartRequest(MultipartRequest {
        flags: 0,
        body: MultipartRequestBody::PortDesc,
    });
    assert_eq!(
        round_trip(&req, 3),
        hex("04 12 00 10 00 00 00 03 00 0d 00 00 00 00 00 00")
    );
    let status = Message::PortStatus(PortStatus {
        reason: ofppr::ADD,
        desc: Port {
            port_no: 1,
            hw_addr: [2, 0, 0, 0, 0, 1],
            name: "eth0".into(),
            config: 0,
            state: ofpps::LIVE,
            curr: ofppf::TEN_GB_FD | ofppf::COPPER,
            advertised: 0,
            supported: 0,
            peer: 0,
            curr_speed: 10_000_000,
            max_speed: 0,
        },
    });
    assert_eq!(
        round_trip(&status, 4),
        hex("04 0c 00 50 00 00 00 04  00 00 00 00 00 00 00 00
             00 00 00 01 00 00 00 00  02 00 00 00 00 01 00 00
             65 74 68 30 00 00 00 00  00 00 00 00 00 00 00 00
             00 00 00 00 00 00 00 04  00 00 08 40 00 00 00 00
             00 00 00 00 00 00 00 00  00 98 96 80 00 00 00 00")
    );
}

#[test]
fn packet_out_of_a_controller() {
    let m = Message::PacketOut(PacketOut {
        buffer_id: OFP_NO_BUFFER,
        in_port: ofpp::CONTROLLER,
        actions: vec![Action::Output {
            port: ofpp::FLOOD,
            max_len: 0,
        }],
        data: vec![0xaa, 0xbb],
    });
    assert_eq!(
        round_trip(&m, 5),
        hex(
            "04 0d 00 2a 00 00 00 05  ff ff ff ff ff ff ff fd  00 10 00 00 00 00 00 00
             00 00 00 10 ff ff ff fb  00 00 00 00 00 00 00 00  aa bb"
        )
    );
}
