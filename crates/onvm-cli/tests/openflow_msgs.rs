//! The OpenFlow messages production controllers send on connect and the errors they
//! rely on, against the real manager: SET_ASYNC / GET_ASYNC (and the PORT_STATUS they
//! let through when an NF starts), TABLE_MOD, a multipart request split with REQ_MORE,
//! and the errors `ovs-ofctl -O OpenFlow13` gets for stats of a table that does not
//! exist and for a PACKET_OUT from a port that cannot be or too long for a buffer.
//!
//! Needs `ovs-ofctl` (Debian `openvswitch-common`); without it each test fails, naming
//! it (onvm-testkit; `ONVM_ALLOW_SKIP=1` skips instead). `ovs-ofctl` 3.1 sends
//! TABLE_MOD only for OpenFlow 1.1/1.2 settings and SET_ASYNC not at all, so those go
//! from a controller written here with the codec, whose GET_ASYNC reply Open vSwitch's
//! decoder (`ofp-print`) must read.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::Command;
use std::time::{Duration, Instant};

use onvm_openflow::{
    AsyncConfig, Hello, Message, MultipartReplyBody, TableMod, VersionBitmap, frame_len, ofpmp, ofppr, ofpt, ofptmfc,
};

use common::openflow::{have_ovs_ofctl, listen_socket, ofctl, spawn_mgr};
use common::{Proc, SOON, TempDir, read_pcap, start_forwarder, stop_cleanly};

/// `onvm mgr` with two pcapout ports (OpenFlow ports 1 and 2) and a listener on a free
/// loopback port; its address.
fn start_mgr(dir: &TempDir) -> (Proc, SocketAddr) {
    let (o1, o2) = (
        format!("pcapout:{}", dir.join("o1.pcap").display()),
        format!("pcapout:{}", dir.join("o2.pcap").display()),
    );
    let mgr = spawn_mgr(dir, &["-p", &o1, "-p", &o2, "--openflow-listen", "ptcp:0:127.0.0.1"]);
    let addr = listen_socket(&mgr);
    (mgr, addr)
}

/// [`ofctl`] at `tcp:ADDR`.
fn ofctl_at(cmd: &str, addr: SocketAddr, args: &[&str]) -> (bool, String) {
    ofctl(cmd, &format!("tcp:{addr}"), args)
}

#[test]
fn ovs_ofctl_gets_bad_table_id_bad_port_and_bad_len() {
    if !have_ovs_ofctl() {
        return;
    }
    let _serial = common::serial();
    let dir = TempDir::new("of-msgs-errors");
    let (mut mgr, sw) = start_mgr(&dir);

    // Stats of table 9 (this switch has 0..8): an error, not an empty reply.
    for cmd in ["dump-flows", "dump-aggregate"] {
        let (_, text) = ofctl_at(cmd, sw, &["table=9"]);
        assert!(text.contains("OFPBRC_BAD_TABLE_ID"), "{cmd} table=9:\n{text}");
        let (ok, text) = ofctl_at(cmd, sw, &["table=7"]);
        assert!(ok && !text.contains("OFPT_ERROR"), "{cmd} table=7:\n{text}");
    }

    // PACKET_OUT: from a port number no port can have, or from LOCAL (this switch has
    // none): BAD_PORT; 65,000 bytes, more than a packet buffer holds: BAD_LEN. Only
    // the good one leaves port 2.
    let frame = format!("{}0800{}", "ff".repeat(12), "00".repeat(46));
    let big = format!("{}0800{}", "ff".repeat(12), "00".repeat(65_000 - 14));
    for (in_port, data, want) in [
        ("65000", &frame, Some("OFPBRC_BAD_PORT")),
        ("local", &frame, Some("OFPBRC_BAD_PORT")),
        ("controller", &big, Some("OFPBRC_BAD_LEN")),
        ("1", &frame, None),
    ] {
        let (ok, text) = ofctl_at(
            "packet-out",
            sw,
            &[&format!("in_port={in_port} packet={data} actions=output:2")],
        );
        match want {
            Some(err) => assert!(!ok && text.contains(err), "in_port={in_port}: want {err}:\n{text}"),
            None => assert!(ok, "in_port={in_port}:\n{text}"),
        }
    }
    stop_cleanly(&mut mgr);
    assert_eq!(read_pcap(&dir.join("o2.pcap")).len(), 1, "{}", mgr.output());
}

/// A controller written with the codec: blocking TCP, one message at a time.
struct Ctl {
    s: TcpStream,
    rx: Vec<u8>,
}

