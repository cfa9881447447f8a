//! Fault injection: error rates, latency with jitter, dropped connections, 429 storms and outages,
//! optionally limited to some endpoints, deterministic for a given seed.

use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

/// What a client configures through `POST /_sandbox/faults` (JSON).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FaultConfig {
    /// Seed for the fault decisions: the same seed and request sequence give the same faults.
    pub seed: u64,
    /// Fraction of requests answered with a server error (before they take effect).
    pub error_rate: f64,
    /// Statuses to choose from for injected errors (default 500, 502, 503).
    pub error_statuses: Vec<u16>,
    /// Fraction of requests answered 429 (`rate_limit`, as in a rate-limit storm).
    pub rate_limit_rate: f64,
    /// Fraction of requests whose connection is dropped without a response.
    pub drop_rate: f64,
    /// Drop the connection *after* the request took effect (the client cannot know it did).
    pub drop_after_apply: bool,
    /// Added latency in milliseconds…
    pub latency_ms: u64,
    /// …plus a uniform random jitter up to this many milliseconds.
    pub jitter_ms: u64,
    /// Answer every request 503 for this many seconds from now.
    pub outage_seconds: u64,
    /// Only requests whose `"METHOD /path"` starts with one of these are affected (all when empty).
    pub endpoints: Vec<String>,
    /// Faults switch themselves off after this many seconds (0 = until cleared).
    pub duration_seconds: u64,
}

/// What to do to one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Serve it normally.
    None,
    /// Answer with this server-error status.
    Error(u16),
    /// Answer 429.
    RateLimit,
    /// Drop the connection before the request takes effect.
    DropBefore,
    /// Let the request take effect, then drop the connection.
    DropAfter,
}

/// Live fault state.
pub struct Faults {
    config: FaultConfig,
    rng: StdRng,
    configured_at: Instant,
}

impl Default for Faults {
    fn default() -> Self {
        Self::new(FaultConfig::default())
    }
}

impl Faults {
    /// Installs a configuration, restarting the seeded sequence.
    pub fn new(config: FaultConfig) -> Self {
        Self {
            rng: StdRng::seed_from_u64(config.seed),
            config,
            configured_at: Instant::now(),
        }
    }

    /// The configuration in force.
    pub fn config(&self) -> &FaultConfig {
        &self.config
    }

    fn expired(&self) -> bool {
        self.config.duration_seconds > 0
            && self.configured_at.elapsed() > Duration::from_secs(self.config.duration_seconds)
    }

    /// Decides the fault and the added latency for one request.
    pub fn decide(&mut self, endpoint: &str) -> (Fault, Duration) {
        if self.expired() {
            return (Fault::None, Duration::ZERO);
        }
        let c = &self.config;
        if !c.endpoints.is_empty() && !c.endpoints.iter().any(|e| endpoint.starts_with(e.as_str()))
        {
            return (Fault::None, Duration::ZERO);
        }
        let mut latency = Duration::from_millis(c.latency_ms);
        if c.jitter_ms > 0 {
            latency += Duration::from_millis(self.rng.gen_range(0..=c.jitter_ms));
        }
        if c.outage_seconds > 0
            && self.configured_at.elapsed() < Duration::from_secs(c.outage_seconds)
        {
            return (Fault::Error(503), latency);
        }
        let roll: f64 = self.rng.r#gen();
        let fault = if roll < c.error_rate {
            let statuses = if c.error_statuses.is_empty() {
                &[500, 502, 503][..]
            } else {
                &c.error_statuses[..]
            };
            Fault::Error(statuses[self.rng.gen_range(0..statuses.len())])
        } else if roll < c.error_rate + c.rate_limit_rate {
            Fault::RateLimit
        } else if roll < c.error_rate + c.rate_limit_rate + c.drop_rate {
            if c.drop_after_apply {
                Fault::DropAfter
            } else {
                Fault::DropBefore
            }
        } else {
            Fault::None
        };
        (fault, latency)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_faults() {
        let config = FaultConfig {
            seed: 7,
            error_rate: 0.3,
            drop_rate: 0.1,
            ..Default::default()
        };
        let run = || {
            let mut f = Faults::new(config.clone());
            (0..200)
                .map(|_| f.decide("POST /v1/products").0)
                .collect::<Vec<_>>()
        };
        let a = run();
        assert_eq!(a, run());
        let errors = a.iter().filter(|f| matches!(f, Fault::Error(_))).count();
        assert!((30..90).contains(&errors), "{errors} errors of 200 at 30%");
    }

    #[test]
    fn endpoint_filter_limits_faults() {
        let mut f = Faults::new(FaultConfig {
            error_rate: 1.0,
            endpoints: vec!["POST /v1/prices".into()],
            ..Default::default()
        });
        assert_eq!(f.decide("GET /v1/products").0, Fault::None);
        assert!(matches!(f.decide("POST /v1/prices").0, Fault::Error(_)));
    }
}
