//! The outgoing-HTTP capability (`wasi:http/outgoing-handler`, from wasmtime-wasi-http): a task
//! reaches only the origins its connector was granted (`http.url` and `http.allowed.hosts`,
//! checked against the worker's `httpEgressAllowlist` when the connector is created). Every
//! other request fails inside the guest with `HTTP-request-denied` and a warning in the log
//! naming the task and the refused origin. No other sockets are granted.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use wasmtime_wasi_http::io::TokioIo;
use wasmtime_wasi_http::{
    Error as HttpError, RequestOptions, WasiBody, WasiHttpCtx, WasiHttpCtxView, WasiHttpHooks,
    WasiHttpView,
};

use crate::wasm::state::{TaskIds, TaskState};

/// The connector key naming the service a connector talks to; its origin is granted.
pub const URL_KEY: &str = "http.url";
/// More origins a connector may reach: a comma list of `host`, `host:port` or
/// `scheme://host[:port]`.
pub const ALLOWED_HOSTS_KEY: &str = "http.allowed.hosts";

/// How long a connection may take when the guest sets no `connect-timeout`.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long the first byte (and then each further frame) may take when the guest sets none.
const READ_TIMEOUT: Duration = Duration::from_secs(30);
/// The largest response body handed to a guest.
const MAX_RESPONSE_BYTES: usize = 64 << 20;

/// One origin a task may reach.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Origin {
    /// `http` or `https`; `None` matches both.
    pub scheme: Option<String>,
    /// Lower-case host name or IP literal (IPv6 without brackets).
    pub host: String,
    /// `None` matches the scheme's default port only.
    pub port: Option<u16>,
}

impl Origin {
    /// Parses `scheme://host[:port][/path]`, `host:port` or `host`.
    pub fn parse(text: &str) -> Result<Origin, String> {
        let text = text.trim();
        let (scheme, rest) = match text.split_once("://") {
            Some((s, rest)) => {
                let s = s.to_ascii_lowercase();
                if s != "http" && s != "https" {
                    return Err(format!("`{text}`: only http and https are supported"));
                }
                (Some(s), rest)
            }
            None => (None, text),
        };
        let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
        if authority.contains('@') {
            return Err(format!(
                "`{text}`: user info in a URL is not supported (use http.headers)"
            ));
        }
        let (host, port) =
            split_authority(authority).ok_or_else(|| format!("`{text}` does not name a host"))?;
        let port = match (port, &scheme) {
            (Some(p), _) => Some(p),
            (None, Some(s)) => Some(default_port(s)),
            (None, None) => None,
        };
        Ok(Origin { scheme, host, port })
    }

    fn allows(&self, scheme: &str, host: &str, port: u16) -> bool {
        self.scheme.as_deref().is_none_or(|s| s == scheme)
            && self.host == host
            && self.port.unwrap_or(default_port(scheme)) == port
    }
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if let Some(s) = &self.scheme {
            write!(f, "{s}://")?;
        }
        if self.host.contains(':') {
            write!(f, "[{}]", self.host)?;
        } else {
            f.write_str(&self.host)?;
        }
        match self.port {
            Some(p) => write!(f, ":{p}"),
            None => Ok(()),
        }
    }
}

fn default_port(scheme: &str) -> u16 {
    if scheme == "https" { 443 } else { 80 }
}

/// `host[:port]` or `[v6][:port]` into a lower-case host and the port.
fn split_authority(authority: &str) -> Option<(String, Option<u16>)> {
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let (host, after) = v6.split_once(']')?;
        (host, after.strip_prefix(':'))
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        }
    };
    if host.is_empty() || host.contains(|c: char| c.is_whitespace() || c == '/') {
        return None;
    }
    let port = match port {
        Some(p) => Some(p.parse::<u16>().ok()?),
        None => None,
    };
    Some((host.to_ascii_lowercase(), port))
}

/// The origins a connector's tasks may reach over HTTP; empty = no outgoing HTTP at all.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HttpGrant {
    /// Every granted origin.
    pub origins: Vec<Origin>,
}

