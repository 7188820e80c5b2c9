//! Human durations in config files: `30s`, `5m`, `1h30m`, `500ms`.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct HumanDuration(pub Duration);

/// The longest duration shipdeck accepts anywhere: 365 days. Longer ones
/// are a mistake, and chrono's date arithmetic would overflow on absurd
/// ones; each use may have a tighter limit of its own.
pub const MAX_DURATION: Duration = Duration::from_secs(365 * 86_400);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    #[error(
        "malformed duration {input:?}: expected a number with a unit (ms, s, m, h, d), like \"30s\", \"5m\" or \"1h30m\""
    )]
    Malformed { input: String },
    #[error("duration {input:?} is too long: at most {}", in_days(*limit))]
    TooLong { input: String, limit: HumanDuration },
}

/// A whole number of days as `365d`; anything else as [`HumanDuration`] shows it.
fn in_days(d: HumanDuration) -> String {
    let s = d.0.as_secs();
    if s >= 86_400 && s.is_multiple_of(86_400) && d.0.subsec_nanos() == 0 {
        format!("{}d", s / 86_400)
    } else {
        d.to_string()
    }
}

impl HumanDuration {
    pub fn from_secs(s: u64) -> Self {
        HumanDuration(Duration::from_secs(s))
    }

    pub fn parse(input: &str) -> Result<Self, DurationError> {
        let err = || DurationError::Malformed {
            input: input.to_string(),
        };
        let too_long = || DurationError::TooLong {
            input: input.chars().take(40).collect(),
            limit: HumanDuration(MAX_DURATION),
        };
        let s = input.trim();
        if s.is_empty() {
            return Err(err());
        }
        let mut total_ms: u128 = 0;
        let mut rest = s;
        while !rest.is_empty() {
            let digits = rest.find(|c: char| !c.is_ascii_digit()).ok_or_else(err)?;
            if digits == 0 {
                return Err(err());
            }
            let n: u128 = rest[..digits].parse().map_err(|_| err())?;
            rest = &rest[digits..];
            let unit_len = rest
                .find(|c: char| c.is_ascii_digit())
                .unwrap_or(rest.len());
            let unit = &rest[..unit_len];
            rest = &rest[unit_len..];
            let ms_per = match unit {
                "ms" => 1,
                "s" => 1_000,
                "m" => 60_000,
                "h" => 3_600_000,
                "d" => 86_400_000,
                _ => return Err(err()),
            };
            total_ms = total_ms
                .checked_add(n.checked_mul(ms_per).ok_or_else(too_long)?)
                .ok_or_else(too_long)?;
            if total_ms > MAX_DURATION.as_millis() {
                return Err(too_long());
            }
        }
        let ms = u64::try_from(total_ms).map_err(|_| too_long())?;
        Ok(HumanDuration(Duration::from_millis(ms)))
    }

    /// Parse, and refuse a duration longer than `limit` (named in the error).
    pub fn parse_at_most(input: &str, limit: Duration) -> Result<Self, DurationError> {
        let too_long = || DurationError::TooLong {
            input: input.chars().take(40).collect(),
            limit: HumanDuration(limit),
        };
        let d = match HumanDuration::parse(input) {
            Err(DurationError::TooLong { .. }) => return Err(too_long()),
            other => other?,
        };
        if d.0 > limit {
            return Err(DurationError::TooLong {
                input: input.chars().take(40).collect(),
                limit: HumanDuration(limit),
            });
        }
        Ok(d)
    }

    pub fn as_secs_f64(self) -> f64 {
        self.0.as_secs_f64()
    }
}

impl fmt::Display for HumanDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = self.0.as_millis();
        if ms == 0 {
            return f.write_str("0s");
        }
        if !ms.is_multiple_of(1000) {
            return write!(f, "{ms}ms");
        }
        let mut s = (ms / 1000) as u64;
        let h = s / 3600;
        s %= 3600;
        let m = s / 60;
        s %= 60;
        if h > 0 {
            write!(f, "{h}h")?;
        }
        if m > 0 {
            write!(f, "{m}m")?;
        }
        if s > 0 {
            write!(f, "{s}s")?;
        }
        Ok(())
    }
}

impl<'de> Deserialize<'de> for HumanDuration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        HumanDuration::parse(&s).map_err(serde::de::Error::custom)
    }
}

impl Serialize for HumanDuration {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

/// Chrono arithmetic with a configured duration, saturating instead of
/// panicking: every place where a duration from the config meets a time
/// goes through these, so no future change of a bound can overflow.
pub mod clock {
    use chrono::{DateTime, TimeDelta, Utc};
    use std::time::Duration;

    /// A configured duration as chrono's, saturating at chrono's largest.
    pub fn delta(d: Duration) -> TimeDelta {
        TimeDelta::from_std(d).unwrap_or(TimeDelta::MAX)
    }

    /// `at + d`, saturating at the first or last instant chrono knows.
    pub fn after(at: DateTime<Utc>, d: TimeDelta) -> DateTime<Utc> {
        at.checked_add_signed(d)
            .unwrap_or(if d < TimeDelta::zero() {
                DateTime::<Utc>::MIN_UTC
            } else {
                DateTime::<Utc>::MAX_UTC
            })
    }

