//! What the HTTP server asks of the switch, and the switch's side of answering: run on
//! the manager thread at a control tick, so it copies what it reads and checks what it
//! writes, and leaves formatting to the server thread.

use serde::Deserialize;
use tokio::sync::oneshot;

use onvm_openflow::{self as of, FlowMod, FlowModCommand, OFP_NO_BUFFER, ofpp};
use onvm_proto::chain::{self, Chain, Hop, HopSpec};
use onvm_proto::config::MatchSpec;
use onvm_proto::flow::{Action, DeleteFilter, Match, PortKind, PortNo, Rule, RuleId};

use crate::control_plane::{Observation, Switch};
use crate::openflow::add_flow;
use crate::openflow::translate::{from_match, to_instructions};

/// One request for the switch.
#[derive(Debug)]
pub(crate) enum Ask {
    /// Counters now, the events from this entry on, and the rules if `flows`.
    Observe {
        events_from: usize,
        flows: bool,
    },
    AddFlow(FlowSpec),
    DeleteFlow(u64),
    AddChain(ChainSpec),
    DeleteChain(String),
    Capture(crate::capture::Tap),
}

/// What the switch read for an [`Ask::Observe`].
#[derive(Debug)]
pub(crate) struct Seen {
    pub obs: Observation,
    pub events: Vec<String>,
    pub flows: Vec<(RuleId, Rule)>,
}

/// The answer to an [`Ask`].
#[derive(Debug)]
pub(crate) enum Answer {
    Observed(Box<Seen>),
    /// A write was done: what to tell the client.
    Done(serde_json::Value),
    Refused(Refusal),
}

/// A request the switch turned down: the HTTP status and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Refusal {
    pub status: u16,
    pub message: String,
}

impl Refusal {
    pub(crate) fn bad(message: impl Into<String>) -> Refusal {
        Refusal {
            status: 400,
            message: message.into(),
        }
    }

    fn not_found(message: impl Into<String>) -> Refusal {
        Refusal {
            status: 404,
            message: message.into(),
        }
    }

    fn conflict(message: impl Into<String>) -> Refusal {
        Refusal {
            status: 409,
            message: message.into(),
        }
    }
}

/// An [`Ask`] with where its answer goes.
#[derive(Debug)]
pub(crate) struct Asked {
    pub ask: Ask,
    pub reply: oneshot::Sender<Answer>,
}

/// A rule as `POST /api/v1/flows` takes it: OpenFlow's FLOW_MOD ADD in a few words.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct FlowSpec {
    #[serde(default)]
    pub table: u8,
    pub priority: u16,
    /// `port:N` (or `N`) or `service:NAME` (or `service:ID`).
    pub in_port: Option<String>,
    #[serde(default, rename = "match")]
    pub matcher: MatchSpec,
    /// In order: `out:N`, `service:NAME`, `drop`, `controller`, `in_port`, `flood`,
    /// `group:G`, `goto:T`.
    pub actions: Vec<String>,
    #[serde(default)]
    pub cookie: u64,
    #[serde(default)]
    pub idle_timeout: u16,
    #[serde(default)]
    pub hard_timeout: u16,
    /// Refuse the rule if one of the same priority could match the same packets.
    #[serde(default)]
    pub check_overlap: bool,
}

/// A chain as `POST /api/v1/chains` takes it: a config file's `[[chains]]` entry.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ChainSpec {
    pub name: String,
    pub chain: Vec<String>,
    pub in_port: Option<u16>,
    #[serde(rename = "match")]
    pub matcher: Option<MatchSpec>,
    pub priority: Option<u16>,
}

/// The cookie of the rules of chain `name` added through the API: how its rules are
/// found again to delete it (the top bit set, so no config rule, whose cookie is 0,
/// has it).
pub(crate) fn chain_cookie(name: &str) -> u64 {
    // FNV-1a: stable across runs and builds, unlike std's hasher.
    let h = name.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    });
    h | 1 << 63
}

