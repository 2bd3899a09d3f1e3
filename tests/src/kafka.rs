//! Kafka helpers for the tests: produce records and read a topic back, with rdkafka against the
//! loopback Tansu broker started by `just test`.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Header, Headers, Message, OwnedHeaders};
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use rdkafka::{Offset, TopicPartitionList};

/// The Kafka bootstrap address (`FERRY_KAFKA`, default 127.0.0.1:9092).
pub fn bootstrap() -> String {
    std::env::var("FERRY_KAFKA").unwrap_or_else(|_| "127.0.0.1:9092".into())
}

/// One record read back from Kafka.
#[derive(Clone, Debug)]
pub struct Record {
    /// Partition it was read from.
    pub partition: i32,
    /// Its offset.
    pub offset: i64,
    /// Key bytes.
    pub key: Option<Vec<u8>>,
    /// Value bytes.
    pub value: Vec<u8>,
    /// Headers in order.
    pub headers: Vec<(String, Vec<u8>)>,
    /// Timestamp (ms).
    pub timestamp: Option<i64>,
}

/// A record to produce.
pub struct Outgoing {
    /// Key.
    pub key: Vec<u8>,
    /// Value.
    pub value: Vec<u8>,
    /// Headers.
    pub headers: Vec<(String, Vec<u8>)>,
    /// Timestamp (ms).
    pub timestamp: i64,
}

/// Creates `topic` with `partitions` partitions (Tansu cannot add partitions later).
pub fn create_topic(topic: &str, partitions: i32) {
    create_topic_on(&bootstrap(), topic, partitions)
}

/// [`create_topic`] on another broker.
pub fn create_topic_on(bootstrap: &str, topic: &str, partitions: i32) {
    use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
    let admin: AdminClient<_> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .unwrap();
    let rt = tokio_runtime();
    let result = rt.block_on(admin.create_topics(
        &[NewTopic::new(topic, partitions, TopicReplication::Fixed(1))],
        &AdminOptions::new().operation_timeout(Some(Duration::from_secs(10))),
    ));
    result.unwrap_or_else(|e| panic!("create topic {topic}: {e}"));
}

fn tokio_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// Produces every record to `topic` and waits until all are acknowledged.
pub fn produce(topic: &str, records: impl IntoIterator<Item = Outgoing>) {
    produce_on(&bootstrap(), topic, records)
}

/// [`produce`] on another broker.
pub fn produce_on(bootstrap: &str, topic: &str, records: impl IntoIterator<Item = Outgoing>) {
    let producer: ThreadedProducer<DefaultProducerContext> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("enable.idempotence", "true")
        .set("linger.ms", "5")
        .set("queue.buffering.max.messages", "1000000")
        .create()
        .unwrap();
    for r in records {
        let mut headers = OwnedHeaders::new();
        for (k, v) in &r.headers {
            headers = headers.insert(Header {
                key: k,
                value: Some(v),
            });
        }
        let mut record = BaseRecord::to(topic)
            .key(&r.key)
            .payload(&r.value)
            .headers(headers)
            .timestamp(r.timestamp);
        loop {
            match producer.send(record) {
                Ok(()) => break,
                Err((_, back)) => {
                    record = back;
                    std::thread::sleep(Duration::from_millis(5));
                }
            }
        }
    }
    producer
        .flush(Duration::from_secs(60))
        .expect("every record acknowledged by Kafka");
}

/// Counts records by the number their value starts with (`"<n> ..."`), for `assert_complete`.
pub fn counts_by_number(records: &[Record]) -> std::collections::BTreeMap<u64, u32> {
    let mut counts = std::collections::BTreeMap::new();
    for r in records {
        if let Some(n) = String::from_utf8_lossy(&r.value)
            .split(' ')
            .next()
            .and_then(|n| n.parse().ok())
        {
            *counts.entry(n).or_insert(0) += 1;
        }
    }
    counts
}

/// Reads `topic` from offset 0 of every partition until `done(records)` or `timeout`.
pub fn read_until(topic: &str, timeout: Duration, done: impl Fn(&[Record]) -> bool) -> Vec<Record> {
    read_until_on(&bootstrap(), topic, timeout, done)
}

