//! `consumer.poll` of the `kafka` capability, lowered into the guest straight from librdkafka's
//! buffers. The records a poll takes stay librdkafka messages until the canonical ABI copies
//! them into guest memory: each key, value and header is copied once, and the host allocates
//! nothing per record. Building owned records first (bindgen's `Vec<RecordBatch>`) cost five
//! allocations and frees and an extra copy of the value per record, a tenth of a kafka-source
//! task's CPU (BENCHMARKS.md, issue 13). The bindgen `HostConsumer::poll` stays for hosts that
//! do not shadow it ([`shadow_consumer_poll`]) and returns the same records, owned.

use std::mem::MaybeUninit;
use std::ops::Range;
use std::sync::Arc;
use std::time::Duration;

use rdkafka::consumer::BaseConsumer;
use rdkafka::message::{BorrowedMessage, Headers, Message as _};
use wasmtime::StoreContextMut;
use wasmtime::component::__internal::{
    CanonicalAbiInfo, InstanceType, InterfaceType, LowerContext,
};
use wasmtime::component::{ComponentType, Linker, Lower, Resource};

use super::kafka::{AssignFromZero, KafkaConsumer, kafka_err};
use crate::wasm::bindings::{Message, RecordBatch};
use crate::wasm::state::TaskState;

/// The WIT instance and function [`shadow_consumer_poll`] replaces.
const KAFKA_INTERFACE: &str = "ferry:connector/kafka@0.1.0";
const POLL_FUNCTION: &str = "[method]consumer.poll";

/// The longest a guest's poll may wait for its first record.
const MAX_WAIT: Duration = Duration::from_secs(5);

/// Replaces bindgen's `consumer.poll` in `linker` (after `kafka::add_to_linker`) with one that
/// lowers [`Polled`] records in place. Same WIT signature, same records.
pub fn shadow_consumer_poll(linker: &mut Linker<TaskState>) -> wasmtime::Result<()> {
    linker.allow_shadowing(true);
    let defined = linker.instance(KAFKA_INTERFACE).and_then(|mut kafka| {
        kafka.func_wrap_async(
            POLL_FUNCTION,
            |store: StoreContextMut<'_, TaskState>,
             (this, max, timeout_ms): (Resource<KafkaConsumer>, u32, u32)| {
                let consumer = store.data().consumer(&this);
                Box::new(async move {
                    let polled = match consumer {
                        Ok(consumer) => poll(consumer, max, timeout_ms).await,
                        Err(e) => Err(e),
                    };
                    Ok((polled,))
                })
            },
        )
    });
    linker.allow_shadowing(false);
    defined
}

/// Waits up to `timeout_ms` (at most [`MAX_WAIT`]) for a first record on a blocking thread,
/// then takes what librdkafka has already fetched, up to `max` records.
pub async fn poll(
    consumer: Arc<BaseConsumer<AssignFromZero>>,
    max: u32,
    timeout_ms: u32,
) -> Result<Polled, String> {
    let timeout = Duration::from_millis(timeout_ms as u64).min(MAX_WAIT);
    let waiter = consumer.clone();
    let first = tokio::task::spawn_blocking(move || {
        // SAFETY: the message lives in the `Polled` below, which holds the consumer.
        waiter
            .poll(timeout)
            .map(|r| r.map(|m| unsafe { outliving(m) }))
    })
    .await
    .map_err(|e| format!("kafka: poll thread: {e}"))?;
    let mut polled = Polled {
        messages: Vec::new(),
        consumer,
    };
    match first {
        None => return Ok(polled),
        Some(Err(e)) => return Err(kafka_err(e)),
        Some(Ok(m)) => polled.messages.push(m),
    }
    while polled.messages.len() < max as usize {
        match polled.consumer.poll(Duration::ZERO) {
            // SAFETY: as above, `polled` holds the consumer.
            Some(Ok(m)) => polled.messages.push(unsafe { outliving(m) }),
            Some(Err(e)) => {
                tracing::warn!("kafka poll: {e}");
                break;
            }
            None => break,
        }
    }
    Ok(polled)
}

