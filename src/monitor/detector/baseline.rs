//! The baseline summary: the pre-deploy samples summarised robustly and
//! frozen when the first window sample arrives (`build_model`),
//! and the centre, band and threshold per signal that charts draw
//! ([`Detector::baseline`]).

use super::*;

impl Detector {
    /// Summarise and freeze the baseline.
    pub(super) fn build_model(&self, first_window_t: f64) -> Model {
        let lo = -self.cfg.baseline_s - 1e-9;
        let rows: Vec<&Sample> = self.baseline.iter().filter(|s| s.t > lo).collect();
        // Step length from the t values (baseline rows, else the first window row).
        let diffs: Vec<f64> = rows
            .windows(2)
            .map(|w| w[1].t - w[0].t)
            .filter(|d| *d > 0.0)
            .collect();
        let dt = median(&diffs)
            .or_else(|| rows.last().map(|s| first_window_t - s.t))
            .unwrap_or(first_window_t)
            .clamp(0.1, 3600.0);
        let data: Vec<&Sample> = rows.iter().copied().filter(|s| is_data(s)).collect();
        let usable = data.len();
        let nf = usable.max(1) as f64;

        let window_steps = (self.cfg.window_s / dt).max(10.0);
        let fa = self.cfg.false_alarm.clamp(1e-9, 0.5);
        let h = (window_steps * N_TESTS / (fa * (1.0 - DEPLOY_SHARE))).ln();
        let h_dep = (N_DEPLOY / (fa * DEPLOY_SHARE)).ln();
        // Evidence must span more than `min_evidence_s`, and never one step.
        let steps_needed = ((self.cfg.min_evidence_s / dt).floor() + 1.0).max(2.0);
        let cap_rate = h / ((steps_needed - SLACK) * dt);
        let lat_cap_rate = h * (1.0 + 1e-9) / (steps_needed * dt);
        // The whole warm-up may bring at most 3/4 of the threshold.
        let warm_rate = cap_rate.min(WARM_ALLOWANCE * h / self.cfg.warmup_s.max(dt));

        // Blocks of about two minutes for the slow-wander estimates.
        let block = ((120.0 / dt).round() as usize).max(3);

        // Error rate.
        let e_tot: f64 = data.iter().map(|s| s.errors.clamp(0.0, s.requests)).sum();
        let n_tot: f64 = data.iter().map(|s| s.requests).sum();
        let err = (n_tot > 0.0).then(|| {
            let p0 = (e_tot + 0.5) / (n_tot + 1.0);
            let p_ref = p0 * (1.0 + 1.0 / (e_tot + 1.0).sqrt());
            // Method of moments for c, trimming the largest 5% of contributions.
            let mut contrib: Vec<(f64, f64)> = data
                .iter()
                .filter(|s| s.requests > 0.0)
                .map(|s| {
                    let mu = s.requests * p0;
                    let e = s.errors.clamp(0.0, s.requests);
                    ((e - mu) * (e - mu) - mu, mu * mu)
                })
                .collect();
            contrib.sort_by(|a, b| a.0.total_cmp(&b.0));
            let keep = contrib.len() - contrib.len() / 20;
            let (num, den) = contrib[..keep]
                .iter()
                .fold((0.0, 0.0), |(a, b), (x, y)| (a + x, b + y));
            // Shrunk towards c = 0.05 (a 22% per-step wobble of the rate)
            // with the weight of one step of ~7 expected errors: at low
            // traffic a single error step would otherwise look like
            // enormous dispersion and mute the test.
            let c_hat = ((num + 0.05 * 50.0) / (den + 50.0)).clamp(0.0, 2.0);
            // Widened for its own uncertainty (x1.4 on 30 steps) — but not
            // on a short baseline (fewer than 30 steps: 5-minute metrics),
            // where the shrinkage above stands for that uncertainty at low
            // traffic, and a step sums many shorter ones: widened by x1.8
            // on 6 steps, it kept a x10 error rise at 1-5 req/s from
            // deciding at the second 5-minute step, and spared no healthy
            // window (tuning seeds).
            let c = if usable < 30 {
                c_hat + 0.02
            } else {
                c_hat * (1.0 + 2.0 / nf.sqrt()) + 0.02
            };
            // Slow wander of the rate over minutes (autocorrelated, so not
            // in the per-step dispersion): excess variance of block counts.
            let blocks: Vec<ErrBlock> = data
                .chunks(block)
                .filter(|b| b.len() == block)
                .map(|b| {
                    b.iter().fold(ErrBlock::default(), |k, s| {
                        let mu = s.requests * p0;
                        ErrBlock {
                            dev: k.dev + s.errors.clamp(0.0, s.requests) - mu,
                            var: k.var + mu * (1.0 + c_hat * mu),
                            mu: k.mu + mu,
                        }
                    })
                })
                .collect();
            // Shrunk towards a prior wander of 10% (weight of one block of
            // 10 expected errors): at low traffic the counts cannot tell
            // wander from Poisson noise, and wander matters little there.
            let (num, den) = blocks.iter().fold((0.0, 0.0), |(a, b), k| {
                (a + k.dev * k.dev - k.var, b + k.mu * k.mu)
            });
            let tau = if blocks.len() >= 4 {
                ((num + 0.01 * 100.0) / (den + 100.0)).max(0.0).sqrt()
            } else {
                0.1
            }
            .min(0.5);
            // For the whole-window test, shrunk much harder towards a 12%
            // wander: at low traffic the blocks hold a few errors each and
            // their spread says next to nothing about a wander. The 12% is
            // a prior, not evidence, so it is a floor only where the
            // baseline cannot rule it out: where the blocks' upper
            // confidence bound on the wander lies below it (many errors in
            // many blocks), that bound is the floor instead.
            let floor =
                wander_upper_bound(&blocks).map_or(CUM_WANDER_PRIOR, |u| u.min(CUM_WANDER_PRIOR));
            let tau_cum = ((num + CUM_WANDER_PRIOR * 1000.0) / (den + 1000.0))
                .max(floor)
                .sqrt()
                .min(0.5);
            let p_ref = p_ref * (WANDER_Z * tau).exp();
            let reqs: Vec<f64> = data.iter().map(|s| s.requests).collect();
            ErrStats {
                p0,
                p_ref,
                c,
                n_med: median(&reqs).unwrap_or(0.0),
                e_base: e_tot,
                tau: tau_cum,
            }
        });

        // Latency quantiles, in log space.
        let mut lat = [None; 3];
        for (i, slot) in lat.iter_mut().enumerate() {
            let xs: Vec<f64> = data
                .iter()
                .filter(|s| s.requests > 0.0)
                .filter_map(|s| [s.p50_ms, s.p95_ms, s.p99_ms][i])
                .filter(|v| v.is_finite() && *v > 0.0)
                .map(f64::ln)
                .collect();
            if xs.len() < self.cfg.min_baseline_steps.max(2) {
                continue;
            }
            let k = xs.len() as f64;
            let m0 = median(&xs).unwrap_or(0.0);
            let sig_mad = mad_sigma(&xs, m0);
            // Lag-1 autocorrelation (robustly, from the spread of differences).
            let dif: Vec<f64> = xs.windows(2).map(|w| w[1] - w[0]).collect();
            let sig_dif = mad_sigma(&dif, 0.0) / std::f64::consts::SQRT_2;
            let rho = if sig_mad > 0.0 {
                (1.0 - (sig_dif / sig_mad).powi(2)).clamp(0.0, 0.6)
            } else {
                0.0
            };
            let long_run = ((1.0 + rho) / (1.0 - rho)).sqrt().min(1.6);
            let mut sigma = (sig_mad * long_run * (1.0 + 1.5 / k.sqrt())).max(0.04);
            let sigma_core = sigma;
            // The baseline's own blip steps, which its median and MAD pass
            // over: how often they come and how large they are. A short
            // baseline (fewer than 30 steps: coarse metrics) cannot show a
            // rate; its highest step widens the noise below instead.
            let blips = if xs.len() >= 30 {
                blip_process(&xs, m0)
            } else {
                Blips::default()
            };
            // A few baseline steps (coarse metrics: 6 steps of 5 minutes)
            // cannot show a tail to a median absolute deviation, yet a
            // worst-of-merged quantile has one: a blip inside any of the
            // merged steps. The baseline's highest step must then be an
            // ordinary deviation, not a 5-sigma event.
            if xs.len() < 30 {
                let top = xs.iter().copied().fold(f64::MIN, f64::max) - m0;
                sigma = sigma.max(top / ((2.0 * k.ln()).sqrt() + 1.0));
            }
            // Slow wander of the level: variance of block means beyond the
            // per-step noise.
            // At coarse steps a single blip step (a worst-of-merged
            // quantile) is far out and no wander: steps are clipped to six
            // MADs before block means are taken, or one blip in the
            // baseline would hide a real shift behind the wander allowance.
            let coarse = steps_needed <= 2.0 && (xs.len() < 30 || dt >= COARSE_S);
            let lim = if coarse {
                6.0 * sig_mad.max(0.02)
            } else {
                f64::INFINITY
            };
            let clip = |x: f64| x.clamp(m0 - lim, m0 + lim);
            let bl: Vec<(f64, f64)> = xs
                .chunks(block)
                .filter(|b| b.len() == block)
                .map(|b| {
                    let mb = b.iter().map(|x| clip(*x)).sum::<f64>() / b.len() as f64;
                    ((mb - m0).powi(2) - sig_dif * sig_dif / b.len() as f64, 1.0)
                })
                .collect();
            // Too few blocks to see a wander (coarse steps, a short
            // baseline): the per-step spread already holds it.
            let tau = block_excess_var(&bl).map_or(0.0, f64::sqrt).min(0.3);
            let m_ref = m0 + 1.25 * sigma / k.sqrt() + LAT_WANDER_Z * tau;
            let m_ref_core = m0 + 1.25 * sigma_core / k.sqrt() + LAT_WANDER_Z * tau;
            // Coarse steps (a call could come from two steps): a step's
            // quantile is then often the worst of many shorter ones, so a
            // blip of seconds makes a whole step look slow, and two such
            // steps in a row look like a shift. A baseline cannot show how
            // often that happens (at 5-minute steps it holds 6 steps; at
            // 1-minute steps its 30 still let two blips in a row through
            // in 2-3% of healthy windows; see `COARSE_S`), so a latency call needs evidence
            // spanning one step more than the other tests (at 5-minute
            // steps the third slow step, at 1-minute steps the third
            // minute) — unless it is a steady shift since the deploy (see
            // `since_deploy`). A false alarm at 3 a.m. costs more trust
            // than five more minutes of a slower service; errors and
            // throughput still decide by the second step.
            let cap_rate = if coarse {
                h * (1.0 + 1e-9) / ((steps_needed + 1.0) * dt)
            } else {
                lat_cap_rate
            };
            *slot = Some(LatStats {
                m: m0,
                m_ref,
                m_ref_core,
                sigma,
                sigma_core,
                cap_rate,
                deploy_rate: lat_cap_rate,
                blips,
            });
        }

        let lat_rho = quantile_correlation(&data, &lat);
        let pool_blips = pooled_blips(&data, &lat);

        // Throughput: requests per second and their overdispersion.
        let mut per_s = Vec::new();
        let mut per_step = Vec::new();
        let mut prev: Option<f64> = None;
        for s in &rows {
            let step = prev
                .map(|p| s.t - p)
                .unwrap_or(dt)
                .clamp(0.25 * dt, 4.0 * dt);
            prev = Some(s.t);
            if is_data(s) {
                per_s.push(s.requests / step);
                per_step.push(s.requests);
            }
        }
        // The baseline's seasonal reference: how today's baseline compares
        // with the reference over the steps where both have data.
        let (mut b_n, mut r_n, mut paired) = (0.0, 0.0, 0usize);
        for (s, r) in self.baseline.iter().zip(&self.baseline_ref) {
            if let Some(r) = r
                && s.t > lo
                && is_data(s)
            {
                b_n += s.requests;
                r_n += r;
                paired += 1;
            }
        }
        let ref_k = (paired >= self.cfg.min_baseline_steps.max(2) && b_n > 0.0 && r_n > 0.0)
            .then(|| b_n / r_n);
        let thr = median(&per_s).filter(|r| *r > 0.0).map(|rate| {
            let lam = rate * dt;
            let var = mad_sigma(&per_step, lam).powi(2);
            let c_hat = ((var - lam) / (lam * lam)).max(0.0);
            // The baseline's own lows (its 5th percentile), when they go
            // deeper than the configured floor.
            let mut sorted = per_s.clone();
            sorted.sort_by(f64::total_cmp);
            let low = sorted[sorted.len() / 20] / rate;
            ThrStats {
                rate,
                c: c_hat * (1.0 + 2.0 / nf.sqrt()) + 0.01,
                per_step: lam,
                floor: self.cfg.dip_floor.clamp(0.01, 1.0).min(low.max(0.01)),
                ref_k,
            }
        });

        Model {
            dt,
            h,
            h_dep,
            cap_rate,
            warm_rate,
            err,
            lat,
            thr,
            usable,
            pairs: steps_needed <= 2.0,
            lat_rho,
            pool_blips,
        }
    }

