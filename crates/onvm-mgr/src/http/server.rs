//! The server thread: axum's routes, the once-a-second sampler that feeds the live
//! stream, and the asking of the switch.

use std::convert::Infallible;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, Query, State};
use axum::http::{Method, StatusCode, Uri, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::{broadcast, oneshot};
use tokio_stream::StreamExt as _;
use tokio_stream::wrappers::BroadcastStream;

use super::asks::{Answer, Ask, Asked, ChainSpec, FlowSpec, Refusal, Seen};
use super::{metrics, views};

/// How long a request waits for the switch thread before it is told the manager is busy.
const ASK_TIMEOUT: Duration = Duration::from_secs(5);
/// How often the stream gets a stats document.
const SAMPLE_EVERY: Duration = Duration::from_secs(1);
/// Copies a capture's reader may fall behind by before copies are missed.
const CAPTURE_BACKLOG: usize = 8192;
/// Stream messages a slow client may fall behind by before it misses some.
const STREAM_BACKLOG: usize = 64;

/// The console's page (assets are inline: nothing is fetched from anywhere else).
const CONSOLE: &str = include_str!("console.html");

struct Shared {
    asks: mpsc::Sender<Asked>,
    /// (event name, JSON) for the live stream.
    stream: broadcast::Sender<Arc<(&'static str, String)>>,
    /// The last per-second observation: rates of every answer are since it.
    last: Mutex<Option<Arc<Seen>>>,
    /// Its document: what the per-second sections answer, and what a client joining
    /// the stream gets first.
    last_doc: Mutex<Option<Arc<Value>>>,
    answer_time: prometheus::Histogram,
    supervisor: Option<mpsc::Sender<crate::supervisor::Request>>,
}

type St = State<Arc<Shared>>;

/// An error answer: a status and a JSON body naming the problem.
struct ApiError(StatusCode, String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, Json(json!({ "error": self.1 }))).into_response()
    }
}

impl From<Refusal> for ApiError {
    fn from(r: Refusal) -> ApiError {
        ApiError(
            StatusCode::from_u16(r.status).unwrap_or(StatusCode::BAD_REQUEST),
            r.message,
        )
    }
}

impl From<JsonRejection> for ApiError {
    fn from(r: JsonRejection) -> ApiError {
        ApiError(StatusCode::BAD_REQUEST, r.body_text())
    }
}

fn unavailable(m: &str) -> ApiError {
    ApiError(StatusCode::SERVICE_UNAVAILABLE, m.into())
}

async fn ask(sh: &Shared, ask: Ask) -> Result<Answer, ApiError> {
    let (tx, rx) = oneshot::channel();
    let t = Instant::now();
    sh.asks
        .send(Asked { ask, reply: tx })
        .map_err(|_| unavailable("the manager has stopped"))?;
    match tokio::time::timeout(ASK_TIMEOUT, rx).await {
        Ok(Ok(a)) => {
            sh.answer_time.observe(t.elapsed().as_secs_f64());
            Ok(a)
        }
        Ok(Err(_)) => Err(unavailable("the manager has stopped")),
        Err(_) => Err(unavailable("the manager did not answer within 5 s")),
    }
}

/// A write: its answer, or the refusal.
async fn write(sh: &Shared, a: Ask, ok: StatusCode) -> Result<(StatusCode, Json<Value>), ApiError> {
    match ask(sh, a).await? {
        Answer::Done(v) => Ok((ok, Json(v))),
        Answer::Refused(r) => Err(r.into()),
        Answer::Observed(_) => Err(ApiError(StatusCode::INTERNAL_SERVER_ERROR, "unexpected answer".into())),
    }
}

async fn observe(sh: &Shared, events_from: usize, flows: bool) -> Result<Seen, ApiError> {
    match ask(sh, Ask::Observe { events_from, flows }).await? {
        Answer::Observed(s) => Ok(*s),
        Answer::Refused(r) => Err(r.into()),
        Answer::Done(_) => Err(ApiError(StatusCode::INTERNAL_SERVER_ERROR, "unexpected answer".into())),
    }
}

/// The last per-second document (counters at most a second old, rates over that
/// second); before the first one, counters now and no rates.
async fn document(sh: &Shared) -> Result<Value, ApiError> {
    if let Some(d) = sh.last_doc.lock().expect("not poisoned").clone() {
        return Ok((*d).clone());
    }
    let seen = observe(sh, usize::MAX, true).await?;
    Ok(views::document(&seen, None))
}

