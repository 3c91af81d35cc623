//! Any bytes: decoding must not panic; what decodes must re-encode to bytes that are a
//! fixed point of decode + encode; what fails must give an ERROR reply that decodes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use onvm_openflow::{Message, error_reply};

fuzz_target!(|data: &[u8]| {
    match Message::decode(data) {
        Ok((xid, m)) => {
            let again = m.encode(xid).expect("a decoded message re-encodes");
            let (xid2, m2) = Message::decode(&again).expect("a re-encoded message decodes");
            assert_eq!(xid2, xid);
            assert_eq!(m2.encode(xid).expect("re-encodes"), again);
        }
        Err(e) => {
            let reply = error_reply(data, &e);
            assert!(matches!(Message::decode(&reply), Ok((_, Message::Error(_)))));
        }
    }
});
