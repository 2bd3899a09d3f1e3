//! Giving freed memory back to the operating system. glibc's allocator keeps the pages it
//! freed (per-thread arenas, the top of each heap) for reuse, so after the plugins are compiled
//! at startup, or after a burst of traffic has come and gone, the worker can hold tens of MiB
//! of resident memory it no longer uses. [`release_unused`] asks glibc to return them
//! (`malloc_trim(0)`); the worker calls it after each plugin scan and periodically.

use std::time::Duration;

/// How often the worker returns freed memory.
pub const RELEASE_EVERY: Duration = Duration::from_secs(30);

/// Returns the allocator's free pages to the operating system (glibc only; elsewhere nothing).
pub fn release_unused() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only walks the allocator's own free lists.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Calls [`release_unused`] every [`RELEASE_EVERY`], off the executor, forever.
pub async fn release_periodically() {
    loop {
        tokio::time::sleep(RELEASE_EVERY).await;
        let _ = tokio::task::spawn_blocking(release_unused).await;
    }
}
