//! Settings: the worker's `connect.conf` (the seed's keys plus `httpBind`) and connector
//! configs (string maps with the seed's keys and Ferry's sandbox keys).

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::security::{FileRoots, GrantPolicy, Secret};

/// A bad worker setting; `main` prints it and exits with code 2.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file cannot be read.
    #[error("{file}: cannot read: {reason}")]
    Unreadable {
        /// The config file.
        file: PathBuf,
        /// The OS error.
        reason: String,
    },
    /// A required key is missing.
    #[error("{file}: missing required key `{key}`")]
    Missing {
        /// The config file.
        file: PathBuf,
        /// The key.
        key: &'static str,
    },
    /// A key has a value that cannot be used.
    #[error("{file}: bad value for `{key}`: {reason}")]
    BadValue {
        /// The config file.
        file: PathBuf,
        /// The key.
        key: String,
        /// Why it is bad.
        reason: String,
    },
}

/// The worker's settings (`ferry -c connect.conf`).
#[derive(Clone, Debug)]
pub struct WorkerConfig {
    /// Unique name of this worker in the cluster; the RocketMQ clients' instance name.
    pub worker_id: String,
    /// Where connector configs, positions and the compile cache are kept.
    pub store_path_root_dir: PathBuf,
    /// REST port (0 picks a free port; the chosen one is logged).
    pub http_port: u16,
    /// REST bind address (default 127.0.0.1).
    pub http_bind: IpAddr,
    /// `httpAdvertisedAddress` (like Kafka Connect's `rest.advertised.host.name`/`port`):
    /// `host` or `host:port` other workers use to reach this one. Unset: the bind address, or
    /// a non-loopback address of this machine when binding every interface.
    pub http_advertised_address: Option<String>,
    /// RocketMQ name server(s), `host:port[;host:port]`.
    pub namesrv_addr: String,
    /// Whether the RocketMQ clients sign requests with `accessKey`/`secretKey`.
    pub acl_enable: bool,
    /// ACL access key.
    pub access_key: Option<String>,
    /// ACL secret key (never printed).
    pub secret_key: Option<Secret>,
    /// Whether missing topics and groups are created.
    pub auto_create_group_enable: bool,
    /// Folders scanned for `*.wasm` connectors.
    pub plugin_paths: Vec<PathBuf>,
    /// `stateSnapshotIntervalMs` (Ferry's addition, default 10 minutes): how often the leader
    /// publishes the whole state (connectors, worker addresses, positions) to the sync topics.
    /// Must stay well below the broker's `fileReservedTime` (72 h by default).
    pub state_snapshot_interval: Duration,
    /// `clusterName` (Ferry's addition): suffixes the internal topic and group names, so
    /// separate clusters can share one RocketMQ. Unset: the seed's names.
    pub cluster_name: Option<String>,
    /// `restAuthToken` / `restAuthTokenFile`: when set, every route but `/healthz` needs
    /// `Authorization: Bearer <token>`, and workers send it to each other.
    pub rest_auth_token: Option<Secret>,
    /// `legacyGetWrites` (default true): whether the seed's state-changing GET routes work.
    pub legacy_get_writes: bool,
    /// `httpTlsCert` + `httpTlsKey`: serve the REST API over HTTPS (and reach peers over it).
    pub http_tls: Option<TlsFiles>,
    /// `httpTlsCaFile`: the CA (PEM) that signed the other workers' certificates; unset, the
    /// system's roots.
    pub http_tls_ca_file: Option<PathBuf>,
    /// `fileRoots` and `configEnvAllowlist`: what connector configs may reach.
    pub grants: GrantPolicy,
    /// Request limits of the REST server.
    pub http_limits: HttpLimits,
}

/// The certificate chain and private key (PEM files) the REST server presents.
#[derive(Clone, Debug)]
pub struct TlsFiles {
    /// `httpTlsCert`.
    pub cert: PathBuf,
    /// `httpTlsKey`.
    pub key: PathBuf,
}

