//! Host bindings generated from `wit/`: the current `ferry:connector@0.2.0` worlds and the
//! frozen 0.1.0 worlds, so components built against either version run. The interfaces 0.2.0
//! kept from 0.1.0 (types, log, clock, kafka) are generated once, in
//! [`source_v01`], and every other module reuses them, so the host implements each capability
//! once.

/// The frozen 0.1.0 `source-connector` world; owner of the shared types and imports.
#[allow(missing_docs)]
pub mod source_v01 {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "ferry:connector/source-connector@0.1.0",
        imports: { "ferry:connector/kafka@0.1.0": async },
        exports: { default: async },
        with: {
            "ferry:connector/kafka.consumer": crate::wasm::caps::kafka::KafkaConsumer,
            "ferry:connector/kafka.producer": crate::wasm::caps::kafka::KafkaProducer,
        },
    });
}

/// The 0.2.0 `source-connector` world: batches name their source partition and offset.
#[allow(missing_docs)]
pub mod source {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "ferry:connector/source-connector@0.2.0",
        exports: { default: async },
        with: {
            "ferry:connector/types@0.1.0": super::source_v01::ferry::connector0_1_0::types,
            "ferry:connector/log@0.1.0": super::source_v01::ferry::connector0_1_0::log,
            "ferry:connector/clock@0.1.0": super::source_v01::ferry::connector0_1_0::clock,
            "ferry:connector/kafka@0.1.0": super::source_v01::ferry::connector0_1_0::kafka,
        },
    });
}

/// The 0.2.0 `sink-connector` world: `describe()` may mark config keys secret, and a producer
/// can queue records (`kafka-pipeline`).
#[allow(missing_docs)]
pub mod sink {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "ferry:connector/sink-connector@0.2.0",
        imports: { "ferry:connector/kafka-pipeline@0.2.0": async },
        exports: { default: async },
        with: {
            "ferry:connector/types@0.1.0": super::source_v01::ferry::connector0_1_0::types,
            "ferry:connector/types@0.2.0": super::source::ferry::connector0_2_0::types,
            "ferry:connector/log@0.1.0": super::source_v01::ferry::connector0_1_0::log,
            "ferry:connector/clock@0.1.0": super::source_v01::ferry::connector0_1_0::clock,
            "ferry:connector/kafka@0.1.0": super::source_v01::ferry::connector0_1_0::kafka,
        },
    });
}

/// The frozen 0.1.0 `sink-connector` world (still loaded).
#[allow(missing_docs)]
pub mod sink_v01 {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "ferry:connector/sink-connector@0.1.0",
        exports: { default: async },
        with: {
            "ferry:connector/types@0.1.0": super::source_v01::ferry::connector0_1_0::types,
            "ferry:connector/log@0.1.0": super::source_v01::ferry::connector0_1_0::log,
            "ferry:connector/clock@0.1.0": super::source_v01::ferry::connector0_1_0::clock,
            "ferry:connector/kafka@0.1.0": super::source_v01::ferry::connector0_1_0::kafka,
        },
    });
}

pub use source::ferry::connector0_2_0::types::{PutError, SourceBatch};
pub use source_v01::ferry::connector0_1_0::types::{
    Error as GuestError, Message, Position, RecordBatch,
};

/// `kafka-pipeline`, the import new in 0.2.0's sink worlds.
pub use sink::ferry::connector0_2_0::kafka_pipeline;
/// The imports every Ferry world shares, for the capability implementations.
pub use source_v01::ferry::connector0_1_0 as imports;

/// The export of a 0.2.0 source.
pub const SOURCE_EXPORT: &str = "ferry:connector/source@0.2.0";
/// The export of a 0.1.0 source (still loaded; its positions are derived by the host).
pub const SOURCE_EXPORT_V01: &str = "ferry:connector/source@0.1.0";
/// The export of a 0.2.0 sink.
pub const SINK_EXPORT: &str = "ferry:connector/sink@0.2.0";
/// The export of a 0.1.0 sink (still loaded).
pub const SINK_EXPORT_V01: &str = "ferry:connector/sink@0.1.0";
/// The contract versions this host runs.
pub const SUPPORTED_VERSIONS: &[&str] = &["0.1.0", "0.2.0"];
