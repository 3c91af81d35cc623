//! Scaling (openNetVM's `scaling_example`): the NF starts `-n` more instances of its
//! own service, each on its own thread, with the scaling API ([`Nf::scale`]); the
//! manager spreads the service's flows over all of them.
//!
//! Every instance (the parent and its children) counts its packets and passes them to
//! `-d SERVICE` or the chain's next hop. Children register with the parent as their
//! parent and are tagged `TAG#1`, `TAG#2`, …; they stop when the manager stops the
//! service (or on the same signal, TTL or packet limit as the parent). The report
//! gives the parent's packets and each child's summary.
//!
//! Differences from openNetVM: there, `-a` makes children use advanced rings on
//! threads the NF makes itself and `-c` shares cores; here every child is an ordinary
//! NF instance on its own thread, and core sharing is the parent's (`--shared-core`).

use onvm_nf::{Action, Batch, Ctx, Handler, Nf, NfBuilder, Summary};

use crate::catalogue::{Catalogued, Launched, check_service};

/// One instance: counts and passes packets.
#[derive(Debug, Clone, Copy)]
pub struct Scaling {
    /// Where packets go.
    pub out: Action,
    /// Packets it saw.
    pub packets: u64,
}

impl Handler for Scaling {
    fn batch(&mut self, batch: &mut Batch<'_>, _ctx: &mut Ctx<'_>) {
        self.packets += batch.len() as u64;
        batch.set_all(self.out);
    }
}

/// `onvm nf scaling [-d SERVICE] [-n CHILDREN]`.
#[derive(clap::Args, Debug, Clone)]
pub struct Args {
    /// Destination service (default: the chain's next hop).
    #[arg(short = 'd', long)]
    pub dest: Option<u16>,
    /// Child instances to start.
    #[arg(short = 'n', long, default_value_t = 1)]
    pub children: usize,
}

/// The report line: the parent's packets and each child's summary.
pub fn report_line(parent: &Scaling, children: &[Result<Summary, String>]) -> String {
    let child_packets: u64 = children.iter().flatten().map(|s| s.counters.rx).sum();
    let mut line = format!(
        "scaling: children {}, failed {}, parent packets {}, children packets {}, total {}",
        children.len(),
        children.iter().filter(|c| c.is_err()).count(),
        parent.packets,
        child_packets,
        parent.packets + child_packets
    );
    for c in children {
        match c {
            Ok(s) => line.push_str(&format!(
                "; {} (instance {}) rx {} tx {} ({})",
                s.tag, s.instance, s.counters.rx, s.counters.tx, s.reason
            )),
            Err(e) => line.push_str(&format!("; a child failed: {e}")),
        }
    }
    line
}

impl Catalogued for Args {
    const NAME: &'static str = "scaling";
    type Nf = Scaling;

    fn build(&self) -> Result<Scaling, String> {
        let out = match self.dest {
            Some(d) => Action::ToService(check_service("--dest", d)?),
            None => Action::Next,
        };
        // The parent and its children are instances of one service.
        let max = onvm_proto::limits::MAX_INSTANCES_PER_SERVICE - 1;
        if !(1..=max).contains(&self.children) {
            return Err(format!("--children {}: out of range, must be 1..={max}", self.children));
        }
        Ok(Scaling { out, packets: 0 })
    }

    fn report(nf: &Scaling) -> Option<String> {
        Some(report_line(nf, &[]))
    }

    /// Register, start the children, run the parent; when it stops, wait for the
    /// children and report them too.
    fn launch(self, b: NfBuilder, connected: &dyn Fn(&Nf)) -> Result<Launched, String> {
        let mut parent = self.build()?;
        let nf = b.connect().map_err(|e| e.to_string())?;
        connected(&nf);
        let out = parent.out;
        let handles = nf
            .scale(self.children, move || Scaling { out, packets: 0 })
            .map_err(|e| format!("starting the children: {e}"))?;
        let summary = nf.run(&mut parent).map_err(|e| e.to_string());
        let children: Vec<Result<Summary, String>> = handles
            .into_iter()
            .map(|h| match h.join() {
                Ok(r) => r.map_err(|e| e.to_string()),
                Err(_) => Err("its thread panicked".into()),
            })
            .collect();
        Ok(Launched {
            summary: summary?,
            report: Some(report_line(&parent, &children)),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use onvm_nf::offline::Offline;

    #[test]
    fn an_instance_counts_and_passes_and_the_report_adds_the_children() {
        let mut h = crate::parse_flags::<Args>(&["-n", "2", "-d", "4"])
            .unwrap()
            .build()
            .unwrap();
        let mut off = Offline::new().unwrap();
        let mut sim = off.start(&mut h);
        let frames: Vec<Vec<u8>> = (0..40).map(|n| vec![7u8; n]).collect();
        let out = sim.frames(&mut h, 0, &frames).unwrap();
        assert!(out.iter().all(|s| s.action == Action::ToService(4)));
        let child = Summary {
            tag: "scaling#1".into(),
            instance: 9,
            service: 1,
            counters: onvm_nf::NfCounters {
                rx: 5,
                tx: 5,
                ..Default::default()
            },
            elapsed: std::time::Duration::ZERO,
            reason: "stopped by the manager".into(),
        };
        assert_eq!(
            report_line(&h, &[Ok(child), Err("x".into())]),
            "scaling: children 2, failed 1, parent packets 40, children packets 5, total 45; \
             scaling#1 (instance 9) rx 5 tx 5 (stopped by the manager); a child failed: x"
        );
    }

    #[test]
    fn bad_flags_are_named() {
        let e = |f: &[&str]| crate::parse_flags::<Args>(f).unwrap().build().unwrap_err();
        assert!(e(&["-n", "0"]).contains("--children 0"));
        assert_eq!(e(&["-n", "32"]), "--children 32: out of range, must be 1..=31");
        assert!(e(&["-d", "0"]).contains("--dest 0"));
    }
}
