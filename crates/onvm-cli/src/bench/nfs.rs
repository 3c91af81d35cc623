//! `nf-NAME` scenarios: each catalogue NF alone between a generator port and a null
//! port, on one core, with flags (and files) that make it do its usual work on the
//! generator's traffic: 64-byte UDP frames of 1024 flows from 10.0.0.0/16 to
//! 198.19.255.254:9. The NF's handler runs metered, so its Mpps is what it handled.
//!
//! Every catalogue NF has a line here (a test says so), or a reason it has none.

use std::path::Path;
use std::time::Instant;

use onvm_nf::offline::Offline;
use onvm_nf::{Action, Handler, Nf, NfError, handler_fn};
use onvm_nfs::Catalogued;
use onvm_nfs::catalogue::Visit;
use onvm_nfs::meter::Metered;
use serde::Serialize;

use super::{Plan, Role, Scenario};

/// Runs a catalogue NF's handler, metered, on a registered NF: its Mpps over the window.
pub(super) struct MeteredRun(pub Nf);

impl Visit for MeteredRun {
    type Out = Result<f64, String>;
    fn visit<A: Catalogued>(self, args: A) -> Self::Out {
        let mut h = Metered::new(args.build()?);
        self.0.run(&mut h).map_err(|e: NfError| e.to_string())?;
        Ok(h.meter.window().0)
    }
}

/// An NF's handler alone, offline (see `Record::handler_alone`).
#[derive(Debug, Clone, Copy, Serialize)]
pub struct HandlerAlone {
    /// Packets per second through the handler and the offline runner, million.
    pub mpps: f64,
    /// The handler's own ns per packet: the runner's time less a pass-through's.
    pub ns_per_packet: f64,
    /// The runner's own ns per packet (frame copy, bookkeeping), with a pass-through.
    pub library_ns: f64,
}

/// Frames like the generator's (`gen:64B,1024flows`): 64-byte UDP from 10.0.0.0/16
/// (flow i from 10.0.i/256.i%256, port 1024) to 198.19.255.254:9.
fn generator_frames() -> Vec<Vec<u8>> {
    (0..1024u32)
        .map(|i| {
            let [_, _, hi, lo] = i.to_be_bytes();
            onvm_nf::packet::UdpSpec {
                frame_len: Some(60),
                ..onvm_nf::packet::UdpSpec::new([10, 0, hi, lo], [198, 19, 255, 254], 1024, 9)
            }
            .to_vec()
            .expect("a valid UDP frame")
        })
        .collect()
}

/// ns per packet of `h` over `frames`, best of a few rounds after a warm-up.
fn ns_per_packet(h: &mut impl Handler, frames: &[Vec<u8>]) -> Result<f64, String> {
    let mut off = Offline::new().map_err(|e| e.to_string())?;
    let mut sim = off.start(h);
    const ROUNDS: usize = 400;
    let mut best = f64::MAX;
    for round in 0..6 {
        let t = Instant::now();
        for i in 0..ROUNDS {
            sim.pass(h, 0, frames).map_err(|e| e.to_string())?;
            // Ticks release what a shaper keeps and age tables; in a run they come
            // every second (a shaper's every millisecond), not every 1024 packets.
            if i % 100 == 99 {
                sim.tick(h);
            }
        }
        if round > 0 {
            best = best.min(t.elapsed().as_nanos() as f64 / (ROUNDS * frames.len()) as f64);
        }
    }
    sim.stop(h);
    Ok(best)
}

/// Runs a catalogue NF's handler offline: [`HandlerAlone`].
struct Alone<'f>(&'f [Vec<u8>]);

impl Visit for Alone<'_> {
    type Out = Result<f64, String>;
    fn visit<A: Catalogued>(self, args: A) -> Self::Out {
        ns_per_packet(&mut args.build()?, self.0)
    }
}

