//! Plugins: find `*.wasm` components in `pluginPaths`, compile them off the request path, keep
//! the registry (name and aliases -> current version), and reload by diffing what is on disk
//! against what is loaded. Tasks follow their plugin through a `watch` channel, so a new version
//! reaches exactly the tasks that use it.

mod watcher;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use sha2::{Digest, Sha256};
use tokio::sync::watch;

use crate::wasm::ConnectorInfo;
use crate::wasm::{PluginCode, PluginKind, WasmError, WasmRuntime};

pub use watcher::watch_plugin_dirs;

/// One loaded plugin version.
pub struct LoadedPlugin {
    /// `describe().name`.
    pub name: String,
    /// Everything `describe()` said.
    pub info: ConnectorInfo,
    /// Source or sink.
    pub kind: PluginKind,
    /// The file it came from.
    pub path: PathBuf,
    /// sha256 of the file, which identifies the version.
    pub sha256: String,
    /// The `ferry:connector` version it was built against.
    pub wit_version: &'static str,
    /// The compiled, pre-linked component while a task (or a plan) uses it. An idle plugin
    /// holds no code: an interpreted component's code and data cost ~25 MiB of RSS, and
    /// getting it back from the compile cache takes milliseconds ([`Self::code`]).
    code: tokio::sync::Mutex<std::sync::Weak<PluginCode>>,
    runtime: WasmRuntime,
}

impl LoadedPlugin {
    /// The plugin's code, shared by every task that runs this version; it is loaded from the
    /// compile cache (or compiled again from the file, if the cache lost it) when nothing
    /// holds it, and freed when the last holder drops it. Hold it as long as a guest made from
    /// it lives, or the next caller would load a second copy.
    pub async fn code(&self) -> Result<Arc<PluginCode>, WasmError> {
        let mut held = self.code.lock().await;
        if let Some(code) = held.upgrade() {
            return Ok(code);
        }
        let (runtime, path, sha) = (self.runtime.clone(), self.path.clone(), self.sha256.clone());
        let code = tokio::task::spawn_blocking(move || {
            let component = match runtime.cached(&sha) {
                Some(component) => component,
                None => {
                    let bytes = std::fs::read(&path)
                        .map_err(|e| WasmError::Compile(format!("{}: {e}", path.display())))?;
                    if hex::encode(Sha256::digest(&bytes)) != sha {
                        return Err(WasmError::Compile(format!(
                            "{} changed since it was loaded; the reload in progress brings the new version",
                            path.display()
                        )));
                    }
                    runtime.compile(&bytes, &sha)?
                }
            };
            PluginCode::new(&runtime, &component)
        })
        .await
        .map_err(|e| WasmError::Compile(format!("loader thread failed: {e}")))??;
        let code = Arc::new(code);
        *held = Arc::downgrade(&code);
        Ok(code)
    }
}

/// A file in a plugin folder that could not be loaded, and why.
#[derive(Clone, Debug, serde::Serialize)]
pub struct PluginFailure {
    /// The file.
    pub path: PathBuf,
    /// Why it was not loaded.
    pub reason: String,
}

/// What a reload changed.
#[derive(Debug, Default, serde::Serialize)]
pub struct ReloadReport {
    /// Plugin names that appeared.
    pub added: Vec<String>,
    /// Plugin names whose code changed (their tasks restart on the new version).
    pub changed: Vec<String>,
    /// Plugin names that disappeared (their tasks keep running the old version).
    pub removed: Vec<String>,
    /// Files that failed to load.
    pub failures: Vec<PluginFailure>,
}

#[derive(Default)]
struct Loaded {
    /// Plugin name -> current version.
    by_name: BTreeMap<String, Arc<LoadedPlugin>>,
    /// Alias -> plugin name.
    aliases: HashMap<String, String>,
    failures: Vec<PluginFailure>,
}

