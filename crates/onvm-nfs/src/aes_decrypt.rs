//! Decrypt what [`aes_encrypt`](crate::aes_encrypt) encrypted: AES-GCM over UDP
//! payloads.
//!
//! `onvm nf aes-decrypt (-k HEX | --key-file PATH) [-d SERVICE]`
//!
//! A UDP payload `nonce (12) ‖ ciphertext ‖ tag (16)` becomes the plaintext if the tag
//! verifies under the key; the IP and UDP lengths shrink by 28 and the checksums are
//! recomputed (a UDP-over-IPv4 checksum of 0 stays 0), so an encrypt → decrypt chain
//! gives back its input byte for byte (less any Ethernet padding, which the encryptor
//! drops; a NIC pads a short frame again). A payload whose tag does not verify, or too
//! short to hold a nonce and a tag, is dropped and counted `auth_failed`. Frames that
//! are not UDP pass untouched (`passed`), malformed ones are dropped (`malformed`), as
//! in the encryptor.
//!
//! Differs from openNetVM's `aes_decrypt` as the encryptor does (see its docs): with no
//! tag openNetVM's could not tell a forged or corrupted packet from a good one.

use onvm_nf::{Action, Ctx, Handler, PacketMut};
use onvm_packet::layout::UDP_HEADER_LEN;

use crate::aes_encrypt::{Cipher, Class, KeyArgs, NONCE_LEN, OVERHEAD, TAG_LEN, classify, relength};
use crate::catalogue::{Catalogued, check_service};

/// What the decryptor counted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DecryptCounts {
    /// UDP payloads decrypted.
    pub decrypted: u64,
    /// Frames dropped because their tag did not verify (or could not be there).
    pub auth_failed: u64,
    /// Frames passed on untouched (not UDP).
    pub passed: u64,
    /// Frames dropped as malformed.
    pub malformed: u64,
}

/// The decrypting NF. See the [module docs](self).
#[derive(Debug)]
pub struct AesDecrypt {
    cipher: Cipher,
    dest: Action,
    /// What it counted.
    pub counts: DecryptCounts,
}

impl AesDecrypt {
    /// A decryptor with `cipher` sending to `dest` (or next).
    pub fn new(cipher: Cipher, dest: Option<u16>) -> Self {
        AesDecrypt {
            cipher,
            dest: dest.map_or(Action::Next, Action::ToService),
            counts: DecryptCounts::default(),
        }
    }

    /// Decrypt one packet in place: where it goes.
    pub fn decrypt(&mut self, pkt: &mut PacketMut<'_>) -> Action {
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
        let hdr = at.l4 + UDP_HEADER_LEN;
        if at.end - hdr < OVERHEAD {
            self.counts.auth_failed += 1;
            return Action::Drop;
        }
        let data = &mut pkt.data_mut()[..at.end];
        let mut nonce = [0u8; NONCE_LEN];
        nonce.copy_from_slice(&data[hdr..hdr + NONCE_LEN]);
        let mut tag = [0u8; TAG_LEN];
        tag.copy_from_slice(&data[at.end - TAG_LEN..]);
        if !self
            .cipher
            .open(&nonce, &mut data[hdr + NONCE_LEN..at.end - TAG_LEN], &tag)
        {
            self.counts.auth_failed += 1;
            return Action::Drop;
        }
        data.copy_within(0..hdr, NONCE_LEN);
        let pad = pkt.len() - at.end;
        // Lengths checked above: the frame holds the nonce, the tag and the padding.
        if pkt.strip(NONCE_LEN).and_then(|()| pkt.trim(TAG_LEN + pad)).is_err() {
            self.counts.malformed += 1;
            return Action::Drop;
        }
        relength(pkt.data_mut(), &at, -(OVERHEAD as isize));
        self.counts.decrypted += 1;
        self.dest
    }
}

impl Handler for AesDecrypt {
    fn packet(&mut self, pkt: &mut PacketMut<'_>, _ctx: &mut Ctx<'_>) -> Action {
        self.decrypt(pkt)
    }
}

/// `onvm nf aes-decrypt (-k HEX | --key-file PATH) [-d SERVICE]`.
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
    const NAME: &'static str = "aes_decrypt";
    type Nf = AesDecrypt;
    fn build(&self) -> Result<AesDecrypt, String> {
        let dest = self.dest.map(|d| check_service("--dest", d)).transpose()?;
        Ok(AesDecrypt::new(self.key.cipher()?, dest))
    }
    fn report(nf: &AesDecrypt) -> Option<String> {
        let c = nf.counts;
        Some(format!(
            "aes_decrypt: decrypted {}, auth_failed {}, passed {}, malformed {}",
            c.decrypted, c.auth_failed, c.passed, c.malformed
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aes_encrypt::AesEncrypt;
    use crate::aes_encrypt::tests::{KEY, malformed_frames, udp};
    use onvm_nf::offline::Offline;

    fn cipher(k: &str) -> Cipher {
        Cipher::new(&crate::aes_encrypt::parse_hex(k).unwrap()).unwrap()
    }

    #[test]
    fn tampered_short_and_wrong_key_frames_are_dropped() {
        let mut enc = AesEncrypt::new(cipher(KEY), None);
        let mut off = Offline::new().unwrap();
        let mut sim = off.start(&mut enc);
        let good = sim.frames(&mut enc, 0, &[udp(b"secret", false)]).unwrap()[0]
            .frame
            .clone();
        let mut flipped = good.clone();
        let n = flipped.len();
        flipped[n - 20] ^= 1; // in the ciphertext
        let mut dec = AesDecrypt::new(cipher(KEY), None);
        let mut other = AesDecrypt::new(cipher(&KEY.replace('0', "f")), None);
        let mut sim = off.start(&mut dec);
        let out = sim
            .frames(&mut dec, 0, &[flipped, udp(b"too short", false), good.clone()])
            .unwrap();
        let acts: Vec<Action> = out.iter().map(|s| s.action).collect();
        assert_eq!(acts, [Action::Drop, Action::Drop, Action::Next]);
        assert_eq!(out[2].frame, udp(b"secret", false));
        assert_eq!((dec.counts.auth_failed, dec.counts.decrypted), (2, 1));
        let mut sim = off.start(&mut other);
        assert_eq!(sim.frames(&mut other, 0, &[good]).unwrap()[0].action, Action::Drop);
    }

    #[test]
    fn malformed_frames_never_panic() {
        let mut dec = AesDecrypt::new(cipher(KEY), None);
        let mut off = Offline::new().unwrap();
        let mut sim = off.start(&mut dec);
        let frames = malformed_frames();
        assert_eq!(sim.frames(&mut dec, 0, &frames).unwrap().len(), frames.len());
        assert_eq!(dec.counts.decrypted, 0);
    }
}
