//! Produces sample traffic into a Kafka topic at a fixed rate until stopped (used by the demo).
//!
//! `kafka-traffic <bootstrap> <topic> <records-per-second>`

use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::producer::{BaseRecord, DefaultProducerContext, ThreadedProducer};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [bootstrap, topic, rate] = args.as_slice() else {
        eprintln!("usage: kafka-traffic <bootstrap> <topic> <records-per-second>");
        std::process::exit(2);
    };
    let rate: u64 = rate.parse().expect("records per second");
    let producer: ThreadedProducer<DefaultProducerContext> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("linger.ms", "5")
        .create()
        .expect("kafka producer");
    let started = Instant::now();
    let mut sent = 0u64;
    loop {
        let due = (started.elapsed().as_secs_f64() * rate as f64) as u64;
        while sent < due {
            let key = format!("user-{}", sent % 100);
            let value = format!("{{\"n\":{sent},\"source\":\"kafka\"}}");
            let mut record = BaseRecord::to(topic).key(&key).payload(&value);
            while let Err((_, back)) = producer.send(record) {
                record = back;
                std::thread::sleep(Duration::from_millis(5));
            }
            sent += 1;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}