/// The plugin registry of a worker.
pub struct PluginRegistry {
    runtime: WasmRuntime,
    paths: Vec<PathBuf>,
    loaded: Mutex<Loaded>,
    /// One channel per plugin name; tasks hold receivers and restart when a new version is sent.
    versions: Mutex<HashMap<String, watch::Sender<Arc<LoadedPlugin>>>>,
    /// Serialises reloads (REST, the file watcher and startup may ask at once).
    reload_lock: tokio::sync::Mutex<()>,
}

impl PluginRegistry {
    /// An empty registry over `paths`; call [`Self::reload`] to load.
    pub fn new(runtime: WasmRuntime, paths: Vec<PathBuf>) -> Self {
        PluginRegistry {
            runtime,
            paths,
            loaded: Mutex::new(Loaded::default()),
            versions: Mutex::new(HashMap::new()),
            reload_lock: tokio::sync::Mutex::new(()),
        }
    }

    /// The engine the plugins were compiled for.
    pub fn runtime(&self) -> &WasmRuntime {
        &self.runtime
    }

    /// Finds a plugin by name or alias (exact, then ignoring case).
    pub fn resolve(&self, class: &str) -> Option<Arc<LoadedPlugin>> {
        let loaded = self.loaded.lock().unwrap();
        let name = if loaded.by_name.contains_key(class) {
            Some(class.to_string())
        } else if let Some(name) = loaded.aliases.get(class) {
            Some(name.clone())
        } else {
            let lower = class.to_ascii_lowercase();
            loaded
                .by_name
                .keys()
                .find(|n| n.to_ascii_lowercase() == lower)
                .cloned()
                .or_else(|| {
                    loaded
                        .aliases
                        .iter()
                        .find(|(a, _)| a.to_ascii_lowercase() == lower)
                        .map(|(_, n)| n.clone())
                })
        };
        name.and_then(|n| loaded.by_name.get(&n).cloned())
    }

    /// A receiver that sees every new version of plugin `name`.
    pub fn follow(&self, plugin: &Arc<LoadedPlugin>) -> watch::Receiver<Arc<LoadedPlugin>> {
        let mut versions = self.versions.lock().unwrap();
        versions
            .entry(plugin.name.clone())
            .or_insert_with(|| watch::channel(plugin.clone()).0)
            .subscribe()
    }

    /// Loaded plugins and failed files, for `GET /connector-plugins`.
    pub fn list(&self) -> (Vec<Arc<LoadedPlugin>>, Vec<PluginFailure>) {
        let loaded = self.loaded.lock().unwrap();
        (
            loaded.by_name.values().cloned().collect(),
            loaded.failures.clone(),
        )
    }

    /// Known names and aliases, for an "unknown connector class" error.
    pub fn known_classes(&self) -> Vec<String> {
        let loaded = self.loaded.lock().unwrap();
        let mut names: Vec<String> = loaded.by_name.keys().cloned().collect();
        names.extend(loaded.aliases.keys().cloned());
        names.sort();
        names
    }

    /// Rescans the plugin folders; unchanged files are not recompiled.
    pub async fn reload(&self) -> ReloadReport {
        let _serial = self.reload_lock.lock().await;
        let files = wasm_files(&self.paths);
        let previous: HashMap<(PathBuf, String), Arc<LoadedPlugin>> = {
            let loaded = self.loaded.lock().unwrap();
            loaded
                .by_name
                .values()
                .map(|p| ((p.path.clone(), p.sha256.clone()), p.clone()))
                .collect()
        };
        let mut next = Loaded::default();
        for file in files {
            match self.load_file(&file, &previous).await {
                Ok(plugin) => {
                    if let Some(other) = next.by_name.get(&plugin.name) {
                        next.failures.push(PluginFailure {
                            path: file.clone(),
                            reason: format!(
                                "duplicate plugin name `{}` (also in {})",
                                plugin.name,
                                other.path.display()
                            ),
                        });
                        continue;
                    }
                    for alias in &plugin.info.aliases {
                        next.aliases.insert(alias.clone(), plugin.name.clone());
                    }
                    next.by_name.insert(plugin.name.clone(), plugin);
                }
                Err(reason) => {
                    tracing::warn!(path = %file.display(), "plugin not loaded: {reason}");
                    next.failures.push(PluginFailure { path: file, reason });
                }
            }
        }
        crate::metrics::worker::set_plugin_failures(next.failures.len());
        let mut report = ReloadReport {
            failures: next.failures.clone(),
            ..Default::default()
        };
        {
            let mut loaded = self.loaded.lock().unwrap();
            for (name, plugin) in &next.by_name {
                match loaded.by_name.get(name) {
                    None => report.added.push(name.clone()),
                    Some(old) if old.sha256 != plugin.sha256 => report.changed.push(name.clone()),
                    Some(_) => {}
                }
            }
            report.removed = loaded
                .by_name
                .keys()
                .filter(|n| !next.by_name.contains_key(*n))
                .cloned()
                .collect();
            *loaded = next;
            let versions = self.versions.lock().unwrap();
            for name in &report.changed {
                if let (Some(tx), Some(plugin)) = (versions.get(name), loaded.by_name.get(name)) {
                    tx.send_replace(plugin.clone());
                }
            }
        }
        if !report.added.is_empty() || !report.changed.is_empty() || !report.removed.is_empty() {
            tracing::info!(
                added = ?report.added,
                changed = ?report.changed,
                removed = ?report.removed,
                "plugins reloaded"
            );
        }
        report
    }

