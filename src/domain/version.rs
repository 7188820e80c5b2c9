//! Release versions. A version read from a remote endpoint is untrusted: it
//! may end up in a URL or as an argument of a deploy hook, so it is validated
//! against a conservative character set before anything else sees it.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Longest version string accepted.
pub const MAX_LEN: usize = 64;

/// A validated version string such as `v1.8.0` or `2024.11.3-rc.1+build.7`.
///
/// Allowed: ASCII letters and digits, `.`, `_`, `-`, `+`; it starts with a
/// letter or a digit and is 1 to [`MAX_LEN`] characters long. That keeps it
/// safe in a path segment, a JSON body and an argv element alike.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Version(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VersionError {
    #[error("empty version string")]
    Empty,
    #[error("version is {0} characters long; at most {MAX_LEN} are allowed")]
    TooLong(usize),
    #[error(
        "version {shown} has the character {ch:?} at position {pos}; allowed are letters, digits and . _ - +"
    )]
    BadChar { shown: String, ch: char, pos: usize },
    #[error("version {0} must start with a letter or a digit")]
    BadStart(String),
}

impl Version {
    pub fn parse(raw: &str) -> Result<Self, VersionError> {
        if raw.is_empty() {
            return Err(VersionError::Empty);
        }
        let n = raw.chars().count();
        if n > MAX_LEN {
            return Err(VersionError::TooLong(n));
        }
        for (pos, ch) in raw.chars().enumerate() {
            if !(ch.is_ascii_alphanumeric() || matches!(ch, '.' | '_' | '-' | '+')) {
                return Err(VersionError::BadChar {
                    shown: shown(raw),
                    ch,
                    pos: pos + 1,
                });
            }
        }
        if !raw.starts_with(|c: char| c.is_ascii_alphanumeric()) {
            return Err(VersionError::BadStart(shown(raw)));
        }
        Ok(Version(raw.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Quote an untrusted string for an error message, escaping control characters.
fn shown(raw: &str) -> String {
    format!("{:?}", raw)
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for Version {
    type Error = VersionError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Version::parse(&s)
    }
}

impl From<Version> for String {
    fn from(v: Version) -> String {
        v.0
    }
}

impl std::str::FromStr for Version {
    type Err = VersionError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Version::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_common_forms() {
        for v in ["v1.8.0", "1.2.3-rc.1+build.7", "2024_11_03", "abc123"] {
            assert_eq!(Version::parse(v).unwrap().as_str(), v);
        }
    }

    #[test]
    fn rejects_shell_metacharacters_and_paths() {
        for v in [
            "v1; rm -rf /",
            "$(reboot)",
            "`id`",
            "v1|cat",
            "../etc",
            "a/b",
            "v1\n",
            "v 1",
            "v1&",
            "-rf",
            ".hidden",
        ] {
            assert!(Version::parse(v).is_err(), "{v:?} accepted");
        }
    }

    #[test]
    fn names_the_bad_character() {
        let e = Version::parse("v1;x").unwrap_err();
        assert_eq!(
            e.to_string(),
            "version \"v1;x\" has the character ';' at position 3; allowed are letters, digits and . _ - +"
        );
    }

    #[test]
    fn length_limit() {
        assert!(Version::parse(&"a".repeat(MAX_LEN)).is_ok());
        assert_eq!(
            Version::parse(&"a".repeat(MAX_LEN + 1)),
            Err(VersionError::TooLong(MAX_LEN + 1))
        );
        assert_eq!(Version::parse(""), Err(VersionError::Empty));
    }

    #[test]
    fn serde_validates() {
        let ok: Version = serde_json::from_str("\"v1.0\"").unwrap();
        assert_eq!(ok.as_str(), "v1.0");
        assert!(serde_json::from_str::<Version>("\"v1;0\"").is_err());
    }
}
