//! Flag values several NFs share: lists of prefixes, where a packet goes, protocol names.

use onvm_nf::Action;
use onvm_packet::layout::{IP_PROTO_ICMP, IP_PROTO_ICMPV6, IP_PROTO_TCP, IP_PROTO_UDP};

use crate::net::Prefix;

/// Parse every `--FLAG PREFIX`, naming the flag and value on an error.
pub fn prefixes(flag: &str, values: &[String]) -> Result<Vec<Prefix>, String> {
    values
        .iter()
        .map(|v| Prefix::parse(v).map_err(|e| format!("{flag} {e}")))
        .collect()
}

/// Where an NF sends the packets it passes: `next` (the chain's next hop), `out:N`
/// (a port), `service:N` (a service) or `drop`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dest(pub Action);

impl Dest {
    /// Parse a destination, naming `flag` on an error.
    pub fn parse(flag: &str, s: &str) -> Result<Dest, String> {
        let num = |t: &str| {
            t.parse::<u16>()
                .map_err(|_| format!("{flag} {s:?}: {t:?} is not a number"))
        };
        Ok(Dest(match s.split_once(':') {
            None if s == "next" => Action::Next,
            None if s == "drop" => Action::Drop,
            Some(("out", p)) => {
                let p = num(p)?;
                if p >= onvm_proto::limits::MAX_PORTS {
                    return Err(format!(
                        "{flag} {s:?}: port must be below {}",
                        onvm_proto::limits::MAX_PORTS
                    ));
                }
                Action::Out(p)
            }
            Some(("service", id)) => Action::ToService(crate::catalogue::check_service(flag, num(id)?)?),
            _ => {
                return Err(format!("{flag} {s:?}: expected next, drop, out:PORT or service:ID"));
            }
        }))
    }
}

/// Protocol numbers NFs name in flags (`tcp:22`).
pub fn proto_number(name: &str) -> Option<u8> {
    match name {
        "tcp" => Some(IP_PROTO_TCP),
        "udp" => Some(IP_PROTO_UDP),
        "icmp" => Some(IP_PROTO_ICMP),
        "icmpv6" => Some(IP_PROTO_ICMPV6),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_name_the_flag() {
        let e = prefixes("--inside", &["10.0.0.0/33".into()]).unwrap_err();
        assert!(e.starts_with("--inside \"10.0.0.0/33\""), "{e}");
    }

    #[test]
    fn destinations_parse() {
        assert_eq!(Dest::parse("--to", "next").unwrap().0, Action::Next);
        assert_eq!(Dest::parse("--to", "out:3").unwrap().0, Action::Out(3));
        assert_eq!(Dest::parse("--to", "service:2").unwrap().0, Action::ToService(2));
        assert_eq!(Dest::parse("--to", "drop").unwrap().0, Action::Drop);
        for bad in ["out:x", "service:0", "nowhere", "out:99999"] {
            let e = Dest::parse("--to", bad).unwrap_err();
            assert!(e.starts_with("--to"), "{e}");
        }
    }
}
