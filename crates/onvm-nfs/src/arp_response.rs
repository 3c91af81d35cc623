//! Answer ARP requests for the ports' IPv4 addresses.
//!
//! `onvm nf arp-response -s IP0,IP1,… [--mac MAC0,MAC1,…] [--out-port P] [-d SERVICE]`
//!
//! Port `p` owns the `p`-th address of `-s` and the `p`-th MAC of `--mac` (default
//! `02:00:00:00:00:<p + 0x10>`, the port's own MAC throughout this catalogue:
//! [`crate::net::port_mac`]). An Ethernet/IPv4 ARP request (VLAN tags allowed)
//! that arrived on port `p` asking for `p`'s address is turned into the reply in
//! place: Ethernet destination = the requester's source, source = `p`'s MAC; opcode 2;
//! sender = `p`'s MAC and address, target = the requester's; the frame keeps its length
//! (padding). The reply leaves by the arrival port, or by `--out-port` (a port that
//! receives but cannot send, such as a capture being replayed, answers through another
//! one). Frames that are not ARP go to `-d` or the chain's next hop. ARP that is not a
//! request for the arrival port's address (other addresses, replies, other opcodes, a
//! port without an address) is dropped.
//!
//! Counters: `replied`, `not_for_us` (ARP dropped), `passed` (not ARP), `malformed`
//! (ARP shorter than its 28 bytes or not Ethernet/IPv4, or not even an Ethernet header:
//! dropped).
//!
//! Differences from openNetVM's `arp_response`: per-port MACs can be given; the reply
//! can leave by another port; VLAN-tagged requests are answered (the tag kept); IPv6
//! neighbour solicitations are not answered (passed on as not ARP).

use std::net::Ipv4Addr;

use onvm_nf::{Action, Batch, Ctx, Handler, PacketMut};
use onvm_packet::l3_offset;
use onvm_packet::layout::ETHER_TYPE_ARP;

use crate::catalogue::{Catalogued, check_service};
use crate::net::{parse_mac, port_mac};

/// Length of an Ethernet/IPv4 ARP packet.
const ARP_LEN: usize = 28;

/// What arp_response counted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// Requests answered.
    pub replied: u64,
    /// ARP dropped: not a request for the arrival port's address.
    pub not_for_us: u64,
    /// Frames that are not ARP, passed on.
    pub passed: u64,
    /// Dropped: malformed.
    pub malformed: u64,
}

/// The handler.
#[derive(Debug, Clone)]
pub struct ArpResponse {
    /// Per port: its address and MAC.
    ports: Vec<([u8; 4], [u8; 6])>,
    out_port: Option<u16>,
    pass: Action,
    /// Counts so far.
    pub counts: Counts,
}

impl ArpResponse {
    /// A responder for `ports` (port `p`'s address and MAC at `p`); replies leave by
    /// `out_port` (default: the arrival port); other frames get `pass`.
    pub fn new(ports: Vec<(Ipv4Addr, [u8; 6])>, out_port: Option<u16>, pass: Action) -> Self {
        ArpResponse {
            ports: ports.into_iter().map(|(a, m)| (a.octets(), m)).collect(),
            out_port,
            pass,
            counts: Counts::default(),
        }
    }

    /// Handle `frame`, arrived on `in_port` (answered in place): its action, counted.
    #[inline]
    pub fn handle(&mut self, in_port: u16, frame: &mut [u8]) -> Action {
        let c = &mut self.counts;
        // After the Ethernet header and any VLAN tags; `None`: a runt or a cut tag.
        let Some(l3) = l3_offset(frame) else {
            c.malformed += 1;
            return Action::Drop;
        };
        if frame[l3 - 2..l3] != ETHER_TYPE_ARP.to_be_bytes() {
            c.passed += 1;
            return self.pass;
        }
        let Some(arp) = frame.get(l3..l3 + ARP_LEN) else {
            c.malformed += 1;
            return Action::Drop;
        };
        // Ethernet (1), IPv4 (0x0800), 6-byte and 4-byte addresses.
        if arp[..6] != [0, 1, 0x08, 0x00, 6, 4] {
            c.malformed += 1;
            return Action::Drop;
        }
        let ours = self.ports.get(usize::from(in_port)).copied();
        let (ip, mac) = match ours {
            Some((ip, mac)) if arp[6..8] == [0, 1] && arp[24..28] == ip => (ip, mac),
            _ => {
                c.not_for_us += 1;
                return Action::Drop;
            }
        };
        let mut sha = [0u8; 6];
        sha.copy_from_slice(&arp[8..14]);
        let mut spa = [0u8; 4];
        spa.copy_from_slice(&arp[14..18]);
        // Ethernet: back to where it came from, from us.
        frame.copy_within(6..12, 0);
        frame[6..12].copy_from_slice(&mac);
        let arp = &mut frame[l3..l3 + ARP_LEN];
        arp[7] = 2;
        arp[8..14].copy_from_slice(&mac);
        arp[14..18].copy_from_slice(&ip);
        arp[18..24].copy_from_slice(&sha);
        arp[24..28].copy_from_slice(&spa);
        c.replied += 1;
        Action::Out(self.out_port.unwrap_or(in_port))
    }
}

