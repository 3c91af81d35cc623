//! Encrypt UDP payloads with AES-GCM; [`aes_decrypt`](crate::aes_decrypt) is its inverse.
//!
//! `onvm nf aes-encrypt (-k HEX | --key-file PATH) [-d SERVICE]`
//!
//! The key is 16 bytes (AES-128-GCM) or 32 bytes (AES-256-GCM), given in hex with `-k`
//! or in a file holding the hex (whitespace ignored) with `--key-file`. Each UDP
//! payload `P` becomes `nonce (12) ‖ AES-GCM(P) ‖ tag (16)`, 28 bytes longer; the IPv4
//! total length or IPv6 payload length and the UDP length grow with it and the
//! checksums are recomputed (a UDP-over-IPv4 checksum of 0, "none", stays 0). Ethernet
//! padding after the IP packet is dropped first. Packets then go to `-d` or the chain's
//! next hop. No associated data is authenticated, so NATs and load balancers between
//! the two ends may rewrite addresses and ports.
//!
//! **Nonces never repeat under one key:** a GCM nonce used twice with the same key
//! gives away the XOR of the two plaintexts and the GHASH key, with which anyone can
//! forge tags. Each NF draws a random 8-byte prefix from the OS when it starts and
//! counts packets in the 4 bytes after it; before the counter would wrap (2³² packets)
//! it draws a new prefix. So one NF never repeats a nonce, and several NFs (scaled
//! instances, restarts) sharing a key collide only if two 64-bit random prefixes are
//! equal (about n²/2⁶⁵ for n prefixes drawn).
//!
//! Frames that are not UDP (other EtherTypes, other IP protocols, IP fragments, whose
//! payload is not all here) pass untouched, counted `passed`; a frame whose IP header
//! is malformed, or a UDP header whose length disagrees with the IP header's, is
//! dropped (`malformed`); a frame that would not fit its buffer (12 bytes of headroom,
//! 16 of tailroom) or a 16-bit length is dropped (`too_big`).
//!
//! Differs from openNetVM's `aes_encrypt`, which runs Brad Conte's plain-C AES-256 in
//! ECB-like blocks over the payload in place with a fixed key compiled in, no nonce and
//! no tag (so equal payloads encrypt alike and tampering goes unnoticed), leaves the
//! payload length unchanged (trailing bytes of a payload not a multiple of 16 stay in
//! clear) and does not fix the UDP checksum.

use aes_gcm::aead::rand_core::RngCore as _;
use aes_gcm::aead::{AeadInPlace, OsRng};
use aes_gcm::{Aes128Gcm, Aes256Gcm, KeyInit, Nonce, Tag};
use onvm_nf::{Action, Ctx, Handler, PacketMut};
use onvm_packet::layout::{IP_PROTO_UDP, IpVersion, UDP_HEADER_LEN};
use onvm_packet::{Layout, fix_checksums};

use crate::catalogue::{Catalogued, check_service};

/// Bytes of the nonce put in front of the payload.
pub const NONCE_LEN: usize = 12;
/// Bytes of the tag put after the payload.
pub const TAG_LEN: usize = 16;
/// How much longer an encrypted payload is.
pub const OVERHEAD: usize = NONCE_LEN + TAG_LEN;

/// An AES-GCM key, 128 or 256 bits.
pub enum Cipher {
    /// AES-128-GCM.
    Aes128(Box<Aes128Gcm>),
    /// AES-256-GCM.
    Aes256(Box<Aes256Gcm>),
}

impl std::fmt::Debug for Cipher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the key.
        f.write_str(match self {
            Cipher::Aes128(_) => "Cipher(AES-128-GCM)",
            Cipher::Aes256(_) => "Cipher(AES-256-GCM)",
        })
    }
}

impl Cipher {
    /// A cipher for a 16- or 32-byte key.
    pub fn new(key: &[u8]) -> Option<Cipher> {
        match key.len() {
            16 => Aes128Gcm::new_from_slice(key).ok().map(|c| Cipher::Aes128(Box::new(c))),
            32 => Aes256Gcm::new_from_slice(key).ok().map(|c| Cipher::Aes256(Box::new(c))),
            _ => None,
        }
    }

