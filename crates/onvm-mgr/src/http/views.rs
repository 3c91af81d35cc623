//! The JSON documents of the REST API and the live stream, made on the server thread
//! from what the switch copied ([`Seen`]). Rates are differences against an earlier
//! observation (the server keeps the last per-second one), as the console's are.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use onvm_proto::flow::{Action, Match, PortKind, PortNo, Rule, RuleId};

use super::asks::Seen;
use crate::stats::cpu_share;

/// Per-second rate of a counter between two observations `dt` seconds apart.
fn rate(now: u64, before: Option<u64>, dt: f64) -> f64 {
    match before {
        Some(b) if dt > 0.0 => ((now.saturating_sub(b)) as f64 / dt * 10.0).round() / 10.0,
        _ => 0.0,
    }
}

/// How a port number reads in the API: `port:N`, `service:N` or a reserved name.
pub(crate) fn port_name(p: PortNo) -> String {
    match p.kind() {
        PortKind::Physical(n) => format!("port:{n}"),
        PortKind::Service(s) => format!("service:{s}"),
        PortKind::Controller => "controller".into(),
        PortKind::InPort => "in_port".into(),
        PortKind::All => "flood".into(),
        PortKind::Other(n) => format!("port:{n:#x}"),
    }
}

fn action_name(a: &Action) -> String {
    match a {
        Action::Output(p) => match p.kind() {
            PortKind::Physical(n) => format!("out:{n}"),
            _ => port_name(*p),
        },
        Action::Drop => "drop".into(),
        Action::Controller { .. } => "controller".into(),
        Action::Goto(t) => format!("goto:{t}"),
        Action::Group(g) => format!("group:{g}"),
        other => format!("{other:?}"),
    }
}

/// A rule's match: the fields a request can write by name; any other field set is
/// shown in full under `other`.
fn match_json(m: &Match) -> Value {
    let mut o = serde_json::Map::new();
    let mut put = |k: &str, v: Option<Value>| {
        if let Some(v) = v {
            o.insert(k.into(), v);
        }
    };
    put("in_port", m.in_port.map(|p| port_name(p).into()));
    put("eth_type", m.eth_type.map(Into::into));
    put("vlan_id", m.vlan_id.map(Into::into));
    put("ipv4_src", m.ipv4_src.map(|p| p.to_string().into()));
    put("ipv4_dst", m.ipv4_dst.map(|p| p.to_string().into()));
    put("ipv6_src", m.ipv6_src.map(|p| p.to_string().into()));
    put("ipv6_dst", m.ipv6_dst.map(|p| p.to_string().into()));
    put("ip_proto", m.ip_proto.map(Into::into));
    put("l4_src", m.l4_src.map(Into::into));
    put("l4_dst", m.l4_dst.map(Into::into));
    let named = Match {
        in_port: m.in_port,
        eth_type: m.eth_type,
        vlan_id: m.vlan_id,
        ipv4_src: m.ipv4_src,
        ipv4_dst: m.ipv4_dst,
        ipv6_src: m.ipv6_src,
        ipv6_dst: m.ipv6_dst,
        ip_proto: m.ip_proto,
        l4_src: m.l4_src,
        l4_dst: m.l4_dst,
        ..Match::any()
    };
    if named != *m {
        o.insert("other".into(), format!("{m:?}").into());
    }
    Value::Object(o)
}

/// One rule as `GET /api/v1/flows` shows it.
pub(crate) fn flow_json(id: RuleId, r: &Rule, uptime: f64) -> Value {
    let mut v = json!({
        "id": id.0,
        "table": r.table,
        "priority": r.priority,
        "cookie": r.cookie,
        "match": match_json(&r.matcher),
        "actions": r.actions.iter().map(action_name).collect::<Vec<_>>(),
        "packets": r.packets,
        "bytes": r.bytes,
        "idle_timeout": r.idle_timeout,
        "hard_timeout": r.hard_timeout,
        "age_s": (uptime - r.installed.as_secs_f64()).max(0.0).round(),
    });
    if !r.instructions.is_empty() {
        v["instructions"] = format!("{:?}", r.instructions).into();
    }
    v
}

/// The graph of the table: which port or service sends to which, by table-0 rules
/// with an in_port, with the packets their rules matched. Packets an NF hands on with
/// `Next` over a direct NF→NF ring pass no rule counter, so an edge from a service
/// counts at least what its instances handed on with `Next` (`next`, per service).
fn edges(flows: &[(RuleId, Rule)], next: &BTreeMap<u16, u64>) -> BTreeMap<(String, String), u64> {
    let mut e = BTreeMap::new();
    for (_, r) in flows.iter().filter(|(_, r)| r.table == 0) {
        let Some(from) = r.matcher.in_port else { continue };
        let packets = match from.kind() {
            PortKind::Service(s) => r.packets.max(next.get(&s).copied().unwrap_or(0)),
            _ => r.packets,
        };
        // A rule that neither outputs nor goes on (a drop is no action at all, as in
        // OpenFlow) ends its packets: an edge to `drop`.
        let ends = !r.all_actions().any(|a| {
            matches!(
                a,
                Action::Output(_) | Action::Goto(_) | Action::Group(_) | Action::Controller { .. }
            )
        });
        if ends {
            *e.entry((port_name(from), "drop".into())).or_insert(0) += packets;
        }
        for a in &r.actions {
            if let Action::Output(p) = a {
                *e.entry((port_name(from), port_name(*p))).or_insert(0) += packets;
            }
        }
    }
    e
}