/// Answer `ask` against the switch.
pub(crate) fn answer(ask: Ask, sw: &mut dyn Switch) -> Answer {
    let done = |r: Result<serde_json::Value, Refusal>| r.map_or_else(Answer::Refused, Answer::Done);
    match ask {
        Ask::Observe { events_from, flows } => Answer::Observed(Box::new(Seen {
            obs: sw.observe(),
            events: sw.events(events_from).to_vec(),
            flows: if flows {
                sw.table().iter().map(|(id, r)| (id, r.clone())).collect()
            } else {
                Vec::new()
            },
        })),
        Ask::AddFlow(spec) => done(add_spec(&spec, sw)),
        Ask::DeleteFlow(id) => done(match sw.table().remove(RuleId(id)) {
            Some(_) => {
                sw.event(format!("http: rule {id} deleted"));
                Ok(serde_json::json!({ "deleted": [id] }))
            }
            None => Err(Refusal::not_found(format!("no rule {id}"))),
        }),
        Ask::AddChain(spec) => done(add_chain(&spec, sw)),
        Ask::Capture(tap) => {
            let at = tap.point.to_string();
            done(
                sw.capture(tap)
                    .map(|()| serde_json::json!({ "capturing": at }))
                    .map_err(Refusal::not_found),
            )
        }
        Ask::DeleteChain(name) => {
            let filter = DeleteFilter {
                cookie: Some((chain_cookie(&name), u64::MAX)),
                ..Default::default()
            };
            let gone = sw.table().delete(&Match::any(), &filter);
            done(if gone.is_empty() {
                Err(Refusal::not_found(format!(
                    "no chain {name:?} was added through the API"
                )))
            } else {
                sw.event(format!("http: chain {name:?} deleted ({} rules)", gone.len()));
                Ok(serde_json::json!({ "deleted_rules": gone.len() }))
            })
        }
    }
}

/// A port as a request names it: a physical port of this switch, or a service it knows.
fn port_named(s: &str, sw: &dyn Switch) -> Result<PortNo, Refusal> {
    let s = s.trim();
    let ports = sw.ports();
    let services = || ports.iter().filter(|p| matches!(p.no.kind(), PortKind::Service(_)));
    if let Some(svc) = s.strip_prefix("service:") {
        return services()
            .find(|p| p.name == svc || matches!(p.no.kind(), PortKind::Service(id) if id.to_string() == svc))
            .map(|p| p.no)
            .ok_or_else(|| {
                let known: Vec<&str> = services().map(|p| p.name.as_str()).collect();
                Refusal::bad(format!("unknown service {svc:?} (known: {})", known.join(", ")))
            });
    }
    let n = s.strip_prefix("port:").or_else(|| s.strip_prefix("out:")).unwrap_or(s);
    let n: u16 = n
        .parse()
        .map_err(|_| Refusal::bad(format!("{s:?}: a port must be a number")))?;
    let physical = ports.len() - services().count();
    if usize::from(n) >= physical {
        return Err(Refusal::bad(format!(
            "{s:?}: no port {n} (this switch has ports 0..{physical})"
        )));
    }
    Ok(PortNo::physical(n))
}

/// The checks of a request's match that the OpenFlow match cannot carry: a transport
/// port without its protocol would be left out of the rule, which would then match more.
fn check_match(m: &MatchSpec) -> Result<(), Refusal> {
    if (m.l4_src.is_some() || m.l4_dst.is_some()) && !matches!(m.ip_proto, Some(6 | 17 | 132)) {
        return Err(Refusal::bad(
            "l4_src/l4_dst need ip_proto 6 (TCP), 17 (UDP) or 132 (SCTP) and its eth_type",
        ));
    }
    Ok(())
}

/// One action as a request writes it.
fn action_named(s: &str, sw: &dyn Switch) -> Result<Action, Refusal> {
    let num = |t: &str| {
        t.parse::<u32>()
            .map_err(|_| Refusal::bad(format!("action {s:?}: {t:?} is not a number")))
    };
    Ok(match s {
        "drop" => Action::Drop,
        "controller" => Action::Controller { max_len: 0xffff },
        "in_port" => Action::Output(PortNo::IN_PORT),
        "flood" | "all" => Action::Output(PortNo::ALL),
        _ if s.starts_with("out:") || s.starts_with("port:") || s.starts_with("service:") => {
            Action::Output(port_named(s, sw)?)
        }
        _ => {
            if let Some(g) = s.strip_prefix("group:") {
                Action::Group(num(g)?)
            } else if let Some(t) = s.strip_prefix("goto:") {
                Action::Goto(u8::try_from(num(t)?).map_err(|_| Refusal::bad(format!("action {s:?}: no such table")))?)
            } else {
                return Err(Refusal::bad(format!(
                    "unknown action {s:?} (known: out:N, service:NAME, drop, controller, in_port, flood, group:G, goto:T)"
                )));
            }
        }
    })
}