impl Handler for ArpResponse {
    fn packet(&mut self, pkt: &mut PacketMut<'_>, _ctx: &mut Ctx<'_>) -> Action {
        let in_port = pkt.meta().in_port();
        self.handle(in_port, pkt.data_mut())
    }

    fn batch(&mut self, batch: &mut Batch<'_>, _ctx: &mut Ctx<'_>) {
        batch.map(|p| self.handle(p.meta().in_port(), p.data_mut()));
    }
}

/// `onvm nf arp-response -s IP0,IP1,… [--mac MAC0,…] [--out-port P] [-d SERVICE]`.
#[derive(clap::Args, Debug, Clone)]
pub struct Args {
    /// Each port's IPv4 address, port 0 first.
    #[arg(short = 's', long = "ips", value_delimiter = ',', required = true)]
    pub ips: Vec<String>,
    /// Each port's MAC (default 02:00:00:00:00:<port + 0x10>).
    #[arg(long = "mac", value_delimiter = ',')]
    pub macs: Vec<String>,
    /// Send replies out of this port instead of the arrival port.
    #[arg(long)]
    pub out_port: Option<u16>,
    /// Where frames that are not ARP go (default: the chain's next hop).
    #[arg(short = 'd', long)]
    pub dest: Option<u16>,
}

