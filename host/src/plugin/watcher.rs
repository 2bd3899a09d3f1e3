//! Reloads plugins when a file in a plugin folder changes. The `notify` crate (inotify on Linux)
//! says when something in a folder changed; the reload waits until the folder's `*.wasm` files
//! have stayed the same (size, mtime) for one more check, so a file being copied is not loaded
//! half-written. A slow re-check also runs without events, for file systems that send none
//! (network mounts).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use notify::{RecursiveMode, Watcher};

use super::{PluginRegistry, ReloadReport, wasm_files};

/// How long a changed folder must stay unchanged before it is reloaded.
const SETTLE: Duration = Duration::from_millis(250);
/// How often the folders are re-checked when no event came.
const FALLBACK: Duration = Duration::from_secs(5);

type Fingerprint = Vec<(PathBuf, u64, Option<SystemTime>)>;

fn fingerprint(paths: &[PathBuf]) -> Fingerprint {
    wasm_files(paths)
        .into_iter()
        .map(|p| {
            let meta = std::fs::metadata(&p).ok();
            let size = meta.as_ref().map(|m| m.len()).unwrap_or(0);
            let modified = meta.and_then(|m| m.modified().ok());
            (p, size, modified)
        })
        .collect()
}

/// Runs until the registry is dropped; `on_reload` gets each report with changes.
pub async fn watch_plugin_dirs<F>(registry: Arc<PluginRegistry>, on_reload: F)
where
    F: Fn(ReloadReport) + Send + 'static,
{
    let paths = registry.paths.clone();
    let (tx, mut events) = tokio::sync::mpsc::unbounded_channel();
    let watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        if event.is_ok() {
            let _ = tx.send(());
        }
    });
    let _watcher = match watcher {
        Ok(mut watcher) => {
            for path in &paths {
                if let Err(e) = watcher.watch(path, RecursiveMode::NonRecursive) {
                    tracing::warn!(path = %path.display(), "cannot watch the plugin folder (re-checked every {FALLBACK:?} instead): {e}");
                }
            }
            Some(watcher)
        }
        Err(e) => {
            tracing::warn!(
                "cannot watch plugin folders (re-checked every {FALLBACK:?} instead): {e}"
            );
            None
        }
    };
    let mut applied = fingerprint(&paths);
    loop {
        if let Ok(None) = tokio::time::timeout(FALLBACK, events.recv()).await {
            // No watcher (it could not start): only the slow re-check.
            tokio::time::sleep(FALLBACK).await;
        }
        // Settle: wait until two looks SETTLE apart agree.
        let mut now = fingerprint(&paths);
        loop {
            tokio::time::sleep(SETTLE).await;
            while events.try_recv().is_ok() {}
            let again = fingerprint(&paths);
            if again == now {
                break;
            }
            now = again;
        }
        if now == applied {
            continue;
        }
        applied = now;
        let report = registry.reload().await;
        on_reload(report);
    }
}
