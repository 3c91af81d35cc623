//! OpenFlow over TLS against the real tools, both ways authenticated by certificates
//! of a throwaway CA made here (rcgen): `ovs-ofctl` programs and reads the manager
//! through its `pssl:` listener, and an os-ken controller listening with TLS (the
//! example app in `examples/openflow/`, started with os-ken's `ctl_privkey`,
//! `ctl_cert` and `ca_certs`) is dialled with `--controller ssl:` and steers traffic.
//! A peer whose certificate another CA signed is refused with an event that names it,
//! and the manager goes on.
//!
//! Needs `ovs-ofctl` (Debian `openvswitch-common`) and python3 with os-ken
//! (`pip install os-ken`), as tests/openflow.rs does.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair, KeyUsagePurpose};

use common::openflow::{
    flows, free_port, have_os_ken, have_ovs_ofctl, listen_socket, ofctl, ofctl_ok_with, ofctl_with, start_mgr,
};
use common::{
    Proc, SOON, TempDir, distinct_udp_frames, read_pcap, start_forwarder, stop_cleanly, wait_for, write_pcap,
};

const PACKETS: usize = 200;

/// A certificate authority that lives for one test.
struct Ca {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

/// The three files one party of a TLS connection holds.
struct Identity {
    key: PathBuf,
    cert: PathBuf,
    ca: PathBuf,
}

impl Ca {
    fn new(name: &str) -> Ca {
        let mut p = CertificateParams::new(Vec::new()).unwrap();
        p.distinguished_name.push(DnType::CommonName, name);
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        Ca {
            issuer: CertifiedIssuer::self_signed(p, KeyPair::generate().unwrap()).unwrap(),
        }
    }

    /// A key and certificate for `name`, signed by this CA, written into `dir` with the
    /// CA certificate `trusts` (the CA whose certificates this party accepts).
    fn identity(&self, dir: &TempDir, name: &str, trusts: &Ca) -> Identity {
        let mut p = CertificateParams::new(vec![name.to_string()]).unwrap();
        p.distinguished_name.push(DnType::CommonName, name);
        let key = KeyPair::generate().unwrap();
        let cert = p.signed_by(&key, &self.issuer).unwrap();
        Identity {
            key: dir.write(&format!("{name}-privkey.pem"), &key.serialize_pem()),
            cert: dir.write(&format!("{name}-cert.pem"), &cert.pem()),
            ca: dir.write(&format!("{name}-cacert.pem"), &trusts.issuer.pem()),
        }
    }
}

impl Identity {
    /// `onvm mgr`'s flags for these files.
    fn mgr_flags(&self) -> Vec<String> {
        let mut v = Vec::new();
        for (flag, path) in [
            ("--ssl-private-key", &self.key),
            ("--ssl-certificate", &self.cert),
            ("--ssl-ca-cert", &self.ca),
        ] {
            v.push(flag.to_string());
            v.push(path.display().to_string());
        }
        v
    }

