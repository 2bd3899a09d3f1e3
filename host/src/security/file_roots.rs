//! `fileRoots`: the directories an operator lets connectors be granted. A connector's
//! `file.dir`, a `kafka.client.ssl.*.location` and a `${file:..}` reference must resolve (after
//! symlinks and `..`) inside one of them; with none configured, no file grant is allowed. The
//! worker's own store can never be a root nor lie inside one.

use std::path::{Component, Path, PathBuf};

/// The checked roots of one worker.
#[derive(Clone, Debug, Default)]
pub struct FileRoots {
    /// Canonical root directories.
    roots: Vec<PathBuf>,
    /// The canonical store directory, which no grant may reach.
    store: Option<PathBuf>,
}

impl FileRoots {
    /// Checks `roots` (each must exist) against the store directory `store`.
    pub fn new(roots: &[PathBuf], store: &Path) -> Result<Self, String> {
        let store = resolve(store).map_err(|e| format!("storePathRootDir: {e}"))?;
        let mut checked = Vec::with_capacity(roots.len());
        for root in roots {
            let canonical =
                std::fs::canonicalize(root).map_err(|e| format!("`{}`: {e}", root.display()))?;
            if !canonical.is_dir() {
                return Err(format!("`{}` is not a directory", root.display()));
            }
            if store.starts_with(&canonical) || canonical.starts_with(&store) {
                return Err(format!(
                    "`{}` overlaps storePathRootDir `{}`: a connector granted it could read or \
                     rewrite the worker's configs and positions",
                    root.display(),
                    store.display()
                ));
            }
            checked.push(canonical);
        }
        Ok(FileRoots {
            roots: checked,
            store: Some(store),
        })
    }

    /// The roots, for messages and docs.
    pub fn roots(&self) -> &[PathBuf] {
        &self.roots
    }

    /// Resolves the directory `raw` of config key `key` (it may not exist yet: the host creates
    /// it) and checks it lies inside a root. Returns the resolved path, which is what is granted.
    pub fn check_dir(&self, key: &str, raw: &str) -> Result<PathBuf, String> {
        self.check(key, raw, false)
    }

    /// Resolves the existing file `raw` of config key `key` and checks it lies inside a root.
    pub fn check_file(&self, key: &str, raw: &str) -> Result<PathBuf, String> {
        self.check(key, raw, true)
    }

    fn check(&self, key: &str, raw: &str, must_exist: bool) -> Result<PathBuf, String> {
        if self.roots.is_empty() {
            return Err(format!(
                "{key}: no file grant is allowed: this worker has no `fileRoots` in its connect.conf"
            ));
        }
        let path = Path::new(raw);
        if !path.is_absolute() {
            return Err(format!("{key}: `{raw}` is not an absolute path"));
        }
        let resolved = if must_exist {
            std::fs::canonicalize(path).map_err(|e| format!("{key}: `{raw}`: {e}"))?
        } else {
            resolve(path).map_err(|e| format!("{key}: {e}"))?
        };
        let inside_store = self.store.as_ref().is_some_and(|s| resolved.starts_with(s));
        if inside_store || !self.roots.iter().any(|r| resolved.starts_with(r)) {
            let roots: Vec<String> = self.roots.iter().map(|r| r.display().to_string()).collect();
            return Err(format!(
                "{key}: `{raw}` resolves to `{}`, outside the directories this worker grants \
                 (fileRoots: {})",
                resolved.display(),
                roots.join(", ")
            ));
        }
        Ok(resolved)
    }
}

/// `path` with symlinks resolved as far as it exists, then the missing rest appended; a `..` in
/// the missing rest is refused (it cannot be resolved against a directory that is not there).
fn resolve(path: &Path) -> Result<PathBuf, String> {
    let mut existing = path.to_path_buf();
    let mut rest = Vec::new();
    loop {
        match std::fs::canonicalize(&existing) {
            Ok(canonical) => {
                let mut out = canonical;
                for part in rest.iter().rev() {
                    out.push(part);
                }
                return Ok(out);
            }
            Err(_) => {
                let name = match existing.components().next_back() {
                    Some(Component::Normal(n)) => n.to_os_string(),
                    Some(Component::ParentDir) => {
                        return Err(format!(
                            "`{}`: `..` below a directory that does not exist",
                            path.display()
                        ));
                    }
                    _ => return Err(format!("`{}` cannot be resolved", path.display())),
                };
                rest.push(name);
                if !existing.pop() {
                    return Err(format!("`{}` cannot be resolved", path.display()));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("ferry-roots-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir.canonicalize().unwrap()
    }

    #[test]
    fn grants_only_inside_a_root_after_symlinks_and_dots() {
        let base = scratch("grant");
        let root = base.join("root");
        let store = base.join("store");
        std::fs::create_dir_all(&root).unwrap();
        std::fs::create_dir_all(&store).unwrap();
        std::os::unix::fs::symlink("/etc", root.join("etc-link")).unwrap();
        let roots = FileRoots::new(std::slice::from_ref(&root), &store).unwrap();
        let ok = root.join("out/new");
        assert_eq!(
            roots.check_dir("file.dir", ok.to_str().unwrap()).unwrap(),
            ok
        );
        for bad in [
            "/etc".to_string(),
            format!("{}/../store", root.display()),
            format!("{}/etc-link", root.display()),
            format!("{}/etc-link/ssl", root.display()),
            format!("{}/missing/../../store", root.display()),
            "relative/dir".to_string(),
        ] {
            let err = roots.check_dir("file.dir", &bad).unwrap_err();
            assert!(err.starts_with("file.dir: "), "{bad}: {err}");
        }
        assert!(
            roots
                .check_dir("file.dir", "/etc")
                .unwrap_err()
                .contains(&root.display().to_string())
        );
        let none = FileRoots::new(&[], &store).unwrap();
        assert!(
            none.check_dir("file.dir", ok.to_str().unwrap())
                .unwrap_err()
                .contains("no `fileRoots`")
        );
    }

    #[test]
    fn the_store_can_never_be_a_root() {
        let base = scratch("store");
        let store = base.join("store");
        std::fs::create_dir_all(store.join("inner")).unwrap();
        assert!(FileRoots::new(std::slice::from_ref(&base), &store).is_err());
        assert!(FileRoots::new(&[store.join("inner")], &store).is_err());
        assert!(FileRoots::new(std::slice::from_ref(&store), &store).is_err());
    }
}
