//! The router called directly with frames and tables, as smoltcp tests `process_*`.

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::time::Duration;

use onvm_packet::UdpSpec;
use onvm_proto::flow::{Action, Edit, FlowTable, Match, PacketKey, PortNo, Rewrite, Rule};
use onvm_proto::rss::Toeplitz;
use onvm_proto::verdict::Verdict;

use super::*;

/// Services as a map: service → instances; pick = hash % n.
#[derive(Default)]
struct Svc(HashMap<u16, Vec<u16>>);

impl Svc {
    fn with(pairs: &[(u16, &[u16])]) -> Svc {
        Svc(pairs.iter().map(|(s, i)| (*s, i.to_vec())).collect())
    }
}

impl Services for Svc {
    fn service_of(&self, id: u16) -> Option<u16> {
        self.0.iter().find(|(_, v)| v.contains(&id)).map(|(s, _)| *s)
    }
    fn instances_of(&self, service: u16) -> &[u16] {
        self.0.get(&service).map_or(&[], Vec::as_slice)
    }
    fn pick(&self, service: u16, hash: u32) -> Option<u16> {
        let v = self.0.get(&service)?;
        v.get(hash as usize % v.len()).copied()
    }
}

const NOW: Duration = Duration::from_secs(7);

fn udp(src: [u8; 4], dst_port: u16) -> Vec<u8> {
    UdpSpec::new(Ipv4Addr::from(src), Ipv4Addr::new(10, 0, 0, 2), 1000, dst_port)
        .to_vec()
        .unwrap()
}

fn rule(priority: u16, matcher: Match, actions: Vec<Action>) -> Rule {
    Rule::new(priority, matcher, actions)
}

fn out(p: PortNo) -> Vec<Action> {
    vec![Action::Output(p)]
}

fn table(rules: Vec<Rule>) -> FlowTable {
    let mut t = FlowTable::new();
    for r in rules {
        t.add(r, Duration::ZERO);
    }
    t
}

fn from_port(r: &mut Router, t: &mut FlowTable, s: &Svc, p: u16, frame: &[u8]) -> Decision {
    r.route(t, s, Ingress::Port(p), Some(frame), NOW)
}

fn from_nf(r: &mut Router, t: &mut FlowTable, s: &Svc, id: u16, v: Verdict, frame: &[u8]) -> Decision {
    let (action, dest) = v.encode();
    r.route(t, s, Ingress::Nf { id, action, dest }, Some(frame), NOW)
}

fn to(t: Target) -> Decision {
    t.into()
}

#[test]
fn a_fixed_chain_goes_port_nf_nf_port_and_learns_its_edges() {
    let mut t = table(vec![
        rule(1, Match::in_port(PortNo::physical(0)), out(PortNo::service(1))),
        rule(1, Match::in_port(PortNo::service(1)), out(PortNo::service(2))),
        rule(1, Match::in_port(PortNo::service(2)), out(PortNo::physical(1))),
    ]);
    let s = Svc::with(&[(1, &[3]), (2, &[4])]);
    let mut r = Router::new(2);
    let f = udp([10, 0, 0, 1], 80);
    assert_eq!(
        from_port(&mut r, &mut t, &s, 0, &f),
        to(Target::Instance { id: 3, hash: None })
    );
    let d = from_nf(&mut r, &mut t, &s, 3, Verdict::Next, &f);
    assert_eq!(d.plan, Plan::To(Target::Instance { id: 4, hash: None }));
    assert_eq!(
        d.learn,
        Some(Learn {
            from: 3,
            key: 0,
            service: Some(2)
        })
    );
    let d = from_nf(&mut r, &mut t, &s, 4, Verdict::Next, &f);
    assert_eq!(d.plan, Plan::To(Target::Port(1)));
    assert_eq!(
        d.learn,
        Some(Learn {
            from: 4,
            key: 0,
            service: None
        }),
        "output to a port learns an edge to the manager"
    );
    // Every packet is counted on its rule and its table, parsed or not.
    assert!(t.iter().all(|(_, r)| r.packets == 1 && r.bytes == f.len() as u64));
    assert_eq!(r.table_counts(0), (3, 3));
}

