//! The one-sided CUSUM the detector's tests keep per signal, and the sum
//! anchored at the deploy (no reset at zero) beside it.

/// One one-sided CUSUM plus what the reason needs about its current excursion.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct Cusum {
    pub(super) s: f64,
    pub(super) start_t: f64,
    pub(super) steps: u32,
    /// Per-signal sums over the excursion (errors/requests, Σd/count, …).
    pub(super) a: f64,
    pub(super) b: f64,
    pub(super) c: f64,
}

impl Cusum {
    /// Add a step's evidence without the CUSUM's reset at zero: a
    /// likelihood-ratio sum anchored at its first step (see
    /// [`super::Detector::deploy_call`]).
    pub(super) fn add(&mut self, t: f64, llr: f64, a: f64, b: f64, c: f64) {
        if self.steps == 0 {
            self.start_t = t;
        } else if self.s < 0.0 {
            // Retired: the evidence fell below where it began, so no
            // change came with the deploy (a later one is the CUSUM's).
            return;
        }
        self.s += llr;
        self.steps += 1;
        self.a += a;
        self.b += b;
        self.c += c;
    }

    pub(super) fn update(&mut self, t: f64, llr: f64, a: f64, b: f64, c: f64) {
        let next = (self.s + llr).max(0.0);
        if next <= 0.0 {
            *self = Cusum::default();
            return;
        }
        if self.s <= 0.0 {
            self.start_t = t;
            self.steps = 0;
            self.a = 0.0;
            self.b = 0.0;
            self.c = 0.0;
        }
        self.s = next;
        self.steps += 1;
        self.a += a;
        self.b += b;
        self.c += c;
    }
}
