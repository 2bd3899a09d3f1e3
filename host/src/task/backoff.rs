//! Exponential backoff with a cap.

use std::time::{Duration, Instant};

/// Doubles from `initial` to `max`; reset after a success. Also remembers when the current run
/// of failures began, for the `errors.retry.timeout` limit.
#[derive(Debug, Clone)]
pub struct Backoff {
    initial: Duration,
    max: Duration,
    next: Duration,
    since: Option<Instant>,
    /// How many waits since the last reset.
    pub attempt: u32,
}

impl Backoff {
    /// A backoff starting at `initial`, capped at `max`.
    pub fn new(initial: Duration, max: Duration) -> Self {
        Backoff {
            initial,
            max,
            next: initial,
            since: None,
            attempt: 0,
        }
    }

    /// The guest-restart policy: 1 s doubling to 60 s.
    pub fn for_restarts() -> Self {
        Self::new(Duration::from_secs(1), Duration::from_secs(60))
    }

    /// The delivery-retry policy: 100 ms doubling to 5 s.
    pub fn for_retries() -> Self {
        Self::new(Duration::from_millis(100), Duration::from_secs(5))
    }

    /// The next wait.
    pub fn next_delay(&mut self) -> Duration {
        self.since.get_or_insert_with(Instant::now);
        let delay = self.next;
        self.next = (self.next * 2).min(self.max);
        self.attempt += 1;
        delay
    }

    /// Back to the initial wait.
    pub fn reset(&mut self) {
        self.next = self.initial;
        self.since = None;
        self.attempt = 0;
    }

    /// How long the failures since the last reset have lasted (zero before the first one).
    pub fn failing_for(&self) -> Duration {
        self.since.map_or(Duration::ZERO, |s| s.elapsed())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_to_the_cap_and_resets() {
        let mut b = Backoff::for_restarts();
        let waits: Vec<u64> = (0..8).map(|_| b.next_delay().as_secs()).collect();
        assert_eq!(waits, vec![1, 2, 4, 8, 16, 32, 60, 60]);
        assert!(b.since.is_some());
        b.reset();
        assert_eq!(b.failing_for(), Duration::ZERO);
        assert_eq!(b.next_delay(), Duration::from_secs(1));
    }
}
