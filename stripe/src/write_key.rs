//! Idempotency keys of catalog-sync's Stripe writes, and how its own writes are told apart from
//! everybody else's.
//!
//! A key is `cs2-{step}-{nonce}-{minted}-{tag}`, 94 characters at most whatever the ids (Stripe
//! takes 255):
//! - `nonce` is a hash of (the intent, the product, the step and its target, the form sent). The
//!   *intent* is one activity execution (`{workflow id}/{run id}/{activity id}`): every attempt of
//!   it sends the same key, so a retry after a lost response replays Stripe's saved answer instead
//!   of writing twice, while a new sync of the same content (an edit undone: A→B→A) is a new
//!   intent and never replays an older write's answer. (Keys derived from the content alone did:
//!   going back to A replayed A's first create-price answer, naming a price archived since.)
//! - `minted` is when the intent began (the activity's first scheduling, Unix seconds in hex): the
//!   same for every attempt.
//! - `tag` is an HMAC of the rest and of the product the write is about, under a secret that
//!   catalog-sync keeps in its own table in the catalog database (`catalog_sync_secrets.write_key`).
//!   Only a process that reads that table can make a key that [`WriteKeys::is_own`] accepts, so a
//!   write by anybody else with a `cs-`-looking key is still seen as an outside edit, and the relay
//!   reverts it. A real key of ours passes only as an echo of a write to the same product within
//!   [`ECHO_WINDOW_SECS`] of its minting: one copied from an event onto another product, or reused
//!   after Stripe has forgotten it (24 hours), is an outside edit too.
//!
//! Both parts are hashes, so a 100-character catalog id or a 200-character lookup key never makes a
//! key too long.

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

use crate::client::Form;

/// Version prefix of the key format (`cs1` keys named no product or time, and are refused).
const PREFIX: &str = "cs2";
/// How long after its minting a key's write may come back as an echo: Stripe keeps idempotency
/// keys for 24 hours. (An attempt later than that is a new write to Stripe anyway; its echo is
/// taken as an outside edit, and the repair it causes finds nothing to change.)
pub const ECHO_WINDOW_SECS: i64 = 24 * 3600;
/// Clock skew allowed between a worker and Stripe.
const SKEW_SECS: i64 = 300;
/// Hex characters of the nonce and of the tag (128 bits each).
const PART_HEX: usize = 32;
/// The name of the secret in `catalog_sync_secrets`.
pub const SECRET_NAME: &str = "write_key";

/// What a write is: the step names that appear in keys (short and fixed, so keys stay short).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// `POST /v1/products` with the catalog id.
    CreateProduct,
    /// `POST /v1/products/{id}`: fields and default price.
    UpdateProduct,
    /// `POST /v1/products/{id}` with `active=false`.
    ArchiveProduct,
    /// `POST /v1/prices`.
    CreatePrice,
    /// `POST /v1/prices/{id}`: re-activation, the fields updated in place.
    UpdatePrice,
    /// `POST /v1/prices/{id}` with `active=false`.
    ArchivePrice,
}

impl Step {
    fn as_str(self) -> &'static str {
        match self {
            Self::CreateProduct => "create-product",
            Self::UpdateProduct => "update-product",
            Self::ArchiveProduct => "archive-product",
            Self::CreatePrice => "create-price",
            Self::UpdatePrice => "update-price",
            Self::ArchivePrice => "archive-price",
        }
    }
}

/// Makes and recognises catalog-sync's idempotency keys.
#[derive(Clone)]
pub struct WriteKeys {
    secret: Vec<u8>,
}

impl std::fmt::Debug for WriteKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WriteKeys([redacted])")
    }
}

impl WriteKeys {
    /// Keys signed with `secret` (from `catalog::Catalog::sync_secret` with [`SECRET_NAME`]).
    pub fn new(secret: &[u8]) -> Self {
        Self {
            secret: secret.to_vec(),
        }
    }

    /// The key of one write: `intent` is the activity execution (or, outside Temporal, a value
    /// unique to the run), `target` what the write is about (a price id or lookup key; empty for
    /// the product itself), `form` what is sent.
    /// `minted` is when the intent began (the same for every attempt).
    pub fn key(
        &self,
        intent: &str,
        minted: std::time::SystemTime,
        product_id: &str,
        step: Step,
        target: &str,
        form: &Form,
    ) -> String {
        let mut nonce = Sha256::new();
        for part in [intent, product_id, step.as_str(), target, &form.encode()] {
            // Length-prefixed, so that no two different tuples hash the same bytes.
            nonce.update((part.len() as u64).to_be_bytes());
            nonce.update(part.as_bytes());
        }
        let nonce = hex::encode(nonce.finalize());
        let minted = minted
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let unsigned = format!(
            "{PREFIX}-{}-{}-{minted:x}",
            step.as_str(),
            &nonce[..PART_HEX]
        );
        let tag = self.tag(&unsigned, product_id);
        format!("{unsigned}-{tag}")
    }

