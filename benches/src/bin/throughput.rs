//! Throughput of each direction, Ferry against a native copier in the same run.
//!
//! For each direction the same pre-filled data (`FERRY_BENCH_RECORDS`, default 200,000 records
//! of 1 KiB) is copied twice: by the native baseline (plain Rust, the same client crates: rdkafka
//! and rocketmq-client-rust through Ferry's hub wrapper, at-least-once, no WebAssembly) and by a
//! `ferry` worker running the `kafka-source` / `kafka-sink` components. Both are timed from the
//! first copied record to the last, so consumer-group joins do not count. Prints records/s, MB/s
//! and the ratio Ferry/baseline. Needs the brokers (`just bench` starts them).

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ferry::rocketmq::{Hub, HubSettings};
use ferry::wasm::bindings::{Message, RecordBatch};
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
    let result = owner.block_on(run(context));
    owner.shutdown_background();
    result
}

async fn run(context: rocketmq_runtime::ChildServiceContext) -> anyhow::Result<()> {
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

    // Kafka -> RocketMQ.
    let k2r = format!("bench-k2r-{stamp}");
    create_kafka_topic(&k2r).await?;
    fill_kafka(&k2r, total)?;
    let native = native_kafka_to_rocketmq(&hub, &k2r, &format!("{k2r}-native"), total).await?;
    let worker = FerryWorker::start(stamp)?;
    let ferry_k2r = worker.measure(
        "kafka-source",
        serde_json::json!({"connector-class": "kafka-source", "kafka.topics": k2r, "kafka.bootstrap.server": KAFKA,
                           "topic.prefix": "ferry-", "tasks.num": "1", "kafka.client.session.timeout.ms": "6000"}),
        total,
    )?;
    report("Kafka -> RocketMQ", total, native, ferry_k2r);

    // RocketMQ -> Kafka.
    let r2k = format!("bench-r2k-{stamp}");
    fill_rocketmq(&hub, &r2k, total).await?;
    create_kafka_topic(&format!("{r2k}-native")).await?;
    create_kafka_topic(&format!("ferry-{r2k}")).await?;
    let native = native_rocketmq_to_kafka(&hub, &r2k, &format!("{r2k}-native"), total).await?;
    let ferry_r2k = worker.measure(
        "kafka-sink",
        serde_json::json!({"connector-class": "kafka-sink", "rocketmq.topics": r2k, "kafka.bootstrap.server": KAFKA,
                           "topic.prefix": "ferry-", "tasks.num": "1"}),
        total,
    )?;
    report("RocketMQ -> Kafka", total, native, ferry_r2k);
    println!("worker RSS after both runs: {:.1} MiB", worker.rss_mib());
    Ok(())
}

fn report(direction: &str, total: u64, native: Duration, ferry: Duration) {
    let rate = |d: Duration| total as f64 / d.as_secs_f64();
    println!(
        "{direction}: native {:>9.0} rec/s {:>6.1} MB/s | ferry {:>9.0} rec/s {:>6.1} MB/s | ratio {:.2}",
        rate(native),
        rate(native) * VALUE as f64 / 1e6,
        rate(ferry),
        rate(ferry) * VALUE as f64 / 1e6,
        rate(ferry) / rate(native)
    );
}

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

