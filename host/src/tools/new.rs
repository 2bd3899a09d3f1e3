//! `ferry new <name> --lang rust|python|js --kind source|sink`: a ready connector project (a
//! minimal working connector, a one-command build, and a test that runs the conformance kit),
//! with its own copies of the WIT and, for Python and JavaScript, the SDK.

use std::path::{Path, PathBuf};

/// The languages `ferry new` writes.
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum Lang {
    /// Rust with ferry-sdk, built with cargo for wasm32-wasip2.
    Rust,
    /// Python, built with componentize-py.
    Python,
    /// JavaScript, built with componentize-js (jco).
    Js,
}

/// Source or sink.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Kind {
    /// Brings records into RocketMQ.
    Source,
    /// Takes records out of RocketMQ.
    Sink,
}

/// The WIT every project carries (`wit/`), as the host reads it.
const WIT: &[(&str, &str)] = &[
    ("connector.wit", include_str!("../../../wit/connector.wit")),
    (
        "deps/connector-0.1.0/connector.wit",
        include_str!("../../../wit/deps/connector-0.1.0/connector.wit"),
    ),
    (
        "deps/wasi-http/http.wit",
        include_str!("../../../wit/deps/wasi-http/http.wit"),
    ),
    (
        "deps/wasi-io/io.wit",
        include_str!("../../../wit/deps/wasi-io/io.wit"),
    ),
    (
        "deps/wasi-clocks/clocks.wit",
        include_str!("../../../wit/deps/wasi-clocks/clocks.wit"),
    ),
];

const PYTHON_SDK: &[(&str, &str)] = &[
    (
        "ferry_sdk/__init__.py",
        include_str!("../../../sdk/python/ferry_sdk/__init__.py"),
    ),
    (
        "ferry_sdk/config.py",
        include_str!("../../../sdk/python/ferry_sdk/config.py"),
    ),
    (
        "ferry_sdk/connector.py",
        include_str!("../../../sdk/python/ferry_sdk/connector.py"),
    ),
    (
        "ferry_sdk/origin.py",
        include_str!("../../../sdk/python/ferry_sdk/origin.py"),
    ),
    (
        "ferry_sdk/http.py",
        include_str!("../../../sdk/python/ferry_sdk/http.py"),
    ),
    (
        "ferry_sdk/records.py",
        include_str!("../../../sdk/python/ferry_sdk/records.py"),
    ),
];

const JS_SDK: &[(&str, &str)] = &[
    (
        "ferry-sdk/config.js",
        include_str!("../../../sdk/js/config.js"),
    ),
    (
        "ferry-sdk/connector.js",
        include_str!("../../../sdk/js/connector.js"),
    ),
    (
        "ferry-sdk/origin.js",
        include_str!("../../../sdk/js/origin.js"),
    ),
    ("ferry-sdk/http.js", include_str!("../../../sdk/js/http.js")),
];

const PYTHON_BUILD: &str = include_str!("../../../scripts/build-python-connector.sh");
const JS_BUILD: &str = include_str!("../../../scripts/build-js-connector.sh");
/// The PyPI installer both build scripts call (componentize-py; Node.js).
const PIP_TOOL: &str = include_str!("../../../scripts/pip-tool.sh");

