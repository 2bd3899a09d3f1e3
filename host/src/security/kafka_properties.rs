//! Which librdkafka properties a connector may set. librdkafka runs commands
//! (`sasl.kerberos.kinit.cmd`), loads shared libraries (`plugin.library.paths`), reads files
//! (`ssl.*.location`) and dials hosts (OAuth token endpoints) on a property's say-so, so a
//! connector config may only set the tuning, security-protocol, SASL and SSL properties listed
//! here, and a file it names must lie inside `fileRoots`. A guest, which is less trusted than
//! the config, may set the same properties except files. The host alone sets
//! `bootstrap.servers`, `group.id` and offset commits.

use std::collections::BTreeMap;

use super::FileRoots;

/// Properties that name a file librdkafka reads: allowed in a connector config when the file
/// lies inside `fileRoots`; never from a guest.
const FILE_PROPERTIES: &[&str] = &[
    "ssl.ca.location",
    "ssl.certificate.location",
    "ssl.key.location",
    "ssl.crl.location",
    "ssl.keystore.location",
];

/// Properties that only tune clients or choose how they authenticate.
const ALLOWED: &[&str] = &[
    // identity and security
    "client.id",
    "client.rack",
    "security.protocol",
    "sasl.mechanism",
    "sasl.mechanisms",
    "sasl.username",
    "sasl.password",
    "ssl.key.password",
    "ssl.keystore.password",
    "ssl.ca.pem",
    "ssl.certificate.pem",
    "ssl.key.pem",
    "ssl.endpoint.identification.algorithm",
    "enable.ssl.certificate.verification",
    "ssl.cipher.suites",
    "ssl.curves.list",
    "ssl.sigalgs.list",
    // connections and metadata
    "message.max.bytes",
    "receive.message.max.bytes",
    "max.in.flight.requests.per.connection",
    "max.in.flight",
    "metadata.max.age.ms",
    "topic.metadata.refresh.interval.ms",
    "topic.metadata.refresh.fast.interval.ms",
    "topic.metadata.propagation.max.ms",
    "socket.timeout.ms",
    "socket.send.buffer.bytes",
    "socket.receive.buffer.bytes",
    "socket.keepalive.enable",
    "socket.nagle.disable",
    "socket.max.fails",
    "socket.connection.setup.timeout.ms",
    "connections.max.idle.ms",
    "broker.address.ttl",
    "broker.address.family",
    "reconnect.backoff.ms",
    "reconnect.backoff.max.ms",
    "retry.backoff.ms",
    "retry.backoff.max.ms",
    "api.version.request",
    "api.version.request.timeout.ms",
    "api.version.fallback.ms",
    "broker.version.fallback",
    "allow.auto.create.topics",
    // consumer
    "session.timeout.ms",
    "heartbeat.interval.ms",
    "max.poll.interval.ms",
    "partition.assignment.strategy",
    "group.protocol",
    "coordinator.query.interval.ms",
    "fetch.wait.max.ms",
    "fetch.min.bytes",
    "fetch.max.bytes",
    "fetch.message.max.bytes",
    "max.partition.fetch.bytes",
    "fetch.error.backoff.ms",
    "fetch.queue.backoff.ms",
    "queued.min.messages",
    "queued.max.messages.kbytes",
    "isolation.level",
    "auto.offset.reset",
    "check.crcs",
    // producer
    "acks",
    "request.required.acks",
    "request.timeout.ms",
    "message.timeout.ms",
    "delivery.timeout.ms",
    "linger.ms",
    "queue.buffering.max.ms",
    "queue.buffering.max.messages",
    "queue.buffering.max.kbytes",
    "batch.num.messages",
    "batch.size",
    "compression.type",
    "compression.codec",
    "compression.level",
    "enable.idempotence",
    "retries",
    "message.send.max.retries",
    "partitioner",
    "sticky.partitioning.linger.ms",
];

/// Who asks to set a property.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Setter {
    /// The connector config (`kafka.client.<property>`), written by a REST caller.
    Config,
    /// The guest, in `consumer.open` / `producer.open`.
    Guest,
}

