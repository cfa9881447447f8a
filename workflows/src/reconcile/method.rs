//! How a reconciliation reads Stripe: by scanning the account's lists into the mirror of Stripe's
//! state, or by reading the scope's products by id. Chosen at the start by what each would cost.
//!
//! ```text
//! scan  = ⌈(S_products + S_prices) / 100⌉      every product and price of the account, 100 a page
//! ids   = ⌈N / 100⌉ + ⌈N × x / 10⌉             the scope's products by id, their other prices by
//!                                              lookup key (x other prices per product)
//!       + ⌈(S_products + S_prices) / 100⌉      the orphan and extra-price sweeps (whole-catalog
//!                                              and id-range scopes; none for `since`)
//! ```
//!
//! `S_…` are the mirror's counts (or, before a first scan, the catalog's products with 1.5 prices
//! each); `N` the products in scope; `x` from the mirror (prices per product − 1), else 0.5. A
//! scope that sweeps Stripe always scans; a `since` scope scans only when it covers most of the
//! account.
//!
//! The third method, **events**, is asked for by name (the schedule's regular run): it reads the
//! product and price events after the stored cursor (`⌈E / 100⌉` requests for `E` events), applies
//! them to the mirror and checks the products they touch, then the catalog's products updated
//! since the last run, against the mirror. Without a cursor, or with one older than Stripe's
//! 30-day retention of events, it scans instead (and the scan sets the cursor).

use domain::limits::EVENT_RETENTION_SECS;
use serde::{Deserialize, Serialize};

/// How Stripe is read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReconcileMethod {
    /// The cheaper of the two for the scope (the input's default).
    #[default]
    Auto,
    /// Page through Stripe's product and price lists into the mirror, then compare the catalog
    /// with the mirror in the database.
    Scan,
    /// Read the scope's products by id (`ids[]`), their prices by lookup key.
    Ids,
    /// Read Stripe's events since the stored cursor; check what they and the catalog's recent
    /// updates touch.
    Events,
}

impl ReconcileMethod {
    /// `scan`, `ids` or `auto`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Auto => "auto",
            Self::Scan => "scan",
            Self::Ids => "ids",
            Self::Events => "events",
        }
    }
}

/// Prices per product assumed before the mirror knows better.
const ASSUMED_PRICES_PER_PRODUCT: f64 = 1.5;

/// What the choice is made from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct MethodBasis {
    /// Catalog products in scope.
    pub in_scope: u64,
    /// Catalog products in all.
    pub catalog_total: u64,
    /// Products the mirror holds.
    pub mirror_products: u64,
    /// Prices the mirror holds.
    pub mirror_prices: u64,
    /// The scope sweeps Stripe for orphans and extra prices (not a `since` scope).
    pub sweeps: bool,
    /// How old the stored event cursor is (seconds), if there is one.
    pub event_cursor_age_secs: Option<i64>,
}

impl MethodBasis {
    /// Estimated Stripe requests of a scan and of `ids[]` reads.
    pub fn estimates(&self) -> (u64, u64) {
        let (products, prices) = if self.mirror_products > 0 {
            (self.mirror_products as f64, self.mirror_prices as f64)
        } else {
            let n = self.catalog_total as f64;
            (n, n * ASSUMED_PRICES_PER_PRODUCT)
        };
        let others = (prices / products.max(1.0) - 1.0).max(0.0);
        let account_pages = ((products + prices) / 100.0).ceil().max(2.0);
        let n = self.in_scope as f64;
        let mut ids = (n / 100.0).ceil() + (n * others / 10.0).ceil();
        if self.sweeps {
            ids += account_pages;
        }
        (account_pages as u64, ids as u64)
    }
}