impl HttpGrant {
    /// Reads `http.url` and `http.allowed.hosts` from a connector config; an error names the
    /// key and the value that cannot be an origin.
    pub fn from_config<'a>(
        get: impl Fn(&str) -> Option<&'a String>,
    ) -> Result<HttpGrant, (String, String)> {
        let mut origins = Vec::new();
        if let Some(url) = get(URL_KEY).filter(|u| !u.trim().is_empty()) {
            if !url.contains("://") {
                return Err((
                    URL_KEY.into(),
                    format!("`{url}` needs a scheme (http:// or https://)"),
                ));
            }
            origins.push(Origin::parse(url).map_err(|e| (URL_KEY.to_string(), e))?);
        }
        if let Some(list) = get(ALLOWED_HOSTS_KEY) {
            for item in list.split(',').filter(|i| !i.trim().is_empty()) {
                origins.push(Origin::parse(item).map_err(|e| (ALLOWED_HOSTS_KEY.to_string(), e))?);
            }
        }
        Ok(HttpGrant { origins })
    }

    /// Whether a request to `scheme://host:port` is granted.
    pub fn allows(&self, scheme: &str, host: &str, port: u16) -> bool {
        self.origins.iter().any(|o| o.allows(scheme, host, port))
    }
}

/// The worker's ceiling on connector HTTP grants (`httpEgressAllowlist`): when set, every
/// origin a connector names must match one of these host patterns (`host`, `*.domain`), so a
/// REST caller cannot point a connector at an internal service the operator did not list.
#[derive(Clone, Debug, Default)]
pub struct EgressAllowlist {
    /// Lower-case host patterns; empty = any host may be granted.
    patterns: Vec<String>,
}

impl EgressAllowlist {
    /// Parses a comma list of host patterns.
    pub fn parse(list: &str) -> EgressAllowlist {
        EgressAllowlist {
            patterns: list
                .split(',')
                .map(|p| p.trim().to_ascii_lowercase())
                .filter(|p| !p.is_empty())
                .collect(),
        }
    }

    /// Refuses a grant naming a host outside the allowlist.
    pub fn check(&self, grant: &HttpGrant) -> Result<(), String> {
        if self.patterns.is_empty() {
            return Ok(());
        }
        for origin in &grant.origins {
            let host = &origin.host;
            let listed = self.patterns.iter().any(|p| match p.strip_prefix("*.") {
                Some(domain) => host.ends_with(&format!(".{domain}")),
                None => p == host,
            });
            if !listed {
                return Err(format!(
                    "host `{host}` is not in the worker's httpEgressAllowlist"
                ));
            }
        }
        Ok(())
    }
}

/// What one task's store holds for `wasi:http`: the context and the grant-checking hooks.
pub struct HttpAccess {
    ctx: WasiHttpCtx,
    hooks: GrantedSender,
}

impl HttpAccess {
    /// Access limited to `grant`, logging refusals under `ids`; no wait (connect, first
    /// byte, between bytes) longer than `max_wait`, the task's call timeout: a guest blocked
    /// on a response runs no WebAssembly, so the call deadline alone could not end it.
    pub fn new(ids: TaskIds, grant: HttpGrant, max_wait: Duration) -> Self {
        HttpAccess {
            ctx: WasiHttpCtx::new(),
            hooks: GrantedSender {
                ids,
                grant,
                max_wait,
            },
        }
    }
}

impl WasiHttpView for TaskState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http.ctx,
            table: &mut self.table,
            hooks: &mut self.http.hooks,
        }
    }
}

/// Sends a guest's request if its origin is granted.
struct GrantedSender {
    ids: TaskIds,
    grant: HttpGrant,
    max_wait: Duration,
}

type SendFuture = Box<
    dyn Future<
            Output = Result<
                (
                    http::Response<WasiBody>,
                    Box<dyn Future<Output = Result<(), HttpError>> + Send>,
                ),
                HttpError,
            >,
        > + Send,
>;

impl WasiHttpHooks for GrantedSender {
    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        _fut: Box<dyn Future<Output = Result<(), HttpError>> + Send>,
    ) -> SendFuture {
        let uri = request.uri();
        let scheme = uri.scheme_str().unwrap_or("https").to_ascii_lowercase();
        let Some((host, port)) = uri
            .authority()
            .and_then(|a| split_authority(a.as_str()))
            .map(|(h, p)| (h, p.unwrap_or(default_port(&scheme))))
        else {
            return Box::new(async { Err(HttpError::HttpRequestUriInvalid) });
        };
        if !self.grant.allows(&scheme, &host, port) {
            tracing::warn!(
                connector = %self.ids.connector,
                task = self.ids.task,
                "HTTP request to {scheme}://{host}:{port} denied: not granted by http.url or \
                 http.allowed.hosts"
            );
            return Box::new(async { Err(HttpError::HttpRequestDenied) });
        }
        let mut options = options.unwrap_or_default();
        for wait in [
            &mut options.connect_timeout,
            &mut options.first_byte_timeout,
            &mut options.between_bytes_timeout,
        ] {
            *wait = wait.map(|w| w.min(self.max_wait));
        }
        Box::new(send(request, scheme, host, port, options, self.max_wait))
    }
}

