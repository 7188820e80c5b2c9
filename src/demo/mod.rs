//! The demo fleet (SPEC §6): synthetic environments behind HTTP, so that
//! `shipdeck demo` and `shipdeck demo-fleet` need no setup at all.

pub mod config;
pub mod fleet;
pub mod repo;
pub mod seed;
pub mod traffic;

pub use config::{DemoStrategy, canary_table, demo_config, demo_config_with};
pub use fleet::{
    BAD_VERSION, ENVIRONMENTS, EnvTruth, FleetHandle, FleetOptions, INITIAL_VERSIONS, record_trace,
    serve, simulate, spawn,
};
