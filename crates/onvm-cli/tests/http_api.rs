//! The manager's HTTP endpoint (`--http`) against a running `onvm up` with traffic: the
//! REST API's reads, its writes (a chain it adds steers real packets), its errors, the
//! live stream, and `/metrics` linted by promtool and scraped by a real Prometheus.

mod common;

use std::io::BufRead as _;
use std::net::TcpListener;
use std::path::Path;
use std::time::Duration;

use serde_json::{Value, json};

use common::{Proc, SOON, TempDir, onvm, serial, stop_cleanly, wait_for};

/// A generator through monitor → forward and out of a null port.
const CONFIG: &str = r#"
[manager]
ports = ["gen:64B,100flows,rate=100k", "null"]
shared_cores = true
[services]
monitor = 1
forward = 2
[[nfs]]
name = "basic_monitor"
service = "monitor"
args = ["--quiet"]
[[nfs]]
name = "simple_forward"
service = "forward"
[[chains]]
name = "main"
chain = ["monitor", "forward", "out:1"]
in_port = 0
"#;

/// A running `onvm up` with its HTTP endpoint.
struct Mgr {
    proc: Proc,
    base: String,
    http: ureq::Agent,
}

impl Mgr {
    /// `onvm up` with [`CONFIG`].
    fn start(dir: &TempDir) -> Mgr {
        let config = dir.write("http.toml", CONFIG);
        let mut cmd = onvm();
        cmd.arg("up").arg(&config);
        Mgr::start_with(dir, cmd)
    }

    /// `cmd` (`onvm up ...` or `onvm mgr ...`) with a small pool and the endpoint on.
    fn start_with(dir: &TempDir, mut cmd: std::process::Command) -> Mgr {
        cmd.args([
            "--stats",
            "off",
            "--buffers",
            "4095",
            "--http",
            "127.0.0.1:0",
            "--socket",
        ])
        .arg(dir.socket());
        let proc = Proc::spawn("onvm", cmd);
        let line = proc
            .stderr
            .wait(SOON, |l| l.contains("http: listening on http://"))
            .unwrap_or_else(|| panic!("no http endpoint\n{}", proc.output()))
            .1;
        let base = line
            .split("listening on ")
            .nth(1)
            .unwrap()
            .trim()
            .trim_end_matches('/')
            .to_string();
        let http = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(10)))
            .build()
            .into();
        Mgr { proc, base, http }
    }

    /// (status, body) of a request.
    fn call(&self, method: &str, path: &str, body: Option<&str>) -> (u16, String) {
        let url = format!("{}{path}", self.base);
        let resp = match (method, body) {
            ("GET", _) => self.http.get(&url).call(),
            ("DELETE", _) => self.http.delete(&url).call(),
            ("POST", Some(b)) => self.http.post(&url).header("content-type", "application/json").send(b),
            ("POST", None) => self.http.post(&url).send_empty(),
            _ => unreachable!(),
        };
        let mut resp = resp.unwrap_or_else(|e| panic!("{method} {path}: {e}"));
        let status = resp.status().as_u16();
        (status, resp.body_mut().read_to_string().unwrap())
    }

    fn get(&self, path: &str) -> Value {
        let (status, body) = self.call("GET", path, None);
        assert_eq!(status, 200, "GET {path}: {body}");
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("GET {path}: {e}: {body}"))
    }

    fn post(&self, path: &str, body: Value) -> (u16, Value) {
        let (status, text) = self.call("POST", path, Some(&body.to_string()));
        (
            status,
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}")),
        )
    }

    /// The NF tagged `tag` in `/api/v1/nfs`, once it is there.
    fn find_nf(&self, tag: &str) -> Option<Value> {
        let nfs = self.get("/api/v1/nfs");
        nfs.as_array().unwrap().iter().find(|n| n["tag"] == tag).cloned()
    }

    fn nf(&self, tag: &str) -> Value {
        self.find_nf(tag).unwrap_or_else(|| panic!("no NF {tag}"))
    }

    /// Wait until `tag`'s per-second rx rate satisfies `ok`.
    fn wait_rate(&self, tag: &str, ok: impl Fn(f64) -> bool) -> bool {
        wait_for(SOON, || {
            std::thread::sleep(Duration::from_millis(200));
            self.find_nf(tag).is_some_and(|n| ok(n["rx_pps"].as_f64().unwrap()))
        })
    }
}

