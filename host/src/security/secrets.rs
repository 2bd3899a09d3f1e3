//! Secret config values: which keys hold them, how answers hide them, and the references that
//! keep them out of the config topic and the store.
//!
//! A key is secret when its name says so (`password`, `secret`, `sasl.jaas.config`, `ssl.key`,
//! `token`, `credential`) or when the connector marks it `secret` in `describe()` (WIT 0.2.0).
//! Answers show such a value as `[hidden]`, unless it is only a reference (`${env:NAME}` is
//! not the secret and tells the operator where it comes from).
//!
//! References are resolved on the worker that runs a task, like Kafka Connect's config
//! providers: `${env:NAME}` (a variable of the worker process whose name `configEnvAllowlist`
//! admits) and `${file:/path:key}` (a key of a properties file inside `fileRoots`). What they
//! resolve to is remembered ([`remember`]) so logs and answers can scrub it ([`scrub`]).

use std::collections::BTreeMap;
use std::sync::RwLock;

use super::GrantPolicy;

/// What answers and logs show instead of a secret.
pub const HIDDEN: &str = "[hidden]";

/// Substrings of a key name that make it secret.
const SECRET_NAME_PARTS: &[&str] = &[
    "password",
    "secret",
    "sasl.jaas.config",
    "ssl.key",
    "token",
    "credential",
];

/// Whether `key` holds a secret: by its name, or because the connector declared it secret.
pub fn is_secret(key: &str, declared: &[String]) -> bool {
    let lower = key.to_ascii_lowercase();
    SECRET_NAME_PARTS.iter().any(|p| lower.contains(p)) || declared.iter().any(|d| d == key)
}

/// Whether `value` is nothing but references (`${env:A}`, `${file:/p:k}`...).
fn only_references(value: &str) -> bool {
    let mut rest = value.trim();
    if rest.is_empty() {
        return false;
    }
    while let Some(after) = rest.strip_prefix("${") {
        match after.find('}') {
            Some(end) => rest = after[end + 1..].trim_start(),
            None => return false,
        }
    }
    rest.is_empty()
}

/// `config` as answers show it: secret values replaced by [`HIDDEN`].
pub fn redact(config: &BTreeMap<String, String>, declared: &[String]) -> BTreeMap<String, String> {
    config
        .iter()
        .map(|(k, v)| {
            let shown = if is_secret(k, declared) && !only_references(v) {
                HIDDEN.to_string()
            } else {
                v.clone()
            };
            (k.clone(), shown)
        })
        .collect()
}

/// Secret values this process has seen (literal config values and resolved references), so
/// that text bound for a log or an answer can be scrubbed of them.
/// Each with its JSON-escaped form (what a JSON answer holds), made once when remembered.
static KNOWN: RwLock<Vec<Known>> = RwLock::new(Vec::new());

struct Known {
    raw: String,
    /// `None` when escaping changes nothing.
    escaped: Option<String>,
}
/// Values shorter than this are not scrubbed from free text: they would mangle unrelated text
/// (a `1000` scrubbed out of a JSON number breaks the answer). They are still hidden by key.
const MIN_SCRUBBED: usize = 8;
/// At most this many values are remembered.
const MAX_KNOWN: usize = 10_000;

/// Remembers `value` as secret.
pub fn remember(value: &str) {
    if value.len() < MIN_SCRUBBED || value.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return;
    }
    let mut known = KNOWN.write().unwrap_or_else(|e| e.into_inner());
    if known.len() < MAX_KNOWN && !known.iter().any(|k| k.raw == value) {
        let quoted = serde_json::to_string(value).unwrap_or_default();
        let escaped = quoted
            .get(1..quoted.len().saturating_sub(1))
            .filter(|e| *e != value)
            .map(String::from);
        known.push(Known {
            raw: value.to_string(),
            escaped,
        });
        // Longest first, so a secret containing another is replaced whole.
        known.sort_by_key(|k| std::cmp::Reverse(k.raw.len()));
    }
}

/// Remembers the literal secret values of `config`.
pub fn remember_config(config: &BTreeMap<String, String>, declared: &[String]) {
    for (k, v) in config {
        if is_secret(k, declared) && !only_references(v) {
            remember(v);
        }
    }
}

/// `text` with every remembered secret (and its JSON-escaped form) replaced by [`HIDDEN`].
pub fn scrub(text: &str) -> std::borrow::Cow<'_, str> {
    let known = KNOWN.read().unwrap_or_else(|e| e.into_inner());
    let mut out = std::borrow::Cow::Borrowed(text);
    for secret in known.iter() {
        for form in std::iter::once(&secret.raw).chain(&secret.escaped) {
            if out.contains(form.as_str()) {
                out = std::borrow::Cow::Owned(out.replace(form.as_str(), HIDDEN));
            }
        }
    }
    out
}

/// Which environment variables `${env:NAME}` may read (`configEnvAllowlist`): exact names and
/// `PREFIX*` patterns. Without it a REST caller could copy any variable of the worker process
/// (a cloud credential) into a config its own guest reads.
#[derive(Clone, Debug)]
pub struct EnvAllowlist(Vec<String>);

