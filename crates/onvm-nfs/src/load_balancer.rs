//! An L3 load balancer for one virtual IP: new flows are spread over backends by a
//! policy, every packet of a flow goes to the same backend, replies come back from the
//! VIP.
//!
//! `onvm nf load-balancer --vip IP -f BACKENDS [--vip-mac MAC] [--policy round-robin|weighted|hash]
//! [--client-port P] [--server-port P] [--max-flows N]`
//!
//! * Backends come from a file of `IP MAC [WEIGHT]` lines (weight 1 by default; `#`
//!   starts a comment). openNetVM's `LIST_SIZE n` header line is accepted, and then
//!   the file must hold exactly `n` backends.
//! * An IPv4 packet to the VIP (from a client) belongs to the flow (client address,
//!   client port, VIP port, protocol; ports 0 without TCP/UDP/SCTP). A new flow gets a
//!   backend from the policy: `round-robin` takes them in turn, `weighted` is smooth
//!   weighted round-robin (nginx's: with weights 3 and 1, `a a b a`), `hash` picks by
//!   FNV-1a (32 bits) of the key's bytes (client address, client port and VIP port big
//!   endian, protocol) modulo the total weight, each backend owning a run of weight
//!   values in file order. The flow is recorded, so every later packet of it goes to
//!   the same backend; its destination IP becomes the backend's (IPv4 and L4
//!   checksums patched), its destination MAC the backend's and its source MAC
//!   `--vip-mac`; out of `--server-port`, or to the chain's next hop without it.
//! * A packet from a backend (source address = a backend's) is a reply: its source IP
//!   becomes the VIP, its source MAC `--vip-mac` and its destination MAC the client MAC
//!   recorded for the flow (left as it is, counted `reply_unknown`, if the flow is not
//!   known); out of `--client-port` or to the next hop. Both directions therefore run
//!   on one instance.
//! * An ARP request for the VIP is answered in place (`--vip-mac`) out of the port it
//!   came in on, as openNetVM's expects `arp_response` in front of it to do.
//! * Other frames go to the next hop (`other`); a malformed IPv4 header is dropped
//!   (`malformed`).
//! * The flow table holds at most `--max-flows` (default 65536), evicting the least
//!   recently seen eighth when full (`evicted`; see [`crate::flow`]).
//!
//! Differs from openNetVM's `load_balancer`: there the client and server sides are
//! kernel interfaces looked up by name (ioctl `SIOCGIFADDR`) and their MACs read from
//! the ports; here the VIP and its MAC are flags. openNetVM's clears its whole flow
//! table when it fills (every flow may then change backend), has round-robin only
//! (random and weighted-random on its develop branch), and needs `arp_response` in
//! front of it.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;

use onvm_nf::{Action, Ctx, Handler, PacketMut};
use onvm_packet::layout::{ETHER_TYPE_ARP, IpVersion};
use onvm_packet::{Layout, MacAddr, set_dst_mac, set_ip, set_src_mac};

use crate::catalogue::Catalogued;
use crate::flow::{FlowKey, FlowTable, Hasher, Lookup};
use crate::net::parse_mac;
use crate::table_file::{line_err, lines_of, read_text};

/// A backend server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backend {
    /// Its address.
    pub ip: Ipv4Addr,
    /// Its MAC (or its next hop's).
    pub mac: MacAddr,
    /// Its share of new flows under `weighted` and `hash`.
    pub weight: u32,
}

/// How a new flow's backend is chosen.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Policy {
    /// In turn.
    RoundRobin,
    /// Smooth weighted round-robin.
    Weighted,
    /// By a hash of the flow, weighted.
    Hash,
}

/// A client flow: client address and port, VIP port, protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct LbKey {
    /// Client address.
    pub client: [u8; 4],
    /// Client port.
    pub client_port: u16,
    /// VIP port.
    pub vip_port: u16,
    /// IP protocol.
    pub proto: u8,
}

impl LbKey {
    /// FNV-1a (32 bits) of the key's bytes, as `hash` uses it.
    pub fn fnv1a(&self) -> u32 {
        let mut h: u32 = 0x811c_9dc5;
        let (c, v) = (self.client_port.to_be_bytes(), self.vip_port.to_be_bytes());
        let bytes = [&self.client[..], &c, &v, &[self.proto]];
        for &b in bytes.iter().flat_map(|s| s.iter()) {
            h ^= u32::from(b);
            h = h.wrapping_mul(0x0100_0193);
        }
        h
    }
}

