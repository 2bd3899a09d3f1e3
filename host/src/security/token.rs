//! A secret string from `connect.conf` (the REST token, RocketMQ's `secretKey`): its `Debug`
//! and `Display` never show it, and comparing it takes the same time wherever it differs.

use std::fmt;

/// A value that must not reach a log or an answer.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps `value`.
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The value, for the one place that must send it (an HTTP header, a client config).
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether `candidate` equals the secret, in time that depends only on the lengths (a
    /// caller guessing byte by byte learns nothing from how long a refusal takes).
    pub fn matches(&self, candidate: &[u8]) -> bool {
        let expected = self.0.as_bytes();
        let mut diff = (expected.len() != candidate.len()) as u8;
        for (i, e) in expected.iter().enumerate() {
            let c = candidate.get(i).copied().unwrap_or(!*e);
            diff |= e ^ c;
        }
        std::hint::black_box(diff) == 0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[hidden]")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[hidden]")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_only_the_exact_value_and_never_prints_it() {
        let s = Secret::new("s3cret-token");
        assert!(s.matches(b"s3cret-token"));
        for wrong in [&b""[..], b"s3cret-toke", b"s3cret-token!", b"S3cret-token"] {
            assert!(!s.matches(wrong), "{wrong:?}");
        }
        assert_eq!(format!("{s:?} {s}"), "[hidden] [hidden]");
    }
}
