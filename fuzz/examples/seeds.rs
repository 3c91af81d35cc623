//! Writes the seed corpora of the fuzz targets: a few valid control messages of every
//! kind, and small captures (the config seeds are examples/chain.toml and hand-written
//! files in fuzz/corpus/config). Run from the repo root:
//!     cargo +nightly run --manifest-path fuzz/Cargo.toml --example seeds
//! The files are committed; run this again only when the formats change.

use std::fs;
use std::path::Path;

use onvm_proto::ctrl::{
    Dest, MgrMsg, NfCounters, NfMsg, PortCounts, PortQueue, RefuseReason, Register, RegisterFlags, Registered, RingIds,
};

fn write(dir: &Path, name: &str, bytes: &[u8]) {
    fs::create_dir_all(dir).unwrap();
    fs::write(dir.join(name), bytes).unwrap();
}

/// A classic pcap file: little-endian, microseconds, the given link type.
fn pcap(linktype: u32, big_endian: bool, nanos: bool, pkts: &[(u32, u32, &[u8])]) -> Vec<u8> {
    let u32b = |v: u32| if big_endian { v.to_be_bytes() } else { v.to_le_bytes() };
    let u16b = |v: u16| if big_endian { v.to_be_bytes() } else { v.to_le_bytes() };
    let mut f = Vec::new();
    f.extend(u32b(if nanos { 0xa1b2_3c4d } else { 0xa1b2_c3d4 }));
    f.extend(u16b(2));
    f.extend(u16b(4));
    f.extend(u32b(0));
    f.extend(u32b(0));
    f.extend(u32b(65535));
    f.extend(u32b(linktype));
    for &(sec, frac, data) in pkts {
        f.extend(u32b(sec));
        f.extend(u32b(frac));
        f.extend(u32b(data.len() as u32));
        f.extend(u32b(data.len() as u32));
        f.extend_from_slice(data);
    }
    f
}

fn main() {
    let root = Path::new("fuzz/corpus");

    let ctrl = root.join("ctrl");
    let nf = [
        NfMsg::Register(Register {
            abi_version: 3,
            tag: "firewall".into(),
            service: 1,
            instance: Some(9),
            core: None,
            parent: Some(2),
            flags: RegisterFlags::SHARED_CORE | RegisterFlags::MANUAL_CORE,
        }),
        NfMsg::Ready,
        NfMsg::Stopping,
        NfMsg::Msg {
            to: Dest::Service(2),
            bytes: b"hello".to_vec(),
        },
        NfMsg::Msg {
            to: Dest::Instance(7),
            bytes: Vec::new(),
        },
        NfMsg::EdgeReleased { ring: 5 },
        NfMsg::EdgeSwitched { ring: 6 },
        NfMsg::Counters(NfCounters {
            rx: 100,
            tx: 90,
            tx_drop: 10,
            ..Default::default()
        }),
        NfMsg::PortCounts(PortCounts {
            port: 0,
            out: 1,
            rx: 640,
            rx_bytes: 38_400,
            tx: 600,
            tx_bytes: 36_000,
        }),
    ];
    for (i, m) in nf.iter().enumerate() {
        write(&ctrl, &format!("nf-{i}"), &m.encode().unwrap());
    }
    let mgr = [
        MgrMsg::Registered(Registered {
            instance: 9,
            service: 1,
            core: Some(3),
            rings: RingIds {
                rx: 1,
                tx: 2,
                alloc: 3,
                wake: 4,
            },
            quota: 1024,
        }),
        MgrMsg::Refused(RefuseReason::InstanceTaken(9)),
        MgrMsg::Refused(RefuseReason::InstanceOutOfRange {
            instance: 200,
            max: 128,
        }),
        MgrMsg::Refused(RefuseReason::NoFreeIds),
        MgrMsg::Refused(RefuseReason::ServiceOutOfRange { service: 0, max: 32 }),
        MgrMsg::Refused(RefuseReason::TooManyInstances { service: 1, max: 16 }),
        MgrMsg::Refused(RefuseReason::NoFreeCore),
        MgrMsg::Refused(RefuseReason::CoreOutOfRange { core: 9, cores: 2 }),
        MgrMsg::Refused(RefuseReason::CoreBusy(1)),
        MgrMsg::Refused(RefuseReason::AbiMismatch { ours: 3, theirs: 2 }),
        MgrMsg::Stop,
        MgrMsg::Msg {
            from: 4,
            bytes: b"ping".to_vec(),
        },
        MgrMsg::EdgeOut {
            service: 2,
            instance: 3,
            ring: 7,
            bell: Some(8),
        },
        MgrMsg::EdgeOut {
            service: 2,
            instance: 3,
            ring: 7,
            bell: None,
        },
        MgrMsg::EdgeIn { ring: 7 },
        MgrMsg::EdgeClosed { ring: 7 },
        MgrMsg::PortQueue(Some(PortQueue {
            port: 0,
            frame_len: 60,
            out: 1,
        })),
        MgrMsg::PortQueue(None),
    ];
    for (i, m) in mgr.iter().enumerate() {
        write(&ctrl, &format!("mgr-{i}"), &m.encode().unwrap());
    }

    let pcaps = root.join("pcap");
    // An Ethernet + IPv4 + UDP frame, 60 bytes.
    let mut frame = vec![0u8; 60];
    frame[..12].copy_from_slice(&[2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1]);
    frame[12..14].copy_from_slice(&[0x08, 0x00]);
    frame[14] = 0x45;
    frame[23] = 17;
    let short: &[u8] = &frame[..14];
    let pkts: &[(u32, u32, &[u8])] = &[(1000, 0, &frame), (1000, 500, short), (1001, 0, &frame)];
    write(&pcaps, "le-micro", &pcap(1, false, false, pkts));
    write(&pcaps, "be-nano", &pcap(1, true, true, pkts));
    write(&pcaps, "empty", &pcap(1, false, false, &[]));
    write(
        &pcaps,
        "unsorted",
        &pcap(1, false, false, &[(5, 0, &frame), (1, 0, &frame)]),
    );
    write(&pcaps, "big-record", &pcap(1, false, false, &[(0, 0, &[0xab; 3000])]));
    write(&pcaps, "not-ethernet", &pcap(101, false, false, &[(0, 0, &frame)]));
    let mut cut = pcap(1, false, false, pkts);
    cut.truncate(cut.len() - 7);
    write(&pcaps, "truncated", &cut);
}
