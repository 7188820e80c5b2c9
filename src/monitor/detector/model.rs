//! What the detector learned from the baseline, per signal: the error
//! rate's level, dispersion and wander, each latency quantile's level,
//! noise and blip process, the traffic's level and floor, and the model
//! that holds them with the thresholds (built in `baseline.rs`).

#[derive(Clone, Copy, Debug)]
pub(super) struct ErrStats {
    /// Pooled baseline error rate.
    pub(super) p0: f64,
    /// Conservative reference rate (p0 widened by its own uncertainty).
    pub(super) p_ref: f64,
    /// Overdispersion: Var(e) = mu (1 + c mu).
    pub(super) c: f64,
    /// Median requests per step (for the drawing band).
    pub(super) n_med: f64,
    /// Baseline errors (the precision of `p0`).
    pub(super) e_base: f64,
    /// Slow wander of the rate (log sd) for the whole-window test.
    pub(super) tau: f64,
}

#[derive(Clone, Copy, Debug)]
pub(super) struct LatStats {
    /// Median of log latency.
    pub(super) m: f64,
    /// Reference level (median widened by its uncertainty).
    pub(super) m_ref: f64,
    /// Effective noise of log latency per step.
    pub(super) sigma: f64,
    /// The same before a short baseline's highest step widened it (see
    /// `build_model`): what a steady shift since the deploy is judged by.
    pub(super) sigma_core: f64,
    /// The reference level with `sigma_core` for its uncertainty.
    pub(super) m_ref_core: f64,
    /// Most evidence one second of a step may bring to this quantile's
    /// tests: no slack, so that a latency call needs every one of its
    /// steps strongly off (at coarse steps a worst-of-merged quantile holds
    /// any 10-second blip inside the step, and one such step plus one
    /// noisy step must not decide); less still at coarse steps with a
    /// short baseline (see `build_model`).
    pub(super) cap_rate: f64,
    /// The same for a shift seen in every step since the deploy (see
    /// [`Detector::since_deploy`](super::Detector::since_deploy)): `cap_rate` but for the extra step of
    /// coarse steps with a short baseline.
    pub(super) deploy_rate: f64,
    /// The baseline's own blip steps (GC pauses, a slow dependency's
    /// hiccups): how often and how large (see [`Blips`]).
    pub(super) blips: Blips,
}

/// A latency quantile's blip process, as the baseline showed it: steps
/// far above its level (beyond [`BLIP_Z`](super::BLIP_Z) of its robust noise), their
/// share of the baseline's steps and the mean and spread of their log
/// excess over the median. The latency tests' null is then a mixture —
/// an ordinary step, or with probability `share` a blip of that size — so
/// a slow step is evidence of a shift only as far as the blip process
/// cannot explain it: a few pause steps close together are what the
/// baseline itself produces, a run of them at the blip rate's improbable
/// length is not (see [`lat_llr`](super::latency::lat_llr)). `share` 0: no blips, the plain
/// Gaussian test.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct Blips {
    pub(super) share: f64,
    /// Mean log excess of a blip step over the baseline median.
    pub(super) mean: f64,
    /// Their spread (floored: a few blips cannot show it).
    pub(super) sd: f64,
}

#[derive(Clone, Copy, Debug)]
pub(super) struct ThrStats {
    /// Median requests per second.
    pub(super) rate: f64,
    /// Overdispersion of requests per step.
    pub(super) c: f64,
    /// Median requests per step.
    pub(super) per_step: f64,
    /// Deepest level a healthy dip may reach, as a fraction of the expected
    /// traffic: the configured floor or the baseline's own lows.
    pub(super) floor: f64,
    /// Baseline requests over the reference's requests for the same steps,
    /// when the caller supplied a reference for the baseline.
    pub(super) ref_k: Option<f64>,
}

#[derive(Clone, Debug)]
pub(super) struct Model {
    pub(super) dt: f64,
    /// Threshold of the CUSUMs (a change at any time in the window).
    pub(super) h: f64,
    /// Threshold of the same evidence summed since the deploy (a change
    /// that came with the deploy), see [`DEPLOY_SHARE`](super::DEPLOY_SHARE).
    pub(super) h_dep: f64,
    /// Most evidence one second of a step may bring, outside and inside the
    /// warm-up.
    pub(super) cap_rate: f64,
    pub(super) warm_rate: f64,
    pub(super) err: Option<ErrStats>,
    pub(super) lat: [Option<LatStats>; 3],
    pub(super) thr: Option<ThrStats>,
    pub(super) usable: usize,
    /// Two steps are the least a call needs (1- and 5-minute metrics): two
    /// steps that agree on an error rise count in full (see
    /// [`Detector::err_pair`](super::Detector::err_pair)).
    pub(super) pairs: bool,
    /// How much the three log quantiles move together from step to step
    /// (the largest robust pairwise correlation of the baseline; 1 when
    /// unknown): what the pooled latency test counts their evidence by.
    pub(super) lat_rho: f64,
    /// The pooled latency deviation's blip process in the baseline (see
    /// [`Blips`]).
    pub(super) pool_blips: Blips,
}
