//! How the switch meets controllers: `--controller`, `--openflow-listen`, the fail mode
//! and the datapath ID, and the parsing of their Open vSwitch-style addresses.

use std::net::{SocketAddr, ToSocketAddrs};

/// What happens to the table when the last controller goes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum FailMode {
    /// Keep it as the controllers left it.
    #[default]
    Secure,
    /// Put the config's rules back (the manager's own chains).
    Standalone,
}

impl std::str::FromStr for FailMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "secure" => Ok(FailMode::Secure),
            "standalone" => Ok(FailMode::Standalone),
            _ => Err(format!("fail mode {s:?}: expected secure or standalone")),
        }
    }
}

/// How the switch meets controllers.
#[derive(Clone, Debug, Default)]
pub struct OpenFlowOptions {
    /// `ptcp:PORT[:IP]`: where `ovs-ofctl` and dialling-in controllers connect.
    pub listen: Option<SocketAddr>,
    /// `tcp:HOST:PORT` controllers to dial.
    pub controllers: Vec<SocketAddr>,
    pub fail_mode: FailMode,
    /// FEATURES_REPLY's datapath ID (how a controller tells switches apart).
    pub datapath_id: u64,
}

impl OpenFlowOptions {
    /// Whether OpenFlow is on at all.
    pub fn enabled(&self) -> bool {
        self.listen.is_some() || !self.controllers.is_empty()
    }
}

/// Parses `ptcp:PORT[:IP]` (Open vSwitch's syntax; all addresses when no IP).
pub fn parse_listen(s: &str) -> Result<SocketAddr, String> {
    let rest = s
        .strip_prefix("ptcp:")
        .ok_or_else(|| format!("{s:?}: an OpenFlow listener is ptcp:PORT[:IP]"))?;
    let (port, ip) = rest.split_once(':').unwrap_or((rest, "0.0.0.0"));
    let port: u16 = port.parse().map_err(|_| format!("{s:?}: {port:?} is not a TCP port"))?;
    let ip: std::net::IpAddr = ip
        .trim_matches(['[', ']'])
        .parse()
        .map_err(|_| format!("{s:?}: {ip:?} is not an IP address"))?;
    Ok(SocketAddr::new(ip, port))
}

/// Parses `tcp:HOST:PORT` (`tcp:[::1]:6653` for IPv6), resolving HOST once.
pub fn parse_controller(s: &str) -> Result<SocketAddr, String> {
    let rest = s
        .strip_prefix("tcp:")
        .ok_or_else(|| format!("{s:?}: a controller is tcp:HOST:PORT"))?;
    let (host, port) = rest
        .rsplit_once(':')
        .ok_or_else(|| format!("{s:?}: a controller is tcp:HOST:PORT"))?;
    let port: u16 = port.parse().map_err(|_| format!("{s:?}: {port:?} is not a TCP port"))?;
    (host.trim_matches(['[', ']']), port)
        .to_socket_addrs()
        .map_err(|e| format!("{s:?}: cannot resolve {host:?}: {e}"))?
        .next()
        .ok_or_else(|| format!("{s:?}: {host:?} has no address"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_as_open_vswitch_writes_them() {
        assert_eq!(parse_listen("ptcp:6653"), Ok("0.0.0.0:6653".parse().unwrap()));
        assert_eq!(parse_listen("ptcp:0:127.0.0.1"), Ok("127.0.0.1:0".parse().unwrap()));
        assert_eq!(parse_listen("ptcp:6653:[::1]"), Ok("[::1]:6653".parse().unwrap()));
        assert!(parse_listen("tcp:6653").unwrap_err().contains("ptcp:PORT[:IP]"));
        assert!(parse_listen("ptcp:x").unwrap_err().contains("not a TCP port"));
        assert!(
            parse_listen("ptcp:1:nowhere")
                .unwrap_err()
                .contains("not an IP address")
        );
        assert_eq!(
            parse_controller("tcp:127.0.0.1:6653"),
            Ok("127.0.0.1:6653".parse().unwrap())
        );
        assert_eq!(parse_controller("tcp:[::1]:6653"), Ok("[::1]:6653".parse().unwrap()));
        assert_eq!(parse_controller("tcp:localhost:1").map(|a| a.port()), Ok(1));
        assert!(parse_controller("ptcp:6653").unwrap_err().contains("tcp:HOST:PORT"));
        assert!(parse_controller("tcp:127.0.0.1").unwrap_err().contains("tcp:HOST:PORT"));
        assert!(
            parse_controller("tcp:127.0.0.1:x")
                .unwrap_err()
                .contains("not a TCP port")
        );
        assert!(
            parse_controller("tcp:no-such-host.invalid:1")
                .unwrap_err()
                .contains("cannot resolve")
        );
        assert_eq!("standalone".parse(), Ok(FailMode::Standalone));
        assert!("open".parse::<FailMode>().unwrap_err().contains("secure or standalone"));
    }
}
