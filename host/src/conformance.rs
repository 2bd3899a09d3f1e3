//! The conformance kit: what every Ferry connector must do, checked on the component alone
//! (no worker, no RocketMQ; the connector reaches only what its config grants), whatever
//! language built it. `ferry check <file.wasm>` runs it; `just test` runs it against every
//! connector in `connectors/`.

use std::path::Path;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::wasm::bindings::{Message, Position, RecordBatch};
use crate::wasm::caps::http::HttpGrant;
use crate::wasm::state::TaskIds;
use crate::wasm::{
    ConnectorInfo, GuestFault, GuestLimits, PluginCode, PluginKind, SinkGuest, SourceGuest,
    WasmRuntime,
};

type Config = Vec<(String, String)>;

/// How long a source may take to produce its first records (a Kafka consumer group join
/// takes ~25 s on Tansu), and a sink to accept a batch (retriable answers included).
const PATIENCE: Duration = Duration::from_secs(60);

/// The outcome of one check.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
#[serde(tag = "outcome", content = "detail", rename_all = "lowercase")]
pub enum Outcome {
    /// The connector did what the contract asks.
    Passed(String),
    /// It did not; the detail says what it did instead.
    Failed(String),
    /// The check could not run (e.g. the config it needs was not given).
    Skipped(String),
}

/// One named check and its outcome.
#[derive(Clone, Debug, Serialize)]
pub struct Check {
    /// A stable name, e.g. `validate-names-missing-keys`.
    pub name: &'static str,
    /// What happened.
    #[serde(flatten)]
    pub outcome: Outcome,
}

/// Everything `ferry check` says about a component.
#[derive(Debug, Serialize)]
pub struct Report {
    /// `source` or `sink`.
    pub kind: PluginKind,
    /// The `ferry:connector` version it was built against.
    pub wit_version: &'static str,
    /// What `describe()` returned.
    pub describe: DescribeOutput,
    /// Component size in bytes.
    pub size_bytes: usize,
    /// Compile time, from the `.wasm` and from the compile cache.
    pub compile_ms: f64,
    /// Compile time when the compiled code is already in the cache.
    pub compile_cached_ms: f64,
    /// Instantiate + `describe()` in a fresh store.
    pub instantiate_ms: f64,
    /// The kit's checks.
    pub checks: Vec<Check>,
}

impl Report {
    /// Whether no check failed.
    pub fn passed(&self) -> bool {
        !self
            .checks
            .iter()
            .any(|c| matches!(c.outcome, Outcome::Failed(_)))
    }
}

/// `describe()` as JSON-friendly fields.
#[derive(Debug, Serialize)]
pub struct DescribeOutput {
    /// The plugin name.
    pub name: String,
    /// Its version.
    pub version: String,
    /// Other class names.
    pub aliases: Vec<String>,
    /// `(name, required, default, secret, doc)` per key.
    pub config_keys: Vec<KeyOutput>,
}

/// One declared config key.
#[derive(Debug, Serialize)]
pub struct KeyOutput {
    /// Key name.
    pub name: String,
    /// Whether a config must set it.
    pub required: bool,
    /// Its default.
    pub default: Option<String>,
    /// Whether the host hides its value.
    pub secret: bool,
    /// What it means.
    pub doc: String,
}

impl From<&ConnectorInfo> for DescribeOutput {
    fn from(info: &ConnectorInfo) -> Self {
        DescribeOutput {
            name: info.name.clone(),
            version: info.version.clone(),
            aliases: info.aliases.clone(),
            config_keys: info
                .config_keys
                .iter()
                .map(|k| KeyOutput {
                    name: k.name.clone(),
                    required: k.required,
                    default: k.default_value.clone(),
                    secret: k.secret,
                    doc: k.doc.clone(),
                })
                .collect(),
        }
    }
}

/// Why a component could not be checked at all.
#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    /// The file could not be read.
    #[error("cannot read {path}: {reason}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        reason: String,
    },
    /// It is not a loadable Ferry component.
    #[error("{0}")]
    Load(String),
}

