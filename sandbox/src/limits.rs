//! Stripe's rate limiters, as its documentation describes them (read 2026-12): a **global** limit
//! per account (100 requests/s in live mode, 25 in sandboxes), and on top of it a limit per API
//! **endpoint** (25 requests/s by default), where each named operation is one endpoint:
//! `POST /v1/prices` and `POST /v1/prices/{id}` are two, and requests for different ids share
//! one. A request must pass both; a refusal is a 429 whose `Stripe-Rate-Limited-Reason` names
//! the limiter (`global-rate`, `endpoint-rate`). Each limiter is a token bucket holding one
//! second of its rate, per API key (one key, one account here).

use std::collections::{BTreeMap, HashMap};
use std::time::Instant;

use serde::{Deserialize, Serialize};

/// The limits in force (0 turns a limiter off).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Limits {
    /// Requests per second per account, all endpoints together: 25 as a Stripe sandbox, 100 as
    /// live mode.
    pub global: u32,
    /// Requests per second per endpoint, unless `endpoints` says otherwise (Stripe: 25).
    pub per_endpoint: u32,
    /// Endpoints with a limit of their own, e.g. `"POST /v1/prices": 50`.
    #[serde(default)]
    pub endpoints: BTreeMap<String, u32>,
}

impl Limits {
    /// Stripe's limits in a sandbox (test mode): 25/s globally, 25/s per endpoint.
    pub fn sandbox() -> Self {
        Self {
            global: 25,
            per_endpoint: 25,
            endpoints: BTreeMap::new(),
        }
    }

    /// No limits.
    pub fn off() -> Self {
        Self::default()
    }

    fn endpoint(&self, endpoint: &str) -> u32 {
        self.endpoints
            .get(endpoint)
            .copied()
            .unwrap_or(self.per_endpoint)
    }
}

/// Which limiter refused a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Refusal {
    /// The account's limit over all endpoints.
    GlobalRate,
    /// The endpoint's own limit.
    EndpointRate,
}

impl Refusal {
    /// Stripe's `Stripe-Rate-Limited-Reason` for it.
    pub fn reason(self) -> &'static str {
        match self {
            Self::GlobalRate => "global-rate",
            Self::EndpointRate => "endpoint-rate",
        }
    }
}

struct Bucket {
    tokens: f64,
    last: Instant,
}

impl Bucket {
    /// Refills for the time passed (at most one second's worth); whether a token is there.
    fn refill(&mut self, rate: u32, now: Instant) -> bool {
        let rate = f64::from(rate);
        self.tokens = (self.tokens + now.duration_since(self.last).as_secs_f64() * rate).min(rate);
        self.last = now;
        self.tokens >= 1.0
    }
}

/// The buckets of every key and endpoint.
#[derive(Default)]
pub struct Limiter {
    buckets: HashMap<(String, Option<String>), Bucket>,
}

impl Limiter {
    /// Takes a token from the key's global bucket and its endpoint's, or refuses naming the
    /// limiter that has none (a refused request takes no token from either).
    pub fn admit(&mut self, limits: &Limits, key: &str, endpoint: &str) -> Result<(), Refusal> {
        let now = Instant::now();
        let mut take = Vec::new();
        for (scope, rate, refusal) in [
            (None, limits.global, Refusal::GlobalRate),
            (
                Some(endpoint.to_string()),
                limits.endpoint(endpoint),
                Refusal::EndpointRate,
            ),
        ] {
            if rate == 0 {
                continue;
            }
            let bucket = self
                .buckets
                .entry((key.to_string(), scope.clone()))
                .or_insert(Bucket {
                    tokens: f64::from(rate),
                    last: now,
                });
            if !bucket.refill(rate, now) {
                return Err(refusal);
            }
            take.push(scope);
        }
        for scope in take {
            if let Some(bucket) = self.buckets.get_mut(&(key.to_string(), scope)) {
                bucket.tokens -= 1.0;
            }
        }
        Ok(())
    }

    /// Forgets every bucket (new limits start full).
    pub fn reset(&mut self) {
        self.buckets.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_endpoint_has_its_own_budget_within_the_global_one() {
        let limits = Limits {
            global: 100,
            per_endpoint: 25,
            endpoints: [("POST /v1/products".to_string(), 5)].into(),
        };
        let mut limiter = Limiter::default();
        let admitted = |limiter: &mut Limiter, endpoint: &str, n: usize| {
            (0..n)
                .filter(|_| limiter.admit(&limits, "sk_a", endpoint).is_ok())
                .count()
        };
        // A burst of one second's worth per endpoint, then the endpoint refuses.
        assert_eq!(admitted(&mut limiter, "POST /v1/prices", 40), 25);
        assert_eq!(
            limiter.admit(&limits, "sk_a", "POST /v1/prices"),
            Err(Refusal::EndpointRate)
        );
        // Another endpoint (an update of any id) has its own; an override applies.
        assert_eq!(admitted(&mut limiter, "POST /v1/prices/{id}", 25), 25);
        assert_eq!(admitted(&mut limiter, "POST /v1/products", 10), 5);
        // The global budget is shared: 100 in all, whatever the endpoints.
        assert_eq!(admitted(&mut limiter, "GET /v1/products/{id}", 25), 25);
        assert_eq!(admitted(&mut limiter, "GET /v1/prices", 25), 20);
        assert_eq!(
            limiter.admit(&limits, "sk_a", "GET /v1/events"),
            Err(Refusal::GlobalRate)
        );
        // Another key is another account.
        assert_eq!(limiter.admit(&limits, "sk_b", "POST /v1/prices"), Ok(()));
    }

    #[test]
    fn off_admits_everything() {
        let mut limiter = Limiter::default();
        assert!((0..1000).all(|_| {
            limiter
                .admit(&Limits::off(), "k", "POST /v1/prices")
                .is_ok()
        }));
    }
}