    /// Centre, normal band and regression threshold per signal, for charts.
    /// Before the first window sample this summarises the baseline so far.
    /// For `requests` the threshold is the level *below* which throughput
    /// counts as collapsed.
    pub fn baseline(&self) -> BaselineSummary {
        let model = match &self.model {
            Some(m) => m.clone(),
            None => self.build_model(self.baseline.last().map(|s| s.t).unwrap_or(0.0) + 1.0),
        };
        let mut out = BaselineSummary::default();
        if let Some(es) = model.err {
            let n = es.n_med.max(1.0);
            let sd = (es.p0 / n + es.c * es.p0 * es.p0).sqrt();
            let r = ERR_RATIOS[0];
            let mut threshold = es.p_ref * (r - 1.0) / r.ln();
            if let Some(max) = self.cfg.max_error_rate {
                threshold = threshold.min(max);
            }
            out.error_rate = Some(Band {
                center: es.p0,
                low: (es.p0 - 2.0 * sd).max(0.0),
                high: es.p0 + 2.0 * sd,
                threshold: Some(threshold),
            });
        }
        let maxes = [
            self.cfg.max_p50_ms,
            self.cfg.max_p95_ms,
            self.cfg.max_p99_ms,
        ];
        let bands: Vec<Option<Band>> = (0..3)
            .map(|i| {
                model.lat[i].map(|ls| {
                    let mut threshold = (ls.m_ref + LAT_DELTA / 2.0).exp();
                    if let Some(max) = maxes[i] {
                        threshold = threshold.min(max);
                    }
                    Band {
                        center: ls.m.exp(),
                        low: (ls.m - 2.0 * ls.sigma).exp(),
                        high: (ls.m + 2.0 * ls.sigma).exp(),
                        threshold: Some(threshold),
                    }
                })
            })
            .collect();
        out.p50_ms = bands[0];
        out.p95_ms = bands[1];
        out.p99_ms = bands[2];
        if let Some(ts) = model.thr {
            let sd = (ts.per_step + ts.c * ts.per_step * ts.per_step).sqrt();
            let r = COLLAPSE_RATIO;
            out.requests = Some(Band {
                center: ts.per_step,
                low: (ts.per_step - 2.0 * sd).max(0.0),
                high: ts.per_step + 2.0 * sd,
                // Below this, traffic alone is a collapse (far under the
                // deepest healthy dip); a shallower fall needs other evidence.
                threshold: Some(ts.floor * ts.per_step * (r - 1.0) / r.ln()),
            });
        }
        out
    }
}

