//! The manager's HTTP endpoint (`--http ADDR:PORT`): a versioned REST API under
//! `/api/v1` (described in `docs/openapi.yaml`), a live stream of per-second stats
//! and events (Server-Sent Events), Prometheus metrics (`/metrics`) and the web
//! console (`/`, its page embedded in the binary).
//!
//! axum serves it on a thread of its own, with a one-thread tokio runtime: the switch
//! thread never parses, formats or waits for HTTP. What a request needs of the switch
//! goes to the manager as an [`asks::Ask`] over a channel; [`HttpPlane`], plugged into
//! the manager's control tick like the OpenFlow agent, answers it there (copying the
//! counters, or adding a rule through the checks the OpenFlow agent uses) and the
//! server thread does the rest. With no request pending the plane costs one empty
//! channel poll per control tick; the endpoint is off unless asked for.

mod asks;
mod metrics;
mod server;
mod views;

use std::net::SocketAddr;
use std::sync::mpsc;
use std::thread::JoinHandle;

use crate::control_plane::{ControlPlane, Switch};

/// The manager's side of the HTTP endpoint.
#[derive(Debug)]
pub struct HttpPlane {
    asks: mpsc::Receiver<asks::Asked>,
    addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl HttpPlane {
    /// Listen on `addr` (port 0: any free port) and start serving on a new thread.
    /// NF stops, restarts and scaling go to `supervisor`, if there is one.
    pub fn start(
        addr: SocketAddr,
        supervisor: Option<mpsc::Sender<crate::supervisor::Request>>,
    ) -> std::io::Result<HttpPlane> {
        // Bound here, so that a busy address is the caller's error, not the thread's.
        let listener = std::net::TcpListener::bind(addr)?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let (tx, rx) = mpsc::channel();
        let (stop, stopped) = tokio::sync::oneshot::channel();
        let thread = std::thread::Builder::new()
            .name("onvm-http".into())
            .spawn(move || server::serve(listener, tx, supervisor, stopped))?;
        Ok(HttpPlane {
            asks: rx,
            addr,
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    /// Where it listens.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }
}

impl ControlPlane for HttpPlane {
    fn poll(&mut self, sw: &mut dyn Switch) -> bool {
        let mut any = false;
        while let Ok(a) = self.asks.try_recv() {
            any = true;
            // A client that gave up has dropped the receiver: nothing to do about it.
            let _ = a.reply.send(asks::answer(a.ask, sw));
        }
        any
    }
}

impl Drop for HttpPlane {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
