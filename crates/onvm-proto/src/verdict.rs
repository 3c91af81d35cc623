//! What an NF decided for a packet, as it travels in the buffer's metadata.
//!
//! The NF library writes a verdict into the metadata line (`action` byte + `dest`
//! word) before it hands a buffer to the manager; the manager reads it back. The
//! manager must not trust it: an NF with a bug can write anything, so decoding is
//! checked and a bad verdict is a named error (the manager drops the packet and counts
//! it), never a panic.

use thiserror::Error;

mod code {
    pub const DROP: u8 = 1;
    pub const NEXT: u8 = 2;
    pub const TO_SERVICE: u8 = 3;
    pub const TO_INSTANCE: u8 = 4;
    pub const OUT: u8 = 5;
    pub const EDGE_FULL: u8 = 6;
    pub const OVER_QUOTA: u8 = 7;
}

/// Where a packet goes after an NF (openNetVM's `ONVM_NF_ACTION_*`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Verdict {
    /// Free the buffer.
    Drop,
    /// Follow the flow table from this NF's service port (the chain's next hop).
    Next,
    /// To an instance of a service (load-balanced by flow).
    ToService(u16),
    /// To one instance.
    ToInstance(u16),
    /// Out of a physical port.
    Out(u16),
    /// Not an NF's decision: the NF library meant it for this instance over a direct
    /// edge whose ring was full, and gives it back to be freed. The manager counts it
    /// as that instance's full ring, not as a drop by the NF.
    EdgeFull(u16),
    /// Not an NF's decision: the NF library was told to keep the packet, but the NF
    /// holds its quota of buffers already. The manager counts `nf-over-quota`.
    OverQuota,
}

/// A verdict byte/word pair that names no verdict.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Error)]
#[error("bad verdict from an NF: action code {action}, destination {dest}")]
pub struct BadVerdict {
    /// The action byte found.
    pub action: u8,
    /// The destination word found.
    pub dest: u32,
}

impl Verdict {
    /// The metadata encoding: (action byte, destination word).
    pub fn encode(self) -> (u8, u32) {
        match self {
            Verdict::Drop => (code::DROP, 0),
            Verdict::Next => (code::NEXT, 0),
            Verdict::ToService(s) => (code::TO_SERVICE, u32::from(s)),
            Verdict::ToInstance(i) => (code::TO_INSTANCE, u32::from(i)),
            Verdict::Out(p) => (code::OUT, u32::from(p)),
            Verdict::EdgeFull(i) => (code::EDGE_FULL, u32::from(i)),
            Verdict::OverQuota => (code::OVER_QUOTA, 0),
        }
    }

    /// Reads a verdict back; destinations must fit their 16-bit IDs.
    pub fn decode(action: u8, dest: u32) -> Result<Verdict, BadVerdict> {
        let bad = BadVerdict { action, dest };
        let id = || u16::try_from(dest).map_err(|_| bad);
        Ok(match action {
            code::DROP => Verdict::Drop,
            code::NEXT => Verdict::Next,
            code::TO_SERVICE => Verdict::ToService(id()?),
            code::TO_INSTANCE => Verdict::ToInstance(id()?),
            code::OUT => Verdict::Out(id()?),
            code::EDGE_FULL => Verdict::EdgeFull(id()?),
            code::OVER_QUOTA => Verdict::OverQuota,
            _ => return Err(bad),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn round_trip() {
        for v in [
            Verdict::Drop,
            Verdict::Next,
            Verdict::ToService(3),
            Verdict::ToInstance(65535),
            Verdict::Out(0),
            Verdict::EdgeFull(7),
            Verdict::OverQuota,
        ] {
            let (a, d) = v.encode();
            assert_eq!(Verdict::decode(a, d), Ok(v));
        }
    }

    #[test]
    fn garbage_is_an_error() {
        assert!(Verdict::decode(0, 0).is_err());
        assert!(Verdict::decode(200, 0).is_err());
        let e = Verdict::decode(code::OUT, 70_000).unwrap_err();
        assert!(e.to_string().contains("70000"), "{e}");
    }

    proptest! {
        #[test]
        fn decode_never_panics(a in any::<u8>(), d in any::<u32>()) {
            if let Ok(v) = Verdict::decode(a, d) {
                let (a2, d2) = v.encode();
                prop_assert_eq!(Verdict::decode(a2, d2), Ok(v));
            }
        }
    }
}