/// [`read_until`] on another broker.
pub fn read_until_on(
    bootstrap: &str,
    topic: &str,
    timeout: Duration,
    done: impl Fn(&[Record]) -> bool,
) -> Vec<Record> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", crate::unique("reader"))
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    let deadline = Instant::now() + timeout;
    let mut assigned: HashMap<i32, ()> = HashMap::new();
    let mut records = Vec::new();
    while Instant::now() < deadline && !done(&records) {
        // Partitions appear once the topic exists; assign new ones from offset 0.
        if let Ok(md) = consumer.fetch_metadata(Some(topic), Duration::from_secs(5))
            && let Some(t) = md.topics().first()
        {
            let fresh: Vec<i32> = t
                .partitions()
                .iter()
                .map(|p| p.id())
                .filter(|p| !assigned.contains_key(p))
                .collect();
            if !fresh.is_empty() {
                for p in fresh {
                    assigned.insert(p, ());
                }
                let mut tpl = TopicPartitionList::new();
                for p in assigned.keys() {
                    let current = records
                        .iter()
                        .filter(|r: &&Record| r.partition == *p)
                        .map(|r| r.offset + 1)
                        .max()
                        .unwrap_or(0);
                    tpl.add_partition_offset(topic, *p, Offset::Offset(current))
                        .unwrap();
                }
                consumer.assign(&tpl).unwrap();
            }
        }
        let until = Instant::now() + Duration::from_millis(500);
        while Instant::now() < until {
            if let Some(Ok(m)) = consumer.poll(Duration::from_millis(100)) {
                records.push(Record {
                    partition: m.partition(),
                    offset: m.offset(),
                    key: m.key().map(<[u8]>::to_vec),
                    value: m.payload().map(<[u8]>::to_vec).unwrap_or_default(),
                    headers: m
                        .headers()
                        .map(|h| {
                            h.iter()
                                .map(|h| {
                                    (
                                        h.key.to_string(),
                                        h.value.map(<[u8]>::to_vec).unwrap_or_default(),
                                    )
                                })
                                .collect()
                        })
                        .unwrap_or_default(),
                    timestamp: m.timestamp().to_millis(),
                });
            }
        }
    }
    records
}

/// A Tansu broker of one test, reached through a [`Cutter`] so the test can make Kafka
/// unreachable without losing Tansu's in-memory data.
pub struct PrivateKafka {
    child: std::process::Child,
    /// The proxy clients connect to (the advertised address).
    pub cutter: Cutter,
}

impl PrivateKafka {
    /// Starts Tansu on a free port, advertising the proxy's port.
    pub fn start() -> PrivateKafka {
        let tools = std::env::var("FERRY_TOOLS")
            .map(std::path::PathBuf::from)
            .unwrap_or_else(|_| {
                std::path::PathBuf::from(std::env::var("HOME").unwrap()).join(".cache/ferry/tools")
            });
        let broker_port = free_port();
        let proxy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let proxy_port = proxy.local_addr().unwrap().port();
        let child = std::process::Command::new(tools.join("bin/tansu"))
            .args([
                "broker",
                "--listener-url",
                &format!("tcp://127.0.0.1:{broker_port}"),
                "--advertised-listener-url",
                &format!("tcp://127.0.0.1:{proxy_port}"),
                "--storage-engine",
                "memory://tansu/",
            ])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start tansu (run scripts/install-brokers.sh)");
        crate::wait_for("private tansu", Duration::from_secs(30), || {
            std::net::TcpStream::connect(("127.0.0.1", broker_port))
                .ok()
                .map(|_| ())
        });
        PrivateKafka {
            child,
            cutter: Cutter::start(proxy, broker_port),
        }
    }

    /// The address clients should use.
    pub fn bootstrap(&self) -> String {
        format!("127.0.0.1:{}", self.cutter.port)
    }
}

impl Drop for PrivateKafka {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A TCP proxy that can cut every connection and refuse new ones, then heal.
pub struct Cutter {
    /// The port it listens on.
    pub port: u16,
    cut: std::sync::Arc<std::sync::atomic::AtomicBool>,
    generation: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl Cutter {
    fn start(listener: std::net::TcpListener, target: u16) -> Cutter {
        use std::sync::Arc;
        use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
        let port = listener.local_addr().unwrap().port();
        let cut = Arc::new(AtomicBool::new(false));
        let generation = Arc::new(AtomicU64::new(0));
        let (c, g) = (cut.clone(), generation.clone());
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                if c.load(Ordering::SeqCst) {
                    drop(client);
                    continue;
                }
                let Ok(server) = std::net::TcpStream::connect(("127.0.0.1", target)) else {
                    continue;
                };
                let born = g.load(Ordering::SeqCst);
                for (from, to) in [
                    (client.try_clone().unwrap(), server.try_clone().unwrap()),
                    (server, client),
                ] {
                    let (c, g) = (c.clone(), g.clone());
                    std::thread::spawn(move || pipe(from, to, c, g, born));
                }
            }
        });
        Cutter {
            port,
            cut,
            generation,
        }
    }

    /// Closes every connection and refuses new ones until [`Self::heal`].
    pub fn cut(&self) {
        self.cut.store(true, std::sync::atomic::Ordering::SeqCst);
        self.generation
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }

    /// Accepts connections again.
    pub fn heal(&self) {
        self.cut.store(false, std::sync::atomic::Ordering::SeqCst);
    }
}

fn pipe(
    mut from: std::net::TcpStream,
    mut to: std::net::TcpStream,
    cut: std::sync::Arc<std::sync::atomic::AtomicBool>,
    generation: std::sync::Arc<std::sync::atomic::AtomicU64>,
    born: u64,
) {
    use std::io::{Read, Write};
    use std::sync::atomic::Ordering;
    from.set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        if cut.load(Ordering::SeqCst) || generation.load(Ordering::SeqCst) != born {
            break;
        }
        match from.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                if to.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => break,
        }
    }
    let _ = from.shutdown(std::net::Shutdown::Both);
    let _ = to.shutdown(std::net::Shutdown::Both);
}
