//! Route packets to services on their destination IP address.
//!
//! `onvm nf nf-router -f ROUTE_CONF`
//!
//! `ROUTE_CONF` is openNetVM's `route.conf`: a `LIST_SIZE n` line, then `n` lines
//! `IP SID`; here an entry may also be a prefix (`IP/LEN SID`, IPv4 or IPv6), the
//! `LIST_SIZE` line may be left out (when present it must equal the number of entries),
//! and `#` starts a comment. The longest prefix holding the destination names the
//! service the packet goes to; no match, not IP, or malformed: dropped.
//!
//! Counters: `routed`, `no_route`, `non_ip`, `malformed`.
//!
//! Differences from openNetVM's `nf_router`: prefixes and IPv6 (openNetVM compares the
//! destination with each IPv4 address in turn); the entry count is checked (openNetVM
//! reads past a short file); `-p` (printing) is left out.

use std::path::{Path, PathBuf};

use onvm_nf::{Action, Ctx, Handler, PacketMut};

use crate::catalogue::{Catalogued, check_service};
use crate::iptable::{Class, LpmTable, addr, classify};
use crate::net::Prefix;
use crate::table_file::{line_err, lines_of, read_text};

/// What the router counted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// Sent to a service.
    pub routed: u64,
    /// Dropped: no entry holds the destination.
    pub no_route: u64,
    /// Dropped: not IP.
    pub non_ip: u64,
    /// Dropped: malformed.
    pub malformed: u64,
}

/// The router's handler.
#[derive(Debug, Clone)]
pub struct NfRouter {
    routes: LpmTable<u16>,
    /// Counts so far.
    pub counts: Counts,
}

impl NfRouter {
    /// A router over `routes` (prefix → service).
    pub fn new(routes: LpmTable<u16>) -> Self {
        NfRouter {
            routes,
            counts: Counts::default(),
        }
    }

    /// Where `frame` goes, counted.
    #[inline]
    pub fn route(&mut self, frame: &[u8]) -> Action {
        let c = &mut self.counts;
        match classify(frame) {
            Class::Ip(l) => match addr(frame, &l, true).and_then(|a| self.routes.lookup(a)) {
                Some(&s) => {
                    c.routed += 1;
                    Action::ToService(s)
                }
                None => {
                    c.no_route += 1;
                    Action::Drop
                }
            },
            Class::NotIp => {
                c.non_ip += 1;
                Action::Drop
            }
            Class::Malformed => {
                c.malformed += 1;
                Action::Drop
            }
        }
    }
}

impl Handler for NfRouter {
    fn packet(&mut self, pkt: &mut PacketMut<'_>, _ctx: &mut Ctx<'_>) -> Action {
        self.route(pkt.data())
    }
}

/// Parse a route.conf's `text` (`path` names it in errors).
pub fn parse_routes(path: &Path, text: &str) -> Result<LpmTable<u16>, String> {
    const FLAG: &str = "--routes";
    let mut t = LpmTable::new();
    let mut size = None;
    let mut entries = 0;
    for l in lines_of(text) {
        let err = |e: String| line_err(FLAG, path, l.no, e);
        let [a, b] = &l.words[..] else {
            return Err(err("want `IP[/LEN] SERVICE` (or `LIST_SIZE n` first)".into()));
        };
        if a == "LIST_SIZE" {
            if size.is_some() || entries > 0 {
                return Err(err("LIST_SIZE must come once, first".into()));
            }
            size = Some(b.parse::<usize>().map_err(|_| err(format!("bad LIST_SIZE {b:?}")))?);
            continue;
        }
        let p: Prefix = a.parse().map_err(err)?;
        let sid = b
            .parse::<u16>()
            .map_err(|_| format!("bad service {b:?}"))
            .and_then(|s| check_service("service", s))
            .map_err(err)?;
        t.insert(p, sid);
        entries += 1;
    }
    match size {
        Some(n) if n != entries => Err(format!(
            "{FLAG} {}: LIST_SIZE {n} but {entries} entries",
            path.display()
        )),
        _ => Ok(t),
    }
}

