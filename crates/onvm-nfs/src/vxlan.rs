//! VXLAN (RFC 7348) encapsulation and decapsulation, one NF with a mode:
//! `onvm nf vxlan --mode encap --vni N --local IP --remote IP [--src-mac M] [--dst-mac M]
//! [--udp-port 4789] [--ttl 64]` and `onvm nf vxlan --mode decap [--vni N] [--udp-port 4789]`.
//!
//! - Encap prepends (into the buffer's headroom, nothing copied) an outer Ethernet
//!   header (`--src-mac`, `--dst-mac`; default 02:00:00:00:00:01 → 02:00:00:00:00:02), an
//!   IPv4 header (`--local` → `--remote`, DF set, identification 0, TTL `--ttl`, header
//!   checksum computed), a UDP header (destination `--udp-port`, checksum 0 as RFC 7348
//!   allows over IPv4) and the 8-byte VXLAN header (I flag, `--vni`). The UDP source port
//!   is a hash of the inner flow, in 49152..=65535 as RFC 7348 recommends: 49152 +
//!   CRC32c(key) mod 16384, where the key is the inner IP source and destination
//!   addresses, the protocol byte, and the TCP/UDP source and destination ports (zero for
//!   other protocols), all as on the wire; for a non-IP inner frame, its first 14 bytes.
//!   A frame that cannot be wrapped (no headroom, the outer IP length past 65535) is
//!   dropped (`dropped`).
//! - Decap accepts Ethernet (VLAN tags allowed) / IPv4 or IPv6 / UDP to `--udp-port` /
//!   VXLAN with the I flag, and strips all of it; with `--vni` the VNI must match
//!   (`wrong_vni` otherwise). Anything else, or an inner frame shorter than an Ethernet
//!   header, is dropped as `not_vxlan`. The outer checksums are not checked (the NIC or
//!   the kernel did, or nobody: RFC 7348 lets the receiver skip UDP's).
//!
//! Packets go on to `-d SERVICE` or the chain's next hop. openNetVM has no tunnel NF.

use std::net::Ipv4Addr;

use onvm_nf::{Action, Batch, Ctx, Handler, PacketMut};
use onvm_packet::layout::{IP_PROTO_TCP, IP_PROTO_UDP};
use onvm_packet::{MacAddr, crc32c, internet_checksum};

use crate::catalogue::{Catalogued, check_service};
use crate::net::{Ip, be16};

/// The IANA port of VXLAN.
pub const VXLAN_PORT: u16 = 4789;
/// Outer headers: Ethernet 14, IPv4 20, UDP 8, VXLAN 8.
pub const ENCAP_LEN: usize = 50;

/// Encap or decap.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Mode {
    /// Wrap frames in VXLAN.
    Encap,
    /// Unwrap VXLAN frames.
    Decap,
}

/// What the NF counted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// Frames encapsulated.
    pub encapsulated: u64,
    /// Frames decapsulated.
    pub decapsulated: u64,
    /// Frames that were not VXLAN (decap).
    pub not_vxlan: u64,
    /// VXLAN frames of another VNI (decap).
    pub wrong_vni: u64,
    /// Frames that could not be wrapped (encap).
    pub dropped: u64,
}

/// The VXLAN NF. See the [module docs](self).
#[derive(Debug, Clone)]
pub struct Vxlan {
    mode: Mode,
    vni: Option<u32>,
    udp_port: u16,
    /// The outer headers with the lengths, checksum and source port to fill in.
    template: [u8; ENCAP_LEN],
    /// The IPv4 header checksum of the template with total length 0.
    ip_sum_base: u16,
    dest: Action,
    /// Counts so far.
    pub counts: Counts,
}

/// What the encap side puts around frames.
#[derive(Debug, Clone, Copy)]
pub struct Tunnel {
    /// VNI (24 bits).
    pub vni: u32,
    /// Outer source address.
    pub local: Ipv4Addr,
    /// Outer destination address.
    pub remote: Ipv4Addr,
    /// Outer source MAC.
    pub src_mac: MacAddr,
    /// Outer destination MAC.
    pub dst_mac: MacAddr,
    /// UDP destination port.
    pub udp_port: u16,
    /// Outer TTL.
    pub ttl: u8,
}

