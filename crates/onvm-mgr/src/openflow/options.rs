//! How the switch meets controllers: `--controller`, `--openflow-listen`, the fail mode
//! and the datapath ID, the TLS settings, and the parsing of their Open vSwitch-style
//! addresses (`tcp:`/`ssl:` to dial, `ptcp:`/`pssl:` to listen).

use std::net::{SocketAddr, ToSocketAddrs};

use thiserror::Error;

use super::tls::TlsConfig;

/// Why an OpenFlow option was refused; each says what was expected.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum OptionError {
    #[error("fail mode {0:?}: expected secure or standalone")]
    FailMode(String),
    #[error("{0:?}: an OpenFlow listener is ptcp:PORT[:IP] or pssl:PORT[:IP]")]
    Listen(String),
    #[error("{0:?}: a controller is tcp:HOST:PORT or ssl:HOST:PORT")]
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

/// Plain TCP or TLS (Open vSwitch's `tcp:`/`ptcp:` and `ssl:`/`pssl:`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Transport {
    #[default]
    Tcp,
    Ssl,
}

/// An address to dial or listen on, and how to speak there.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Endpoint {
    pub transport: Transport,
    pub addr: SocketAddr,
}

/// How the switch meets controllers.
#[derive(Clone, Debug, Default)]
pub struct OpenFlowOptions {
    /// `ptcp:PORT[:IP]` or `pssl:PORT[:IP]`: where `ovs-ofctl` and dialling-in
    /// controllers connect.
    pub listen: Option<SocketAddr>,
    /// Whether the listener speaks TLS (`pssl:`).
    pub listen_transport: Transport,
    /// `tcp:HOST:PORT` and `ssl:HOST:PORT` controllers to dial.
    pub controllers: Vec<Endpoint>,
    /// The key, certificate and CA for `ssl:` and `pssl:`; required when either is used.
    pub tls: Option<TlsConfig>,
    pub fail_mode: FailMode,
    /// FEATURES_REPLY's datapath ID (how a controller tells switches apart).
    pub datapath_id: u64,
}

impl OpenFlowOptions {
    /// Whether OpenFlow is on at all.
    pub fn enabled(&self) -> bool {
        self.listen.is_some() || !self.controllers.is_empty()
    }

    /// Whether `ssl:` or `pssl:` is asked for (and so [`Self::tls`] is needed).
    pub fn uses_tls(&self) -> bool {
        (self.listen.is_some() && self.listen_transport == Transport::Ssl)
            || self.controllers.iter().any(|c| c.transport == Transport::Ssl)
    }
}

/// Parses `ptcp:PORT[:IP]` or `pssl:PORT[:IP]` (Open vSwitch's syntax). Without an IP
/// it listens on 127.0.0.1 only: over `ptcp:` OpenFlow has no authentication, and
/// whoever reaches the port can rewrite every rule, so other machines must be let in
/// explicitly (`ptcp:6653:0.0.0.0`); `pssl:` keeps the same default.
pub fn parse_listen(s: &str) -> Result<Endpoint, OptionError> {
    let (transport, rest) = match (s.strip_prefix("ptcp:"), s.strip_prefix("pssl:")) {
        (Some(rest), _) => (Transport::Tcp, rest),
        (_, Some(rest)) => (Transport::Ssl, rest),
        _ => return Err(OptionError::Listen(s.into())),
    };
    let (port, ip) = rest.split_once(':').unwrap_or((rest, "127.0.0.1"));
    let port = tcp_port(s, port)?;
    let ip: std::net::IpAddr = ip.trim_matches(['[', ']']).parse().map_err(|_| OptionError::Ip {
        spec: s.into(),
        ip: ip.into(),
    })?;
    Ok(Endpoint {
        transport,
        addr: SocketAddr::new(ip, port),
    })
}

/// Parses `tcp:HOST:PORT` or `ssl:HOST:PORT` (`tcp:[::1]:6653` for IPv6), resolving
/// HOST once.
pub fn parse_controller(s: &str) -> Result<Endpoint, OptionError> {
    let (transport, rest) = match (s.strip_prefix("tcp:"), s.strip_prefix("ssl:")) {
        (Some(rest), _) => (Transport::Tcp, rest),
        (_, Some(rest)) => (Transport::Ssl, rest),
        _ => return Err(OptionError::Controller(s.into())),
    };
    let (host, port) = rest.rsplit_once(':').ok_or_else(|| OptionError::Controller(s.into()))?;
    let port = tcp_port(s, port)?;
    let addr = (host.trim_matches(['[', ']']), port)
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
        })?;
    Ok(Endpoint { transport, addr })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tcp(addr: &str) -> Result<Endpoint, OptionError> {
        Ok(Endpoint {
            transport: Transport::Tcp,
            addr: addr.parse().unwrap(),
        })
    }

    fn ssl(addr: &str) -> Result<Endpoint, OptionError> {
        Ok(Endpoint {
            transport: Transport::Ssl,
            addr: addr.parse().unwrap(),
        })
    }

    #[test]
    fn tls_addresses_as_open_vswitch_writes_them() {
        assert_eq!(parse_listen("pssl:6653"), ssl("127.0.0.1:6653"));
        assert_eq!(parse_listen("pssl:6653:0.0.0.0"), ssl("0.0.0.0:6653"));
        assert_eq!(parse_listen("pssl:6653:[::1]"), ssl("[::1]:6653"));
        assert_eq!(parse_controller("ssl:127.0.0.1:6653"), ssl("127.0.0.1:6653"));
        assert_eq!(parse_controller("ssl:[::1]:6653"), ssl("[::1]:6653"));
        assert!(
            parse_listen("ssl:6653")
                .unwrap_err()
                .to_string()
                .contains("pssl:PORT[:IP]")
        );
        assert!(
            parse_controller("pssl:6653")
                .unwrap_err()
                .to_string()
                .contains("ssl:HOST:PORT")
        );
        assert!(
            parse_controller("ssl:127.0.0.1")
                .unwrap_err()
                .to_string()
                .contains("ssl:HOST:PORT")
        );
        assert!(
            parse_listen("pssl:x")
                .unwrap_err()
                .to_string()
                .contains("not a TCP port")
        );
        let mut o = OpenFlowOptions {
            listen: Some(parse_listen("ptcp:1").unwrap().addr),
            controllers: vec![parse_controller("tcp:127.0.0.1:1").unwrap()],
            ..OpenFlowOptions::default()
        };
        assert!(!o.uses_tls());
        o.controllers.push(parse_controller("ssl:127.0.0.1:2").unwrap());
        assert!(o.uses_tls());
        o.controllers.clear();
        o.listen_transport = Transport::Ssl;
        assert!(o.uses_tls());
    }

    #[test]
    fn addresses_as_open_vswitch_writes_them() {
        assert_eq!(parse_listen("ptcp:6653"), tcp("127.0.0.1:6653"));
        assert_eq!(parse_listen("ptcp:6653:0.0.0.0"), tcp("0.0.0.0:6653"));
        assert_eq!(parse_listen("ptcp:0:127.0.0.1"), tcp("127.0.0.1:0"));
        assert_eq!(parse_listen("ptcp:6653:[::1]"), tcp("[::1]:6653"));
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
        assert_eq!(parse_controller("tcp:127.0.0.1:6653"), tcp("127.0.0.1:6653"));
        assert_eq!(parse_controller("tcp:[::1]:6653"), tcp("[::1]:6653"));
        assert_eq!(parse_controller("tcp:localhost:1").map(|a| a.addr.port()), Ok(1));
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
