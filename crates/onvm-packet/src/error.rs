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
    /// A TTL decrement (IPv4 TTL, IPv6 hop limit or MPLS TTL) found 0 or 1: the packet
    /// must not be forwarded (OpenFlow "invalid TTL": the switch sends it to the
    /// controllers that asked for it and stops processing). The frame is unchanged.
    #[error("invalid TTL {ttl}: cannot be decremented below 1")]
    InvalidTtl {
        /// The TTL the frame holds (0 or 1).
        ttl: u8,
    },
    /// The operation needs a VLAN tag and the frame has none.
    #[error("frame has no VLAN tag")]
    NoVlanTag,
    /// The operation needs an MPLS label stack and the frame has none.
    #[error("not MPLS: EtherType {ether_type:#06x}")]
    NotMpls {
        /// EtherType after any VLAN tags.
        ether_type: u16,
    },
    /// The operation needs an ARP (or RARP) packet and the frame carries something else.
    #[error("not ARP: EtherType {ether_type:#06x}")]
    NotArp {
        /// EtherType after any VLAN tags.
        ether_type: u16,
    },
    /// The operation needs a given L4 protocol and the IP packet carries another.
    #[error("not {want}: IP protocol {ip_proto}")]
    WrongIpProto {
        /// The protocol the operation needs (`"ICMP"`, `"ICMPv6"`, `"TCP/UDP/SCTP"`).
        want: &'static str,
        /// The IP protocol number the packet carries.
        ip_proto: u8,
    },
    /// The operation needs an ICMPv6 Neighbor Solicitation or Advertisement (type 135
    /// or 136, code 0; a source link-layer address only in a solicitation, a target one
    /// only in an advertisement).
    #[error("not the IPv6 neighbor discovery message the field belongs to: ICMPv6 type {icmp_type} code {icmp_code}")]
    NotNd {
        /// The ICMPv6 type.
        icmp_type: u8,
        /// The ICMPv6 code.
        icmp_code: u8,
    },
    /// The operation needs one IP version and the packet is of the other (an IPv6 flow
    /// label on an IPv4 packet).
    #[error("the operation needs IPv{need}; the packet is IPv{packet}")]
    WrongIpVersion {
        /// The version needed (4 or 6).
        need: u8,
        /// The packet's version.
        packet: u8,
    },
    /// A value does not fit the header field it is to be written into.
    #[error("{field} value {value:#x} does not fit (max {max:#x})")]
    ValueOutOfRange {
        /// The field (`"VLAN VID"`, `"MPLS label"`, ...).
        field: &'static str,
        /// The value given.
        value: u32,
        /// The largest value the field holds.
        max: u32,
    },
    /// An MPLS push or pop was given an EtherType it cannot use (a push needs 0x8847
    /// or 0x8848).
    #[error("EtherType {ether_type:#06x} is not an MPLS EtherType (0x8847/0x8848)")]
    NotMplsEtherType {
        /// The EtherType given.
        ether_type: u16,
    },
    /// A VLAN push was given a TPID that is not a VLAN EtherType (0x8100 or 0x88a8).
    #[error("EtherType {ether_type:#06x} is not a VLAN TPID (0x8100/0x88a8)")]
    NotVlanTpid {
        /// The TPID given.
        ether_type: u16,
    },
    /// The MPLS stack already holds the most labels a push (or a pop) may handle; Open
    /// vSwitch drops such packets (`XLATE_TOO_MANY_MPLS_LABELS`).
    #[error("MPLS stack of {labels} labels is too deep (at most {max})")]
    TooManyMplsLabels {
        /// Labels found before giving up.
        labels: usize,
        /// The limit.
        max: usize,
    },
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