/// Writes the project `name` into `dir/name`; returns its folder.
pub fn write(name: &str, lang: Lang, kind: Kind, dir: &Path) -> Result<PathBuf, String> {
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        || !name.starts_with(|c: char| c.is_ascii_lowercase())
    {
        return Err(format!(
            "`{name}`: use lower-case letters, digits and `-`, starting with a letter"
        ));
    }
    let root = dir.join(name);
    if root.exists() {
        return Err(format!("{} already exists", root.display()));
    }
    let mut files: Vec<(String, String)> = WIT
        .iter()
        .map(|(p, text)| (format!("wit/{p}"), text.to_string()))
        .collect();
    let world = match kind {
        Kind::Source => "source-connector",
        Kind::Sink => "sink-connector",
    };
    let test_config = match kind {
        Kind::Source => "--config topic=ferry-new-test",
        Kind::Sink => "--config rocketmq.topics=ferry-new-test",
    };
    let test = format!(
        "#!/usr/bin/env bash\n# Builds the connector and runs Ferry's conformance kit on it (needs `ferry` on PATH,\n# or FERRY pointing at the binary).\nset -euo pipefail\ncd \"$(dirname \"$0\")\"\n./build.sh\n\"${{FERRY:-ferry}}\" check {name}.wasm {test_config} \"$@\"\n"
    );
    files.push(("test.sh".into(), test));
    match lang {
        Lang::Rust => rust(name, kind, &mut files),
        Lang::Python => {
            interpreted(name, world, Interpreted::PYTHON, &mut files);
            python(name, kind, &mut files);
        }
        Lang::Js => {
            interpreted(name, world, Interpreted::JS, &mut files);
            js(name, kind, &mut files);
        }
    }
    files.push(("README.md".into(), readme(name, lang, kind)));
    for (path, text) in files {
        let path = root.join(path);
        std::fs::create_dir_all(path.parent().unwrap_or(&root))
            .map_err(|e| format!("{}: {e}", path.display()))?;
        std::fs::write(&path, text).map_err(|e| format!("{}: {e}", path.display()))?;
        if path.extension().is_some_and(|e| e == "sh") {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))
                .map_err(|e| format!("{}: {e}", path.display()))?;
        }
    }
    Ok(root)
}

/// What a Python or JavaScript project carries besides its code.
struct Interpreted {
    /// The SDK files, by path in the project.
    sdk: &'static [(&'static str, &'static str)],
    /// Where the build script goes and its text.
    script: (&'static str, &'static str),
    /// The SDK folder the build script is pointed at, relative to the project.
    sdk_dir: &'static str,
    /// The tool, for build.sh's comment.
    tool: &'static str,
}

impl Interpreted {
    const PYTHON: Interpreted = Interpreted {
        sdk: PYTHON_SDK,
        script: ("scripts/build-python-connector.sh", PYTHON_BUILD),
        sdk_dir: "",
        tool: "componentize-py",
    };
    const JS: Interpreted = Interpreted {
        sdk: JS_SDK,
        script: ("scripts/build-js-connector.sh", JS_BUILD),
        sdk_dir: "/ferry-sdk",
        tool: "componentize-js (jco)",
    };
}

/// The SDK copy, the build script and `build.sh` of a Python or JavaScript project.
fn interpreted(name: &str, world: &str, lang: Interpreted, files: &mut Vec<(String, String)>) {
    files.extend(lang.sdk.iter().map(|(p, t)| (p.to_string(), t.to_string())));
    let (script, text) = lang.script;
    files.push((script.into(), text.into()));
    files.push(("scripts/pip-tool.sh".into(), PIP_TOOL.into()));
    let (tool, sdk_dir) = (lang.tool, lang.sdk_dir);
    files.push((
        "build.sh".into(),
        format!(
            "#!/usr/bin/env bash\n# Builds {name}.wasm with {tool} (installed once into ~/.cache/ferry/tools).\nset -euo pipefail\ncd \"$(dirname \"$0\")\"\nFERRY_WIT_DIR=\"$PWD/wit\" FERRY_SDK_DIR=\"$PWD{sdk_dir}\" {script} . {world} \"$PWD/{name}.wasm\"\n"
        ),
    ));
}