/// Bounds on what one caller can make the REST server hold.
#[derive(Clone, Debug)]
pub struct HttpLimits {
    /// `httpMaxBodyBytes` (default 1 MiB): larger request bodies get 413.
    pub max_body_bytes: usize,
    /// `httpRequestTimeoutMs` (default 120 s, above a forwarded write's 60 s): a request still
    /// running then gets 503.
    pub request_timeout: Duration,
    /// `httpMaxConcurrentRequests` (default 64): requests beyond it wait (within the timeout).
    pub max_concurrent: usize,
}

impl Default for HttpLimits {
    fn default() -> Self {
        HttpLimits {
            max_body_bytes: 1 << 20,
            request_timeout: Duration::from_secs(120),
            max_concurrent: 64,
        }
    }
}

/// Keys `connect.conf` understands; others are warned about.
const KNOWN_KEYS: &[&str] = &[
    "workerId",
    "storePathRootDir",
    "httpPort",
    "httpBind",
    "httpAdvertisedAddress",
    "namesrvAddr",
    "aclEnable",
    "accessKey",
    "secretKey",
    "autoCreateGroupEnable",
    "pluginPaths",
    "clusterName",
    "stateSnapshotIntervalMs",
    "restAuthToken",
    "restAuthTokenFile",
    "legacyGetWrites",
    "httpTlsCert",
    "httpTlsKey",
    "httpTlsCaFile",
    "fileRoots",
    "configEnvAllowlist",
    "httpEgressAllowlist",
    "taskMemoryMaxBytes",
    "taskCallTimeoutMaxMs",
    "httpMaxBodyBytes",
    "httpRequestTimeoutMs",
    "httpMaxConcurrentRequests",
];

/// Parses `key=value` lines. A `#` begins a comment at the start of a line or after
/// whitespace (as in the seed's file: `autoCreateGroupEnable=true #x`); a `#` inside a value
/// (a `secretKey` such as `a#b`) is kept, and `\#` is a literal `#` even after whitespace.
pub fn parse_properties(text: &str) -> BTreeMap<String, String> {
    let mut map = BTreeMap::new();
    for line in text.lines() {
        let line = strip_comment(line);
        let line = line.trim();
        if line.is_empty() || line.starts_with('!') {
            continue;
        }
        let (key, value) = match line.split_once('=').or_else(|| line.split_once(':')) {
            Some((k, v)) => (k.trim(), v.trim()),
            None => (line, ""),
        };
        map.insert(key.to_string(), value.to_string());
    }
    map
}

/// Whether `v` is `host`, `host:port` or `[v6]:port`, as `httpAdvertisedAddress` takes it.
fn is_host_and_port(v: &str) -> bool {
    let (host, port) = match v.rsplit_once(':') {
        Some((h, p)) if !h.ends_with(':') && (!h.contains(':') || h.starts_with('[')) => {
            (h, Some(p))
        }
        _ => (v, None),
    };
    !host.is_empty()
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | ':' | '[' | ']'))
        && port.is_none_or(|p| p.parse::<u16>().is_ok_and(|p| p > 0))
}

/// `line` up to its comment, with `\#` unescaped to `#`.
fn strip_comment(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars().peekable();
    let mut after_space = true;
    while let Some(c) = chars.next() {
        match c {
            '\\' if chars.peek() == Some(&'#') => {
                out.push('#');
                chars.next();
                after_space = false;
            }
            '#' if after_space => break,
            c => {
                out.push(c);
                after_space = c.is_whitespace();
            }
        }
    }
    out
}

impl WorkerConfig {
    /// Reads and checks `file`. Unknown keys are returned as warnings.
    pub fn load(file: &Path) -> Result<(WorkerConfig, Vec<String>), ConfigError> {
        let text = std::fs::read_to_string(file).map_err(|e| ConfigError::Unreadable {
            file: file.to_path_buf(),
            reason: e.to_string(),
        })?;
        Self::from_properties(file, &parse_properties(&text))
    }

