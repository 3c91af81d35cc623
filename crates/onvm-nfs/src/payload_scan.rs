//! Search TCP and UDP payloads for any of a set of strings; forward what matches.
//!
//! `onvm nf payload-scan (-s STR)… [-f FILE] [-i] [-d SERVICE]`
//!
//! Patterns come from `-s` (repeatable) and from `-f FILE` (one per line, taken
//! byte for byte; empty lines skipped, a trailing `\r` removed); at least one is
//! needed and none may be empty. All are searched at once with an Aho-Corasick automaton
//! (the `aho-corasick` crate: a DFA with a SIMD prefilter), so the cost per packet
//! grows with the payload, not with the number of patterns. A packet whose payload
//! holds a pattern goes to `-d` (or the chain's next hop); one that does not is
//! dropped. `-i` inverts: matches are dropped, the rest forwarded. A frame with no
//! TCP/UDP payload to search (other protocols, non-first fragments, malformed headers)
//! counts as not matching (`no_payload`). Counted: `matched`, `unmatched`,
//! `no_payload`, `forwarded`, `dropped`.
//!
//! Differs from openNetVM's `payload_scan`: one pattern there (`-s`), found with
//! `strstr`, which stops at the first NUL byte of the payload (so binary payloads
//! were missed) and could read past the payload; here any bytes and many patterns.

use aho_corasick::AhoCorasick;
use onvm_nf::{Action, Ctx, Handler, PacketMut};
use onvm_packet::Layout;
use onvm_packet::layout::{IP_PROTO_TCP, IP_PROTO_UDP, TCP_HEADER_LEN, UDP_HEADER_LEN};

use crate::catalogue::{Catalogued, check_service};

/// What the scanner counted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ScanCounts {
    /// Payloads holding a pattern.
    pub matched: u64,
    /// Payloads holding none.
    pub unmatched: u64,
    /// Frames with no TCP/UDP payload (counted as not matching).
    pub no_payload: u64,
    /// Packets forwarded.
    pub forwarded: u64,
    /// Packets dropped.
    pub dropped: u64,
}

/// The scanning NF. See the [module docs](self).
#[derive(Debug)]
pub struct PayloadScan {
    ac: AhoCorasick,
    invert: bool,
    dest: Action,
    /// What it counted.
    pub counts: ScanCounts,
}

/// The TCP or UDP payload of a frame (up to the IP packet's end), if it has one.
pub fn l4_payload(frame: &[u8]) -> Option<&[u8]> {
    let layout = Layout::of(frame).ok()?;
    let ip = layout.ip?;
    let l4 = ip.l4?;
    let start = match ip.proto {
        IP_PROTO_UDP => l4 + UDP_HEADER_LEN,
        IP_PROTO_TCP => {
            let doff = usize::from(*frame.get(l4 + 12)? >> 4) * 4;
            if doff < TCP_HEADER_LEN {
                return None;
            }
            l4 + doff
        }
        _ => return None,
    };
    frame.get(start..ip.end.min(frame.len()))
}

impl PayloadScan {
    /// A scanner for `patterns` (at least one, none empty).
    pub fn new(patterns: &[Vec<u8>], invert: bool, dest: Option<u16>) -> Result<Self, String> {
        let ac = AhoCorasick::new(patterns).map_err(|e| format!("patterns: {e}"))?;
        Ok(PayloadScan {
            ac,
            invert,
            dest: dest.map_or(Action::Next, Action::ToService),
            counts: ScanCounts::default(),
        })
    }

    /// Where a frame goes.
    pub fn scan(&mut self, frame: &[u8]) -> Action {
        let hit = match l4_payload(frame) {
            Some(p) => {
                let hit = self.ac.is_match(p);
                if hit {
                    self.counts.matched += 1;
                } else {
                    self.counts.unmatched += 1;
                }
                hit
            }
            None => {
                self.counts.no_payload += 1;
                false
            }
        };
        if hit != self.invert {
            self.counts.forwarded += 1;
            self.dest
        } else {
            self.counts.dropped += 1;
            Action::Drop
        }
    }
}

impl Handler for PayloadScan {
    fn packet(&mut self, pkt: &mut PacketMut<'_>, _ctx: &mut Ctx<'_>) -> Action {
        self.scan(pkt.data())
    }
}

/// `onvm nf payload-scan (-s STR)… [-f FILE] [-i] [-d SERVICE]`.
#[derive(clap::Args, Debug, Clone)]
pub struct Args {
    /// A string to search for (repeatable).
    #[arg(short = 's', long = "string")]
    pub strings: Vec<String>,
    /// A file of strings to search for, one per line.
    #[arg(short = 'f', long = "file")]
    pub file: Option<std::path::PathBuf>,
    /// Invert: drop what matches, forward the rest.
    #[arg(short = 'i', long)]
    pub invert: bool,
    /// Destination service (default: the chain's next hop).
    #[arg(short = 'd', long)]
    pub dest: Option<u16>,
}