#[test]
fn the_fixed_path_needs_no_parse_even_of_garbage() {
    let mut t = table(vec![rule(
        1,
        Match::in_port(PortNo::physical(0)),
        out(PortNo::physical(1)),
    )]);
    let mut r = Router::new(2);
    let s = Svc::default();
    assert_eq!(from_port(&mut r, &mut t, &s, 0, &[0xff; 3]), to(Target::Port(1)));
    // Without its bytes (corrupt metadata) a packet cannot even be counted.
    let d = r.route(&mut t, &s, Ingress::Port(0), None, NOW);
    assert_eq!(d, to(Target::Drop(DropReason::BadBuffer)));
}

#[test]
fn higher_priority_wins_and_shadows_the_catch_all() {
    let web = Match {
        in_port: Some(PortNo::physical(0)),
        eth_type: Some(0x0800),
        ip_proto: Some(17),
        l4_dst: Some(80),
        ..Match::any()
    };
    let mut t = table(vec![
        rule(1, Match::in_port(PortNo::physical(0)), out(PortNo::physical(1))),
        rule(10, web, out(PortNo::physical(2))),
    ]);
    let mut r = Router::new(3);
    let s = Svc::default();
    assert_eq!(
        from_port(&mut r, &mut t, &s, 0, &udp([10, 0, 0, 1], 80)),
        to(Target::Port(2))
    );
    assert_eq!(
        from_port(&mut r, &mut t, &s, 0, &udp([10, 0, 0, 1], 53)),
        to(Target::Port(1))
    );
}

#[test]
fn an_equal_priority_rule_added_first_is_not_bypassed() {
    // The catch-all ties with a narrower rule added before it: packets the narrow rule
    // matches must get it (ties go to the first added), so the port has no fixed rule.
    let narrow = Match {
        in_port: Some(PortNo::physical(0)),
        eth_type: Some(0x0800),
        ..Match::any()
    };
    let mut t = table(vec![
        rule(5, narrow, out(PortNo::physical(2))),
        rule(5, Match::in_port(PortNo::physical(0)), out(PortNo::physical(1))),
    ]);
    let mut r = Router::new(3);
    let s = Svc::default();
    assert_eq!(
        from_port(&mut r, &mut t, &s, 0, &udp([10, 0, 0, 1], 80)),
        to(Target::Port(2))
    );
    assert_eq!(from_port(&mut r, &mut t, &s, 0, &[0u8; 14]), to(Target::Port(1)));
}

#[test]
fn a_new_rule_is_seen_by_the_next_packet() {
    let mut t = table(vec![rule(
        1,
        Match::in_port(PortNo::physical(0)),
        out(PortNo::physical(1)),
    )]);
    let mut r = Router::new(3);
    let s = Svc::default();
    let f = udp([10, 0, 0, 1], 80);
    assert_eq!(from_port(&mut r, &mut t, &s, 0, &f), to(Target::Port(1)));
    t.add(rule(9, Match::any(), out(PortNo::physical(2))), NOW);
    assert_eq!(from_port(&mut r, &mut t, &s, 0, &f), to(Target::Port(2)));
}

#[test]
fn goto_continues_in_a_later_table() {
    let mut later = rule(3, Match::any(), out(PortNo::physical(1)));
    later.table = 2;
    let mut t = table(vec![rule(1, Match::any(), vec![Action::Goto(2)]), later]);
    let mut r = Router::new(2);
    assert_eq!(
        from_port(&mut r, &mut t, &Svc::default(), 0, &udp([10, 0, 0, 1], 80)),
        to(Target::Port(1))
    );
    assert_eq!((r.table_counts(0), r.table_counts(2)), ((1, 1), (1, 1)));
}

#[test]
fn a_miss_in_a_later_table_drops_as_no_rule() {
    let mut t = table(vec![rule(1, Match::any(), vec![Action::Goto(3)])]);
    let mut r = Router::new(2);
    let d = from_port(&mut r, &mut t, &Svc::default(), 0, &udp([10, 0, 0, 1], 80));
    assert_eq!(d, to(Target::Drop(DropReason::NoRule)));
    assert_eq!(r.table_counts(3), (1, 0));
}