/// The handler of the NF `words` name, alone on this thread over generator-like frames.
pub(super) fn handler_alone(words: &[String]) -> Result<HandlerAlone, String> {
    let frames = generator_frames();
    let words: Vec<&str> = words.iter().map(String::as_str).collect();
    let total = onvm_nfs::Catalogue::parse(&words)?.visit(Alone(&frames))?;
    let library = ns_per_packet(&mut handler_fn(|_, _| Action::Next), &frames)?;
    Ok(HandlerAlone {
        mpps: 1e3 / total,
        ns_per_packet: (total - library).max(0.0),
        library_ns: library,
    })
}

/// One NF's scenario: its words (name and flags; `{dir}` is the bench's folder), the
/// files it reads, an NF in front of it (its input's maker: aes_decrypt needs what
/// aes_encrypt makes), and a hop after it (the next service, a simple_forward) for NFs
/// that send to another service. Services are numbered along the chain from 1.
struct Bench {
    words: &'static str,
    files: &'static [(&'static str, &'static str)],
    before: Option<&'static str>,
    after: bool,
}

const fn nf(words: &'static str) -> Bench {
    Bench {
        words,
        files: &[],
        before: None,
        after: false,
    }
}

/// NFs with no scenario, and why.
pub(super) const NOT_BENCHED: &[(&str, &str)] = &[
    (
        "speed_tester",
        "it is the platform's own benchmark (self-loop, chain2, chain3)",
    ),
    (
        "scaling",
        "it starts children: its figure is the service's, not one core's",
    ),
    ("load_generator", "it makes packets rather than handling the port's"),
    ("messaging", "a test of NF messages, not of packets"),
];

/// The scenarios.
fn benches() -> Vec<Bench> {
    vec![
        nf("simple_forward"),
        nf("basic_monitor --quiet"),
        nf("bridge"),
        Bench {
            files: &[(
                "firewall.rules",
                "# the generator's sources pass, a few other prefixes to look past\n\
                 10.0.0.0/16 pass\n10.1.0.0/16 drop\n192.168.0.0/16 drop\n172.16.0.0/12 drop\n\
                 10.0.128.0/17 pass\n2001:db8::/32 drop\n",
            )],
            ..nf("firewall -f {dir}/firewall.rules")
        },
        Bench {
            files: &[(
                "l3fwd.routes",
                "198.19.0.0/16 1\n198.18.0.0/16 0\n10.0.0.0/8 0\n0.0.0.0/0 1\n2001:db8::/32 1\n",
            )],
            ..nf("l3fwd -f {dir}/l3fwd.routes")
        },
        Bench {
            files: &[("route.conf", "LIST_SIZE 2\n198.19.255.254 2\n10.0.0.1 2\n")],
            after: true,
            ..nf("nf_router -f {dir}/route.conf")
        },
        nf("l2fwd"),
        nf("arp_response -s 198.19.255.254,10.0.0.1"),
        // Every flow opens a connection from the inside port and is then tracked.
        nf("stateful_firewall --inside 10.0.0.0/16"),
        // 1024 flows, 1024 mappings: each packet is a table hit and a rewrite.
        nf("nat --inside 10.0.0.0/16 --public 198.18.0.1 --ports 20000-40000"),
        nf("vxlan --mode encap --vni 42 --local 198.18.0.1 --remote 198.18.0.2"),
        // A rate far above what passes: every packet is metered and passes.
        nf("rate_limiter --rate 100000000 --per flow"),
        nf("aes_encrypt -k 000102030405060708090a0b0c0d0e0f"),
        Bench {
            before: Some("aes_encrypt -k 000102030405060708090a0b0c0d0e0f"),
            ..nf("aes_decrypt -k 000102030405060708090a0b0c0d0e0f")
        },
        // Eight patterns, none in the generator's zero payloads: every byte is scanned.
        nf("payload_scan -i -s attack -s exploit -s /bin/sh -s passwd -s SELECT -s cmd.exe -s wget -s curl"),
        nf("flow_tracker -p 0"),
        // Each flow's first packet takes the detour through service 2.
        Bench {
            after: true,
            ..nf("test_flow_dir -d 2")
        },
        Bench {
            files: &[(
                "backends",
                "LIST_SIZE 3\n10.9.0.1 02:00:00:00:09:01 1\n10.9.0.2 02:00:00:00:09:02 2\n10.9.0.3 02:00:00:00:09:03 1\n",
            )],
            ..nf("load_balancer --vip 198.19.255.254 -f {dir}/backends --policy weighted")
        },
        nf("skeleton -p 0"),
        // Tokens far beyond the offered load: every packet is metered, none waits.
        nf("tbf -D 1000000 -R 100000"),
        // Eight queues, every packet queued and released by deficit round robin.
        nf("fair_queue -n 8"),
        // A threshold no source reaches: every packet updates the sketch and passes.
        nf("heavy_hitter --key src --threshold 100000000"),
        // Every packet is UDP to one destination, rated; the threshold is far above.
        nf("flood_mitigator --udp-threshold 1000000000 --inside 10.0.0.0/16"),
    ]
}