/// Loads `wasm_path`, describes it and, with `run_kit`, runs the conformance kit with
/// `config` (the keys a working connector config needs, e.g. `http.url`).
pub async fn check(
    runtime: &WasmRuntime,
    wasm_path: &Path,
    config: &Config,
    run_kit: bool,
) -> Result<Report, CheckError> {
    let wasm = std::fs::read(wasm_path).map_err(|e| CheckError::Read {
        path: wasm_path.display().to_string(),
        reason: e.to_string(),
    })?;
    let sha = format!("check-{}", hex::encode(&sha256(&wasm)[..16]));
    let started = Instant::now();
    let compiled = {
        let (runtime, wasm, sha) = (runtime.clone(), wasm.clone(), sha.clone());
        tokio::task::spawn_blocking(move || runtime.compile(&wasm, &sha))
            .await
            .map_err(|e| CheckError::Load(e.to_string()))?
    };
    let component = compiled.map_err(|e| CheckError::Load(e.to_string()))?;
    let compile_ms = ms(started);
    let started = Instant::now();
    let again = {
        let (runtime, wasm) = (runtime.clone(), wasm.clone());
        tokio::task::spawn_blocking(move || runtime.compile(&wasm, &sha))
            .await
            .map_err(|e| CheckError::Load(e.to_string()))?
    };
    drop(again);
    let compile_cached_ms = ms(started);
    let code = PluginCode::new(runtime, &component).map_err(|e| CheckError::Load(e.to_string()))?;
    let started = Instant::now();
    let info = code
        .describe(runtime)
        .await
        .map_err(|e| CheckError::Load(format!("describe() failed: {e}")))?;
    let instantiate_ms = ms(started);
    let mut checks = vec![describe_is_valid(&info)];
    if run_kit {
        checks.extend(
            Kit {
                runtime,
                code: &code,
                info: &info,
                config,
            }
            .run()
            .await,
        );
    }
    Ok(Report {
        kind: code.kind,
        wit_version: code.wit_version,
        describe: DescribeOutput::from(&info),
        size_bytes: wasm.len(),
        compile_ms,
        compile_cached_ms,
        instantiate_ms,
        checks,
    })
}

fn sha256(bytes: &[u8]) -> Vec<u8> {
    use sha2::Digest;
    sha2::Sha256::digest(bytes).to_vec()
}

fn ms(since: Instant) -> f64 {
    since.elapsed().as_secs_f64() * 1000.0
}

fn describe_is_valid(info: &ConnectorInfo) -> Check {
    let mut problems = Vec::new();
    if info.name.trim().is_empty() || info.name.contains(char::is_whitespace) {
        problems.push(format!("name `{}` must be one non-empty word", info.name));
    }
    if info.version.trim().is_empty() {
        problems.push("version is empty".to_string());
    }
    let mut seen = std::collections::BTreeSet::new();
    for key in &info.config_keys {
        if key.name.trim().is_empty() {
            problems.push("a config key has an empty name".into());
        } else if !seen.insert(key.name.as_str()) {
            problems.push(format!("config key `{}` is declared twice", key.name));
        }
        if key.doc.trim().is_empty() {
            problems.push(format!("config key `{}` has no doc", key.name));
        }
    }
    Check {
        name: "describe-is-valid",
        outcome: if problems.is_empty() {
            Outcome::Passed(format!(
                "{} {} with {} config keys",
                info.name,
                info.version,
                info.config_keys.len()
            ))
        } else {
            Outcome::Failed(problems.join("; "))
        },
    }
}

/// The kit's state: the component and the config a working connector needs.
struct Kit<'a> {
    runtime: &'a WasmRuntime,
    code: &'a PluginCode,
    info: &'a ConnectorInfo,
    config: &'a Config,
}

