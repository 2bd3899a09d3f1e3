//! Whether this worker can do its job, for `GET /readyz` (Kafka Connect's KIP-1017 health):
//! it has scanned its plugin folders, it reaches RocketMQ (its last member read is recent), and
//! it sees itself among the members. `/healthz` stays liveness only.

use std::collections::BTreeSet;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::Serialize;

/// A member read older than this means RocketMQ is not being reached.
pub const STALE_AFTER: Duration = Duration::from_secs(30);

/// One readiness check and its outcome.
#[derive(Clone, Debug, Serialize)]
pub struct Check {
    /// `plugins`, `rocketmq` or `membership`.
    pub name: &'static str,
    /// Whether it passes.
    pub ok: bool,
    /// What was seen.
    pub detail: String,
}

/// What the worker's loops last saw.
#[derive(Default)]
pub struct Readiness(Mutex<Seen>);

#[derive(Default)]
struct Seen {
    plugins_scanned: Option<(usize, usize)>,
    /// When the member list was last read, and whether it listed this worker.
    last_read: Option<(Instant, bool)>,
    /// The last read's error, when it failed.
    last_error: Option<String>,
}

impl Readiness {
    /// The first plugin scan finished: `loaded` plugins, `failed` files.
    pub fn plugins_scanned(&self, loaded: usize, failed: usize) {
        self.0.lock().unwrap().plugins_scanned = Some((loaded, failed));
    }

    /// A member read of RocketMQ's cluster group ended with `outcome`.
    pub fn members_read<E: std::fmt::Display>(
        &self,
        outcome: Result<&BTreeSet<String>, &E>,
        me: &str,
        at: Instant,
    ) {
        let mut seen = self.0.lock().unwrap();
        match outcome {
            Ok(members) => {
                seen.last_read = Some((at, members.contains(me)));
                seen.last_error = None;
            }
            Err(e) => seen.last_error = Some(e.to_string()),
        }
    }

    /// Every check, as of `now`.
    pub fn checks(&self, now: Instant) -> Vec<Check> {
        let seen = self.0.lock().unwrap();
        let plugins = match seen.plugins_scanned {
            Some((loaded, failed)) => Check {
                name: "plugins",
                ok: true,
                detail: format!("{loaded} loaded, {failed} failed to load"),
            },
            None => Check {
                name: "plugins",
                ok: false,
                detail: "plugin folders not scanned yet".into(),
            },
        };
        let age = seen
            .last_read
            .map(|(at, _)| now.saturating_duration_since(at));
        let rocketmq = match (age, &seen.last_error) {
            (Some(age), _) if age <= STALE_AFTER => Check {
                name: "rocketmq",
                ok: true,
                detail: format!("members read {} ms ago", age.as_millis()),
            },
            (age, error) => Check {
                name: "rocketmq",
                ok: false,
                detail: format!(
                    "no member read in the last {}s{}{}",
                    STALE_AFTER.as_secs(),
                    age.map(|a| format!(" (last {}s ago)", a.as_secs()))
                        .unwrap_or_default(),
                    error
                        .as_ref()
                        .map(|e| format!("; last error: {e}"))
                        .unwrap_or_default()
                ),
            },
        };
        let membership = match seen.last_read {
            Some((_, true)) => Check {
                name: "membership",
                ok: true,
                detail: "this worker is in the member list".into(),
            },
            Some((_, false)) => Check {
                name: "membership",
                ok: false,
                detail: "the member list read from RocketMQ does not list this worker yet".into(),
            },
            None => Check {
                name: "membership",
                ok: false,
                detail: "the member list was not read yet".into(),
            },
        };
        vec![plugins, rocketmq, membership]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_only_when_every_check_passes() {
        let readiness = Readiness::default();
        let start = Instant::now();
        let ok = |r: &Readiness, at| r.checks(at).iter().all(|c| c.ok);
        assert!(!ok(&readiness, start));
        readiness.plugins_scanned(3, 1);
        let members: BTreeSet<String> = ["a".to_string()].into();
        readiness.members_read::<String>(Ok(&members), "b", start);
        let checks = readiness.checks(start);
        assert!(checks[0].ok && checks[1].ok && !checks[2].ok, "{checks:?}");
        readiness.members_read::<String>(Ok(&members), "a", start);
        assert!(ok(&readiness, start));
        // RocketMQ unreachable: reads fail, and once the last good one is stale, not ready.
        readiness.members_read(Err(&"connection refused".to_string()), "a", start);
        assert!(ok(&readiness, start + Duration::from_secs(5)));
        let later = readiness.checks(start + STALE_AFTER + Duration::from_secs(1));
        assert!(
            !later[1].ok && later[1].detail.contains("connection refused"),
            "{later:?}"
        );
    }
}
