//! The mirror of Stripe's state (`catalog_sync.stripe_products`, `catalog_sync.stripe_prices`):
//! catalog-sync's Stripe products and prices as last seen. Three things write it: every upsert
//! (from Stripe's answers), every webhook event and event-feed page, and every scan of Stripe's
//! lists. The reconciliation compares the catalog with it instead of reading Stripe per product.
//!
//! It is a cache. A difference it shows is repaired by a product sync, which reads Stripe again
//! before it writes anything, so a wrong row costs at most a read; a drift it misses is found by
//! the next scan, which rewrites every row it sees and deletes the rows it did not see.
//!
//! Ordering: a product write older than the row (Stripe's `updated`) is ignored; prices have no
//! `updated` in Stripe, so the last write of a price wins.

use std::collections::BTreeSet;

use domain::mirror::MirrorRow;
use sqlx::Row;

use crate::{Catalog, CatalogError, placeholders};

/// The two kinds of object the mirror holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MirrorKind {
    /// `catalog_sync.stripe_products`.
    Products,
    /// `catalog_sync.stripe_prices`.
    Prices,
}

impl MirrorKind {
    fn table(self) -> &'static str {
        match self {
            Self::Products => "catalog_sync.stripe_products",
            Self::Prices => "catalog_sync.stripe_prices",
        }
    }
}

/// Rows a write takes at once: 7 parameters each, well under both backends' limits.
const WRITE_BATCH: usize = 100;

/// How many objects the mirror holds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MirrorCounts {
    /// Products.
    pub products: u64,
    /// Prices.
    pub prices: u64,
}

/// Decodes a row of `id, product_id, active, lookup_key, updated, seen_in, object` on either
/// backend.
macro_rules! decode_row {
    ($row:expr) => {{
        let row = $row;
        MirrorRow {
            id: row.try_get("id")?,
            product_id: row.try_get("product_id")?,
            active: row.try_get("active")?,
            lookup_key: row.try_get("lookup_key")?,
            updated: row.try_get("updated")?,
            seen_in: row.try_get("seen_in")?,
            object: row.try_get("object")?,
        }
    }};
}

/// The columns [`decode_row!`] reads, for either table.
fn columns(kind: MirrorKind) -> &'static str {
    match kind {
        MirrorKind::Products => {
            "id, id AS product_id, active, CAST(NULL AS TEXT) AS lookup_key, updated, seen_in, object"
        }
        MirrorKind::Prices => {
            "id, product_id, active, lookup_key, CAST(NULL AS BIGINT) AS updated, seen_in, object"
        }
    }
}

impl Catalog {
    /// Writes what was seen of `rows` at `seen_at_ms`: inserted, or replacing the row unless the
    /// row holds a newer product (Stripe's `updated`).
    pub async fn mirror_put(
        &self,
        kind: MirrorKind,
        rows: &[MirrorRow],
        seen_at_ms: i64,
    ) -> Result<(), CatalogError> {
        let table = kind.table();
        let per_row = match kind {
            MirrorKind::Products => 6,
            MirrorKind::Prices => 7,
        };
        for batch in rows.chunks(WRITE_BATCH) {
            let values = (0..batch.len())
                .map(|i| format!("({})", crate::placeholders_after(i * per_row, per_row)))
                .collect::<Vec<_>>()
                .join(", ");
            let sql = match kind {
                MirrorKind::Products => format!(
                    "INSERT INTO {table} (id, active, updated, seen_in, seen_at, object) \
                     VALUES {values} ON CONFLICT (id) DO UPDATE SET active = excluded.active, \
                     updated = excluded.updated, seen_in = excluded.seen_in, \
                     seen_at = excluded.seen_at, object = excluded.object \
                     WHERE excluded.updated IS NULL OR {table}.updated IS NULL \
                     OR excluded.updated >= {table}.updated"
                ),
                MirrorKind::Prices => format!(
                    "INSERT INTO {table} (id, product_id, active, lookup_key, seen_in, seen_at, \
                     object) VALUES {values} ON CONFLICT (id) DO UPDATE SET \
                     product_id = excluded.product_id, active = excluded.active, \
                     lookup_key = excluded.lookup_key, seen_in = excluded.seen_in, \
                     seen_at = excluded.seen_at, object = excluded.object"
                ),
            };
            let sql = self.own(&sql).into_owned();
            on_pool!(self, pool => {
                let mut query = sqlx::query(&sql);
                for row in batch {
                    query = query.bind(&row.id);
                    if kind == MirrorKind::Prices {
                        query = query.bind(&row.product_id);
                    }
                    query = query.bind(row.active);
                    query = match kind {
                        MirrorKind::Products => query.bind(row.updated),
                        MirrorKind::Prices => query.bind(&row.lookup_key),
                    };
                    query = query.bind(&row.seen_in).bind(seen_at_ms).bind(&row.object);
                }
                query.execute(pool).await?;
            });
        }
        Ok(())
    }

    /// The mirrored products of `ids` (at most a page), in id order.
    pub async fn mirror_products(&self, ids: &[String]) -> Result<Vec<MirrorRow>, CatalogError> {
        self.mirror_rows(MirrorKind::Products, "id", ids).await
    }

    /// The mirrored prices of the products `product_ids`, active and archived.
    pub async fn mirror_prices_of(
        &self,
        product_ids: &[String],
    ) -> Result<Vec<MirrorRow>, CatalogError> {
        self.mirror_rows(MirrorKind::Prices, "product_id", product_ids)
            .await
    }