    /// `ovs-ofctl`'s options for these files.
    fn ofctl_options(&self) -> Vec<String> {
        vec![
            format!("--private-key={}", self.key.display()),
            format!("--certificate={}", self.cert.display()),
            format!("--ca-cert={}", self.ca.display()),
        ]
    }
}

#[test]
fn ovs_ofctl_over_tls_programs_the_switch_and_strangers_are_refused() {
    if !have_ovs_ofctl() {
        return;
    }
    let _serial = common::serial();
    let dir = TempDir::new("of-tls-ofctl");
    let (ours, theirs) = (Ca::new("onvm test CA"), Ca::new("another CA"));
    let switch = ours.identity(&dir, "switch", &ours);
    let tool = ours.identity(&dir, "ofctl", &ours);
    // Trusts the switch, but its own certificate is from a CA the switch does not know.
    let stranger = theirs.identity(&dir, "stranger", &ours);

    let mut args: Vec<String> = ["-p", "null", "-p", "null", "--openflow-listen", "pssl:0"]
        .map(String::from)
        .into();
    args.extend(switch.mgr_flags());
    let mut mgr = start_mgr(&dir, &args);
    let addr = listen_socket(&mgr);
    assert!(addr.ip().is_loopback(), "pssl:PORT listens on 127.0.0.1 only: {addr}");
    let sw = format!("ssl:{addr}");

    ofctl_ok_with(&tool.ofctl_options(), "add-flow", &sw, &["in_port=1,actions=output:2"]);
    ofctl_ok_with(
        &tool.ofctl_options(),
        "add-flow",
        &sw,
        &["table=0,priority=10,udp,actions=drop"],
    );
    let dump = ofctl_ok_with(&tool.ofctl_options(), "dump-flows", &sw, &[]);
    assert_eq!(flows(&dump).len(), 2, "{dump}");
    assert!(dump.contains("in_port=1 actions=output:2"), "{dump}");
    let show = ofctl_ok_with(&tool.ofctl_options(), "show", &sw, &[]);
    assert!(show.contains("n_tables:"), "{show}");

    // A certificate from another CA: the handshake fails, the manager says why.
    let (ok, text) = ofctl_with(&stranger.ofctl_options(), "dump-flows", &sw, &[]);
    assert!(!ok, "a stranger read the table:\n{text}");
    let refused = mgr.stderr.wait(SOON, |l| {
        l.contains("openflow: 127.0.0.1:") && l.contains("refused (TLS: ")
    });
    let (_, line) = refused.unwrap_or_else(|| panic!("no event for the refused stranger\n{}", mgr.output()));
    assert!(line.contains("UnknownIssuer"), "{line}");
    // Plain OpenFlow to the TLS listener: refused the same way.
    let before = mgr.stderr.count(|l| l.contains("refused (TLS: "));
    let (ok, text) = ofctl("dump-flows", &format!("tcp:{addr}"), &[]);
    assert!(!ok, "plain TCP read the table:\n{text}");
    assert!(
        wait_for(SOON, || mgr.stderr.count(|l| l.contains("refused (TLS: ")) > before),
        "no event for the plain connection\n{}",
        mgr.output()
    );

    // The manager went on: the rules are still there and can be changed.
    assert!(!mgr.exited(), "{}", mgr.output());
    ofctl_ok_with(&tool.ofctl_options(), "del-flows", &sw, &["table=0,udp"]);
    assert_eq!(
        flows(&ofctl_ok_with(&tool.ofctl_options(), "dump-flows", &sw, &[])).len(),
        1
    );
    stop_cleanly(&mut mgr);
}

/// The example controller, listening with TLS on 127.0.0.1:`port` with `id`'s files and
/// steering `chain`; returns once it listens.
fn start_tls_controller(dir: &TempDir, port: u16, id: &Identity, chain: &[u16]) -> Proc {
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/openflow");
    // The example app's own `main` listens with plain TCP only; this one passes os-ken
    // its TLS options (`ctl_privkey`, `ctl_cert`, `ca_certs`: with ca_certs os-ken
    // requires the switch's certificate) and runs the same app.
    let launcher = dir.write(
        "tls_controller.py",
        "import sys\n\
         sys.path.insert(0, sys.argv[1])\n\
         import onvm_chain\n\
         from os_ken import cfg\n\
         from os_ken.base import app_manager\n\
         from os_ken.lib import hub\n\
         port, key, cert, ca, chain = sys.argv[2:7]\n\
         onvm_chain.SETTINGS['chains'] = {None: [int(p) for p in chain.split(',')]}\n\
         cfg.CONF(args=['--ofp-listen-host', '127.0.0.1', '--ofp-ssl-listen-port', port,\n\
         \x20   '--ctl-privkey', key, '--ctl-cert', cert, '--ca-certs', ca], project='os_ken')\n\
         manager = app_manager.AppManager.get_instance()\n\
         manager.load_apps(['onvm_chain', 'os_ken.controller.ofp_handler'])\n\
         services = manager.instantiate_apps(**manager.create_contexts())\n\
         onvm_chain.say('listening on', port)\n\
         hub.joinall(services)\n",
    );
    let chain: Vec<String> = chain.iter().map(u16::to_string).collect();
    let mut cmd = Command::new("python3");
    cmd.arg(launcher)
        .arg(examples)
        .arg(port.to_string())
        .args([&id.key, &id.cert, &id.ca])
        .arg(chain.join(","));
    let p = Proc::spawn("os-ken", cmd);
    assert!(
        p.stdout.wait(SOON, |l| l.contains("listening on")).is_some(),
        "the controller did not start\n{}",
        p.output()
    );
    p
}

#[test]
fn os_ken_listening_with_tls_steers_traffic_through_an_nf() {
    if !have_os_ken() {
        return;
    }
    let _serial = common::serial();
    let dir = TempDir::new("of-tls-osken");
    let (ours, theirs) = (Ca::new("onvm test CA"), Ca::new("another CA"));
    let controller = ours.identity(&dir, "controller", &ours);
    let switch = ours.identity(&dir, "switch", &ours);
    let port = free_port();
    let ctl = start_tls_controller(&dir, port, &controller, &[1, 4097, 2]);
    let target = format!("ssl:127.0.0.1:{port}");

    // A switch that trusts another CA refuses the controller, says so, and redials.
    {
        let sub = TempDir::new("of-tls-osken-stranger");
        let wary = ours.identity(&sub, "wary", &theirs);
        let mut args: Vec<String> = ["-p", "null", "--controller", &target].map(String::from).into();
        args.extend(wary.mgr_flags());
        let mut mgr = start_mgr(&sub, &args);
        let gone = mgr.stderr.wait(SOON, |l| {
            l.contains(&format!("controller 127.0.0.1:{port} gone (TLS: ")) && l.contains("UnknownIssuer")
        });
        assert!(gone.is_some(), "no event for the refused controller\n{}", mgr.output());
        assert!(!mgr.exited(), "{}", mgr.output());
        stop_cleanly(&mut mgr);
    }

    // Port 1 → service 1 (logical port 4097) → port 2, steered over TLS.
    let frames = distinct_udp_frames(PACKETS, 16);
    let input = dir.join("in.pcap");
    write_pcap(&input, &frames, Duration::from_secs(1_700_000_000));
    let mut args: Vec<String> = vec![
        "-p".into(),
        format!("pcap:{}", input.display()),
        "-p".into(),
        format!("pcapout:{}", dir.join("out.pcap").display()),
        "--wait-for-nfs".into(),
        "1".into(),
        "--controller".into(),
        target.clone(),
        "--datapath-id".into(),
        "0x42".into(),
        "--exit-when-drained".into(),
        "1".into(),
    ];
    args.extend(switch.mgr_flags());
    let mut mgr = start_mgr(&dir, &args);
    assert!(
        ctl.stdout
            .wait(SOON, |l| l.contains("installed 2 rules on 0x42"))
            .is_some(),
        "the controller did not program the switch over TLS\n{}\n{}",
        ctl.output(),
        mgr.output()
    );
    let (_nf, _) = start_forwarder(&mgr, &dir.socket(), 1, "fwd");
    assert_eq!(
        mgr.exit_code(SOON),
        0,
        "the manager failed\n{}\n{}",
        mgr.output(),
        ctl.output()
    );
    common::assert_conserved(&mgr);
    let out = read_pcap(&dir.join("out.pcap"));
    assert_eq!(
        out,
        frames,
        "the chain must carry every frame, in order\n{}",
        ctl.output()
    );
}

#[test]
fn tls_files_missing_or_bad_stop_the_start_naming_them() {
    let dir = TempDir::new("of-tls-files");
    let ca = Ca::new("onvm test CA");
    let id = ca.identity(&dir, "switch", &ca);
    let run = |args: &[String]| {
        let mut cmd = common::onvm();
        cmd.args(["mgr", "--stats", "off", "--run-for", "1", "--socket"])
            .arg(dir.socket())
            .args(["-p", "null", "--controller", "ssl:127.0.0.1:1"])
            .args(args);
        let mut p = common::run_to_end("onvm mgr", cmd);
        assert_ne!(p.exit_code(SOON), 0, "{}", p.output());
        p.stderr.text()
    };
    let err = run(&[]);
    assert!(
        err.contains("--ssl-private-key, --ssl-certificate, --ssl-ca-cert"),
        "{err}"
    );
    let mut flags = id.mgr_flags();
    flags[5] = dir.join("no-such-ca.pem").display().to_string();
    let err = run(&flags);
    assert!(
        err.contains("CA certificate") && err.contains("no-such-ca.pem"),
        "{err}"
    );
    let mut flags = id.mgr_flags();
    flags[3] = id.key.display().to_string();
    let err = run(&flags);
    assert!(
        err.contains("switch-privkey.pem") && err.contains("not a PEM certificate"),
        "{err}"
    );
}