/// Sends `request` on a new HTTP/1.1 connection (TLS for `https`, verified against the
/// platform's roots) and reads the whole response body, within the request's timeouts.
async fn send(
    mut request: http::Request<WasiBody>,
    scheme: String,
    host: String,
    port: u16,
    options: RequestOptions,
    max_wait: Duration,
) -> Result<
    (
        http::Response<WasiBody>,
        Box<dyn Future<Output = Result<(), HttpError>> + Send>,
    ),
    HttpError,
> {
    let connect_timeout = options
        .connect_timeout
        .unwrap_or(CONNECT_TIMEOUT.min(max_wait));
    let first_byte = options
        .first_byte_timeout
        .unwrap_or(READ_TIMEOUT.min(max_wait));
    let between_bytes = options
        .between_bytes_timeout
        .unwrap_or(READ_TIMEOUT.min(max_wait));
    let tcp = tokio::time::timeout(
        connect_timeout,
        tokio::net::TcpStream::connect((host.as_str(), port)),
    )
    .await
    .map_err(|_| HttpError::ConnectionTimeout)?
    .map_err(|e| match e.kind() {
        std::io::ErrorKind::ConnectionRefused => HttpError::ConnectionRefused,
        _ => HttpError::Connect(e),
    })?;
    let _ = tcp.set_nodelay(true);
    let path = request
        .uri()
        .path_and_query()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "/".into());
    *request.uri_mut() = path.parse().map_err(|_| HttpError::HttpRequestUriInvalid)?;
    let response = if scheme == "https" {
        let tls = tls_connect(tcp, &host, connect_timeout).await?;
        exchange(TokioIo::new(tls), request, first_byte, between_bytes).await?
    } else {
        exchange(TokioIo::new(tcp), request, first_byte, between_bytes).await?
    };
    let done: Box<dyn Future<Output = Result<(), HttpError>> + Send> = Box::new(async { Ok(()) });
    Ok((response, done))
}

async fn tls_connect(
    tcp: tokio::net::TcpStream,
    host: &str,
    timeout: Duration,
) -> Result<tokio_rustls::client::TlsStream<tokio::net::TcpStream>, HttpError> {
    use rustls_platform_verifier::ConfigVerifierExt;
    let config = tokio_rustls::rustls::ClientConfig::with_platform_verifier()
        .map_err(|e| HttpError::InternalError(Some(format!("TLS setup: {e}"))))?;
    let name = rustls_pki_types::ServerName::try_from(host.to_string())
        .map_err(|_| HttpError::HttpRequestUriInvalid)?;
    let connector = tokio_rustls::TlsConnector::from(std::sync::Arc::new(config));
    tokio::time::timeout(timeout, connector.connect(name, tcp))
        .await
        .map_err(|_| HttpError::ConnectionTimeout)?
        .map_err(HttpError::Tls)
}