impl Ctl {
    fn connect(addr: SocketAddr) -> Ctl {
        let s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_millis(20))).unwrap();
        let mut c = Ctl { s, rx: Vec::new() };
        c.send(1, &Message::Hello(Hello::ours(VersionBitmap::of(&[4]))));
        assert!(matches!(c.recv(SOON), Some((_, Message::Hello(_)))));
        c
    }

    fn send(&mut self, xid: u32, m: &Message) {
        self.s.write_all(&m.encode(xid).unwrap()).unwrap();
    }

    /// The next message and its bytes within `wait`.
    fn recv_bytes(&mut self, wait: Duration) -> Option<Vec<u8>> {
        let t = Instant::now();
        loop {
            if let Ok(Some(n)) = frame_len(&self.rx) {
                return Some(self.rx.drain(..n).collect());
            }
            if t.elapsed() > wait {
                return None;
            }
            let mut b = [0u8; 16384];
            match self.s.read(&mut b) {
                Ok(0) => return None,
                Ok(n) => self.rx.extend_from_slice(&b[..n]),
                Err(_) => {}
            }
        }
    }

    fn recv(&mut self, wait: Duration) -> Option<(u32, Message)> {
        self.recv_bytes(wait)
            .map(|b| Message::decode(&b).expect("the switch sends what it can decode"))
    }

    /// Sends a BARRIER; what came before its reply.
    fn until_barrier(&mut self) -> Vec<Message> {
        self.send(0xb0b, &Message::BarrierRequest);
        let mut got = Vec::new();
        loop {
            match self.recv(SOON).expect("a barrier reply") {
                (0xb0b, Message::BarrierReply) => return got,
                (_, m) => got.push(m),
            }
        }
    }
}

/// `ovs-ofctl ofp-print` of one message.
fn ofp_print(bytes: &[u8]) -> String {
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    let out = Command::new("ovs-ofctl")
        .args(["ofp-print", &hex])
        .output()
        .expect("run ovs-ofctl");
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// A raw multipart request part with `flags`.
fn part(xid: u32, ty: u16, flags: u16) -> Vec<u8> {
    let mut b = vec![4, ofpt::MULTIPART_REQUEST, 0, 16];
    b.extend_from_slice(&xid.to_be_bytes());
    b.extend_from_slice(&ty.to_be_bytes());
    b.extend_from_slice(&flags.to_be_bytes());
    b.extend_from_slice(&[0; 4]);
    b
}

#[test]
fn a_controller_sets_async_masks_mods_a_table_and_splits_a_request() {
    if !have_ovs_ofctl() {
        return;
    }
    let _serial = common::serial();
    let dir = TempDir::new("of-msgs-async");
    let (mut mgr, sw) = start_mgr(&dir);
    let mut ctl = Ctl::connect(sw);
    let mut deaf = Ctl::connect(sw);

    // GET_ASYNC: the spec's defaults, in a reply Open vSwitch reads.
    ctl.send(2, &Message::GetAsyncRequest);
    let bytes = ctl.recv_bytes(SOON).expect("a GET_ASYNC reply");
    assert_eq!(
        Message::decode(&bytes).unwrap(),
        (2, Message::GetAsyncReply(AsyncConfig::default()))
    );
    let text = ofp_print(&bytes);
    assert!(text.contains("OFPT_GET_ASYNC_REPLY") && !text.contains("***"), "{text}");
    // SET_ASYNC (no longer BAD_TYPE): PORT_STATUS for ADD only; the other connection
    // asks for none.
    let add_only = AsyncConfig {
        port_status_mask: [1 << ofppr::ADD, 1 << ofppr::ADD],
        ..AsyncConfig::default()
    };
    ctl.send(3, &Message::SetAsync(add_only));
    deaf.send(
        3,
        &Message::SetAsync(AsyncConfig {
            port_status_mask: [0, 0],
            ..AsyncConfig::default()
        }),
    );
    assert!(ctl.until_barrier().is_empty() && deaf.until_barrier().is_empty());
    ctl.send(4, &Message::GetAsyncRequest);
    assert_eq!(ctl.recv(SOON), Some((4, Message::GetAsyncReply(add_only))));

    // TABLE_MOD: accepted for a table that exists, BAD_TABLE for one that does not.
    ctl.send(5, &Message::TableMod(TableMod { table_id: 0, config: 3 }));
    assert!(ctl.until_barrier().is_empty());
    ctl.send(6, &Message::TableMod(TableMod { table_id: 9, config: 0 }));
    match ctl.recv(SOON) {
        Some((6, Message::Error(e))) => assert_eq!((e.ty, e.code), (8, ofptmfc::BAD_TABLE)),
        other => panic!("expected TABLE_MOD_FAILED, got {other:?}"),
    }

    // PORT_DESC asked for in two parts: one answer, after the last.
    ctl.s.write_all(&part(7, ofpmp::PORT_DESC, 1)).unwrap();
    assert!(ctl.recv(Duration::from_millis(200)).is_none());
    ctl.s.write_all(&part(7, ofpmp::PORT_DESC, 0)).unwrap();
    match ctl.recv(SOON) {
        Some((7, Message::MultipartReply(r))) => {
            assert!(
                matches!(r.body, MultipartReplyBody::PortDesc(ref p) if p.len() == 2),
                "{r:?}"
            )
        }
        other => panic!("expected the port descriptions, got {other:?}"),
    }

    // An NF starts: its service port is announced to `ctl` (ADD), not to `deaf`.
    let (mut nf, _) = start_forwarder(&mgr, &dir.socket(), 1, "fwd");
    match ctl.recv(SOON) {
        Some((_, Message::PortStatus(p))) => assert_eq!((p.reason, p.desc.port_no), (ofppr::ADD, 0x1001)),
        other => panic!("expected PORT_STATUS ADD, got {other:?}\n{}", mgr.output()),
    }
    assert!(deaf.until_barrier().is_empty());
    nf.kill();
    stop_cleanly(&mut mgr);
}