    /// Encrypt `buf` in place: its tag.
    pub fn seal(&self, nonce: &[u8; NONCE_LEN], buf: &mut [u8]) -> [u8; TAG_LEN] {
        let n = Nonce::from_slice(nonce);
        let tag = match self {
            Cipher::Aes128(c) => c.encrypt_in_place_detached(n, b"", buf),
            Cipher::Aes256(c) => c.encrypt_in_place_detached(n, b"", buf),
        };
        // Only a buffer over 2³⁶ bytes fails; a packet is never one.
        tag.map(Into::into).unwrap_or([0; TAG_LEN])
    }

    /// Decrypt `buf` in place if `tag` verifies (else `buf` is left as it was).
    pub fn open(&self, nonce: &[u8; NONCE_LEN], buf: &mut [u8], tag: &[u8; TAG_LEN]) -> bool {
        let (n, t) = (Nonce::from_slice(nonce), Tag::from_slice(tag));
        match self {
            Cipher::Aes128(c) => c.decrypt_in_place_detached(n, b"", buf, t).is_ok(),
            Cipher::Aes256(c) => c.decrypt_in_place_detached(n, b"", buf, t).is_ok(),
        }
    }
}

/// The key flags both AES NFs take.
#[derive(clap::Args, Debug, Clone)]
pub struct KeyArgs {
    /// The key in hex: 32 digits (AES-128) or 64 (AES-256).
    #[arg(short = 'k', long, required_unless_present = "key_file", conflicts_with = "key_file")]
    pub key: Option<String>,
    /// A file holding the key in hex (whitespace ignored).
    #[arg(long)]
    pub key_file: Option<std::path::PathBuf>,
}

impl KeyArgs {
    /// The cipher for the key given, or what is wrong with it.
    pub fn cipher(&self) -> Result<Cipher, String> {
        let (flag, text) = match (&self.key, &self.key_file) {
            (Some(k), _) => ("-k".to_string(), k.clone()),
            (None, Some(p)) => (
                format!("--key-file {}", p.display()),
                crate::table_file::read_text("--key-file", p)?,
            ),
            (None, None) => return Err("a key is needed: -k HEX or --key-file PATH".into()),
        };
        let hex: String = text.chars().filter(|c| !c.is_whitespace()).collect();
        let key = parse_hex(&hex).ok_or_else(|| format!("{flag}: not hex digits"))?;
        Cipher::new(&key).ok_or_else(|| format!("{flag}: {} bytes, a key is 16 or 32", key.len()))
    }
}

/// Bytes from hex digits (an even number of them).
pub fn parse_hex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) || !s.is_ascii() {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).ok())
        .collect()
}

/// Where a UDP datagram lies in a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UdpAt {
    /// Offset of the IP header.
    pub l3: usize,
    /// Offset of the UDP header.
    pub l4: usize,
    /// One past the IP packet (padding may follow).
    pub end: usize,
    /// IPv6 (else IPv4).
    pub v6: bool,
}

/// What a frame is to the AES NFs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// A whole UDP datagram.
    Udp(UdpAt),
    /// Anything else that parses: passed on untouched.
    Other,
    /// A malformed IP header, or a UDP header that disagrees with it: dropped.
    Malformed,
}

/// Classify a frame (see [`Class`]).
pub fn classify(frame: &[u8]) -> Class {
    let Ok(layout) = Layout::of(frame) else {
        return Class::Malformed;
    };
    let Some(ip) = layout.ip else {
        return Class::Other;
    };
    let Some(l4) = ip.l4.filter(|_| ip.proto == IP_PROTO_UDP && !ip.fragmented) else {
        return Class::Other;
    };
    if l4 + UDP_HEADER_LEN > ip.end || ip.end > frame.len() {
        return Class::Malformed;
    }
    let udp_len = usize::from(u16::from_be_bytes([frame[l4 + 4], frame[l4 + 5]]));
    if udp_len != ip.end - l4 {
        return Class::Malformed;
    }
    Class::Udp(UdpAt {
        l3: layout.l3,
        l4,
        end: ip.end,
        v6: ip.version == IpVersion::V6,
    })
}

