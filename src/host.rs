//! Who and where: this machine's name and the acting user, both read from
//! outside (the OS, `$USER`) and therefore sanitised where they enter.
//! Low in the layering so that the store and the engine can both use it.

/// This machine's name, for actor names and locks; sanitised.
pub fn hostname() -> String {
    crate::text::sanitize(&gethostname::gethostname().to_string_lossy())
        .trim()
        .to_string()
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
}