    /// The mirrored prices of `ids`.
    pub async fn mirror_prices(&self, ids: &[String]) -> Result<Vec<MirrorRow>, CatalogError> {
        self.mirror_rows(MirrorKind::Prices, "id", ids).await
    }

    async fn mirror_rows(
        &self,
        kind: MirrorKind,
        column: &str,
        ids: &[String],
    ) -> Result<Vec<MirrorRow>, CatalogError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let sql = self
            .own(&format!(
                "SELECT {} FROM {} WHERE {column} IN ({}) ORDER BY id",
                columns(kind),
                kind.table(),
                placeholders(ids.len())
            ))
            .into_owned();
        on_pool!(self, pool => {
            let mut query = sqlx::query(&sql);
            for id in ids {
                query = query.bind(id);
            }
            let mut out = Vec::new();
            for row in query.fetch_all(pool).await? {
                out.push(decode_row!(row));
            }
            Ok(out)
        })
    }

    /// Up to `limit` active mirrored products after `after` within `[from, to]`, in id order: the
    /// candidates for orphans.
    pub async fn mirror_active_products(
        &self,
        after: &str,
        from: Option<&str>,
        to: Option<&str>,
        limit: i64,
    ) -> Result<Vec<MirrorRow>, CatalogError> {
        let mut filter = String::new();
        let mut next = 1;
        if from.is_some() {
            next += 1;
            filter.push_str(&format!(" AND id >= ${next}"));
        }
        if to.is_some() {
            next += 1;
            filter.push_str(&format!(" AND id <= ${next}"));
        }
        let sql = self
            .own(&format!(
                "SELECT {} FROM {} WHERE active AND id > $1{filter} ORDER BY id LIMIT {limit}",
                columns(MirrorKind::Products),
                MirrorKind::Products.table(),
            ))
            .into_owned();
        on_pool!(self, pool => {
            let mut query = sqlx::query(&sql).bind(after);
            for bound in [from, to].into_iter().flatten() {
                query = query.bind(bound);
            }
            let mut out = Vec::new();
            for row in query.fetch_all(pool).await? {
                out.push(decode_row!(row));
            }
            Ok(out)
        })
    }

    /// Of `ids`, those the mirror holds a product for.
    pub async fn mirror_known_products(
        &self,
        ids: &[String],
    ) -> Result<BTreeSet<String>, CatalogError> {
        if ids.is_empty() {
            return Ok(BTreeSet::new());
        }
        let sql = self
            .own(&format!(
                "SELECT id FROM {} WHERE id IN ({})",
                MirrorKind::Products.table(),
                placeholders(ids.len())
            ))
            .into_owned();
        on_pool!(self, pool => {
            let mut query = sqlx::query_scalar::<_, String>(&sql);
            for id in ids {
                query = query.bind(id);
            }
            Ok(query.fetch_all(pool).await?.into_iter().collect())
        })
    }

    /// Deletes the rows of `kind` last written before `seen_before_ms`: what a scan that started
    /// then did not see is gone from Stripe (or no longer catalog-sync's). Returns how many.
    pub async fn mirror_prune(
        &self,
        kind: MirrorKind,
        seen_before_ms: i64,
    ) -> Result<u64, CatalogError> {
        let sql = self
            .own(&format!("DELETE FROM {} WHERE seen_at < $1", kind.table()))
            .into_owned();
        on_pool!(self, pool => {
            Ok(sqlx::query(&sql).bind(seen_before_ms).execute(pool).await?.rows_affected())
        })
    }

    /// Deletes one row (an object Stripe deleted).
    pub async fn mirror_delete(&self, kind: MirrorKind, id: &str) -> Result<(), CatalogError> {
        let sql = self
            .own(&format!("DELETE FROM {} WHERE id = $1", kind.table()))
            .into_owned();
        on_pool!(self, pool => {
            sqlx::query(&sql).bind(id).execute(pool).await?;
            Ok(())
        })
    }

    /// How many products and prices the mirror holds.
    pub async fn mirror_counts(&self) -> Result<MirrorCounts, CatalogError> {
        let sql = self.own(
            "SELECT (SELECT COUNT(*) FROM catalog_sync.stripe_products), \
             (SELECT COUNT(*) FROM catalog_sync.stripe_prices)",
        );
        on_pool!(self, pool => {
            let (products, prices): (i64, i64) = sqlx::query_as(&sql).fetch_one(pool).await?;
            Ok(MirrorCounts {
                products: products.max(0) as u64,
                prices: prices.max(0) as u64,
            })
        })
    }

    /// The value of one of catalog-sync's named cursors (`catalog_sync.cursors`), if set.
    pub async fn cursor(&self, name: &str) -> Result<Option<String>, CatalogError> {
        let sql = self.own("SELECT value FROM catalog_sync.cursors WHERE name = $1");
        on_pool!(self, pool => {
            Ok(sqlx::query_scalar::<_, String>(&sql).bind(name).fetch_optional(pool).await?)
        })
    }

    /// Sets one of catalog-sync's named cursors.
    pub async fn set_cursor(&self, name: &str, value: &str) -> Result<(), CatalogError> {
        let sql = self.own(
            "INSERT INTO catalog_sync.cursors (name, value) VALUES ($1, $2) \
             ON CONFLICT (name) DO UPDATE SET value = excluded.value",
        );
        on_pool!(self, pool => {
            sqlx::query(&sql).bind(name).bind(value).execute(pool).await?;
            Ok(())
        })
    }
}
