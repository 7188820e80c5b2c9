//! Small formatting helpers shared by the views.

/// `42s`, `5m`, `3h`, `2d`: an age, coarse enough to stay short.
pub fn age(secs: i64) -> String {
    let s = secs.max(0);
    if s < 60 {
        format!("{s}s")
    } else if s < 3600 {
        format!("{}m", s / 60)
    } else if s < 86_400 {
        format!("{}h", s / 3600)
    } else {
        format!("{}d", s / 86_400)
    }
}

/// `12:04` (or `1:02:03`): time left in a window.
pub fn countdown(secs: f64) -> String {
    let s = secs.max(0.0).ceil() as u64;
    if s >= 3600 {
        format!("{}:{:02}:{:02}", s / 3600, (s / 60) % 60, s % 60)
    } else {
        format!("{}:{:02}", s / 60, s % 60)
    }
}

/// A time offset on a chart axis: `-30m`, `0`, `+90s`, `+1h30m`.
pub fn offset(secs: f64) -> String {
    let r = secs.round() as i64;
    if r == 0 {
        return "0".into();
    }
    let sign = if r < 0 { "-" } else { "+" };
    let a = r.unsigned_abs();
    let body = if a < 120 && !a.is_multiple_of(60) {
        format!("{a}s")
    } else if a < 3600 {
        format!("{}m", a / 60)
    } else if a % 3600 < 60 {
        format!("{}h", a / 3600)
    } else {
        format!("{}h{}m", a / 3600, (a % 3600) / 60)
    };
    format!("{sign}{body}")
}

/// An error rate (0.0123) as `1.23%`.
pub fn percent(rate: f64) -> String {
    let p = rate * 100.0;
    if p >= 10.0 {
        format!("{p:.1}%")
    } else {
        format!("{p:.2}%")
    }
}

/// Milliseconds, with as much precision as is legible.
pub fn ms(v: f64) -> String {
    if v >= 1000.0 {
        format!("{:.2}s", v / 1000.0)
    } else if v >= 100.0 {
        format!("{v:.0}ms")
    } else {
        format!("{v:.1}ms")
    }
}

/// Cut `s` to at most `max` characters, marking the cut with `…`.
pub fn clip(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    if max == 0 {
        return String::new();
    }
    let mut out: String = s.chars().take(max - 1).collect();
    out.push('…');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        assert_eq!(age(-3), "0s");
        assert_eq!(age(59), "59s");
        assert_eq!(age(61), "1m");
        assert_eq!(age(7200), "2h");
        assert_eq!(countdown(724.2), "12:05");
        assert_eq!(countdown(3723.0), "1:02:03");
        assert_eq!(offset(0.2), "0");
        assert_eq!(offset(-1800.0), "-30m");
        assert_eq!(offset(90.0), "+90s");
        assert_eq!(offset(300.0), "+5m");
        assert_eq!(offset(5400.0), "+1h30m");
        assert_eq!(offset(7200.0), "+2h");
        assert_eq!(percent(0.0031), "0.31%");
        assert_eq!(percent(0.123), "12.3%");
        assert_eq!(ms(41.23), "41.2ms");
        assert_eq!(ms(1234.0), "1.23s");
        assert_eq!(clip("production", 5), "prod…");
        assert_eq!(clip("prod", 5), "prod");
    }
}
