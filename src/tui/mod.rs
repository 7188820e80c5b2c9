//! The interactive console, Elm-style.
//!
//! - [`msg::Msg`]: everything that can happen (key, resize, tick, engine
//!   event, backend result);
//! - [`update::update`]: `(&mut State, Msg) -> Vec<Effect>`, pure;
//! - [`view::draw`]: `(&State, &mut Frame)`, pure;
//! - the app loop runs effects as tokio tasks that answer with a `Msg`.
//!
//! [`keymap`] is the one table of key bindings; [`theme`] names colours by role.

pub mod app;
mod format;
pub mod keymap;
pub mod msg;
pub mod state;
pub mod theme;
pub mod update;
pub mod view;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_release;
#[cfg(test)]
mod tests_strategy;

pub use app::{Ended, run};
pub use msg::{Done, Effect, Failure, Msg, TaskKind};
pub use state::{Settings, State};
pub use theme::Theme;
pub use update::update;
#[cfg(test)]
mod tests_small;
