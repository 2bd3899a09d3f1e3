//! Giving freed memory back to the operating system. glibc's allocator keeps the pages it
//! freed (per-thread arenas, the top of each heap) for reuse, so after the plugins are compiled
//! at startup, or after a burst of traffic has come and gone, the worker can hold tens of MiB
//! of resident memory it no longer uses. [`release_unused`] asks glibc to return them
//! (`malloc_trim(0)`); the worker calls it after each plugin scan, after its last task stopped,
//! and periodically while it is quiet.
//! [`tune_allocator`] caps the number of per-thread arenas first: memory freed in an arena that
//! no thread uses any more is never trimmed, and compiling nine plugins on the blocking pool
//! leaves about 18 MiB behind that way (measured: 66.5 MiB idle with glibc's default of
//! 8 arenas per core, 58 MiB with two). It also stops glibc from giving memory back on every
//! free (see [`TRIM_THRESHOLD`]): under traffic that cost a page fault and a zeroed page for
//! every batch-sized buffer, a fifth of the worker's CPU (BENCHMARKS.md, issue 13 profile).

use std::time::{Duration, Instant};

/// How often the worker returns freed memory.
pub const RELEASE_EVERY: Duration = Duration::from_secs(30);

/// How long after a task stops the worker returns freed memory: its consumers, producers and
/// guest close off the executor just after it ends.
pub const RELEASE_AFTER_STOP: Duration = Duration::from_secs(2);

/// How many malloc arenas the worker uses unless `MALLOC_ARENA_MAX` says otherwise.
pub const ARENAS: i32 = 2;

/// Free memory at the top of a heap that glibc keeps instead of returning it at once (its
/// default is dynamic, 128 KiB to 64 MiB). The periodic [`release_unused`] returns it instead,
/// so a quiet worker still shrinks within [`RELEASE_EVERY`].
pub const TRIM_THRESHOLD: i32 = 64 << 20;

/// Allocations at least this large get their own mapping. Fixed, because setting
/// [`TRIM_THRESHOLD`] turns off glibc's adaptive threshold; record batches (about 1-4 MiB)
/// stay below it and reuse heap memory instead of being mapped and unmapped each time.
pub const MMAP_THRESHOLD: i32 = 32 << 20;

/// Sets glibc's allocator up for the worker: at most [`ARENAS`] arenas, and freed memory kept
/// for reuse until the periodic trim ([`TRIM_THRESHOLD`], [`MMAP_THRESHOLD`]). An operator's
/// `MALLOC_ARENA_MAX`, `MALLOC_TRIM_THRESHOLD_` or `MALLOC_MMAP_THRESHOLD_` wins. Call it
/// before any thread exists.
pub fn tune_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    for (env, param, value) in [
        ("MALLOC_ARENA_MAX", libc::M_ARENA_MAX, ARENAS),
        (
            "MALLOC_TRIM_THRESHOLD_",
            libc::M_TRIM_THRESHOLD,
            TRIM_THRESHOLD,
        ),
        (
            "MALLOC_MMAP_THRESHOLD_",
            libc::M_MMAP_THRESHOLD,
            MMAP_THRESHOLD,
        ),
    ] {
        if std::env::var_os(env).is_none() {
            // SAFETY: mallopt only sets an allocator parameter; no other thread runs yet.
            unsafe {
                libc::mallopt(param, value);
            }
        }
    }
}

/// Returns the allocator's free pages to the operating system (glibc only; elsewhere nothing).
pub fn release_unused() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only walks the allocator's own free lists.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// How often the periodic release trims even while traffic flows: a worker that never goes
/// quiet still gives back what a burst left, at the price of one stall this often.
pub const RELEASE_UNDER_TRAFFIC_EVERY: Duration = Duration::from_secs(600);

/// Every [`RELEASE_EVERY`], off the executor, forever: calls [`release_unused`] if the worker
/// was quiet since the last look (`delivered()`, its running total of delivered records, did
/// not move), or if it last did so [`RELEASE_UNDER_TRAFFIC_EVERY`] ago. Not on every tick: a
/// trim holds the allocator's locks while it walks the heap and the pages it returns fault back
/// in at once under traffic (trims after each connector deletion put R->K p99 at 10,000 rec/s
/// at 68-95 ms: BENCHMARKS.md, issue 13). Under steady traffic the freed memory is reused anyway.
pub async fn release_periodically(delivered: impl Fn() -> u64) {
    let mut schedule = ReleaseSchedule::new(delivered(), Instant::now());
    loop {
        tokio::time::sleep(RELEASE_EVERY).await;
        if schedule.due(delivered(), Instant::now()) {
            let started = Instant::now();
            let _ = tokio::task::spawn_blocking(release_unused).await;
            tracing::debug!(took = ?started.elapsed(), "freed memory returned to the OS");
        }
    }
}

/// When the periodic release runs: after a quiet period, or [`RELEASE_UNDER_TRAFFIC_EVERY`]
/// after the last one.
struct ReleaseSchedule {
    /// The delivered-records total at the previous look.
    seen: u64,
    last_release: Instant,
}

impl ReleaseSchedule {
    fn new(delivered: u64, now: Instant) -> Self {
        ReleaseSchedule {
            seen: delivered,
            last_release: now,
        }
    }

    /// Whether to release now, given the delivered-records total and the time; counts the
    /// release as done when it says yes.
    fn due(&mut self, delivered: u64, now: Instant) -> bool {
        let quiet = delivered == self.seen;
        self.seen = delivered;
        let due = quiet || now.duration_since(self.last_release) >= RELEASE_UNDER_TRAFFIC_EVERY;
        if due {
            self.last_release = now;
        }
        due
    }
}

/// Calls [`release_unused`] [`RELEASE_AFTER_STOP`] from now, off the executor, if `idle()` says
/// then that no task runs: a connector deleted after a burst of traffic gives back the memory
/// its tasks used then, not up to [`RELEASE_EVERY`] later (measured: 232 MiB right after the
/// throughput bench's runs, 58-80 MiB with this). Only when idle: a trim holds the allocator's
/// locks while it walks the heap, and one during traffic stalled other tasks (R->K p99 at
/// 10,000 rec/s 68-95 ms when a trim followed the previous connector's deletion).
pub fn release_soon_if(idle: impl Fn() -> bool + Send + 'static) {
    tokio::spawn(async move {
        tokio::time::sleep(RELEASE_AFTER_STOP).await;
        if idle() {
            let _ = tokio::task::spawn_blocking(release_unused).await;
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn releases_when_quiet_and_rarely_under_traffic() {
        let start = Instant::now();
        let mut schedule = ReleaseSchedule::new(0, start);
        assert!(schedule.due(0, start + RELEASE_EVERY), "quiet: release");
        let mut at = start + RELEASE_EVERY;
        let mut delivered = 0;
        let mut releases = 0;
        // Ten minutes of traffic: no release until RELEASE_UNDER_TRAFFIC_EVERY has passed.
        while at < start + RELEASE_EVERY + RELEASE_UNDER_TRAFFIC_EVERY {
            at += RELEASE_EVERY;
            delivered += 1_000;
            if schedule.due(delivered, at) {
                releases += 1;
                assert!(at.duration_since(start + RELEASE_EVERY) >= RELEASE_UNDER_TRAFFIC_EVERY);
            }
        }
        assert_eq!(releases, 1, "one release in ten minutes of traffic");
        assert!(
            !schedule.due(delivered + 1, at + RELEASE_EVERY),
            "traffic goes on"
        );
        assert!(
            schedule.due(delivered + 1, at + 2 * RELEASE_EVERY),
            "quiet again"
        );
    }
}
