//! The detector's settings. `[monitor]` is mapped onto them in one place
//! (`config`), for the live window and `replay --config` alike.

/// Settings of the detector. `Default` is the SPEC's default monitoring
/// window: 30 min of baseline, 30 min of window, no absolute guards.
#[derive(Clone, Debug, PartialEq)]
pub struct DetectorConfig {
    /// Seconds of pre-deploy data used as the baseline.
    pub baseline_s: f64,
    /// Length of the monitoring window in seconds; later samples are ignored.
    pub window_s: f64,
    /// Hard limit on the error rate (0.05 = 5%).
    pub max_error_rate: Option<f64>,
    pub max_p50_ms: Option<f64>,
    pub max_p95_ms: Option<f64>,
    pub max_p99_ms: Option<f64>,
    /// Breaching steps in a row before a hard guard fires.
    pub guard_steps: usize,
    /// Gaps in a row before the verdict becomes `InsufficientData`.
    pub gap_steps: usize,
    /// Seconds after the deploy during which a warm-up is tolerated: the
    /// seconds of any step that fall in this period bring less evidence (at
    /// most 3/4 of the alarm threshold in all), whatever the step length —
    /// unless the signal is steady, not fading as a warm-up does (see the module
    /// documentation).
    pub warmup_s: f64,
    /// A statistical alarm needs evidence spanning more than this many
    /// seconds, and never a single step alone (3 steps at 10 s, 2 at 60 s).
    pub min_evidence_s: f64,
    /// Nominal false-alarm probability per window on well-behaved noise; sets
    /// the CUSUM threshold together with the window length.
    pub false_alarm: f64,
    /// Usable baseline steps needed before judging at all.
    pub min_baseline_steps: usize,
    /// Traffic may legitimately fall to this fraction of its baseline (a
    /// batch client stops, the evening slide): 0.3 tolerates dips of 70%.
    /// A collapse on traffic alone must fall far below this (or below the
    /// baseline's own lows, when they are lower).
    pub dip_floor: f64,
    /// A fall in traffic that lasts longer than this without recovering is
    /// no dip, even without other evidence.
    pub max_dip_s: f64,
}

impl Default for DetectorConfig {
    fn default() -> Self {
        DetectorConfig {
            baseline_s: 1800.0,
            window_s: 1800.0,
            max_error_rate: None,
            max_p50_ms: None,
            max_p95_ms: None,
            max_p99_ms: None,
            guard_steps: 3,
            gap_steps: 3,
            warmup_s: 30.0,
            min_evidence_s: 20.0,
            false_alarm: 0.02,
            min_baseline_steps: 5,
            dip_floor: 0.3,
            max_dip_s: 1200.0,
        }
    }
}

impl DetectorConfig {
    /// Usable baseline steps a judgement needs: below this the detector
    /// answers insufficient data (the one figure for "too few").
    pub fn baseline_needed(&self) -> usize {
        self.min_baseline_steps.max(2)
    }
}