#[test]
fn rest_api_reads_counters_and_a_chain_it_adds_steers_packets() {
    let _one = serial();
    let dir = TempDir::new("http-rest");
    let mut m = Mgr::start(&dir);
    assert!(m.wait_rate("basic_monitor", |r| r > 0.0), "{}", m.proc.output());

    let status = m.get("/api/v1/status");
    assert_eq!(status["api"], "v1");
    assert_eq!(status["nfs_running"], 2, "{status}");
    assert_eq!(status["ports"], 2, "{status}");
    assert_eq!(status["rules"], 3, "the chain's three rules: {status}");
    let ports = m.get("/api/v1/ports");
    assert!(
        ports[0]["rx"].as_u64().unwrap() > 0 && ports[0]["rx_pps"].as_f64().unwrap() > 0.0,
        "{ports}"
    );
    assert!(ports[1]["tx_pps"].as_f64().unwrap() > 0.0, "{ports}");
    let services = m.get("/api/v1/services");
    let names: Vec<&str> = services
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["monitor", "forward"], "{services}");
    assert_eq!(services[0]["instances"].as_array().unwrap().len(), 1);
    let edges = m.get("/api/v1/edges");
    assert!(
        edges
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["from"] == "service:1" && e["to"] == "service:2" && e["pps"].as_f64().unwrap() > 0.0),
        "the chain's middle edge carries packets: {edges}"
    );
    let monitor = m.nf("basic_monitor");
    assert_eq!(monitor["state"], "running");
    assert!(monitor["ring_capacity"].as_u64().unwrap() > 0, "{monitor}");

    // A chain added through the API, above the config's, skips the monitor.
    let (status, added) = m.post(
        "/api/v1/chains",
        json!({ "name": "bypass", "chain": ["forward", "out:1"], "in_port": 0, "priority": 300 }),
    );
    assert_eq!(status, 201, "{added}");
    assert_eq!(added["rules"].as_array().unwrap().len(), 2, "{added}");
    assert!(
        m.wait_rate("basic_monitor", |r| r == 0.0),
        "the monitor still gets packets"
    );
    assert!(m.nf("simple_forward")["rx_pps"].as_f64().unwrap() > 0.0);
    let flows = m.get("/api/v1/flows");
    let ours: Vec<&Value> = flows
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["priority"] == 300)
        .collect();
    assert_eq!(ours.len(), 2, "{flows}");
    assert_eq!(ours[0]["match"]["in_port"], "port:0", "{flows}");
    assert_eq!(ours[0]["actions"], json!(["service:2"]), "{flows}");
    let (status, body) = m.post(
        "/api/v1/chains",
        json!({ "name": "bypass", "chain": ["forward", "out:1"], "in_port": 0, "priority": 300 }),
    );
    assert_eq!(status, 409, "{body}");
    // Deleting it sends packets through the monitor again.
    let (status, body) = m.call("DELETE", "/api/v1/chains/bypass", None);
    assert_eq!(status, 200, "{body}");
    assert!(
        m.wait_rate("basic_monitor", |r| r > 0.0),
        "the monitor gets no packets back"
    );

    // A rule that drops UDP from port 0: drops show by reason.
    let (status, rule) = m.post(
        "/api/v1/flows",
        json!({ "priority": 500, "in_port": "port:0", "match": { "eth_type": 2048, "ip_proto": 17 }, "actions": ["drop"] }),
    );
    assert_eq!(status, 201, "{rule}");
    assert!(
        wait_for(SOON, || m
            .get("/api/v1/drops")
            .as_array()
            .unwrap()
            .iter()
            .any(|d| d["per_s"].as_f64().unwrap() > 0.0)),
        "no drops: {}",
        m.get("/api/v1/drops")
    );
    let id = rule["id"].as_u64().unwrap();
    assert_eq!(m.call("DELETE", &format!("/api/v1/flows/{id}"), None).0, 200);

    // Bad requests: 4xx naming the problem.
    let refused = |body: Value, status: u16, says: &str| {
        let (s, b) = m.post("/api/v1/flows", body.clone());
        assert_eq!(s, status, "{body} -> {b}");
        assert!(b["error"].as_str().unwrap().contains(says), "{body} -> {b}");
    };
    refused(
        json!({ "priority": 9, "match": { "ip_proto": 17 }, "actions": ["drop"] }),
        400,
        "ip_proto needs eth_type",
    );
    refused(
        json!({ "priority": 9, "actions": ["service:nope"] }),
        400,
        "unknown service \"nope\"",
    );
    refused(json!({ "priority": 9, "actions": ["group:7"] }), 400, "group 7");
    refused(json!({ "priority": 9, "actions": ["out:5000"] }), 400, "no port 5000");
    refused(
        json!({ "priority": 9, "actions": ["service:40"] }),
        400,
        "unknown service \"40\"",
    );
    refused(
        json!({ "priority": 9, "match": { "eth_type": 2048, "l4_dst": 53 }, "actions": ["drop"] }),
        400,
        "l4_src/l4_dst need ip_proto",
    );
    refused(
        json!({ "priority": 9, "actions": ["teleport"] }),
        400,
        "unknown action \"teleport\"",
    );
    refused(json!({ "priority": 9, "actions": [], "table": 0 }), 400, "no actions");
    refused(
        json!({ "priority": 9, "actions": ["drop"], "colour": 1 }),
        400,
        "unknown field `colour`",
    );
    refused(
        json!({ "priority": 9, "actions": ["drop"], "table": 9 }),
        400,
        "table 9 does not exist",
    );
    let (s, b) = m.call("POST", "/api/v1/flows", Some("{not json"));
    assert_eq!(s, 400, "{b}");
    let (s, b) = m.call("DELETE", "/api/v1/flows/987654", None);
    assert!(s == 404 && b.contains("no rule 987654"), "{s} {b}");
    let (s, b) = m.call("DELETE", "/api/v1/flows/x", None);
    assert!(s == 400 && b.contains("not a number"), "{s} {b}");
    let (s, b) = m.call("GET", "/api/v1/nothing", None);
    assert!(s == 404 && b.contains("no such resource"), "{s} {b}");
    let (s, b) = m.call("GET", "/api/v1/events?from=x", None);
    assert_eq!(s, 400, "{b}");

    let events = m.get("/api/v1/events?from=0");
    let texts: Vec<&str> = events["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["text"].as_str().unwrap())
        .collect();
    assert!(texts.iter().any(|t| t.contains("chain \"bypass\" added")), "{texts:?}");
    assert!(
        texts.iter().any(|t| t.contains("chain \"bypass\" deleted")),
        "{texts:?}"
    );
    let later = m.get(&format!("/api/v1/events?from={}", events["next"]));
    assert!(later["events"].as_array().unwrap().is_empty(), "{later}");
    stop_cleanly(&mut m.proc);
}