    /// Checks parsed properties; `file` is only used in messages.
    pub fn from_properties(
        file: &Path,
        props: &BTreeMap<String, String>,
    ) -> Result<(WorkerConfig, Vec<String>), ConfigError> {
        let required = |key: &'static str| {
            props
                .get(key)
                .filter(|v| !v.is_empty())
                .cloned()
                .ok_or_else(|| ConfigError::Missing {
                    file: file.to_path_buf(),
                    key,
                })
        };
        let bad = |key: &str, reason: String| ConfigError::BadValue {
            file: file.to_path_buf(),
            key: key.to_string(),
            reason,
        };
        let boolean =
            |key: &str, default: bool| match props.get(key).map(|v| v.to_ascii_lowercase()) {
                None => Ok(default),
                Some(v) if v == "true" => Ok(true),
                Some(v) if v == "false" => Ok(false),
                Some(v) => Err(bad(key, format!("`{v}` is not true or false"))),
            };
        let worker_id = required("workerId")?;
        // It becomes a RocketMQ instance name (client id `IP@workerId`) and part of group names.
        if !worker_id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
        {
            return Err(bad(
                "workerId",
                format!("`{worker_id}`: use letters, digits, `_`, `-` and `.`"),
            ));
        }
        let store_path_root_dir = PathBuf::from(required("storePathRootDir")?);
        let http_port = match props.get("httpPort") {
            None => 8082,
            Some(v) => v
                .parse()
                .map_err(|_| bad("httpPort", format!("`{v}` is not a port number")))?,
        };
        let http_bind = match props.get("httpBind") {
            None => IpAddr::from([127, 0, 0, 1]),
            Some(v) => v
                .parse()
                .map_err(|_| bad("httpBind", format!("`{v}` is not an IP address")))?,
        };
        let http_advertised_address = match props.get("httpAdvertisedAddress") {
            None => None,
            Some(v) if is_host_and_port(v) => Some(v.clone()),
            Some(v) => {
                return Err(bad(
                    "httpAdvertisedAddress",
                    format!("`{v}` is not `host` or `host:port` (no scheme, no path)"),
                ));
            }
        };
        let state_snapshot_interval = match props.get("stateSnapshotIntervalMs") {
            None => Duration::from_secs(600),
            Some(v) => match v.parse::<u64>() {
                Ok(ms) if ms >= 100 => Duration::from_millis(ms),
                _ => {
                    return Err(bad(
                        "stateSnapshotIntervalMs",
                        format!("`{v}` is not a number of milliseconds >= 100"),
                    ));
                }
            },
        };
        let namesrv_addr = required("namesrvAddr")?;
        for addr in namesrv_addr.split(';') {
            if !addr.contains(':') {
                return Err(bad("namesrvAddr", format!("`{addr}` is not host:port")));
            }
        }
        let acl_enable = boolean("aclEnable", false)?;
        let access_key = props.get("accessKey").cloned();
        let secret_key = props.get("secretKey").map(Secret::new);
        if acl_enable && (access_key.is_none() || secret_key.is_none()) {
            return Err(bad(
                "aclEnable",
                "true needs accessKey and secretKey".into(),
            ));
        }
        let plugin_paths: Vec<PathBuf> = required("pluginPaths")?
            .split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .map(PathBuf::from)
            .collect();
        let rest_auth_token = match (props.get("restAuthToken"), props.get("restAuthTokenFile")) {
            (Some(_), Some(_)) => {
                return Err(bad(
                    "restAuthTokenFile",
                    "set either restAuthToken or restAuthTokenFile, not both".into(),
                ));
            }
            (Some(t), None) => Some(t.clone()),
            (None, Some(f)) => Some(
                std::fs::read_to_string(f)
                    .map_err(|e| bad("restAuthTokenFile", format!("`{f}`: {e}")))?
                    .trim()
                    .to_string(),
            ),
            (None, None) => None,
        };
        let rest_auth_token = match rest_auth_token {
            Some(t) if t.len() < 16 => {
                return Err(bad(
                    "restAuthToken",
                    format!(
                        "{} characters is too short to resist guessing: use at least 16",
                        t.len()
                    ),
                ));
            }
            Some(t) if !t.bytes().all(|b| b.is_ascii_graphic()) => {
                return Err(bad(
                    "restAuthToken",
                    "use printable ASCII without spaces (it travels in an HTTP header)".into(),
                ));
            }
            t => t.map(Secret::new),
        };
        let path = |key: &str| props.get(key).filter(|v| !v.is_empty()).map(PathBuf::from);
        let http_tls = match (path("httpTlsCert"), path("httpTlsKey")) {
            (Some(cert), Some(key)) => Some(TlsFiles { cert, key }),
            (None, None) => None,
            (Some(_), None) => {
                return Err(bad("httpTlsKey", "httpTlsCert needs httpTlsKey".into()));
            }
            (None, Some(_)) => {
                return Err(bad("httpTlsCert", "httpTlsKey needs httpTlsCert".into()));
            }
        };
        let file_roots: Vec<PathBuf> = props
            .get("fileRoots")
            .map(|r| comma_list(r).into_iter().map(PathBuf::from).collect())
            .unwrap_or_default();
        let roots =
            FileRoots::new(&file_roots, &store_path_root_dir).map_err(|e| bad("fileRoots", e))?;
        let env = props
            .get("configEnvAllowlist")
            .map(|l| crate::security::secrets::EnvAllowlist::parse(l))
            .unwrap_or_default();
        let limit = |key: &str, default: u64, min: u64| match props.get(key) {
            None => Ok(default),
            Some(v) => match v.parse::<u64>() {
                Ok(n) if n >= min => Ok(n),
                _ => Err(bad(key, format!("`{v}` is not a number >= {min}"))),
            },
        };
        let defaults = HttpLimits::default();
        let http_limits = HttpLimits {
            max_body_bytes: limit("httpMaxBodyBytes", defaults.max_body_bytes as u64, 1024)?
                as usize,
            request_timeout: Duration::from_millis(limit(
                "httpRequestTimeoutMs",
                defaults.request_timeout.as_millis() as u64,
                100,
            )?),
            max_concurrent: limit(
                "httpMaxConcurrentRequests",
                defaults.max_concurrent as u64,
                1,
            )? as usize,
        };
        let ceiling_defaults = crate::security::TaskCeilings::default();
        let ceilings = crate::security::TaskCeilings {
            memory_bytes: limit(
                "taskMemoryMaxBytes",
                ceiling_defaults.memory_bytes as u64,
                1 << 20,
            )?
            .min(crate::wasm::engine::MAX_TASK_MEMORY as u64) as usize,
            call_timeout_ms: limit("taskCallTimeoutMaxMs", ceiling_defaults.call_timeout_ms, 10)?,
        };
        let warnings = props
            .keys()
            .filter(|k| !KNOWN_KEYS.contains(&k.as_str()))
            .map(|k| format!("{}: unknown key `{k}` ignored", file.display()))
            .collect();
        Ok((
            WorkerConfig {
                worker_id,
                store_path_root_dir,
                http_port,
                http_bind,
                http_advertised_address,
                state_snapshot_interval,
                namesrv_addr,
                acl_enable,
                access_key,
                secret_key,
                auto_create_group_enable: boolean("autoCreateGroupEnable", true)?,
                plugin_paths,
                cluster_name: props.get("clusterName").filter(|c| !c.is_empty()).cloned(),
                rest_auth_token,
                legacy_get_writes: boolean("legacyGetWrites", true)?,
                http_tls,
                http_tls_ca_file: path("httpTlsCaFile"),
                grants: GrantPolicy {
                    roots,
                    env,
                    egress: props
                        .get("httpEgressAllowlist")
                        .map(|l| crate::wasm::caps::http::EgressAllowlist::parse(l))
                        .unwrap_or_default(),
                    ceilings,
                },
                http_limits,
            },
            warnings,
        ))
    }
}