async fn status(State(sh): St) -> Result<Json<Value>, ApiError> {
    let seen = observe(&sh, usize::MAX, true).await?;
    let d = views::document(&seen, None);
    let running = d["nfs"]
        .as_array()
        .map_or(0, |n| n.iter().filter(|n| n["state"] != "exited").count());
    Ok(Json(json!({
        "version": env!("CARGO_PKG_VERSION"),
        "api": "v1",
        "uptime_s": d["uptime_s"],
        "ports": d["ports"].as_array().map_or(0, Vec::len),
        "nfs_running": running,
        "services": d["services"].as_array().map_or(0, Vec::len),
        "rules": d["rules"],
        "drops": d["drops"].as_array().map_or(0, |v| v.iter().map(|d| d["count"].as_u64().unwrap_or(0)).sum::<u64>()),
        "events": d["events"],
    })))
}

/// `GET /api/v1/{section}` for a section of the document.
async fn section(State(sh): St, Path(name): Path<String>) -> Result<Json<Value>, ApiError> {
    const SECTIONS: [&str; 7] = ["ports", "nfs", "services", "drops", "tables", "edges", "stats"];
    if !SECTIONS.contains(&name.as_str()) {
        return Err(ApiError(
            StatusCode::NOT_FOUND,
            format!("no such resource /api/v1/{name} (see docs/openapi.yaml)"),
        ));
    }
    let mut d = document(&sh).await?;
    Ok(Json(if name == "stats" { d } else { d[name.as_str()].take() }))
}

async fn flows(State(sh): St) -> Result<Json<Value>, ApiError> {
    let seen = observe(&sh, usize::MAX, true).await?;
    let up = seen.obs.snap.uptime.as_secs_f64();
    Ok(Json(Value::Array(
        seen.flows.iter().map(|(id, r)| views::flow_json(*id, r, up)).collect(),
    )))
}

async fn add_flow(State(sh): St, body: Result<Json<FlowSpec>, JsonRejection>) -> Result<impl IntoResponse, ApiError> {
    write(&sh, Ask::AddFlow(body?.0), StatusCode::CREATED).await
}

async fn delete_flow(State(sh): St, Path(id): Path<String>) -> Result<impl IntoResponse, ApiError> {
    let id = id
        .parse::<u64>()
        .map_err(|_| ApiError(StatusCode::BAD_REQUEST, format!("rule id {id:?} is not a number")))?;
    write(&sh, Ask::DeleteFlow(id), StatusCode::OK).await
}

/// Chains are sets of rules: what they make is the graph of `edges` (a chain added
/// here has its rules carry a cookie of its name, which is how it is deleted).
async fn chains(State(sh): St) -> Result<Json<Value>, ApiError> {
    let mut d = document(&sh).await?;
    Ok(Json(json!({ "edges": d["edges"].take() })))
}

async fn add_chain(State(sh): St, body: Result<Json<ChainSpec>, JsonRejection>) -> Result<impl IntoResponse, ApiError> {
    write(&sh, Ask::AddChain(body?.0), StatusCode::CREATED).await
}

async fn delete_chain(State(sh): St, Path(name): Path<String>) -> Result<impl IntoResponse, ApiError> {
    write(&sh, Ask::DeleteChain(name), StatusCode::OK).await
}

#[derive(Deserialize)]
struct EventsFrom {
    #[serde(default)]
    from: usize,
}

async fn events(
    State(sh): St,
    q: Result<Query<EventsFrom>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let from = q.map_err(|e| ApiError(StatusCode::BAD_REQUEST, e.body_text()))?.from;
    let seen = observe(&sh, from, false).await?;
    let first = seen.obs.events - seen.events.len();
    Ok(Json(json!({
        "next": seen.obs.events,
        "events": seen.events.iter().enumerate().map(|(i, e)| json!({ "seq": first + i, "text": e })).collect::<Vec<_>>(),
    })))
}

#[derive(Deserialize)]
struct CaptureQuery {
    at: String,
    dir: String,
    count: Option<u64>,
    snaplen: Option<u32>,
}