#[test]
fn the_stream_sends_stats_every_second_and_new_events() {
    let _one = serial();
    let dir = TempDir::new("http-stream");
    let mut m = Mgr::start(&dir);
    let mut resp = m.http.get(&format!("{}/api/v1/stream", m.base)).call().unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let ctype = resp.headers()["content-type"].to_str().unwrap().to_string();
    assert!(ctype.starts_with("text/event-stream"), "{ctype}");
    let mut lines = std::io::BufReader::new(resp.body_mut().as_reader()).lines();
    let mut next = |want: &str| -> String {
        loop {
            let l = lines.next().expect("the stream ended").unwrap();
            if l == format!("event: {want}") {
                let data = lines.next().unwrap().unwrap();
                return data.strip_prefix("data: ").unwrap().to_string();
            }
        }
    };
    let a: Value = serde_json::from_str(&next("stats")).unwrap();
    let b: Value = serde_json::from_str(&next("stats")).unwrap();
    let (ta, tb) = (a["uptime_s"].as_f64().unwrap(), b["uptime_s"].as_f64().unwrap());
    assert!(tb > ta && tb - ta < 3.0, "a document about each second: {ta} then {tb}");
    assert!(b["nfs"].as_array().unwrap().len() == 2, "{b}");
    let (s, r) = m.post(
        "/api/v1/flows",
        json!({ "priority": 7, "in_port": "port:1", "actions": ["drop"] }),
    );
    assert_eq!(s, 201, "{r}");
    let e: Value = serde_json::from_str(&next("event")).unwrap();
    // Events of before the connection may come first; the rule's comes.
    let mut text = e["text"].as_str().unwrap().to_string();
    while !text.contains("http: rule") {
        text = serde_json::from_str::<Value>(&next("event")).unwrap()["text"]
            .as_str()
            .unwrap()
            .to_string();
    }
    drop(lines);
    stop_cleanly(&mut m.proc);
}

