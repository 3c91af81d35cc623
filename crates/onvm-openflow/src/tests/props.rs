//! The always-run fuzzing: random and mutated bytes never panic the decoder, and every
//! valid message round-trips.

use proptest::collection::vec;
use proptest::prelude::*;

use super::strategy;
use crate::{Message, OFP_VERSION, error_reply};

/// Decodes `bytes`; whatever decodes must re-encode to bytes that decode and encode
/// back to themselves (not necessarily to the input: fields come out in canonical
/// order, and non-UTF-8 names come back with replacement characters, cut to fit).
/// Whatever fails must still yield an ERROR reply that decodes.
fn decode_is_total(bytes: &[u8]) {
    match Message::decode(bytes) {
        Ok((xid, m)) => {
            let again = m.encode(xid).expect("a decoded message re-encodes");
            let (xid2, m2) = Message::decode(&again).expect("a re-encoded message decodes");
            assert_eq!(xid2, xid);
            assert_eq!(m2.encode(xid).unwrap(), again);
        }
        Err(e) => {
            let reply = error_reply(bytes, &e);
            assert!(matches!(Message::decode(&reply), Ok((_, Message::Error(_)))));
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn random_bytes_never_panic(bytes in vec(any::<u8>(), 0..300)) {
        decode_is_total(&bytes);
    }

    /// Random bodies behind a plausible header reach the body decoders.
    #[test]
    fn random_bodies_never_panic(ty in 0u8..32, xid: u32, body in vec(any::<u8>(), 0..300)) {
        decode_is_total(&super::msg(OFP_VERSION, ty, xid, &body));
    }

    #[test]
    fn valid_messages_round_trip(m in strategy::message(), xid: u32) {
        super::round_trip(&m, xid);
    }

    /// Valid messages with a few bytes changed, or cut short, never panic.
    #[test]
    fn mutated_messages_never_panic(
        m in strategy::message(),
        edits in vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
        cut in any::<prop::sample::Index>(),
        truncate: bool,
    ) {
        let mut bytes = m.encode(1).unwrap();
        for (at, v) in edits {
            let i = at.index(bytes.len());
            bytes[i] = v;
        }
        if truncate {
            bytes.truncate(cut.index(bytes.len() + 1));
            // Keep the header length consistent so the body decoders see the cut.
            if bytes.len() >= 4 {
                let len = u16::try_from(bytes.len()).unwrap().to_be_bytes();
                bytes[2..4].copy_from_slice(&len);
            }
        }
        decode_is_total(&bytes);
    }
}