fn value(i: u64) -> Vec<u8> {
    let mut v = format!("{i} ").into_bytes();
    v.resize(VALUE, b'x');
    v
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
        let batch = RecordBatch {
            topic: topic.into(),
            partition: 0,
            messages: (i..i + n)
                .map(|j| Message {
                    offset: j as i64,
                    key: Some(format!("k{}", j % 1000).into_bytes()),
                    value: value(j),
                    headers: vec![],
                    timestamp_ms: 0,
                })
                .collect(),
        };
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

/// The native baseline, Kafka -> RocketMQ: poll, send per queue in batches of up to 256 with
/// several sends in flight, commit Kafka offsets after RocketMQ acknowledged.
async fn native_kafka_to_rocketmq(
    hub: &Arc<Hub>,
    from: &str,
    to: &str,
    total: u64,
) -> anyhow::Result<Duration> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", KAFKA)
        .set("group.id", format!("{to}-group"))
        .set("enable.auto.commit", "false")
        .set("queued.min.messages", "100000")
        .set("fetch.queue.backoff.ms", "10")
        .create()?;
    let mut tpl = TopicPartitionList::new();
    for p in 0..PARTITIONS {
        tpl.add_partition_offset(from, p, Offset::Offset(0))?;
    }
    consumer.assign(&tpl)?;
    let queues = hub.queues(to).await?;
    let (mut copied, mut started) = (0u64, None);
    while copied < total {
        let mut per_partition: HashMap<i32, (Vec<_>, i64)> = HashMap::new();
        let mut polled = 0;
        while polled < 2048 {
            match consumer.poll(if polled == 0 {
                Duration::from_millis(100)
            } else {
                Duration::ZERO
            }) {
                Some(Ok(m)) => {
                    started.get_or_insert_with(Instant::now);
                    let entry = per_partition
                        .entry(m.partition())
                        .or_insert((Vec::new(), 0));
                    entry.0.push(Message {
                        offset: m.offset(),
                        key: m.key().map(<[u8]>::to_vec),
                        value: m.payload().unwrap_or_default().to_vec(),
                        headers: vec![],
                        timestamp_ms: m.timestamp().to_millis().unwrap_or(0),
                    });
                    entry.1 = m.offset();
                    polled += 1;
                }
                _ => break,
            }
        }
        let mut sends = Vec::new();
        for (partition, (messages, _)) in &per_partition {
            for chunk in messages.chunks(256) {
                let batch = RecordBatch {
                    topic: to.into(),
                    partition: *partition,
                    messages: chunk.to_vec(),
                };
                let queue = &queues[*partition as usize % queues.len()];
                sends.push((queue, ferry::rocketmq::to_mq_messages(&batch, to, "native")));
            }
        }
        let acks = sends
            .into_iter()
            .map(|(queue, messages)| hub.send_batch(queue, messages));
        for r in futures::future::join_all(acks).await {
            r?;
        }
        copied += polled as u64;
        let mut commit = TopicPartitionList::new();
        for (partition, (_, last)) in &per_partition {
            commit.add_partition_offset(from, *partition, Offset::Offset(last + 1))?;
        }
        if commit.count() > 0 {
            consumer.commit(&commit, rdkafka::consumer::CommitMode::Async)?;
        }
    }
    Ok(started.map(|s| s.elapsed()).unwrap_or_default())
}

/// The native baseline, RocketMQ -> Kafka: poll, produce (idempotent), wait for every delivery
/// report, commit RocketMQ offsets.
async fn native_rocketmq_to_kafka(
    hub: &Hub,
    from: &str,
    to: &str,
    total: u64,
) -> anyhow::Result<Duration> {
    let consumer = hub
        .consumer(&format!("{to}-group"), &[from.to_string()], "native-bench")
        .await?;
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", KAFKA)
        .set("enable.idempotence", "true")
        .set("linger.ms", "5")
        .set("batch.num.messages", "10000")
        .create()?;
    // Get the idempotent producer's id before timing (it can take 500 ms on first use).
    producer
        .send(
            FutureRecord::<[u8], [u8]>::to(&format!("{to}-warmup")).payload(b"warmup"),
            Duration::from_secs(10),
        )
        .await
        .map_err(|(e, _)| e)?;
    let (mut copied, mut started) = (0u64, None);
    let (mut t_poll, mut t_send, mut t_commit, mut polls) =
        (Duration::ZERO, Duration::ZERO, Duration::ZERO, 0u64);
    while copied < total {
        let t = Instant::now();
        let messages = consumer.poll(2048, 200).await;
        t_poll += t.elapsed();
        polls += 1;
        if messages.is_empty() {
            continue;
        }
        started.get_or_insert_with(Instant::now);
        let mut offsets: HashMap<(String, String, i32), i64> = HashMap::new();
        let mut deliveries = Vec::with_capacity(messages.len());
        for ext in &messages {
            let m = ferry::rocketmq::from_message_ext(ext);
            let mut record = FutureRecord::<[u8], [u8]>::to(to).payload(&m.value);
            if let Some(k) = &m.key {
                record = record.key(k);
            }
            loop {
                match producer.send_result(record) {
                    Ok(d) => {
                        deliveries.push(d);
                        break;
                    }
                    Err((_, back)) => {
                        record = back;
                        tokio::time::sleep(Duration::from_millis(2)).await;
                    }
                }
            }
            let e = offsets
                .entry((
                    ext.topic().to_string(),
                    ext.broker_name().to_string(),
                    ext.queue_id(),
                ))
                .or_insert(0);
            *e = (*e).max(ext.queue_offset() + 1);
        }
        let t = Instant::now();
        for d in deliveries {
            d.await?.map_err(|(e, _)| e)?;
        }
        t_send += t.elapsed();
        let t = Instant::now();
        consumer.commit(offsets).await;
        t_commit += t.elapsed();
        copied += messages.len() as u64;
    }
    let elapsed = started.map(|s| s.elapsed()).unwrap_or_default();
    if std::env::var("FERRY_BENCH_PROFILE").is_ok() {
        println!(
            "native r2k: {polls} polls, poll {t_poll:?}, kafka acks {t_send:?}, commits {t_commit:?}"
        );
    }
    producer.flush(Duration::from_secs(10))?;
    Ok(elapsed)
}