/// A connector's config: the user's string pairs.
pub use crate::model::ConnectorConfig;

/// The key naming the plugin (or one of its aliases).
pub const CONNECTOR_CLASS: &str = "connector-class";
/// Added by the host to every config a guest sees: the connector's name.
pub const CONNECTOR_NAME: &str = "connector.name";
/// How many tasks to run.
pub const TASKS_NUM: &str = "tasks.num";
/// Topics a sink consumes.
pub const ROCKETMQ_TOPICS: &str = "rocketmq.topics";
/// Per-task memory limit.
pub const MEMORY_MAX: &str = "task.memory.max.bytes";
/// Per-call time limit.
pub const CALL_TIMEOUT: &str = "task.call.timeout.ms";
/// The one directory the host grants a task.
pub const FILE_DIR: &str = "file.dir";
/// How long (ms) a task may keep failing to reach its source or destination before it gives up
/// and shows `FAILED`; `-1` (the default) retries forever. Kafka Connect's key and meaning.
pub const RETRY_TIMEOUT: &str = "errors.retry.timeout";

/// `none` (the default: a record that cannot be delivered fails the task) or `all` (it goes to
/// the dead-letter queue, or is skipped without one, and the task goes on). Kafka Connect's key.
pub const ERRORS_TOLERANCE: &str = "errors.tolerance";
/// The RocketMQ topic records that cannot be delivered go to (with `errors.tolerance=all`).
pub const DLQ_TOPIC: &str = "errors.deadletterqueue.topic.name";
/// Whether a dead-lettered record carries `connect.errors.*` headers naming where it came
/// from and why it failed (default `false`, as in Kafka Connect).
pub const DLQ_CONTEXT_HEADERS: &str = "errors.deadletterqueue.context.headers.enable";
/// Whether each tolerated failure is logged (connector, task, topic, partition, offset,
/// reason; never the record's bytes). Default `false`.
pub const ERRORS_LOG: &str = "errors.log.enable";