impl Kit<'_> {
    async fn run(&self) -> Vec<Check> {
        let accepted = self.validate_accepts_config().await;
        let valid = matches!(accepted.outcome, Outcome::Passed(_));
        let mut checks = vec![accepted, self.validate_names_missing_keys().await];
        if !valid {
            for name in [
                "task-configs-respect-max-tasks",
                self.data_check_name(),
                "guest-errors-are-reported",
            ] {
                checks.push(Check {
                    name,
                    outcome: Outcome::Skipped("the config given is not valid".into()),
                });
            }
            return checks;
        }
        checks.push(self.task_configs_respect_max_tasks().await);
        checks.push(match self.code.kind {
            PluginKind::Source => self.positions_round_trip().await,
            PluginKind::Sink => self.put_is_retried().await,
        });
        checks.push(self.guest_errors_are_reported().await);
        checks
    }

    fn data_check_name(&self) -> &'static str {
        match self.code.kind {
            PluginKind::Source => "positions-round-trip",
            PluginKind::Sink => "put-is-retried-after-retriable",
        }
    }

    /// The sandbox of the kit's tasks: the connector's own limits and grants, as a worker
    /// would give them (`file.dir` taken as given: the operator runs the check).
    fn limits(&self, config: &Config) -> GuestLimits {
        let get = |k: &str| config.iter().find(|(key, _)| key == k).map(|(_, v)| v);
        let mut limits = GuestLimits::default();
        if let Some(max) = get(crate::config::MEMORY_MAX).and_then(|v| v.parse().ok()) {
            limits.memory_max = max;
        }
        if let Some(ms) = get(crate::config::CALL_TIMEOUT).and_then(|v| v.parse().ok()) {
            limits.call_timeout = Duration::from_millis(ms);
        }
        limits.preopen_dir =
            get(crate::config::FILE_DIR).and_then(|d| std::fs::canonicalize(d).ok());
        limits.http = HttpGrant::from_config(get).unwrap_or_default();
        let map: crate::model::ConnectorConfig = config.iter().cloned().collect();
        limits.kafka = crate::model::KafkaGrant::from_config(&map);
        limits
    }

    /// The kit's task ids: the config's `connector.name` (a Kafka consumer group is checked
    /// against it), else `ferry-check`.
    fn ids(&self) -> TaskIds {
        TaskIds {
            connector: self.connector_name(),
            task: 0,
        }
    }

    fn connector_name(&self) -> String {
        self.config
            .iter()
            .find(|(k, _)| k == crate::config::CONNECTOR_NAME)
            .map_or_else(|| "ferry-check".to_string(), |(_, v)| v.clone())
    }

    fn with(&self, extra: &[(&str, &str)], without: Option<&str>) -> Config {
        let mut config: Config = self
            .config
            .iter()
            .filter(|(k, _)| Some(k.as_str()) != without && !extra.iter().any(|(e, _)| e == k))
            .cloned()
            .collect();
        config.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        if !config
            .iter()
            .any(|(k, _)| k == crate::config::CONNECTOR_NAME)
        {
            config.push((crate::config::CONNECTOR_NAME.into(), self.connector_name()));
        }
        config
    }

    async fn plan(&self, config: &Config, max: u32) -> Result<Vec<Config>, GuestFault> {
        self.code
            .plan_tasks(self.runtime, config, max, &self.limits(config))
            .await
    }

    async fn validate_accepts_config(&self) -> Check {
        let outcome = match self.plan(&self.with(&[], None), 1).await {
            Ok(_) => Outcome::Passed("validate() and task-configs() accept the config".into()),
            Err(e) => {
                let missing: Vec<&str> = self
                    .info
                    .config_keys
                    .iter()
                    .filter(|k| k.required && !self.config.iter().any(|(n, _)| *n == k.name))
                    .map(|k| k.name.as_str())
                    .collect();
                if missing.is_empty() {
                    Outcome::Failed(format!("the config was refused: {e}"))
                } else {
                    Outcome::Skipped(format!(
                        "give the required keys with --config key=value: {}",
                        missing.join(", ")
                    ))
                }
            }
        };
        Check {
            name: "validate-accepts-config",
            outcome,
        }
    }

    async fn validate_names_missing_keys(&self) -> Check {
        let required: Vec<&str> = self
            .info
            .config_keys
            .iter()
            .filter(|k| k.required)
            .map(|k| k.name.as_str())
            .collect();
        if required.is_empty() {
            return Check {
                name: "validate-names-missing-keys",
                outcome: Outcome::Skipped("the connector declares no required key".into()),
            };
        }
        let mut problems = Vec::new();
        for key in &required {
            match self.plan(&self.with(&[], Some(key)), 1).await {
                Err(GuestFault::InvalidConfig(message)) if message.contains(key) => {}
                Err(GuestFault::InvalidConfig(message)) => problems.push(format!(
                    "without `{key}`: invalid-config does not name the key: {message}"
                )),
                Err(other) => problems.push(format!(
                    "without `{key}`: expected invalid-config, got {} ({other})",
                    other.kind()
                )),
                Ok(_) => problems.push(format!("without `{key}`: validate() accepted the config")),
            }
        }
        Check {
            name: "validate-names-missing-keys",
            outcome: if problems.is_empty() {
                Outcome::Passed(format!(
                    "each of {} named when missing",
                    required.join(", ")
                ))
            } else {
                Outcome::Failed(problems.join("; "))
            },
        }
    }

    async fn task_configs_respect_max_tasks(&self) -> Check {
        let mut problems = Vec::new();
        let mut counts = Vec::new();
        for max in [1u32, 2, 4] {
            match self
                .plan(&self.with(&[("tasks.num", "4")], None), max)
                .await
            {
                Ok(tasks) if (1..=max as usize).contains(&tasks.len()) => {
                    counts.push(format!("{max}->{}", tasks.len()))
                }
                Ok(tasks) => {
                    problems.push(format!("max-tasks {max} gave {} task configs", tasks.len()))
                }
                Err(e) => problems.push(format!("max-tasks {max}: {e}")),
            }
        }
        Check {
            name: "task-configs-respect-max-tasks",
            outcome: if problems.is_empty() {
                Outcome::Passed(format!("max-tasks -> task configs: {}", counts.join(", ")))
            } else {
                Outcome::Failed(problems.join("; "))
            },
        }
    }

    /// The first task config of the connector's plan.
    async fn task_config(&self) -> Result<Config, String> {
        let config = self.with(&[], None);
        let mut tasks = self.plan(&config, 1).await.map_err(|e| e.to_string())?;
        let mut task = tasks.pop().ok_or("task-configs() returned no task")?;
        if !task.iter().any(|(k, _)| k == crate::config::CONNECTOR_NAME) {
            task.push((crate::config::CONNECTOR_NAME.into(), self.connector_name()));
        }
        Ok(task)
    }

    /// Opens a source at `committed`, polls until it returns records, and commits them.
    async fn first_records(
        &self,
        config: &Config,
        committed: &[Position],
    ) -> Result<(Vec<Position>, Vec<Message>), String> {
        let ids = self.ids();
        let mut task = SourceGuest::open(
            self.runtime,
            self.code,
            ids,
            &self.limits(config),
            config,
            committed,
        )
        .await
        .map_err(|e| format!("open: {e}"))?;
        let deadline = Instant::now() + PATIENCE;
        loop {
            match task.poll().await {
                Ok(batches) if batches.iter().any(|b| !b.records.messages.is_empty()) => {
                    let positions: Vec<Position> = batches
                        .iter()
                        .map(|b| Position {
                            partition: b.source_partition.clone(),
                            offset: b.source_offset.clone(),
                        })
                        .collect();
                    task.commit(&positions)
                        .await
                        .map_err(|e| format!("commit: {e}"))?;
                    let messages = batches
                        .into_iter()
                        .flat_map(|b| b.records.messages)
                        .collect();
                    return Ok((positions, messages));
                }
                Ok(_) | Err(GuestFault::Retriable(_)) if Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(50)).await
                }
                Ok(_) => return Err(format!("no records within {PATIENCE:?}")),
                Err(e) => return Err(format!("poll: {e}")),
            }
        }
    }

    async fn positions_round_trip(&self) -> Check {
        let name = "positions-round-trip";
        let outcome = async {
            let config = self.task_config().await?;
            let (positions, first) = self.first_records(&config, &[]).await?;
            let (_, resumed) = self.first_records(&config, &positions).await?;
            let seen: std::collections::BTreeSet<(&Option<Vec<u8>>, &Vec<u8>)> =
                first.iter().map(|m| (&m.key, &m.value)).collect();
            let repeated = resumed.iter().filter(|m| seen.contains(&(&m.key, &m.value))).count();
            Ok::<_, String>(if repeated == 0 {
                Outcome::Passed(format!(
                    "{} records, committed at {}; reopened there, the next {} records are all new",
                    first.len(),
                    positions
                        .iter()
                        .map(|p| format!("{}={}", p.partition, p.offset))
                        .collect::<Vec<_>>()
                        .join(","),
                    resumed.len()
                ))
            } else {
                Outcome::Failed(format!(
                    "reopened at its committed positions, it repeated {repeated} of the {} committed records",
                    first.len()
                ))
            })
        }
        .await
        .unwrap_or_else(Outcome::Failed);
        Check { name, outcome }
    }

    async fn put_is_retried(&self) -> Check {
        let name = "put-is-retried-after-retriable";
        let outcome = async {
            let config = self.task_config().await?;
            let mut task = SinkGuest::open(
                self.runtime,
                self.code,
                self.ids(),
                &self.limits(&config),
                &config,
            )
            .await
            .map_err(|e| format!("open: {e}"))?;
            let topic = self
                .config
                .iter()
                .find(|(k, _)| k == crate::config::ROCKETMQ_TOPICS)
                .and_then(|(_, v)| v.split(',').next())
                .unwrap_or("ferry-check")
                .trim()
                .to_string();
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as i64);
            let batch = RecordBatch {
                topic,
                partition: 0,
                messages: (0..3)
                    .map(|i| Message {
                        offset: i,
                        key: Some(format!("ferry-check-{i}").into_bytes()),
                        value: format!("ferry-check record {i}").into_bytes(),
                        headers: vec![("ferry-check".into(), b"1".to_vec())],
                        timestamp_ms: now,
                    })
                    .collect(),
            };
            let batches = [batch];
            let deadline = Instant::now() + PATIENCE;
            let mut retriable = 0;
            loop {
                match task.put(&batches).await {
                    Ok(()) => break,
                    Err(GuestFault::Retriable(_)) if Instant::now() < deadline => {
                        retriable += 1;
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                    Err(e) => return Err(format!("put after {retriable} retriable answers: {e}")),
                }
            }
            task.flush().await.map_err(|e| format!("flush: {e}"))?;
            Ok::<_, String>(Outcome::Passed(if retriable == 0 {
                "put() and flush() of 3 records succeeded".into()
            } else {
                format!(
                    "put() answered retriable {retriable} times, then the same batch was delivered"
                )
            }))
        }
        .await
        .unwrap_or_else(Outcome::Failed);
        Check { name, outcome }
    }

    async fn guest_errors_are_reported(&self) -> Check {
        let name = "guest-errors-are-reported";
        // `rocketmq.topics` is the host's (it consumes the topics): a sink task need not read it.
        let Some(key) = self
            .info
            .config_keys
            .iter()
            .find(|k| k.required && k.name != crate::config::ROCKETMQ_TOPICS)
        else {
            return Check {
                name,
                outcome: Outcome::Skipped(
                    "no required key of the connector's own to leave out".into(),
                ),
            };
        };
        // `open` without a required key must fail with an error value, not trap and not run.
        let config = self.with(&[], Some(&key.name));
        let ids = self.ids();
        let limits = self.limits(&config);
        let result = match self.code.kind {
            PluginKind::Source => {
                SourceGuest::open(self.runtime, self.code, ids, &limits, &config, &[])
                    .await
                    .map(drop)
            }
            PluginKind::Sink => SinkGuest::open(self.runtime, self.code, ids, &limits, &config)
                .await
                .map(drop),
        };
        let outcome = match result {
            Err(
                GuestFault::InvalidConfig(m) | GuestFault::Returned(m) | GuestFault::Retriable(m),
            ) => Outcome::Passed(format!(
                "open() without `{}` returned an error: {m}",
                key.name
            )),
            Err(other) => Outcome::Failed(format!(
                "open() without `{}` {} instead of returning an error: {other}",
                key.name,
                other.kind()
            )),
            Ok(()) => Outcome::Failed(format!(
                "open() without the required `{}` succeeded",
                key.name
            )),
        };
        Check { name, outcome }
    }
}
