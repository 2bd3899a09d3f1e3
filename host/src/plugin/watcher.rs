//! Reloads plugins when a file in a plugin folder changes. Polls (size, mtime) once a second and
//! reloads once a change has been stable for one more poll, so a file being copied is not loaded
//! half-written.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use super::{PluginRegistry, ReloadReport, wasm_files};

/// How often the plugin folders are checked.
const POLL: Duration = Duration::from_millis(250);

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
    let mut applied = fingerprint(&paths);
    let mut pending: Option<Fingerprint> = None;
    loop {
        tokio::time::sleep(POLL).await;
        let now = fingerprint(&paths);
        if now == applied {
            pending = None;
            continue;
        }
        if pending.as_ref() != Some(&now) {
            pending = Some(now);
            continue;
        }
        applied = now;
        pending = None;
        let report = registry.reload().await;
        on_reload(report);
    }
}