/// What is kept for a flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LbFlow {
    /// Index of its backend.
    pub backend: u16,
    /// The client's MAC (source MAC of its packets).
    pub client_mac: MacAddr,
}

/// What the balancer counted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LbCounts {
    /// Flows made.
    pub flows: u64,
    /// Packets sent to a backend.
    pub to_server: u64,
    /// Replies sent to a client.
    pub to_client: u64,
    /// Replies of flows not in the table.
    pub reply_unknown: u64,
    /// ARP requests for the VIP answered.
    pub arp_replies: u64,
    /// Frames passed on untouched.
    pub other: u64,
    /// Frames dropped as malformed.
    pub malformed: u64,
}

/// The load balancer. See the [module docs](self).
#[derive(Debug)]
pub struct LoadBalancer {
    vip: Ipv4Addr,
    vip_mac: MacAddr,
    backends: Vec<Backend>,
    by_ip: HashMap<[u8; 4], u16, Hasher>,
    policy: Policy,
    rr: usize,
    current: Vec<i64>,
    total_weight: u64,
    table: FlowTable<LbKey, LbFlow>,
    to_server: Action,
    to_client: Action,
    /// Packets per backend (flows' packets toward it).
    pub per_backend: Vec<u64>,
    /// What it counted.
    pub counts: LbCounts,
}

impl LoadBalancer {
    /// A balancer for `vip` over `backends` (at least one).
    pub fn new(vip: Ipv4Addr, vip_mac: MacAddr, backends: Vec<Backend>, policy: Policy, max_flows: usize) -> Self {
        let by_ip = backends
            .iter()
            .enumerate()
            .map(|(i, b)| (b.ip.octets(), i as u16))
            .collect();
        LoadBalancer {
            vip,
            vip_mac,
            by_ip,
            policy,
            rr: 0,
            current: vec![0; backends.len()],
            total_weight: backends.iter().map(|b| u64::from(b.weight)).sum(),
            per_backend: vec![0; backends.len()],
            backends,
            table: FlowTable::new(max_flows),
            to_server: Action::Next,
            to_client: Action::Next,
            counts: LbCounts::default(),
        }
    }

    /// Send to-server packets out of `server` and replies out of `client` (else next).
    pub fn ports(mut self, client: Option<u16>, server: Option<u16>) -> Self {
        self.to_client = client.map_or(Action::Next, Action::Out);
        self.to_server = server.map_or(Action::Next, Action::Out);
        self
    }

    /// The backend for a new flow.
    fn pick(&mut self, key: &LbKey) -> u16 {
        let n = self.backends.len();
        match self.policy {
            Policy::RoundRobin => {
                let i = self.rr % n;
                self.rr = self.rr.wrapping_add(1);
                i as u16
            }
            Policy::Weighted => {
                let mut best = 0;
                for (i, b) in self.backends.iter().enumerate() {
                    self.current[i] += i64::from(b.weight);
                    if self.current[i] > self.current[best] {
                        best = i;
                    }
                }
                self.current[best] -= self.total_weight as i64;
                best as u16
            }
            Policy::Hash => {
                let mut at = u64::from(key.fnv1a()) % self.total_weight;
                for (i, b) in self.backends.iter().enumerate() {
                    if at < u64::from(b.weight) {
                        return i as u16;
                    }
                    at -= u64::from(b.weight);
                }
                (n - 1) as u16
            }
        }
    }

