//! Evidence about the pending release (SPEC §7): the approval stage's own
//! verdict over the demo fleet, GitHub's CI and review state against a local
//! fake of its REST API, and the gates that require them through the real
//! binary with a real repository and a CI command.

#[path = "../common/mod.rs"]
mod common;
mod e2e;
mod github;
#[path = "../release/repo.rs"]
mod repo;
mod stage;
mod stall;