impl Vxlan {
    /// An encapsulating NF.
    pub fn encap(t: Tunnel, dest: Action) -> Vxlan {
        let mut h = [0u8; ENCAP_LEN];
        h[..6].copy_from_slice(&t.dst_mac);
        h[6..12].copy_from_slice(&t.src_mac);
        h[12..14].copy_from_slice(&0x0800u16.to_be_bytes());
        let ip = &mut h[14..34];
        ip[0] = 0x45;
        ip[6] = 0x40; // DF
        ip[8] = t.ttl;
        ip[9] = IP_PROTO_UDP;
        ip[12..16].copy_from_slice(&t.local.octets());
        ip[16..20].copy_from_slice(&t.remote.octets());
        // The checksum over the header with total length 0; each frame adds its length.
        let ip_sum_base = internet_checksum(ip);
        h[36..38].copy_from_slice(&t.udp_port.to_be_bytes());
        h[42] = 0x08; // I flag
        h[46..49].copy_from_slice(&t.vni.to_be_bytes()[1..]);
        Vxlan {
            mode: Mode::Encap,
            vni: Some(t.vni),
            udp_port: t.udp_port,
            template: h,
            ip_sum_base,
            dest,
            counts: Counts::default(),
        }
    }

    /// A decapsulating NF (for `vni`, or any).
    pub fn decap(vni: Option<u32>, udp_port: u16, dest: Action) -> Vxlan {
        Vxlan {
            mode: Mode::Decap,
            vni,
            udp_port,
            template: [0; ENCAP_LEN],
            ip_sum_base: 0,
            dest,
            counts: Counts::default(),
        }
    }

    /// Wrap or unwrap one packet: its action.
    pub fn process(&mut self, pkt: &mut PacketMut<'_>) -> Action {
        match self.mode {
            Mode::Encap => self.wrap(pkt),
            Mode::Decap => self.unwrap(pkt),
        }
    }

    fn wrap(&mut self, pkt: &mut PacketMut<'_>) -> Action {
        let sport = source_port(pkt.data());
        let inner = pkt.len();
        let total = inner + ENCAP_LEN - 14;
        if total > usize::from(u16::MAX) {
            self.counts.dropped += 1;
            return Action::Drop;
        }
        let Ok(h) = pkt.prepend(ENCAP_LEN) else {
            self.counts.dropped += 1;
            return Action::Drop;
        };
        h.copy_from_slice(&self.template);
        h[16..18].copy_from_slice(&(total as u16).to_be_bytes());
        // One's-complement: adding the length word to the base sum.
        let sum = onvm_packet::recalc_csum16(self.ip_sum_base, 0, total as u16);
        h[24..26].copy_from_slice(&sum.to_be_bytes());
        h[34..36].copy_from_slice(&sport.to_be_bytes());
        h[38..40].copy_from_slice(&((total - 20) as u16).to_be_bytes());
        self.counts.encapsulated += 1;
        self.dest
    }

    fn unwrap(&mut self, pkt: &mut PacketMut<'_>) -> Action {
        match self.vxlan_payload(pkt.data()) {
            Ok(at) => {
                // `at` is within the frame (checked), so this strip cannot fail.
                let _ = pkt.strip(at);
                self.counts.decapsulated += 1;
                self.dest
            }
            Err(wrong_vni) => {
                if wrong_vni {
                    self.counts.wrong_vni += 1;
                } else {
                    self.counts.not_vxlan += 1;
                }
                Action::Drop
            }
        }
    }

