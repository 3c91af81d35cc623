//! The agent over real loopback TCP, with a switch whose table is real and whose ports
//! are a list: what the protocol promises a controller (roles, errors, multipart parts,
//! service connections, bad input) without a manager around it. Packets through the
//! agent are tested with the whole manager (tests of `onvm-cli`).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use onvm_openflow::{
    FlowMod, FlowModCommand, FlowStatsRequest, Hello, Instruction, Message, MultipartReplyBody, MultipartRequest,
    MultipartRequestBody, OFP_NO_BUFFER, OFPG_ANY, OFPMPF_MORE, OFPTT_ALL, PacketOut, Role, RoleMsg, VersionBitmap,
    frame_len, ofpbrc, ofpet, ofpff, ofpfmfc, ofphfc, ofpp, ofppr, ofprrfc,
};
use onvm_proto::flow::{FlowTable, N_TABLES, PortNo};
use onvm_shm::Buf;

use super::*;
use crate::control_plane::InjectError;

/// A switch whose table is real and whose ports are a list; shared with `tests_async.rs`.
#[derive(Default)]
pub(super) struct FakeSwitch {
    pub(super) table: FlowTable,
    pub(super) ports: Vec<PortView>,
    pub(super) injected: Vec<(PortNo, Vec<Out>, Vec<u8>)>,
    pub(super) events: Vec<String>,
    /// The most a buffer holds (a region's data room); `None`: no limit.
    pub(super) room: Option<usize>,
}

impl Switch for FakeSwitch {
    fn table(&mut self) -> &mut FlowTable {
        &mut self.table
    }
    fn now(&self) -> Duration {
        Duration::from_secs(10)
    }
    fn ports(&self) -> Vec<PortView> {
        self.ports.clone()
    }
    fn port_counters(&self, _: PortNo) -> PortCounters {
        PortCounters::default()
    }
    fn table_counts(&self, _: u8) -> (u64, u64) {
        (0, 0)
    }
    fn inject(&mut self, packet: Payload, in_port: PortNo, outs: &[Out]) -> Result<(), InjectError> {
        let Payload::Data(d) = packet else {
            return Err(InjectError::CopiesLost(1));
        };
        if self.room.is_some_and(|room| d.len() > room) {
            return Err(InjectError::NoBuffer { len: d.len() });
        }
        self.injected.push((in_port, outs.to_vec(), d));
        Ok(())
    }
    fn release(&mut self, _: Buf, _: bool) {}
    fn restore_config_rules(&mut self) {
        self.table = FlowTable::new();
    }
    fn event(&mut self, text: String) {
        self.events.push(text);
    }
    fn observe(&self) -> crate::control_plane::Observation {
        crate::control_plane::Observation::default()
    }
    fn events(&self, from: usize) -> &[String] {
        self.events.get(from..).unwrap_or_default()
    }
    fn capture(&mut self, _: crate::capture::Tap) -> Result<(), String> {
        Err("no captures in this fake".into())
    }
}

/// A test controller: a blocking TCP client that speaks through the codec; shared with
/// `tests_async.rs`.
pub(super) struct Peer {
    s: TcpStream,
    rx: Vec<u8>,
}

impl Peer {
    pub(super) fn send(&mut self, xid: u32, m: &Message) {
        self.raw(&m.encode(xid).unwrap());
    }

    pub(super) fn raw(&mut self, bytes: &[u8]) {
        self.s.write_all(bytes).unwrap();
    }

    /// The next message, polling the agent meanwhile; `None` after `wait`.
    pub(super) fn recv(&mut self, agent: &mut Agent, sw: &mut FakeSwitch, wait: Duration) -> Option<(u32, Message)> {
        let t = Instant::now();
        loop {
            if let Ok(Some(n)) = frame_len(&self.rx) {
                let bytes: Vec<u8> = self.rx.drain(..n).collect();
                return Some(Message::decode(&bytes).expect("the agent sends what it can decode"));
            }
            if t.elapsed() > wait {
                return None;
            }
            agent.poll(sw);
            let mut b = [0u8; 16384];
            match self.s.read(&mut b) {
                Ok(0) => return None,
                Ok(n) => self.rx.extend_from_slice(&b[..n]),
                Err(_) => {}
            }
        }
    }

    pub(super) fn expect(&mut self, agent: &mut Agent, sw: &mut FakeSwitch) -> (u32, Message) {
        self.recv(agent, sw, Duration::from_secs(5))
            .expect("an answer from the agent")
    }