impl Args {
    /// Every pattern, checked.
    pub fn patterns(&self) -> Result<Vec<Vec<u8>>, String> {
        let mut pats = Vec::new();
        for s in &self.strings {
            if s.is_empty() {
                return Err("-s \"\": an empty string matches everything".into());
            }
            pats.push(s.as_bytes().to_vec());
        }
        if let Some(p) = &self.file {
            // Patterns are raw bytes, one a line (a `#` is part of a pattern): not
            // `table_file::lines_of`'s words.
            let bytes = crate::table_file::read_bytes("-f", p)?;
            for line in bytes.split(|&b| b == b'\n') {
                let line = line.strip_suffix(b"\r").unwrap_or(line);
                if !line.is_empty() {
                    pats.push(line.to_vec());
                }
            }
        }
        if pats.is_empty() {
            return Err(match &self.file {
                Some(p) => format!("-f {}: no strings in it, and no -s", p.display()),
                None => "no strings to search for: give -s STR or -f FILE".into(),
            });
        }
        Ok(pats)
    }
}

impl Catalogued for Args {
    const NAME: &'static str = "payload_scan";
    type Nf = PayloadScan;
    fn build(&self) -> Result<PayloadScan, String> {
        let dest = self.dest.map(|d| check_service("--dest", d)).transpose()?;
        PayloadScan::new(&self.patterns()?, self.invert, dest)
    }
    fn report(nf: &PayloadScan) -> Option<String> {
        let c = nf.counts;
        Some(format!(
            "payload_scan: matched {}, unmatched {}, no_payload {}, forwarded {}, dropped {}",
            c.matched, c.unmatched, c.no_payload, c.forwarded, c.dropped
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use onvm_nf::offline::Offline;
    use onvm_packet::{TcpSpec, UdpSpec};

    fn udp(p: &[u8]) -> Vec<u8> {
        UdpSpec {
            payload: p,
            ..UdpSpec::new([10, 0, 0, 1], [10, 0, 0, 2], 1, 2)
        }
        .to_vec()
        .unwrap()
    }

    fn tcp(p: &[u8]) -> Vec<u8> {
        TcpSpec {
            payload: p,
            ..TcpSpec::new([10, 0, 0, 1], [10, 0, 0, 2], 1, 2)
        }
        .to_vec()
        .unwrap()
    }

    fn args(s: &[&str], invert: bool) -> Args {
        Args {
            strings: s.iter().map(|s| s.to_string()).collect(),
            file: None,
            invert,
            dest: Some(3),
        }
    }

    #[test]
    fn matches_go_on_the_rest_is_dropped_and_invert_swaps_them() {
        let frames = [
            udp(b"GET /evil HTTP/1.1"),
            tcp(b"bin\0ary\0attack"),
            udp(b"harmless"),
            // The pattern only in the Ethernet padding after the IP packet: not a match.
            [udp(b"x"), b"evil".to_vec()].concat(),
            onvm_packet::build_udp_for_flow_vec(1, 60).unwrap()[..30].to_vec(),
        ];
        let want = [
            Action::ToService(3),
            Action::ToService(3),
            Action::Drop,
            Action::Drop,
            Action::Drop,
        ];
        let mut nf = args(&["evil", "attack"], false).build().unwrap();
        let mut off = Offline::new().unwrap();
        let mut sim = off.start(&mut nf);
        let out = sim.frames(&mut nf, 0, &frames).unwrap();
        assert_eq!(out.iter().map(|s| s.action).collect::<Vec<_>>(), want);
        assert_eq!(out[0].frame, frames[0]);
        assert_eq!(
            nf.counts,
            ScanCounts {
                matched: 2,
                unmatched: 2,
                no_payload: 1,
                forwarded: 2,
                dropped: 3
            }
        );
        let mut inv = args(&["evil", "attack"], true).build().unwrap();
        let mut sim = off.start(&mut inv);
        let out = sim.frames(&mut inv, 0, &frames).unwrap();
        for (s, w) in out.iter().zip(want) {
            assert_eq!(s.action == Action::Drop, w != Action::Drop);
        }
    }

    #[test]
    fn flags_are_checked_and_files_read() {
        assert!(args(&[], false).build().unwrap_err().contains("-s STR"));
        assert!(args(&[""], false).build().unwrap_err().contains("-s \"\""));
        let p = std::env::temp_dir().join(format!("onvm-scan-{}", std::process::id()));
        std::fs::write(&p, "alpha\r\n\nbeta\n").unwrap();
        let mut a = args(&[], false);
        a.file = Some(p.clone());
        assert_eq!(a.patterns().unwrap(), [b"alpha".to_vec(), b"beta".to_vec()]);
        std::fs::write(&p, "\n\n").unwrap();
        assert!(a.build().unwrap_err().contains("no strings"));
        std::fs::remove_file(&p).unwrap();
        assert!(a.build().unwrap_err().starts_with("-f "));
    }

    #[test]
    fn malformed_frames_never_panic() {
        let mut nf = args(&["a"], false).build().unwrap();
        let mut off = Offline::new().unwrap();
        let mut sim = off.start(&mut nf);
        let frames = crate::aes_encrypt::tests::malformed_frames();
        let mut more = frames.clone();
        let t = tcp(b"aaaa");
        more.extend(crate::test_frames::prefixes(&t));
        more.push(t.clone());
        let mut bad_off = t.clone();
        bad_off[14 + 20 + 12] = 0xf0; // data offset 60, past the packet
        more.push(bad_off);
        assert_eq!(sim.frames(&mut nf, 0, &more).unwrap().len(), more.len());
    }
}