    /// Offset of the inner frame, or `Err(true)` for another VNI, `Err(false)` for not VXLAN.
    fn vxlan_payload(&self, frame: &[u8]) -> Result<usize, bool> {
        let ip = Ip::of(frame).ok().flatten().ok_or(false)?;
        if ip.proto != IP_PROTO_UDP {
            return Err(false);
        }
        let l4 = ip.l4_with(16).ok_or(false)?;
        if be16(frame, l4 + 2) != self.udp_port || frame[l4 + 8] & 0x08 == 0 {
            return Err(false);
        }
        let vni = u32::from_be_bytes([0, frame[l4 + 12], frame[l4 + 13], frame[l4 + 14]]);
        if self.vni.is_some_and(|v| v != vni) {
            return Err(true);
        }
        let inner = l4 + 16;
        // The inner frame ends with the outer UDP datagram (outer padding is not part of it).
        let end = (l4 + usize::from(be16(frame, l4 + 4))).min(ip.end);
        if end < inner + 14 || end != frame.len() {
            // A UDP length that does not reach the end of the frame means trailing
            // padding we would carry inside; refuse rather than guess.
            return Err(false);
        }
        Ok(inner)
    }
}

/// The outer UDP source port for an inner frame (see the module docs).
pub fn source_port(inner: &[u8]) -> u16 {
    let mut key = [0u8; 37];
    let n = match Ip::of(inner) {
        Ok(Some(ip)) => {
            let a = ip.alen();
            key[..a].copy_from_slice(&ip.src[..a]);
            key[a..2 * a].copy_from_slice(&ip.dst[..a]);
            key[2 * a] = ip.proto;
            if let Some(l4) = ip
                .l4_with(4)
                .filter(|_| ip.proto == IP_PROTO_TCP || ip.proto == IP_PROTO_UDP)
            {
                key[2 * a + 1..2 * a + 5].copy_from_slice(&inner[l4..l4 + 4]);
            }
            2 * a + 5
        }
        _ => {
            let n = inner.len().min(14);
            key[..n].copy_from_slice(&inner[..n]);
            n
        }
    };
    49152 + (crc32c(&key[..n]) % 16384) as u16
}

impl Handler for Vxlan {
    fn packet(&mut self, pkt: &mut PacketMut<'_>, _ctx: &mut Ctx<'_>) -> Action {
        self.process(pkt)
    }

    fn batch(&mut self, batch: &mut Batch<'_>, _ctx: &mut Ctx<'_>) {
        for i in 0..batch.len() {
            let a = match batch.packet(i) {
                Some(mut p) => self.process(&mut p),
                None => Action::Drop,
            };
            batch.set_action(i, a);
        }
    }
}

/// `onvm nf vxlan --mode encap|decap …`.
#[derive(clap::Args, Debug, Clone)]
pub struct Args {
    /// Wrap (encap) or unwrap (decap).
    #[arg(long, value_enum)]
    pub mode: Mode,
    /// VXLAN network identifier (24 bits): required to encap; to decap, only this VNI.
    #[arg(long)]
    pub vni: Option<u32>,
    /// Outer source IPv4 address (encap).
    #[arg(long)]
    pub local: Option<String>,
    /// Outer destination IPv4 address (encap).
    #[arg(long)]
    pub remote: Option<String>,
    /// Outer source MAC (encap).
    #[arg(long, default_value = "02:00:00:00:00:01")]
    pub src_mac: String,
    /// Outer destination MAC (encap).
    #[arg(long, default_value = "02:00:00:00:00:02")]
    pub dst_mac: String,
    /// UDP destination port.
    #[arg(long, default_value_t = VXLAN_PORT)]
    pub udp_port: u16,
    /// Outer TTL (encap).
    #[arg(long, default_value_t = 64)]
    pub ttl: u8,
    /// Destination service (default: the chain's next hop).
    #[arg(short = 'd', long)]
    pub dest: Option<u16>,
}

/// Parse a MAC `aa:bb:cc:dd:ee:ff` (colons, two hex digits a byte), naming `flag`.
pub fn parse_mac(flag: &str, s: &str) -> Result<MacAddr, String> {
    crate::net::parse_mac(s)
        .ok()
        .filter(|_| crate::net::is_colon_mac(s))
        .ok_or_else(|| format!("{flag} {s:?}: expected a MAC like 02:00:00:00:00:01"))
}

impl Catalogued for Args {
    const NAME: &'static str = "vxlan";
    type Nf = Vxlan;