    /// Whether `key` was made by [`WriteKeys::key`] under this secret for a write to
    /// `product_id`, and `at` (when Stripe applied it, Unix seconds) lies within
    /// [`ECHO_WINDOW_SECS`] of its minting. Constant-time in the tag.
    pub fn is_own(&self, key: &str, product_id: &str, at: i64) -> bool {
        let Some((unsigned, tag)) = key.rsplit_once('-') else {
            return false;
        };
        if !unsigned.starts_with(&format!("{PREFIX}-")) || tag.len() != PART_HEX {
            return false;
        }
        let Some(minted) = unsigned
            .rsplit_once('-')
            .and_then(|(_, m)| i64::from_str_radix(m, 16).ok())
        else {
            return false;
        };
        let expected = self.tag(unsigned, product_id);
        let mut difference = 0u8;
        for (a, b) in expected.bytes().zip(tag.bytes()) {
            difference |= a ^ b;
        }
        difference == 0 && (-SKEW_SECS..=ECHO_WINDOW_SECS).contains(&(at - minted))
    }

    fn tag(&self, unsigned: &str, product_id: &str) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.secret).expect("HMAC takes any key");
        mac.update(unsigned.as_bytes());
        // Length-prefixed: the product cannot be shifted into the key text.
        mac.update(&(product_id.len() as u64).to_be_bytes());
        mac.update(product_id.as_bytes());
        hex::encode(mac.finalize().into_bytes())[..PART_HEX].to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    /// When the test's intents began.
    const T0: std::time::SystemTime = UNIX_EPOCH;
    /// `T0` in seconds, and an hour later.
    const AT: i64 = 3600;

    fn form(amount: &str) -> Form {
        let mut f = Form::new();
        f.push("unit_amount", amount);
        f
    }

    #[test]
    fn the_same_attempt_replays_and_a_new_intent_never_does() {
        let keys = WriteKeys::new(b"secret");
        let a = keys.key(
            "wf/run/1",
            T0,
            "sku-1",
            Step::CreatePrice,
            "lk",
            &form("100"),
        );
        assert_eq!(
            a,
            keys.key(
                "wf/run/1",
                T0,
                "sku-1",
                Step::CreatePrice,
                "lk",
                &form("100")
            ),
            "a retry of the same activity sends the same key"
        );
        // A→B→A: the second A is another activity execution.
        assert_ne!(
            a,
            keys.key(
                "wf/run/3",
                T0,
                "sku-1",
                Step::CreatePrice,
                "lk",
                &form("100")
            )
        );
        // Different parameters or targets within one intent are different writes.
        assert_ne!(
            a,
            keys.key(
                "wf/run/1",
                T0,
                "sku-1",
                Step::CreatePrice,
                "lk",
                &form("200")
            )
        );
        assert_ne!(
            a,
            keys.key(
                "wf/run/1",
                T0,
                "sku-1",
                Step::CreatePrice,
                "lk2",
                &form("100")
            )
        );
    }

    #[test]
    fn keys_stay_short_for_the_longest_ids() {
        let keys = WriteKeys::new(b"secret");
        let id = "x".repeat(100);
        let lookup_key = format!("cs:{id}:usd:month_x36");
        let key = keys.key(
            &format!("cat_0123456789abcdef:product-sync:{id}/run-0123456789abcdef/17"),
            UNIX_EPOCH + Duration::from_secs(4_102_444_800),
            &id,
            Step::ArchiveProduct,
            &lookup_key,
            &form("1"),
        );
        assert!(key.len() <= 94, "{} characters: {key}", key.len());
        assert!(keys.is_own(&key, &id, 4_102_444_800));
    }

    fn flip_last(key: &str) -> String {
        let last = if key.ends_with('0') { '1' } else { '0' };
        format!("{}{last}", &key[..key.len() - 1])
    }

    #[test]
    fn only_keys_signed_with_the_secret_are_own() {
        let ours = WriteKeys::new(b"ours");
        let key = ours.key("i", T0, "sku-1", Step::UpdateProduct, "", &form("1"));
        assert!(ours.is_own(&key, "sku-1", AT));
        assert!(!WriteKeys::new(b"theirs").is_own(&key, "sku-1", AT));
        for spoof in [
            "cs-x",
            "cs2-update-product-0123",
            "",
            "cs2",
            &key[..key.len() - 1],
            &flip_last(&key),
        ] {
            assert!(!ours.is_own(spoof, "sku-1", AT), "{spoof:?}");
        }
    }

    #[test]
    fn a_key_is_own_only_for_its_product_and_within_stripes_window() {
        let ours = WriteKeys::new(b"ours");
        let key = ours.key("i", T0, "sku-1", Step::UpdateProduct, "", &form("1"));
        // Copied from an event onto another product's write.
        assert!(!ours.is_own(&key, "sku-2", AT));
        // Within Stripe's 24 hours (and a few minutes of clock skew), and not after.
        assert!(ours.is_own(&key, "sku-1", -SKEW_SECS));
        assert!(ours.is_own(&key, "sku-1", ECHO_WINDOW_SECS));
        assert!(!ours.is_own(&key, "sku-1", ECHO_WINDOW_SECS + 1));
        assert!(!ours.is_own(&key, "sku-1", -SKEW_SECS - 1));
        // The minting time is signed: moved forward, the key is no longer ours.
        let (unsigned, tag) = key.rsplit_once('-').unwrap();
        let (head, _) = unsigned.rsplit_once('-').unwrap();
        let moved = format!("{head}-{:x}-{tag}", 2 * ECHO_WINDOW_SECS);
        assert!(!ours.is_own(&moved, "sku-1", 2 * ECHO_WINDOW_SECS));
    }
}
