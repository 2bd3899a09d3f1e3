//! Talking to another worker's REST API: what runs there (status, `/getAllTask`), and config
//! writes forwarded to the leader. Every call has a deadline, so a dead peer costs at most that
//! long, and every answer a size cap, so a peer cannot make this worker buffer without bound.

use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::security::Secret;

/// How peers are reached when the REST API serves HTTPS (`httpTlsCert`).
#[derive(Clone, Debug, Default)]
pub struct PeerTls {
    /// `httpTlsCaFile`: a CA (PEM) trusted beside the system's roots.
    pub ca_file: Option<std::path::PathBuf>,
}

/// How long a peer may take to answer a read.
pub const PEER_TIMEOUT: Duration = Duration::from_secs(2);
/// How long the leader may take to apply a forwarded write (it validates the config, publishes
/// it and reads it back).
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(60);
/// The largest answer read from a peer.
pub const MAX_ANSWER_BYTES: usize = 16 * 1024 * 1024;

/// Why a peer did not answer as expected.
#[derive(Debug, thiserror::Error)]
#[error("worker at {addr}: {reason}")]
pub struct PeerError {
    /// `host:port`.
    pub addr: String,
    /// What went wrong.
    pub reason: String,
}

/// An HTTP client for peers (one connection pool per worker).
#[derive(Clone)]
pub struct PeerClient {
    http: reqwest::Client,
    /// `http` or `https` (every worker of a cluster serves the same).
    scheme: &'static str,
    /// The cluster's `restAuthToken`, sent on every call.
    token: Option<Secret>,
}

impl Default for PeerClient {
    fn default() -> Self {
        Self::new(None, None).expect("a plain HTTP client builds")
    }
}

impl PeerClient {
    /// A client that never goes through a proxy (peers are reached directly), sends `token`,
    /// and, with `tls`, speaks HTTPS trusting the system's roots plus the CA file, if any.
    pub fn new(token: Option<Secret>, tls: Option<PeerTls>) -> Result<Self, String> {
        let mut builder = reqwest::Client::builder()
            .no_proxy()
            .connect_timeout(PEER_TIMEOUT);
        if let Some(PeerTls {
            ca_file: Some(file),
        }) = &tls
        {
            let pem = std::fs::read(file).map_err(|e| format!("{}: {e}", file.display()))?;
            let certificates = reqwest::Certificate::from_pem_bundle(&pem)
                .map_err(|e| format!("{}: {e}", file.display()))?;
            for certificate in certificates {
                builder = builder.add_root_certificate(certificate);
            }
        }
        let http = builder.build().map_err(|e| describe(&e))?;
        Ok(PeerClient {
            http,
            scheme: if tls.is_some() { "https" } else { "http" },
            token,
        })
    }

    /// `GET {scheme}://{addr}{path}`, expecting 200 and JSON.
    pub async fn get_json<T: DeserializeOwned>(
        &self,
        addr: &str,
        path: &str,
    ) -> Result<T, PeerError> {
        let request = self
            .http
            .get(format!("{}://{addr}{path}", self.scheme))
            .timeout(PEER_TIMEOUT);
        let (status, body) = self.exchange(addr, request).await?;
        if status != 200 {
            return Err(PeerError {
                addr: addr.into(),
                reason: format!("answered {status}: {}", String::from_utf8_lossy(&body)),
            });
        }
        decode(addr, &body)
    }

    /// `POST {scheme}://{addr}{path}` with a JSON body: the status and the JSON answer.
    pub async fn post_json<B: Serialize, T: DeserializeOwned>(
        &self,
        addr: &str,
        path: &str,
        body: &B,
    ) -> Result<(u16, T), PeerError> {
        let request = self
            .http
            .post(format!("{}://{addr}{path}", self.scheme))
            .timeout(WRITE_TIMEOUT)
            .json(body);
        let (status, body) = self.exchange(addr, request).await?;
        Ok((status, decode(addr, &body)?))
    }

    async fn exchange(
        &self,
        addr: &str,
        request: reqwest::RequestBuilder,
    ) -> Result<(u16, Vec<u8>), PeerError> {
        let err = |reason: String| PeerError {
            addr: addr.to_string(),
            reason,
        };
        let request = match &self.token {
            Some(token) => request.bearer_auth(token.expose()),
            None => request,
        };
        let mut response = request.send().await.map_err(|e| err(describe(&e)))?;
        let status = response.status().as_u16();
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| err(describe(&e)))? {
            if body.len() + chunk.len() > MAX_ANSWER_BYTES {
                return Err(err(format!("answer larger than {MAX_ANSWER_BYTES} bytes")));
            }
            body.extend_from_slice(&chunk);
        }
        Ok((status, body))
    }
}

fn decode<T: DeserializeOwned>(addr: &str, body: &[u8]) -> Result<T, PeerError> {
    serde_json::from_slice(body).map_err(|e| PeerError {
        addr: addr.to_string(),
        reason: format!("bad JSON: {e}"),
    })
}

/// reqwest's error with its cause (its own text alone says little: "error sending request").
fn describe(e: &reqwest::Error) -> String {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    if e.is_timeout() {
        text.push_str(" (timed out)");
    }
    text
}