/// Prefixes of the RocketMQ topics no connector may write: the broker's system topics and
/// Ferry's internal topics (whoever writes those controls the cluster).
const RESERVED_TOPIC_PREFIXES: &[&str] = &[
    "rmq_sys_",
    "RMQ_SYS_",
    "%RETRY%",
    "%DLQ%",
    "SCHEDULE_TOPIC_XXXX",
    "TBW102",
    "BenchmarkTest",
    "OFFSET_MOVED_EVENT",
    "SELF_TEST_TOPIC",
    "TRANS_CHECK_MAX_TIME_TOPIC",
    "connector-cluster-topic",
    "connector-config-topic",
    "connector-position-topic",
    "connector-offset-topic",
];

/// Checks that `topic` is a RocketMQ topic name a connector may write: the broker's character
/// set and length, and none of the system or Ferry-internal topics.
pub fn check_writable_topic(topic: &str) -> Result<(), String> {
    if topic.is_empty() || topic.len() > 127 {
        return Err(format!("`{topic}` is not 1 to 127 characters long"));
    }
    if !topic
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        return Err(format!(
            "`{topic}` may only hold letters, digits, `_` and `-`"
        ));
    }
    check_unreserved_topic(topic)
}

/// Checks that `topic` is none of the broker's system topics or Ferry's internal topics, which
/// no connector may write (a source's records are refused there too).
pub fn check_unreserved_topic(topic: &str) -> Result<(), String> {
    match RESERVED_TOPIC_PREFIXES
        .iter()
        .find(|p| topic.starts_with(*p))
    {
        Some(p) => Err(format!(
            "`{topic}` is a reserved topic (`{p}...` belongs to RocketMQ or to Ferry's cluster)"
        )),
        None => Ok(()),
    }
}

/// What a task does with a record it can never deliver (Kafka Connect's KIP-298 keys).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ErrorPolicy {
    /// `errors.tolerance=all`.
    pub tolerate: bool,
    /// `errors.deadletterqueue.topic.name`, checked by [`check_writable_topic`].
    pub dead_letter_topic: Option<String>,
    /// `errors.deadletterqueue.context.headers.enable`.
    pub context_headers: bool,
    /// `errors.log.enable`.
    pub log: bool,
}

impl ErrorPolicy {
    fn from_config(config: &ConnectorConfig) -> Result<Self, ConnectorConfigError> {
        let refused = |key: &str, reason: String| ConnectorConfigError {
            key: key.into(),
            reason,
        };
        let flag = |key: &str| match config.get(key).map(|v| v.trim()) {
            None | Some("") | Some("false") => Ok(false),
            Some("true") => Ok(true),
            Some(other) => Err(refused(key, format!("`{other}` is not true or false"))),
        };
        let tolerate = match config.get(ERRORS_TOLERANCE).map(|v| v.trim()) {
            None | Some("") | Some("none") => false,
            Some("all") => true,
            Some(other) => {
                return Err(refused(
                    ERRORS_TOLERANCE,
                    format!("`{other}` is not none or all"),
                ));
            }
        };
        let dead_letter_topic = match config.get(DLQ_TOPIC).map(|v| v.trim()) {
            None | Some("") => None,
            Some(topic) => {
                check_writable_topic(topic).map_err(|e| refused(DLQ_TOPIC, e))?;
                Some(topic.to_string())
            }
        };
        Ok(ErrorPolicy {
            tolerate,
            dead_letter_topic,
            context_headers: flag(DLQ_CONTEXT_HEADERS)?,
            log: flag(ERRORS_LOG)?,
        })
    }
}

