//! A stateless firewall: an ACL of IPv4 and IPv6 prefixes, longest prefix match on the
//! source address (or the destination with `--dst`).
//!
//! `onvm nf firewall -f RULES [--dst] [--default pass|drop] [--pass-non-ip] [-d SERVICE]`
//!
//! The rules file holds one rule a line, `PREFIX/LEN ACTION` (ACTION `pass` or `drop`,
//! a bare address is a host, `#` starts a comment), or is openNetVM's `rules.json`
//! (`{"NAME": {"ip": "10.0.0.0", "depth": 24, "action": 0}, …}`, action 0 = pass,
//! anything else = drop, or the words). An address no rule covers gets `--default`
//! (drop unless told). Passed packets go to `-d` or the chain's next hop, unchanged.
//! Frames that are not IP are dropped unless `--pass-non-ip`; malformed IP frames
//! (truncated headers, bad lengths) are always dropped.
//!
//! Counters (the report): `passed` and `dropped` (IP packets, by the rules or the
//! default), `non_ip` (whatever their fate), `malformed`.
//!
//! Differences from openNetVM's `firewall`: IPv6 too; the destination can be matched;
//! the default is a flag (openNetVM drops what no rule covers); the plain line format;
//! a packet that passes may go to the next hop (openNetVM needs `-d`); `-p`/`-b`
//! (printing) are left out: the counters are reported at the end.

use std::path::{Path, PathBuf};

use onvm_nf::{Action, Ctx, Handler, PacketMut};

use crate::catalogue::{Catalogued, check_service};
use crate::iptable::{Class, LpmTable, addr, classify};
use crate::net::Prefix;
use crate::table_file::{line_err, lines_of, read_text};

/// A rule's verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Verdict {
    /// Let the packet through.
    Pass,
    /// Drop it.
    Drop,
}

/// What the firewall counted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// IP packets passed.
    pub passed: u64,
    /// IP packets dropped.
    pub dropped: u64,
    /// Frames that are not IP.
    pub non_ip: u64,
    /// Malformed frames (dropped).
    pub malformed: u64,
}

/// The firewall's handler.
#[derive(Debug)]
pub struct Firewall {
    rules: LpmTable<Verdict>,
    default: Verdict,
    match_dst: bool,
    pass_non_ip: bool,
    pass: Action,
    /// Counts so far.
    pub counts: Counts,
}

impl Firewall {
    /// A firewall over `rules`; what passes gets `pass` (a service or Next).
    pub fn new(rules: LpmTable<Verdict>, default: Verdict, match_dst: bool, pass_non_ip: bool, pass: Action) -> Self {
        Firewall {
            rules,
            default,
            match_dst,
            pass_non_ip,
            pass,
            counts: Counts::default(),
        }
    }

    /// The action for `frame`, counted.
    #[inline]
    pub fn decide(&mut self, frame: &[u8]) -> Action {
        let c = &mut self.counts;
        match classify(frame) {
            Class::Ip(l) => {
                let v = addr(frame, &l, self.match_dst)
                    .and_then(|a| self.rules.lookup(a).copied())
                    .unwrap_or(self.default);
                match v {
                    Verdict::Pass => {
                        c.passed += 1;
                        self.pass
                    }
                    Verdict::Drop => {
                        c.dropped += 1;
                        Action::Drop
                    }
                }
            }
            Class::NotIp => {
                c.non_ip += 1;
                if self.pass_non_ip { self.pass } else { Action::Drop }
            }
            Class::Malformed => {
                c.malformed += 1;
                Action::Drop
            }
        }
    }
}

impl Handler for Firewall {
    fn packet(&mut self, pkt: &mut PacketMut<'_>, _ctx: &mut Ctx<'_>) -> Action {
        self.decide(pkt.data())
    }
}

/// `onvm nf firewall -f RULES [--dst] [--default pass|drop] [--pass-non-ip] [-d SERVICE]`.
#[derive(clap::Args, Debug, Clone)]
pub struct Args {
    /// Rules file: `PREFIX/LEN pass|drop` lines, or openNetVM's rules.json.
    #[arg(short = 'f', long = "rules")]
    pub rules: PathBuf,
    /// Match the destination address (default: the source).
    #[arg(long)]
    pub dst: bool,
    /// What an address no rule covers gets.
    #[arg(long, value_enum, default_value = "drop")]
    pub default: Verdict,
    /// Pass frames that are not IP (default: drop them).
    #[arg(long)]
    pub pass_non_ip: bool,
    /// Where passed packets go (default: the chain's next hop).
    #[arg(short = 'd', long)]
    pub dest: Option<u16>,
}

