//! SET_ASYNC / GET_ASYNC, TABLE_MOD and the REQ_MORE request assembler: exact layouts
//! from the spec (1.3.5, A.3.4.1, A.3.8) and the assembler's bounds.

use super::{hex, msg};
use crate::*;

#[test]
fn set_async_layout_and_defaults() {
    // ofp_async_config: packet_in_mask[2], port_status_mask[2], flow_removed_mask[2].
    let bytes = hex("04 1c 00 20 00 00 00 05
         00 00 00 01 00 00 00 00  00 00 00 07 00 00 00 04
         00 00 00 0f 00 00 00 02");
    let want = AsyncConfig {
        packet_in_mask: [1, 0],
        port_status_mask: [7, 4],
        flow_removed_mask: [0xf, 2],
    };
    assert_eq!(Message::decode(&bytes).unwrap(), (5, Message::SetAsync(want)));
    assert_eq!(Message::SetAsync(want).encode(5).unwrap(), bytes);
    let reply = Message::GetAsyncReply(want).encode(5).unwrap();
    assert_eq!((reply[1], &reply[8..]), (ofpt::GET_ASYNC_REPLY, &bytes[8..]));
    assert_eq!(
        Message::decode(&msg(4, ofpt::GET_ASYNC_REQUEST, 9, &[])).unwrap(),
        (9, Message::GetAsyncRequest)
    );
    // A body one byte short, or a request with a body, is BAD_LEN.
    for bad in [
        msg(4, ofpt::SET_ASYNC, 1, &bytes[8..31]),
        msg(4, ofpt::GET_ASYNC_REQUEST, 1, &[0]),
    ] {
        let e = Message::decode(&bad).unwrap_err();
        assert_eq!(
            (e.kind.ty, e.kind.code),
            (ofpet::BAD_REQUEST, ofpbrc::BAD_LEN),
            "{bad:02x?}"
        );
    }
    // The spec's defaults: master/equal get NO_MATCH and ACTION packet-ins, every
    // port status and flow removed; a slave port status only.
    let d = AsyncConfig::default();
    assert!(d.wants(ofpt::PACKET_IN, ofpr::NO_MATCH, false) && d.wants(ofpt::PACKET_IN, ofpr::ACTION, false));
    assert!(!d.wants(ofpt::PACKET_IN, ofpr::INVALID_TTL, false));
    assert!(!d.wants(ofpt::PACKET_IN, ofpr::NO_MATCH, true));
    assert!(d.wants(ofpt::PORT_STATUS, ofppr::MODIFY, true));
    assert!(d.wants(ofpt::FLOW_REMOVED, ofprr::DELETE, false) && !d.wants(ofpt::FLOW_REMOVED, ofprr::DELETE, true));
    // A reason beyond the mask's 32 bits is never wanted.
    assert!(
        !AsyncConfig {
            packet_in_mask: [u32::MAX; 2],
            ..d
        }
        .wants(ofpt::PACKET_IN, 40, false)
    );
}

#[test]
fn table_mod_layout() {
    let bytes = hex("04 11 00 10 00 00 00 03  01 00 00 00 00 00 00 03");
    let t = TableMod {
        table_id: 1,
        config: OFPTC_DEPRECATED_MASK,
    };
    assert_eq!(Message::decode(&bytes).unwrap(), (3, Message::TableMod(t)));
    assert_eq!(Message::TableMod(t).encode(3).unwrap(), bytes);
    let e = Message::decode(&msg(4, ofpt::TABLE_MOD, 3, &bytes[8..15])).unwrap_err();
    assert_eq!((e.kind.ty, e.kind.code), (ofpet::BAD_REQUEST, ofpbrc::BAD_LEN));
}

/// A multipart request of `ty` with `flags` and `body`.
fn part(xid: u32, ty: u16, flags: u16, body: &[u8]) -> Vec<u8> {
    let mut b = ty.to_be_bytes().to_vec();
    b.extend_from_slice(&flags.to_be_bytes());
    b.extend_from_slice(&[0; 4]);
    b.extend_from_slice(body);
    msg(4, ofpt::MULTIPART_REQUEST, xid, &b)
}

#[test]
fn req_more_parts_are_assembled_per_xid() {
    let mut a = RequestAssembler::default();
    // Not a multipart request, or one in one part: passes through as it is.
    let echo = msg(4, ofpt::ECHO_REQUEST, 1, b"hi");
    assert_eq!(a.push(&echo).unwrap().as_deref(), Some(&echo[..]));
    let whole = part(2, ofpmp::PORT_STATS, 0, &[0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0]);
    assert_eq!(a.push(&whole).unwrap().as_deref(), Some(&whole[..]));
    // A port-stats request cut in three, interleaved with another xid's parts.
    assert_eq!(a.push(&part(7, ofpmp::PORT_STATS, OFPMPF_MORE, &[0, 0])).unwrap(), None);
    assert_eq!(a.push(&part(8, ofpmp::DESC, OFPMPF_MORE, &[])).unwrap(), None);
    assert_eq!(
        a.push(&part(7, ofpmp::PORT_STATS, OFPMPF_MORE, &[0, 3, 0])).unwrap(),
        None
    );
    assert_eq!(a.held(), 5);
    let done = a
        .push(&part(7, ofpmp::PORT_STATS, 0, &[0, 0, 0]))
        .unwrap()
        .unwrap()
        .into_owned();
    assert_eq!(
        Message::decode(&done).unwrap(),
        (
            7,
            Message::MultipartRequest(MultipartRequest {
                flags: 0,
                body: MultipartRequestBody::PortStats { port_no: 3 }
            })
        )
    );
    let desc = a.push(&part(8, ofpmp::DESC, 0, &[])).unwrap().unwrap().into_owned();
    assert!(
        matches!(Message::decode(&desc).unwrap(), (8, Message::MultipartRequest(m)) if m.body == MultipartRequestBody::Desc)
    );
    assert_eq!(a.held(), 0);
}

#[test]
fn req_more_is_bounded_and_checked() {
    let code = |r: Result<Option<std::borrow::Cow<'_, [u8]>>, OfpError>| {
        let e = r.unwrap_err();
        (e.kind.ty, e.kind.code)
    };
    let overflow = (ofpet::BAD_REQUEST, ofpbrc::MULTIPART_BUFFER_OVERFLOW);
    let mut a = RequestAssembler::default();
    // Parts of one xid whose bodies add up past what one message can carry.
    let chunk = vec![0u8; 30_000];
    assert_eq!(
        a.push(&part(1, ofpmp::TABLE_FEATURES, OFPMPF_MORE, &chunk)).unwrap(),
        None
    );
    assert_eq!(
        a.push(&part(1, ofpmp::TABLE_FEATURES, OFPMPF_MORE, &chunk)).unwrap(),
        None
    );
    assert_eq!(
        code(a.push(&part(1, ofpmp::TABLE_FEATURES, OFPMPF_MORE, &chunk))),
        overflow
    );
    assert_eq!(a.held(), 0, "the request is dropped");
    // Too many unfinished requests.
    for xid in 0..MAX_ASSEMBLING as u32 {
        assert_eq!(a.push(&part(xid, ofpmp::DESC, OFPMPF_MORE, &[])).unwrap(), None);
    }
    assert_eq!(code(a.push(&part(99, ofpmp::DESC, OFPMPF_MORE, &[]))), overflow);
    // A part whose type differs from the first part's.
    assert_eq!(
        code(a.push(&part(0, ofpmp::FLOW, 0, &[]))),
        (ofpet::BAD_REQUEST, ofpbrc::BAD_MULTIPART)
    );
}
