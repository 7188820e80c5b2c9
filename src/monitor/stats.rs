//! Small robust statistics and tail probabilities used by the detector, the
//! peer judges and the reasons shown to humans. Pure functions, no allocation
//! beyond the sorting copies.

/// Median of `xs` (NaNs must already be filtered out). `None` when empty.
pub fn median(xs: &[f64]) -> Option<f64> {
    if xs.is_empty() {
        return None;
    }
    let mut v = xs.to_vec();
    v.sort_by(f64::total_cmp);
    Some(median_sorted(&v))
}

/// Median of an already sorted, non-empty slice.
pub fn median_sorted(v: &[f64]) -> f64 {
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        0.5 * (v[n / 2 - 1] + v[n / 2])
    }
}

/// Median absolute deviation around `center`, scaled to be a consistent
/// estimate of the standard deviation under normal noise (×1.4826).
pub fn mad_sigma(xs: &[f64], center: f64) -> f64 {
    let dev: Vec<f64> = xs.iter().map(|x| (x - center).abs()).collect();
    median(&dev).unwrap_or(0.0) * 1.4826
}

/// Arithmetic mean; 0 for an empty slice.
pub fn mean(xs: &[f64]) -> f64 {
    if xs.is_empty() {
        0.0
    } else {
        xs.iter().sum::<f64>() / xs.len() as f64
    }
}

/// Sample standard deviation; 0 for fewer than two values.
pub fn sd(xs: &[f64]) -> f64 {
    if xs.len() < 2 {
        return 0.0;
    }
    let m = mean(xs);
    (xs.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / (xs.len() - 1) as f64).sqrt()
}

/// Complementary error function (Numerical Recipes' Chebyshev fit, |error| < 1.2e-7).
pub fn erfc(x: f64) -> f64 {
    let z = x.abs();
    let t = 1.0 / (1.0 + 0.5 * z);
    let ans = t
        * (-z * z - 1.265_512_23
            + t * (1.000_023_68
                + t * (0.374_091_96
                    + t * (0.096_784_18
                        + t * (-0.186_288_06
                            + t * (0.278_868_07
                                + t * (-1.135_203_98
                                    + t * (1.488_515_87
                                        + t * (-0.822_152_23 + t * 0.170_872_77)))))))))
            .exp();
    if x >= 0.0 { ans } else { 2.0 - ans }
}

/// Upper tail of the standard normal: P(Z >= z).
pub fn norm_sf(z: f64) -> f64 {
    0.5 * erfc(z / std::f64::consts::SQRT_2)
}

/// P(X >= k) for X ~ Poisson(mu).
pub fn poisson_sf(k: f64, mu: f64) -> f64 {
    if k <= 0.0 {
        return 1.0;
    }
    if mu > 40.0 {
        return norm_sf((k - 0.5 - mu) / mu.sqrt());
    }
    1.0 - poisson_cdf(k - 1.0, mu)
}

/// P(X <= k) for X ~ Poisson(mu).
pub fn poisson_cdf(k: f64, mu: f64) -> f64 {
    if k < 0.0 {
        return 0.0;
    }
    if mu > 40.0 {
        return 1.0 - norm_sf((k + 0.5 - mu) / mu.sqrt());
    }
    let k = k.floor() as u64;
    let mut term = (-mu).exp();
    let mut sum = term;
    for i in 1..=k {
        term *= mu / i as f64;
        sum += term;
        if term < 1e-17 * sum {
            break;
        }
    }
    sum.min(1.0)
}

/// ln Γ(x) for x > 0 (Lanczos, g = 7, 9 terms: relative error < 1e-13).
pub fn ln_gamma(x: f64) -> f64 {
    const G: [f64; 9] = [
        0.999_999_999_999_809_9,
        676.520_368_121_885_1,
        -1_259.139_216_722_402_8,
        771.323_428_777_653_1,
        -176.615_029_162_140_6,
        12.507_343_278_686_905,
        -0.138_571_095_265_720_12,
        9.984_369_578_019_572e-6,
        1.505_632_735_149_311_6e-7,
    ];
    if x < 0.5 {
        // Reflection: Γ(x)Γ(1-x) = π / sin(πx).
        let pi = std::f64::consts::PI;
        return (pi / (pi * x).sin()).ln() - ln_gamma(1.0 - x);
    }
    let x = x - 1.0;
    let mut a = G[0];
    let t = x + 7.5;
    for (i, g) in G.iter().enumerate().skip(1) {
        a += g / (x + i as f64);
    }
    0.5 * (2.0 * std::f64::consts::PI).ln() + (x + 0.5) * t.ln() - t + a.ln()
}

/// The regularized incomplete beta function I_x(a, b), for a, b > 0 and
/// x in [0, 1] (continued fraction, Numerical Recipes' `betai`).
pub fn incomplete_beta(x: f64, a: f64, b: f64) -> f64 {
    if x <= 0.0 {
        return 0.0;
    }
    if x >= 1.0 {
        return 1.0;
    }
    let front =
        (ln_gamma(a + b) - ln_gamma(a) - ln_gamma(b) + a * x.ln() + b * (1.0 - x).ln()).exp();
    if x < (a + 1.0) / (a + b + 2.0) {
        front * beta_cf(x, a, b) / a
    } else {
        1.0 - front * beta_cf(1.0 - x, b, a) / b
    }
}

