//! Host bindings generated from `wit/connector.wit`, one module per world. The second world
//! reuses the first world's types, log and clock so both share one set of Rust types.

/// The `source-connector` world.
#[allow(missing_docs)]
pub mod source {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "source-connector",
        imports: { "ferry:connector/kafka": async },
        exports: { default: async },
        with: {
            "ferry:connector/kafka.consumer": crate::wasm::caps::kafka::KafkaConsumer,
            "ferry:connector/kafka.producer": crate::wasm::caps::kafka::KafkaProducer,
        },
    });
}

/// The `sink-connector` world.
#[allow(missing_docs)]
pub mod sink {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "sink-connector",
        exports: { default: async },
        with: {
            "ferry:connector/types": super::source::ferry::connector::types,
            "ferry:connector/log": super::source::ferry::connector::log,
            "ferry:connector/clock": super::source::ferry::connector::clock,
            "ferry:connector/kafka": super::source::ferry::connector::kafka,
        },
    });
}

pub use source::ferry::connector::types::{
    ConfigKey, ConnectorInfo, Error as GuestError, Message, Position, RecordBatch,
};

/// The fully qualified export names, used to tell which world a component implements.
pub const SOURCE_EXPORT: &str = "ferry:connector/source@0.1.0";
/// See [`SOURCE_EXPORT`].
pub const SINK_EXPORT: &str = "ferry:connector/sink@0.1.0";