/// Parse a rules file's `text` (`path` for errors).
pub fn parse_rules(path: &Path, text: &str) -> Result<LpmTable<Verdict>, String> {
    const FLAG: &str = "--rules";
    let mut t = LpmTable::new();
    if text.trim_start().starts_with('{') {
        return parse_json(path, text);
    }
    for l in lines_of(text) {
        let [p, v] = &l.words[..] else {
            return Err(line_err(FLAG, path, l.no, "want `PREFIX/LEN pass|drop`"));
        };
        let p: Prefix = p.parse().map_err(|e| line_err(FLAG, path, l.no, e))?;
        let v = match v.as_str() {
            "pass" | "accept" => Verdict::Pass,
            "drop" | "deny" => Verdict::Drop,
            _ => return Err(line_err(FLAG, path, l.no, format!("bad action {v:?} (pass or drop)"))),
        };
        t.insert(p, v);
    }
    Ok(t)
}

/// openNetVM's rules.json: `{"NAME": {"ip": "…", "depth": N, "action": 0}, …}`.
fn parse_json(path: &Path, text: &str) -> Result<LpmTable<Verdict>, String> {
    let err = |what: String| format!("--rules {}: {what}", path.display());
    let v: serde_json::Value = serde_json::from_str(text).map_err(|e| err(format!("bad JSON: {e}")))?;
    let obj = v.as_object().ok_or_else(|| err("want an object of rules".into()))?;
    let mut t = LpmTable::new();
    for (name, r) in obj {
        let rule = |what: &str| err(format!("rule {name:?}: {what}"));
        let ip = r
            .get("ip")
            .and_then(|v| v.as_str())
            .ok_or_else(|| rule("no \"ip\" string"))?;
        let depth = r
            .get("depth")
            .and_then(|v| v.as_u64())
            .ok_or_else(|| rule("no \"depth\" number"))?;
        let p: Prefix = format!("{ip}/{depth}").parse().map_err(|e: String| rule(&e))?;
        let verdict = match r.get("action") {
            Some(serde_json::Value::Number(n)) if n.as_u64() == Some(0) => Verdict::Pass,
            Some(serde_json::Value::Number(_)) => Verdict::Drop,
            Some(serde_json::Value::String(s)) if s == "pass" => Verdict::Pass,
            Some(serde_json::Value::String(s)) if s == "drop" => Verdict::Drop,
            _ => return Err(rule("\"action\" must be a number (0 = pass) or \"pass\"/\"drop\"")),
        };
        t.insert(p, verdict);
    }
    Ok(t)
}