/// The method to use, and why (for the result and the log).
pub fn choose(requested: ReconcileMethod, basis: &MethodBasis) -> (ReconcileMethod, String) {
    let (scan, ids) = basis.estimates();
    let costs = format!(
        "{} of {} catalog products in scope; a scan reads about {scan} Stripe pages, ids[] reads \
         about {ids}",
        basis.in_scope, basis.catalog_total
    );
    match requested {
        ReconcileMethod::Events => match basis.event_cursor_age_secs {
            None => (
                ReconcileMethod::Scan,
                "events asked for, but there is no event cursor yet: a full scan reads the \
                 account and sets one"
                    .into(),
            ),
            // An hour's margin: the cursor must still be there when the first page is read.
            Some(age) if age > EVENT_RETENTION_SECS - 3600 => (
                ReconcileMethod::Scan,
                format!(
                    "events asked for, but the event cursor is {} days old and Stripe keeps \
                     events for 30: a full scan",
                    age / 86_400
                ),
            ),
            Some(age) => (
                ReconcileMethod::Events,
                format!("asked for events (cursor {} minutes old)", age / 60),
            ),
        },
        ReconcileMethod::Scan | ReconcileMethod::Ids => (
            requested,
            format!("asked for {} ({costs})", requested.as_str()),
        ),
        ReconcileMethod::Auto if scan < ids => (ReconcileMethod::Scan, format!("cheaper: {costs}")),
        ReconcileMethod::Auto => (ReconcileMethod::Ids, format!("cheaper: {costs}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn basis(in_scope: u64, total: u64, mirror: (u64, u64), sweeps: bool) -> MethodBasis {
        MethodBasis {
            in_scope,
            catalog_total: total,
            mirror_products: mirror.0,
            mirror_prices: mirror.1,
            sweeps,
            event_cursor_age_secs: None,
        }
    }

    #[test]
    fn a_whole_catalog_scans_and_a_small_since_scope_reads_ids() {
        // 100,000 products with 1.5 prices each: 2,500 pages against 1,000 + 5,000 + 2,500.
        let whole = basis(100_000, 100_000, (100_000, 150_000), true);
        assert_eq!(whole.estimates(), (2_500, 8_500));
        let (method, why) = choose(ReconcileMethod::Auto, &whole);
        assert_eq!(method, ReconcileMethod::Scan);
        assert!(why.contains("a scan reads about 2500"), "{why}");
        // A day's changes: 1 % of the catalog.
        let recent = basis(1_000, 100_000, (100_000, 150_000), false);
        assert_eq!(
            choose(ReconcileMethod::Auto, &recent).0,
            ReconcileMethod::Ids
        );
        // Before any scan the catalog's size stands in for the account's.
        let first = basis(2_000, 2_000, (0, 0), true);
        assert_eq!(first.estimates(), (50, 170));
        assert_eq!(
            choose(ReconcileMethod::Auto, &first).0,
            ReconcileMethod::Scan
        );
    }

    #[test]
    fn an_asked_for_method_is_kept_with_the_costs() {
        let whole = basis(100, 100, (0, 0), true);
        let (method, why) = choose(ReconcileMethod::Ids, &whole);
        assert_eq!(method, ReconcileMethod::Ids);
        assert!(why.starts_with("asked for ids"), "{why}");
        assert_eq!(
            choose(ReconcileMethod::Scan, &whole).0,
            ReconcileMethod::Scan
        );
    }

    #[test]
    fn events_need_a_cursor_within_stripes_retention() {
        let mut b = basis(100_000, 100_000, (100_000, 150_000), true);
        let (method, why) = choose(ReconcileMethod::Events, &b);
        assert_eq!(method, ReconcileMethod::Scan);
        assert!(why.contains("no event cursor"), "{why}");
        b.event_cursor_age_secs = Some(3_600);
        assert_eq!(
            choose(ReconcileMethod::Events, &b).0,
            ReconcileMethod::Events
        );
        b.event_cursor_age_secs = Some(31 * 86_400);
        let (method, why) = choose(ReconcileMethod::Events, &b);
        assert_eq!(method, ReconcileMethod::Scan);
        assert!(why.contains("31 days old"), "{why}");
        // Auto never picks events: the schedule asks for them.
        b.event_cursor_age_secs = Some(60);
        assert_eq!(choose(ReconcileMethod::Auto, &b).0, ReconcileMethod::Scan);
    }
}
