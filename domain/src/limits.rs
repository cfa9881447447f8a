//! Stripe's limits on what catalog-sync writes, checked by the transform before any request and
//! by the CLI before an edit.

/// Longest product name.
pub const MAX_NAME: usize = 250;
/// Largest amount in minor units.
pub const MAX_AMOUNT: i64 = 99_999_999;
/// Longest catalog id.
pub const MAX_ID: usize = 100;
