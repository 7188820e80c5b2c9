//! Low-traffic deploy windows: `"22:00-06:00"` in UTC, possibly across midnight.

use std::fmt;

use chrono::{DateTime, NaiveTime, Timelike, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TimeWindow {
    pub start: NaiveTime,
    pub end: NaiveTime,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed time window {input:?}: expected \"HH:MM-HH:MM\" in UTC, like \"22:00-06:00\"")]
pub struct WindowError {
    pub input: String,
}

impl TimeWindow {
    pub fn parse(input: &str) -> Result<Self, WindowError> {
        let err = || WindowError {
            input: input.to_string(),
        };
        let (a, b) = input.trim().split_once('-').ok_or_else(err)?;
        let p = |s: &str| NaiveTime::parse_from_str(s.trim(), "%H:%M").map_err(|_| err());
        let (start, end) = (p(a)?, p(b)?);
        if start == end {
            return Err(err());
        }
        Ok(TimeWindow { start, end })
    }

    /// Whether `now` falls inside the window (start inclusive, end exclusive).
    pub fn contains(&self, now: DateTime<Utc>) -> bool {
        let t = now.time().with_nanosecond(0).unwrap_or(now.time());
        if self.start < self.end {
            t >= self.start && t < self.end
        } else {
            t >= self.start || t < self.end
        }
    }
}

impl fmt::Display for TimeWindow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}-{} UTC",
            self.start.format("%H:%M"),
            self.end.format("%H:%M")
        )
    }
}

impl<'de> Deserialize<'de> for TimeWindow {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        TimeWindow::parse(&s).map_err(serde::de::Error::custom)
    }
}

impl Serialize for TimeWindow {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format!(
            "{}-{}",
            self.start.format("%H:%M"),
            self.end.format("%H:%M")
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(h: u32, m: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 24, h, m, 0).unwrap()
    }

    #[test]
    fn across_midnight() {
        let w = TimeWindow::parse("22:00-06:00").unwrap();
        assert!(w.contains(at(23, 0)));
        assert!(w.contains(at(2, 30)));
        assert!(w.contains(at(22, 0)));
        assert!(!w.contains(at(6, 0)));
        assert!(!w.contains(at(12, 0)));
    }

    #[test]
    fn same_day() {
        let w = TimeWindow::parse("01:00-05:30").unwrap();
        assert!(w.contains(at(3, 0)));
        assert!(!w.contains(at(5, 30)));
        assert!(!w.contains(at(0, 59)));
    }

    #[test]
    fn malformed() {
        for s in ["", "22:00", "25:00-01:00", "aa-bb", "10:00-10:00"] {
            assert!(TimeWindow::parse(s).is_err(), "{s:?}");
        }
    }
}