/// `GET /api/v1/capture?at=port:N|nf:ID&dir=rx|tx[&count=N][&snaplen=S]`: a pcap file,
/// streamed as packets pass; it ends after `count` packets, or when the client goes.
async fn capture(
    State(sh): St,
    q: Result<Query<CaptureQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    let q = q.map_err(|e| ApiError(StatusCode::BAD_REQUEST, e.body_text()))?.0;
    let bad = |m: String| ApiError(StatusCode::BAD_REQUEST, m);
    let point = crate::capture::parse_point(&q.at, &q.dir).map_err(bad)?;
    if q.count == Some(0) {
        return Err(bad(
            "count=0 captures nothing: leave it out to capture until you stop".into()
        ));
    }
    let snaplen = q.snaplen.unwrap_or(65535).clamp(64, 65535);
    let (to, copies) = tokio::sync::mpsc::channel(CAPTURE_BACKLOG);
    let tap = crate::capture::Tap {
        point,
        remaining: q.count.unwrap_or(u64::MAX),
        snaplen: snaplen as usize,
        to,
        missed: 0,
    };
    let _accepted = write(&sh, Ask::Capture(tap), StatusCode::OK).await?;
    let sink = crate::capture::Staged::default();
    let header = pcap_file::pcap::PcapHeader {
        snaplen,
        ts_resolution: pcap_file::TsResolution::NanoSecond,
        ..Default::default()
    };
    let mut pcap = pcap_file::pcap::PcapWriter::with_header(sink.clone(), header)
        .map_err(|e| ApiError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    let head = tokio_stream::once(Ok::<_, Infallible>(sink.take()));
    let records = tokio_stream::wrappers::ReceiverStream::new(copies).map(move |r| {
        // Writing to memory fails only for a record pcap cannot hold (none here).
        let _ = pcap.write_packet(&pcap_file::pcap::PcapPacket::new(r.time, r.len, &r.data));
        Ok(sink.take())
    });
    Ok((
        [(header::CONTENT_TYPE, "application/vnd.tcpdump.pcap")],
        axum::body::Body::from_stream(head.chain(records)),
    )
        .into_response())
}

/// Ask the supervisor to do `command`; 202 with what it did.
async fn supervise(sh: &Shared, command: crate::supervisor::Command) -> Result<(StatusCode, Json<Value>), ApiError> {
    let conflict = |m: String| ApiError(StatusCode::CONFLICT, m);
    let Some(to) = &sh.supervisor else {
        return Err(conflict(
            "this manager runs no supervisor: NFs are started, stopped and scaled by `onvm up`".into(),
        ));
    };
    let (reply, answer) = oneshot::channel();
    to.send(crate::supervisor::Request { command, reply })
        .map_err(|_| unavailable("the supervisor has stopped"))?;
    match tokio::time::timeout(ASK_TIMEOUT, answer).await {
        Ok(Ok(Ok(done))) => Ok((StatusCode::ACCEPTED, Json(json!({ "done": done })))),
        Ok(Ok(Err(why))) => Err(conflict(why)),
        Ok(Err(_)) => Err(unavailable("the supervisor has stopped")),
        Err(_) => Err(unavailable("the supervisor did not answer within 5 s")),
    }
}

/// `POST /api/v1/nfs/{id}/stop` and `.../restart`: by the supervisor that runs it.
async fn nf_action(State(sh): St, Path((id, action)): Path<(String, String)>) -> Result<impl IntoResponse, ApiError> {
    let id: u16 = id
        .parse()
        .map_err(|_| ApiError(StatusCode::BAD_REQUEST, format!("instance {id:?} is not a number")))?;
    let seen = observe(&sh, usize::MAX, false).await?;
    let running = seen.obs.rings.iter().any(|r| r.id == id);
    let nf = seen
        .obs
        .snap
        .nfs
        .iter()
        .find(|n| n.id == id && running && n.state != "exited")
        .ok_or_else(|| ApiError(StatusCode::NOT_FOUND, format!("no NF instance {id} is running")))?;
    let who = nf.supervised_as.clone().ok_or_else(|| {
        ApiError(
            StatusCode::CONFLICT,
            format!("instance {id}: which process it is was not known when it registered"),
        )
    })?;
    let command = match action.as_str() {
        "stop" => crate::supervisor::Command::Stop(who),
        "restart" => crate::supervisor::Command::Restart(who),
        a => {
            return Err(ApiError(
                StatusCode::NOT_FOUND,
                format!("no action {a:?} on NFs (stop, restart)"),
            ));
        }
    };
    supervise(&sh, command).await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ScaleSpec {
    instances: u16,
}

/// `POST /api/v1/services/{name}/scale` `{"instances": N}`.
async fn scale(
    State(sh): St,
    Path(service): Path<String>,
    body: Result<Json<ScaleSpec>, JsonRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let instances = body?.0.instances;
    supervise(&sh, crate::supervisor::Command::Scale { service, instances }).await
}

async fn prometheus_metrics(State(sh): St) -> Result<Response, ApiError> {
    let seen = observe(&sh, usize::MAX, false).await?;
    let text = metrics::render(&seen, &sh.answer_time);
    Ok(([(header::CONTENT_TYPE, metrics::CONTENT_TYPE)], text).into_response())
}

/// `GET /api/v1/stream`: a `stats` event each second (the `/api/v1/stats` document)
/// and an `event` event per line of the event log; the last stats at once.
async fn stream(State(sh): St) -> Sse<impl tokio_stream::Stream<Item = Result<Event, Infallible>>> {
    let first = sh.last_doc.lock().expect("not poisoned").clone();
    let first = tokio_stream::iter(first.map(|d| Ok(Event::default().event("stats").data(d.to_string()))));
    let rest = BroadcastStream::new(sh.stream.subscribe()).filter_map(|m| match m {
        Ok(m) => Some(Ok(Event::default().event(m.0).data(m.1.clone()))),
        // A client too slow to keep up misses messages, and is told how many.
        Err(tokio_stream::wrappers::errors::BroadcastStreamRecvError::Lagged(n)) => {
            Some(Ok(Event::default().event("lagged").data(n.to_string())))
        }
    });
    Sse::new(first.chain(rest)).keep_alive(KeepAlive::default())
}

async fn console() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], CONSOLE)
}

