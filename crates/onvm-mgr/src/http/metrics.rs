//! `/metrics`: the switch's counters in Prometheus' text exposition format (0.0.4,
//! what `promtool check metrics` lints), through the `prometheus` crate.
//!
//! The counters live in the switch and are copied per scrape, so each scrape fills a
//! fresh registry from one observation: values of one scrape belong to one moment.
//! The one metric measured here is how long the switch thread took to answer the
//! HTTP endpoint (the time from asking to the answer, a histogram): the control
//! plane's view of how busy the switch is.

use prometheus::{Encoder, Histogram, HistogramOpts, IntCounterVec, IntGaugeVec, Opts, Registry, TextEncoder};

use super::asks::Seen;

/// The histogram of answer times, kept across scrapes.
pub(crate) fn answer_time() -> Histogram {
    Histogram::with_opts(
        HistogramOpts::new(
            "onvm_http_answer_seconds",
            "Time from an HTTP request asking the switch thread to its answer (at most one control tick when busy)",
        )
        .buckets(prometheus::exponential_buckets(25e-6, 2.0, 14).expect("valid buckets")),
    )
    .expect("valid histogram")
}

/// A counter's name, help and how to read it from `T`.
type Read<T> = (&'static str, &'static str, fn(&T) -> u64);

struct Reg(Registry);

impl Reg {
    fn counter(&self, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
        let c = IntCounterVec::new(Opts::new(name, help), labels).expect("valid metric");
        self.0.register(Box::new(c.clone())).expect("one metric per name");
        c
    }

    fn gauge(&self, name: &str, help: &str, labels: &[&str]) -> IntGaugeVec {
        let g = IntGaugeVec::new(Opts::new(name, help), labels).expect("valid metric");
        self.0.register(Box::new(g.clone())).expect("one metric per name");
        g
    }
}

fn int(n: u32) -> i64 {
    i64::from(n)
}