/// Add `delta` to the IP and UDP lengths of `frame` (headers at `at`'s offsets) and
/// recompute the checksums; a UDP-over-IPv4 checksum of 0 stays 0.
pub fn relength(frame: &mut [u8], at: &UdpAt, delta: isize) {
    let add = |frame: &mut [u8], off: usize| {
        let v = u16::from_be_bytes([frame[off], frame[off + 1]]);
        frame[off..off + 2].copy_from_slice(&(v as isize + delta).clamp(0, 0xffff).to_be_bytes()[6..]);
    };
    add(frame, at.l3 + if at.v6 { 4 } else { 2 });
    add(frame, at.l4 + 4);
    let no_sum = !at.v6 && frame[at.l4 + 6..at.l4 + 8] == [0, 0];
    // The frame was classified as UDP with these lengths made consistent, so it parses.
    let _ = fix_checksums(frame);
    if no_sum {
        frame[at.l4 + 6..at.l4 + 8].fill(0);
    }
}

/// What the encryptor counted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EncryptCounts {
    /// UDP payloads encrypted.
    pub encrypted: u64,
    /// Frames passed on untouched (not UDP).
    pub passed: u64,
    /// Frames dropped as malformed.
    pub malformed: u64,
    /// Frames dropped because the result would not fit.
    pub too_big: u64,
}

/// The encrypting NF. See the [module docs](self).
#[derive(Debug)]
pub struct AesEncrypt {
    cipher: Cipher,
    dest: Action,
    prefix: [u8; 8],
    counter: u32,
    /// What it counted.
    pub counts: EncryptCounts,
}

impl AesEncrypt {
    /// An encryptor with `cipher` sending to `dest` (or next).
    pub fn new(cipher: Cipher, dest: Option<u16>) -> Self {
        let mut e = AesEncrypt {
            cipher,
            dest: dest.map_or(Action::Next, Action::ToService),
            prefix: [0; 8],
            counter: 0,
            counts: EncryptCounts::default(),
        };
        e.redraw();
        e
    }

    fn redraw(&mut self) {
        OsRng.fill_bytes(&mut self.prefix);
        self.counter = 0;
    }

    /// The next nonce (never one given before by this NF).
    fn next_nonce(&mut self) -> [u8; NONCE_LEN] {
        let mut n = [0u8; NONCE_LEN];
        n[..8].copy_from_slice(&self.prefix);
        n[8..].copy_from_slice(&self.counter.to_be_bytes());
        match self.counter.checked_add(1) {
            Some(c) => self.counter = c,
            None => self.redraw(),
        }
        n
    }

    /// Encrypt one packet in place: where it goes.
    pub fn encrypt(&mut self, pkt: &mut PacketMut<'_>) -> Action {
        let at = match classify(pkt.data()) {
            Class::Udp(at) => at,
            Class::Other => {
                self.counts.passed += 1;
                return self.dest;
            }
            Class::Malformed => {
                self.counts.malformed += 1;
                return Action::Drop;
            }
        };
        let pad = pkt.len() - at.end;
        let hdr = at.l4 + UDP_HEADER_LEN;
        let ip_len = if at.v6 { at.end - at.l3 - 40 } else { at.end - at.l3 };
        if pkt.headroom() < NONCE_LEN || pkt.tailroom() + pad < TAG_LEN || ip_len + OVERHEAD > 0xffff {
            self.counts.too_big += 1;
            return Action::Drop;
        }
        let nonce = self.next_nonce();
        // Checked above: the padding is there, and so are the head- and tailroom.
        let grown = pkt
            .trim(pad)
            .and_then(|()| pkt.prepend(NONCE_LEN).map(drop))
            .and_then(|()| pkt.append(TAG_LEN).map(drop));
        if grown.is_err() {
            self.counts.too_big += 1;
            return Action::Drop;
        }
        let data = pkt.data_mut();
        data.copy_within(NONCE_LEN..NONCE_LEN + hdr, 0);
        data[hdr..hdr + NONCE_LEN].copy_from_slice(&nonce);
        let body_len = data.len() - hdr - OVERHEAD;
        let (body, tag) = data[hdr + NONCE_LEN..].split_at_mut(body_len);
        tag.copy_from_slice(&self.cipher.seal(&nonce, body));
        relength(data, &at, OVERHEAD as isize);
        self.counts.encrypted += 1;
        self.dest
    }
}

