//! Sampling parameters common to both APIs, checked and turned into the engine's settings.
//! Parameters a request leaves out take llama.cpp's defaults (as `llama-server` does).

use hearth_engine::sampler::SamplerConfig;

use crate::config::Limits;

/// Sampling parameters as a request gives them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SamplingParams {
    /// 0 is greedy.
    pub temperature: Option<f32>,
    /// Nucleus sampling.
    pub top_p: Option<f32>,
    /// Keep the k most likely tokens (0: all).
    pub top_k: Option<i64>,
    /// Drop tokens below min_p times the most likely one.
    pub min_p: Option<f32>,
    /// Penalty on recently used tokens (1: off).
    pub repeat_penalty: Option<f32>,
    /// RNG seed (default: a fresh one per request).
    pub seed: Option<i64>,
}

impl SamplingParams {
    /// The engine's sampler settings; an out-of-range value is an error naming it.
    pub fn to_config(&self, max_temperature: f32) -> Result<SamplerConfig, String> {
        let d = SamplerConfig::default();
        let temperature = self.temperature.unwrap_or(d.temperature);
        if !(0.0..=max_temperature).contains(&temperature) {
            return Err(format!("temperature: {temperature} is not between 0 and {max_temperature}"));
        }
        let top_p = self.top_p.unwrap_or(d.top_p);
        if !(0.0..=1.0).contains(&top_p) {
            return Err(format!("top_p: {top_p} is not between 0 and 1"));
        }
        let min_p = self.min_p.unwrap_or(d.min_p);
        if !(0.0..=1.0).contains(&min_p) {
            return Err(format!("min_p: {min_p} is not between 0 and 1"));
        }
        let top_k = match self.top_k {
            None => d.top_k,
            Some(k) => usize::try_from(k).map_err(|_| format!("top_k: {k} is negative"))?,
        };
        let repeat_penalty = self.repeat_penalty.unwrap_or(d.repeat_penalty);
        if !(repeat_penalty.is_finite() && repeat_penalty > 0.0) {
            return Err(format!("repeat_penalty: {repeat_penalty} is not above 0"));
        }
        let seed = self.seed.map_or_else(rand::random, |s| s as u64);
        Ok(SamplerConfig { temperature, top_k, top_p, min_p, repeat_penalty, seed, ..d })
    }
}

/// The number of tokens to generate: `requested` (named `field` in the request) checked against
/// the server's limit, or the default.
pub fn max_tokens(requested: Option<i64>, field: &str, limits: &Limits) -> Result<usize, String> {
    match requested {
        None => Ok(limits.default_max_tokens),
        Some(n) if n < 1 => Err(format!("{field}: {n} is below 1")),
        Some(n) if n as u64 > limits.max_tokens as u64 => {
            Err(format!("{field}: {n} is over this server's limit of {}", limits.max_tokens))
        }
        Some(n) => Ok(n as usize),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_llama_cpps_and_ranges_are_checked() {
        let c = SamplingParams { seed: Some(7), ..Default::default() }.to_config(2.0);
        assert_eq!(c, Ok(SamplerConfig { seed: 7, ..SamplerConfig::default() }));
        let bad = SamplingParams { temperature: Some(3.0), ..Default::default() }.to_config(2.0);
        assert!(bad.is_err_and(|e| e.starts_with("temperature")));
        let bad = SamplingParams { top_k: Some(-1), ..Default::default() }.to_config(2.0);
        assert!(bad.is_err_and(|e| e.starts_with("top_k")));
        let bad = SamplingParams { top_p: Some(1.5), ..Default::default() }.to_config(2.0);
        assert!(bad.is_err_and(|e| e.starts_with("top_p")));
    }

    #[test]
    fn token_limits() {
        let limits = Limits { max_tokens: 100, default_max_tokens: 10, ..Limits::default() };
        assert_eq!(max_tokens(None, "max_tokens", &limits), Ok(10));
        assert_eq!(max_tokens(Some(100), "max_tokens", &limits), Ok(100));
        assert!(max_tokens(Some(101), "max_tokens", &limits).is_err_and(|e| e.contains("limit of 100")));
        assert!(max_tokens(Some(0), "max_tokens", &limits).is_err());
    }
}