#[test]
fn table_miss_and_empty_table() {
    let mut r = Router::new(2);
    let s = Svc::default();
    let f = udp([10, 0, 0, 1], 80);
    assert_eq!(
        from_port(&mut r, &mut FlowTable::new(), &s, 0, &f),
        to(Target::Drop(DropReason::NoRule))
    );
    let mut t = table(vec![rule(0, Match::any(), vec![Action::Controller { max_len: 128 }])]);
    let Plan::To(Target::Controller { max_len, in_port, .. }) = from_port(&mut r, &mut t, &s, 1, &f).plan else {
        panic!("the table-miss rule sends to the controller");
    };
    assert_eq!((max_len, in_port), (128, PortNo::physical(1)));
}

#[test]
fn a_rule_without_output_drops_as_rule() {
    let mut t = table(vec![rule(1, Match::any(), vec![])]);
    let mut r = Router::new(2);
    let d = from_port(&mut r, &mut t, &Svc::default(), 0, &udp([10, 0, 0, 1], 80));
    assert_eq!(d, to(Target::Drop(DropReason::Rule)));
}

#[test]
fn several_outputs_and_set_fields_become_steps_in_order() {
    let ip = Ipv4Addr::new(10, 9, 9, 9).into();
    let actions = vec![
        Action::Output(PortNo::physical(1)),
        Action::Set(Rewrite::IpDst(ip)),
        Action::Output(PortNo::service(1)),
    ];
    let mut t = table(vec![rule(1, Match::any(), actions)]);
    let mut r = Router::new(2);
    let Plan::Steps { steps, in_port, rule } =
        from_port(&mut r, &mut t, &Svc::default(), 0, &udp([10, 0, 0, 1], 80)).plan
    else {
        panic!("several actions are steps");
    };
    assert_eq!(
        steps,
        vec![
            Step::Output(PortNo::physical(1)),
            Step::Set(Rewrite::IpDst(ip)),
            Step::Output(PortNo::service(1))
        ]
    );
    assert_eq!(in_port, PortNo::physical(0));
    assert!(rule.is_some());
    // A lone set-field is steps too: the packet must be rewritten before it goes.
    let mut t = table(vec![rule_with(vec![Action::Set(Rewrite::L4Dst(8080))])]);
    assert!(matches!(
        from_port(&mut r, &mut t, &Svc::default(), 0, &udp([10, 0, 0, 1], 80)).plan,
        Plan::Steps { .. }
    ));
}

fn rule_with(actions: Vec<Action>) -> Rule {
    rule(1, Match::any(), actions)
}

#[test]
fn in_port_sends_back() {
    let mut t = table(vec![rule_with(out(PortNo::IN_PORT))]);
    let mut r = Router::new(3);
    let s = Svc::default();
    let f = udp([10, 0, 0, 1], 80);
    assert_eq!(from_port(&mut r, &mut t, &s, 2, &f), to(Target::Port(2)));
    // Through the switch's step path too.
    assert_eq!(
        r.output(PortNo::IN_PORT, PortNo::physical(1), None, &s, Some(&f)),
        Plan::To(Target::Port(1))
    );
    // IN_PORT from a service port goes back to that service, and learns no edge.
    let s = Svc::with(&[(1, &[5])]);
    let d = from_nf(&mut r, &mut t, &s, 5, Verdict::Next, &f);
    assert_eq!(d, to(Target::Instance { id: 5, hash: None }));
}

#[test]
fn flood_goes_to_every_physical_port_but_the_in_port() {
    let mut t = table(vec![rule_with(out(PortNo::ALL))]);
    let mut r = Router::new(3);
    let d = from_port(&mut r, &mut t, &Svc::default(), 1, &udp([10, 0, 0, 1], 80));
    assert_eq!(
        d.plan,
        Plan::Steps {
            steps: vec![Step::Output(PortNo::physical(0)), Step::Output(PortNo::physical(2))],
            in_port: PortNo::physical(1),
            rule: None
        }
    );
}

