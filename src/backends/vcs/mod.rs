//! Version control: where a release's commits and changed paths come from.
//! One implementation, the `git` command on a local clone.

pub mod git;

pub use git::{GitRepo, MAX_COMMITS, Range, Resolved, VcsError};
