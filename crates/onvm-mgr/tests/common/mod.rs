//! Helpers shared by the in-process tests: a manager on a thread, options, chains.
#![allow(dead_code)]

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use onvm_mgr::{Options, Report, StatsMode};
use onvm_proto::chain::{Chain, Hop, compile};
use onvm_proto::ctrl::{ABI_VERSION, MAX_MESSAGE_LEN, MgrMsg, NfMsg, Register, RegisterFlags, Registered};
use onvm_proto::flow::Match;
use onvm_proto::port::PortSpec;
use onvm_shm::Region;
use onvm_shm::seqpacket::{Received, SeqPacket};

pub fn socket(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("onvm-test-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join("onvm.sock")
}

pub fn chain(services: &[u16], out: u16) -> Vec<onvm_proto::flow::Rule> {
    let mut hops: Vec<Hop> = services
        .iter()
        .map(|&id| Hop::Service {
            id,
            name: format!("s{id}"),
        })
        .collect();
    hops.push(Hop::Out(out));
    compile(
        &[Chain {
            name: "test".into(),
            hops,
            in_port: Some(0),
            matcher: Match::any(),
            default: false,
            priority: None,
        }],
        2,
    )
    .unwrap()
}

pub fn start(opts: Options) -> (Arc<AtomicBool>, std::thread::JoinHandle<Report>) {
    let stop = Arc::new(AtomicBool::new(false));
    let s = stop.clone();
    let path = opts.socket.clone();
    let h = std::thread::spawn(move || onvm_mgr::run(opts, &s).expect("manager runs"));
    let t = Instant::now();
    while !path.exists() {
        assert!(t.elapsed() < Duration::from_secs(5), "manager did not start");
        std::thread::sleep(Duration::from_millis(5));
    }
    (stop, h)
}

pub fn opts(name: &str, ports: &[&str], rules: Vec<onvm_proto::flow::Rule>) -> Options {
    let mut o = Options::new(socket(name));
    o.ports = ports.iter().map(|p| p.parse::<PortSpec>().unwrap()).collect();
    o.rules = rules;
    o.stats = StatsMode::Off;
    o.log_events = false;
    o.region.buffers = 4095;
    o
}

/// An NF registered by hand, as a buggy one (or one not written with onvm-nf) would:
/// its socket, the region as a file (to scribble on with pwrite) and mapped, and the
/// manager's answer. It has said Ready.
pub struct ByHand {
    pub sock: SeqPacket,
    pub file: File,
    pub region: Arc<Region>,
    pub reg: Registered,
}

pub fn register_by_hand(path: &Path, tag: &str, service: u16) -> ByHand {
    let sock = SeqPacket::connect(path).unwrap();
    let reg = NfMsg::Register(Register {
        abi_version: ABI_VERSION,
        tag: tag.into(),
        service,
        instance: None,
        core: None,
        parent: None,
        flags: RegisterFlags::SHARED_CORE,
    });
    sock.send(&reg.encode().unwrap()).unwrap();
    let mut buf = vec![0u8; MAX_MESSAGE_LEN + 1];
    let Received::Msg(n, Some(fd)) = sock.recv(&mut buf).unwrap() else {
        panic!("no registration answer with the region");
    };
    let MgrMsg::Registered(reg) = MgrMsg::decode(&buf[..n]).unwrap() else {
        panic!("refused");
    };
    let file = File::from(fd.try_clone().unwrap());
    let region = Region::open(fd).unwrap();
    sock.send(&NfMsg::Ready.encode().unwrap()).unwrap();
    ByHand {
        sock,
        file,
        region,
        reg,
    }
}

/// An NF thread in shared-core mode (on `core`, if given, at `weight`, if given) that
/// spends `cost` per packet busy-waiting and sends each on (`Next`): its summary.
pub fn busy_nf(
    path: &Path,
    service: u16,
    core: Option<u16>,
    weight: Option<u32>,
    cost: Duration,
) -> std::thread::JoinHandle<onvm_nf::Summary> {
    let path = path.to_path_buf();
    std::thread::spawn(move || {
        let mut b = onvm_nf::Nf::builder(format!("s{service}"))
            .service(service)
            .shared_core(true)
            .socket(path);
        if let Some(c) = core {
            b = b.core(c);
        }
        if let Some(w) = weight {
            b = b.weight(w);
        }
        b.connect()
            .unwrap_or_else(|e| panic!("NF of service {service}: {e}"))
            .run(onvm_nf::handler_fn(move |_, _| {
                let t = Instant::now();
                while t.elapsed() < cost {
                    std::hint::spin_loop();
                }
                onvm_nf::Action::Next
            }))
            .unwrap_or_else(|e| panic!("NF of service {service}: {e}"))
    })
}
