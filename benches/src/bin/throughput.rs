//! Throughput of each direction, Ferry against a native copier in the same run.
//!
//! For each direction the same pre-filled data (`FERRY_BENCH_RECORDS`, default 200,000 records
//! of 1 KiB) is copied twice: by the native baseline (`ferry_bench::native`: plain Rust on the
//! same client crates, rdkafka and rocketmq-client-rust, independent of Ferry's code; pipelined,
//! at-least-once, no WebAssembly) and by a
//! `ferry` worker running the `kafka-source` / `kafka-sink` components. Both are timed from the
//! first copied record to the last, so consumer-group joins do not count. Prints records/s, MB/s
//! and the ratio Ferry/baseline, for Ferry with 1 and with 4 tasks, in `FERRY_BENCH_ROUNDS`
//! rounds (default 3: the order of the copiers is reversed every other round, the summary takes
//! medians). End-to-end latency (p50/p99, producer to reader, same clock) through Ferry at a
//! fixed 10,000 records/s each way is measured first, on nearly empty brokers; the run ends with
//! the worker's RSS and a summary table of every figure against its target. Needs the brokers
//! (`just bench` starts them).

// The rocketmq client's futures are deeply nested.
#![recursion_limit = "256"]

use std::sync::Arc;
use std::time::{Duration, Instant};

use ferry::rocketmq::{Hub, HubSettings};
use ferry::wasm::bindings::{Message, RecordBatch};
use ferry_bench::FerryWorker;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message as _;
use rdkafka::producer::{
    BaseRecord, DefaultProducerContext, FutureProducer, FutureRecord, Producer, ThreadedProducer,
};
use rdkafka::{Offset, TopicPartitionList};
use rocketmq_runtime::{RuntimeConfig, RuntimeOwner};

const VALUE: usize = 1024;
const PARTITIONS: i32 = 4;
const KAFKA: &str = "127.0.0.1:9092";
const NAMESRV: &str = "127.0.0.1:9876";

fn main() -> anyhow::Result<()> {
    let owner = RuntimeOwner::plan(RuntimeConfig {
        thread_name: "bench".into(),
        ..Default::default()
    })
    .map_err(|e| anyhow::anyhow!("{e:?}"))?
    .build()?;
    let context = owner.root_context().component("rocketmq");
    let native = owner.root_context().component("native");
    let result = owner.block_on(run(context, native));
    owner.shutdown_background();
    result
}

