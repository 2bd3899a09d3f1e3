//! `sandbox-probe`: a source connector that tries, from inside the sandbox, to reach what its
//! grant does not give it, and logs what happened to each attempt as `probe <name>: <outcome>`
//! (one log line each, on its first `poll()`). The security tests assert every outcome.
//!
//! Config: `file.dir` (the grant; the test plants symlinks and a sibling file around it),
//! `probe.port` (a loopback TCP port that is listening), `probe.env` (a variable the worker
//! has), `probe.pin` (declared secret), `kafka.bootstrap.server` (for the Kafka attempts).

use std::io::Write;
use std::net::ToSocketAddrs;

use ferry_sdk::kafka::{Consumer, Producer};
use ferry_sdk::{
    Config, ConnectorInfo, Error, Position, SourceBatch, SourceConnector, SourceTask, config_key,
    get, secret_config_key,
};

struct Probe;

impl SourceConnector for Probe {
    type Task = ProbeTask;

    fn describe() -> ConnectorInfo {
        ConnectorInfo {
            name: "sandbox-probe".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            aliases: vec![],
            config_keys: vec![
                config_key("file.dir", true, None, "the granted directory"),
                config_key("probe.port", true, None, "a listening loopback TCP port"),
                config_key(
                    "probe.env",
                    false,
                    None,
                    "a variable the worker process has",
                ),
                secret_config_key("probe.pin", false, "a secret only this connector declares"),
            ],
        }
    }

    fn validate(config: &[(String, String)]) -> Result<(), Error> {
        ferry_sdk::check_required(&Self::describe(), config)
    }
}

struct ProbeTask {
    config: Config,
    done: bool,
}

/// `ok: <what>` or `denied: <error kind>: <error>`.
fn outcome<T>(r: std::io::Result<T>, ok: impl FnOnce(T) -> String) -> String {
    match r {
        Ok(v) => format!("ok: {}", ok(v)),
        Err(e) => format!("denied: {:?}: {e}", e.kind()),
    }
}

/// `GET http://127.0.0.1:<port>/` through `wasi:http`: the host must refuse it unless the
/// connector's `http.url` / `http.allowed.hosts` grant that origin.
fn http_get(port: &str) -> String {
    use wasip2::http::outgoing_handler;
    use wasip2::http::types::{ErrorCode, Fields, OutgoingRequest, Scheme};
    let request = OutgoingRequest::new(Fields::new());
    let _ = request.set_scheme(Some(&Scheme::Http));
    let _ = request.set_authority(Some(&format!("127.0.0.1:{port}")));
    let _ = request.set_path_with_query(Some("/"));
    let answer = match outgoing_handler::handle(request, None) {
        Err(code) => Err(code),
        Ok(future) => {
            future.subscribe().block();
            match future.get() {
                Some(Ok(Ok(response))) => Ok(response.status()),
                Some(Ok(Err(code))) => Err(code),
                _ => return "error: no response".into(),
            }
        }
    };
    match answer {
        Ok(status) => format!("ok: HTTP {status}"),
        Err(ErrorCode::HttpRequestDenied) => "denied: HTTP-request-denied".into(),
        Err(other) => format!("error: {other:?}"),
    }
}

impl ProbeTask {
    fn attempts(&self) -> Vec<(&'static str, String)> {
        let dir = get(&self.config, "file.dir").unwrap_or("/nowhere");
        let port = get(&self.config, "probe.port").unwrap_or("9");
        let read =
            |p: String| outcome(std::fs::read_to_string(p), |t| format!("{} bytes", t.len()));
        let mut out = vec![
            (
                "write-inside",
                outcome(
                    std::fs::File::create(format!("{dir}/inside.txt"))
                        .and_then(|mut f| f.write_all(b"in")),
                    |_| "written".into(),
                ),
            ),
            ("read-absolute", read("/etc/passwd".into())),
            ("read-dotdot", read(format!("{dir}/../sibling.txt"))),
            ("read-symlink-file", read(format!("{dir}/passwd-link"))),
            ("read-symlink-dir", read(format!("{dir}/etc-link/hostname"))),
            (
                "list-root",
                outcome(std::fs::read_dir("/"), |d| format!("{} entries", d.count())),
            ),
            (
                "tcp-connect",
                outcome(
                    std::net::TcpStream::connect(format!("127.0.0.1:{port}")),
                    |_| "connected".into(),
                ),
            ),
            ("http-outside-grant", http_get(port)),
            (
                "udp-bind",
                outcome(std::net::UdpSocket::bind("127.0.0.1:0"), |_| "bound".into()),
            ),
            (
                "dns",
                outcome(("localhost", 80).to_socket_addrs(), |a| {
                    format!("{} addresses", a.count())
                }),
            ),
            (
                "env-count",
                format!("{} variables", std::env::vars().count()),
            ),
        ];
        if let Some(var) = get(&self.config, "probe.env") {
            out.push((
                "env-planted",
                match std::env::var(var) {
                    Ok(v) => format!("ok: {v}"),
                    Err(e) => format!("denied: {e}"),
                },
            ));
        }
        out.push((
            "kafka-foreign-group",
            match Consumer::open("payments-service", &["t".into()], &[]) {
                Ok(_) => "ok: opened".into(),
                Err(e) => format!("denied: {e}"),
            },
        ));
        let kinit = [(
            "sasl.kerberos.kinit.cmd".to_string(),
            "touch /tmp/ferry-pwned".to_string(),
        )];
        out.push((
            "kafka-kinit-cmd",
            match Producer::open(&kinit) {
                Ok(_) => "ok: opened".into(),
                Err(e) => format!("denied: {e}"),
            },
        ));
        out
    }
}

impl SourceTask for ProbeTask {
    fn open(config: Config, _committed: Vec<Position>) -> Result<Self, Error> {
        Ok(ProbeTask {
            config,
            done: false,
        })
    }

    fn poll(&mut self) -> Result<Vec<SourceBatch>, Error> {
        if !self.done {
            self.done = true;
            for (name, result) in self.attempts() {
                ferry_sdk::log::info(&format!("probe {name}: {result}"));
            }
            let pin = get(&self.config, "probe.pin").unwrap_or("");
            ferry_sdk::log::info(&format!(
                "probe pin seen by the guest: {pin} ({} chars)",
                pin.len()
            ));
            let host_keys = self
                .config
                .iter()
                .filter(|(k, _)| k.starts_with("kafka.client."))
                .count();
            ferry_sdk::log::info(&format!(
                "probe kafka.client keys seen by the guest: {host_keys}"
            ));
            ferry_sdk::log::info("probe finished");
        }
        Ok(Vec::new())
    }
}

ferry_sdk::export_source!(Probe);