#[test]
fn no_instance_and_no_such_port() {
    let mut t = table(vec![
        rule(1, Match::in_port(PortNo::physical(0)), out(PortNo::service(7))),
        rule(1, Match::in_port(PortNo::physical(1)), out(PortNo::physical(9))),
    ]);
    let mut r = Router::new(2);
    let s = Svc::default();
    let f = udp([10, 0, 0, 1], 80);
    assert_eq!(
        from_port(&mut r, &mut t, &s, 0, &f),
        to(Target::Drop(DropReason::NoInstance))
    );
    assert_eq!(
        from_port(&mut r, &mut t, &s, 1, &f),
        to(Target::Drop(DropReason::NoSuchPort))
    );
}

#[test]
fn a_service_with_several_instances_keeps_both_directions_of_a_flow_together() {
    let mut t = table(vec![rule_with(out(PortNo::service(1)))]);
    let s = Svc::with(&[(1, &[2, 3, 4, 5])]);
    let mut r = Router::new(2);
    let mut seen = std::collections::HashSet::new();
    for i in 0..32u8 {
        let a = udp([10, 0, 1, i], 80);
        let b = UdpSpec::new(Ipv4Addr::new(10, 0, 0, 2), Ipv4Addr::new(10, 0, 1, i), 80, 1000)
            .to_vec()
            .unwrap();
        let (da, db) = (
            from_port(&mut r, &mut t, &s, 0, &a),
            from_port(&mut r, &mut t, &s, 1, &b),
        );
        let Plan::To(Target::Instance { id, hash: Some(h) }) = da.plan else {
            panic!("balanced by hash: {da:?}");
        };
        let want = PacketKey::from_frame(PortNo::physical(0), &a)
            .flow_tuple()
            .unwrap()
            .hash(&Toeplitz::symmetric());
        assert_eq!(h, want, "the hash the switch writes is the flow's");
        assert_eq!(db.plan, da.plan, "the reverse direction lands on the same instance");
        seen.insert(id);
    }
    assert!(seen.len() > 1, "flows spread over instances: {seen:?}");
}

#[test]
fn nf_verdicts() {
    let mut t = FlowTable::new();
    let s = Svc::with(&[(1, &[2]), (3, &[4])]);
    let mut r = Router::new(2);
    let f = udp([10, 0, 0, 1], 80);
    let nf = |r: &mut Router, t: &mut FlowTable, v| from_nf(r, t, &s, 2, v, &f);
    assert_eq!(nf(&mut r, &mut t, Verdict::Drop), to(Target::Drop(DropReason::Nf)));
    assert_eq!(nf(&mut r, &mut t, Verdict::Out(1)), to(Target::Port(1)));
    assert_eq!(
        nf(&mut r, &mut t, Verdict::Out(2)),
        to(Target::Drop(DropReason::NoSuchPort))
    );
    assert_eq!(
        nf(&mut r, &mut t, Verdict::ToInstance(4)),
        to(Target::Instance { id: 4, hash: None })
    );
    assert_eq!(
        nf(&mut r, &mut t, Verdict::ToInstance(9)),
        to(Target::Drop(DropReason::NoInstance))
    );
    let d = nf(&mut r, &mut t, Verdict::ToService(3));
    assert_eq!(d.plan, Plan::To(Target::Instance { id: 4, hash: None }));
    assert_eq!(
        d.learn,
        Some(Learn {
            from: 2,
            key: 3,
            service: Some(3)
        }),
        "what an NF sends to a service by name may take an edge"
    );
    assert_eq!(nf(&mut r, &mut t, Verdict::Next), to(Target::Drop(DropReason::NoRule)));
    // A packet the NF library gives back because an edge to instance 4 was full is
    // instance 4's full ring, not the NF's drop.
    assert_eq!(nf(&mut r, &mut t, Verdict::EdgeFull(4)), to(Target::Overflow { id: 4 }));
    // A verdict that names nothing, and an NF the registry does not know.
    let bad = r.route(
        &mut t,
        &s,
        Ingress::Nf {
            id: 2,
            action: 0xee,
            dest: 0,
        },
        Some(&f),
        NOW,
    );
    assert_eq!(bad, to(Target::Drop(DropReason::BadVerdict)));
    let gone = from_nf(&mut r, &mut t, &s, 77, Verdict::Next, &f);
    assert_eq!(gone, to(Target::Drop(DropReason::NoInstance)));
}

