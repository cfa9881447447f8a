//! What a (verified) Stripe event asks of catalog-sync ([`decide`]): nothing (not a product or
//! price event, another account's or catalog's object, an echo of catalog-sync's own write), a
//! Dashboard edit of Stripe-owned fields that stands, or a repair. Pure, so every rule is
//! unit-tested here; the webhook handler (`http`) acts on the decision.

use domain::metadata::{META_CATALOG, META_ID, META_MANAGED};
use domain::ownership::changed_fields;
use serde_json::Value;

use crate::http::HttpConfig;

/// What a Stripe event calls for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Not a product or price event.
    Ignored,
    /// An object catalog-sync does not manage.
    Unmanaged,
    /// An object catalog-sync manages for another catalog, or made before catalog identities
    /// and not adopted (see `stripe::identity`): this relay's catalog leaves it alone.
    OtherCatalog,
    /// An event of another Stripe account (Connect): another relay's.
    OtherAccount,
    /// Caused by catalog-sync's own write (its signed idempotency key): nothing to do.
    Echo,
    /// Only Stripe-owned fields changed: the edit stands, nothing to repair.
    Kept {
        /// Catalog id.
        catalog_id: String,
        /// The Stripe-owned fields edited.
        kept: Vec<&'static str>,
    },
    /// A product whose `catalog_sync_id` metadata names another catalog id than its own id (an
    /// edit in the Dashboard, or a forgery): nothing is written back to either catalog row, the
    /// conflict is recorded, and the product is repaired by its own id.
    IdMismatch {
        /// The product's own id: the catalog id it is repaired as.
        catalog_id: String,
        /// The catalog id its metadata claims.
        claimed: String,
    },
    /// Make Stripe match the catalog again.
    Repair {
        /// Catalog id.
        catalog_id: String,
        /// Catalog-owned fields edited in Stripe, which the repair reverts.
        reverted: Vec<&'static str>,
        /// Stripe-owned fields edited in Stripe, which the repair leaves.
        kept: Vec<&'static str>,
    },
}

impl Decision {
    /// Every label a webhook event is counted under: the decisions', and the events refused
    /// before one (`invalid_signature`, `duplicate`). The metrics start each at 0.
    pub const LABELS: [&'static str; 10] = [
        "ignored",
        "unmanaged",
        "other_catalog",
        "other_account",
        "echo",
        "kept",
        "id_mismatch",
        "repair",
        "invalid_signature",
        "duplicate",
    ];

    /// The label in metrics and in `stripe_webhook_events.decision`.
    pub fn label(&self) -> &'static str {
        match self {
            Self::Ignored => "ignored",
            Self::Unmanaged => "unmanaged",
            Self::OtherCatalog => "other_catalog",
            Self::OtherAccount => "other_account",
            Self::Echo => "echo",
            Self::Kept { .. } => "kept",
            Self::IdMismatch { .. } => "id_mismatch",
            Self::Repair { .. } => "repair",
        }
    }
}

/// The Stripe product a product or price event is about: the product's id, or the price's
/// product.
pub fn event_product(event: &Value) -> Option<&str> {
    let object = &event["data"]["object"];
    let event_type = event["type"].as_str().unwrap_or_default();
    if event_type.starts_with("product.") {
        object["id"].as_str()
    } else if event_type.starts_with("price.") {
        object["product"]
            .as_str()
            .or_else(|| object["product"]["id"].as_str())
    } else {
        None
    }
}

