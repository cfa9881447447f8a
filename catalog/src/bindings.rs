//! Bindings: a catalog row handed an existing Stripe product (`prod_…`, made before catalog-sync)
//! by `starter import`, kept in `catalog_sync.bindings`. The sync writes a bound row to its
//! product (`CatalogProduct::bound_stripe_id`, read with the row), and Stripe's events, the
//! reconciliation's sweeps and `verify` find the row of a bound product here: a product is its
//! catalog row by its own id or by its binding, never by metadata a Dashboard user can edit.
//!
//! One product per row and one row per product (both keys unique). A binding outlives its row,
//! so that a row deleted for good still archives the product it was bound to.

use std::collections::BTreeMap;

use crate::rows::placeholders;
use crate::{Catalog, CatalogError};

/// What [`Catalog::bind`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Bound {
    /// Recorded now.
    New,
    /// Already bound so.
    Already,
}

impl Catalog {
    /// `SELECT`s the products relation's columns and the row's binding (`bound_stripe_id`).
    pub(crate) fn product_select(&self) -> String {
        format!(
            "{}, (SELECT b.stripe_id FROM {} b WHERE b.catalog_id = products.id) AS bound_stripe_id",
            crate::product_columns(),
            self.own("catalog_sync.bindings")
        )
    }

    /// Binds the row `catalog_id` to the Stripe product `stripe_id`; refused when either is
    /// bound otherwise already (naming that binding).
    pub async fn bind(&self, catalog_id: &str, stripe_id: &str) -> Result<Bound, CatalogError> {
        let now = chrono::Utc::now().timestamp_millis();
        let insert = self.own(
            "INSERT INTO catalog_sync.bindings (catalog_id, stripe_id, bound_at) \
             VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
        );
        let inserted = on_pool!(self, pool => {
            sqlx::query(&insert)
                .bind(catalog_id)
                .bind(stripe_id)
                .bind(now)
                .execute(pool)
                .await?
                .rows_affected()
        });
        if inserted == 1 {
            return Ok(Bound::New);
        }
        let ours = self.stripe_ids_of(&[catalog_id.to_string()]).await?;
        let theirs = self.catalog_ids_of(&[stripe_id.to_string()]).await?;
        match (ours.get(catalog_id), theirs.get(stripe_id)) {
            (Some(bound), _) if bound == stripe_id => Ok(Bound::Already),
            (Some(bound), _) => Err(CatalogError::Binding(format!(
                "catalog row {catalog_id} is bound to Stripe product {bound} already, not to \
                 {stripe_id}"
            ))),
            (None, Some(row)) => Err(CatalogError::Binding(format!(
                "Stripe product {stripe_id} is bound to catalog row {row} already: one row per \
                 product"
            ))),
            (None, None) => Err(CatalogError::Binding(format!(
                "binding {catalog_id} to {stripe_id} was not recorded (a concurrent import?): \
                 run it again"
            ))),
        }
    }

    /// The products the rows of `catalog_ids` are bound to, by catalog id (unbound rows left
    /// out).
    pub async fn stripe_ids_of(
        &self,
        catalog_ids: &[String],
    ) -> Result<BTreeMap<String, String>, CatalogError> {
        self.bindings_where("catalog_id", catalog_ids).await
    }

    /// The rows the Stripe products `stripe_ids` are bound to, by Stripe id (unbound products
    /// left out).
    pub async fn catalog_ids_of(
        &self,
        stripe_ids: &[String],
    ) -> Result<BTreeMap<String, String>, CatalogError> {
        Ok(self
            .bindings_where("stripe_id", stripe_ids)
            .await?
            .into_iter()
            .map(|(catalog, stripe)| (stripe, catalog))
            .collect())
    }

    /// The catalog id of each Stripe product of `stripe_ids`, in order: the row it is bound to,
    /// else its own id.
    pub async fn rows_of_products(
        &self,
        stripe_ids: &[String],
    ) -> Result<Vec<String>, CatalogError> {
        let bound = self.catalog_ids_of(stripe_ids).await?;
        Ok(stripe_ids
            .iter()
            .map(|id| bound.get(id).unwrap_or(id).clone())
            .collect())
    }

    /// Every binding, catalog id to Stripe id.
    pub async fn bindings(&self) -> Result<BTreeMap<String, String>, CatalogError> {
        let sql = self.own("SELECT catalog_id, stripe_id FROM catalog_sync.bindings");
        Ok(on_pool!(self, pool => {
            sqlx::query_as::<_, (String, String)>(&sql).fetch_all(pool).await?.into_iter().collect()
        }))
    }

    /// `(catalog_id, stripe_id)` of the bindings whose `column` is among `values`.
    async fn bindings_where(
        &self,
        column: &str,
        values: &[String],
    ) -> Result<BTreeMap<String, String>, CatalogError> {
        let mut found = BTreeMap::new();
        for chunk in values.chunks(500) {
            let sql = format!(
                "SELECT catalog_id, stripe_id FROM catalog_sync.bindings WHERE {column} IN ({})",
                placeholders(chunk.len())
            );
            let sql = self.own(&sql);
            let rows: Vec<(String, String)> = on_pool!(self, pool => {
                let mut query = sqlx::query_as(&sql);
                for v in chunk {
                    query = query.bind(v);
                }
                query.fetch_all(pool).await?
            });
            found.extend(rows);
        }
        Ok(found)
    }
}