async fn exchange<T>(
    io: TokioIo<T>,
    request: http::Request<WasiBody>,
    first_byte: Duration,
    between_bytes: Duration,
) -> Result<http::Response<WasiBody>, HttpError>
where
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http1::handshake(io).await?;
    let driver = tokio::spawn(conn);
    let outcome = async {
        let response = tokio::time::timeout(first_byte, sender.send_request(request))
            .await
            .map_err(|_| HttpError::HttpResponseTimeout)??;
        let (parts, mut body) = response.into_parts();
        let mut bytes = Vec::new();
        loop {
            let frame = tokio::time::timeout(between_bytes, body.frame())
                .await
                .map_err(|_| HttpError::ConnectionReadTimeout)?;
            let Some(frame) = frame else { break };
            if let Ok(data) = frame?.into_data() {
                if bytes.len() + data.len() > MAX_RESPONSE_BYTES {
                    return Err(HttpError::HttpResponseBodySize(Some(
                        MAX_RESPONSE_BYTES as u64,
                    )));
                }
                bytes.extend_from_slice(&data);
            }
        }
        let body = Full::new(Bytes::from(bytes))
            .map_err(|never| match never {})
            .boxed_unsync();
        Ok(http::Response::from_parts(parts, body))
    }
    .await;
    driver.abort();
    outcome
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn grant(pairs: &[(&str, &str)]) -> Result<HttpGrant, (String, String)> {
        let config: BTreeMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        HttpGrant::from_config(|k| config.get(k))
    }

    #[test]
    fn a_grant_is_the_origin_of_http_url_plus_the_allowed_hosts() {
        let g = grant(&[
            (URL_KEY, "http://Sink.example:8080/ingest?x=1"),
            (
                ALLOWED_HOSTS_KEY,
                "auth.example, https://[::1]:8443, other.example:9000",
            ),
        ])
        .unwrap();
        assert!(g.allows("http", "sink.example", 8080));
        assert!(
            !g.allows("https", "sink.example", 8080),
            "the scheme is part of http.url's origin"
        );
        assert!(!g.allows("http", "sink.example", 80), "so is the port");
        assert!(g.allows("https", "auth.example", 443));
        assert!(g.allows("http", "auth.example", 80));
        assert!(
            !g.allows("http", "auth.example", 8080),
            "a bare host means its default ports"
        );
        assert!(g.allows("https", "::1", 8443));
        assert!(g.allows("http", "other.example", 9000));
        assert!(!g.allows("http", "evil.example", 8080));
        assert_eq!(grant(&[]).unwrap(), HttpGrant::default());
    }

    #[test]
    fn bad_origins_name_their_key() {
        assert_eq!(
            grant(&[(URL_KEY, "sink.example/x")]).unwrap_err().0,
            URL_KEY
        );
        assert_eq!(
            grant(&[(URL_KEY, "ftp://sink.example")]).unwrap_err().0,
            URL_KEY
        );
        assert_eq!(
            grant(&[(URL_KEY, "http://u:p@sink.example")])
                .unwrap_err()
                .0,
            URL_KEY
        );
        assert_eq!(
            grant(&[(ALLOWED_HOSTS_KEY, "a.example:notaport")])
                .unwrap_err()
                .0,
            ALLOWED_HOSTS_KEY
        );
    }

    fn get(url: &str) -> http::Request<WasiBody> {
        let body = http_body_util::Empty::<Bytes>::new()
            .map_err(|never| match never {})
            .boxed_unsync();
        http::Request::get(url).body(body).unwrap()
    }

    async fn sent(
        sender: &mut GrantedSender,
        url: &str,
    ) -> Result<http::Response<WasiBody>, HttpError> {
        let future = sender.send_request(get(url), None, Box::new(async { Ok(()) }));
        std::pin::Pin::from(future)
            .await
            .map(|(response, _)| response)
    }

    #[tokio::test]
    async fn only_granted_origins_are_reached() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let mut buf = [0u8; 1024];
                let _ = stream.read(&mut buf).await;
                let _ = stream
                    .write_all(
                        b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\nconnection: close\r\n\r\nhello",
                    )
                    .await;
            }
        });
        let mut sender = GrantedSender {
            ids: TaskIds {
                connector: "c".into(),
                task: 0,
            },
            grant: grant(&[(URL_KEY, &format!("http://127.0.0.1:{port}/in"))]).unwrap(),
            max_wait: Duration::from_secs(5),
        };
        let response = sent(&mut sender, &format!("http://127.0.0.1:{port}/other?x=1"))
            .await
            .expect("the granted origin answers");
        assert_eq!(response.status(), 200);
        let body = response.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(&body[..], b"hello");
        for refused in [
            format!("http://localhost:{port}/"),
            format!("https://127.0.0.1:{port}/"),
            "http://127.0.0.1:9/".to_string(),
            "http://169.254.169.254/latest/meta-data".to_string(),
        ] {
            match sent(&mut sender, &refused).await {
                Err(HttpError::HttpRequestDenied) => {}
                other => panic!(
                    "{refused}: expected a denial, got {:?}",
                    other.map(|r| r.status())
                ),
            }
        }
    }

    #[test]
    fn the_egress_allowlist_bounds_every_granted_host() {
        let g = grant(&[
            (URL_KEY, "https://api.example.com"),
            (ALLOWED_HOSTS_KEY, "127.0.0.1"),
        ])
        .unwrap();
        assert!(EgressAllowlist::default().check(&g).is_ok());
        assert!(
            EgressAllowlist::parse("*.example.com, 127.0.0.1")
                .check(&g)
                .is_ok()
        );
        let refused = EgressAllowlist::parse("*.example.com")
            .check(&g)
            .unwrap_err();
        assert!(refused.contains("127.0.0.1"), "{refused}");
    }
}
