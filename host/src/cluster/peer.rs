//! Asking another worker's REST API (for what runs there): one small HTTP/1.1 GET with a
//! deadline, so a dead peer costs at most that long.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// How long a peer may take to answer.
pub const PEER_TIMEOUT: Duration = Duration::from_secs(2);

/// Why a peer did not answer.
#[derive(Debug, thiserror::Error)]
#[error("worker at {addr}: {reason}")]
pub struct PeerError {
    /// `host:port`.
    pub addr: String,
    /// What went wrong.
    pub reason: String,
}

/// `GET http://{addr}{path}` and parse the JSON body.
pub async fn get_json(addr: &str, path: &str) -> Result<serde_json::Value, PeerError> {
    let err = |reason: String| PeerError {
        addr: addr.to_string(),
        reason,
    };
    let exchange = async {
        let mut stream = tokio::net::TcpStream::connect(addr).await?;
        let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await?;
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw).await?;
        Ok::<_, std::io::Error>(raw)
    };
    let raw = tokio::time::timeout(PEER_TIMEOUT, exchange)
        .await
        .map_err(|_| err(format!("no answer within {PEER_TIMEOUT:?}")))?
        .map_err(|e| err(e.to_string()))?;
    let text = String::from_utf8_lossy(&raw);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| err("malformed HTTP answer".into()))?;
    if !head.starts_with("HTTP/1.1 200") {
        return Err(err(head.lines().next().unwrap_or_default().to_string()));
    }
    serde_json::from_str(body).map_err(|e| err(format!("bad JSON: {e}")))
}