impl Handler for AesEncrypt {
    fn packet(&mut self, pkt: &mut PacketMut<'_>, _ctx: &mut Ctx<'_>) -> Action {
        self.encrypt(pkt)
    }
}

/// `onvm nf aes-encrypt (-k HEX | --key-file PATH) [-d SERVICE]`.
#[derive(clap::Args, Debug, Clone)]
pub struct Args {
    /// The key.
    #[command(flatten)]
    pub key: KeyArgs,
    /// Destination service (default: the chain's next hop).
    #[arg(short = 'd', long)]
    pub dest: Option<u16>,
}

impl Catalogued for Args {
    const NAME: &'static str = "aes_encrypt";
    type Nf = AesEncrypt;
    fn build(&self) -> Result<AesEncrypt, String> {
        let dest = self.dest.map(|d| check_service("--dest", d)).transpose()?;
        Ok(AesEncrypt::new(self.key.cipher()?, dest))
    }
    fn report(nf: &AesEncrypt) -> Option<String> {
        let c = nf.counts;
        Some(format!(
            "aes_encrypt: encrypted {}, passed {}, malformed {}, too_big {}",
            c.encrypted, c.passed, c.malformed, c.too_big
        ))
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::aes_decrypt::AesDecrypt;
    use onvm_nf::offline::Offline;
    use onvm_packet::{TcpSpec, UdpSpec, verify_checksums};

    pub(crate) const KEY: &str = "000102030405060708090a0b0c0d0e0f";

    pub(crate) fn udp(payload: &[u8], v6: bool) -> Vec<u8> {
        if v6 {
            let a: std::net::Ipv6Addr = "2001:db8::1".parse().unwrap();
            let b: std::net::Ipv6Addr = "2001:db8::2".parse().unwrap();
            UdpSpec {
                payload,
                ..UdpSpec::new(a, b, 1000, 2000)
            }
            .to_vec()
            .unwrap()
        } else {
            UdpSpec {
                payload,
                ..UdpSpec::new([10, 0, 0, 1], [10, 0, 0, 2], 1000, 2000)
            }
            .to_vec()
            .unwrap()
        }
    }

    fn key(hex: &str) -> KeyArgs {
        KeyArgs {
            key: Some(hex.into()),
            key_file: None,
        }
    }

    #[test]
    fn encrypted_payloads_decrypt_to_the_input_and_nonces_differ() {
        for (k, v6) in [(KEY.to_string(), false), (KEY.repeat(2), true)] {
            let mut enc = AesEncrypt::new(key(&k).cipher().unwrap(), Some(5));
            let mut dec = AesDecrypt::new(key(&k).cipher().unwrap(), None);
            let input: Vec<Vec<u8>> = (0..40).map(|i| udp(&vec![i as u8; i * 7], v6)).collect();
            let mut off = Offline::new().unwrap();
            let mut sim = off.start(&mut enc);
            let out = sim.frames(&mut enc, 0, &input).unwrap();
            assert!(out.iter().all(|s| s.action == Action::ToService(5)));
            for (s, i) in out.iter().zip(&input) {
                assert_eq!(s.frame.len(), i.len() + OVERHEAD);
                assert!(verify_checksums(&s.frame).unwrap());
            }
            // Same payload, different nonce and ciphertext.
            let again = sim.frames(&mut enc, 0, &input[..1]).unwrap();
            assert_ne!(again[0].frame, out[0].frame);
            let frames: Vec<Vec<u8>> = out.into_iter().map(|s| s.frame).collect();
            let mut sim = off.start(&mut dec);
            let back = sim.frames(&mut dec, 0, &frames).unwrap();
            let back: Vec<Vec<u8>> = back.into_iter().map(|s| s.frame).collect();
            assert_eq!(back, input);
            assert_eq!(enc.counts.encrypted, 41);
            assert_eq!(dec.counts.decrypted, 40);
        }
    }

    #[test]
    fn other_frames_pass_and_broken_ones_are_dropped() {
        let mut enc = AesEncrypt::new(key(KEY).cipher().unwrap(), None);
        let tcp = TcpSpec::new([10, 0, 0, 1], [10, 0, 0, 2], 1, 2).to_vec().unwrap();
        let mut bad_len = udp(b"hello", false);
        bad_len[14 + 20 + 5] += 1; // UDP length one more than the IP header says
        let mut off = Offline::new().unwrap();
        let mut sim = off.start(&mut enc);
        let out = sim
            .frames(&mut enc, 0, &[tcp.clone(), vec![0xff; 10], bad_len])
            .unwrap();
        assert_eq!(out[0].frame, tcp);
        assert_eq!(out[0].action, Action::Next);
        assert_eq!(out[2].action, Action::Drop);
        assert_eq!((enc.counts.passed, enc.counts.malformed), (1, 2));
        // Too big for the buffer: 10 bytes short of the largest frame a buffer holds.
        let room = (1000..5000)
            .find(|&n| sim.frames(&mut enc, 0, &[vec![0u8; n]]).is_err())
            .unwrap()
            - 1;
        let big = udp(&vec![7; room - 42 - 10], false);
        let out = sim.frames(&mut enc, 0, &[big]).unwrap();
        assert_eq!(out[0].action, Action::Drop);
        assert_eq!(enc.counts.too_big, 1);
        assert!(matches!(classify(&udp(b"x", true)), Class::Udp(UdpAt { v6: true, .. })));
    }

    #[test]
    fn keys_are_checked() {
        assert!(key("00").cipher().unwrap_err().contains("-k: 1 bytes"));
        assert!(key("zz").cipher().unwrap_err().contains("not hex"));
        let p = std::env::temp_dir().join(format!("onvm-aes-key-{}", std::process::id()));
        std::fs::write(&p, format!("{}\n{}\n", &KEY[..16], &KEY[16..])).unwrap();
        let a = KeyArgs {
            key: None,
            key_file: Some(p.clone()),
        };
        assert!(matches!(a.cipher().unwrap(), Cipher::Aes128(_)));
        std::fs::remove_file(&p).unwrap();
        assert!(a.cipher().unwrap_err().starts_with("--key-file"));
    }

    /// Every prefix of valid frames, wrong lengths and random bytes: never a panic.
    pub(crate) fn malformed_frames() -> Vec<Vec<u8>> {
        let mut frames = Vec::new();
        for f in [
            udp(b"some payload bytes here!", false),
            udp(b"v6 payload bytes here, too", true),
        ] {
            frames.extend(crate::test_frames::prefixes(&f));
            frames.push(f.clone());
            for (at, v) in [(16, 0u8), (17, 0xff), (14, 0x4f), (14, 0x41), (38, 0), (39, 3), (19, 0)] {
                let mut g = f.clone();
                g[at] = v;
                frames.push(g);
            }
        }
        frames.extend(crate::test_frames::garbage(200));
        frames
    }

    #[test]
    fn malformed_frames_never_panic() {
        let mut enc = AesEncrypt::new(key(KEY).cipher().unwrap(), None);
        let mut off = Offline::new().unwrap();
        let mut sim = off.start(&mut enc);
        let frames = malformed_frames();
        let out = sim.frames(&mut enc, 0, &frames).unwrap();
        assert_eq!(out.len(), frames.len());
        for s in out.iter().filter(|s| s.action != Action::Drop) {
            if let Class::Udp(_) = classify(&s.frame) {
                assert!(verify_checksums(&s.frame).unwrap_or(true));
            }
        }
    }
}