    /// `at - d`, saturating likewise.
    pub fn before(at: DateTime<Utc>, d: TimeDelta) -> DateTime<Utc> {
        at.checked_sub_signed(d)
            .unwrap_or(if d < TimeDelta::zero() {
                DateTime::<Utc>::MAX_UTC
            } else {
                DateTime::<Utc>::MIN_UTC
            })
    }

    /// `d * n`, saturating at chrono's largest (or smallest) delta.
    pub fn times(d: TimeDelta, n: i32) -> TimeDelta {
        // Through milliseconds: chrono's own `checked_mul` lets a product
        // past its bounds through.
        d.num_milliseconds()
            .checked_mul(i64::from(n))
            .and_then(TimeDelta::try_milliseconds)
            .unwrap_or(if (d < TimeDelta::zero()) != (n < 0) {
                TimeDelta::MIN
            } else {
                TimeDelta::MAX
            })
    }

    /// `a + b` between two deltas, saturating.
    pub fn sum(a: TimeDelta, b: TimeDelta) -> TimeDelta {
        a.checked_add(&b).unwrap_or(if b < TimeDelta::zero() {
            TimeDelta::MIN
        } else {
            TimeDelta::MAX
        })
    }

    /// Seconds (from a detector setting) as a delta, saturating; NaN is zero.
    pub fn secs_f64(s: f64) -> TimeDelta {
        let ms = (s * 1000.0).clamp(i64::MIN as f64, i64::MAX as f64);
        TimeDelta::try_milliseconds(if ms.is_nan() { 0 } else { ms as i64 }).unwrap_or(if s < 0.0 {
            TimeDelta::MIN
        } else {
            TimeDelta::MAX
        })
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn arithmetic_with_an_absurd_duration_saturates_instead_of_panicking() {
            let now = Utc::now();
            let huge = delta(Duration::from_secs(u64::MAX));
            assert_eq!(huge, TimeDelta::MAX);
            assert_eq!(after(now, huge), DateTime::<Utc>::MAX_UTC);
            assert_eq!(before(now, huge), DateTime::<Utc>::MIN_UTC);
            assert_eq!(after(now, TimeDelta::MIN), DateTime::<Utc>::MIN_UTC);
            assert_eq!(times(huge, 4), TimeDelta::MAX);
            assert_eq!(times(huge, -4), TimeDelta::MIN);
            assert_eq!(sum(huge, huge), TimeDelta::MAX);
            assert_eq!(secs_f64(1e300), TimeDelta::MAX);
            assert_eq!(secs_f64(f64::NAN), TimeDelta::zero());
            assert_eq!(secs_f64(-1e300), TimeDelta::MIN);
            // Ordinary values are exact.
            assert_eq!(delta(Duration::from_secs(90)), TimeDelta::seconds(90));
            assert_eq!(
                after(now, TimeDelta::seconds(5)) - now,
                TimeDelta::seconds(5)
            );
            assert_eq!(secs_f64(1.5), TimeDelta::milliseconds(1500));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_units_and_compounds() {
        assert_eq!(
            HumanDuration::parse("30s").unwrap().0,
            Duration::from_secs(30)
        );
        assert_eq!(
            HumanDuration::parse("5m").unwrap().0,
            Duration::from_secs(300)
        );
        assert_eq!(
            HumanDuration::parse("1h30m").unwrap().0,
            Duration::from_secs(5400)
        );
        assert_eq!(
            HumanDuration::parse("500ms").unwrap().0,
            Duration::from_millis(500)
        );
        assert_eq!(
            HumanDuration::parse("2d").unwrap().0,
            Duration::from_secs(172_800)
        );
    }

    #[test]
    fn rejects_malformed() {
        for s in [
            "",
            "30",
            "m",
            "5 minutes",
            "1.5h",
            "-3s",
            "3x",
            "99999999999999999999999h",
        ] {
            assert!(HumanDuration::parse(s).is_err(), "{s:?} accepted");
        }
    }

    #[test]
    fn huge_durations_are_refused_with_the_limit() {
        for s in [
            "5000000000h",
            "999999999d",
            "366d",
            "365d1ms",
            "18446744073709551615ms",
        ] {
            let e = HumanDuration::parse(s).unwrap_err();
            assert!(matches!(e, DurationError::TooLong { .. }), "{s:?}: {e}");
            assert!(e.to_string().contains("at most 365d"), "{e}");
        }
        assert_eq!(HumanDuration::parse("365d").unwrap().0, MAX_DURATION);
        let e = HumanDuration::parse_at_most("25h", Duration::from_secs(86_400)).unwrap_err();
        assert_eq!(e.to_string(), "duration \"25h\" is too long: at most 1d");
        assert!(HumanDuration::parse_at_most("24h", Duration::from_secs(86_400)).is_ok());
        let e =
            HumanDuration::parse_at_most("999999999d", Duration::from_secs(86_400)).unwrap_err();
        assert!(e.to_string().ends_with("at most 1d"), "{e}");
    }

    #[test]
    fn displays_round_trip() {
        for s in ["30s", "5m", "1h30m", "500ms", "2h"] {
            assert_eq!(HumanDuration::parse(s).unwrap().to_string(), s);
        }
    }
}