fn readme(name: &str, lang: Lang, kind: Kind) -> String {
    let what = match kind {
        Kind::Source => {
            "a source that writes `count` numbered records to the RocketMQ topic `topic` and resumes after the last acknowledged one"
        }
        Kind::Sink => "a sink that logs how many records it received from `rocketmq.topics`",
    };
    format!(
        "# {name}\n\nA Ferry connector in {lang:?}: {what}.\n\n- `./build.sh` builds `{name}.wasm`.\n- `./test.sh` builds it and runs Ferry's conformance kit (`ferry check`).\n- Drop `{name}.wasm` into a worker's plugin folder and create it with `connector-class: {name}`.\n\nThe contract is `wit/connector.wit` (`ferry:connector@0.2.0`).\n"
    )
}

fn rust(name: &str, kind: Kind, files: &mut Vec<(String, String)>) {
    let sdk = std::env::var("FERRY_SDK")
        .map(PathBuf::from)
        .unwrap_or_else(|_| Path::new(env!("CARGO_MANIFEST_DIR")).join("../sdk"));
    files.push((
        "Cargo.toml".into(),
        format!(
            "[package]\nname = \"{name}\"\nversion = \"0.1.0\"\nedition = \"2024\"\npublish = false\n\n[lib]\ncrate-type = [\"cdylib\"]\n\n[dependencies]\n# Ferry's Rust guest SDK (`ferry new` wrote the path of the Ferry it came from; FERRY_SDK overrides).\nferry-sdk = {{ path = \"{}\" }}\n\n# A project of its own, not a member of an enclosing workspace.\n[workspace]\n",
            sdk.display()
        ),
    ));
    let crate_name = name.replace('-', "_");
    files.push((
        "build.sh".into(),
        format!(
            "#!/usr/bin/env bash\n# Builds {name}.wasm for wasm32-wasip2.\nset -euo pipefail\ncd \"$(dirname \"$0\")\"\nrustup target list --installed | grep -qx wasm32-wasip2 || rustup target add wasm32-wasip2\ncargo build --release --target wasm32-wasip2\ncp \"${{CARGO_TARGET_DIR:-target}}/wasm32-wasip2/release/{crate_name}.wasm\" {name}.wasm\n"
        ),
    ));
    let body = match kind {
        Kind::Source => format!(
            r#"//! {name}: writes `count` numbered records to `topic`, resuming after the last acknowledged one.

use ferry_sdk::{{
    Config, ConnectorInfo, Error, Message, Position, RecordBatch, SourceBatch, SourceConnector,
    SourceTask, config_key, get, get_parsed, now_ms, source_batch,
}};

struct Connector;

impl SourceConnector for Connector {{
    type Task = Task;

    fn describe() -> ConnectorInfo {{
        ConnectorInfo {{
            name: "{name}".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            aliases: vec![],
            config_keys: vec![
                config_key("topic", true, None, "The RocketMQ topic to write to"),
                config_key("count", false, Some("100"), "How many records to write"),
            ],
        }}
    }}
}}

struct Task {{
    topic: String,
    count: u64,
    next: u64,
}}

impl SourceTask for Task {{
    fn open(config: Config, committed: Vec<Position>) -> Result<Self, Error> {{
        let topic = get(&config, "topic")
            .ok_or_else(|| Error::InvalidConfig("topic: required".into()))?
            .to_string();
        let count = get_parsed(&config, "count", Some(100u64))?;
        // The position is the number of the last acknowledged record.
        let next = committed
            .iter()
            .find(|p| p.partition == topic)
            .and_then(|p| p.offset.parse::<u64>().ok())
            .map_or(0, |last| last + 1);
        Ok(Task {{ topic, count, next }})
    }}

    fn poll(&mut self) -> Result<Vec<SourceBatch>, Error> {{
        if self.next >= self.count {{
            return Ok(vec![]);
        }}
        let end = (self.next + 10).min(self.count);
        let messages: Vec<Message> = (self.next..end)
            .map(|n| Message {{
                offset: n as i64,
                key: Some(format!("k{{n}}").into_bytes()),
                value: format!("record {{n}}").into_bytes(),
                headers: vec![],
                timestamp_ms: now_ms(),
            }})
            .collect();
        self.next = end;
        let records = RecordBatch {{
            topic: self.topic.clone(),
            partition: 0,
            messages,
        }};
        Ok(vec![source_batch(self.topic.clone(), end - 1, records)])
    }}
}}

ferry_sdk::export_source!(Connector);
"#
        ),
        Kind::Sink => format!(
            r#"//! {name}: logs how many records it received.

use ferry_sdk::{{
    Config, ConnectorInfo, Error, PutError, RecordBatch, SinkConnector, SinkTask, config_key, log,
}};

struct Connector;

impl SinkConnector for Connector {{
    type Task = Task;

    fn describe() -> ConnectorInfo {{
        ConnectorInfo {{
            name: "{name}".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            aliases: vec![],
            config_keys: vec![config_key(
                "rocketmq.topics",
                true,
                None,
                "The RocketMQ topics to read (comma list)",
            )],
        }}
    }}
}}

struct Task {{
    records: u64,
}}

impl SinkTask for Task {{
    fn open(config: Config) -> Result<Self, Error> {{
        if ferry_sdk::get(&config, "rocketmq.topics").is_none() {{
            return Err(Error::InvalidConfig("rocketmq.topics: required".into()));
        }}
        Ok(Task {{ records: 0 }})
    }}

    fn put(&mut self, batches: Vec<RecordBatch>) -> Result<(), PutError> {{
        self.records += batches.iter().map(|b| b.messages.len() as u64).sum::<u64>();
        log::info(&format!("{{}} records so far", self.records));
        Ok(())
    }}
}}

ferry_sdk::export_sink!(Connector);
"#
        ),
    };
    files.push(("src/lib.rs".into(), body));
}