impl Catalogued for Args {
    const NAME: &'static str = "arp_response";
    type Nf = ArpResponse;
    fn build(&self) -> Result<ArpResponse, String> {
        let dest = self.dest.map(|d| check_service("--dest", d)).transpose()?;
        if !self.macs.is_empty() && self.macs.len() != self.ips.len() {
            return Err(format!(
                "--mac: {} MACs for {} addresses (-s): give one per port",
                self.macs.len(),
                self.ips.len()
            ));
        }
        let max = onvm_proto::limits::MAX_PORTS;
        if self.ips.len() > usize::from(max) {
            return Err(format!(
                "--ips: {} addresses, more than the {max} ports",
                self.ips.len()
            ));
        }
        if let Some(p) = self.out_port
            && p >= max
        {
            return Err(format!("--out-port {p}: out of range, must be 0..={}", max - 1));
        }
        let mut ports = Vec::with_capacity(self.ips.len());
        for (p, ip) in self.ips.iter().enumerate() {
            let a: Ipv4Addr = ip
                .trim()
                .parse()
                .map_err(|_| format!("--ips {ip:?}: not an IPv4 address"))?;
            let mac = match self.macs.get(p) {
                Some(m) => parse_mac(m.trim()).map_err(|e| format!("--mac {e}"))?,
                None => port_mac(p as u16),
            };
            ports.push((a, mac));
        }
        Ok(ArpResponse::new(
            ports,
            self.out_port,
            dest.map_or(Action::Next, Action::ToService),
        ))
    }
    fn report(nf: &ArpResponse) -> Option<String> {
        let c = nf.counts;
        Some(format!(
            "arp_response: replied {}, not_for_us {}, passed {}, malformed {}",
            c.replied, c.not_for_us, c.passed, c.malformed
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_frames::{arp_request, garbage, prefixes, udp};
    use onvm_nf::offline::Offline;

    const ASKER: [u8; 6] = [0x0a, 0xbb, 0xcc, 0xdd, 0xee, 0x01];

    fn responder(out_port: Option<u16>) -> ArpResponse {
        Args {
            ips: vec!["10.0.0.1".into(), "10.0.1.1".into()],
            macs: vec![],
            out_port,
            dest: Some(7),
        }
        .build()
        .unwrap()
    }

    /// The reply to `ASKER` at 10.0.0.9 from `mac`/`ip`, written out byte by byte.
    fn reply(mac: [u8; 6], ip: [u8; 4]) -> Vec<u8> {
        let mut f = [&ASKER[..], &mac, &[0x08, 0x06, 0, 1, 0x08, 0, 6, 4, 0, 2]].concat();
        f.extend_from_slice(&mac);
        f.extend_from_slice(&ip);
        f.extend_from_slice(&ASKER);
        f.extend_from_slice(&[10, 0, 0, 9]);
        f.resize(60, 0);
        f
    }

    #[test]
    fn answers_requests_for_the_arrival_port_s_address_out_of_it() {
        let mut r = responder(None);
        let mut off = Offline::new().unwrap();
        let mut sim = off.start(&mut r);
        let to_p0 = arp_request(ASKER, [10, 0, 0, 9], [10, 0, 0, 1]);
        let to_p1 = arp_request(ASKER, [10, 0, 0, 9], [10, 0, 1, 1]);
        let out = sim.frames(&mut r, 0, &[to_p0.clone(), to_p1.clone()]).unwrap();
        assert_eq!(out[0].action, Action::Out(0));
        assert_eq!(out[0].frame, reply([2, 0, 0, 0, 0, 0x10], [10, 0, 0, 1]));
        assert_eq!(out[1].action, Action::Drop);
        let out = sim.frames(&mut r, 1, std::slice::from_ref(&to_p1)).unwrap();
        assert_eq!(out[0].action, Action::Out(1));
        assert_eq!(out[0].frame, reply([2, 0, 0, 0, 0, 0x11], [10, 0, 1, 1]));
        // Port 2 has no address; a reply is not a request; IP passes to -d.
        let mut not_req = to_p0.clone();
        not_req[21] = 2;
        let out = sim.frames(&mut r, 2, std::slice::from_ref(&to_p0)).unwrap();
        assert_eq!(out[0].action, Action::Drop);
        let out = sim
            .frames(&mut r, 0, &[not_req, udp("1.1.1.1", "10.0.0.1", 9)])
            .unwrap();
        assert_eq!((out[0].action, out[1].action), (Action::Drop, Action::ToService(7)));
        assert_eq!(
            r.counts,
            Counts {
                replied: 2,
                not_for_us: 3,
                passed: 1,
                malformed: 0
            }
        );
        // --out-port.
        let mut r = responder(Some(4));
        let mut sim = off.start(&mut r);
        let out = sim.frames(&mut r, 1, &[to_p1]).unwrap();
        assert_eq!(out[0].action, Action::Out(4));
    }

    #[test]
    fn flags_are_checked() {
        let a = |ips: &[&str], macs: &[&str]| {
            Args {
                ips: ips.iter().map(|s| s.to_string()).collect(),
                macs: macs.iter().map(|s| s.to_string()).collect(),
                out_port: None,
                dest: None,
            }
            .build()
            .map(drop)
        };
        assert_eq!(
            a(&["10.0.0.300"], &[]).unwrap_err(),
            "--ips \"10.0.0.300\": not an IPv4 address"
        );
        assert!(
            a(&["10.0.0.1", "10.0.0.2"], &["02:00:00:00:00:01"])
                .unwrap_err()
                .starts_with("--mac: 1 MACs")
        );
        assert!(
            a(&["10.0.0.1"], &["02:00:00:00:zz:01"])
                .unwrap_err()
                .starts_with("--mac bad MAC")
        );
        let mut r = Args {
            ips: vec!["10.0.0.1".into()],
            macs: vec!["0a:00:00:00:00:05".into()],
            out_port: None,
            dest: None,
        }
        .build()
        .unwrap();
        let mut f = arp_request(ASKER, [10, 0, 0, 9], [10, 0, 0, 1]);
        assert_eq!(r.handle(0, &mut f), Action::Out(0));
        assert_eq!(f, reply([0x0a, 0, 0, 0, 0, 5], [10, 0, 0, 1]));
    }

    #[test]
    fn malformed_frames_are_dropped_or_passed_never_panic() {
        let mut r = responder(None);
        let mut off = Offline::new().unwrap();
        let mut sim = off.start(&mut r);
        let good = arp_request(ASKER, [10, 0, 0, 9], [10, 0, 0, 1]);
        let cuts = prefixes(&good[..42]);
        let out = sim.frames(&mut r, 0, &cuts).unwrap();
        assert!(out.iter().all(|s| s.action == Action::Drop));
        let mut bad = good.clone();
        bad[19] = 16; // hardware address length
        assert_eq!(sim.frames(&mut r, 0, &[bad]).unwrap()[0].action, Action::Drop);
        assert_eq!(r.counts.malformed, 43);
        // A bad IPv4 header is not ARP: passed on.
        let mut ip = udp("1.1.1.1", "2.2.2.2", 9);
        ip[14] = 0x41;
        assert_eq!(sim.frames(&mut r, 0, &[ip]).unwrap()[0].action, Action::ToService(7));
        assert_eq!(sim.frames(&mut r, 0, &garbage(500)).unwrap().len(), 500);
        for p in 0..4 {
            let g = garbage(100);
            assert_eq!(sim.frames(&mut r, p, &g).unwrap().len(), 100);
        }
    }
}
