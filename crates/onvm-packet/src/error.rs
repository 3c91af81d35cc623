//! The one error type of the crate.
//!
//! NFs see frames from anywhere — ports, other NFs, pcap files — so every function here
//! returns an error naming what was wrong instead of panicking; the messages say which
//! header and how many bytes, because "bad packet" is useless when debugging a chain.

/// What was wrong with a frame or an output buffer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The frame is shorter than the 14-byte Ethernet II header.
    #[error("frame too short for an Ethernet header: {len} bytes")]
    TooShortForEthernet {
        /// Length of the frame.
        len: usize,
    },
    /// A header (or the length it declares) runs past the end of the frame.
    #[error("frame truncated in the {header} header: need {need} bytes, have {have}")]
    Truncated {
        /// The header that did not fit (`"VLAN"`, `"IPv4"`, `"UDP"`, ...).
        header: &'static str,
        /// Bytes of frame needed to hold it.
        need: usize,
        /// Bytes the frame has.
        have: usize,
    },
    /// A header field holds a value the header cannot have.
    #[error("malformed {header} header: {reason}")]
    Malformed {
        /// The offending header.
        header: &'static str,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The operation needs an IP packet and the frame carries something else.
    #[error("not IPv4/IPv6: EtherType {ether_type:#06x}")]
    NotIp {
        /// EtherType after any VLAN tags.
        ether_type: u16,
    },
    /// The operation needs a TCP or UDP header and the IP packet carries another protocol.
    #[error("not TCP/UDP: IP protocol {ip_proto}")]
    NotTcpUdp {
        /// The IP protocol number (after IPv6 extension headers).
        ip_proto: u8,
    },
    /// The frame is a non-first IP fragment, which has no L4 header.
    #[error("IP fragment without an L4 header (fragment offset is not zero)")]
    NoL4Header,
    /// An IPv4 TTL / IPv6 hop limit is already zero and cannot be decremented.
    #[error("TTL / hop limit is already zero")]
    TtlExpired,
    /// etherparse's strict parser rejected the frame (see [`crate::Headers::parse`]).
    #[error("cannot parse frame: {0}")]
    Parse(#[from] etherparse::err::packet::SliceError),
    /// An output buffer cannot hold the frame to be written.
    #[error("buffer too small: need {need}, have {have}")]
    BufferTooSmall {
        /// Bytes needed.
        need: usize,
        /// Bytes available.
        have: usize,
    },
    /// An address of one IP version was to be written into a packet of the other.
    #[error("an IPv{given} address cannot go into an IPv{packet} packet")]
    IpVersionMismatch {
        /// The address's version (4 or 6).
        given: u8,
        /// The packet's version.
        packet: u8,
    },
    /// A builder was given a source and a destination address of different IP versions.
    #[error("source and destination addresses are of different IP versions")]
    MixedIpVersions,
    /// A builder was asked for a frame length that cannot hold its headers and payload.
    #[error("frame length {frame_len} cannot hold the {need} bytes of headers and payload")]
    FrameLenTooSmall {
        /// Requested frame length (no FCS).
        frame_len: usize,
        /// Bytes of headers plus payload.
        need: usize,
    },
    /// A builder was asked for a packet longer than its length fields can describe.
    #[error("{header} length {len} exceeds the maximum of {max}")]
    TooLong {
        /// The header whose length field would overflow.
        header: &'static str,
        /// The length asked for.
        len: usize,
        /// The largest length the field can hold.
        max: usize,
    },
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_the_problem() {
        assert_eq!(
            Error::TooShortForEthernet { len: 10 }.to_string(),
            "frame too short for an Ethernet header: 10 bytes"
        );
        assert_eq!(
            Error::BufferTooSmall { need: 60, have: 10 }.to_string(),
            "buffer too small: need 60, have 10"
        );
        assert_eq!(
            Error::NotIp { ether_type: 0x0806 }.to_string(),
            "not IPv4/IPv6: EtherType 0x0806"
        );
        assert_eq!(
            Error::Truncated {
                header: "IPv4",
                need: 34,
                have: 20
            }
            .to_string(),
            "frame truncated in the IPv4 header: need 34 bytes, have 20"
        );
    }
}