/// The blip process of log quantiles `xs` with median `m0`: the share of
/// steps more than [`BLIP_Z`] standard deviations of the ordinary steps'
/// noise above their level, and the mean and spread of their excess over
/// `m0`. A pause only ever slows a step, so the ordinary steps' level and
/// noise come from the lower quantiles (10th and 25th), which blips in up
/// to three quarters of the steps leave alone: at one-minute steps half of
/// a GC-pausing service's p99 steps hold a pause, and their median and
/// MAD then sit between the two.
fn blip_process(xs: &[f64], m0: f64) -> Blips {
    let mut sorted = xs.to_vec();
    sorted.sort_by(f64::total_cmp);
    let k = sorted.len();
    let at = |q: f64| sorted[((q * (k - 1) as f64).round() as usize).min(k - 1)];
    let (q10, q25) = (at(0.10), at(0.25));
    let sd = ((q25 - q10) / 0.6071).max(0.02);
    let level = q25 + 0.6745 * sd;
    let above = level + BLIP_Z * sd * (1.0 + 1.5 / (k as f64).sqrt());
    let ex: Vec<f64> = xs.iter().filter(|x| **x > above).map(|x| x - m0).collect();
    if ex.is_empty() {
        return Blips::default();
    }
    let nb = ex.len() as f64;
    let mean = ex.iter().sum::<f64>() / nb;
    let var = ex.iter().map(|e| (e - mean).powi(2)).sum::<f64>() / (nb - 1.0).max(1.0);
    Blips {
        share: nb / xs.len() as f64,
        mean,
        sd: var.sqrt().max(BLIP_SD),
    }
}