/// The items of a comma list, trimmed, empty ones left out (`rocketmq.topics`, `fileRoots`).
pub fn comma_list(text: &str) -> Vec<String> {
    text.split(',')
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(String::from)
        .collect()
}

/// A connector config value that cannot be used (answered with 400).
#[derive(Debug, thiserror::Error)]
#[error("{key}: {reason}")]
pub struct ConnectorConfigError {
    /// The key.
    pub key: String,
    /// Why.
    pub reason: String,
}

/// The host-level settings of a connector, checked once when it is created or updated.
#[derive(Clone, Debug)]
pub struct HostSettings {
    /// `tasks.num` (default 1).
    pub tasks: u32,
    /// `task.memory.max.bytes` (default 64 MiB).
    pub memory_max: usize,
    /// `task.call.timeout.ms` (default 30 s).
    pub call_timeout: Duration,
    /// `rocketmq.topics` as a list.
    pub rocketmq_topics: Vec<String>,
    /// `file.dir`.
    pub file_dir: Option<PathBuf>,
    /// `kafka.bootstrap.server` and `kafka.client.*`.
    pub kafka: crate::model::KafkaGrant,
    /// `errors.retry.timeout`; `None` retries forever.
    pub retry_timeout: Option<Duration>,
    /// `errors.tolerance` and the dead-letter queue.
    pub errors: ErrorPolicy,
    /// `http.url` and `http.allowed.hosts`: the origins the tasks may send HTTP requests to.
    pub http: crate::wasm::caps::http::HttpGrant,
}