/// The exposition text of `seen`, with the answer-time histogram.
pub(crate) fn render(seen: &Seen, answer: &Histogram) -> String {
    let r = Reg(Registry::new());
    r.0.register(Box::new(answer.clone())).expect("one metric per name");
    let snap = &seen.obs.snap;
    let port = ["port", "name"];
    let port_counters: [Read<onvm_ports::PortStats>; 7] = [
        ("onvm_port_rx_packets_total", "Packets received on a port", |s| s.rx),
        ("onvm_port_tx_packets_total", "Packets sent out of a port", |s| s.tx),
        ("onvm_port_rx_bytes_total", "Bytes received on a port", |s| s.rx_bytes),
        ("onvm_port_tx_bytes_total", "Bytes sent out of a port", |s| s.tx_bytes),
        (
            "onvm_port_rx_dropped_total",
            "Packets a port could not receive (no free buffer)",
            |s| s.rx_drop,
        ),
        ("onvm_port_tx_dropped_total", "Packets a port could not send", |s| {
            s.tx_drop
        }),
        ("onvm_port_errors_total", "Other port errors", |s| s.errors),
    ];
    for (name, help, f) in port_counters {
        let c = r.counter(name, help, &port);
        for p in &snap.ports {
            c.with_label_values(&[&p.no.to_string(), &p.name]).inc_by(f(&p.stats));
        }
    }
    let nf = ["tag", "service", "instance"];
    let running = |id: u16| seen.obs.rings.iter().find(|l| l.id == id);
    let live: Vec<_> = snap
        .nfs
        .iter()
        .filter(|n| n.state != "exited" && running(n.id).is_some())
        .collect();
    let labels = |n: &crate::stats::NfRow| [n.tag.clone(), n.service.to_string(), n.id.to_string()];
    let nf_counters: [Read<crate::stats::NfRow>; 5] = [
        ("onvm_nf_rx_packets_total", "Packets an NF took from its rings", |n| {
            n.counters.rx
        }),
        ("onvm_nf_tx_packets_total", "Packets an NF handed on", |n| n.counters.tx),
        (
            "onvm_nf_tx_dropped_total",
            "Packets an NF dropped because the next ring was full",
            |n| n.counters.tx_drop,
        ),
        (
            "onvm_nf_rx_dropped_total",
            "Packets the manager could not give an NF (its rx ring was full)",
            |n| n.rx_drop,
        ),
        (
            "onvm_nf_sleeps_total",
            "Times an NF slept on its doorbell (shared-core mode): its wake-ups",
            |n| n.counters.sleeps,
        ),
    ];
    for (name, help, f) in nf_counters {
        let c = r.counter(name, help, &nf);
        for n in &live {
            let l = labels(n);
            c.with_label_values(&[&l[0], &l[1], &l[2]]).inc_by(f(n));
        }
    }
    // CPU time in seconds (Prometheus' base unit), so a float counter.
    let cpu = prometheus::CounterVec::new(
        Opts::new(
            "onvm_nf_cpu_seconds_total",
            "CPU time an NF's thread used (its share of a core: the rate over time)",
        ),
        &nf,
    )
    .expect("valid metric");
    r.0.register(Box::new(cpu.clone())).expect("one metric per name");
    for n in &live {
        let l = labels(n);
        cpu.with_label_values(&[&l[0], &l[1], &l[2]])
            .inc_by(n.counters.cpu_ns as f64 / 1e9);
    }
    let actions = r.counter(
        "onvm_nf_actions_total",
        "Verdicts an NF gave its packets, by action",
        &["tag", "service", "instance", "action"],
    );
    for n in &live {
        let l = labels(n);
        let c = &n.counters;
        for (a, v) in [
            ("out", c.act_out),
            ("tonf", c.act_tonf),
            ("drop", c.act_drop),
            ("next", c.act_next),
            ("buffer", c.act_buffer),
        ] {
            actions.with_label_values(&[&l[0], &l[1], &l[2], a]).inc_by(v);
        }
    }
    let rings = r.gauge(
        "onvm_nf_ring_packets",
        "Packets waiting in an NF's ring (rx: for the NF, tx: for the manager)",
        &["tag", "service", "instance", "ring"],
    );
    let capacity = r.gauge("onvm_nf_ring_capacity", "Slots of an NF's rings", &nf);
    for n in &live {
        let (l, level) = (labels(n), running(n.id).expect("live"));
        rings.with_label_values(&[&l[0], &l[1], &l[2], "rx"]).set(int(level.rx));
        rings.with_label_values(&[&l[0], &l[1], &l[2], "tx"]).set(int(level.tx));
        capacity
            .with_label_values(&[&l[0], &l[1], &l[2]])
            .set(int(level.capacity));
    }
    let instances = r.gauge(
        "onvm_service_instances",
        "Instances serving a service",
        &["service", "name"],
    );
    for s in &seen.obs.services {
        instances
            .with_label_values(&[&s.id.to_string(), &s.name])
            .set(s.instances.len() as i64);
    }
    let drops = r.counter(
        "onvm_drops_total",
        "Packets the manager dropped, by reason",
        &["reason"],
    );
    for (reason, n) in &snap.drops {
        drops.with_label_values(&[reason]).inc_by(*n);
    }
    let lookups = r.counter("onvm_table_lookups_total", "Lookups in a flow table", &["table"]);
    let matches = r.counter("onvm_table_matches_total", "Lookups that matched a rule", &["table"]);
    for &(t, l, m) in &seen.obs.tables {
        lookups.with_label_values(&[&t.to_string()]).inc_by(l);
        matches.with_label_values(&[&t.to_string()]).inc_by(m);
    }
    let uptime = prometheus::Gauge::new("onvm_uptime_seconds", "Time since the manager started").expect("valid");
    uptime.set(snap.uptime.as_secs_f64());
    r.0.register(Box::new(uptime)).expect("one metric per name");
    let mut out = Vec::new();
    TextEncoder::new()
        .encode(&r.0.gather(), &mut out)
        .expect("text encoding of valid metrics");
    String::from_utf8(out).expect("the text encoder writes UTF-8")
}

/// The content type of [`render`]'s text.
pub(crate) const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";
