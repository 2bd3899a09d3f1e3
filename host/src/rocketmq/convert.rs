//! Guest records <-> RocketMQ messages. Key -> `KEYS`, headers -> user properties, the record
//! timestamp and an origin marker -> Ferry properties.

use base64::Engine as _;
use bytes::Bytes;
use cheetah_string::CheetahString;
use rocketmq_model::common::message::message_ext::MessageExt;
use rocketmq_model::common::message::message_single::Message as MqMessage;

use crate::wasm::bindings::{Message, RecordBatch};

/// The record's original timestamp (ms), kept across the hub.
pub const TIMESTAMP_PROPERTY: &str = "FERRY_TS";
/// The connector that copied the record in, so a record is never copied back (no loops).
pub const ORIGIN_PROPERTY: &str = "FERRY_ORIGIN";
/// A key that is not UTF-8, base64-encoded (`KEYS` is a string).
const KEY_B64_PROPERTY: &str = "FERRY_KEY_B64";
/// Before 0.2: header names whose values were not UTF-8 were listed here (still read).
const B64_HEADERS_PROPERTY: &str = "FERRY_B64_HEADERS";
/// A header whose name is not a plain property name: `FERRY_H.<percent-encoded name>`.
const ENCODED_NAME_PREFIX: &str = "FERRY_H.";
/// A header whose value is not plain text: `FERRY_B.<percent-encoded name>` = base64 value.
const ENCODED_VALUE_PREFIX: &str = "FERRY_B.";
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
        .map(|m| to_mq_message(m, topic, origin))
        .collect()
}

/// One record as a RocketMQ message (see [`to_mq_messages`]); copies the record's value.
pub fn to_mq_message(m: &Message, topic: &str, origin: &str) -> MqMessage {
    let body = Bytes::copy_from_slice(&m.value);
    to_mq_message_with_body(m, body, &topic.into(), &origin.into())
}

/// Record `m` as a RocketMQ message whose body is `body` (`m.value` is not read). The queue
/// senders build each message right before its send (and again for a retry) instead of keeping
/// a built copy; they keep the value as `Bytes` and the topic and origin as shared strings, so
/// an attempt copies none of them, and the properties go into a map sized once (issue 13
/// profile: allocation was a third of the worker's CPU copying Kafka -> RocketMQ).
pub fn to_mq_message_with_body(
    m: &Message,
    body: Bytes,
    topic: &CheetahString,
    origin: &CheetahString,
) -> MqMessage {
    let mut message = MqMessage::builder()
        .topic(topic.clone())
        .body(body)
        .build_unchecked();
    let properties = message.properties_mut().as_map_mut();
    // The headers, the key, the timestamp, the origin and the id the client adds on send.
    properties.reserve(m.headers.len() + 4);
    let mut put = |name: CheetahString, value: CheetahString| {
        properties.insert(name, value);
    };
    let fixed = CheetahString::from_static_str;
    if let Some(key) = &m.key {
        match plain_value(key) {
            Some(k) if !k.is_empty() && !k.contains(' ') => put(fixed(KEYS), k.into()),
            _ => put(fixed(KEY_B64_PROPERTY), b64().encode(key).into()),
        }
    }
    // Names are made safe by `plain_name` or a Ferry prefix: no header sets a system property.
    for (name, value) in &m.headers {
        if name == TAGS_HEADER
            && let Some(tags) = plain_value(value)
        {
            put(fixed(TAGS), tags.into());
            continue;
        }
        match (plain_name(name), plain_value(value)) {
            (true, Some(v)) => put(name.as_str().into(), v.into()),
            (_, Some(v)) => put(
                format!("{ENCODED_NAME_PREFIX}{}", percent_encode(name)).into(),
                v.into(),
            ),
            (_, None) => put(
                format!("{ENCODED_VALUE_PREFIX}{}", percent_encode(name)).into(),
                b64().encode(value).into(),
            ),
        }
    }
    put(fixed(TIMESTAMP_PROPERTY), m.timestamp_ms.to_string().into());
    put(fixed(ORIGIN_PROPERTY), origin.clone());
    message
}

/// Whether a header name can be a RocketMQ property name as it is: printable ASCII without
/// `%`, not a name the broker reserves (`KEYS`, `TAGS`, `DELAY`, ...), and not in a namespace
/// Ferry or the broker uses (`FERRY_`, `h.`, `__`). Any other name travels percent-encoded
/// under [`ENCODED_NAME_PREFIX`] / [`ENCODED_VALUE_PREFIX`], so no header can set a system
/// property or break the `\x01`/`\x02`-separated property encoding.
fn plain_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| (0x21..=0x7e).contains(&b) && b != b'%')
        && !rocketmq_model::common::message::STRING_HASH_SET.contains(name)
        && !name.starts_with("FERRY_")
        && !name.starts_with("h.")
        && !name.starts_with("__")
}

/// The value as a property value, when it is UTF-8 without control characters (which include
/// the encoding's separators); otherwise it travels base64-encoded.
fn plain_value(value: &[u8]) -> Option<&str> {
    std::str::from_utf8(value)
        .ok()
        .filter(|v| !v.chars().any(char::is_control))
}