/// Checks `properties` set by `setter`; returns them with file locations replaced by their
/// resolved paths (what is checked is what librdkafka opens). The error names the property.
pub fn check(
    properties: &BTreeMap<String, String>,
    setter: Setter,
    roots: &FileRoots,
    prefix: &str,
) -> Result<BTreeMap<String, String>, String> {
    let mut checked = BTreeMap::new();
    for (key, value) in properties {
        let named = format!("{prefix}{key}");
        let value = if FILE_PROPERTIES.contains(&key.as_str()) {
            match setter {
                Setter::Guest => {
                    return Err(format!(
                        "{named}: a connector's code may not name files for librdkafka; set it in the connector config"
                    ));
                }
                // `probe` reads the system's CA folders, which trust only, never leak.
                Setter::Config if key == "ssl.ca.location" && value == "probe" => value.clone(),
                Setter::Config => roots
                    .check_file(&named, value)?
                    .to_string_lossy()
                    .into_owned(),
            }
        } else if ALLOWED.contains(&key.as_str()) {
            value.clone()
        } else {
            return Err(format!(
                "{named}: not an allowed Kafka client property (it could run a command, load \
                 code, read a file or reach another host, or it is set by the host); allowed: \
                 tuning, security.protocol, sasl.*, ssl.* (see SECURITY.md)"
            ));
        };
        checked.insert(key.clone(), value);
    }
    Ok(checked)
}

/// The consumer group every guest consumer of connector `connector` must use:
/// `connector-consumer-group-<connector>` (the seed's convention) or that followed by `/` and a
/// suffix, so a connector can never join, read or commit for another application's group.
pub fn check_group(connector: &str, group: &str) -> Result<(), String> {
    let own = format!("connector-consumer-group-{connector}");
    match group.strip_prefix(&own) {
        Some("") => Ok(()),
        Some(rest) if rest.starts_with('/') => Ok(()),
        _ => Err(format!(
            "kafka: consumer group `{group}` is not this connector's: use `{own}` (or `{own}/<suffix>`)"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn props(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn commands_libraries_and_foreign_files_are_refused_by_name() {
        let roots = FileRoots::default();
        for key in [
            "sasl.kerberos.kinit.cmd",
            "plugin.library.paths",
            "sasl.oauthbearer.token.endpoint.url",
            "group.id",
            "enable.auto.commit",
            "bootstrap.servers",
            "debug",
        ] {
            let err = check(
                &props(&[(key, "x")]),
                Setter::Config,
                &roots,
                "kafka.client.",
            )
            .unwrap_err();
            assert!(
                err.starts_with(&format!("kafka.client.{key}: not an allowed")),
                "{err}"
            );
        }
        let err = check(
            &props(&[("ssl.key.location", "/etc/shadow")]),
            Setter::Config,
            &roots,
            "kafka.client.",
        )
        .unwrap_err();
        assert!(
            err.contains("kafka.client.ssl.key.location") && err.contains("fileRoots"),
            "{err}"
        );
        let err = check(
            &props(&[("ssl.ca.location", "/etc/ssl")]),
            Setter::Guest,
            &roots,
            "",
        )
        .unwrap_err();
        assert!(
            err.starts_with("ssl.ca.location: a connector's code"),
            "{err}"
        );
    }

    #[test]
    fn tuning_and_security_properties_pass() {
        let ok = props(&[
            ("session.timeout.ms", "6000"),
            ("security.protocol", "SASL_SSL"),
            ("sasl.mechanism", "PLAIN"),
            ("sasl.password", "p"),
            ("ssl.ca.location", "probe"),
        ]);
        assert_eq!(
            check(&ok, Setter::Config, &FileRoots::default(), "kafka.client.").unwrap(),
            ok
        );
    }

    #[test]
    fn groups_are_the_connectors_own() {
        assert!(check_group("orders", "connector-consumer-group-orders").is_ok());
        assert!(check_group("orders", "connector-consumer-group-orders/replay").is_ok());
        for foreign in [
            "payments",
            "connector-consumer-group-orders2",
            "connector-consumer-group-order",
            "",
        ] {
            assert!(check_group("orders", foreign).is_err(), "{foreign}");
        }
    }
}
