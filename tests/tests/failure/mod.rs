//! Failure tier: bad catalog rows, Stripe misbehaving, Temporal gone or killed; judged by
//! `starter verify` and Stripe's own state.

mod bad_rows;
mod outage;
mod stripe_faults;
mod temporal_crash;