/// `onvm nf nf-router -f ROUTE_CONF`.
#[derive(clap::Args, Debug, Clone)]
pub struct Args {
    /// openNetVM's route.conf: `LIST_SIZE n`, then `IP[/LEN] SERVICE` lines.
    #[arg(short = 'f', long = "routes")]
    pub routes: PathBuf,
}

impl Catalogued for Args {
    const NAME: &'static str = "nf_router";
    type Nf = NfRouter;
    fn build(&self) -> Result<NfRouter, String> {
        let text = read_text("--routes", &self.routes)?;
        Ok(NfRouter::new(parse_routes(&self.routes, &text)?))
    }
    fn report(nf: &NfRouter) -> Option<String> {
        let c = nf.counts;
        Some(format!(
            "nf_router: routed {}, no_route {}, non_ip {}, malformed {}",
            c.routed, c.no_route, c.non_ip, c.malformed
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_frames::{arp_request, garbage, malformed_variants, udp};
    use onvm_nf::offline::Offline;

    const CONF: &str = "LIST_SIZE 4\n10.0.0.1 2\n10.0.0.2 3\n10.1.0.0/16 4\n2001:db8::/32 5\n";

    #[test]
    fn routes_hosts_and_prefixes_to_services() {
        let mut r = NfRouter::new(parse_routes(Path::new("c"), CONF).unwrap());
        for (dst, want) in [
            ("10.0.0.1", Action::ToService(2)),
            ("10.0.0.2", Action::ToService(3)),
            ("10.0.0.3", Action::Drop),
            ("10.1.9.9", Action::ToService(4)),
            ("2001:db8::7", Action::ToService(5)),
        ] {
            let src = if dst.contains(':') { "::1" } else { "1.1.1.1" };
            assert_eq!(r.route(&udp(src, dst, 64)), want, "{dst}");
        }
        assert_eq!(r.route(&arp_request([1; 6], [1; 4], [2; 4])), Action::Drop);
        assert_eq!(
            r.counts,
            Counts {
                routed: 4,
                no_route: 1,
                non_ip: 1,
                malformed: 0
            }
        );
    }

    #[test]
    fn bad_confs_name_file_and_line() {
        let p = Path::new("/route.conf");
        let e = parse_routes(p, "LIST_SIZE 3\n10.0.0.1 2\n").unwrap_err();
        assert_eq!(e, "--routes /route.conf: LIST_SIZE 3 but 1 entries");
        let e = parse_routes(p, "10.0.0.1 0\n").unwrap_err();
        assert!(
            e.starts_with("--routes /route.conf: line 1: service 0: out of range"),
            "{e}"
        );
        let e = parse_routes(p, "10.0.0.1 2\n10.0.0.300 2\n").unwrap_err();
        assert!(e.starts_with("--routes /route.conf: line 2: bad prefix"), "{e}");
        let e = parse_routes(p, "10.0.0.1 2\nLIST_SIZE 1\n").unwrap_err();
        assert!(e.contains("line 2: LIST_SIZE must come once, first"), "{e}");
    }

    #[test]
    fn malformed_frames_are_dropped_never_panic() {
        let mut r = NfRouter::new(parse_routes(Path::new("c"), "0.0.0.0/0 2\n::/0 2\n").unwrap());
        let mut off = Offline::new().unwrap();
        let mut sim = off.start(&mut r);
        for good in [udp("10.1.1.1", "10.2.2.2", 64), udp("2001:db8::1", "2001:db8::2", 64)] {
            let bad = malformed_variants(&good);
            let out = sim.frames(&mut r, 0, &bad).unwrap();
            assert_eq!(out.len(), bad.len());
            // Cut inside the IP header: dropped.
            assert!(out[..34].iter().all(|s| s.action == Action::Drop));
        }
        assert_eq!(sim.frames(&mut r, 0, &garbage(500)).unwrap().len(), 500);
    }
}