async fn not_found(method: Method, uri: Uri) -> ApiError {
    ApiError(
        StatusCode::NOT_FOUND,
        format!("no such endpoint: {method} {uri} (see docs/openapi.yaml)"),
    )
}

/// Once a second: observe, keep it as the base of rates, and stream it with the new
/// events.
async fn sample(sh: Arc<Shared>) {
    let mut tick = tokio::time::interval(SAMPLE_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut next_event = 0;
    loop {
        tick.tick().await;
        let Ok(seen) = observe(&sh, next_event, true).await else {
            continue;
        };
        let seen = Arc::new(seen);
        let prev = sh.last.lock().expect("not poisoned").replace(seen.clone());
        let doc = Arc::new(views::document(&seen, prev.as_deref()));
        *sh.last_doc.lock().expect("not poisoned") = Some(doc.clone());
        let doc = doc.to_string();
        let first = seen.obs.events - seen.events.len();
        for (i, e) in seen.events.iter().enumerate() {
            let line = json!({ "seq": first + i, "text": e }).to_string();
            // No subscriber is not an error: the stream is for whoever listens.
            let _ = sh.stream.send(Arc::new(("event", line)));
        }
        next_event = seen.obs.events;
        let _ = sh.stream.send(Arc::new(("stats", doc)));
    }
}

fn app(sh: Arc<Shared>) -> Router {
    Router::new()
        .route("/", get(console))
        .route("/metrics", get(prometheus_metrics))
        .route("/api/v1/status", get(status))
        .route("/api/v1/flows", get(flows).post(add_flow))
        .route("/api/v1/flows/{id}", delete(delete_flow))
        .route("/api/v1/chains", get(chains).post(add_chain))
        .route("/api/v1/chains/{name}", delete(delete_chain))
        .route("/api/v1/events", get(events))
        .route("/api/v1/capture", get(capture))
        .route("/api/v1/nfs/{id}/{action}", axum::routing::post(nf_action))
        .route("/api/v1/services/{name}/scale", axum::routing::post(scale))
        .route("/api/v1/stream", get(stream))
        .route("/api/v1/{section}", get(section))
        .fallback(not_found)
        .with_state(sh)
}

/// The thread's body: serve on `listener` until `stop` (or the manager's end drops it).
pub(super) fn serve(
    listener: std::net::TcpListener,
    asks: mpsc::Sender<Asked>,
    supervisor: Option<mpsc::Sender<crate::supervisor::Request>>,
    stop: oneshot::Receiver<()>,
) {
    let rt = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            crate::stats::emit_err(format_args!("onvm mgr: http: cannot start its runtime: {e}\n"));
            return;
        }
    };
    let (stream, _) = broadcast::channel(STREAM_BACKLOG);
    let sh = Arc::new(Shared {
        asks,
        stream,
        last: Mutex::new(None),
        last_doc: Mutex::new(None),
        answer_time: metrics::answer_time(),
        supervisor,
    });
    rt.block_on(async move {
        let listener = match tokio::net::TcpListener::from_std(listener) {
            Ok(l) => l,
            Err(e) => {
                crate::stats::emit_err(format_args!("onvm mgr: http: {e}\n"));
                return;
            }
        };
        tokio::spawn(sample(sh.clone()));
        tokio::select! {
            r = axum::serve(listener, app(sh)) => {
                if let Err(e) = r {
                    crate::stats::emit_err(format_args!("onvm mgr: http: {e}\n"));
                }
            }
            _ = stop => {}
        }
    });
    // Dropping the runtime ends open streams and the sampler.
}