    /// Handle one frame (arrived on `in_port`, seen at `now`) in place: where it goes.
    pub fn handle(&mut self, frame: &mut [u8], in_port: u16, now: u64) -> Action {
        let layout = match Layout::of(frame) {
            Ok(l) => l,
            Err(_) => {
                self.counts.malformed += 1;
                return Action::Drop;
            }
        };
        if layout.ether_type == ETHER_TYPE_ARP && layout.vlan_tags == 0 {
            return self.arp(frame, in_port);
        }
        if layout.ip.is_none_or(|ip| ip.version != IpVersion::V4) {
            self.counts.other += 1;
            return Action::Next;
        }
        let Some(k) = FlowKey::of(frame) else {
            self.counts.malformed += 1;
            return Action::Drop;
        };
        let (src, dst) = (
            [k.src[0], k.src[1], k.src[2], k.src[3]],
            [k.dst[0], k.dst[1], k.dst[2], k.dst[3]],
        );
        if dst == self.vip.octets() {
            let key = LbKey {
                client: src,
                client_port: k.sport,
                vip_port: k.dport,
                proto: k.proto,
            };
            let client_mac: MacAddr = frame[6..12].try_into().unwrap_or_default();
            let picked = if self.table.get(&key).is_none() {
                Some(self.pick(&key))
            } else {
                None
            };
            let (e, how) = self.table.get_or_insert(key, now, || LbFlow {
                backend: picked.unwrap_or(0),
                client_mac,
            });
            e.value.client_mac = client_mac;
            let b = self.backends[usize::from(e.value.backend)];
            self.per_backend[usize::from(e.value.backend)] += 1;
            if how == Lookup::New {
                self.counts.flows += 1;
            }
            // The frame is IPv4 (its layout was read above), so these succeed.
            let _ = set_ip(frame, false, IpAddr::V4(b.ip));
            let _ = set_dst_mac(frame, b.mac);
            let _ = set_src_mac(frame, self.vip_mac);
            self.counts.to_server += 1;
            return self.to_server;
        }
        if let Some(&bi) = self.by_ip.get(&src) {
            let key = LbKey {
                client: dst,
                client_port: k.dport,
                vip_port: k.sport,
                proto: k.proto,
            };
            match self.table.touch(&key, now).filter(|e| e.value.backend == bi) {
                Some(e) => {
                    let _ = set_dst_mac(frame, e.value.client_mac);
                }
                None => self.counts.reply_unknown += 1,
            }
            let _ = set_ip(frame, true, IpAddr::V4(self.vip));
            let _ = set_src_mac(frame, self.vip_mac);
            self.counts.to_client += 1;
            return self.to_client;
        }
        self.counts.other += 1;
        Action::Next
    }

    /// Answer an ARP request for the VIP in place; other ARP goes on.
    fn arp(&mut self, frame: &mut [u8], in_port: u16) -> Action {
        const A: usize = 14;
        let is_request_for_vip = frame.len() >= A + 28
            && frame[A..A + 6] == [0, 1, 0x08, 0x00, 6, 4]
            && frame[A + 6..A + 8] == [0, 1]
            && frame[A + 24..A + 28] == self.vip.octets();
        if !is_request_for_vip {
            self.counts.other += 1;
            return Action::Next;
        }
        let mut sender = [0u8; 10];
        sender.copy_from_slice(&frame[A + 8..A + 18]);
        frame[A + 7] = 2;
        frame[A + 18..A + 28].copy_from_slice(&sender);
        frame[A + 8..A + 14].copy_from_slice(&self.vip_mac);
        frame[A + 14..A + 18].copy_from_slice(&self.vip.octets());
        frame.copy_within(6..12, 0);
        frame[6..12].copy_from_slice(&self.vip_mac);
        self.counts.arp_replies += 1;
        Action::Out(in_port)
    }

    /// Flows in the table.
    pub fn active(&self) -> usize {
        self.table.len()
    }

    /// Flows evicted to make room.
    pub fn evicted(&self) -> u64 {
        self.table.evicted
    }
}

impl Handler for LoadBalancer {
    fn packet(&mut self, pkt: &mut PacketMut<'_>, _ctx: &mut Ctx<'_>) -> Action {
        let port = pkt.meta().in_port();
        self.handle(pkt.data_mut(), port, crate::now_ns())
    }
}

