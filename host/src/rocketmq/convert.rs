//! Guest records <-> RocketMQ messages. Key -> `KEYS`, headers -> user properties, the record
//! timestamp and an origin marker -> Ferry properties.

use base64::Engine as _;
use rocketmq_model::common::message::message_ext::MessageExt;
use rocketmq_model::common::message::message_single::Message as MqMessage;

use crate::wasm::bindings::{Message, RecordBatch};

/// The record's original timestamp (ms), kept across the hub.
pub const TIMESTAMP_PROPERTY: &str = "FERRY_TS";
/// The connector that copied the record in, so a record is never copied back (no loops).
pub const ORIGIN_PROPERTY: &str = "FERRY_ORIGIN";
/// A key that is not UTF-8, base64-encoded (`KEYS` is a string).
const KEY_B64_PROPERTY: &str = "FERRY_KEY_B64";
/// Header names whose values were not UTF-8 are listed here; their values are base64.
const B64_HEADERS_PROPERTY: &str = "FERRY_B64_HEADERS";
/// The broker's `KEYS` property.
const KEYS: &str = "KEYS";
/// The broker's `TAGS` property.
const TAGS: &str = "TAGS";
/// The record header that carries RocketMQ tags across (both ways).
pub const TAGS_HEADER: &str = "rocketmq.tags";

fn b64() -> base64::engine::GeneralPurpose {
    base64::engine::general_purpose::STANDARD
}

/// Turns one guest batch into RocketMQ messages for `topic`, marked with `origin`.
pub fn to_mq_messages(batch: &RecordBatch, topic: &str, origin: &str) -> Vec<MqMessage> {
    batch
        .messages
        .iter()
        .map(|m| {
            let mut builder = MqMessage::builder().topic(topic).body_slice(&m.value);
            if let Some(key) = &m.key {
                match std::str::from_utf8(key) {
                    Ok(k) if !k.is_empty() && !k.contains(' ') => builder = builder.key(k),
                    _ => builder = with_prop(builder, KEY_B64_PROPERTY, b64().encode(key)),
                }
            }
            let mut binary = Vec::new();
            for (name, value) in &m.headers {
                if name == TAGS_HEADER
                    && let Ok(tags) = std::str::from_utf8(value)
                {
                    builder = builder.tags(tags);
                    continue;
                }
                match std::str::from_utf8(value) {
                    Ok(v) => builder = with_prop(builder, name, v.to_string()),
                    Err(_) => {
                        binary.push(name.as_str());
                        builder = with_prop(builder, name, b64().encode(value));
                    }
                }
            }
            if !binary.is_empty() {
                builder = with_prop(builder, B64_HEADERS_PROPERTY, binary.join(","));
            }
            builder = with_prop(builder, TIMESTAMP_PROPERTY, m.timestamp_ms.to_string());
            builder = with_prop(builder, ORIGIN_PROPERTY, origin.to_string());
            builder.build_unchecked()
        })
        .collect()
}

/// Adds a user property; a name the broker reserves is kept under `h.<name>`.
fn with_prop(
    builder: rocketmq_model::common::message::message_builder::MessageBuilder,
    name: &str,
    value: String,
) -> rocketmq_model::common::message::message_builder::MessageBuilder {
    let name = if rocketmq_model::common::message::STRING_HASH_SET.contains(name) {
        format!("h.{name}")
    } else {
        name.to_string()
    };
    builder
        .raw_property(name, value)
        .expect("names outside the broker's reserved set are accepted")
}

/// Turns a consumed RocketMQ message into a guest message.
pub fn from_message_ext(ext: &MessageExt) -> Message {
    let props = ext.properties();
    let get = |k: &str| {
        props
            .iter()
            .find(|(n, _)| n.as_str() == k)
            .map(|(_, v)| v.as_str())
    };
    let key = match (get(KEY_B64_PROPERTY), get(KEYS)) {
        (Some(encoded), _) => b64().decode(encoded).ok(),
        (None, Some(keys)) => Some(keys.as_bytes().to_vec()),
        (None, None) => None,
    };
    let binary: Vec<&str> = get(B64_HEADERS_PROPERTY)
        .map(|l| l.split(',').collect())
        .unwrap_or_default();
    let reserved = &*rocketmq_model::common::message::STRING_HASH_SET;
    let mut headers: Vec<(String, Vec<u8>)> = props
        .iter()
        .filter(|(n, _)| {
            let n = n.as_str();
            !reserved.contains(n) && !n.starts_with("FERRY_")
        })
        .map(|(n, v)| {
            let name = n
                .as_str()
                .strip_prefix("h.")
                .unwrap_or(n.as_str())
                .to_string();
            let value = if binary.contains(&name.as_str()) {
                b64()
                    .decode(v.as_str())
                    .unwrap_or_else(|_| v.as_bytes().to_vec())
            } else {
                v.as_bytes().to_vec()
            };
            (name, value)
        })
        .collect();
    if let Some(tags) = get(TAGS) {
        headers.push((TAGS_HEADER.to_string(), tags.as_bytes().to_vec()));
    }
    headers.sort();
    let timestamp_ms = get(TIMESTAMP_PROPERTY)
        .and_then(|t| t.parse().ok())
        .unwrap_or_else(|| ext.born_timestamp());
    Message {
        offset: ext.queue_offset(),
        key,
        value: ext.body().map(|b| b.to_vec()).unwrap_or_default(),
        headers,
        timestamp_ms,
    }
}