fn python(name: &str, kind: Kind, files: &mut Vec<(String, String)>) {
    match kind {
        Kind::Source => {
            files.push((
                "app.py".into(),
                format!(
                    r#""""{name}: writes `count` numbered records to `topic`, resuming after the last acknowledged one."""

from wit_world import exports

from ferry_sdk.config import Key
from ferry_sdk.connector import Connector

KEYS = [
    Key("topic", "The RocketMQ topic to write to", required=True),
    Key("count", "How many records to write", default="100", kind="int"),
]


class Source(Connector, exports.Source):
    NAME, VERSION, KEYS, MAX_TASKS = "{name}", "0.1.0", KEYS, 1
"#
                ),
            ));
            files.push((
                "source.py".into(),
                r#""""The task (componentize-py wants the exported resource in a module named after the interface)."""

import time
from typing import List

from wit_world.exports import source as source_exports
from wit_world.imports.ferry_connector_types_0_1_0 import Message, Position, RecordBatch
from wit_world.imports.ferry_connector_types_0_2_0 import SourceBatch

from app import KEYS
from ferry_sdk.config import Config


class SourceTask(source_exports.SourceTask):
    @classmethod
    def open(cls, config, committed: List[Position]) -> "SourceTask":
        cfg = Config(KEYS, config)
        cfg.check()
        task = cls()
        task.topic = cfg.get("topic")
        task.count = cfg.int("count")
        last = [int(p.offset) for p in committed if p.partition == task.topic]
        task.next = last[0] + 1 if last else 0
        return task

    def poll(self) -> List[SourceBatch]:
        if self.next >= self.count:
            return []
        end = min(self.next + 10, self.count)
        now = int(time.time() * 1000)
        messages = [Message(n, f"k{n}".encode(), f"record {n}".encode(), [], now) for n in range(self.next, end)]
        self.next = end
        return [SourceBatch(self.topic, str(end - 1), RecordBatch(self.topic, 0, messages))]

    def commit(self, positions: List[Position]) -> None:
        return None
"#
                .into(),
            ));
        }
        Kind::Sink => {
            files.push((
                "app.py".into(),
                format!(
                    r#""""{name}: logs how many records it received."""

from wit_world import exports

from ferry_sdk.config import Key
from ferry_sdk.connector import Connector

KEYS = [Key("rocketmq.topics", "The RocketMQ topics to read (comma list)", required=True)]


class Sink(Connector, exports.Sink):
    NAME, VERSION, KEYS = "{name}", "0.1.0", KEYS
"#
                ),
            ));
            files.push((
                "sink.py".into(),
                r#""""The task (componentize-py wants the exported resource in a module named after the interface)."""

from typing import List

from wit_world.exports import sink as sink_exports
from wit_world.imports import log
from wit_world.imports.ferry_connector_types_0_1_0 import RecordBatch

from app import KEYS
from ferry_sdk.config import Config


class SinkTask(sink_exports.SinkTask):
    @classmethod
    def open(cls, config) -> "SinkTask":
        Config(KEYS, config).check()
        task = cls()
        task.records = 0
        return task

    def put(self, batches: List[RecordBatch]) -> None:
        self.records += sum(len(b.messages) for b in batches)
        log.log(log.Level.INFO, f"{self.records} records so far")

    def flush(self) -> None:
        return None
"#
                .into(),
            ));
        }
    }
}