/// A `ferry` worker process for the measurement.
struct FerryWorker {
    child: std::process::Child,
    addr: String,
}

impl FerryWorker {
    fn start(stamp: u64) -> anyhow::Result<Self> {
        let dir = std::env::temp_dir().join(format!("ferry-bench-{stamp}"));
        std::fs::create_dir_all(&dir)?;
        let plugins = std::env::var("FERRY_PLUGIN_DIR").unwrap_or_else(|_| "target/plugins".into());
        let conf = dir.join("connect.conf");
        std::fs::write(
            &conf,
            format!(
                "workerId=bench-{stamp}\nstorePathRootDir={}\nhttpPort=0\nnamesrvAddr={NAMESRV}\npluginPaths={plugins}\n",
                dir.join("store").display()
            ),
        )?;
        let exe = std::env::current_exe()?.with_file_name("ferry");
        let mut child = Command::new(exe)
            .arg("-c")
            .arg(&conf)
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(dir.join("worker.log"))?)
            .spawn()?;
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let addr = loop {
            let line = lines
                .next()
                .ok_or_else(|| anyhow::anyhow!("worker exited"))??;
            if let Some(at) = line.find("http://") {
                break line[at + 7..].trim().to_string();
            }
        };
        Ok(FerryWorker { child, addr })
    }

    fn http(&self, method: &str, path: &str, body: &str) -> anyhow::Result<serde_json::Value> {
        let mut s = std::net::TcpStream::connect(&self.addr)?;
        write!(
            s,
            "{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )?;
        let mut raw = String::new();
        s.read_to_string(&mut raw)?;
        let body = raw.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
        Ok(serde_json::from_str(body).unwrap_or(serde_json::Value::Null))
    }

    /// Creates a connector and times it from its first delivered record to `total`.
    fn measure(
        &self,
        name: &str,
        config: serde_json::Value,
        total: u64,
    ) -> anyhow::Result<Duration> {
        self.http(
            "POST",
            "/connectors",
            &serde_json::json!({"name": name, "config": config}).to_string(),
        )?;
        let deadline = Instant::now() + Duration::from_secs(600);
        let mut started = None;
        loop {
            let status = self.http("GET", &format!("/connectors/{name}/status"), "")?;
            let delivered: u64 = status["tasks"]
                .as_array()
                .map(|t| t.iter().filter_map(|t| t["delivered"].as_u64()).sum())
                .unwrap_or(0);
            if delivered > 0 && started.is_none() {
                started = Some((Instant::now(), delivered));
            }
            if delivered >= total {
                let (at, first) = started.unwrap();
                // Scale for the records already delivered when the first count was seen.
                let elapsed = at.elapsed();
                return Ok(elapsed.mul_f64(total as f64 / (total - first.min(total - 1)) as f64));
            }
            anyhow::ensure!(Instant::now() < deadline, "{name} did not finish: {status}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn rss_mib(&self) -> f64 {
        std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .ok()
            .and_then(|s| {
                s.lines()
                    .find(|l| l.starts_with("VmRSS:"))
                    .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
            })
            .map(|kb| kb / 1024.0)
            .unwrap_or(0.0)
    }
}

impl Drop for FerryWorker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
