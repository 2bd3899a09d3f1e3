//! `test-faults`: a source connector that misbehaves on purpose, to test the host's sandbox.
//!
//! `fault.mode` chooses how `poll()` fails: `loop` (never returns), `alloc` (grows memory to
//! 1 GiB), `panic` (a Rust panic, i.e. a trap), `fatal` (returns a fatal error). `fault.after`
//! records are produced normally first (default 0). `validate-loop` makes `validate()` itself
//! never return (the host must stay responsive while it runs out its time budget).

use ferry_sdk::{
    Config, ConnectorInfo, Error, Message, Position, RecordBatch, SourceBatch, SourceConnector,
    SourceTask, config_key, get, get_parsed,
};

struct Faults;

impl SourceConnector for Faults {
    type Task = FaultTask;

    fn describe() -> ConnectorInfo {
        ConnectorInfo {
            name: "test-faults".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            aliases: vec![],
            config_keys: vec![
                config_key(
                    "fault.mode",
                    true,
                    None,
                    "loop | alloc | panic | fatal | validate-loop",
                ),
                config_key(
                    "fault.topic",
                    false,
                    Some("faults"),
                    "topic of the records produced before the fault",
                ),
            ],
        }
    }

    fn validate(config: &[(String, String)]) -> Result<(), Error> {
        if get(config, "fault.mode") == Some("validate-loop") {
            spin();
        }
        ferry_sdk::check_required(&Self::describe(), config)
    }
}

/// Never returns (only the host's time limit ends it).
fn spin() -> ! {
    let mut x: u64 = 0;
    loop {
        x = std::hint::black_box(x.wrapping_add(1));
    }
}

struct FaultTask {
    mode: String,
    topic: String,
    remaining: u64,
    next: i64,
}

impl SourceTask for FaultTask {
    fn open(config: Config, _committed: Vec<Position>) -> Result<Self, Error> {
        Ok(FaultTask {
            mode: get(&config, "fault.mode").unwrap_or("panic").to_string(),
            topic: get(&config, "fault.topic").unwrap_or("faults").to_string(),
            remaining: get_parsed(&config, "fault.after", Some(0))?,
            next: 0,
        })
    }

    fn poll(&mut self) -> Result<Vec<SourceBatch>, Error> {
        if self.remaining > 0 {
            self.remaining -= 1;
            self.next += 1;
            return Ok(vec![ferry_sdk::source_batch(
                "faults",
                self.next,
                RecordBatch {
                    topic: self.topic.clone(),
                    partition: 0,
                    messages: vec![Message {
                        offset: self.next,
                        key: None,
                        value: b"ok".to_vec(),
                        headers: vec![],
                        timestamp_ms: 0,
                    }],
                },
            )]);
        }
        match self.mode.as_str() {
            "loop" => spin(),
            "alloc" => {
                let mut chunks: Vec<Vec<u8>> = Vec::new();
                for _ in 0..1024 {
                    chunks.push(vec![1u8; 1 << 20]);
                }
                Err(Error::Fatal(format!("allocated {} MiB", chunks.len())))
            }
            "fatal" => Err(Error::Fatal("test-faults: fatal on purpose".into())),
            _ => panic!("test-faults: panic on purpose"),
        }
    }
}

ferry_sdk::export_source!(Faults);