impl Catalogued for Args {
    const NAME: &'static str = "firewall";
    type Nf = Firewall;
    fn build(&self) -> Result<Firewall, String> {
        let dest = self.dest.map(|d| check_service("--dest", d)).transpose()?;
        let text = read_text("--rules", &self.rules)?;
        let rules = parse_rules(&self.rules, &text)?;
        Ok(Firewall::new(
            rules,
            self.default,
            self.dst,
            self.pass_non_ip,
            dest.map_or(Action::Next, Action::ToService),
        ))
    }
    fn report(nf: &Firewall) -> Option<String> {
        let c = nf.counts;
        Some(format!(
            "firewall: passed {}, dropped {}, non_ip {}, malformed {}",
            c.passed, c.dropped, c.non_ip, c.malformed
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_frames::{garbage, malformed_variants, udp};
    use onvm_nf::offline::Offline;

    const RULES: &str =
        "# a test ACL\n10.0.0.0/8 pass\n10.6.0.0/16 drop\n10.6.6.6 pass\n2001:db8::/32 pass\n2001:db8:bad::/48 drop\n";

    fn fw(default: Verdict, dst: bool, non_ip: bool) -> Firewall {
        let rules = parse_rules(Path::new("t"), RULES).unwrap();
        Firewall::new(rules, default, dst, non_ip, Action::ToService(3))
    }

    #[test]
    fn longest_prefix_on_the_source_decides_v4_and_v6() {
        let mut f = fw(Verdict::Drop, false, false);
        let cases = [
            ("10.1.1.1", "99.0.0.1", Action::ToService(3)),
            ("10.6.1.1", "10.1.1.1", Action::Drop),
            ("10.6.6.6", "1.1.1.1", Action::ToService(3)),
            ("11.0.0.1", "10.1.1.1", Action::Drop),
            ("2001:db8:1::1", "::1", Action::ToService(3)),
            ("2001:db8:bad::1", "2001:db8::1", Action::Drop),
            ("2002::1", "2001:db8::1", Action::Drop),
        ];
        for (s, d, want) in cases {
            assert_eq!(f.decide(&udp(s, d, 64)), want, "{s} -> {d}");
        }
        assert_eq!(
            f.counts,
            Counts {
                passed: 3,
                dropped: 4,
                ..Default::default()
            }
        );
        let mut f = fw(Verdict::Pass, true, true);
        assert_eq!(f.decide(&udp("10.6.1.1", "11.0.0.1", 64)), Action::ToService(3));
        assert_eq!(f.decide(&udp("10.1.1.1", "10.6.1.1", 64)), Action::Drop);
        assert_eq!(
            f.decide(&crate::test_frames::arp_request([1; 6], [10, 0, 0, 1], [10, 0, 0, 2])),
            Action::ToService(3)
        );
        assert_eq!(f.counts.non_ip, 1);
    }

    #[test]
    fn json_rules_and_bad_files() {
        let j = r#"{"a": {"ip": "10.0.0.0", "depth": 8, "action": 0}, "b": {"ip": "2001:db8::", "depth": 32, "action": 1}}"#;
        let t = parse_rules(Path::new("r.json"), j).unwrap();
        assert_eq!(t.lookup_ip("10.1.1.1".parse().unwrap()), Some(&Verdict::Pass));
        assert_eq!(t.lookup_ip("2001:db8::1".parse().unwrap()), Some(&Verdict::Drop));
        let e = parse_rules(Path::new("/x"), "10.0.0.0/8 pass\n10.0.0/33 drop\n").unwrap_err();
        assert_eq!(
            e,
            "--rules /x: line 2: bad prefix \"10.0.0/33\": \"10.0.0\" is not an IP address"
        );
        let e = parse_rules(Path::new("/x"), "10.0.0.0/8 allow\n").unwrap_err();
        assert!(e.contains("line 1: bad action \"allow\""), "{e}");
        let e = parse_rules(
            Path::new("/x"),
            r#"{"a": {"ip": "10.0.0.0", "depth": 40, "action": 0}}"#,
        )
        .unwrap_err();
        assert!(e.contains("rule \"a\"") && e.contains("0..=32"), "{e}");
        let e = Args {
            rules: "/nonexistent/rules".into(),
            dst: false,
            default: Verdict::Drop,
            pass_non_ip: false,
            dest: None,
        }
        .build()
        .unwrap_err();
        assert!(e.starts_with("--rules /nonexistent/rules: "), "{e}");
    }

    #[test]
    fn malformed_frames_are_dropped_never_panic() {
        let mut f = fw(Verdict::Pass, false, true);
        let mut off = Offline::new().unwrap();
        let mut sim = off.start(&mut f);
        for good in [udp("10.1.1.1", "10.2.2.2", 64), udp("2001:db8::1", "2001:db8::2", 64)] {
            let bad = malformed_variants(&good);
            let out = sim.frames(&mut f, 0, &bad).unwrap();
            assert_eq!(out.len(), bad.len());
            let out = sim.frames(&mut f, 0, &garbage(500)).unwrap();
            assert_eq!(out.len(), 500);
        }
        // A frame cut inside its IP header is malformed, and dropped.
        let good = udp("10.1.1.1", "10.2.2.2", 64);
        let before = f.counts.malformed;
        let out = sim.frames(&mut f, 0, &[good[..30].to_vec()]).unwrap();
        assert_eq!((out[0].action, f.counts.malformed), (Action::Drop, before + 1));
    }
}