impl Default for EnvAllowlist {
    /// `FERRY_SECRET_*`.
    fn default() -> Self {
        EnvAllowlist(vec!["FERRY_SECRET_*".into()])
    }
}

impl EnvAllowlist {
    /// From the comma list of `configEnvAllowlist`.
    pub fn parse(list: &str) -> Self {
        EnvAllowlist(
            list.split(',')
                .map(str::trim)
                .filter(|p| !p.is_empty())
                .map(String::from)
                .collect(),
        )
    }

    fn admits(&self, name: &str) -> bool {
        self.0.iter().any(|p| match p.strip_suffix('*') {
            Some(prefix) => name.starts_with(prefix),
            None => p == name,
        })
    }

    /// The patterns, for messages.
    pub fn patterns(&self) -> String {
        self.0.join(", ")
    }
}

/// `config` with every `${env:..}` and `${file:..}` reference replaced by its value (each
/// remembered as secret). The error names the key and the reference, never a value.
pub fn resolve(
    config: &BTreeMap<String, String>,
    policy: &GrantPolicy,
) -> Result<BTreeMap<String, String>, String> {
    let mut out = BTreeMap::new();
    for (key, value) in config {
        out.insert(key.clone(), resolve_value(key, value, policy)?);
    }
    Ok(out)
}

fn resolve_value(key: &str, value: &str, policy: &GrantPolicy) -> Result<String, String> {
    if !value.contains("${") {
        return Ok(value.to_string());
    }
    let mut out = String::with_capacity(value.len());
    let mut rest = value;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after
            .find('}')
            .ok_or_else(|| format!("{key}: unterminated reference `${{` (missing `}}`)"))?;
        let reference = &after[..end];
        let resolved = match reference.split_once(':') {
            Some(("env", name)) => {
                if !policy.env.admits(name) {
                    return Err(format!(
                        "{key}: `${{env:{name}}}` is not allowed: configEnvAllowlist admits {}",
                        policy.env.patterns()
                    ));
                }
                std::env::var(name).map_err(|_| {
                    format!("{key}: `${{env:{name}}}`: the variable is not set on this worker")
                })?
            }
            Some(("file", path_and_key)) => {
                let (path, wanted) = path_and_key.rsplit_once(':').ok_or_else(|| {
                    format!("{key}: `${{file:{path_and_key}}}` must be `${{file:/path:key}}`")
                })?;
                let file = policy.roots.check_file(key, path)?;
                let text =
                    std::fs::read_to_string(&file).map_err(|e| format!("{key}: `{path}`: {e}"))?;
                crate::config::parse_properties(&text)
                    .remove(wanted)
                    .ok_or_else(|| format!("{key}: `{path}` has no key `{wanted}`"))?
            }
            _ => {
                return Err(format!(
                    "{key}: unknown reference `${{{reference}}}`: use `${{env:NAME}}` or `${{file:/path:key}}`"
                ));
            }
        };
        remember(&resolved);
        out.push_str(&resolved);
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_keys_are_hidden_and_references_shown() {
        let config: BTreeMap<String, String> = [
            ("kafka.client.sasl.password", "hunter2-xyz"),
            ("kafka.client.sasl.jaas.config", "org.Login required;"),
            ("api.key", "k-123456"),
            ("kafka.client.ssl.key.password", "${env:FERRY_SECRET_K}"),
            ("tasks.num", "2"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let shown = redact(&config, &["api.key".to_string()]);
        assert_eq!(shown["kafka.client.sasl.password"], HIDDEN);
        assert_eq!(shown["kafka.client.sasl.jaas.config"], HIDDEN);
        assert_eq!(shown["api.key"], HIDDEN);
        assert_eq!(
            shown["kafka.client.ssl.key.password"],
            "${env:FERRY_SECRET_K}"
        );
        assert_eq!(shown["tasks.num"], "2");
    }

    #[test]
    fn references_resolve_within_their_allowlists() {
        // SAFETY: a single-threaded moment of this test; the name is unique to it.
        unsafe { std::env::set_var("FERRY_SECRET_UNIT_1", "from-env-value") };
        let policy = GrantPolicy::default();
        let config: BTreeMap<String, String> = [(
            "p".to_string(),
            "a-${env:FERRY_SECRET_UNIT_1}-b".to_string(),
        )]
        .into();
        assert_eq!(
            resolve(&config, &policy).unwrap()["p"],
            "a-from-env-value-b"
        );
        for (bad, says) in [
            ("${env:HOME}", "configEnvAllowlist"),
            ("${env:FERRY_SECRET_UNIT_UNSET}", "not set"),
            ("${file:/etc/passwd:root}", "no `fileRoots`"),
            ("${vault:x}", "unknown reference"),
            ("${env:X", "unterminated"),
        ] {
            let config: BTreeMap<String, String> = [("p".to_string(), bad.to_string())].into();
            let err = resolve(&config, &policy).unwrap_err();
            assert!(err.starts_with("p: ") && err.contains(says), "{bad}: {err}");
        }
        assert_eq!(scrub("x from-env-value y"), "x [hidden] y");
        remember("quote\"d-secret");
        assert_eq!(scrub(r#"{"m":"quote\"d-secret"}"#), r#"{"m":"[hidden]"}"#);
    }
}