/// The `nf-NAME` scenarios, their files in `dir`.
pub(super) fn scenarios(dir: &Path) -> Vec<Scenario> {
    let words = |w: &str| -> Vec<String> {
        w.split_whitespace()
            .map(|w| w.replace("{dir}", &dir.display().to_string()))
            .collect()
    };
    // The measured NF has core 1 to itself; the others share core 0 with the manager
    // and sleep when idle.
    let plan = |service: u16, role: Role| Plan {
        service,
        core: Some(if service == 1 { 1 } else { 0 }),
        shared: service != 1,
        role,
    };
    benches()
        .into_iter()
        .map(|b| {
            let measured = words(b.words);
            let name = format!("nf-{}", measured[0]);
            // The measured NF is service 1 (its own core) and the first plan.
            let mut nfs = vec![plan(1, Role::Nf(measured))];
            let mut chain = vec![1];
            if let Some(w) = b.before {
                nfs.push(plan(2, Role::Nf(words(w))));
                chain.insert(0, 2);
            }
            if b.after {
                let s = chain.len() as u16 + 1;
                nfs.push(plan(s, Role::Forward { dest: None }));
                chain.push(s);
            }
            Scenario {
                name,
                frame: 64,
                latency: false,
                ports: vec!["gen:64B,1024flows".into(), "null".into()],
                chain,
                nfs,
                files: b.files.iter().map(|(f, t)| (dir.join(f), (*t).to_string())).collect(),
                onvm: (None, None),
                backpressure: None,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every catalogue NF has a scenario or a reason; every scenario's flags are the
    /// NF's (its files written, its `build` accepts them).
    #[test]
    fn every_nf_is_benched_or_says_why_and_every_scenario_s_flags_build() {
        let dir = std::env::temp_dir().join(format!("onvm-bench-nfs-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut benched = Vec::new();
        for s in scenarios(&dir) {
            for (p, t) in &s.files {
                std::fs::write(p, t).unwrap();
            }
            let Role::Nf(words) = &s.nfs[0].role else {
                panic!("{}: the measured NF is a catalogue NF", s.name)
            };
            let words: Vec<&str> = words.iter().map(String::as_str).collect();
            let nf = onvm_nfs::Catalogue::parse(&words).unwrap_or_else(|e| panic!("{}: {e}", s.name));
            nf.check().unwrap_or_else(|e| panic!("{}: {e}", s.name));
            benched.push(nf.name().to_string());
        }
        for name in crate::nf::builtin_names() {
            let name = name.replace('-', "_");
            assert!(
                benched.contains(&name) || NOT_BENCHED.iter().any(|(n, _)| *n == name),
                "catalogue NF {name} has no nf- scenario and no reason in NOT_BENCHED"
            );
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}