    async fn load_file(
        &self,
        file: &Path,
        previous: &HashMap<(PathBuf, String), Arc<LoadedPlugin>>,
    ) -> Result<Arc<LoadedPlugin>, String> {
        let bytes = tokio::fs::read(file)
            .await
            .map_err(|e| format!("cannot read: {e}"))?;
        let sha256 = hex::encode(Sha256::digest(&bytes));
        if let Some(same) = previous.get(&(file.to_path_buf(), sha256.clone())) {
            return Ok(same.clone());
        }
        check_header(&bytes).map_err(|e| e.to_string())?;
        let runtime = self.runtime.clone();
        let sha = sha256.clone();
        let component = tokio::task::spawn_blocking(move || runtime.compile(&bytes, &sha))
            .await
            .map_err(|e| format!("compiler thread failed: {e}"))?
            .map_err(|e| e.to_string())?;
        let code = PluginCode::new(&self.runtime, &component).map_err(|e| e.to_string())?;
        let info = code
            .describe(&self.runtime)
            .await
            .map_err(|e| format!("describe() failed: {e}"))?;
        if info.name.is_empty() {
            return Err("describe() returned an empty name".into());
        }
        tracing::info!(path = %file.display(), name = %info.name, version = %info.version, kind = ?code.kind, "plugin loaded");
        crate::metrics::worker::plugin_loaded();
        // The code is dropped here; tasks load it again from the cache when they start.
        Ok(Arc::new(LoadedPlugin {
            name: info.name.clone(),
            kind: code.kind,
            wit_version: code.wit_version,
            info,
            path: file.to_path_buf(),
            sha256,
            code: tokio::sync::Mutex::new(std::sync::Weak::new()),
            runtime: self.runtime.clone(),
        }))
    }
}

/// Rejects files that are not components before handing them to the compiler.
fn check_header(bytes: &[u8]) -> Result<(), WasmError> {
    if bytes.len() < 8 || &bytes[..4] != b"\0asm" {
        return Err(WasmError::NotWasm);
    }
    // Core modules have version 1 and layer 0; components have layer 1.
    if bytes[6..8] == [0, 0] {
        return Err(WasmError::CoreModule);
    }
    Ok(())
}

/// Every `*.wasm` file directly in `paths`, sorted.
pub fn wasm_files(paths: &[PathBuf]) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = paths
        .iter()
        .filter_map(|dir| std::fs::read_dir(dir).ok())
        .flatten()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "wasm") && p.is_file())
        .collect();
    files.sort();
    files
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_are_told_apart() {
        assert!(matches!(
            check_header(b"hello world"),
            Err(WasmError::NotWasm)
        ));
        assert!(matches!(
            check_header(b"\0asm\x01\0\0\0"),
            Err(WasmError::CoreModule)
        ));
        assert!(check_header(b"\0asm\x0d\0\x01\0").is_ok());
    }
}
