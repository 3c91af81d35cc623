//! Golden tests of the NF catalogue: frames crafted for one NF go in through `pcap:`
//! ports of a real `onvm up`, through the NF's process (and its inverse or peer), out of
//! `pcapout:` ports, and are compared packet by packet with the frames expected.
//!
//! Ports are numbered in the order given: the inputs ([`Golden::input`], port 0, 1, …),
//! then the outputs ([`Golden::outputs`]). The config's body (services, NFs, chains) is
//! the test's own, so a test reads like the config a user would write.

use std::fmt::Write as _;
use std::time::Duration;

use super::{Proc, TempDir, assert_conserved, onvm, read_pcap, write_pcap};

/// The frame a delayed input starts with: an ethertype no NF routes (IEEE 802 local
/// experimental), which its chain's `match` leaves to the manager (`no-rule`).
pub const LEAD_IN_ETHERTYPE: u16 = 0x88b5;

/// A golden test's setup.
pub struct Golden {
    name: String,
    body: String,
    inputs: Vec<(Vec<Vec<u8>>, Option<Duration>)>,
    outputs: usize,
}

/// What came out.
pub struct GoldenRun {
    /// Frames written by each output port, in order.
    pub out: Vec<Vec<Vec<u8>>>,
    /// The manager's and NFs' output (reports, summaries, events).
    pub log: String,
    /// Keeps the files (the expected captures are written next to the outputs).
    pub dir: TempDir,
}

impl Golden {
    /// A test named `name` (its temp dir) whose config's services, NFs and chains are
    /// `body`.
    pub fn new(name: &str, body: &str) -> Golden {
        Golden {
            name: name.to_string(),
            body: body.to_string(),
            inputs: Vec::new(),
            outputs: 1,
        }
    }

    /// An input port replaying `frames` as fast as the NFs take them.
    pub fn input(mut self, frames: Vec<Vec<u8>>) -> Golden {
        self.inputs.push((frames, None));
        self
    }

    /// An input port that sends one lead-in frame (ethertype [`LEAD_IN_ETHERTYPE`]) and
    /// `frames` `after` it: what must come after another port's frames (replies).
    pub fn input_after(mut self, frames: Vec<Vec<u8>>, after: Duration) -> Golden {
        self.inputs.push((frames, Some(after)));
        self
    }

    /// How many `pcapout:` ports follow the inputs (default 1).
    pub fn outputs(mut self, n: usize) -> Golden {
        self.outputs = n;
        self
    }

    /// Run `onvm up` until every input is sent and the NFs are idle; asserts it exits 0
    /// with every packet accounted for and the pool whole.
    pub fn run(self) -> GoldenRun {
        let dir = TempDir::new(&format!("golden-{}", self.name));
        let mut ports = Vec::new();
        for (i, (frames, after)) in self.inputs.iter().enumerate() {
            let path = dir.join(&format!("in{i}.pcap"));
            let t0 = Duration::from_secs(1_700_000_000);
            match after {
                None => {
                    write_pcap(&path, frames, t0);
                    ports.push(format!("pcap:{}", path.display()));
                }
                Some(after) => {
                    write_delayed(&path, frames, t0, *after);
                    ports.push(format!("pcap:{},timing=file", path.display()));
                }
            }
        }
        for j in 0..self.outputs {
            ports.push(format!("pcapout:{}", dir.join(&format!("out{j}.pcap")).display()));
        }
        let text = format!(
            "[manager]\nsocket = {:?}\nports = {:?}\nshared_cores = true\n\n{}",
            dir.socket().display().to_string(),
            ports,
            self.body
        );
        let cfg = dir.write("golden.toml", &text);
        let mut cmd = onvm();
        cmd.arg("up")
            .arg(&cfg)
            .args(["--stats", "off", "--exit-when-drained", "1", "--buffers", "4095"]);
        let mut up = Proc::spawn("onvm up", cmd);
        let code = up.exit_code(Duration::from_secs(60));
        assert_eq!(code, 0, "onvm up failed\n{text}\n{}", up.output());
        assert_conserved(&up);
        let out = (0..self.outputs)
            .map(|j| read_pcap(&dir.join(&format!("out{j}.pcap"))))
            .collect();
        GoldenRun {
            out,
            log: up.output(),
            dir,
        }
    }
}

