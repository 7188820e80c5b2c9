//! The pending release from a real git repository: the git backend, and
//! the real binary over the demo fleet (commits, migrations, the backup
//! gate, freezes, the restore command).

mod backup_faults;
#[path = "../common/mod.rs"]
mod common;
mod e2e;
mod git_backend;
mod repo;