#[test]
fn edges_are_learnt_only_from_a_fixed_rule() {
    let s = Svc::with(&[(1, &[2]), (2, &[3])]);
    let f = udp([10, 0, 0, 1], 80);
    // A rule that matches only some of the NF's packets: no edge (others go elsewhere).
    let some = Match {
        in_port: Some(PortNo::service(1)),
        eth_type: Some(0x0800),
        ..Match::any()
    };
    let mut t = table(vec![rule(1, some.clone(), out(PortNo::service(2)))]);
    let mut r = Router::new(2);
    let d = from_nf(&mut r, &mut t, &s, 2, Verdict::Next, &f);
    assert_eq!(
        (d.plan, d.learn),
        (Plan::To(Target::Instance { id: 3, hash: None }), None)
    );
    // A catch-all outranked by a narrower rule: no edge either.
    let mut t = table(vec![
        rule(1, Match::in_port(PortNo::service(1)), out(PortNo::service(2))),
        rule(
            2,
            Match {
                l4_dst: Some(53),
                ..some
            },
            out(PortNo::physical(0)),
        ),
    ]);
    assert_eq!(from_nf(&mut r, &mut t, &s, 2, Verdict::Next, &f).learn, None);
}

#[test]
fn rule_counters_use_the_callers_clock() {
    let mut t = table(vec![rule_with(out(PortNo::physical(1)))]);
    let id = t.iter().next().unwrap().0;
    t.iter().next().unwrap();
    let mut r = Router::new(2);
    from_port(&mut r, &mut t, &Svc::default(), 0, &udp([10, 0, 0, 1], 80));
    let mut idle = t.get(id).unwrap().clone();
    idle.idle_timeout = 1;
    t.add(idle, Duration::ZERO);
    // Hit at NOW (7 s): idle 1 s means it lives until 8 s.
    from_port(&mut r, &mut t, &Svc::default(), 0, &udp([10, 0, 0, 1], 80));
    assert!(t.expire(NOW + Duration::from_millis(500)).is_empty());
    assert_eq!(t.expire(NOW + Duration::from_secs(2)).len(), 1);
}

#[test]
fn new_match_fields_route_packets_and_metadata_starts_at_zero() {
    use onvm_proto::flow::{MaskedBits, VID_PRESENT};
    let untagged = Match {
        vlan_vid: Some(MaskedBits::exact(0)),
        ip_dscp: Some(0),
        eth_type: Some(0x0800),
        ..Match::any()
    };
    let tagged = Match {
        vlan_vid: Some(MaskedBits::masked(VID_PRESENT, VID_PRESENT)),
        ..Match::any()
    };
    // Metadata and tunnel ID are 0 for every packet entering table 0.
    let zero = Match {
        metadata: Some(MaskedBits::exact(0)),
        tunnel_id: Some(MaskedBits::exact(0)),
        ..Match::in_port(PortNo::physical(0))
    };
    let mut t = table(vec![
        rule(30, untagged, out(PortNo::physical(1))),
        rule(20, tagged, out(PortNo::physical(2))),
        rule(10, zero, out(PortNo::physical(3))),
    ]);
    let mut r = Router::new(4);
    let s = Svc::default();
    let plain = udp([10, 0, 0, 1], 53);
    assert_eq!(from_port(&mut r, &mut t, &s, 0, &plain), to(Target::Port(1)));
    let mut vlan = plain.clone();
    vlan.splice(12..12, [0x81, 0x00, 0x00, 0x07]);
    assert_eq!(from_port(&mut r, &mut t, &s, 0, &vlan), to(Target::Port(2)));
    // Not IP, untagged: only the metadata rule is left, and it matches.
    let mut arp = plain.clone();
    arp[12..14].copy_from_slice(&[0x08, 0x06]);
    assert_eq!(from_port(&mut r, &mut t, &s, 0, &arp), to(Target::Port(3)));
    // From another port nothing matches.
    assert_eq!(
        from_port(&mut r, &mut t, &s, 1, &arp),
        to(Target::Drop(DropReason::NoRule))
    );
}