    pub(super) fn error_of(&mut self, agent: &mut Agent, sw: &mut FakeSwitch) -> (u16, u16) {
        match self.expect(agent, sw) {
            (_, Message::Error(e)) => (e.ty, e.code),
            (_, other) => panic!("expected an ERROR, got {other:?}"),
        }
    }

    /// Sends a BARRIER and returns what came before its reply.
    pub(super) fn until_barrier(&mut self, agent: &mut Agent, sw: &mut FakeSwitch) -> Vec<Message> {
        self.send(0xb0b, &Message::BarrierRequest);
        let mut got = Vec::new();
        loop {
            match self.expect(agent, sw) {
                (0xb0b, Message::BarrierReply) => return got,
                (_, m) => got.push(m),
            }
        }
    }
}

const SHORT: Duration = Duration::from_millis(100);

/// An agent listening on a loopback port, and a peer connected through HELLO.
fn setup() -> (Agent, FakeSwitch, Peer) {
    setup_with(FakeSwitch::default(), &[1, 4])
}

/// An agent listening on a loopback port over `sw`, and a peer connected through a HELLO
/// that offers `versions`.
pub(super) fn setup_with(mut sw: FakeSwitch, versions: &[u8]) -> (Agent, FakeSwitch, Peer) {
    let mut agent = Agent::new(OpenFlowOptions {
        listen: Some("127.0.0.1:0".parse().unwrap()),
        datapath_id: 7,
        ..OpenFlowOptions::default()
    })
    .unwrap();
    let peer = connect_with(&mut agent, &mut sw, versions);
    (agent, sw, peer)
}

fn connect(agent: &mut Agent, sw: &mut FakeSwitch) -> Peer {
    connect_with(agent, sw, &[1, 4])
}

fn connect_with(agent: &mut Agent, sw: &mut FakeSwitch, versions: &[u8]) -> Peer {
    let s = TcpStream::connect(agent.local_addr().unwrap()).unwrap();
    s.set_read_timeout(Some(Duration::from_millis(5))).unwrap();
    let mut p = Peer { s, rx: Vec::new() };
    p.send(1, &Message::Hello(Hello::ours(VersionBitmap::of(versions))));
    match p.expect(agent, sw) {
        (_, Message::Hello(h)) => assert!(h.bitmap.unwrap().supports(4)),
        other => panic!("expected HELLO, got {other:?}"),
    }
    p
}

fn flow_mod(command: FlowModCommand, priority: u16, in_port: u32, out: u32) -> FlowMod {
    FlowMod {
        cookie: 0,
        cookie_mask: 0,
        table_id: 0,
        command,
        idle_timeout: 0,
        hard_timeout: 0,
        priority,
        buffer_id: OFP_NO_BUFFER,
        out_port: ofpp::ANY,
        out_group: OFPG_ANY,
        flags: 0,
        match_: onvm_openflow::Match {
            in_port: Some(in_port),
            ..onvm_openflow::Match::default()
        },
        instructions: vec![Instruction::ApplyActions(vec![onvm_openflow::Action::Output {
            port: out,
            max_len: 0,
        }])],
    }
}

#[test]
fn features_echo_barrier_and_config() {
    let (mut agent, mut sw, mut p) = setup();
    p.send(2, &Message::FeaturesRequest);
    match p.expect(&mut agent, &mut sw) {
        (2, Message::FeaturesReply(f)) => {
            assert_eq!(
                (f.datapath_id, f.n_tables, f.n_buffers),
                (7, N_TABLES, N_BUFFERS as u32)
            );
        }
        other => panic!("{other:?}"),
    }
    p.send(3, &Message::EchoRequest(b"ping".to_vec()));
    assert_eq!(p.expect(&mut agent, &mut sw), (3, Message::EchoReply(b"ping".to_vec())));
    p.send(
        4,
        &Message::SetConfig(SwitchConfig {
            flags: 0,
            miss_send_len: 200,
        }),
    );
    p.send(5, &Message::GetConfigRequest);
    assert_eq!(
        p.expect(&mut agent, &mut sw),
        (
            5,
            Message::GetConfigReply(SwitchConfig {
                flags: 0,
                miss_send_len: 200
            })
        )
    );
    p.send(6, &Message::BarrierRequest);
    assert_eq!(p.expect(&mut agent, &mut sw), (6, Message::BarrierReply));
}