/// A free TCP port on loopback (the listener closes; nothing else here takes it).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn promtool_check(text: &str) -> (bool, String) {
    use std::io::Write as _;
    let mut p = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("promtool");
    p.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
    let out = p.wait_with_output().unwrap();
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

fn prometheus_config(dir: &Path, target: &str) -> std::path::PathBuf {
    let path = dir.join("prometheus.yml");
    std::fs::write(
        &path,
        format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n  - job_name: onvm\n    \
             static_configs:\n      - targets: ['{target}']\n"
        ),
    )
    .unwrap();
    path
}

#[test]
fn metrics_pass_promtool_and_a_real_prometheus_scrapes_a_rate() {
    if !onvm_testkit::require_tool("promtool", "apt install prometheus")
        || !onvm_testkit::require_tool("prometheus", "apt install prometheus")
    {
        return;
    }
    let _one = serial();
    let dir = TempDir::new("http-metrics");
    let mut m = Mgr::start(&dir);
    assert!(m.wait_rate("simple_forward", |r| r > 0.0), "{}", m.proc.output());
    let mut resp = m.http.get(&format!("{}/metrics", m.base)).call().unwrap();
    let ctype = resp.headers()["content-type"].to_str().unwrap().to_string();
    assert!(ctype.starts_with("text/plain; version=0.0.4"), "{ctype}");
    let text = resp.body_mut().read_to_string().unwrap();
    let (ok, lint) = promtool_check(&text);
    assert!(ok && lint.trim().is_empty(), "promtool: {lint}\n{text}");
    for want in [
        "onvm_port_rx_packets_total{name=\"gen:64B,100flows,rate=100000\",port=\"0\"}",
        // Instance IDs go in the order the NFs registered.
        &format!(
            "onvm_nf_rx_packets_total{{instance=\"{}\",service=\"1\",tag=\"basic_monitor\"}}",
            m.nf("basic_monitor")["id"]
        ),
        &format!(
            "onvm_nf_ring_packets{{instance=\"{}\",ring=\"rx\",service=\"2\",tag=\"simple_forward\"}}",
            m.nf("simple_forward")["id"]
        ),
        "onvm_table_lookups_total{table=\"0\"}",
        "onvm_service_instances{name=\"forward\",service=\"2\"} 1",
        "onvm_http_answer_seconds_bucket",
    ] {
        assert!(text.contains(want), "no {want} in\n{text}");
    }

    // A real Prometheus scrapes it every second; the rate it computes is the generator's.
    let port = free_port();
    let target = m.base.trim_start_matches("http://").to_string();
    let cfg = prometheus_config(dir.path(), &target);
    let mut cmd = std::process::Command::new("prometheus");
    cmd.arg(format!("--config.file={}", cfg.display()))
        .arg(format!("--storage.tsdb.path={}", dir.join("tsdb").display()))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"));
    let prom = Proc::spawn("prometheus", cmd);
    let query = "rate(onvm_port_rx_packets_total{port=\"0\"}[5s])";
    let url = format!("http://127.0.0.1:{port}/api/v1/query");
    let mut last = String::new();
    let got = wait_for(Duration::from_secs(40), || {
        std::thread::sleep(Duration::from_millis(500));
        let Ok(mut r) = m.http.get(&url).query("query", query).call() else {
            return false;
        };
        last = r.body_mut().read_to_string().unwrap_or_default();
        let v: Value = serde_json::from_str(&last).unwrap_or(Value::Null);
        v["data"]["result"][0]["value"][1]
            .as_str()
            .and_then(|s| s.parse::<f64>().ok())
            .is_some_and(|r| r > 50_000.0 && r < 200_000.0)
    });
    assert!(
        got,
        "Prometheus did not compute the port's rate (about 100k/s): {last}\n{}",
        prom.output()
    );
    drop(prom);
    stop_cleanly(&mut m.proc);
}

