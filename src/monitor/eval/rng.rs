//! A small deterministic PRNG (splitmix64 seeding xoshiro256**) and the
//! samplers the corpus needs: uniform, normal, gamma, Poisson,
//! gamma-Poisson (negative binomial).

#[derive(Clone, Debug)]
pub struct Rng {
    s: [u64; 4],
}

fn splitmix64(x: &mut u64) -> u64 {
    *x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *x;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

impl Rng {
    pub fn new(seed: u64) -> Self {
        let mut x = seed;
        Rng {
            s: [
                splitmix64(&mut x),
                splitmix64(&mut x),
                splitmix64(&mut x),
                splitmix64(&mut x),
            ],
        }
    }

    /// xoshiro256**.
    pub fn next_u64(&mut self) -> u64 {
        let result = self.s[1].wrapping_mul(5).rotate_left(7).wrapping_mul(9);
        let t = self.s[1] << 17;
        self.s[2] ^= self.s[0];
        self.s[3] ^= self.s[1];
        self.s[1] ^= self.s[2];
        self.s[0] ^= self.s[3];
        self.s[2] ^= t;
        self.s[3] = self.s[3].rotate_left(45);
        result
    }

    /// Uniform in [0, 1).
    pub fn f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Uniform in [lo, hi).
    pub fn uniform(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.f64()
    }

    /// Log-uniform in [lo, hi).
    pub fn log_uniform(&mut self, lo: f64, hi: f64) -> f64 {
        self.uniform(lo.ln(), hi.ln()).exp()
    }

    /// Uniform integer in [lo, hi].
    pub fn int(&mut self, lo: i64, hi: i64) -> i64 {
        lo + (self.f64() * (hi - lo + 1) as f64).floor() as i64
    }

    pub fn chance(&mut self, p: f64) -> bool {
        self.f64() < p
    }

    /// Standard normal (Box-Muller).
    pub fn normal(&mut self) -> f64 {
        let u1 = self.f64().max(1e-300);
        let u2 = self.f64();
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }

    /// Gamma(shape, scale = 1) by Marsaglia-Tsang (boosted for shape < 1).
    pub fn gamma(&mut self, shape: f64) -> f64 {
        if shape < 1.0 {
            let u = self.f64().max(1e-300);
            return self.gamma(shape + 1.0) * u.powf(1.0 / shape);
        }
        let d = shape - 1.0 / 3.0;
        let c = 1.0 / (9.0 * d).sqrt();
        loop {
            let x = self.normal();
            let v = 1.0 + c * x;
            if v <= 0.0 {
                continue;
            }
            let v = v * v * v;
            let u = self.f64().max(1e-300);
            if u.ln() < 0.5 * x * x + d - d * v + d * v.ln() {
                return d * v;
            }
        }
    }

    /// A multiplicative noise factor with mean 1 and coefficient of
    /// variation `cv` (a gamma variate).
    pub fn gamma_factor(&mut self, cv: f64) -> f64 {
        if cv <= 0.0 {
            return 1.0;
        }
        let shape = 1.0 / (cv * cv);
        self.gamma(shape) / shape
    }

    /// Poisson(mean): multiplication for small means, a rounded normal for
    /// large ones (where the difference is far below the overdispersion).
    pub fn poisson(&mut self, mean: f64) -> f64 {
        if mean <= 0.0 {
            return 0.0;
        }
        if mean < 60.0 {
            let l = (-mean).exp();
            let mut k = 0.0;
            let mut p = 1.0;
            loop {
                p *= self.f64();
                if p <= l {
                    return k;
                }
                k += 1.0;
            }
        }
        (mean + mean.sqrt() * self.normal()).round().max(0.0)
    }

    /// Gamma-Poisson (negative binomial): Poisson with a gamma-distributed
    /// mean of coefficient of variation `cv`.
    pub fn neg_binomial(&mut self, mean: f64, cv: f64) -> f64 {
        let m = mean * self.gamma_factor(cv);
        self.poisson(m)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::monitor::stats::{mean, sd};

    #[test]
    fn deterministic_per_seed() {
        let a: Vec<u64> = (0..5)
            .map({
                let mut r = Rng::new(7);
                move |_| r.next_u64()
            })
            .collect();
        let b: Vec<u64> = (0..5)
            .map({
                let mut r = Rng::new(7);
                move |_| r.next_u64()
            })
            .collect();
        assert_eq!(a, b);
        assert_ne!(Rng::new(7).next_u64(), Rng::new(8).next_u64());
    }

    #[test]
    fn sampler_moments() {
        let mut r = Rng::new(42);
        let n: Vec<f64> = (0..20000).map(|_| r.normal()).collect();
        assert!(mean(&n).abs() < 0.03 && (sd(&n) - 1.0).abs() < 0.03);
        let g: Vec<f64> = (0..20000).map(|_| r.gamma(3.0)).collect();
        assert!((mean(&g) - 3.0).abs() < 0.06, "{}", mean(&g));
        let g: Vec<f64> = (0..20000).map(|_| r.gamma(0.5)).collect();
        assert!((mean(&g) - 0.5).abs() < 0.03, "{}", mean(&g));
        let p: Vec<f64> = (0..20000).map(|_| r.poisson(4.0)).collect();
        assert!((mean(&p) - 4.0).abs() < 0.06 && (sd(&p).powi(2) - 4.0).abs() < 0.25);
        let p: Vec<f64> = (0..20000).map(|_| r.poisson(900.0)).collect();
        assert!((mean(&p) - 900.0).abs() < 1.0 && (sd(&p) - 30.0).abs() < 1.0);
        // Negative binomial: Var = m + cv² m².
        let nb: Vec<f64> = (0..20000).map(|_| r.neg_binomial(50.0, 0.5)).collect();
        let var = sd(&nb).powi(2);
        assert!(
            (mean(&nb) - 50.0).abs() < 1.0 && (var - (50.0 + 625.0)).abs() < 60.0,
            "{var}"
        );
    }
}
