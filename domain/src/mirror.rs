//! One Stripe object as catalog-sync last saw it, for the mirror of Stripe's state
//! (`catalog::mirror` stores it; `stripe::mirror` makes it from Stripe's objects and back).

/// A row of the mirror: a product or a price.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MirrorRow {
    /// Stripe id.
    pub id: String,
    /// The product: its own id for a product, its product's for a price.
    pub product_id: String,
    /// Active in Stripe.
    pub active: bool,
    /// A price's lookup key.
    pub lookup_key: Option<String>,
    /// Stripe's `updated` (Unix seconds) where the object has one (products): a write older than
    /// the row's is ignored.
    pub updated: Option<i64>,
    /// Where it was seen: an event id (`evt_…`), a write's request id (`req_…`), `scan:…` or
    /// `read:…`.
    pub seen_in: String,
    /// The fields catalog-sync compares, as Stripe's JSON.
    pub object: String,
}
