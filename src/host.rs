//! This machine's name, for actor names and deploy locks. A leaf module:
//! the engine names actors with it and the store judges lock staleness with
//! it, without the store depending on the engine.

/// This machine's name, for actor names and locks.
pub fn hostname() -> String {
    gethostname::gethostname()
        .to_string_lossy()
        .chars()
        .filter(|c| !c.is_control())
        .collect()
}