/// The blip process of the pooled latency test's deviation (see
/// `Detector::pooled`): the baseline steps' log-quantile deviations from
/// their medians, averaged with the pool's inverse-variance weights, over
/// the steps that carry every quantile with a baseline. A pause that
/// triples p99 and lifts p95 lifts the pool too. None (no blips) below
/// 30 such steps or with fewer than two quantiles.
fn pooled_blips(data: &[&Sample], lat: &[Option<LatStats>; 3]) -> Blips {
    let parts: Vec<(usize, LatStats)> = lat
        .iter()
        .enumerate()
        .filter_map(|(i, l)| l.map(|l| (i, l)))
        .collect();
    if parts.len() < 2 {
        return Blips::default();
    }
    let wsum: f64 = parts.iter().map(|(_, l)| 1.0 / (l.sigma * l.sigma)).sum();
    let xs: Vec<f64> = data
        .iter()
        .filter(|s| s.requests > 0.0)
        .filter_map(|s| {
            let q = [s.p50_ms, s.p95_ms, s.p99_ms];
            parts.iter().try_fold(0.0, |acc, (i, l)| {
                let v = q[*i].filter(|v| v.is_finite() && *v > 0.0)?;
                Some(acc + (v.ln() - l.m) / (l.sigma * l.sigma) / wsum)
            })
        })
        .collect();
    if xs.len() < 30 {
        return Blips::default();
    }
    let m0 = median(&xs).unwrap_or(0.0);
    let mut b = blip_process(&xs, m0);
    // Measured from the quantiles' own medians, as the pool's level is.
    b.mean += m0;
    b
}