async fn run(
    context: rocketmq_runtime::ChildServiceContext,
    native_context: rocketmq_runtime::ChildServiceContext,
) -> anyhow::Result<()> {
    // The native copiers' own RocketMQ client runtime (not the hub's).
    let native_runtime = rocketmq_client_rust::ClientRuntime::try_new(
        native_context,
        rocketmq_client_rust::ClientRuntimeConfig::default(),
        rocketmq_observability::TelemetryHandle::default(),
    )
    .map_err(|e| anyhow::anyhow!("{e}"))?;
    let tuning = ferry_bench::native::Tuning::from_env();
    let brokers = ferry_bench::native::Brokers {
        runtime: native_runtime,
        namesrv: NAMESRV.into(),
        kafka: KAFKA.into(),
    };
    println!("native copier tuning: {tuning:?}");
    let total: u64 = std::env::var("FERRY_BENCH_RECORDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200_000);
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs();
    let hub = Hub::start(
        context,
        HubSettings {
            namesrv_addr: NAMESRV.into(),
            worker_id: format!("bench-{stamp}"),
            acl: None,
            auto_create: true,
        },
    )
    .await?;
    println!(
        "Ferry throughput benchmark: {total} records of {VALUE} B per run, {PARTITIONS} partitions"
    );

    // `FERRY_BENCH_LATENCY_ONLY=1` skips the throughput runs; `FERRY_BENCH_NATIVE_ONLY=1` runs
    // only the native copiers (to tune them); `FERRY_BENCH_THROUGHPUT_ONLY=1` skips the latency
    // runs.
    // `FERRY_BENCH_DIRECTIONS=k2r` (or `r2k`) runs one direction only (to profile it).
    let throughput = std::env::var("FERRY_BENCH_LATENCY_ONLY").is_err();
    let directions = std::env::var("FERRY_BENCH_DIRECTIONS").unwrap_or_else(|_| "k2r,r2k".into());
    let direction = |d: &str| directions.split(',').any(|x| x.trim() == d);
    let native_only = std::env::var("FERRY_BENCH_NATIVE_ONLY").is_ok();

    // The idle worker (plugins loaded, no connector yet), on a warm compile cache: a first
    // start compiles every plugin, which an operator's worker does once per plugin version.
    let plugins = std::env::var("FERRY_PLUGIN_DIR").unwrap_or_else(|_| "target/plugins".into());
    let mut summary = Summary::default();
    let worker = if native_only {
        None
    } else {
        FerryWorker::start(stamp)?.wait_for_plugins(&plugins)?;
        let worker = FerryWorker::start(stamp)?;
        let idle = worker.idle_rss_mib(&plugins)?;
        summary.add(
            "idle worker RSS",
            format!("{idle:.1} MiB"),
            "< 64 MiB",
            idle < 64.0,
        );
        Some(worker)
    };

    // `FERRY_BENCH_ROUNDS` rounds (default 3), each copying fresh data in both directions with
    // the native copier and Ferry with 1 and with 4 tasks, the order reversed every other
    // round (native first, then Ferry first): the summary takes the median of
    // each round's ratios, as the machine's run-to-run spread (10-20 %) moves every copier.
    let rounds: usize = std::env::var("FERRY_BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3)
        .max(1);
    if let Some(worker) = &worker
        && std::env::var("FERRY_BENCH_THROUGHPUT_ONLY").is_err()
    {
        latency_part(&hub, &brokers, tuning, worker, stamp, &mut summary).await?;
    }
    let mut k2r_rounds = Vec::new();
    let mut r2k_rounds = Vec::new();
    for round in (0..rounds).filter(|_| throughput) {
        let copy = Round {
            brokers: &brokers,
            hub: &hub,
            worker: worker.as_ref(),
            tuning,
            total,
            tag: format!("{stamp}-{round}"),
            reversed: round % 2 == 1,
        };
        println!(
            "round {} of {rounds} ({})",
            round + 1,
            match copy.reversed {
                false => "native, then Ferry 1 task, 4 tasks",
                true => "Ferry 4 tasks, 1 task, then native",
            }
        );
        if direction("k2r") {
            k2r_rounds.push(copy.kafka_to_rocketmq().await?);
        }
        if direction("r2k") {
            r2k_rounds.push(copy.rocketmq_to_kafka().await?);
        }
    }
    let Some(worker) = worker else {
        return Ok(());
    };
    if throughput {
        summary.add_rounds("Kafka -> RocketMQ", &k2r_rounds);
        summary.add_rounds("RocketMQ -> Kafka", &r2k_rounds);
        let right_after = worker.rss_mib();
        // The worker returns freed memory `RELEASE_AFTER_STOP` after a task stops.
        std::thread::sleep(ferry::memory::RELEASE_AFTER_STOP + Duration::from_secs(3));
        let after = worker.rss_mib();
        println!(
            "worker RSS after the throughput runs: {right_after:.1} MiB right after, {after:.1} MiB 5 s later"
        );
        summary.add(
            "RSS 5 s after the runs (connectors deleted)",
            format!("{after:.1} MiB"),
            "< 64 + 10 x 16 MiB",
            after < 224.0,
        );
    }
    println!("worker RSS at the end: {:.1} MiB", worker.rss_mib());
    summary.print();
    Ok(())
}

/// The latency part: end-to-end p50/p99 through the native copier, then Ferry, at 10,000
/// rec/s, and through Ferry at 1,000 rec/s, each way; Ferry's p99 go into `summary`. It runs
/// before the throughput rounds, on brokers that are still nearly empty: Tansu's memory engine
/// keeps every record and slows as it fills (1.6 GB after the rounds: its CPU per record grew by
/// half, and p99 at 1,000 rec/s rose from about 20 to 71 ms for every copier, the native one
/// too), which Apache Kafka, writing log segments, does not do.
async fn latency_part(
    hub: &Arc<Hub>,
    brokers: &ferry_bench::native::Brokers,
    tuning: ferry_bench::native::Tuning,
    worker: &FerryWorker,
    stamp: u64,
    summary: &mut Summary,
) -> anyhow::Result<()> {
    let seconds: u64 = std::env::var("FERRY_BENCH_LATENCY_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10);
    // Native first, then Ferry, at 10,000 rec/s; Ferry alone at 1,000 rec/s.
    use latency::Copier;
    for (copier, rate) in [
        (Copier::Native(brokers, tuning), 10_000),
        (Copier::Ferry(worker), 10_000),
        (Copier::Ferry(worker), 1_000),
    ] {
        let ferry = matches!(copier, Copier::Ferry(_));
        let p99 = latency::kafka_to_rocketmq(hub, &copier, stamp, rate, seconds)
            .await?
            .print();
        if ferry {
            summary.add(
                format!("Kafka -> RocketMQ p99 at {rate} rec/s"),
                format!("{p99} ms"),
                "< 50 ms",
                p99 < 50,
            );
        }
        let p99 = latency::rocketmq_to_kafka(hub, &copier, stamp, rate, seconds)
            .await?
            .print();
        if ferry {
            summary.add(
                format!("RocketMQ -> Kafka p99 at {rate} rec/s"),
                format!("{p99} ms"),
                "< 50 ms",
                p99 < 50,
            );
        }
    }
    Ok(())
}

/// The figures the run ends with, each against its target (issue 13 / DESIGN.md §8).
#[derive(Default)]
struct Summary(Vec<(String, String, String, bool)>);

impl Summary {
    fn add(&mut self, figure: impl Into<String>, value: String, target: &str, pass: bool) {
        self.0.push((figure.into(), value, target.into(), pass));
    }

    /// A direction's median ratios over the rounds (each round's figure in brackets): 1 task
    /// against the native copier (target 0.9), 4 tasks against 1 task (target 1.0).
    fn add_rounds(&mut self, direction: &str, rounds: &[Ratios]) {
        if rounds.is_empty() {
            return;
        }
        let median = |pick: fn(&Ratios) -> f64| {
            let mut values: Vec<f64> = rounds.iter().map(pick).collect();
            let each = values
                .iter()
                .map(|v| format!("{v:.2}"))
                .collect::<Vec<_>>()
                .join(", ");
            values.sort_by(f64::total_cmp);
            (values[values.len() / 2], each)
        };
        let (one, each) = median(|r| r.one_task);
        self.add(
            format!("{direction}, 1 task / native (median of {})", rounds.len()),
            format!("{one:.2} ({each})"),
            ">= 0.90",
            one >= 0.9,
        );
        let (four, each) = median(|r| r.four_tasks);
        self.add(
            format!("{direction}, 4 tasks / 1 task (median of {})", rounds.len()),
            format!("{four:.2} ({each})"),
            ">= 1.00",
            four >= 1.0,
        );
    }

    fn print(&self) {
        println!("\nsummary");
        println!("| figure | value | target | |");
        println!("|---|---|---|---|");
        for (figure, value, target, pass) in &self.0 {
            let verdict = if *pass { "pass" } else { "FAIL" };
            println!("| {figure} | {value} | {target} | {verdict} |");
        }
    }
}

/// One round of the throughput part: fresh topics (named by `tag`), copied by the native
/// copier and by Ferry with 1 and with 4 tasks (each a new connector, deleted after its run),
/// in that order or, in odd rounds, the opposite one.
struct Round<'a> {
    brokers: &'a ferry_bench::native::Brokers,
    hub: &'a Arc<Hub>,
    /// `None` with `FERRY_BENCH_NATIVE_ONLY` (only the native copiers run).
    worker: Option<&'a FerryWorker>,
    tuning: ferry_bench::native::Tuning,
    total: u64,
    tag: String,
    /// Ferry runs before the native copier, 4 tasks before 1 (odd rounds).
    reversed: bool,
}

/// `config` with the `key=value,...` pairs of environment variable `var` added (to try
/// connector settings: `FERRY_BENCH_SOURCE_CONFIG` for kafka-source, `FERRY_BENCH_SINK_CONFIG`
/// for kafka-sink).
fn with_extra(mut config: serde_json::Value, var: &str) -> serde_json::Value {
    for pair in std::env::var(var).unwrap_or_default().split(',') {
        if let Some((k, v)) = pair.split_once('=') {
            config[k] = v.into();
        }
    }
    config
}

/// One direction's ratios in one round: Ferry 1 task / native, Ferry 4 tasks / Ferry 1 task.
#[derive(Clone, Copy)]
struct Ratios {
    one_task: f64,
    four_tasks: f64,
}

impl Round<'_> {
    async fn kafka_to_rocketmq(&self) -> anyhow::Result<Ratios> {
        let from = format!("bench-k2r-{}", self.tag);
        create_kafka_topic(&from).await?;
        fill_kafka(&from, self.total)?;
        let to = format!("{from}-native");
        let native = ferry_bench::native::kafka_to_rocketmq(
            self.brokers,
            &from,
            PARTITIONS,
            &to,
            self.total,
            self.tuning,
        );
        self.compare("Kafka -> RocketMQ", native, |tasks| {
            with_extra(
                serde_json::json!({"connector-class": "kafka-source", "kafka.topics": from,
                                   "kafka.bootstrap.server": KAFKA, "topic.prefix": format!("ferry{tasks}-"),
                                   "tasks.num": tasks.to_string(), "kafka.client.session.timeout.ms": "6000"}),
                "FERRY_BENCH_SOURCE_CONFIG",
            )
        })
        .await
    }

    async fn rocketmq_to_kafka(&self) -> anyhow::Result<Ratios> {
        let from = format!("bench-r2k-{}", self.tag);
        fill_rocketmq(self.hub, &from, self.total).await?;
        for to in ["native", "ferry1", "ferry4"] {
            create_kafka_topic(&format!("{to}-{from}")).await?;
        }
        let to = format!("native-{from}");
        let native = ferry_bench::native::rocketmq_to_kafka(
            self.brokers,
            &from,
            &to,
            self.total,
            self.tuning,
        );
        self.compare("RocketMQ -> Kafka", native, |tasks| {
            with_extra(
                serde_json::json!({"connector-class": "kafka-sink", "rocketmq.topics": from,
                                   "kafka.bootstrap.server": KAFKA, "topic.prefix": format!("ferry{tasks}-"),
                                   "tasks.num": tasks.to_string()}),
                "FERRY_BENCH_SINK_CONFIG",
            )
        })
        .await
    }

    /// Runs the `native` copier and Ferry with 1 and with 4 tasks (connector config from
    /// `config(tasks)`), prints their figures and returns the ratios. Odd rounds run in the
    /// opposite order (Ferry 4 tasks, 1 task, then native): every run writes to brokers that
    /// the runs before it filled, and Tansu's memory engine slows as it fills, so a fixed order
    /// would favour whoever runs first.
    async fn compare(
        &self,
        direction: &str,
        native: impl std::future::Future<Output = anyhow::Result<Duration>>,
        config: impl Fn(u32) -> serde_json::Value,
    ) -> anyhow::Result<Ratios> {
        let rate = |d: Duration| self.total as f64 / d.as_secs_f64();
        // The native run with this process's CPU meanwhile; awaited once, first or last.
        let timed_native = async {
            let cpu_before = ferry_bench::cpu_of(std::process::id());
            let took = native.await?;
            anyhow::Ok((took, ferry_bench::cpu_of(std::process::id()) - cpu_before))
        };
        let Some(worker) = self.worker else {
            let (native, _) = timed_native.await?;
            println!("{direction}: native {:.0} rec/s", rate(native));
            return Ok(Ratios {
                one_task: 0.0,
                four_tasks: 0.0,
            });
        };
        let ferry_runs = |order: [u32; 2]| {
            order
                .into_iter()
                .map(|tasks| Ok((tasks, self.ferry_run(worker, tasks, &config)?)))
                .collect::<anyhow::Result<Vec<_>>>()
        };
        let (mut ferry, (native, native_cpu)) = if self.reversed {
            let ferry = ferry_runs([4, 1])?;
            (ferry, timed_native.await?)
        } else {
            let native = timed_native.await?;
            (ferry_runs([1, 4])?, native)
        };
        ferry.sort_by_key(|(tasks, _)| *tasks);
        for (tasks, (took, cpu)) in &ferry {
            report(direction, *tasks, self.total, native, *took);
            report_cpu(direction, *tasks, self.total, native_cpu, *cpu);
        }
        let (one, four) = (rate(ferry[0].1.0), rate(ferry[1].1.0));
        Ok(Ratios {
            one_task: one / rate(native),
            four_tasks: four / one,
        })
    }

    /// One Ferry run with `tasks` tasks: how long it took and the worker's CPU meanwhile.
    fn ferry_run(
        &self,
        worker: &FerryWorker,
        tasks: u32,
        config: &impl Fn(u32) -> serde_json::Value,
    ) -> anyhow::Result<(Duration, Duration)> {
        let cpu_before = worker.cpu();
        let connector = format!(
            "{}-{tasks}-{}",
            config(tasks)["connector-class"].as_str().unwrap_or("c"),
            self.tag
        );
        let from = monotonic_secs();
        let took = worker.measure(&connector, config(tasks), self.total)?;
        // To cut a profile to this run (`perf record -k CLOCK_MONOTONIC`, `--time`).
        println!(
            "    {connector}: CLOCK_MONOTONIC {from:.3} to {:.3}",
            monotonic_secs()
        );
        Ok((took, worker.cpu() - cpu_before))
    }
}

/// Prints one direction's figures: rates and the ratio Ferry / native.
fn report(direction: &str, tasks: u32, total: u64, native: Duration, ferry: Duration) {
    let rate = |d: Duration| total as f64 / d.as_secs_f64();
    println!(
        "{direction}: native {:>9.0} rec/s {:>6.1} MB/s | ferry {tasks} task(s) {:>9.0} rec/s {:>6.1} MB/s | ratio {:.2}",
        rate(native),
        rate(native) * VALUE as f64 / 1e6,
        rate(ferry),
        rate(ferry) * VALUE as f64 / 1e6,
        rate(ferry) / rate(native)
    );
}

/// Prints the CPU each copier spent per record: the native copier's process (nothing else runs
/// in it meanwhile) and the worker's, from the connector's creation to its deletion. On 2 cores
/// shared with the brokers, CPU per record is what the copier takes from them.
fn report_cpu(direction: &str, tasks: u32, total: u64, native: Duration, ferry: Duration) {
    let per_record = |d: Duration| d.as_secs_f64() * 1e6 / total as f64;
    println!(
        "{direction}: CPU per record: native {:.1} us | ferry {tasks} task(s) {:.1} us | ratio {:.2}",
        per_record(native),
        per_record(ferry),
        per_record(ferry) / per_record(native).max(f64::MIN_POSITIVE)
    );
}

/// Creates a Kafka topic of [`PARTITIONS`] partitions for one run.
///
/// Topics are never deleted during a run, though Tansu's memory engine keeps every record and
/// slows as it fills (its CPU at 10,000 rec/s rose from 41 % to 64 % of a core within one 10 s
/// latency run after the throughput runs): after a deletion Tansu answers a client's metadata
/// request with a topic that has no name and no error (Apache Kafka answers
/// UNKNOWN_TOPIC_OR_PARTITION with the name), and librdkafka 2.12 crashes on the missing name
/// (SIGSEGV in `rd_kafka_metadata_cache_find`), taking the worker down.
async fn create_kafka_topic(topic: &str) -> anyhow::Result<()> {
    use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
    let admin: AdminClient<_> = ClientConfig::new()
        .set("bootstrap.servers", KAFKA)
        .create()?;
    admin
        .create_topics(
            &[NewTopic::new(topic, PARTITIONS, TopicReplication::Fixed(1))],
            &AdminOptions::new(),
        )
        .await?;
    Ok(())
}

/// A `VALUE`-byte value starting with `prefix` (readers recognise and count records by it).
fn padded(prefix: String) -> Vec<u8> {
    let mut v = prefix.into_bytes();
    v.resize(VALUE, b'x');
    v
}

fn value(i: u64) -> Vec<u8> {
    padded(format!("{i} "))
}

/// Records `range` as one batch for RocketMQ: key `k<i mod 1000>`, value `value(i)`.
fn numbered_batch(
    topic: &str,
    range: std::ops::Range<u64>,
    value: fn(u64) -> Vec<u8>,
    timestamp_ms: i64,
) -> RecordBatch {
    RecordBatch {
        topic: topic.into(),
        partition: 0,
        messages: range
            .map(|i| Message {
                offset: i as i64,
                key: Some(format!("k{}", i % 1000).into_bytes()),
                value: value(i),
                headers: vec![],
                timestamp_ms,
            })
            .collect(),
    }
}

/// Every partition of `topic`, from offset 0.
fn from_start(topic: &str) -> anyhow::Result<TopicPartitionList> {
    let mut tpl = TopicPartitionList::new();
    for p in 0..PARTITIONS {
        tpl.add_partition_offset(topic, p, Offset::Offset(0))?;
    }
    Ok(tpl)
}

fn fill_kafka(topic: &str, total: u64) -> anyhow::Result<()> {
    let producer: ThreadedProducer<DefaultProducerContext> = ClientConfig::new()
        .set("bootstrap.servers", KAFKA)
        .set("linger.ms", "10")
        .set("queue.buffering.max.messages", "1000000")
        .create()?;
    for i in 0..total {
        let key = format!("k{}", i % 1000);
        let v = value(i);
        let mut record = BaseRecord::to(topic).key(&key).payload(&v);
        while let Err((_, back)) = producer.send(record) {
            record = back;
            std::thread::sleep(Duration::from_millis(2));
        }
    }
    producer.flush(Duration::from_secs(120))?;
    Ok(())
}

async fn fill_rocketmq(hub: &Hub, topic: &str, total: u64) -> anyhow::Result<()> {
    let queues = hub.queues(topic).await?;
    let mut sends = Vec::new();
    let mut i = 0;
    while i < total {
        let n = 256.min(total - i);
        let batch = numbered_batch(topic, i..i + n, value, 0);
        let queue = queues[(i / 256) as usize % queues.len()].clone();
        sends.push((
            queue,
            ferry::rocketmq::to_mq_messages(&batch, topic, "bench-fill"),
        ));
        i += n;
    }
    for chunk in sends.chunks(16) {
        let results =
            futures::future::join_all(chunk.iter().map(|(q, m)| hub.send_batch(q, m.clone())))
                .await;
        for r in results {
            r?;
        }
    }
    Ok(())
}

/// End-to-end latency at a fixed rate: records carry their production time (Kafka timestamp
/// -> `FERRY_TS` -> Kafka timestamp), and a reader on the far side subtracts it from its clock.
/// Each record's time is also split per hop (see [`latency::Run`]); the same runs with the
/// native copier in place of Ferry give the baseline.
mod latency {
    use super::*;
    use std::collections::{BTreeMap, HashMap};

    /// Produce in ticks of this many ms (`rate / 100` records each).
    const TICK_MS: u64 = 10;

    /// What copies the records during a latency run.
    pub enum Copier<'a> {
        /// A Ferry worker with one-task connectors.
        Ferry(&'a FerryWorker),
        /// `ferry_bench::native`'s copier, with these settings.
        Native(
            &'a ferry_bench::native::Brokers,
            ferry_bench::native::Tuning,
        ),
    }

    impl Copier<'_> {
        fn label(&self) -> &'static str {
            match self {
                Copier::Ferry(_) => "ferry",
                Copier::Native(..) => "native",
            }
        }
    }

    /// One run's latencies in ms: end to end, then per hop (each record's time in that hop).
    pub struct Run {
        direction: &'static str,
        copier: &'static str,
        rate: u64,
        total: Vec<i64>,
        /// When each record was produced (ms since the epoch), in the order of `total`.
        produced: Vec<i64>,
        hops: Vec<(&'static str, Vec<i64>)>,
    }

    /// Records later than this count as slow in [`Run::print`]'s stall line (the p99 target).
    const SLOW_MS: i64 = 50;

    /// p50, p99 and max of `values` (sorted in place).
    fn quantiles(values: &mut [i64]) -> (i64, i64, i64) {
        values.sort_unstable();
        let at = |q: f64| values[((values.len() as f64 - 1.0) * q) as usize];
        (at(0.5), at(0.99), at(1.0))
    }

    impl Run {
        /// Prints end-to-end p50, p99 and max, and p50/p99 per hop; returns the end-to-end p99.
        pub fn print(mut self) -> i64 {
            let stalls = self.stalls();
            let (p50, p99, max) = quantiles(&mut self.total);
            println!(
                "{} latency at {} rec/s, {}: p50 {p50} ms, p99 {p99} ms, max {max} ms ({} records)",
                self.direction,
                self.rate,
                self.copier,
                self.total.len()
            );
            for (hop, values) in &mut self.hops {
                if values.is_empty() {
                    continue;
                }
                let (p50, p99, max) = quantiles(values);
                println!("    {hop:<44} p50 {p50:>4} ms, p99 {p99:>4} ms, max {max:>5} ms");
            }
            if !stalls.is_empty() {
                println!("    {stalls}");
            }
            p99
        }

        /// Where the records slower than [`SLOW_MS`] were produced: the 250 ms windows that hold
        /// most of them, as seconds into the run. Tells one stall (a few windows) from a slow
        /// path (spread over the run).
        fn stalls(&self) -> String {
            let Some(start) = self.produced.iter().min() else {
                return String::new();
            };
            let mut windows: BTreeMap<i64, usize> = BTreeMap::new();
            for (latency, produced) in self.total.iter().zip(&self.produced) {
                if *latency > SLOW_MS {
                    *windows.entry((produced - start) / 250).or_default() += 1;
                }
            }
            let slow: usize = windows.values().sum();
            if slow == 0 {
                return String::new();
            }
            let mut worst: Vec<_> = windows.iter().collect();
            worst.sort_by(|a, b| b.1.cmp(a.1));
            let shown: Vec<String> = worst
                .iter()
                .take(4)
                .map(|(w, n)| format!("+{:.2} s: {n}", **w as f64 / 4.0))
                .collect();
            // The start as UTC time of day, to match the worker's log.
            let ms = start.rem_euclid(86_400_000);
            format!(
                "over {SLOW_MS} ms: {slow} records in {} windows of 250 ms; most at {} (run started {:02}:{:02}:{:02}.{:03} UTC)",
                windows.len(),
                shown.join(", "),
                ms / 3_600_000,
                ms / 60_000 % 60,
                ms / 1000 % 60,
                ms % 1000
            )
        }
    }

    fn now_ms() -> i64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0)
    }

    /// Calls `send(first, count)` every tick so that `total` records go out at `rate`.
    async fn paced<F, Fut>(rate: u64, total: u64, mut send: F) -> anyhow::Result<()>
    where
        F: FnMut(u64, u64) -> Fut,
        Fut: std::future::Future<Output = anyhow::Result<()>>,
    {
        let per_tick = (rate * TICK_MS / 1000).max(1);
        let mut ticker = tokio::time::interval(Duration::from_millis(TICK_MS));
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
        let mut sent = 0;
        while sent < total {
            ticker.tick().await;
            let n = per_tick.min(total - sent);
            send(sent, n).await?;
            sent += n;
        }
        Ok(())
    }

    fn latency_value(i: u64) -> Vec<u8> {
        padded(format!("lat {i} "))
    }

    /// The record number a latency value carries (`None` for other records).
    fn record_number(value: &[u8]) -> Option<u64> {
        let rest = value.strip_prefix(b"lat ")?;
        let end = rest.iter().position(|b| *b == b' ')?;
        std::str::from_utf8(&rest[..end]).ok()?.parse().ok()
    }

    /// Waits for a native copier started for the run (it ends once it copied every record).
    async fn finish(
        copier: Option<tokio::task::JoinHandle<anyhow::Result<Duration>>>,
    ) -> anyhow::Result<()> {
        if let Some(handle) = copier {
            tokio::time::timeout(Duration::from_secs(60), handle)
                .await
                .map_err(|_| anyhow::anyhow!("the native copier did not finish"))???;
        }
        Ok(())
    }

    /// Kafka producer -> copier -> a RocketMQ reader. Hops from the RocketMQ message's own
    /// stamps: born (the copier's send) and stored (the broker).
    pub async fn kafka_to_rocketmq(
        hub: &Arc<Hub>,
        copier: &Copier<'_>,
        stamp: u64,
        rate: u64,
        seconds: u64,
    ) -> anyhow::Result<Run> {
        let topic = format!("bench-lat-k2r-{stamp}-{rate}-{}", copier.label());
        let to = format!("lat-{topic}");
        create_kafka_topic(&topic).await?;
        // Create the destination first, so the reader's subscription finds it at once.
        hub.queues(&to).await?;
        let total = rate * seconds;
        let connector = format!("latency-source-{rate}");
        let native = match copier {
            // Tansu holds every fetch for the whole `fetch.wait.max.ms` (librdkafka's default
            // is 500 ms) even when records arrive meanwhile; Apache Kafka answers as soon as
            // `fetch.min.bytes` is there. A short wait gives Apache Kafka's behaviour here.
            Copier::Ferry(worker) => {
                worker.create(
                    &connector,
                    with_extra(
                        serde_json::json!({"connector-class": "kafka-source", "kafka.topics": topic, "kafka.bootstrap.server": KAFKA,
                                           "topic.prefix": "lat-", "kafka.client.session.timeout.ms": "6000",
                                           "kafka.client.fetch.wait.max.ms": "10"}),
                        "FERRY_BENCH_SOURCE_CONFIG",
                    ),
                )?;
                None
            }
            Copier::Native(brokers, tuning) => {
                let (brokers, topic, to) = ((*brokers).clone(), topic.clone(), to.clone());
                let tuning = ferry_bench::native::Tuning {
                    fetch_wait_ms: Some(10),
                    ..*tuning
                };
                Some(tokio::spawn(async move {
                    ferry_bench::native::kafka_to_rocketmq(
                        &brokers,
                        &topic,
                        PARTITIONS,
                        &to,
                        total + 1,
                        tuning,
                    )
                    .await
                }))
            }
        };
        let producer: FutureProducer = ClientConfig::new()
            .set("bootstrap.servers", KAFKA)
            .set("linger.ms", "1")
            .create()?;
        let reader = hub
            .consumer(&format!("lat-reader-{topic}"), &[to.clone()], "lat-reader")
            .await?;
        let send = |i: u64| {
            let v = latency_value(i);
            let producer = producer.clone();
            let topic = topic.clone();
            async move {
                producer
                    .send(
                        FutureRecord::<[u8], [u8]>::to(&topic)
                            .key(format!("k{}", i % 1000).as_bytes())
                            .payload(&v)
                            .timestamp(now_ms()),
                        Duration::from_secs(10),
                    )
                    .await
                    .map(drop)
                    .map_err(|(e, _)| anyhow::anyhow!("{e}"))
            }
        };
        // One warm-up record through the whole path, so the group join is not measured.
        send(u64::MAX).await?;
        let deadline = Instant::now() + Duration::from_secs(120);
        while reader.poll(64, 200).await.is_empty() {
            anyhow::ensure!(Instant::now() < deadline, "{connector} never delivered");
        }
        let read = async {
            let (mut all, mut sent, mut stored, mut read) = (vec![], vec![], vec![], vec![]);
            let mut produced = vec![];
            let deadline = Instant::now() + Duration::from_secs(seconds + 120);
            while (all.len() as u64) < total && Instant::now() < deadline {
                for ext in reader.poll(2048, 100).await {
                    let m = ferry::rocketmq::from_message_ext(&ext);
                    if record_number(&m.value).is_some_and(|i| i < total) {
                        let now = now_ms();
                        all.push(now - m.timestamp_ms);
                        produced.push(m.timestamp_ms);
                        sent.push(ext.born_timestamp() - m.timestamp_ms);
                        stored.push(ext.store_timestamp() - ext.born_timestamp());
                        read.push(now - ext.store_timestamp());
                    }
                }
            }
            (all, produced, sent, stored, read)
        };
        let produce = paced(rate, total, |first, n| {
            let sends: Vec<_> = (first..first + n).map(send).collect();
            async move {
                for r in futures::future::join_all(sends).await {
                    r?;
                }
                Ok(())
            }
        });
        let ((all, produced_at, sent, stored, read), produced) = tokio::join!(read, produce);
        produced?;
        reader.shutdown().await;
        if let Copier::Ferry(worker) = copier {
            println!("    {connector}: {}", worker.timings(&connector)?);
            worker.http("DELETE", &format!("/connectors/{connector}"), "")?;
        }
        finish(native).await?;
        anyhow::ensure!(
            all.len() as u64 >= total,
            "only {} of {total} records arrived",
            all.len()
        );
        Ok(Run {
            direction: "Kafka -> RocketMQ",
            copier: copier.label(),
            rate,
            total: all,
            produced: produced_at,
            hops: vec![
                ("Kafka produce -> copier sends to RocketMQ", sent),
                ("RocketMQ send -> stored", stored),
                ("RocketMQ stored -> read", read),
            ],
        })
    }

    /// RocketMQ producer -> copier -> a Kafka reader. A second RocketMQ reader (a group of its
    /// own) notes when each record became readable on RocketMQ, which splits the time into the
    /// RocketMQ hop and the copier + Kafka hop.
    pub async fn rocketmq_to_kafka(
        hub: &Arc<Hub>,
        copier: &Copier<'_>,
        stamp: u64,
        rate: u64,
        seconds: u64,
    ) -> anyhow::Result<Run> {
        let topic = format!("bench-lat-r2k-{stamp}-{rate}-{}", copier.label());
        let out = format!("lat-{topic}");
        create_kafka_topic(&out).await?;
        let queues = hub.queues(&topic).await?;
        let total = rate * seconds;
        let connector = format!("latency-sink-{rate}");
        let native = match copier {
            Copier::Ferry(worker) => {
                worker.create(
                    &connector,
                    with_extra(
                        serde_json::json!({"connector-class": "kafka-sink", "rocketmq.topics": topic, "kafka.bootstrap.server": KAFKA,
                                           "topic.prefix": "lat-"}),
                        "FERRY_BENCH_SINK_CONFIG",
                    ),
                )?;
                None
            }
            Copier::Native(brokers, tuning) => {
                let (brokers, topic, out, tuning) =
                    ((*brokers).clone(), topic.clone(), out.clone(), *tuning);
                Some(tokio::spawn(async move {
                    ferry_bench::native::rocketmq_to_kafka(
                        &brokers,
                        &topic,
                        &out,
                        total + 1,
                        tuning,
                    )
                    .await
                }))
            }
        };
        let reader: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", KAFKA)
            .set("group.id", format!("lat-reader-{topic}"))
            .set("enable.auto.commit", "false")
            .set("fetch.wait.max.ms", "5")
            .create()?;
        reader.assign(&from_start(&out)?)?;
        let side = hub
            .consumer(&format!("lat-side-{topic}"), &[topic.clone()], "lat-side")
            .await?;
        let send = |first: u64, n: u64| {
            let batch = numbered_batch(&topic, first..first + n, latency_value, now_ms());
            let queue = queues[(first / n.max(1)) as usize % queues.len()].clone();
            let messages = ferry::rocketmq::to_mq_messages(&batch, &topic, "bench");
            async move { Ok(hub.send_batch(&queue, messages).await?) }
        };
        // Warm-up: wait until one record made it through (the copier's consumer has started).
        send(u64::MAX - 1, 1).await?;
        let deadline = Instant::now() + Duration::from_secs(120);
        while !matches!(reader.poll(Duration::from_millis(200)), Some(Ok(_))) {
            anyhow::ensure!(Instant::now() < deadline, "{connector} never delivered");
        }
        while side.poll(64, 200).await.is_empty() {
            anyhow::ensure!(
                Instant::now() < deadline,
                "the RocketMQ side reader read nothing"
            );
        }
        let produce = paced(rate, total, send);
        let read = tokio::task::spawn_blocking(move || {
            let mut arrived = Vec::with_capacity(total as usize);
            let deadline = Instant::now() + Duration::from_secs(seconds + 120);
            while (arrived.len() as u64) < total && Instant::now() < deadline {
                if let Some(Ok(m)) = reader.poll(Duration::from_millis(100))
                    && let Some(i) = m.payload().and_then(record_number).filter(|i| *i < total)
                {
                    arrived.push((i, m.timestamp().to_millis().unwrap_or(0), now_ms()));
                }
            }
            arrived
        });
        let side_read = async {
            let mut readable = HashMap::with_capacity(total as usize);
            let deadline = Instant::now() + Duration::from_secs(seconds + 120);
            while (readable.len() as u64) < total && Instant::now() < deadline {
                for ext in side.poll(2048, 100).await {
                    if let Some(i) = record_number(ext.body().as_deref().unwrap_or_default())
                        .filter(|i| *i < total)
                    {
                        readable.insert(i, now_ms());
                    }
                }
            }
            readable
        };
        let (produced, readable) = tokio::join!(produce, side_read);
        produced?;
        let arrived = read.await?;
        side.shutdown().await;
        if let Copier::Ferry(worker) = copier {
            println!("    {connector}: {}", worker.timings(&connector)?);
            worker.http("DELETE", &format!("/connectors/{connector}"), "")?;
        }
        finish(native).await?;
        anyhow::ensure!(
            arrived.len() as u64 >= total,
            "only {} of {total} records arrived",
            arrived.len()
        );
        let (mut all, mut produced_at, mut rocketmq, mut rest) = (vec![], vec![], vec![], vec![]);
        for (i, produced, at) in arrived {
            all.push(at - produced);
            produced_at.push(produced);
            if let Some(r) = readable.get(&i) {
                rocketmq.push(r - produced);
                rest.push(at - r);
            }
        }
        Ok(Run {
            direction: "RocketMQ -> Kafka",
            copier: copier.label(),
            rate,
            total: all,
            produced: produced_at,
            hops: vec![
                ("RocketMQ produce -> readable (side reader)", rocketmq),
                ("readable -> copier -> Kafka -> read", rest),
            ],
        })
    }
}

/// Seconds on `CLOCK_MONOTONIC`, the clock `perf record -k CLOCK_MONOTONIC` stamps samples with.
fn monotonic_secs() -> f64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes into the timespec it is given.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as f64 + ts.tv_nsec as f64 / 1e9
}