/// Read a backends file: `IP MAC [WEIGHT]` lines, an optional `LIST_SIZE n` first.
pub fn read_backends(path: &Path) -> Result<Vec<Backend>, String> {
    let name = path.display();
    let text = read_text("-f", path)?;
    let mut backends: Vec<Backend> = Vec::new();
    let mut size = None;
    for l in lines_of(&text) {
        let err = |why: String| line_err("-f", path, l.no, why);
        let line = &l.text;
        let words: Vec<&str> = l.words.iter().map(String::as_str).collect();
        match words[..] {
            ["LIST_SIZE", n] if backends.is_empty() && size.is_none() => {
                size = Some(n.parse::<usize>().map_err(|_| err(format!("bad LIST_SIZE {n:?}")))?);
            }
            [ip, mac, ref weight @ ..] if weight.len() <= 1 => {
                let ip: Ipv4Addr = ip.parse().map_err(|_| err(format!("bad IPv4 address {ip:?}")))?;
                // Colons only (`parse_mac` also takes dashes).
                let mac = parse_mac(mac)
                    .ok()
                    .filter(|_| !mac.contains('-'))
                    .ok_or_else(|| err(format!("bad MAC {mac:?}")))?;
                let weight = match weight.first() {
                    None => 1,
                    Some(w) => w
                        .parse::<u32>()
                        .ok()
                        .filter(|w| (1..=1_000_000).contains(w))
                        .ok_or_else(|| err(format!("bad weight {w:?} (1..=1000000)")))?,
                };
                if backends.iter().any(|b| b.ip == ip) {
                    return Err(err(format!("{ip} is listed twice")));
                }
                backends.push(Backend { ip, mac, weight });
            }
            _ => return Err(err(format!("expected `IP MAC [WEIGHT]`, got {line:?}"))),
        }
    }
    if backends.is_empty() {
        return Err(format!("-f {name}: no backends"));
    }
    if backends.len() > usize::from(u16::MAX) {
        return Err(format!("-f {name}: {} backends, at most {}", backends.len(), u16::MAX));
    }
    if let Some(n) = size.filter(|&n| n != backends.len()) {
        return Err(format!("-f {name}: LIST_SIZE {n} but {} backends", backends.len()));
    }
    Ok(backends)
}

/// `onvm nf load-balancer --vip IP -f BACKENDS [...]`.
#[derive(clap::Args, Debug, Clone)]
pub struct Args {
    /// The virtual IP clients send to.
    #[arg(long)]
    pub vip: Ipv4Addr,
    /// The MAC answered for the VIP and put on what the balancer sends.
    #[arg(long, default_value = "02:00:00:00:01:00")]
    pub vip_mac: String,
    /// The backends file (`IP MAC [WEIGHT]` lines).
    #[arg(short = 'f', long = "backends")]
    pub backends: std::path::PathBuf,
    /// How new flows are spread.
    #[arg(long, value_enum, default_value_t = Policy::RoundRobin)]
    pub policy: Policy,
    /// Port replies to clients leave by (default: the chain's next hop).
    #[arg(long)]
    pub client_port: Option<u16>,
    /// Port packets to backends leave by (default: the chain's next hop).
    #[arg(long)]
    pub server_port: Option<u16>,
    /// Most flows in the table.
    #[arg(long, default_value_t = 65536)]
    pub max_flows: usize,
}