/// One lead-in frame at `t0`, then `frames` from `t0 + after`, 1 µs apart.
fn write_delayed(path: &std::path::Path, frames: &[Vec<u8>], t0: Duration, after: Duration) {
    use pcap_file::pcap::{PcapHeader, PcapPacket, PcapWriter};
    let mut lead = vec![0xffu8; 6];
    lead.extend_from_slice(&[0x02, 0, 0, 0, 0, 0xee]);
    lead.extend_from_slice(&LEAD_IN_ETHERTYPE.to_be_bytes());
    lead.resize(60, 0);
    let mut w = PcapWriter::with_header(
        std::fs::File::create(path).expect("create a pcap"),
        PcapHeader::default(),
    )
    .expect("a pcap header");
    w.write_packet(&PcapPacket::new(t0, lead.len() as u32, &lead))
        .expect("a pcap record");
    for (i, f) in frames.iter().enumerate() {
        let at = t0 + after + Duration::from_micros(i as u64);
        w.write_packet(&PcapPacket::new(at, f.len() as u32, f))
            .expect("a pcap record");
    }
}

impl GoldenRun {
    /// The frames output port `j` wrote.
    pub fn port(&self, j: usize) -> &[Vec<u8>] {
        &self.out[j]
    }

    /// Assert output `j` wrote exactly `want`, packet by packet, in order. On a
    /// difference, the message names the first packet and byte that differ, and the
    /// expected capture is written next to the output (`expectJ.pcap`) for `tcpdump -r`.
    pub fn assert_port(&self, j: usize, want: &[Vec<u8>]) {
        let got = &self.out[j];
        let mut why = String::new();
        if got.len() != want.len() {
            let _ = writeln!(why, "output {j}: {} packets, expected {}", got.len(), want.len());
        }
        for (i, (g, w)) in got.iter().zip(want).enumerate() {
            if g != w {
                let at = g
                    .iter()
                    .zip(w)
                    .position(|(a, b)| a != b)
                    .unwrap_or(g.len().min(w.len()));
                let _ = writeln!(
                    why,
                    "output {j}, packet {i}: differs at byte {at} (lengths {} vs expected {})\n  got      {}\n  expected {}",
                    g.len(),
                    w.len(),
                    hex(g),
                    hex(w)
                );
                break;
            }
        }
        if !why.is_empty() {
            let path = self.dir.join(&format!("expect{j}.pcap"));
            write_pcap(&path, want, Duration::from_secs(1_700_000_000));
            // Keep the files for a look: the temp dir would be removed on drop.
            let keep = std::env::temp_dir().join(format!("onvm-golden-failed-{}", std::process::id()));
            let _ = std::fs::create_dir_all(&keep);
            for f in [
                "out0.pcap",
                "out1.pcap",
                "in0.pcap",
                "in1.pcap",
                &format!("expect{j}.pcap"),
            ] {
                let _ = std::fs::copy(self.dir.join(f), keep.join(f));
            }
            panic!("{why}(captures kept in {})\n{}", keep.display(), self.log);
        }
    }

    /// The line an NF reported when it stopped (`NAME: …`); panics if none.
    pub fn report(&self, name: &str) -> &str {
        let prefix = format!("{name}: ");
        self.log
            .lines()
            .find(|l| l.starts_with(&prefix))
            .unwrap_or_else(|| panic!("no `{prefix}` report line\n{}", self.log))
    }

    /// The number after `key` in NF `name`'s report (`… key 12, …`).
    pub fn counter(&self, name: &str, key: &str) -> u64 {
        let line = self.report(name);
        let words: Vec<&str> = line.split([' ', ',', ';', ':']).filter(|w| !w.is_empty()).collect();
        let keys: Vec<&str> = key.split(' ').collect();
        words
            .windows(keys.len() + 1)
            .find(|w| w[..keys.len()] == keys[..])
            .and_then(|w| w[keys.len()].parse().ok())
            .unwrap_or_else(|| panic!("no number after {key:?} in {line:?}"))
    }
}

/// Bytes as hex, the first 96 of them.
fn hex(b: &[u8]) -> String {
    let mut s: String = b.iter().take(96).map(|x| format!("{x:02x}")).collect();
    if b.len() > 96 {
        s.push('…');
    }
    s
}