#[test]
fn bad_input_gets_an_error_and_the_connection_lives_on() {
    let (mut agent, mut sw, mut p) = setup();
    // An unknown message type.
    p.s.write_all(&[4, 0x63, 0, 8, 0, 0, 0, 9]).unwrap();
    assert_eq!(p.error_of(&mut agent, &mut sw), (ofpet::BAD_REQUEST, ofpbrc::BAD_TYPE));
    // A message only a switch sends.
    p.send(10, &Message::BarrierReply);
    assert_eq!(p.error_of(&mut agent, &mut sw), (ofpet::BAD_REQUEST, ofpbrc::BAD_TYPE));
    // A flow to a table that does not exist; a duplicate with CHECK_OVERLAP.
    let mut f = flow_mod(FlowModCommand::Add, 5, 1, 2);
    f.table_id = N_TABLES;
    p.send(11, &Message::FlowMod(f));
    assert_eq!(
        p.error_of(&mut agent, &mut sw),
        (ofpet::FLOW_MOD_FAILED, ofpfmfc::BAD_TABLE_ID)
    );
    p.send(12, &Message::FlowMod(flow_mod(FlowModCommand::Add, 5, 1, 2)));
    let mut again = flow_mod(FlowModCommand::Add, 5, 1, 3);
    again.flags = ofpff::CHECK_OVERLAP;
    p.send(13, &Message::FlowMod(again));
    assert_eq!(
        p.error_of(&mut agent, &mut sw),
        (ofpet::FLOW_MOD_FAILED, ofpfmfc::OVERLAP)
    );
    // A PACKET_OUT naming a buffer that does not exist.
    p.send(
        14,
        &Message::PacketOut(PacketOut {
            buffer_id: 77,
            in_port: ofpp::CONTROLLER,
            actions: vec![],
            data: vec![],
        }),
    );
    assert_eq!(
        p.error_of(&mut agent, &mut sw),
        (ofpet::BAD_REQUEST, ofpbrc::BUFFER_UNKNOWN)
    );
    // Still served: the one good rule is there, and barriers are answered.
    p.send(15, &Message::BarrierRequest);
    assert_eq!(p.expect(&mut agent, &mut sw), (15, Message::BarrierReply));
    assert_eq!(sw.table.len(), 1);
    let rule = sw.table.iter().next().unwrap().1;
    assert_eq!(rule.actions, [onvm_proto::flow::Action::Output(PortNo::physical(1))]);
}

#[test]
fn a_peer_without_our_version_is_refused_and_closed() {
    let (mut agent, mut sw, _) = setup();
    let s = TcpStream::connect(agent.local_addr().unwrap()).unwrap();
    s.set_read_timeout(Some(Duration::from_millis(5))).unwrap();
    let mut p = Peer { s, rx: Vec::new() };
    p.send(1, &Message::Hello(Hello::ours(VersionBitmap::of(&[1]))));
    assert!(matches!(p.expect(&mut agent, &mut sw), (_, Message::Hello(_))));
    assert_eq!(
        p.error_of(&mut agent, &mut sw),
        (ofpet::HELLO_FAILED, ofphfc::INCOMPATIBLE)
    );
    assert!(p.recv(&mut agent, &mut sw, SHORT).is_none(), "the connection closes");
    // Bytes that cannot be framed (a length below the header's) close it too.
    let mut p = connect(&mut agent, &mut sw);
    p.s.write_all(&[4, 0, 0, 2, 0, 0, 0, 0]).unwrap();
    assert!(matches!(p.expect(&mut agent, &mut sw), (_, Message::Error(_))));
    assert!(p.recv(&mut agent, &mut sw, SHORT).is_none());
}

#[test]
fn roles_master_slave_and_stale_generations() {
    let (mut agent, mut sw, mut a) = setup();
    let mut b = connect(&mut agent, &mut sw);
    let role = |role, generation_id| Message::RoleRequest(RoleMsg { role, generation_id });
    a.send(1, &role(Role::Master, 10));
    assert_eq!(
        a.expect(&mut agent, &mut sw),
        (
            1,
            Message::RoleReply(RoleMsg {
                role: Role::Master,
                generation_id: 10
            })
        )
    );
    // B takes over as master: A becomes a slave and may not change the table.
    b.send(2, &role(Role::Master, 11));
    assert!(matches!(b.expect(&mut agent, &mut sw), (2, Message::RoleReply(r)) if r.role == Role::Master));
    a.send(3, &Message::FlowMod(flow_mod(FlowModCommand::Add, 1, 1, 2)));
    assert_eq!(a.error_of(&mut agent, &mut sw), (ofpet::BAD_REQUEST, ofpbrc::IS_SLAVE));
    assert!(sw.table.is_empty());
    a.send(4, &role(Role::NoChange, 0));
    assert!(matches!(a.expect(&mut agent, &mut sw), (4, Message::RoleReply(r)) if r.role == Role::Slave));
    // An older generation is stale.
    a.send(5, &role(Role::Master, 9));
    assert_eq!(
        a.error_of(&mut agent, &mut sw),
        (ofpet::ROLE_REQUEST_FAILED, ofprrfc::STALE)
    );
    b.send(6, &Message::FlowMod(flow_mod(FlowModCommand::Add, 1, 1, 2)));
    b.send(7, &Message::BarrierRequest);
    assert_eq!(b.expect(&mut agent, &mut sw), (7, Message::BarrierReply));
    assert_eq!(sw.table.len(), 1);
}