#[test]
fn a_plain_output_to_the_in_port_is_dropped_as_output_in_port() {
    // `output:1` for a packet from port 1: OpenFlow wants IN_PORT for that (OVS drops it).
    let mut t = table(vec![
        rule(1, Match::in_port(PortNo::physical(1)), out(PortNo::physical(1))),
        rule(1, Match::in_port(PortNo::physical(0)), out(PortNo::physical(1))),
    ]);
    let mut r = Router::new(3);
    let s = Svc::default();
    let f = udp([10, 0, 0, 1], 80);
    // The fixed-rule path (a catch-all per port)...
    assert_eq!(
        from_port(&mut r, &mut t, &s, 1, &f),
        to(Target::Drop(DropReason::OutputInPort))
    );
    assert_eq!(from_port(&mut r, &mut t, &s, 0, &f), to(Target::Port(1)));
    // ... the lookup path ...
    let mut t = table(vec![rule(
        1,
        Match {
            in_port: Some(PortNo::physical(2)),
            eth_type: Some(0x0800),
            ip_proto: Some(17),
            ..Match::any()
        },
        out(PortNo::physical(2)),
    )]);
    assert_eq!(
        from_port(&mut r, &mut t, &s, 2, &f),
        to(Target::Drop(DropReason::OutputInPort))
    );
    // ... and a step of several (the switch's, and a PACKET_OUT's).
    assert_eq!(
        r.output(PortNo::physical(2), PortNo::physical(2), None, &s, Some(&f)),
        Plan::To(Target::Drop(DropReason::OutputInPort))
    );
    assert_eq!(
        r.output(PortNo::physical(0), PortNo::physical(2), None, &s, Some(&f)),
        Plan::To(Target::Port(0))
    );
}

#[test]
fn instructions_become_steps_in_openflows_order() {
    let mut r = rule(
        1,
        Match::any(),
        vec![Action::Edit(Edit::PushVlan(0x8100)), Action::Goto(2)],
    );
    r.instructions = onvm_proto::flow::Instructions {
        meter: Some(4),
        clear: true,
        write: vec![Action::Output(PortNo::physical(1)), Action::Group(3)],
        metadata: Some((5, 0xff)),
    };
    assert_eq!(
        Step::of_rule(&r),
        vec![
            Step::Meter(4),
            Step::Edit(Edit::PushVlan(0x8100)),
            Step::Clear,
            Step::Write(Action::Output(PortNo::physical(1))),
            Step::Write(Action::Group(3)),
            Step::Metadata { value: 5, mask: 0xff },
            Step::Table(2),
        ]
    );
    let sends: Vec<bool> = Step::of_rule(&r).iter().map(Step::sends).collect();
    assert_eq!(sends, [false, false, false, false, false, false, true]);
}

#[test]
fn a_rule_with_instructions_is_steps_and_a_plain_one_stays_one_destination() {
    let f = udp([10, 0, 0, 1], 80);
    let s = Svc::default();
    let mut r = Router::new(2);
    // A metered output is steps (the meter runs first); so is a group.
    let mut metered = rule_with(out(PortNo::physical(1)));
    metered.instructions.meter = Some(1);
    let mut t = table(vec![metered]);
    assert!(matches!(from_port(&mut r, &mut t, &s, 0, &f).plan, Plan::Steps { .. }));
    let mut t = table(vec![rule_with(vec![Action::Group(1)])]);
    assert!(matches!(from_port(&mut r, &mut t, &s, 0, &f).plan, Plan::Steps { .. }));
    // A plain output is one destination from a port, but steps in the middle of a
    // pipeline (the packet may carry an action set that runs after it).
    let mut t = table(vec![rule(1, Match::any(), out(PortNo::physical(1)))]);
    assert_eq!(from_port(&mut r, &mut t, &s, 0, &f), to(Target::Port(1)));
    let key = PacketKey::from_frame(PortNo::physical(0), &f);
    assert_eq!(
        r.lookup(0, &mut t, &s, &key, &f, NOW, true),
        Plan::Steps {
            steps: vec![Step::Output(PortNo::physical(1))],
            in_port: PortNo::physical(0),
            rule: t.iter().next().map(|(id, _)| id),
        }
    );
}