/// Everything the API shows at one moment: counters now, rates since `prev`.
pub(crate) fn document(now: &Seen, prev: Option<&Seen>) -> Value {
    let snap = &now.obs.snap;
    let dt = prev.map_or(0.0, |p| snap.uptime.saturating_sub(p.obs.snap.uptime).as_secs_f64());
    let prev_port = |no: u16| prev.and_then(|p| p.obs.snap.ports.iter().find(|q| q.no == no));
    let ports: Vec<Value> = snap
        .ports
        .iter()
        .map(|p| {
            let b = prev_port(p.no);
            let s = &p.stats;
            json!({
                "no": p.no, "name": p.name,
                "rx": s.rx, "tx": s.tx, "rx_bytes": s.rx_bytes, "tx_bytes": s.tx_bytes,
                "rx_drop": s.rx_drop, "tx_drop": s.tx_drop, "errors": s.errors,
                "rx_pps": rate(s.rx, b.map(|b| b.stats.rx), dt),
                "tx_pps": rate(s.tx, b.map(|b| b.stats.tx), dt),
            })
        })
        .collect();
    let level = |id: u16| now.obs.rings.iter().find(|r| r.id == id);
    let prev_nf = |id: u16, tag: &str| {
        prev.and_then(|p| {
            p.obs
                .snap
                .nfs
                .iter()
                .find(|n| n.id == id && n.tag == tag && n.state != "exited")
        })
    };
    let mut service_pps: BTreeMap<u16, (f64, f64)> = BTreeMap::new();
    let nfs: Vec<Value> = snap
        .nfs
        .iter()
        .map(|n| {
            let b = prev_nf(n.id, &n.tag);
            let c = &n.counters;
            let (rx_pps, tx_pps) = (
                rate(c.rx, b.map(|b| b.counters.rx), dt),
                rate(c.tx, b.map(|b| b.counters.tx), dt),
            );
            let running = n.state != "exited" && level(n.id).is_some();
            if running {
                let s = service_pps.entry(n.service).or_default();
                s.0 += rx_pps;
                s.1 += tx_pps;
            }
            let ring = level(n.id).filter(|_| running);
            json!({
                "id": n.id, "tag": n.tag, "service": n.service,
                "state": if running { n.state } else { "exited" },
                "core": n.core, "parent": n.parent, "container": n.container,
                "supervised_as": n.supervised_as,
                "rx": c.rx, "tx": c.tx, "tx_drop": c.tx_drop, "rx_drop": n.rx_drop,
                "actions": {
                    "out": c.act_out, "tonf": c.act_tonf, "drop": c.act_drop, "next": c.act_next,
                    "buffer": c.act_buffer, "returned": c.act_returned,
                },
                "rx_pps": rx_pps, "tx_pps": tx_pps,
                "sleeps": c.sleeps, "sleeps_per_s": rate(c.sleeps, b.map(|b| b.counters.sleeps), dt),
                "cpu_share": cpu_share(c.cpu_ns, b.map(|b| b.counters.cpu_ns), dt),
                "rx_ring": ring.map(|r| r.rx), "tx_ring": ring.map(|r| r.tx),
                "ring_capacity": ring.map(|r| r.capacity),
            })
        })
        .collect();
    let services: Vec<Value> = now
        .obs
        .services
        .iter()
        .map(|s| {
            let (rx, tx) = service_pps.get(&s.id).copied().unwrap_or_default();
            json!({ "id": s.id, "name": s.name, "instances": s.instances, "rx_pps": rx, "tx_pps": tx })
        })
        .collect();
    let prev_drop = |reason: &str| {
        prev.and_then(|p| p.obs.snap.drops.iter().find(|(r, _)| *r == reason).map(|d| d.1))
            .or(prev.map(|_| 0))
    };
    let drops: Vec<Value> = snap
        .drops
        .iter()
        .map(|&(reason, n)| json!({ "reason": reason, "count": n, "per_s": rate(n, prev_drop(reason), dt) }))
        .collect();
    let next_of = |s: &Seen| {
        let mut m: BTreeMap<u16, u64> = BTreeMap::new();
        for n in &s.obs.snap.nfs {
            *m.entry(n.service).or_default() += n.counters.act_next;
        }
        m
    };
    let before = prev.map(|p| edges(&p.flows, &next_of(p)));
    let edges: Vec<Value> = edges(&now.flows, &next_of(now))
        .into_iter()
        .map(|((from, to), n)| {
            let b = before
                .as_ref()
                .map(|e| e.get(&(from.clone(), to.clone())).copied().unwrap_or(0));
            json!({ "from": from, "to": to, "packets": n, "pps": rate(n, b, dt) })
        })
        .collect();
    let tables: Vec<Value> = now
        .obs
        .tables
        .iter()
        .map(|&(t, lookups, matches)| json!({ "table": t, "lookups": lookups, "matches": matches }))
        .collect();
    json!({
        "uptime_s": snap.uptime.as_secs_f64(),
        "interval_s": dt,
        "ports": ports,
        "nfs": nfs,
        "services": services,
        "drops": drops,
        "tables": tables,
        "edges": edges,
        "rules": now.flows.len(),
        "events": now.obs.events,
    })
}