    fn build(&self) -> Result<Vxlan, String> {
        let dest = self
            .dest
            .map(|d| check_service("--dest", d))
            .transpose()?
            .map_or(Action::Next, Action::ToService);
        if let Some(v) = self.vni
            && v >= 1 << 24
        {
            return Err(format!("--vni {v}: must be below 16777216 (24 bits)"));
        }
        if self.udp_port == 0 {
            return Err("--udp-port 0: must be 1..=65535".into());
        }
        match self.mode {
            Mode::Decap => Ok(Vxlan::decap(self.vni, self.udp_port, dest)),
            Mode::Encap => {
                let addr = |flag: &str, v: &Option<String>| {
                    let s = v.as_deref().ok_or(format!("{flag} is required with --mode encap"))?;
                    s.parse::<Ipv4Addr>()
                        .map_err(|_| format!("{flag} {s:?}: not an IPv4 address"))
                };
                let t = Tunnel {
                    vni: self.vni.ok_or("--vni is required with --mode encap")?,
                    local: addr("--local", &self.local)?,
                    remote: addr("--remote", &self.remote)?,
                    src_mac: parse_mac("--src-mac", &self.src_mac)?,
                    dst_mac: parse_mac("--dst-mac", &self.dst_mac)?,
                    udp_port: self.udp_port,
                    ttl: self.ttl,
                };
                Ok(Vxlan::encap(t, dest))
            }
        }
    }

