//! Crate-level tests: exact wire layouts, round trips, the malformed-input table and
//! the proptest fuzzing. Per-structure unit tests sit in their own modules.

mod async_msgs;
mod layout;
mod malformed;
mod props;
mod roundtrip;
mod strategy;
mod vectors;

use crate::Message;

/// A whole message from a type and body, with the right header length.
pub(crate) fn msg(version: u8, ty: u8, xid: u32, body: &[u8]) -> Vec<u8> {
    let len = u16::try_from(8 + body.len()).expect("test message fits");
    let mut out = vec![version, ty];
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(&xid.to_be_bytes());
    out.extend_from_slice(body);
    out
}

/// Parses hex with spaces and newlines ("04 00 00 10 ...").
pub(crate) fn hex(s: &str) -> Vec<u8> {
    let digits: Vec<u8> = s.bytes().filter(|b| b.is_ascii_hexdigit()).collect();
    digits
        .chunks(2)
        .map(|p| u8::from_str_radix(std::str::from_utf8(p).unwrap(), 16).unwrap())
        .collect()
}

/// Encodes, decodes and checks the result is the same message (and the same bytes when
/// encoded again).
pub(crate) fn round_trip(m: &Message, xid: u32) -> Vec<u8> {
    let bytes = m.encode(xid).expect("encodes");
    assert_eq!(usize::from(u16::from_be_bytes([bytes[2], bytes[3]])), bytes.len());
    let (got_xid, back) = Message::decode(&bytes).unwrap_or_else(|e| panic!("{m:?}: {e}"));
    assert_eq!(got_xid, xid);
    assert_eq!(&back, m);
    assert_eq!(back.encode(xid).unwrap(), bytes);
    bytes
}
