//! Interop: os-ken (the maintained Ryu fork, the controller of issue 5's tests) parses
//! every switch→controller message we encode. Fails, naming what is missing, where
//! Python's `os_ken` is not installed (`pip install os-ken`).

use std::io::Write;
use std::process::{Command, Stdio};

use onvm_openflow::*;

mod common;
use common::{onvm_table, samples, to_hex};

/// Reads one hex message per line; prints "OK <class>" or "FAIL <why>" for each.
const PARSER: &str = r#"
import struct, sys
from os_ken.ofproto import ofproto_v1_3 as o, ofproto_v1_3_parser as p, ofproto_protocol
dp = ofproto_protocol.ProtocolDesc(version=o.OFP_VERSION)
for line in sys.stdin:
    buf = bytes.fromhex(line.strip())
    ver, ty, ln, xid = struct.unpack("!BBHI", buf[:8])
    try:
        print("OK", type(p.msg_parser(dp, ver, ty, ln, xid, buf)).__name__)
    except Exception as e:
        print("FAIL", ty, repr(e))
"#;

#[test]
fn os_ken_parses_what_the_switch_sends() {
    if !common::have_os_ken() {
        return;
    }
    let mut messages: Vec<Message> = samples().into_iter().map(|(m, _)| m).collect();
    messages.push(Message::MultipartReply(MultipartReply {
        flags: 0,
        body: MultipartReplyBody::TableFeatures((0..2).map(|t| onvm_table(t, 2)).collect()),
    }));
    let input: String = messages.iter().map(|m| to_hex(&m.encode(7).unwrap()) + "\n").collect();
    let mut child = Command::new("python3")
        .args(["-c", PARSER])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("runs python3");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input.as_bytes())
        .expect("writes");
    let out = child.wait_with_output().expect("python3 finishes");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(lines.len(), messages.len(), "{stdout}");
    for (m, line) in messages.iter().zip(&lines) {
        assert!(line.starts_with("OK "), "{}: {line}", type_name(m.ty()));
    }
    assert!(
        lines.contains(&"OK OFPFlowStatsReply") && lines.contains(&"OK OFPTableFeaturesStatsReply"),
        "{stdout}"
    );
}
