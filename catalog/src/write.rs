//! Writing the catalog: the built-in tables' products and prices (the sample data, tests,
//! `starter catalog`), write-back of a Stripe-owned field, and deletes.

use domain::fields::{Column, PRODUCT_FIELDS, price_scalars, product_field};
use domain::model::{CatalogPrice, CatalogProduct};
use sqlx::Row;

use crate::rows::{
    NO_MAJOR_AMOUNT, column_error, json_column, optional_json, placeholders, stored_price_columns,
};
use crate::{Catalog, CatalogError, Db};

impl Catalog {
    /// Inserts or replaces a product and all its prices in one transaction (the version grows).
    pub async fn save_product(&self, p: &CatalogProduct) -> Result<(), CatalogError> {
        self.save_products(std::slice::from_ref(p)).await
    }

    /// Inserts or replaces products and their prices, all in one transaction. A product saved as
    /// it already is keeps its version (no change is captured).
    pub async fn save_products(&self, products: &[CatalogProduct]) -> Result<(), CatalogError> {
        self.builtin_only("writing products")?;
        let upsert = builtin_product_upsert();
        let scalars: Vec<&str> = price_scalars().map(|(name, _)| name).collect();
        let insert_price = format!(
            "INSERT INTO catalog_prices (product_id, position, currency, unit_amount, \
             recurring_interval, recurring_interval_count, metadata, tiers, tiers_mode, \
             currency_options, custom_unit_amount, transform_quantity, usage_type, meter, \
             lookup_key, {}) VALUES ({})",
            scalars.join(", "),
            placeholders(15 + scalars.len())
        );
        let select_prices = format!(
            "SELECT {}, {NO_MAJOR_AMOUNT} FROM catalog_prices WHERE product_id = $1 \
             ORDER BY position, id",
            stored_price_columns()
        );
        fn json<T: serde::Serialize>(value: &T) -> String {
            serde_json::to_string(value).expect("plain data serializes")
        }
        on_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            for p in products {
                let metadata = serde_json::to_string(&p.metadata).expect("strings serialize");
                let mut query = sqlx::query(&upsert).bind(&p.id).bind(p.active).bind(metadata);
                for field in PRODUCT_FIELDS {
                    query = match field.codec.column(&(field.access.catalog)(p)) {
                        Column::Text(text) => query.bind(text),
                        Column::Flag(flag) => query.bind(flag),
                    };
                }
                query.execute(&mut *tx).await?;
                let rows = sqlx::query(&select_prices).bind(&p.id).fetch_all(&mut *tx).await?;
                let mut existing = Vec::with_capacity(rows.len());
                for (index, row) in rows.iter().enumerate() {
                    existing.push(decode_price!(row, index).1);
                }
                // Prices are replaced only when they changed, so an edit of the name alone is one version.
                if existing != p.prices {
                    sqlx::query("DELETE FROM catalog_prices WHERE product_id = $1").bind(&p.id).execute(&mut *tx).await?;
                    for (position, c) in p.prices.iter().enumerate() {
                        let mut query = sqlx::query(&insert_price)
                            .bind(&p.id).bind(position as i32).bind(&c.currency).bind(c.unit_amount)
                            .bind(&c.recurring_interval).bind(c.recurring_interval_count.map(|n| n as i32))
                            .bind(json(&c.metadata)).bind(json(&c.tiers)).bind(&c.tiers_mode)
                            .bind(json(&c.currency_options)).bind(c.custom_unit_amount.as_ref().map(json))
                            .bind(c.transform_quantity.as_ref().map(json)).bind(&c.usage_type)
                            .bind(&c.meter).bind(&c.lookup_key);
                        for (_, scalar) in price_scalars() {
                            query = match scalar.codec.column(&(scalar.access.catalog)(c)) {
                                Column::Text(text) => query.bind(text),
                                Column::Flag(flag) => query.bind(flag),
                            };
                        }
                        query.execute(&mut *tx).await?;
                    }
                }
            }
            tx.commit().await?;
            Ok(())
        })
    }

    /// Whether write-back of `field` can succeed here, checked at start so that a field it
    /// cannot write is refused then, with the reason, and not on each Dashboard edit (the
    /// webhook would fail and Stripe retry it for days): built-in tables take every product
    /// field ([`domain::fields::PRODUCT_FIELDS`]); a mapping, a text column of a table.
    pub fn check_write_back(&self, field: &str) -> Result<(), CatalogError> {
        if product_field(field).is_none() {
            return Err(CatalogError::NotWritable(field.to_string()));
        }
        match &self.queries.mapped {
            None => Ok(()),
            Some(mapped) => mapped.write_back_sql(field).map(|_| ()),
        }
    }

    /// Copies a Stripe-owned field's value (as Stripe's JSON has it) into the catalog row, for
    /// write-back of Dashboard edits. The version grows, so the change is captured like any other.
    /// Returns whether the row exists.
    pub async fn write_back_field(
        &self,
        id: &str,
        field: &str,
        value: &serde_json::Value,
    ) -> Result<bool, CatalogError> {
        let field =
            product_field(field).ok_or_else(|| CatalogError::NotWritable(field.to_string()))?;
        let sql = match &self.queries.mapped {
            None => format!(
                "UPDATE catalog_products SET {} = $2 WHERE id = $1",
                field.name
            ),
            Some(mapped) => mapped.write_back_sql(field.name)?,
        };
        // Lists and objects as the JSON text the columns hold (marketing features as names).
        match field.codec.column(&field.codec.from_stripe(value)) {
            Column::Flag(flag) => on_pool!(self, pool => {
                Ok(sqlx::query(&sql).bind(id).bind(flag).execute(pool).await?.rows_affected() > 0)
            }),
            Column::Text(text) => on_pool!(self, pool => {
                Ok(sqlx::query(&sql).bind(id).bind(&text).execute(pool).await?.rows_affected() > 0)
            }),
        }
    }

    /// Soft-deletes a product (`deleted_at` set; the sync archives it in Stripe).
    pub async fn soft_delete(&self, id: &str) -> Result<bool, CatalogError> {
        self.builtin_only("deleting a product")?;
        let sql = match &self.db {
            Db::Postgres(_) => {
                "UPDATE catalog_products SET deleted_at = now() WHERE id = $1 AND deleted_at IS NULL"
            }
            Db::Sqlite(_) => {
                "UPDATE catalog_products SET deleted_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now') WHERE id = $1 AND deleted_at IS NULL"
            }
        };
        on_pool!(self, pool => {
            Ok(sqlx::query(sql).bind(id).execute(pool).await?.rows_affected() > 0)
        })
    }

    /// Removes a product row for good (its prices go with it).
    pub async fn hard_delete(&self, id: &str) -> Result<bool, CatalogError> {
        self.builtin_only("deleting a product")?;
        on_pool!(self, pool => {
            Ok(sqlx::query("DELETE FROM catalog_products WHERE id = $1").bind(id).execute(pool).await?.rows_affected() > 0)
        })
    }
}

/// The built-in table's upsert of a product: `id`, `active`, `metadata`, then every field of
/// [`PRODUCT_FIELDS`] in order; a row is written (and its version grows) only when a value
/// changed or it was deleted.
fn builtin_product_upsert() -> String {
    let columns: Vec<&str> = ["id", "active", "metadata"]
        .into_iter()
        .chain(PRODUCT_FIELDS.iter().map(|f| f.name))
        .collect();
    let set: Vec<String> = columns[1..]
        .iter()
        .map(|c| format!("{c} = excluded.{c}"))
        .collect();
    let changed: Vec<String> = columns[1..]
        .iter()
        .map(|c| format!("catalog_products.{c} IS DISTINCT FROM excluded.{c}"))
        .collect();
    format!(
        "INSERT INTO catalog_products ({}) VALUES ({}) \
         ON CONFLICT (id) DO UPDATE SET {}, deleted_at = NULL \
         WHERE {} OR catalog_products.deleted_at IS NOT NULL",
        columns.join(", "),
        placeholders(columns.len()),
        set.join(", "),
        changed.join(" OR "),
    )
}
