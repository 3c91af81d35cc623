//! How the switch meets controllers: `--controller`, `--openflow-listen`, the fail mode
//! and the datapath ID, and the parsing of their Open vSwitch-style addresses.

use std::net::{SocketAddr, ToSocketAddrs};

use thiserror::Error;

/// Why an OpenFlow option was refused; each says what was expected.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum OptionError {
    #[error("fail mode {0:?}: expected secure or standalone")]
    FailMode(String),
    #[error("{0:?}: an OpenFlow listener is ptcp:PORT[:IP]")]
    Listen(String),
    #[error("{0:?}: a controller is tcp:HOST:PORT")]
    Controller(String),
    #[error("{spec:?}: {port:?} is not a TCP port")]
    Port { spec: String, port: String },
    #[error("{spec:?}: {ip:?} is not an IP address")]
    Ip { spec: String, ip: String },
    #[error("{spec:?}: cannot resolve {host:?}: {why}")]
    Resolve { spec: String, host: String, why: String },
    #[error("{spec:?}: {host:?} has no address")]
    NoAddress { spec: String, host: String },
}

/// The TCP port of `spec`.
fn tcp_port(spec: &str, port: &str) -> Result<u16, OptionError> {
    port.parse().map_err(|_| OptionError::Port {
        spec: spec.into(),
        port: port.into(),
    })
}

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
    type Err = OptionError;
    fn from_str(s: &str) -> Result<Self, OptionError> {
        match s {
            "secure" => Ok(FailMode::Secure),
            "standalone" => Ok(FailMode::Standalone),
            _ => Err(OptionError::FailMode(s.into())),
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

/// Parses `ptcp:PORT[:IP]` (Open vSwitch's syntax). Without an IP it listens on
/// 127.0.0.1 only: OpenFlow has no authentication, and whoever reaches the port can
/// rewrite every rule, so other machines must be let in explicitly (`ptcp:6653:0.0.0.0`).
pub fn parse_listen(s: &str) -> Result<SocketAddr, OptionError> {
    let rest = s.strip_prefix("ptcp:").ok_or_else(|| OptionError::Listen(s.into()))?;
    let (port, ip) = rest.split_once(':').unwrap_or((rest, "127.0.0.1"));
    let port = tcp_port(s, port)?;
    let ip: std::net::IpAddr = ip.trim_matches(['[', ']']).parse().map_err(|_| OptionError::Ip {
        spec: s.into(),
        ip: ip.into(),
    })?;
    Ok(SocketAddr::new(ip, port))
}

/// Parses `tcp:HOST:PORT` (`tcp:[::1]:6653` for IPv6), resolving HOST once.
pub fn parse_controller(s: &str) -> Result<SocketAddr, OptionError> {
    let (host, port) = s
        .strip_prefix("tcp:")
        .and_then(|rest| rest.rsplit_once(':'))
        .ok_or_else(|| OptionError::Controller(s.into()))?;
    let port = tcp_port(s, port)?;
    (host.trim_matches(['[', ']']), port)
        .to_socket_addrs()
        .map_err(|e| OptionError::Resolve {
            spec: s.into(),
            host: host.into(),
            why: e.to_string(),
        })?
        .next()
        .ok_or_else(|| OptionError::NoAddress {
            spec: s.into(),
            host: host.into(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_as_open_vswitch_writes_them() {
        assert_eq!(parse_listen("ptcp:6653"), Ok("127.0.0.1:6653".parse().unwrap()));
        assert_eq!(parse_listen("ptcp:6653:0.0.0.0"), Ok("0.0.0.0:6653".parse().unwrap()));
        assert_eq!(parse_listen("ptcp:0:127.0.0.1"), Ok("127.0.0.1:0".parse().unwrap()));
        assert_eq!(parse_listen("ptcp:6653:[::1]"), Ok("[::1]:6653".parse().unwrap()));
        assert!(
            parse_listen("tcp:6653")
                .unwrap_err()
                .to_string()
                .contains("ptcp:PORT[:IP]")
        );
        assert!(
            parse_listen("ptcp:x")
                .unwrap_err()
                .to_string()
                .contains("not a TCP port")
        );
        assert!(
            parse_listen("ptcp:1:nowhere")
                .unwrap_err()
                .to_string()
                .contains("not an IP address")
        );
        assert_eq!(
            parse_controller("tcp:127.0.0.1:6653"),
            Ok("127.0.0.1:6653".parse().unwrap())
        );
        assert_eq!(parse_controller("tcp:[::1]:6653"), Ok("[::1]:6653".parse().unwrap()));
        assert_eq!(parse_controller("tcp:localhost:1").map(|a| a.port()), Ok(1));
        assert!(
            parse_controller("ptcp:6653")
                .unwrap_err()
                .to_string()
                .contains("tcp:HOST:PORT")
        );
        assert!(
            parse_controller("tcp:127.0.0.1")
                .unwrap_err()
                .to_string()
                .contains("tcp:HOST:PORT")
        );
        assert!(
            parse_controller("tcp:127.0.0.1:x")
                .unwrap_err()
                .to_string()
                .contains("not a TCP port")
        );
        assert!(
            parse_controller("tcp:no-such-host.invalid:1")
                .unwrap_err()
                .to_string()
                .contains("cannot resolve")
        );
        assert_eq!("standalone".parse(), Ok(FailMode::Standalone));
        assert!(
            "open"
                .parse::<FailMode>()
                .unwrap_err()
                .to_string()
                .contains("secure or standalone")
        );
    }
}