/// `%XX` for every byte outside `A-Z a-z 0-9 - _ . ~`.
fn percent_encode(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for b in name.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn percent_decode(encoded: &str) -> String {
    let bytes = encoded.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(b)) => {
                out.push(b);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
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
    let legacy_binary: Vec<&str> = get(B64_HEADERS_PROPERTY)
        .map(|l| l.split(',').collect())
        .unwrap_or_default();
    let reserved = &*rocketmq_model::common::message::STRING_HASH_SET;
    let mut headers: Vec<(String, Vec<u8>)> = props
        .iter()
        .filter_map(|(n, v)| {
            let n = n.as_str();
            if let Some(encoded) = n.strip_prefix(ENCODED_NAME_PREFIX) {
                return Some((percent_decode(encoded), v.as_bytes().to_vec()));
            }
            if let Some(encoded) = n.strip_prefix(ENCODED_VALUE_PREFIX) {
                let value = b64()
                    .decode(v.as_str())
                    .unwrap_or_else(|_| v.as_bytes().to_vec());
                return Some((percent_decode(encoded), value));
            }
            if reserved.contains(n) || n.starts_with("FERRY_") {
                return None;
            }
            // Before 0.2 a reserved header name travelled as `h.<name>`.
            let name = n
                .strip_prefix("h.")
                .filter(|r| reserved.contains(r))
                .unwrap_or(n);
            let value = if legacy_binary.contains(&name) {
                b64()
                    .decode(v.as_str())
                    .unwrap_or_else(|_| v.as_bytes().to_vec())
            } else {
                v.as_bytes().to_vec()
            };
            Some((name.to_string(), value))
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

#[cfg(test)]
mod tests {
    use rocketmq_model::codec::{message_properties_to_string, string_to_message_properties};
    use rocketmq_model::common::message::MessageTrait;

    use super::*;

    /// What a consumer gets for `messages` after the property encoding the wire uses.
    fn through_the_wire(batch: &RecordBatch) -> Vec<Message> {
        to_mq_messages(batch, "t", "origin")
            .into_iter()
            .map(|m| {
                let wire = message_properties_to_string(m.properties().as_map());
                let mut ext = MessageExt::default();
                ext.set_message_inner(m);
                ext.set_properties(string_to_message_properties(Some(&wire)));
                from_message_ext(&ext)
            })
            .collect()
    }

    #[test]
    fn every_byte_in_header_names_and_values_survives_and_none_sets_a_system_property() {
        let mut headers: Vec<(String, Vec<u8>)> = (0u32..=255)
            .map(|b| {
                let c = char::from_u32(b).unwrap();
                (format!("n{c}x{b}"), vec![b as u8, b'v', b as u8])
            })
            .collect();
        headers.push((String::new(), b"empty name".to_vec()));
        for reserved in [
            "KEYS",
            "TAGS",
            "DELAY",
            "UNIQ_KEY",
            "FERRY_ORIGIN",
            "h.KEYS",
            "__STARTDELIVERTIME",
        ] {
            headers.push((reserved.to_string(), b"forged\x01DELAY\x023".to_vec()));
        }
        headers.push(("plain".into(), "täglich".as_bytes().to_vec()));
        let batch = RecordBatch {
            topic: "t".into(),
            partition: 0,
            messages: vec![Message {
                offset: 0,
                key: Some(b"k\x01ey".to_vec()),
                value: b"v".to_vec(),
                headers: headers.clone(),
                timestamp_ms: 7,
            }],
        };
        let sent = &to_mq_messages(&batch, "t", "origin")[0];
        for system in ["KEYS", "TAGS", "DELAY", "UNIQ_KEY", "__STARTDELIVERTIME"] {
            assert!(
                sent.properties().as_map().get(system).is_none(),
                "{system} was set"
            );
        }
        assert_eq!(
            sent.properties().as_map().get("FERRY_ORIGIN").unwrap(),
            "origin"
        );
        assert_eq!(sent.properties().as_map().get("plain").unwrap(), "täglich");
        let got = &through_the_wire(&batch)[0];
        headers.sort();
        assert_eq!(got.headers, headers);
        assert_eq!(got.key.as_deref(), Some(&b"k\x01ey"[..]));
        assert_eq!(got.timestamp_ms, 7);
    }

    #[test]
    fn a_plain_record_keeps_its_key_tags_body_and_broker_defaults() {
        let record = Message {
            offset: 3,
            key: Some(b"order-1".to_vec()),
            value: Vec::new(),
            headers: vec![
                (TAGS_HEADER.into(), b"paid".to_vec()),
                ("trace".into(), b"abc".to_vec()),
            ],
            timestamp_ms: 1_700_000_000_000,
        };
        let body = Bytes::from_static(b"the value");
        let topic = CheetahString::from("a-topic-name-longer-than-23-bytes");
        let sent = to_mq_message_with_body(&record, body.clone(), &topic, &"origin".into());
        let props = sent.properties().as_map();
        assert_eq!(sent.topic(), &topic);
        assert_eq!(sent.body().as_deref(), Some(&b"the value"[..]));
        assert_eq!(props.get("KEYS").map(|v| v.as_str()), Some("order-1"));
        assert_eq!(props.get("TAGS").map(|v| v.as_str()), Some("paid"));
        assert_eq!(props.get("trace").map(|v| v.as_str()), Some("abc"));
        assert_eq!(props.get("WAIT").map(|v| v.as_str()), Some("true"));
        assert_eq!(
            props.get(TIMESTAMP_PROPERTY).map(|v| v.as_str()),
            Some("1700000000000")
        );
        assert_eq!(
            props.get(ORIGIN_PROPERTY).map(|v| v.as_str()),
            Some("origin")
        );
        assert_eq!(props.len(), 6);
    }
}