/// Install `rule` as a FLOW_MOD ADD would, with OpenFlow's checks and errors.
fn install(rule: &Rule, check_overlap: bool, sw: &mut dyn Switch) -> Result<RuleId, Refusal> {
    let f = FlowMod {
        cookie: rule.cookie,
        cookie_mask: 0,
        table_id: rule.table,
        command: FlowModCommand::Add,
        idle_timeout: rule.idle_timeout,
        hard_timeout: rule.hard_timeout,
        priority: rule.priority,
        buffer_id: OFP_NO_BUFFER,
        out_port: ofpp::ANY,
        out_group: of::OFPG_ANY,
        flags: if check_overlap { of::ofpff::CHECK_OVERLAP } else { 0 },
        match_: from_match(&rule.matcher),
        instructions: to_instructions(&rule.actions, rule.matcher.ip_proto),
    };
    add_flow(&f, sw).map_err(|e| Refusal::bad(e.to_string()))
}

fn add_spec(spec: &FlowSpec, sw: &mut dyn Switch) -> Result<serde_json::Value, Refusal> {
    check_match(&spec.matcher)?;
    let mut matcher = spec
        .matcher
        .to_match("the request")
        .map_err(|e| Refusal::bad(e.to_string()))?;
    if let Some(p) = &spec.in_port {
        matcher.in_port = Some(port_named(p, sw)?);
    }
    if spec.actions.is_empty() {
        return Err(Refusal::bad("no actions: write [\"drop\"] to drop"));
    }
    let actions = spec
        .actions
        .iter()
        .map(|a| action_named(a, sw))
        .collect::<Result<Vec<_>, _>>()?;
    let mut rule = Rule::new(spec.priority, matcher, actions);
    rule.table = spec.table;
    rule.cookie = spec.cookie;
    rule.idle_timeout = spec.idle_timeout;
    rule.hard_timeout = spec.hard_timeout;
    let id = install(&rule, spec.check_overlap, sw)?;
    sw.event(format!(
        "http: rule {} added (table {}, priority {})",
        id.0, rule.table, rule.priority
    ));
    Ok(serde_json::json!({ "id": id.0 }))
}

fn add_chain(spec: &ChainSpec, sw: &mut dyn Switch) -> Result<serde_json::Value, Refusal> {
    let name = &spec.name;
    if name.is_empty() || name.contains('/') {
        return Err(Refusal::bad(format!(
            "chain name {name:?}: must be non-empty, without '/'"
        )));
    }
    if let Some(m) = &spec.matcher {
        check_match(m)?;
    }
    let ports = sw.ports();
    let nports = ports
        .iter()
        .filter(|p| matches!(p.no.kind(), PortKind::Physical(_)))
        .count() as u16;
    let hops = spec
        .chain
        .iter()
        .map(
            |h| match h.parse::<HopSpec>().map_err(|e| Refusal::bad(e.to_string()))? {
                HopSpec::Service(s) => match port_named(&format!("service:{s}"), sw)?.kind() {
                    PortKind::Service(id) => Ok(Hop::Service { id, name: s }),
                    _ => unreachable!("port_named gives services for service:"),
                },
                HopSpec::Out(p) => Ok(Hop::Out(p)),
                HopSpec::Drop => Ok(Hop::Drop),
            },
        )
        .collect::<Result<Vec<_>, _>>()?;
    let matcher = match &spec.matcher {
        Some(m) => m.to_match(name).map_err(|e| Refusal::bad(e.to_string()))?,
        None => Match::any(),
    };
    let chain = Chain {
        name: name.clone(),
        hops,
        in_port: spec.in_port,
        matcher,
        default: false,
        priority: spec.priority,
    };
    let cookie = chain_cookie(name);
    if sw.table().iter().any(|(_, r)| r.cookie == cookie) {
        return Err(Refusal::conflict(format!("a chain {name:?} exists; delete it first")));
    }
    let rules = chain::compile(std::slice::from_ref(&chain), nports).map_err(|e| Refusal::bad(e.to_string()))?;
    // A rule that would send the same packets elsewhere than a rule already there is a
    // conflict (as between two chains of a config); checked before anything goes in.
    for r in &rules {
        if let Some((id, old)) = sw
            .table()
            .iter()
            .find(|(_, o)| o.table == r.table && o.priority == r.priority && o.matcher == r.matcher)
            && old.actions != r.actions
        {
            return Err(Refusal::conflict(format!(
                "chain {name:?} conflicts with rule {} (priority {}, from {}): it sends the same packets elsewhere",
                id.0,
                r.priority,
                r.matcher.in_port.map_or_else(|| "anywhere".into(), |p| p.to_string()),
            )));
        }
    }
    let mut ids = Vec::new();
    for mut r in rules {
        r.cookie = cookie;
        ids.push(install(&r, false, sw)?.0);
    }
    sw.event(format!("http: chain {name:?} added ({} rules)", ids.len()));
    Ok(serde_json::json!({ "name": name, "rules": ids }))
}
