//! Any bytes as a control datagram, both directions (NF -> manager, manager -> NF):
//! decoding must not panic, and what decodes must re-encode to a datagram that decodes
//! to the same message.
#![no_main]

use libfuzzer_sys::fuzz_target;
use onvm_proto::ctrl::{MgrMsg, NfMsg};

fuzz_target!(|data: &[u8]| {
    if let Ok(m) = NfMsg::decode(data) {
        let again = m.encode().expect("a decoded NfMsg re-encodes");
        assert_eq!(NfMsg::decode(&again), Ok(m));
    }
    if let Ok(m) = MgrMsg::decode(data) {
        let again = m.encode().expect("a decoded MgrMsg re-encodes");
        assert_eq!(MgrMsg::decode(&again), Ok(m));
    }
});
