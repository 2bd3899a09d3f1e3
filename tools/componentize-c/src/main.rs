//! `componentize-c`: the two steps a C (or any clang/zig-compiled) connector needs around its
//! compiler, so C connectors build with the same WIT and the same wit-bindgen as the Rust SDK:
//!
//! * `bindings`: writes `<world>.h` / `<world>.c` for a world of `wit/connector.wit`;
//! * `component`: embeds the world's type information into a `wasm32-wasi` (preview 1) core
//!   module and wraps it, with wasmtime's preview-1 reactor adapter, into a WASI preview 2
//!   component the host loads.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use wit_component::{ComponentEncoder, StringEncoding};
use wit_parser::{PackageId, Resolve, WorldId};

/// Command line.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Write the C bindings (`<world>.h`, `<world>.c`) for a world into a folder.
    Bindings {
        /// The WIT folder (`wit/`, with `deps/`).
        #[arg(long)]
        wit: PathBuf,
        /// The world, e.g. `source-connector`.
        #[arg(long)]
        world: String,
        /// Where to write the files.
        #[arg(long)]
        out: PathBuf,
    },
    /// Turn a wasm32-wasi core module into a component of the world.
    Component {
        /// The WIT folder (`wit/`, with `deps/`).
        #[arg(long)]
        wit: PathBuf,
        /// The world the module implements.
        #[arg(long)]
        world: String,
        /// The core module (linked with `-mexec-model=reactor`).
        module: PathBuf,
        /// The component to write.
        #[arg(short, long)]
        out: PathBuf,
    },
}

fn main() -> Result<()> {
    match Cli::parse().command {
        Command::Bindings { wit, world, out } => bindings(&wit, &world, &out),
        Command::Component {
            wit,
            world,
            module,
            out,
        } => component(&wit, &world, &module, &out),
    }
}

/// Parses the WIT folder and finds `world` in its main package.
fn load(wit: &Path, world: &str) -> Result<(Resolve, WorldId)> {
    let mut resolve = Resolve::default();
    let (package, _): (PackageId, _) = resolve
        .push_dir(wit)
        .with_context(|| format!("reading the WIT in {}", wit.display()))?;
    let id = resolve
        .select_world(&[package], Some(world))
        .with_context(|| format!("no world `{world}` in {}", wit.display()))?;
    Ok((resolve, id))
}

fn bindings(wit: &Path, world: &str, out: &Path) -> Result<()> {
    let (resolve, id) = load(wit, world)?;
    let mut files = wit_bindgen_core::Files::default();
    // The type information goes in at `component` time, not as a linked object file: zig's
    // wasm linker does not keep unknown custom sections.
    let opts = wit_bindgen_c::Opts {
        no_object_file: true,
        ..Default::default()
    };
    opts.build().generate(&resolve, id, &mut files)?;
    // The generated code references the object file's symbol to force it into the link; with
    // no object file, an empty definition stands in for it.
    let c_world = world.replace('-', "_");
    files.push(
        &format!("{c_world}_component_type.c"),
        format!(
            "// The type information is embedded by `componentize-c component`.\nvoid __component_type_object_force_link_{c_world}(void) {{}}\n"
        )
        .as_bytes(),
    );
    std::fs::create_dir_all(out)?;
    for (name, contents) in files.iter() {
        let path = out.join(name);
        std::fs::write(&path, contents).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

fn component(wit: &Path, world: &str, module: &Path, out: &Path) -> Result<()> {
    let (resolve, id) = load(wit, world)?;
    let mut bytes =
        std::fs::read(module).with_context(|| format!("reading {}", module.display()))?;
    wit_component::embed_component_metadata(&mut bytes, &resolve, id, StringEncoding::UTF8)?;
    let component = ComponentEncoder::default()
        .module(&bytes)?
        .adapter(
            wasi_preview1_component_adapter_provider::WASI_SNAPSHOT_PREVIEW1_ADAPTER_NAME,
            wasi_preview1_component_adapter_provider::WASI_SNAPSHOT_PREVIEW1_REACTOR_ADAPTER,
        )?
        .validate(true)
        .encode()
        .with_context(|| format!("making a `{world}` component of {}", module.display()))?;
    std::fs::write(out, component).with_context(|| format!("writing {}", out.display()))?;
    Ok(())
}