impl HostSettings {
    /// Reads the host-level keys of `config` (references already resolved) and checks its
    /// grants against the worker's `policy`: `file.dir` inside `fileRoots`, `kafka.client.*`
    /// on the allowlist.
    pub fn from_config(
        config: &ConnectorConfig,
        policy: &GrantPolicy,
    ) -> Result<Self, ConnectorConfigError> {
        let refused = |e: String| match e.split_once(": ") {
            Some((key, reason)) => ConnectorConfigError {
                key: key.to_string(),
                reason: reason.to_string(),
            },
            None => ConnectorConfigError {
                key: String::new(),
                reason: e,
            },
        };
        let file_dir = match config.get(FILE_DIR).filter(|d| !d.is_empty()) {
            Some(dir) => Some(policy.roots.check_dir(FILE_DIR, dir).map_err(refused)?),
            None => None,
        };
        let mut kafka = crate::model::KafkaGrant::from_config(config);
        kafka.properties = crate::security::kafka_properties::check(
            &kafka.properties,
            crate::security::kafka_properties::Setter::Config,
            &policy.roots,
            crate::model::CLIENT_PREFIX,
        )
        .map_err(refused)?;
        let http = crate::wasm::caps::http::HttpGrant::from_config(|k| config.get(k))
            .map_err(|(key, reason)| ConnectorConfigError { key, reason })?;
        policy
            .egress
            .check(&http)
            .map_err(|reason| ConnectorConfigError {
                key: crate::wasm::caps::http::URL_KEY.into(),
                reason,
            })?;
        fn number<T>(
            config: &ConnectorConfig,
            key: &str,
            default: T,
            min: T,
            max: T,
        ) -> Result<T, ConnectorConfigError>
        where
            T: std::str::FromStr + PartialOrd + std::fmt::Display + Copy,
        {
            let Some(raw) = config.get(key) else {
                return Ok(default);
            };
            let value: T = raw.trim().parse().map_err(|_| ConnectorConfigError {
                key: key.into(),
                reason: format!("`{raw}` is not a number"),
            })?;
            if value < min || value > max {
                return Err(ConnectorConfigError {
                    key: key.into(),
                    reason: format!("{value} is outside {min}..={max}"),
                });
            }
            Ok(value)
        }
        Ok(HostSettings {
            tasks: number(config, TASKS_NUM, 1u32, 1, 1024)?,
            memory_max: number(
                config,
                MEMORY_MAX,
                (64usize << 20).min(policy.ceilings.memory_bytes),
                1 << 20,
                policy.ceilings.memory_bytes,
            )?,
            call_timeout: Duration::from_millis(number(
                config,
                CALL_TIMEOUT,
                30_000u64.min(policy.ceilings.call_timeout_ms),
                10,
                policy.ceilings.call_timeout_ms,
            )?),
            rocketmq_topics: config
                .get(ROCKETMQ_TOPICS)
                .map(|t| comma_list(t))
                .unwrap_or_default(),
            file_dir,
            kafka,
            retry_timeout: match number(config, RETRY_TIMEOUT, -1i64, -1, 31_536_000_000)? {
                -1 => None,
                ms => Some(Duration::from_millis(ms as u64)),
            },
            errors: ErrorPolicy::from_config(config)?,
            http,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_policy_reads_kafka_connect_keys_and_refuses_reserved_topics() {
        let config = |pairs: &[(&str, &str)]| -> ConnectorConfig {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        assert_eq!(
            ErrorPolicy::from_config(&config(&[])).unwrap(),
            ErrorPolicy::default()
        );
        let all = ErrorPolicy::from_config(&config(&[
            (ERRORS_TOLERANCE, "all"),
            (DLQ_TOPIC, "orders-dlq"),
            (DLQ_CONTEXT_HEADERS, "true"),
            (ERRORS_LOG, "true"),
        ]))
        .unwrap();
        assert!(all.tolerate && all.context_headers && all.log);
        assert_eq!(all.dead_letter_topic.as_deref(), Some("orders-dlq"));
        for (key, value) in [
            (ERRORS_TOLERANCE, "some"),
            (DLQ_CONTEXT_HEADERS, "yes"),
            (DLQ_TOPIC, "connector-config-topic"),
            (DLQ_TOPIC, "connector-config-topic-blue"),
            (DLQ_TOPIC, "%DLQ%group"),
            (DLQ_TOPIC, "rmq_sys_TRACE"),
            (DLQ_TOPIC, "a b"),
        ] {
            let err = ErrorPolicy::from_config(&config(&[(key, value)])).unwrap_err();
            assert_eq!(err.key, key, "{value}: {err}");
        }
    }

    #[test]
    fn seed_file_with_inline_comments_parses() {
        let text = "workerId=CONNECTOR_WORKER_1  #name\nstorePathRootDir=/tmp/x\nhttpPort=8082\n\
                    namesrvAddr=127.0.0.1:9876\naclEnable=false\nautoCreateGroupEnable=true #x\n\
                    pluginPaths=/a,/b\nbogus=1\n";
        let (config, warnings) =
            WorkerConfig::from_properties(Path::new("c.conf"), &parse_properties(text)).unwrap();
        assert_eq!(config.worker_id, "CONNECTOR_WORKER_1");
        assert_eq!(
            config.plugin_paths,
            vec![PathBuf::from("/a"), PathBuf::from("/b")]
        );
        assert!(config.auto_create_group_enable);
        assert_eq!(warnings.len(), 1);
        assert!(warnings[0].contains("bogus"));
    }

    #[test]
    fn hash_inside_a_value_is_kept() {
        let props = parse_properties(
            "# a comment\nsecretKey=ab#cd  # the key\naccessKey=x \\# y\n  #indented=1\nk=#v\n",
        );
        assert_eq!(props["secretKey"], "ab#cd");
        assert_eq!(props["accessKey"], "x # y");
        assert_eq!(props["k"], "#v");
        assert_eq!(props.len(), 3, "{props:?}");
    }

    #[test]
    fn advertised_address_takes_host_or_host_and_port() {
        let base = "workerId=w\nstorePathRootDir=/x\nnamesrvAddr=a:1\npluginPaths=/p\n";
        for good in ["10.0.0.7", "w1.example:8082", "[fd00::1]:8082", "fd00::1"] {
            let props = parse_properties(&format!("{base}httpAdvertisedAddress={good}\n"));
            let (config, _) = WorkerConfig::from_properties(Path::new("c.conf"), &props).unwrap();
            assert_eq!(config.http_advertised_address.as_deref(), Some(good));
        }
        for bad in ["http://h:1", "h:0", "h:x", "h/p", "h:99999"] {
            let props = parse_properties(&format!("{base}httpAdvertisedAddress={bad}\n"));
            let err = WorkerConfig::from_properties(Path::new("c.conf"), &props).unwrap_err();
            assert!(
                err.to_string().contains("httpAdvertisedAddress"),
                "{bad}: {err}"
            );
        }
    }

    #[test]
    fn missing_and_bad_keys_are_named() {
        let props = parse_properties("workerId=w\nstorePathRootDir=/x\nnamesrvAddr=a:1\n");
        let err = WorkerConfig::from_properties(Path::new("c.conf"), &props).unwrap_err();
        assert_eq!(
            err.to_string(),
            "c.conf: missing required key `pluginPaths`"
        );
        let props = parse_properties(
            "workerId=w\nstorePathRootDir=/x\nnamesrvAddr=a:1\npluginPaths=/p\nhttpPort=abc\n",
        );
        let err = WorkerConfig::from_properties(Path::new("c.conf"), &props).unwrap_err();
        assert!(err.to_string().contains("`httpPort`"), "{err}");
    }

    #[test]
    fn security_settings_are_checked() {
        let base = "workerId=w\nstorePathRootDir=/tmp/ferry-config-test/store\nnamesrvAddr=a:1\npluginPaths=/p\n";
        let load = |extra: &str| {
            WorkerConfig::from_properties(
                Path::new("c.conf"),
                &parse_properties(&format!("{base}{extra}")),
            )
        };
        let (config, _) = load("").unwrap();
        assert!(config.rest_auth_token.is_none() && config.legacy_get_writes);
        assert!(config.grants.roots.roots().is_empty());
        let (config, _) = load("restAuthToken=0123456789abcdef\nlegacyGetWrites=false\n").unwrap();
        assert!(config.rest_auth_token.unwrap().matches(b"0123456789abcdef"));
        assert!(!config.legacy_get_writes);
        for (extra, key) in [
            ("restAuthToken=short\n", "restAuthToken"),
            ("restAuthToken=0123456789 abcdef\n", "restAuthToken"),
            (
                "restAuthToken=0123456789abcdef\nrestAuthTokenFile=/x\n",
                "restAuthTokenFile",
            ),
            (
                "restAuthTokenFile=/nonexistent/token\n",
                "restAuthTokenFile",
            ),
            ("httpTlsCert=/x.pem\n", "httpTlsKey"),
            ("fileRoots=/tmp/ferry-config-test\n", "fileRoots"),
            ("fileRoots=/nonexistent-root\n", "fileRoots"),
            ("httpMaxBodyBytes=10\n", "httpMaxBodyBytes"),
        ] {
            std::fs::create_dir_all("/tmp/ferry-config-test").unwrap();
            let err = load(extra).unwrap_err().to_string();
            assert!(err.contains(&format!("`{key}`")), "{extra}: {err}");
        }
    }

    #[test]
    fn host_settings_check_ranges() {
        let mut config = ConnectorConfig::new();
        config.insert(TASKS_NUM.into(), "0".into());
        assert_eq!(
            HostSettings::from_config(&config, &GrantPolicy::default())
                .unwrap_err()
                .key,
            TASKS_NUM
        );
        config.insert(TASKS_NUM.into(), "3".into());
        config.insert(ROCKETMQ_TOPICS.into(), "a, b,".into());
        let settings = HostSettings::from_config(&config, &GrantPolicy::default()).unwrap();
        assert_eq!(settings.tasks, 3);
        assert_eq!(settings.rocketmq_topics, vec!["a", "b"]);
        assert_eq!(settings.memory_max, 64 << 20);
        assert_eq!(settings.retry_timeout, None);
        config.insert(RETRY_TIMEOUT.into(), "1500".into());
        let settings = HostSettings::from_config(&config, &GrantPolicy::default()).unwrap();
        assert_eq!(settings.retry_timeout, Some(Duration::from_millis(1500)));
        config.insert(RETRY_TIMEOUT.into(), "-2".into());
        assert_eq!(
            HostSettings::from_config(&config, &GrantPolicy::default())
                .unwrap_err()
                .key,
            RETRY_TIMEOUT
        );
    }
}