#[test]
fn long_flow_dumps_come_in_parts_and_deletes_filter() {
    let (mut agent, mut sw, mut p) = setup();
    let n = FLOWS_PER_PART * 2 + 5;
    for i in 0..n {
        p.send(1, &Message::FlowMod(flow_mod(FlowModCommand::Add, i as u16, 1, 2)));
    }
    p.send(2, &Message::BarrierRequest);
    assert_eq!(p.expect(&mut agent, &mut sw), (2, Message::BarrierReply));
    let all = FlowStatsRequest {
        table_id: OFPTT_ALL,
        out_port: ofpp::ANY,
        out_group: OFPG_ANY,
        cookie: 0,
        cookie_mask: 0,
        match_: onvm_openflow::Match::default(),
    };
    p.send(
        3,
        &Message::MultipartRequest(MultipartRequest {
            flags: 0,
            body: MultipartRequestBody::Flow(all.clone()),
        }),
    );
    let mut got = 0;
    let mut parts = 0;
    loop {
        let (xid, Message::MultipartReply(r)) = p.expect(&mut agent, &mut sw) else {
            panic!("expected a multipart reply")
        };
        assert_eq!(xid, 3);
        let MultipartReplyBody::Flow(f) = r.body else { panic!() };
        got += f.len();
        parts += 1;
        if r.flags & OFPMPF_MORE == 0 {
            break;
        }
    }
    assert_eq!((got, parts), (n, 3));
    // Delete only what outputs to port 3 (nothing), then what has priority 0 exactly.
    let mut d = flow_mod(FlowModCommand::Delete, 0, 1, 2);
    d.out_port = 3;
    d.table_id = OFPTT_ALL;
    p.send(4, &Message::FlowMod(d));
    let mut d = flow_mod(FlowModCommand::DeleteStrict, 0, 1, 2);
    d.table_id = 0;
    p.send(5, &Message::FlowMod(d));
    p.send(6, &Message::BarrierRequest);
    assert_eq!(p.expect(&mut agent, &mut sw), (6, Message::BarrierReply));
    assert_eq!(sw.table.len(), n - 1);
}

#[test]
fn tools_get_no_async_messages_until_they_ask_for_a_role() {
    let (mut agent, mut sw, mut tool) = setup();
    let mut ctl = connect(&mut agent, &mut sw);
    ctl.send(
        1,
        &Message::RoleRequest(RoleMsg {
            role: Role::Equal,
            generation_id: 0,
        }),
    );
    assert!(matches!(ctl.expect(&mut agent, &mut sw), (1, Message::RoleReply(_))));
    // A service comes up: PORT_STATUS ADD to the controller only.
    sw.ports.push(PortView {
        no: PortNo::service(3),
        name: "fw".into(),
        up: true,
    });
    match ctl.expect(&mut agent, &mut sw) {
        (_, Message::PortStatus(s)) => {
            assert_eq!(
                (s.reason, s.desc.port_no, s.desc.name.as_str()),
                (ofppr::ADD, 0x1003, "fw")
            );
        }
        other => panic!("{other:?}"),
    }
    assert!(
        tool.recv(&mut agent, &mut sw, SHORT).is_none(),
        "ovs-ofctl would fail on it"
    );
    assert!(agent.has_controller());
    // PACKET_OUT carried data goes to the switch with its in_port and outputs.
    ctl.send(
        2,
        &Message::PacketOut(PacketOut {
            buffer_id: OFP_NO_BUFFER,
            in_port: 1,
            actions: vec![
                onvm_openflow::Action::Output {
                    port: ofpp::FLOOD,
                    max_len: 0,
                },
                onvm_openflow::Action::Output {
                    port: 0x1003,
                    max_len: 0,
                },
            ],
            data: vec![1, 2, 3],
        }),
    );
    ctl.send(3, &Message::BarrierRequest);
    assert_eq!(ctl.expect(&mut agent, &mut sw), (3, Message::BarrierReply));
    assert_eq!(
        sw.injected,
        [(
            PortNo::physical(0),
            vec![Out::Flood, Out::Port(PortNo::service(3))],
            vec![1, 2, 3]
        )]
    );
}

