//! `ferry check` and `ferry new`: tools for connector authors that need no worker.

use std::path::PathBuf;
use std::process::ExitCode;

use ferry::conformance::{self, Outcome};
use ferry::wasm::WasmRuntime;

mod new;

/// A tool run instead of a worker.
#[derive(clap::Subcommand)]
pub enum Command {
    /// Load a connector component without a worker: its world, WIT version, describe() output,
    /// and the conformance kit (exit code 1 when a check fails, 2 when it cannot be loaded).
    Check {
        /// The component.
        file: PathBuf,
        /// A connector config key the kit's config needs (repeatable), e.g. http.url=http://...
        #[arg(long = "config", value_name = "KEY=VALUE")]
        config: Vec<String>,
        /// Only load and describe; skip the conformance kit.
        #[arg(long)]
        no_kit: bool,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
        /// Keep compiled code in DIR (content-addressed; shared between runs). Default: a
        /// fresh folder removed afterwards, so the compile time reported is a cold one.
        #[arg(long, value_name = "DIR")]
        cache_dir: Option<PathBuf>,
    },
    /// Write a ready connector project: a minimal working connector, `build.sh` (one command)
    /// and `test.sh` (builds it and runs the conformance kit).
    New {
        /// The connector's name (lower case, digits, `-`): also the project folder.
        name: String,
        /// The language.
        #[arg(long, value_enum)]
        lang: new::Lang,
        /// Source or sink.
        #[arg(long, value_enum)]
        kind: new::Kind,
        /// Where to create the project folder.
        #[arg(long, default_value = ".")]
        dir: PathBuf,
    },
}

/// Runs `command`; the exit code says whether it succeeded.
pub fn run(command: Command) -> ExitCode {
    match command {
        Command::Check {
            file,
            config,
            no_kit,
            json,
            cache_dir,
        } => check(file, config, !no_kit, json, cache_dir),
        Command::New {
            name,
            lang,
            kind,
            dir,
        } => match new::write(&name, lang, kind, &dir) {
            Ok(root) => {
                println!(
                    "ferry new: wrote {} ({lang:?} {kind:?}); build it with {0}/build.sh, test it with {0}/test.sh",
                    root.display()
                );
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("ferry new: {e}");
                ExitCode::from(2)
            }
        },
    }
}

fn check(
    file: PathBuf,
    pairs: Vec<String>,
    run_kit: bool,
    json: bool,
    cache_dir: Option<PathBuf>,
) -> ExitCode {
    let mut config = Vec::new();
    for pair in pairs {
        match pair.split_once('=') {
            Some((k, v)) => config.push((k.trim().to_string(), v.to_string())),
            None => {
                eprintln!("ferry check: --config `{pair}` is not KEY=VALUE");
                return ExitCode::from(2);
            }
        }
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("ferry check: cannot start a runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let scratch = cache_dir.is_none();
    let cache = cache_dir.unwrap_or_else(|| {
        std::env::temp_dir().join(format!("ferry-check-{}", std::process::id()))
    });
    let result = runtime.block_on(async {
        let wasm = WasmRuntime::new(&cache).map_err(|e| e.to_string())?;
        conformance::check(&wasm, &file, &config, run_kit)
            .await
            .map_err(|e| e.to_string())
    });
    if scratch {
        let _ = std::fs::remove_dir_all(&cache);
    }
    let report = match result {
        Ok(r) => r,
        Err(e) => {
            eprintln!("ferry check: {}: {e}", file.display());
            return ExitCode::from(2);
        }
    };
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&report).unwrap_or_default()
        );
    } else {
        let d = &report.describe;
        println!(
            "{}: {} {} ({:?}, ferry:connector@{})",
            file.display(),
            d.name,
            d.version,
            report.kind,
            report.wit_version
        );
        println!(
            "  size {:.1} MB, compile {:.0} ms (from cache {:.1} ms), instantiate + describe {:.1} ms",
            report.size_bytes as f64 / 1e6,
            report.compile_ms,
            report.compile_cached_ms,
            report.instantiate_ms
        );
        if !d.aliases.is_empty() {
            println!("  aliases: {}", d.aliases.join(", "));
        }
        for k in &d.config_keys {
            let mut flags = Vec::new();
            if k.required {
                flags.push("required".to_string());
            }
            if let Some(default) = &k.default {
                flags.push(format!("default {default}"));
            }
            if k.secret {
                flags.push("secret".into());
            }
            println!("  {} [{}]: {}", k.name, flags.join(", "), k.doc);
        }
        for c in &report.checks {
            let (mark, detail) = match &c.outcome {
                Outcome::Passed(d) => ("pass", d),
                Outcome::Failed(d) => ("FAIL", d),
                Outcome::Skipped(d) => ("skip", d),
            };
            println!("  {mark} {}: {detail}", c.name);
        }
    }
    if report.passed() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