impl Catalogued for Args {
    const NAME: &'static str = "load_balancer";
    type Nf = LoadBalancer;
    fn build(&self) -> Result<LoadBalancer, String> {
        let vip_mac = parse_mac(&self.vip_mac)
            .ok()
            .filter(|_| !self.vip_mac.contains('-'))
            .ok_or_else(|| format!("--vip-mac {}: not a MAC", self.vip_mac))?;
        if !(1..=1 << 24).contains(&self.max_flows) {
            return Err(format!("--max-flows {}: must be 1..={}", self.max_flows, 1 << 24));
        }
        let backends = read_backends(&self.backends)?;
        if backends.iter().any(|b| b.ip == self.vip) {
            return Err(format!(
                "--vip {}: also a backend in {}",
                self.vip,
                self.backends.display()
            ));
        }
        let max = onvm_proto::limits::MAX_PORTS;
        for (flag, p) in [("--client-port", self.client_port), ("--server-port", self.server_port)] {
            if let Some(p) = p.filter(|&p| p >= max) {
                return Err(format!("{flag} {p}: out of range, must be 0..={}", max - 1));
            }
        }
        Ok(
            LoadBalancer::new(self.vip, vip_mac, backends, self.policy, self.max_flows)
                .ports(self.client_port, self.server_port),
        )
    }
    fn report(nf: &LoadBalancer) -> Option<String> {
        let c = nf.counts;
        let per: Vec<String> = nf.per_backend.iter().map(|n| n.to_string()).collect();
        Some(format!(
            "load_balancer: flows {}, to_server {}, to_client {}, reply_unknown {}, arp_replies {}, other {}, malformed {}, evicted {}, per_backend [{}]",
            c.flows,
            c.to_server,
            c.to_client,
            c.reply_unknown,
            c.arp_replies,
            c.other,
            c.malformed,
            nf.evicted(),
            per.join(" ")
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use onvm_packet::{UdpSpec, verify_checksums};

    const VIP: [u8; 4] = [10, 0, 0, 100];
    const VMAC: MacAddr = [2, 0, 0, 0, 1, 0];

    fn lb(policy: Policy, weights: &[u32]) -> LoadBalancer {
        let backends = weights
            .iter()
            .enumerate()
            .map(|(i, &weight)| Backend {
                ip: Ipv4Addr::new(192, 168, 1, i as u8 + 1),
                mac: [2, 0, 0, 0, 2, i as u8],
                weight,
            })
            .collect();
        LoadBalancer::new(VIP.into(), VMAC, backends, policy, 1000)
    }

    fn to_vip(client: u8, port: u16) -> Vec<u8> {
        UdpSpec::new([10, 0, 0, client], VIP, port, 80).to_vec().unwrap()
    }

    fn backend_of(f: &[u8]) -> u8 {
        f[14 + 19]
    }

    #[test]
    fn policies_spread_new_flows_and_flows_stick() {
        let mut rr = lb(Policy::RoundRobin, &[1, 1, 1]);
        let got: Vec<u8> = (0..6)
            .map(|p| {
                let mut f = to_vip(1, 1000 + p);
                assert_eq!(rr.handle(&mut f, 0, 1), Action::Next);
                assert!(verify_checksums(&f).unwrap());
                backend_of(&f)
            })
            .collect();
        assert_eq!(got, [1, 2, 3, 1, 2, 3]);
        // The same flow again: the same backend.
        let mut f = to_vip(1, 1001);
        rr.handle(&mut f, 0, 2);
        assert_eq!(backend_of(&f), 2);

        let mut w = lb(Policy::Weighted, &[3, 1]);
        let got: Vec<u8> = (0..8)
            .map(|p| {
                let mut f = to_vip(2, 2000 + p);
                w.handle(&mut f, 0, 1);
                backend_of(&f)
            })
            .collect();
        assert_eq!(got, [1, 1, 2, 1, 1, 1, 2, 1]);

        let mut h = lb(Policy::Hash, &[1, 2]);
        let mut counts = [0; 2];
        for p in 0..3000 {
            let mut f = to_vip(3, p);
            h.handle(&mut f, 0, 1);
            let key = LbKey {
                client: [10, 0, 0, 3],
                client_port: p,
                vip_port: 80,
                proto: 17,
            };
            let want = if key.fnv1a().is_multiple_of(3) { 1 } else { 2 };
            assert_eq!(backend_of(&f), want);
            counts[usize::from(want - 1)] += 1;
        }
        assert!((800..1200).contains(&counts[0]), "{counts:?}");
    }

    #[test]
    fn replies_come_back_from_the_vip_to_the_client_mac() {
        let mut b = lb(Policy::RoundRobin, &[1, 1]).ports(Some(0), Some(1));
        let mut f = UdpSpec {
            src_mac: [2, 0, 0, 0, 0, 0xc1],
            ..UdpSpec::new([10, 0, 0, 1], VIP, 1234, 80)
        }
        .to_vec()
        .unwrap();
        assert_eq!(b.handle(&mut f, 0, 1), Action::Out(1));
        assert_eq!(&f[..12], &[2, 0, 0, 0, 2, 0, 2, 0, 0, 0, 1, 0]);
        let mut reply = UdpSpec {
            src_mac: [2, 0, 0, 0, 2, 0],
            dst_mac: VMAC,
            ..UdpSpec::new([192, 168, 1, 1], [10, 0, 0, 1], 80, 1234)
        }
        .to_vec()
        .unwrap();
        assert_eq!(b.handle(&mut reply, 1, 2), Action::Out(0));
        let want = UdpSpec {
            src_mac: VMAC,
            dst_mac: [2, 0, 0, 0, 0, 0xc1],
            ..UdpSpec::new(VIP, [10, 0, 0, 1], 80, 1234)
        }
        .to_vec()
        .unwrap();
        assert_eq!(reply, want);
        // From the other backend, not the flow's: rewritten, counted unknown.
        let mut odd = UdpSpec::new([192, 168, 1, 2], [10, 0, 0, 1], 80, 1234)
            .to_vec()
            .unwrap();
        b.handle(&mut odd, 1, 3);
        assert_eq!(b.counts.reply_unknown, 1);
        assert_eq!((b.counts.to_server, b.counts.to_client, b.counts.flows), (1, 2, 1));
    }

    #[test]
    fn arp_requests_for_the_vip_are_answered_out_of_their_port() {
        let mut b = lb(Policy::RoundRobin, &[1]);
        let req = |tpa: [u8; 4]| {
            let mut f = [&[0xff; 6][..], &[2, 0, 0, 0, 0, 0xc1], &[0x08, 0x06]].concat();
            f.extend_from_slice(&[0, 1, 0x08, 0, 6, 4, 0, 1, 2, 0, 0, 0, 0, 0xc1, 10, 0, 0, 1]);
            f.extend_from_slice(&[0; 6]);
            f.extend_from_slice(&tpa);
            f.resize(60, 0);
            f
        };
        let mut f = req(VIP);
        assert_eq!(b.handle(&mut f, 3, 1), Action::Out(3));
        let mut want = [&[2, 0, 0, 0, 0, 0xc1][..], &VMAC, &[0x08, 0x06]].concat();
        want.extend_from_slice(&[0, 1, 0x08, 0, 6, 4, 0, 2]);
        want.extend_from_slice(&VMAC);
        want.extend_from_slice(&VIP);
        want.extend_from_slice(&[2, 0, 0, 0, 0, 0xc1, 10, 0, 0, 1]);
        want.resize(60, 0);
        assert_eq!(f, want);
        let mut other = req([10, 0, 0, 7]);
        assert_eq!(b.handle(&mut other, 3, 1), Action::Next);
        assert_eq!((b.counts.arp_replies, b.counts.other), (1, 1));
    }

    #[test]
    fn backends_files_are_checked_line_by_line() {
        let dir = std::env::temp_dir().join(format!("onvm-lb-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let try_file = |text: &str| {
            let p = dir.join("servers.conf");
            std::fs::write(&p, text).unwrap();
            read_backends(&p)
        };
        let ok =
            try_file("LIST_SIZE 2\n10.1.1.1 02:00:00:00:00:01\n# a comment\n10.1.1.2 02:00:00:00:00:02 5\n").unwrap();
        assert_eq!((ok.len(), ok[1].weight), (2, 5));
        for (text, want) in [
            (
                "LIST_SIZE 3\n10.1.1.1 02:00:00:00:00:01\n",
                "LIST_SIZE 3 but 1 backends",
            ),
            (
                "10.1.1.1 02:00:00:00:00:01\n10.1.1 02:00:00:00:00:02\n",
                "line 2: bad IPv4 address \"10.1.1\"",
            ),
            ("10.1.1.1 02:00:00:00:00\n", "line 1: bad MAC"),
            ("10.1.1.1 02:00:00:00:00:01 0\n", "line 1: bad weight \"0\""),
            (
                "10.1.1.1 02:00:00:00:00:01\n10.1.1.1 02:00:00:00:00:01\n",
                "line 2: 10.1.1.1 is listed twice",
            ),
            ("\n# none\n", "no backends"),
        ] {
            let e = try_file(text).unwrap_err();
            assert!(e.starts_with("-f ") && e.contains(want), "{e}");
        }
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(
            read_backends(Path::new("/nonexistent/x"))
                .unwrap_err()
                .starts_with("-f /nonexistent/x")
        );
    }

    #[test]
    fn malformed_frames_never_panic() {
        let mut b = lb(Policy::Hash, &[1, 2]);
        let mut off = onvm_nf::offline::Offline::new().unwrap();
        let mut sim = off.start(&mut b);
        let mut frames = crate::aes_encrypt::tests::malformed_frames();
        let f = to_vip(1, 5);
        frames.extend(crate::test_frames::prefixes(&f));
        frames.push(f);
        assert_eq!(sim.frames(&mut b, 0, &frames).unwrap().len(), frames.len());
    }
}
