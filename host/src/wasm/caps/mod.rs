//! Host capabilities offered to guests (WIT imports), one file each, wired in one list here.

pub mod clock;
pub mod http;
pub mod kafka;
pub mod kafka_poll;
pub mod log;

use wasmtime::component::{HasSelf, Linker};

use super::state::TaskState;

/// Adds every capability and WASI to `linker`. Adding a capability changes one line here.
pub fn add_to_linker(linker: &mut Linker<TaskState>) -> wasmtime::Result<()> {
    use super::bindings::imports::{clock, kafka, log};
    wasmtime_wasi::p2::add_to_linker_async(linker)?;
    wasmtime_wasi_http::p2::add_only_http_to_linker_async(linker)?;
    log::add_to_linker::<_, HasSelf<_>>(linker, |s| s)?;
    clock::add_to_linker::<_, HasSelf<_>>(linker, |s| s)?;
    kafka::add_to_linker::<_, HasSelf<_>>(linker, |s| s)?;
    self::kafka_poll::shadow_consumer_poll(linker)?;
    super::bindings::kafka_pipeline::add_to_linker::<_, HasSelf<_>>(linker, |s| s)?;
    Ok(())
}