/// A peer that connects and never says HELLO (or never finishes its TLS handshake)
/// is closed after HELLO_WITHIN, so it cannot hold one of the MAX_CONNS slots for ever.
#[test]
fn a_peer_that_never_says_hello_is_closed() {
    let (mut agent, mut sw, mut first) = setup();
    let s = TcpStream::connect(agent.local_addr().unwrap()).unwrap();
    s.set_read_timeout(Some(Duration::from_millis(5))).unwrap();
    let mut mute = Peer { s, rx: Vec::new() };
    // Accepted, greeted, and kept while its time has not come.
    assert!(matches!(
        mute.recv(&mut agent, &mut sw, SHORT),
        Some((_, Message::Hello(_)))
    ));
    assert_eq!(agent.conns.len(), 2);
    let k = agent.conns.iter().position(|c| !c.ready).expect("the mute peer");
    agent.conns[k].opened -= HELLO_WITHIN;
    agent.poll(&mut sw);
    assert_eq!(agent.conns.len(), 1, "closed");
    assert!(
        sw.events.iter().any(|e| e.contains("no HELLO within")),
        "{:?}",
        sw.events
    );
    // The peer that did say HELLO is served on.
    first.send(9, &Message::BarrierRequest);
    assert_eq!(first.expect(&mut agent, &mut sw), (9, Message::BarrierReply));
}

#[test]
fn connections_beyond_the_limit_are_closed() {
    let (mut agent, mut sw, _first) = setup();
    let mut peers: Vec<Peer> = (1..MAX_CONNS).map(|_| connect(&mut agent, &mut sw)).collect();
    let s = TcpStream::connect(agent.local_addr().unwrap()).unwrap();
    s.set_read_timeout(Some(Duration::from_millis(5))).unwrap();
    let mut extra = Peer { s, rx: Vec::new() };
    assert!(extra.recv(&mut agent, &mut sw, SHORT).is_none(), "no HELLO: closed");
    assert!(
        sw.events.iter().any(|e| e.contains("connections open")),
        "{:?}",
        sw.events
    );
    // The others are still served.
    let last = peers.last_mut().unwrap();
    last.send(9, &Message::BarrierRequest);
    assert_eq!(last.expect(&mut agent, &mut sw), (9, Message::BarrierReply));
}

#[test]
fn every_supported_match_field_is_installed_and_read_back_as_sent() {
    let (mut agent, mut sw, mut p) = setup();
    let wide = super::translate::tests::wide_matches();
    for (i, m) in wide.iter().enumerate() {
        let mut f = flow_mod(FlowModCommand::Add, 100 + i as u16, 1, 2);
        f.match_ = m.clone();
        p.send(10 + i as u32, &Message::FlowMod(f));
    }
    p.send(2, &Message::BarrierRequest);
    assert_eq!(
        p.expect(&mut agent, &mut sw),
        (2, Message::BarrierReply),
        "no flow-mod refused"
    );
    p.send(
        3,
        &Message::MultipartRequest(MultipartRequest {
            flags: 0,
            body: MultipartRequestBody::Flow(FlowStatsRequest {
                table_id: OFPTT_ALL,
                out_port: ofpp::ANY,
                out_group: OFPG_ANY,
                cookie: 0,
                cookie_mask: 0,
                match_: onvm_openflow::Match::default(),
            }),
        }),
    );
    let (3, Message::MultipartReply(r)) = p.expect(&mut agent, &mut sw) else {
        panic!("expected the flow stats")
    };
    let MultipartReplyBody::Flow(flows) = r.body else {
        panic!()
    };
    let mut got: Vec<_> = flows.iter().map(|f| (f.priority, f.match_.clone())).collect();
    got.sort_by_key(|(p, _)| *p);
    let want: Vec<_> = wide
        .iter()
        .enumerate()
        .map(|(i, m)| (100 + i as u16, m.clone()))
        .collect();
    assert_eq!(got, want);

    // A flow-mod whose prerequisites are missing is refused with BAD_PREREQ.
    let mut f = flow_mod(FlowModCommand::Add, 1, 1, 2);
    f.match_ = onvm_openflow::Match {
        eth_type: Some(onvm_openflow::ETH_TYPE_IPV4),
        icmpv4_type: Some(8),
        ..onvm_openflow::Match::default()
    };
    p.send(4, &Message::FlowMod(f));
    assert_eq!(
        p.error_of(&mut agent, &mut sw),
        (ofpet::BAD_MATCH, onvm_openflow::ofpbmc::BAD_PREREQ)
    );
    assert_eq!(sw.table.len(), wide.len());
}
