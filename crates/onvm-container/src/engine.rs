//! The connection to a Docker engine.
//!
//! Only a unix socket is accepted: the Engine API is root-equivalent, and a TCP endpoint
//! would be reachable by more than this machine's owner. The endpoint is, in order, the
//! one given (`[manager] docker` in a config), `DOCKER_HOST`, or `/var/run/docker.sock`.
//!
//! bollard is async; the supervisor polls synchronously. [`Engine`] owns a one-thread
//! tokio runtime: calls block on it for the few milliseconds an API call takes, and the
//! tasks that wait for containers to exit run on its thread in the background.

use std::future::Future;
use std::time::Duration;

use bollard::Docker;
use thiserror::Error;

/// Where the engine listens unless told otherwise.
pub const DEFAULT_ENDPOINT: &str = "unix:///var/run/docker.sock";

/// How long one API call may take before it is an error (a build may take longer; it
/// streams progress and is not bound by this).
const CALL_TIMEOUT: Duration = Duration::from_secs(30);

/// The engine cannot be used.
#[derive(Debug, Error)]
pub enum EngineError {
    /// Not a `unix://` endpoint (or a path).
    #[error("Docker endpoint {0:?} is not a unix socket (unix:///PATH): only a local engine is used")]
    NotUnix(String),
    /// No answer.
    #[error(
        "cannot reach the Docker engine at {endpoint}: {source} (is dockerd running? set DOCKER_HOST or \
         [manager] docker to its socket)"
    )]
    Unreachable {
        /// The endpoint tried.
        endpoint: String,
        /// Why.
        source: bollard::errors::Error,
    },
    /// The runtime for the API calls could not start.
    #[error("cannot start the Docker client's runtime: {0}")]
    Runtime(std::io::Error),
}

/// A connected Docker engine.
#[derive(Debug)]
pub struct Engine {
    rt: tokio::runtime::Runtime,
    docker: Docker,
    endpoint: String,
    /// The API version agreed with the engine, for messages.
    api: String,
}

impl Engine {
    /// Connect to `endpoint` (see the module doc for the default) and agree on an API
    /// version.
    pub fn connect(endpoint: Option<&str>) -> Result<Engine, EngineError> {
        let endpoint = match endpoint {
            Some(e) => e.to_string(),
            None => std::env::var("DOCKER_HOST").unwrap_or_else(|_| DEFAULT_ENDPOINT.to_string()),
        };
        let path = if let Some(p) = endpoint.strip_prefix("unix://") {
            p.to_string()
        } else if endpoint.starts_with('/') {
            endpoint.clone()
        } else {
            return Err(EngineError::NotUnix(endpoint));
        };
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("onvm-docker")
            .enable_all()
            .build()
            .map_err(EngineError::Runtime)?;
        let unreachable = |source| EngineError::Unreachable {
            endpoint: endpoint.clone(),
            source,
        };
        let docker = Docker::connect_with_unix(&path, CALL_TIMEOUT.as_secs(), bollard::API_DEFAULT_VERSION)
            .map_err(unreachable)?;
        let docker = rt.block_on(docker.negotiate_version()).map_err(unreachable)?;
        let api = docker.client_version().to_string();
        Ok(Engine {
            rt,
            docker,
            endpoint,
            api,
        })
    }

    /// Where it listens.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// The API version in use.
    pub fn api_version(&self) -> &str {
        &self.api
    }

    /// The client, for calls of one's own (run them with [`Engine::block_on`]).
    pub fn docker(&self) -> &Docker {
        &self.docker
    }

    /// Run `f` to completion on the engine's runtime.
    pub fn block_on<F: Future>(&self, f: F) -> F::Output {
        self.rt.block_on(f)
    }

    /// Run `f` in the background on the engine's runtime.
    pub(crate) fn spawn<F>(&self, f: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        self.rt.spawn(f);
    }
}

/// Whether `e` says the object does not exist (404) or is not in a state for the call
/// (304 not modified, 409 conflict: already stopped, already being removed).
pub(crate) fn is_gone(e: &bollard::errors::Error) -> bool {
    matches!(
        e,
        bollard::errors::Error::DockerResponseServerError {
            status_code: 304 | 404 | 409,
            ..
        }
    )
}

/// An engine error as an `io::Error` (what the supervisor's traits return).
pub(crate) fn io_error(what: &str, e: bollard::errors::Error) -> std::io::Error {
    std::io::Error::other(format!("{what}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_unix_endpoints_are_accepted() {
        let e = Engine::connect(Some("tcp://127.0.0.1:2375")).unwrap_err();
        assert!(e.to_string().contains("not a unix socket"), "{e}");
    }

    #[test]
    fn a_missing_engine_is_named() {
        let e = Engine::connect(Some("unix:///nonexistent/docker.sock")).unwrap_err();
        let msg = e.to_string();
        assert!(
            msg.contains("/nonexistent/docker.sock") && msg.contains("is dockerd running"),
            "{msg}"
        );
    }
}
