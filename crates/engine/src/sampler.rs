//! Picking the next token from logits: greedy, or temperature sampling after the usual filters
//! (repetition penalty, top-k, top-p, min-p), with a seeded RNG so runs can be repeated.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Sampling settings; the defaults match llama.cpp's.
#[derive(Debug, Clone, PartialEq)]
pub struct SamplerConfig {
    /// 0 or below means greedy.
    pub temperature: f32,
    /// Keep the k most likely tokens; 0 keeps all.
    pub top_k: usize,
    /// Keep the smallest set whose probability reaches p; 1.0 keeps all.
    pub top_p: f32,
    /// Drop tokens less likely than `min_p` times the most likely one; 0 keeps all.
    pub min_p: f32,
    /// Penalty on tokens among the last `repeat_last_n`; 1.0 is off.
    pub repeat_penalty: f32,
    /// How many recent tokens the repetition penalty looks at.
    pub repeat_last_n: usize,
    /// RNG seed.
    pub seed: u64,
}

impl Default for SamplerConfig {
    fn default() -> Self {
        Self { temperature: 0.8, top_k: 40, top_p: 0.95, min_p: 0.05, repeat_penalty: 1.0, repeat_last_n: 64, seed: 0 }
    }
}

impl SamplerConfig {
    /// Greedy decoding: always the most likely token.
    pub fn greedy() -> Self {
        Self { temperature: 0.0, ..Self::default() }
    }
}

/// Errors from sampling.
#[derive(Debug, thiserror::Error)]
pub enum SamplerError {
    #[error("no logits to sample from")]
    Empty,
    #[error("invalid sampler setting: {0}")]
    InvalidSetting(String),
}

/// A sampler with its RNG state.
#[derive(Debug, Clone)]
pub struct Sampler {
    config: SamplerConfig,
    rng: StdRng,
}

impl Sampler {
    /// A sampler for `config`; settings out of range are an error.
    pub fn new(config: SamplerConfig) -> Result<Self, SamplerError> {
        if !config.temperature.is_finite() {
            return Err(SamplerError::InvalidSetting(format!("temperature {}", config.temperature)));
        }
        if !(0.0..=1.0).contains(&config.top_p) {
            return Err(SamplerError::InvalidSetting(format!("top-p {} is not in [0, 1]", config.top_p)));
        }
        if !(0.0..=1.0).contains(&config.min_p) {
            return Err(SamplerError::InvalidSetting(format!("min-p {} is not in [0, 1]", config.min_p)));
        }
        if !(config.repeat_penalty.is_finite() && config.repeat_penalty > 0.0) {
            return Err(SamplerError::InvalidSetting(format!("repeat penalty {}", config.repeat_penalty)));
        }
        let rng = StdRng::seed_from_u64(config.seed);
        Ok(Self { config, rng })
    }

    /// The settings.
    pub fn config(&self) -> &SamplerConfig {
        &self.config
    }

    /// Picks the next token given the logits and the tokens so far (for the repetition penalty).
    pub fn sample(&mut self, logits: &[f32], history: &[u32]) -> Result<u32, SamplerError> {
        if logits.is_empty() {
            return Err(SamplerError::Empty);
        }
        let c = &self.config;
        let mut cands: Vec<(u32, f32)> = logits.iter().enumerate().map(|(i, &l)| (i as u32, l)).collect();
        if c.repeat_penalty != 1.0 {
            let recent = &history[history.len().saturating_sub(c.repeat_last_n)..];
            let mut seen = std::collections::HashSet::new();
            for &t in recent {
                if seen.insert(t)
                    && let Some((_, l)) = cands.get_mut(t as usize)
                {
                    *l = if *l > 0.0 { *l / c.repeat_penalty } else { *l * c.repeat_penalty };
                }
            }
        }
        if c.temperature <= 0.0 {
            return Ok(argmax(&cands));
        }
        // Sort once, most likely first; every filter below keeps a prefix.
        cands.sort_by(|a, b| b.1.total_cmp(&a.1));
        if c.top_k > 0 {
            cands.truncate(c.top_k);
        }
        let max = cands[0].1;
        let mut probs: Vec<f32> = cands.iter().map(|&(_, l)| ((l - max) / c.temperature).exp()).collect();
        let sum: f32 = probs.iter().sum();
        probs.iter_mut().for_each(|p| *p /= sum);
        let mut keep = probs.len();
        if c.top_p < 1.0 {
            let mut acc = 0.0;
            for (i, p) in probs.iter().enumerate() {
                acc += p;
                if acc >= c.top_p {
                    keep = keep.min(i + 1);
                    break;
                }
            }
        }
        if c.min_p > 0.0 {
            let floor = probs[0] * c.min_p;
            keep = keep.min(probs.iter().take_while(|&&p| p >= floor).count().max(1));
        }
        let total: f32 = probs[..keep].iter().sum();
        let mut r = self.rng.random::<f32>() * total;
        for (i, p) in probs[..keep].iter().enumerate() {
            r -= p;
            if r <= 0.0 {
                return Ok(cands[i].0);
            }
        }
        Ok(cands[keep - 1].0)
    }
}