/// Unties a message from the borrow of its consumer.
///
/// # Safety
/// The caller keeps the consumer alive until the message is dropped.
unsafe fn outliving(m: BorrowedMessage<'_>) -> BorrowedMessage<'static> {
    // SAFETY: same type but for the lifetime; the caller's contract keeps the consumer alive.
    unsafe { std::mem::transmute::<BorrowedMessage<'_>, BorrowedMessage<'static>>(m) }
}

/// The records of one poll, in librdkafka's buffers, lowered as WIT `list<record-batch>`.
pub struct Polled {
    /// Declared before `consumer`, so dropped first: no message outlives its consumer.
    messages: Vec<BorrowedMessage<'static>>,
    consumer: Arc<BaseConsumer<AssignFromZero>>,
}

/// WIT `message`, borrowing its bytes.
#[derive(ComponentType, Lower)]
#[component(record)]
struct MessageView<'a> {
    offset: i64,
    key: Option<&'a [u8]>,
    value: &'a [u8],
    headers: &'a [(&'a str, &'a [u8])],
    #[component(name = "timestamp-ms")]
    timestamp_ms: i64,
}

/// WIT `record-batch`, borrowing its messages' bytes.
#[derive(ComponentType, Lower)]
#[component(record)]
struct BatchView<'a> {
    topic: &'a str,
    partition: i32,
    messages: Vec<MessageView<'a>>,
}

impl Polled {
    /// Calls `f` with the records as batches, one per topic and partition in order of first
    /// appearance (records in poll order), borrowing librdkafka's bytes.
    fn with_batches<R>(&self, f: impl FnOnce(&[BatchView<'_>]) -> R) -> R {
        // Every header of the poll in one vector; each record borrows its range of it.
        let mut headers: Vec<(&str, &[u8])> = Vec::new();
        let spans: Vec<Range<usize>> = self
            .messages
            .iter()
            .map(|m| {
                let start = headers.len();
                if let Some(h) = m.headers() {
                    headers.extend(h.iter().map(|h| (h.key, h.value.unwrap_or_default())));
                }
                start..headers.len()
            })
            .collect();
        let mut batches: Vec<BatchView<'_>> = Vec::new();
        for (m, span) in self.messages.iter().zip(spans) {
            let view = MessageView {
                offset: m.offset(),
                key: m.key(),
                value: m.payload().unwrap_or_default(),
                headers: &headers[span],
                timestamp_ms: m.timestamp().to_millis().unwrap_or(-1),
            };
            let (topic, partition) = (m.topic(), m.partition());
            match batches
                .iter_mut()
                .find(|b| b.partition == partition && b.topic == topic)
            {
                Some(b) => b.messages.push(view),
                None => batches.push(BatchView {
                    topic,
                    partition,
                    messages: vec![view],
                }),
            }
        }
        f(&batches)
    }

    /// The records as owned batches (bindgen's `HostConsumer::poll`).
    pub fn to_batches(&self) -> Vec<RecordBatch> {
        self.with_batches(|batches| {
            batches
                .iter()
                .map(|b| RecordBatch {
                    topic: b.topic.to_string(),
                    partition: b.partition,
                    messages: b
                        .messages
                        .iter()
                        .map(|m| Message {
                            offset: m.offset,
                            key: m.key.map(<[u8]>::to_vec),
                            value: m.value.to_vec(),
                            headers: m
                                .headers
                                .iter()
                                .map(|(k, v)| (k.to_string(), v.to_vec()))
                                .collect(),
                            timestamp_ms: m.timestamp_ms,
                        })
                        .collect(),
                })
                .collect()
        })
    }
}

// SAFETY: `Polled` lowers exactly as `[BatchView]`: it forwards the ABI, the type check and
// both lowerings to it.
unsafe impl ComponentType for Polled {
    // A list lowers to a pointer and a length.
    type Lower = [wasmtime::ValRaw; 2];

    const ABI: CanonicalAbiInfo = <[BatchView<'static>] as ComponentType>::ABI;

    fn typecheck(ty: &InterfaceType, types: &InstanceType<'_>) -> wasmtime::Result<()> {
        <[BatchView<'static>] as ComponentType>::typecheck(ty, types)
    }
}

// SAFETY: forwards to `[BatchView]`'s lowering (see the `ComponentType` impl).
unsafe impl Lower for Polled {
    fn linear_lower_to_flat<U>(
        &self,
        cx: &mut LowerContext<'_, U>,
        ty: InterfaceType,
        dst: &mut MaybeUninit<Self::Lower>,
    ) -> wasmtime::Result<()> {
        self.with_batches(|batches| batches.linear_lower_to_flat(cx, ty, dst))
    }

    fn linear_lower_to_memory<U>(
        &self,
        cx: &mut LowerContext<'_, U>,
        ty: InterfaceType,
        offset: usize,
    ) -> wasmtime::Result<()> {
        self.with_batches(|batches| batches.linear_lower_to_memory(cx, ty, offset))
    }
}