/// One block of baseline steps for the error wander: the errors' deviation
/// from the pooled rate, the variance per-step noise gives that deviation,
/// and the expected errors.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct ErrBlock {
    pub(super) dev: f64,
    pub(super) var: f64,
    pub(super) mu: f64,
}

/// An upper confidence bound on the squared relative wander `τ²` of the
/// error rate that the blocks show (`None` with fewer than four blocks):
/// the largest `τ²` that their deviations do not rule out, i.e. at which
/// `S(τ²) = Σ dev² / (var + τ² mu²)` (chi-square with one degree per
/// block when `τ²` is the truth) is still above its lower
/// [`WANDER_UCB_Z`]-sigma quantile. Neighbouring blocks share a slow
/// wander, so they count as fewer independent ones (`n (1 - ρ) / (1 + ρ)`
/// for the lag-1 correlation `ρ` of their standardised deviations). Many
/// errors in many blocks give a bound near the estimate; a dozen errors,
/// or few independent blocks, give one far above any prior.
pub(super) fn wander_upper_bound(blocks: &[ErrBlock]) -> Option<f64> {
    if blocks.len() < 4 || blocks.iter().any(|k| k.var <= 0.0) {
        return None;
    }
    let s = |u: f64| -> f64 {
        blocks
            .iter()
            .map(|k| k.dev * k.dev / (k.var + u * k.mu * k.mu))
            .sum()
    };
    let den: f64 = blocks.iter().map(|k| k.mu * k.mu).sum();
    let est = (blocks.iter().map(|k| k.dev * k.dev - k.var).sum::<f64>() / den).max(0.0);
    let zs: Vec<f64> = blocks
        .iter()
        .map(|k| k.dev / (k.var + est * k.mu * k.mu).sqrt())
        .collect();
    let ss: f64 = zs.iter().map(|z| z * z).sum();
    let rho = if ss > 0.0 {
        (zs.windows(2).map(|w| w[0] * w[1]).sum::<f64>() / ss).clamp(0.0, 0.9)
    } else {
        0.0
    };
    let n = blocks.len() as f64;
    let k = n * (1.0 - rho) / (1.0 + rho);
    // Lower quantile of chi-square with k degrees (Wilson-Hilferty), and
    // S scaled to k degrees.
    let g = 2.0 / (9.0 * k);
    let q = k * (1.0 - g - WANDER_UCB_Z * g.sqrt()).max(0.0).powi(3);
    let fit = |u: f64| s(u) * k / n;
    if q <= 0.0 || fit(1.0) > q {
        return Some(1.0); // nothing ruled out short of a 100% wander
    }
    if fit(0.0) <= q {
        return Some(0.0); // steadier than the counts' own noise
    }
    // fit falls as τ² grows: bisect for fit(u) = q.
    let (mut lo, mut hi) = (0.0, 1.0);
    for _ in 0..60 {
        let mid = 0.5 * (lo + hi);
        if fit(mid) > q {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    Some(hi)
}

/// Slow wander of a level, from blocks of consecutive baseline steps: the
/// variance of the block values beyond what per-step noise explains.
/// Returns `None` with fewer than 4 blocks.
fn block_excess_var(blocks: &[(f64, f64)]) -> Option<f64> {
    if blocks.len() < 4 {
        return None;
    }
    let (num, den) = blocks.iter().fold((0.0, 0.0), |(a, b), (excess, weight)| {
        (a + excess, b + weight)
    });
    Some(if den > 0.0 { (num / den).max(0.0) } else { 0.0 })
}

/// How much the three log quantiles move together from step to step: the
/// largest of their pairwise correlations over the baseline's steps,
/// each estimated robustly (from the spread of the sum and of the
/// difference of the two standardised series, so that a blip step does
/// not decide it). 1 (no independent evidence) with fewer than 10 steps
/// that carry all three quantiles, or fewer than two quantiles.
fn quantile_correlation(data: &[&Sample], lat: &[Option<LatStats>; 3]) -> f64 {
    let rows: Vec<[f64; 3]> = data
        .iter()
        .filter(|s| s.requests > 0.0)
        .filter_map(|s| {
            let q = [s.p50_ms, s.p95_ms, s.p99_ms];
            let mut x = [0.0; 3];
            for i in 0..3 {
                let v = q[i].filter(|v| v.is_finite() && *v > 0.0)?;
                x[i] = v.ln();
            }
            Some(x)
        })
        .collect();
    if rows.len() < 10 || lat.iter().filter(|l| l.is_some()).count() < 2 {
        return 1.0;
    }
    let col = |i: usize| -> Vec<f64> {
        let xs: Vec<f64> = rows.iter().map(|r| r[i]).collect();
        let m = median(&xs).unwrap_or(0.0);
        let s = mad_sigma(&xs, m).max(1e-6);
        xs.iter().map(|x| (x - m) / s).collect()
    };
    let z = [col(0), col(1), col(2)];
    let mut rho = f64::MIN;
    for (i, j) in [(0, 1), (0, 2), (1, 2)] {
        let sum: Vec<f64> = z[i].iter().zip(&z[j]).map(|(a, b)| a + b).collect();
        let dif: Vec<f64> = z[i].iter().zip(&z[j]).map(|(a, b)| a - b).collect();
        let (vs, vd) = (
            mad_sigma(&sum, median(&sum).unwrap_or(0.0)).powi(2),
            mad_sigma(&dif, median(&dif).unwrap_or(0.0)).powi(2),
        );
        if vs + vd > 0.0 {
            rho = rho.max((vs - vd) / (vs + vd));
        }
    }
    if rho == f64::MIN {
        1.0
    } else {
        rho.clamp(0.0, 1.0)
    }
}