/// The id of the highest logit (the first of equal ones): the greedy choice.
pub fn argmax_logit(logits: &[f32]) -> u32 {
    let mut best = 0;
    for (i, &x) in logits.iter().enumerate() {
        if x > logits[best] {
            best = i;
        }
    }
    best as u32
}

fn argmax(cands: &[(u32, f32)]) -> u32 {
    // First maximum wins on ties, as llama.cpp's greedy sampler does.
    let mut best = cands[0];
    for &c in &cands[1..] {
        if c.1 > best.1 {
            best = c;
        }
    }
    best.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn greedy_takes_the_first_maximum() {
        let mut s = Sampler::new(SamplerConfig::greedy()).unwrap();
        assert_eq!(s.sample(&[0.1, 3.0, 3.0, -1.0], &[]).unwrap(), 1);
    }

    #[test]
    fn repetition_penalty_changes_the_greedy_choice() {
        let cfg = SamplerConfig { repeat_penalty: 2.0, ..SamplerConfig::greedy() };
        let mut s = Sampler::new(cfg).unwrap();
        assert_eq!(s.sample(&[2.0, 1.5], &[0]).unwrap(), 1);
        assert_eq!(s.sample(&[2.0, 1.5], &[1]).unwrap(), 0);
    }

    #[test]
    fn top_k_one_is_greedy() {
        let cfg = SamplerConfig { temperature: 1.0, top_k: 1, ..SamplerConfig::default() };
        let mut s = Sampler::new(cfg).unwrap();
        for _ in 0..50 {
            assert_eq!(s.sample(&[0.0, 0.5, 0.4], &[]).unwrap(), 1);
        }
    }

    #[test]
    fn min_p_removes_unlikely_tokens() {
        let cfg =
            SamplerConfig { temperature: 1.0, top_k: 0, top_p: 1.0, min_p: 0.5, seed: 3, ..SamplerConfig::default() };
        let mut s = Sampler::new(cfg).unwrap();
        for _ in 0..200 {
            let t = s.sample(&[5.0, 4.9, 0.0, -3.0], &[]).unwrap();
            assert!(t < 2, "token {t} is below min-p");
        }
    }

    #[test]
    fn top_p_keeps_the_nucleus() {
        let cfg =
            SamplerConfig { temperature: 1.0, top_k: 0, top_p: 0.5, min_p: 0.0, seed: 9, ..SamplerConfig::default() };
        let mut s = Sampler::new(cfg).unwrap();
        for _ in 0..200 {
            assert_eq!(s.sample(&[4.0, 1.0, 1.0, 1.0], &[]).unwrap(), 0);
        }
    }

    #[test]
    fn same_seed_same_tokens_and_distribution_is_followed() {
        let cfg =
            SamplerConfig { temperature: 1.0, top_k: 0, top_p: 1.0, min_p: 0.0, seed: 42, ..SamplerConfig::default() };
        let logits = [0.0f32, (3.0f32).ln()];
        let run = || {
            let mut s = Sampler::new(cfg.clone()).unwrap();
            (0..4000).map(|_| s.sample(&logits, &[]).unwrap()).collect::<Vec<_>>()
        };
        let a = run();
        assert_eq!(a, run());
        let ones = a.iter().filter(|&&t| t == 1).count() as f64 / a.len() as f64;
        assert!((ones - 0.75).abs() < 0.03, "token 1 drawn {ones} of the time, expected 0.75");
    }

    #[test]
    fn bad_settings_are_rejected() {
        assert!(Sampler::new(SamplerConfig { top_p: 1.5, ..SamplerConfig::default() }).is_err());
        assert!(Sampler::new(SamplerConfig { min_p: -0.1, ..SamplerConfig::default() }).is_err());
        assert!(Sampler::new(SamplerConfig { temperature: f32::NAN, ..SamplerConfig::default() }).is_err());
        let mut s = Sampler::new(SamplerConfig::greedy()).unwrap();
        assert!(matches!(s.sample(&[], &[]), Err(SamplerError::Empty)));
    }
}