/// Decides what a (verified) event calls for, under the relay's `config`. Pure. An event of
/// another Stripe account (Connect) is another relay's. Only a key that `own_writes` verifies makes
/// an event an echo: anybody can send an idempotency key that looks like catalog-sync's. With the
/// relay's `catalog`, a managed object that carries another catalog's identity (or a product that
/// carries none) is that catalog's business, not this one's.
///
/// `bound_row` is the catalog row `starter import` bound the event's product to (see
/// [`event_product`]), if any: a product is its row by its own id or by that binding.
pub fn decide(event: &Value, config: &HttpConfig, bound_row: Option<&str>) -> Decision {
    let HttpConfig {
        ownership,
        own_writes,
        catalog,
        account,
        ..
    } = config;
    if event["account"].as_str() != account.as_deref() {
        return Decision::OtherAccount;
    }
    let event_type = event["type"].as_str().unwrap_or_default();
    let object = &event["data"]["object"];
    // Detaching a product in the Dashboard (removing `catalog_sync_managed`) is an edit of a managed
    // product too: the repair attaches it again while the catalog has it.
    let was_managed =
        event["data"]["previous_attributes"]["metadata"][META_MANAGED].as_str() == Some("true");
    let managed = object["metadata"][META_MANAGED].as_str() == Some("true") || was_managed;
    // A product is its catalog row by its own id (or its binding), never by metadata a
    // Dashboard user can edit.
    if !event_type.starts_with("product.") && !event_type.starts_with("price.") {
        return Decision::Ignored;
    }
    let Some(product_id) = event_product(event).filter(|_| managed) else {
        return Decision::Unmanaged;
    };
    let catalog_id = bound_row.unwrap_or(product_id);
    if let Some(ours) = catalog {
        let stamped = object["metadata"][META_CATALOG]
            .as_str()
            .or_else(|| event["data"]["previous_attributes"]["metadata"][META_CATALOG].as_str());
        let product_event = event_type.starts_with("product.");
        // A price made by hand carries no identity: its product's decides, in the repair.
        match stamped {
            Some(c) if c != ours.as_str() => return Decision::OtherCatalog,
            None if product_event => return Decision::OtherCatalog,
            _ => {}
        }
    }
    if event_type.starts_with("product.")
        && let Some(claimed) = object["metadata"][META_ID].as_str()
        && claimed != catalog_id
    {
        return Decision::IdMismatch {
            catalog_id: catalog_id.to_string(),
            claimed: claimed.to_string(),
        };
    }
    let own_write = match (
        event["request"]["idempotency_key"].as_str(),
        own_writes.as_ref(),
    ) {
        // Ours only as a write to this product, applied within the key's window.
        (Some(key), Some(keys)) => {
            keys.is_own(key, product_id, event["created"].as_i64().unwrap_or(0))
        }
        _ => false,
    };
    if own_write {
        return Decision::Echo;
    }
    let catalog_id = catalog_id.to_string();
    if event_type != "product.updated" {
        return Decision::Repair {
            catalog_id,
            reverted: Vec::new(),
            kept: Vec::new(),
        };
    }
    let previous = event["data"].get("previous_attributes");
    let (kept, reverted): (Vec<&'static str>, Vec<&'static str>) = changed_fields(previous)
        .into_iter()
        .partition(|f| ownership.stripe_owns(f));
    // Anything else that changed (metadata, active, the default price…) belongs to the catalog.
    let other_changes = previous.and_then(Value::as_object).is_some_and(|p| {
        p.keys().any(|k| {
            k != "updated" && !kept.contains(&k.as_str()) && !reverted.contains(&k.as_str())
        })
    });
    if !kept.is_empty() && reverted.is_empty() && !other_changes {
        Decision::Kept { catalog_id, kept }
    } else {
        Decision::Repair {
            catalog_id,
            reverted,
            kept,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use domain::ownership::Ownership;
    use serde_json::json;
    use stripe::identity::CatalogIdentity;
    use stripe::write_key::WriteKeys;

    fn rules(
        ownership: &Ownership,
        own_writes: Option<&WriteKeys>,
        catalog: Option<&CatalogIdentity>,
    ) -> HttpConfig {
        HttpConfig {
            ownership: ownership.clone(),
            own_writes: own_writes.cloned(),
            catalog: catalog.cloned(),
            ..HttpConfig::default()
        }
    }

    fn event(kind: &str, object: Value, previous: Option<Value>, key: Option<&str>) -> Value {
        let mut data = json!({ "object": object });
        if let Some(p) = previous {
            data["previous_attributes"] = p;
        }
        let created = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        json!({ "id": "evt_1", "type": kind, "data": data, "created": created,
                "request": { "id": "req_1", "idempotency_key": key } })
    }

    fn managed_product() -> Value {
        json!({ "id": "sku-1", "object": "product", "name": "New",
                "metadata": { "catalog_sync_managed": "true", "catalog_sync_id": "sku-1" } })
    }

    #[test]
    fn dashboard_edits_are_repaired_or_kept_by_ownership() {
        let owned = Ownership::parse("description", false).unwrap();
        let name_edit = event(
            "product.updated",
            managed_product(),
            Some(json!({"name": "Old"})),
            None,
        );
        assert_eq!(
            decide(&name_edit, &rules(&owned, None, None), None),
            Decision::Repair {
                catalog_id: "sku-1".into(),
                reverted: vec!["name"],
                kept: vec![]
            }
        );
        let description_edit = event(
            "product.updated",
            managed_product(),
            Some(json!({"description": "Old", "updated": 1})),
            None,
        );
        assert_eq!(
            decide(&description_edit, &rules(&owned, None, None), None),
            Decision::Kept {
                catalog_id: "sku-1".into(),
                kept: vec!["description"]
            }
        );
        // Under default ownership the catalog owns the description too.
        assert_eq!(
            decide(
                &description_edit,
                &rules(&Ownership::default(), None, None),
                None
            )
            .label(),
            "repair"
        );
        let metadata_edit = event(
            "product.updated",
            managed_product(),
            Some(json!({"description": "Old", "metadata": {}})),
            None,
        );
        assert_eq!(
            decide(&metadata_edit, &rules(&owned, None, None), None).label(),
            "repair"
        );
    }

    #[test]
    fn a_product_is_its_catalog_row_by_its_own_id_not_by_editable_metadata() {
        // The Dashboard edit of sku-1 that also sets `catalog_sync_id=sku-2`: nothing goes to
        // sku-2's row, even for a Stripe-owned field with write-back on.
        let owned = Ownership::parse("description", true).unwrap();
        let mut forged = managed_product();
        forged["metadata"]["catalog_sync_id"] = json!("sku-2");
        let edit = event(
            "product.updated",
            forged,
            Some(json!({"description": "Old", "metadata": {"catalog_sync_id": "sku-1"}})),
            None,
        );
        assert_eq!(
            decide(&edit, &rules(&owned, None, None), None),
            Decision::IdMismatch {
                catalog_id: "sku-1".into(),
                claimed: "sku-2".into()
            }
        );
        // Without the metadata, the product's own id decides.
        let mut bare = managed_product();
        bare["metadata"]
            .as_object_mut()
            .unwrap()
            .remove("catalog_sync_id");
        let edit = event("product.updated", bare, Some(json!({"name": "Old"})), None);
        assert_eq!(
            decide(&edit, &rules(&owned, None, None), None),
            Decision::Repair {
                catalog_id: "sku-1".into(),
                reverted: vec!["name"],
                kept: vec![]
            }
        );
    }

    #[test]
    fn echoes_unmanaged_objects_and_other_events_cause_nothing() {
        let o = Ownership::default();
        let keys = WriteKeys::new(b"the catalog's write_key");
        let mut form = stripe::client::Form::new();
        form.push("name", "New");
        let own_key = keys.key(
            "cat_00:product-sync:sku-1/run/3",
            std::time::SystemTime::now(),
            "sku-1",
            stripe::write_key::Step::UpdateProduct,
            "",
            &form,
        );
        let echo = event(
            "product.updated",
            managed_product(),
            Some(json!({"name": "Old"})),
            Some(&own_key),
        );
        assert_eq!(
            decide(&echo, &rules(&o, Some(&keys), None), None),
            Decision::Echo
        );
        // Our key on another product's event, or minted two days before the event: an edit.
        let mut elsewhere = managed_product();
        elsewhere["id"] = json!("sku-2");
        elsewhere["metadata"]["catalog_sync_id"] = json!("sku-2");
        let moved = event(
            "product.updated",
            elsewhere,
            Some(json!({"name": "Old"})),
            Some(&own_key),
        );
        assert_eq!(
            decide(&moved, &rules(&o, Some(&keys), None), None).label(),
            "repair"
        );
        let two_days_ago =
            std::time::SystemTime::now() - std::time::Duration::from_secs(2 * 86_400);
        let stale_key = keys.key(
            "cat_00:product-sync:sku-1/run/3",
            two_days_ago,
            "sku-1",
            stripe::write_key::Step::UpdateProduct,
            "",
            &form,
        );
        let stale = event(
            "product.updated",
            managed_product(),
            Some(json!({"name": "Old"})),
            Some(&stale_key),
        );
        assert_eq!(
            decide(&stale, &rules(&o, Some(&keys), None), None).label(),
            "repair"
        );
        // Without the secret nothing is an echo; a key that only looks like ours is an edit.
        assert_eq!(
            decide(&echo, &rules(&o, None, None), None).label(),
            "repair"
        );
        for spoof in [
            "cs-x",
            "cs-sku-1-abcdef-update-product-123456",
            "cs1-update-product-00-00",
        ] {
            let spoofed = event(
                "product.updated",
                managed_product(),
                Some(json!({"name": "Old"})),
                Some(spoof),
            );
            assert_eq!(
                decide(&spoofed, &rules(&o, Some(&keys), None), None).label(),
                "repair",
                "{spoof}"
            );
        }
        let foreign = json!({ "id": "prod_x", "object": "product", "metadata": {} });
        assert_eq!(
            decide(
                &event("product.updated", foreign, None, None),
                &rules(&o, None, None),
                None
            ),
            Decision::Unmanaged
        );
        let customer = json!({ "id": "cus_1", "object": "customer" });
        assert_eq!(
            decide(
                &event("customer.created", customer, None, None),
                &rules(&o, None, None),
                None
            ),
            Decision::Ignored
        );
        let price = json!({ "id": "price_1", "object": "price", "product": "sku-1",
                            "metadata": { "catalog_sync_managed": "true" } });
        assert_eq!(
            decide(
                &event("price.updated", price, Some(json!({"active": true})), None),
                &rules(&o, None, None),
                None
            ),
            Decision::Repair {
                catalog_id: "sku-1".into(),
                reverted: vec![],
                kept: vec![]
            }
        );
    }

    #[test]
    fn an_imported_product_is_its_bound_row() {
        let o = Ownership::default();
        let mut product = managed_product();
        product["id"] = json!("prod_Shop1");
        product["metadata"]["catalog_sync_id"] = json!("sku-1");
        let edit = event(
            "product.updated",
            product,
            Some(json!({"name": "Old"})),
            None,
        );
        assert_eq!(
            decide(&edit, &rules(&o, None, None), Some("sku-1")),
            Decision::Repair {
                catalog_id: "sku-1".into(),
                reverted: vec!["name"],
                kept: vec![]
            }
        );
        // Unbound, its metadata names another row than its own id: refused, as ever.
        assert_eq!(
            decide(&edit, &rules(&o, None, None), None).label(),
            "id_mismatch"
        );
        assert_eq!(event_product(&edit), Some("prod_Shop1"));
    }

    #[test]
    fn another_catalogs_objects_are_left_to_it() {
        let o = Ownership::default();
        let ours = CatalogIdentity::new("cat_ours");
        let with_catalog = |catalog: Option<&str>| {
            let mut p = managed_product();
            if let Some(c) = catalog {
                p["metadata"][META_CATALOG] = json!(c);
            }
            event("product.updated", p, Some(json!({"name": "Old"})), None)
        };
        let decide_ours = |e: &Value| decide(e, &rules(&o, None, Some(&ours)), None).label();
        assert_eq!(decide_ours(&with_catalog(Some("cat_ours"))), "repair");
        assert_eq!(
            decide_ours(&with_catalog(Some("cat_theirs"))),
            "other_catalog"
        );
        assert_eq!(
            decide_ours(&with_catalog(None)),
            "other_catalog",
            "not adopted"
        );
        // A price made by hand carries no identity: its product's sync decides.
        let hand_made = json!({ "id": "price_1", "object": "price", "product": "sku-1",
                                "metadata": { "catalog_sync_managed": "true" } });
        assert_eq!(
            decide_ours(&event("price.created", hand_made, None, None)),
            "repair"
        );
        let theirs = json!({ "id": "price_2", "object": "price", "product": "sku-1",
                             "metadata": { "catalog_sync_managed": "true",
                                           "catalog_sync_catalog": "cat_theirs" } });
        assert_eq!(
            decide_ours(&event("price.created", theirs, None, None)),
            "other_catalog"
        );
    }
}