/// Lentz's continued fraction behind [`incomplete_beta`].
fn beta_cf(x: f64, a: f64, b: f64) -> f64 {
    const TINY: f64 = 1e-300;
    let (qab, qap, qam) = (a + b, a + 1.0, a - 1.0);
    let mut c = 1.0;
    let mut d = 1.0 - qab * x / qap;
    if d.abs() < TINY {
        d = TINY;
    }
    d = 1.0 / d;
    let mut h = d;
    for m in 1..=10_000 {
        let m = m as f64;
        let m2 = 2.0 * m;
        let aa = m * (b - m) * x / ((qam + m2) * (a + m2));
        d = 1.0 + aa * d;
        if d.abs() < TINY {
            d = TINY;
        }
        c = 1.0 + aa / c;
        if c.abs() < TINY {
            c = TINY;
        }
        d = 1.0 / d;
        h *= d * c;
        let aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2));
        d = 1.0 + aa * d;
        if d.abs() < TINY {
            d = TINY;
        }
        c = 1.0 + aa / c;
        if c.abs() < TINY {
            c = TINY;
        }
        d = 1.0 / d;
        let del = d * c;
        h *= del;
        if (del - 1.0).abs() < 1e-14 {
            break;
        }
    }
    h
}

/// P(X >= x) for X ~ Binomial(n, p), continuous in `x` and `n` (counts
/// summed from rates need not be whole): I_p(x, n - x + 1).
pub fn binomial_sf(x: f64, n: f64, p: f64) -> f64 {
    if x <= 0.0 || p >= 1.0 {
        return 1.0;
    }
    if x > n || p <= 0.0 {
        return 0.0;
    }
    incomplete_beta(p, x, n - x + 1.0).clamp(0.0, 1.0)
}

/// A count of steps for a reason string: `1 step`, `3 steps`.
pub fn fmt_steps(n: usize) -> String {
    if n == 1 {
        "1 step".to_string()
    } else {
        format!("{n} steps")
    }
}

/// A p-value the way a human reads it: `p<0.001`, `p=0.004`, `p=0.03`.
pub fn fmt_p(p: f64) -> String {
    if p < 0.001 {
        "p<0.001".to_string()
    } else if p < 0.01 {
        format!("p={p:.3}")
    } else {
        format!("p={p:.2}")
    }
}

/// Mann-Whitney U test, one-sided: the p-value that `ys` tends to be larger
/// than `xs` (normal approximation with tie correction).
pub fn mann_whitney_greater(xs: &[f64], ys: &[f64]) -> f64 {
    let (n1, n2) = (xs.len(), ys.len());
    if n1 == 0 || n2 == 0 {
        return 1.0;
    }
    let mut all: Vec<(f64, bool)> = xs
        .iter()
        .map(|&x| (x, false))
        .chain(ys.iter().map(|&y| (y, true)))
        .collect();
    all.sort_by(|a, b| a.0.total_cmp(&b.0));
    let n = all.len();
    let mut rank_sum_y = 0.0;
    let mut tie_term = 0.0;
    let mut i = 0;
    while i < n {
        let mut j = i;
        while j + 1 < n && all[j + 1].0 == all[i].0 {
            j += 1;
        }
        let avg = (i + j) as f64 / 2.0 + 1.0;
        let ties = (j - i + 1) as f64;
        tie_term += ties * ties * ties - ties;
        for item in &all[i..=j] {
            if item.1 {
                rank_sum_y += avg;
            }
        }
        i = j + 1;
    }
    let (f1, f2) = (n1 as f64, n2 as f64);
    let u = rank_sum_y - f2 * (f2 + 1.0) / 2.0;
    let mu = f1 * f2 / 2.0;
    let nn = f1 + f2;
    let var = f1 * f2 / 12.0 * ((nn + 1.0) - tie_term / (nn * (nn - 1.0)));
    if var <= 0.0 {
        1.0
    } else {
        norm_sf((u - mu - 0.5) / var.sqrt())
    }
}

/// Hodges-Lehmann estimate of the shift `ys - xs` (median of all pairwise
/// differences).
pub fn hodges_lehmann(xs: &[f64], ys: &[f64]) -> f64 {
    let mut diffs = Vec::with_capacity(xs.len() * ys.len());
    for &y in ys {
        for &x in xs {
            diffs.push(y - x);
        }
    }
    median(&diffs).unwrap_or(0.0)
}

/// Seconds as a short human duration: `40s`, `12m`, `1h05m`.
pub fn fmt_duration(secs: f64) -> String {
    let s = secs.max(0.0).round() as u64;
    if s < 120 {
        format!("{s}s")
    } else if s < 3600 {
        let (m, r) = (s / 60, s % 60);
        if r == 0 || m >= 10 {
            format!("{m}m")
        } else {
            format!("{m}m{r:02}s")
        }
    } else {
        format!("{}h{:02}m", s / 3600, (s % 3600) / 60)
    }
}