    fn report(nf: &Vxlan) -> Option<String> {
        let c = nf.counts;
        Some(match nf.mode {
            Mode::Encap => format!(
                "vxlan: mode encap, encapsulated {}, dropped {}",
                c.encapsulated, c.dropped
            ),
            Mode::Decap => format!(
                "vxlan: mode decap, decapsulated {}, wrong_vni {}, not_vxlan {}",
                c.decapsulated, c.wrong_vni, c.not_vxlan
            ),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_frames::{garbage, prefixes};
    use onvm_nf::offline::Offline;
    use onvm_packet::etherparse::{PacketBuilder, SlicedPacket, TransportSlice};
    use onvm_packet::{UdpSpec, verify_checksums};

    fn tunnel(vni: u32) -> Tunnel {
        Tunnel {
            vni,
            local: Ipv4Addr::new(192, 0, 2, 1),
            remote: Ipv4Addr::new(192, 0, 2, 2),
            src_mac: [2, 0, 0, 0, 0, 0xa],
            dst_mac: [2, 0, 0, 0, 0, 0xb],
            udp_port: VXLAN_PORT,
            ttl: 64,
        }
    }

    fn inner(i: u16) -> Vec<u8> {
        UdpSpec {
            payload: b"inner payload",
            ..UdpSpec::new([10, 0, 0, 1], [10, 0, 0, 2], 1000 + i, 53)
        }
        .to_vec()
        .unwrap()
    }

    #[test]
    fn encap_builds_what_etherparse_builds_and_decap_undoes_it() {
        let mut enc = Vxlan::encap(tunnel(42), Action::Next);
        let mut dec = Vxlan::decap(Some(42), VXLAN_PORT, Action::Next);
        let frames: Vec<Vec<u8>> = (0..40).map(inner).collect();
        let mut off = Offline::new().unwrap();
        let mut sim = off.start(&mut enc);
        let wrapped = sim.frames(&mut enc, 0, &frames).unwrap();
        for (w, f) in wrapped.iter().zip(&frames) {
            let sport = source_port(f);
            assert!(sport >= 49152);
            let mut vx = vec![0x08, 0, 0, 0, 0, 0, 42, 0];
            vx.extend_from_slice(f);
            let mut want = Vec::new();
            let mut ip =
                onvm_packet::etherparse::Ipv4Header::new(0, 64, 17.into(), [192, 0, 2, 1], [192, 0, 2, 2]).unwrap();
            ip.dont_fragment = true;
            PacketBuilder::ethernet2([2, 0, 0, 0, 0, 0xa], [2, 0, 0, 0, 0, 0xb])
                .ip(onvm_packet::etherparse::IpHeaders::Ipv4(ip, Default::default()))
                .udp(sport, VXLAN_PORT)
                .write(&mut want, &vx)
                .unwrap();
            want[40..42].copy_from_slice(&[0, 0]); // no UDP checksum
            assert_eq!(w.frame, want);
            assert_eq!(w.action, Action::Next);
            let s = SlicedPacket::from_ethernet(&w.frame).unwrap();
            assert!(matches!(s.transport, Some(TransportSlice::Udp(_))));
        }
        // Flows spread over source ports.
        let ports: std::collections::BTreeSet<u16> = frames.iter().map(|f| source_port(f)).collect();
        assert!(ports.len() > 30, "{}", ports.len());
        let back: Vec<Vec<u8>> = wrapped.into_iter().map(|s| s.frame).collect();
        let mut sim = off.start(&mut dec);
        let out = sim.frames(&mut dec, 0, &back).unwrap();
        assert_eq!(out.iter().map(|s| s.frame.clone()).collect::<Vec<_>>(), frames);
        assert_eq!(dec.counts.decapsulated, 40);
        // Another VNI, or plain UDP.
        let mut other = Vxlan::encap(tunnel(7), Action::Next);
        let mut sim = off.start(&mut other);
        let seven = sim.frames(&mut other, 0, &frames[..1]).unwrap().remove(0).frame;
        let mut sim = off.start(&mut dec);
        let out = sim.frames(&mut dec, 0, &[seven.clone(), frames[0].clone()]).unwrap();
        assert!(out.iter().all(|s| s.action == Action::Drop));
        assert_eq!((dec.counts.wrong_vni, dec.counts.not_vxlan), (1, 1));
        // Any VNI without --vni.
        let mut any = Vxlan::decap(None, VXLAN_PORT, Action::Next);
        let mut sim = off.start(&mut any);
        assert_eq!(sim.frames(&mut any, 0, &[seven]).unwrap()[0].frame, frames[0]);
        assert!(verify_checksums(&back[0]).unwrap());
    }

    #[test]
    fn malformed_frames_never_panic() {
        let mut enc = Vxlan::encap(tunnel(1), Action::Next);
        let mut dec = Vxlan::decap(Some(1), VXLAN_PORT, Action::Next);
        let mut off = Offline::new().unwrap();
        let mut sim = off.start(&mut enc);
        let good = sim.frames(&mut enc, 0, &[inner(0)]).unwrap().remove(0).frame;
        let mut frames = prefixes(&good);
        let mut b = good.clone();
        b[16..18].copy_from_slice(&[0xff, 0xff]);
        frames.push(b);
        let mut b = good.clone();
        b[38..40].copy_from_slice(&[0, 9]); // UDP length shorter than the VXLAN header
        frames.push(b);
        let mut b = good.clone();
        b[38..40].copy_from_slice(&[0xff, 0xff]);
        frames.push(b);
        frames.extend(garbage(200));
        let mut sim = off.start(&mut dec);
        let out = sim.frames(&mut dec, 0, &frames).unwrap();
        assert_eq!(out.len(), frames.len());
        assert_eq!(dec.counts.decapsulated, 1); // the whole frame only
        let mut sim = off.start(&mut enc);
        assert_eq!(sim.frames(&mut enc, 0, &frames).unwrap().len(), frames.len());
    }

    #[test]
    fn flags_are_checked() {
        let a = |v: &[&str]| {
            let mut argv = vec!["x"];
            argv.extend_from_slice(v);
            #[derive(clap::Parser)]
            struct P {
                #[command(flatten)]
                a: Args,
            }
            <P as clap::Parser>::try_parse_from(argv).unwrap().a.build().map(drop)
        };
        assert!(a(&["--mode", "decap"]).is_ok());
        let enc = [
            "--mode", "encap", "--vni", "5", "--local", "1.1.1.1", "--remote", "2.2.2.2",
        ];
        assert!(a(&enc).is_ok());
        let e = a(&["--mode", "encap", "--vni", "5", "--local", "1.1.1.1"]).unwrap_err();
        assert!(e.contains("--remote"), "{e}");
        let e = a(&["--mode", "decap", "--vni", "16777216"]).unwrap_err();
        assert!(e.contains("--vni 16777216"), "{e}");
        let mut bad = enc.to_vec();
        bad.extend(["--src-mac", "02:00:00:00:00"]);
        let e = a(&bad).unwrap_err();
        assert!(e.contains("--src-mac \"02:00:00:00:00\""), "{e}");
    }
}
