//! shipdeck: a release console for the terminal.
//!
//! One engine, two faces: [`engine`] does everything shipdeck does; [`cli`]
//! and the TUI call it. [`domain`] and [`monitor`] are pure; I/O lives in
//! [`backends`] and [`store`].

pub mod backends;
pub mod cli;
pub mod config;
pub mod demo;
pub mod domain;
pub mod engine;
pub mod host;
pub mod logging;
pub mod monitor;
pub mod paths;
pub mod store;
pub mod tui;
