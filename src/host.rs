//! Who and where: this machine's name and the acting user, both read from
//! outside (the OS, `$USER`) and therefore sanitised where they enter.
//! Low in the layering so that the store and the engine can both use it.

/// This machine's name, for actor names and locks; sanitised.
pub fn hostname() -> String {
    crate::text::sanitize(&gethostname::gethostname().to_string_lossy())
        .trim()
        .to_string()
}

/// Where this process's pids mean something: this machine's name, its
/// boot (`/proc/sys/kernel/random/boot_id`) and this process's pid
/// namespace (the inode `/proc/self/ns/pid` names). Two machines or
/// containers may share a hostname ("ubuntu", docker `--hostname ci`) and
/// even pids; they never share all three, so a lock's holder whose pid
/// space is this one's is provably a process this one can see (alive or
/// not by its pid), and one whose space differs is not, whatever its
/// hostname and pid say. `None` where either is unreadable (no `/proc`):
/// then no holder is provably here.
pub fn pid_space() -> Option<String> {
    static SPACE: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
    SPACE
        .get_or_init(|| {
            let boot = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").ok()?;
            let ns = std::fs::read_link("/proc/self/ns/pid").ok()?;
            let (boot, ns) = (boot.trim(), ns.to_string_lossy().into_owned());
            (!boot.is_empty() && !ns.is_empty()).then(|| format!("{} {boot} {ns}", hostname()))
        })
        .clone()
}

/// Who acts: `configured` (`[identity] name`) when given, else
/// `$USER@hostname` (`$LOGNAME`, `$USERNAME` as fallbacks). Sanitised: an
/// escape sequence in `$USER` never reaches a terminal or the audit log.
pub fn actor(configured: Option<&str>) -> String {
    if let Some(n) = configured.map(str::trim).filter(|n| !n.is_empty()) {
        return crate::text::sanitize(n).trim().to_string();
    }
    let user = ["USER", "LOGNAME", "USERNAME"]
        .iter()
        .find_map(|v| std::env::var(v).ok().filter(|u| !u.trim().is_empty()))
        .unwrap_or_else(|| "unknown".into());
    let user = crate::text::sanitize(&user).trim().to_string();
    format!("{user}@{}", hostname())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configured_actor_is_sanitised() {
        assert_eq!(actor(Some(" ops\u{1b}]0;pwned\u{7} ")), "ops");
        assert!(!hostname().chars().any(char::is_control));
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn the_pid_space_names_host_boot_and_namespace() {
        let space = pid_space().expect("/proc is readable on Linux");
        assert!(space.starts_with(&format!("{} ", hostname())), "{space}");
        assert!(space.ends_with(']') && space.contains(" pid:["), "{space}");
        assert_eq!(pid_space(), Some(space));
    }
}