fn js(name: &str, kind: Kind, files: &mut Vec<(String, String)>) {
    let body = match kind {
        Kind::Source => format!(
            r#"// {name}: writes `count` numbered records to `topic`, resuming after the last acknowledged one.
import {{ nowMs }} from 'ferry:connector/clock@0.1.0';
import {{ readConfig }} from './ferry-sdk/config.js';
import {{ connector }} from './ferry-sdk/connector.js';

const KEYS = [
  {{ name: 'topic', required: true, doc: 'The RocketMQ topic to write to' }},
  {{ name: 'count', default: '100', kind: 'int', doc: 'How many records to write' }},
];
const encoder = new TextEncoder();

class SourceTask {{
  static open(pairs, committed) {{
    const config = readConfig(KEYS, pairs);
    const task = new SourceTask();
    task.topic = config.topic;
    task.count = config.count;
    const mine = committed.find((p) => p.partition === task.topic);
    task.next = mine ? Number(mine.offset) + 1 : 0;
    return task;
  }}

  poll() {{
    if (this.next >= this.count) return [];
    const end = Math.min(this.next + 10, this.count);
    const messages = [];
    for (let n = this.next; n < end; n++) {{
      messages.push({{ offset: BigInt(n), key: encoder.encode(`k${{n}}`), value: encoder.encode(`record ${{n}}`), headers: [], timestampMs: nowMs() }});
    }}
    this.next = end;
    return [{{ sourcePartition: this.topic, sourceOffset: String(end - 1), records: {{ topic: this.topic, partition: 0, messages }} }}];
  }}

  commit(_positions) {{}}
}}

export const source = connector({{ name: '{name}', version: '0.1.0', keys: KEYS, maxTasks: 1, SourceTask }});
"#
        ),
        Kind::Sink => format!(
            r#"// {name}: logs how many records it received.
import {{ log }} from 'ferry:connector/log@0.1.0';
import {{ readConfig }} from './ferry-sdk/config.js';
import {{ connector }} from './ferry-sdk/connector.js';

const KEYS = [{{ name: 'rocketmq.topics', required: true, doc: 'The RocketMQ topics to read (comma list)' }}];

class SinkTask {{
  static open(pairs) {{
    readConfig(KEYS, pairs);
    const task = new SinkTask();
    task.records = 0;
    return task;
  }}

  put(batches) {{
    for (const b of batches) this.records += b.messages.length;
    log('info', `${{this.records}} records so far`);
  }}

  flush() {{}}
}}

export const sink = connector({{ name: '{name}', version: '0.1.0', keys: KEYS, SinkTask }});
"#
        ),
    };
    files.push(("connector.js".into(), body));
}