fn tmux(args: &[&str]) -> String {
    let out = std::process::Command::new("tmux").args(args).output().expect("tmux");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn onvm_top_shows_the_nfs_and_their_rates_under_tmux() {
    if !onvm_testkit::require_tool("tmux", "apt install tmux") {
        return;
    }
    let _one = serial();
    let dir = TempDir::new("http-top");
    let mut m = Mgr::start(&dir);
    assert!(m.wait_rate("simple_forward", |r| r > 0.0), "{}", m.proc.output());
    let session = format!("onvm-top-{}", std::process::id());
    // Its own server socket, so no tmux of the machine's user is touched.
    let sock = dir.join("tmux.sock");
    let sock = sock.to_str().unwrap();
    let command = format!("{} top --url {}", env!("CARGO_BIN_EXE_onvm"), m.base);
    tmux(&[
        "-S",
        sock,
        "new-session",
        "-d",
        "-s",
        &session,
        "-x",
        "140",
        "-y",
        "40",
        &command,
    ]);
    let mut screen = String::new();
    let shown = wait_for(SOON, || {
        std::thread::sleep(Duration::from_millis(200));
        screen = tmux(&["-S", sock, "capture-pane", "-p", "-t", &session]);
        // Each NF's row with a rate in thousands of packets per second (100k/s flow).
        ["basic_monitor", "simple_forward"].iter().all(|tag| {
            screen
                .lines()
                .find(|l| l.contains(tag))
                .is_some_and(|l| l.split_whitespace().any(|w| w.ends_with('k') && w.len() > 1))
        }) && screen.contains("live")
    });
    assert!(shown, "onvm top did not show the NFs' rates:\n{screen}");
    assert!(screen.contains("gen:64B") && screen.contains("services"), "{screen}");
    tmux(&["-S", sock, "send-keys", "-t", &session, "q"]);
    let gone = wait_for(SOON, || {
        !std::process::Command::new("tmux")
            .args(["-S", sock, "has-session", "-t", &session])
            .status()
            .is_ok_and(|s| s.success())
    });
    if !gone {
        tmux(&["-S", sock, "kill-server"]);
    }
    assert!(gone, "q did not end onvm top");
    stop_cleanly(&mut m.proc);
}

/// Headless Chromium with its own profile in `dir`; its stdout.
fn chromium(dir: &TempDir, args: &[&str], url: &str) -> String {
    let out = std::process::Command::new("chromium")
        .args([
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--window-size=1400,1000",
        ])
        .arg(format!("--user-data-dir={}", dir.join("chromium").display()))
        .args(args)
        .arg(url)
        .output()
        .expect("chromium");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The number in the element whose class list ends with `class` inside the first row
/// that starts with `row_start` in `html`.
fn cell(html: &str, row_start: &str, class: &str) -> Option<f64> {
    let row = &html[html.find(row_start)?..];
    let row = &row[..row.find("</tr>")?];
    let at = row
        .find(&format!(" {class}\""))
        .or_else(|| row.find(&format!("\"{class}\"")))?;
    let text = &row[at..];
    let text = &text[text.find('>')? + 1..];
    text[..text.find('<')?].trim().parse().ok()
}

#[test]
fn the_web_console_shows_live_nfs_rates_and_the_topology_in_chromium() {
    if !onvm_testkit::require_tool("chromium", "apt install chromium") {
        return;
    }
    let _one = serial();
    let dir = TempDir::new("http-console");
    let mut m = Mgr::start(&dir);
    assert!(m.wait_rate("simple_forward", |r| r > 0.0), "{}", m.proc.output());
    // The page's own script fills the DOM from the stream; `?frames=3` closes the stream
    // after three updates, since Chromium's virtual time runs out only once every request
    // has ended, and then prints the DOM as it is.
    let url = format!("{}/?frames=3", m.base);
    let dom = chromium(&dir, &["--virtual-time-budget=8000", "--dump-dom"], &url);
    assert!(
        dom.contains("data-live=\"1\""),
        "the page never rendered live data:\n{dom}"
    );
    for tag in ["basic_monitor", "simple_forward"] {
        let rx = cell(&dom, &format!("<tr data-tag=\"{tag}\""), "rx-pps");
        assert!(rx.is_some_and(|r| r > 1000.0), "{tag}'s rx rate: {rx:?}\n{dom}");
    }
    let tx = cell(&dom, "<tr data-port=\"1\"", "tx-pps");
    assert!(tx.is_some_and(|r| r > 1000.0), "port 1's tx rate: {tx:?}\n{dom}");
    for (from, to) in [
        ("port:0", "service:1"),
        ("service:1", "service:2"),
        ("service:2", "port:1"),
    ] {
        let edge = format!("data-from=\"{from}\" data-to=\"{to}\"");
        assert!(dom.contains(&edge), "no topology edge {from} -> {to}:\n{dom}");
    }
    assert!(dom.contains("id=\"drops\"") && dom.contains("id=\"events\""), "{dom}");

    let shot = dir.join("console.png");
    chromium(
        &dir,
        &[
            "--virtual-time-budget=8000",
            &format!("--screenshot={}", shot.display()),
        ],
        &url,
    );
    let decoder = png::Decoder::new(std::io::BufReader::new(
        std::fs::File::open(&shot).unwrap_or_else(|e| panic!("no screenshot {}: {e}", shot.display())),
    ));
    let mut reader = decoder.read_info().unwrap();
    let mut pixels = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut pixels).unwrap();
    assert!(
        info.width >= 1000 && info.height >= 700,
        "{}x{}",
        info.width,
        info.height
    );
    // Not blank: a page of tables, graphs and text has many colours and many pixels
    // that differ from the background.
    let px = info.color_type.samples();
    let pixels = &pixels[..info.buffer_size()];
    let background = &pixels[..px];
    let differ = pixels.chunks(px).filter(|p| p != &background).count();
    let colours: std::collections::HashSet<&[u8]> = pixels.chunks(px).collect();
    assert!(
        differ > pixels.len() / px / 50 && colours.len() > 50,
        "the screenshot looks blank: {differ} pixels differ from the background, {} colours",
        colours.len()
    );
    stop_cleanly(&mut m.proc);
}

#[test]
fn onvm_capture_writes_what_passes_a_port_or_an_nf_to_pcap_files_tcpdump_reads() {
    if !onvm_testkit::require_tool("tcpdump", "apt install tcpdump") {
        return;
    }
    let _one = serial();
    let dir = TempDir::new("http-capture");
    let mut m = Mgr::start(&dir);
    assert!(m.wait_rate("simple_forward", |r| r > 0.0), "{}", m.proc.output());
    // Instance IDs go in the order the NFs registered.
    let monitor = format!("nf:{}", m.nf("basic_monitor")["id"]);
    let forward = format!("nf:{}", m.nf("simple_forward")["id"]);
    let capture = |at: &str, way: &str, count: &str, file: &Path| {
        let mut cmd = onvm();
        cmd.args(["capture", "--url", &m.base, "--at", at, "--dir", way, "-c", count, "-w"])
            .arg(file);
        common::run_to_end("onvm capture", cmd)
    };
    for (at, way, n) in [
        ("port:0", "rx", 40),
        (monitor.as_str(), "rx", 25),
        (forward.as_str(), "tx", 25),
        ("port:1", "tx", 10),
    ] {
        let file = dir.join(&format!("{}-{way}.pcap", at.replace(':', "")));
        let mut c = capture(at, way, &n.to_string(), &file);
        assert_eq!(c.exit_code(SOON), 0, "{}", c.output());
        assert!(
            c.stderr.text().contains(&format!("{n} packets at {at} {way}")),
            "{}",
            c.output()
        );
        let out = std::process::Command::new("tcpdump")
            .arg("-nr")
            .arg(&file)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        assert_eq!(text.lines().count(), n, "{at} {way}:\n{text}");
        assert!(text.lines().all(|l| l.contains("UDP")), "{text}");
    }
    // What is not there, or not a direction, is refused naming it.
    let mut c = capture("nf:9", "rx", "3", &dir.join("x.pcap"));
    assert_ne!(c.exit_code(SOON), 0);
    assert!(
        c.stderr.text().contains("no NF instance 9 is registered"),
        "{}",
        c.output()
    );
    let mut c = capture("port:0", "sideways", "3", &dir.join("x.pcap"));
    assert_ne!(c.exit_code(SOON), 0);
    assert!(c.stderr.text().contains("rx or tx"), "{}", c.output());
    // A capture without a count runs until its reader goes; the manager notices.
    let (m_id, f_id) = (&monitor[3..], &forward[3..]);
    let edge_line = format!("direct edge: instance {m_id} → instance {f_id}");
    let edge = |l: &str| l.contains(&edge_line);
    let edges_before = m.proc.stderr.count(edge);
    let mut cmd = onvm();
    cmd.args(["capture", "--url", &m.base, "--at", &monitor, "--dir", "tx", "-w"])
        .arg(dir.join("open.pcap"));
    let mut open = Proc::spawn("onvm capture", cmd);
    assert!(
        m.proc
            .stderr
            .wait(SOON, |l| l.contains(&format!("capture at {monitor} tx started")))
            .is_some()
    );
    std::thread::sleep(Duration::from_millis(300));
    open.kill();
    assert!(
        m.proc
            .stderr
            .wait(SOON, |l| l
                .contains(&format!("capture at {monitor} tx ended (its reader went away")))
            .is_some(),
        "{}",
        m.proc.output()
    );
    // The NFs' direct edge, closed while instance 1 was captured, is back.
    assert!(
        wait_for(SOON, || m.proc.stderr.count(edge) > edges_before),
        "{}",
        m.proc.output()
    );
    stop_cleanly(&mut m.proc);
}

#[test]
fn nfs_are_restarted_scaled_and_stopped_through_the_api_under_onvm_up() {
    let _one = serial();
    let dir = TempDir::new("http-supervise");
    let mut m = Mgr::start(&dir);
    assert!(m.wait_rate("simple_forward", |r| r > 0.0), "{}", m.proc.output());
    let registered = |m: &Mgr| m.proc.stderr.count(|l| l.contains("NF \"simple_forward\" registered"));
    assert_eq!(registered(&m), 1);
    let id = m.nf("simple_forward")["id"].clone();
    let (s, b) = m.post(&format!("/api/v1/nfs/{id}/restart"), json!({}));
    assert_eq!(s, 202, "{b}");
    assert!(
        wait_for(SOON, || registered(&m) == 2),
        "not restarted\n{}",
        m.proc.output()
    );
    assert!(
        m.wait_rate("simple_forward", |r| r > 0.0),
        "no packets after the restart"
    );

    let forward = |m: &Mgr| m.get("/api/v1/services")[1]["instances"].as_array().unwrap().clone();
    let (s, b) = m.post("/api/v1/services/forward/scale", json!({ "instances": 2 }));
    assert_eq!(s, 202, "{b}");
    assert!(
        wait_for(SOON, || forward(&m).len() == 2),
        "not scaled to 2\n{}",
        m.proc.output()
    );
    let second = forward(&m)[1].as_u64().unwrap();
    let (s, b) = m.post(&format!("/api/v1/nfs/{second}/stop"), json!({}));
    assert_eq!(s, 202, "{b}");
    assert!(
        wait_for(SOON, || forward(&m).len() == 1),
        "not stopped\n{}",
        m.proc.output()
    );

    for (path, body, status, says) in [
        ("/api/v1/nfs/99/stop", json!({}), 404, "no NF instance 99 is running"),
        ("/api/v1/nfs/1/jump", json!({}), 404, "no action \"jump\""),
        (
            "/api/v1/services/nope/scale",
            json!({ "instances": 2 }),
            409,
            "no service \"nope\"",
        ),
        (
            "/api/v1/services/forward/scale",
            json!({ "instances": 0 }),
            409,
            "at least 1",
        ),
        (
            "/api/v1/services/forward/scale",
            json!({ "count": 2 }),
            400,
            "unknown field",
        ),
    ] {
        let (s, b) = m.post(path, body);
        assert_eq!(s, status, "{path}: {b}");
        assert!(b["error"].as_str().unwrap().contains(says), "{path}: {b}");
    }
    stop_cleanly(&mut m.proc);

    // A manager on its own has no supervisor to ask.
    let dir = TempDir::new("http-nosupervisor");
    let mut cmd = onvm();
    cmd.args(["mgr", "--port", "null"]);
    let mut alone = Mgr::start_with(&dir, cmd);
    let (s, b) = alone.post("/api/v1/services/forward/scale", json!({ "instances": 2 }));
    assert!(
        s == 409 && b["error"].as_str().unwrap().contains("no supervisor"),
        "{s} {b}"
    );
    stop_cleanly(&mut alone.proc);
}