/// A fraction as a percentage with sensible precision: `12%`, `3.9%`, `0.41%`.
pub fn fmt_pct(x: f64) -> String {
    let p = x * 100.0;
    if p >= 10.0 {
        format!("{p:.0}%")
    } else if p >= 1.0 {
        format!("{p:.1}%")
    } else if p >= 0.01 || p == 0.0 {
        format!("{p:.2}%")
    } else {
        format!("{p:.3}%")
    }
}

/// Milliseconds: `118ms`, `1.2s`.
pub fn fmt_ms(ms: f64) -> String {
    if ms >= 1000.0 {
        format!("{:.2}s", ms / 1000.0)
    } else if ms >= 10.0 {
        format!("{ms:.0}ms")
    } else {
        format!("{ms:.1}ms")
    }
}

/// A signed relative time: `+40s`, `-5m`.
pub fn fmt_t(t: f64) -> String {
    if t.fract().abs() > 1e-9 && t.abs() < 120.0 {
        format!("{t:+.1}s")
    } else if t.abs() < 120.0 {
        format!("{t:+.0}s")
    } else {
        let sign = if t < 0.0 { "-" } else { "+" };
        format!("{sign}{}", fmt_duration(t.abs()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binomial_tails_match_exact_sums() {
        let close = |a: f64, b: f64| (a - b).abs() <= 1e-9 * b.max(1e-300) + 1e-12;
        assert!((ln_gamma(5.0) - 24f64.ln()).abs() < 1e-12);
        assert!((ln_gamma(0.5) - std::f64::consts::PI.sqrt().ln()).abs() < 1e-12);
        // All of six on one side of a fair coin: 1/64.
        assert!(close(binomial_sf(6.0, 6.0, 0.5), 1.0 / 64.0));
        assert!(close(binomial_sf(30.0, 30.0, 0.5), 0.5f64.powi(30)));
        // P(X >= 3), X ~ Bin(10, 0.3), against the summed pmf.
        let pmf = |k: i32| {
            let c = (0..k).fold(1.0, |c, i| c * (10 - i) as f64 / (i + 1) as f64);
            c * 0.3f64.powi(k) * 0.7f64.powi(10 - k)
        };
        let want: f64 = (3..=10).map(pmf).sum();
        assert!(close(binomial_sf(3.0, 10.0, 0.3), want), "{want}");
        // Far in the tail of a large n: 40 of 1000 where 10 are expected.
        let tail = binomial_sf(40.0, 1000.0, 0.01);
        assert!(tail > 1e-13 && tail < 1e-11, "{tail}");
        assert_eq!(binomial_sf(0.0, 10.0, 0.3), 1.0);
        assert_eq!(binomial_sf(11.0, 10.0, 0.3), 0.0);
    }

    #[test]
    fn medians_and_mad() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), Some(2.5));
        assert_eq!(median(&[]), None);
        let s = mad_sigma(&[1.0, 2.0, 3.0, 4.0, 100.0], 3.0);
        assert!((s - 1.4826).abs() < 1e-9, "{s}");
    }

    #[test]
    fn tails() {
        assert!((norm_sf(0.0) - 0.5).abs() < 1e-7);
        assert!((norm_sf(1.959_964) - 0.025).abs() < 1e-6);
        assert!((norm_sf(-1.959_964) - 0.975).abs() < 1e-6);
        // P(X >= 1 | mu=1) = 1 - e^-1
        assert!((poisson_sf(1.0, 1.0) - (1.0 - (-1.0f64).exp())).abs() < 1e-12);
        assert!((poisson_cdf(0.0, 2.0) - (-2.0f64).exp()).abs() < 1e-12);
        assert_eq!(poisson_sf(0.0, 3.0), 1.0);
    }

    #[test]
    fn mann_whitney_detects_shift_and_not_noise() {
        let xs: Vec<f64> = (0..30).map(|i| (i * 7 % 30) as f64).collect();
        let ys: Vec<f64> = xs.iter().map(|x| x + 20.0).collect();
        let p = mann_whitney_greater(&xs, &ys);
        assert!(p < 1e-6, "{p}");
        assert!((hodges_lehmann(&xs, &ys) - 20.0).abs() < 1e-9);
        let p = mann_whitney_greater(&xs, &xs);
        assert!(p > 0.4, "{p}");
    }

    #[test]
    fn formatting() {
        assert_eq!(fmt_pct(0.039), "3.9%");
        assert_eq!(fmt_pct(0.0041), "0.41%");
        assert_eq!(fmt_pct(0.25), "25%");
        assert_eq!(fmt_duration(40.0), "40s");
        assert_eq!(fmt_duration(720.0), "12m");
        assert_eq!(fmt_duration(3900.0), "1h05m");
        assert_eq!(fmt_t(40.0), "+40s");
        assert_eq!(fmt_t(600.0), "+10m");
        assert_eq!(fmt_p(0.0001), "p<0.001");
        assert_eq!(fmt_p(0.004), "p=0.004");
        assert_eq!(fmt_ms(118.4), "118ms");
        assert_eq!(fmt_ms(1234.0), "1.23s");
    }
}
