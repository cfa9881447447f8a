//! Archiving a product whose catalog row is gone or soft-deleted: only this catalog's managed
//! products, and only within the archive guard's budget (a held archive is reported, not made).

use catalog::ArchivePermit;
use stripe::client::Form;
use stripe::identity::Claim;
use stripe::write_key::Step;

use super::{Writer, seen_in};
use crate::error::SyncError;

/// Archives the product `catalog_id` (`active=false`) when it is this catalog's and the guard
/// permits it.
pub(super) async fn archive(w: &mut Writer<'_>, catalog_id: &str) -> Result<(), SyncError> {
    let (stripe, intent, id) = (w.stripe, w.intent, w.product_id);
    let current = stripe.get_product(id).await?;
    w.report.stripe_requests += 1;
    if let Some(p) = &current {
        w.seen.product(p, w.read_here());
    }
    let claim = current
        .as_ref()
        .map(|p| intent.catalog.claim(&p.metadata, catalog_id));
    let claim = match claim {
        Some(c) if intent.relabelled(&c, catalog_id).await? => Some(Claim::Ours),
        other => other,
    };
    match (current, claim) {
        (None, _) => w.report.unchanged = true,
        (Some(_), Some(claim @ (Claim::OtherCatalog(_) | Claim::Unadopted))) => {
            w.report.other_catalog = claim.refusal(intent.catalog);
        }
        // Only this catalog's managed products are archived; a detached one stays detached.
        (Some(_), Some(Claim::Unmanaged | Claim::Detached)) => w.report.skipped_unmanaged = true,
        (Some(p), _) if !p.active => {
            w.report.unchanged = true;
            w.report.archived = true;
        }
        (Some(_), _) => {
            if let ArchivePermit::Held(why) = intent.archives.permit(catalog_id).await? {
                tracing::warn!(reason = %why, "archive held for confirmation");
                w.report.archive_held = Some(why);
                return Ok(());
            }
            let mut form = Form::new();
            form.push("active", "false");
            let key = w.key(Step::ArchiveProduct, "", &form);
            let r = w.stripe.update_product(id, &form, &key).await?;
            w.seen.product(&r.value, seen_in(&r.request_id));
            w.record("archive_product".into(), r.request_id);
            w.report.archived = true;
        }
    }
    Ok(())
}
