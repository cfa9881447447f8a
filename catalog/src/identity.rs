//! The catalog's identity: a name catalog-sync gives the catalog in this database the first time
//! it migrates it (`cat_` and 16 random hex digits), kept in `catalog_sync.identity`. Every Stripe
//! object catalog-sync creates carries it in its metadata, and a process touches only the objects
//! that carry its own catalog's identity: see `stripe::identity`.

use crate::{Catalog, CatalogError};

impl Catalog {
    /// Gives the catalog its identity if it has none yet (part of [`Catalog::migrate`]); `true`
    /// when it made one. Processes migrating together agree: the first insert wins.
    pub(crate) async fn ensure_identity(&self) -> Result<bool, CatalogError> {
        let fresh = format!("cat_{}", hex::encode(rand::random::<[u8; 8]>()));
        let insert = self.own(
            "INSERT INTO catalog_sync.identity (only_row, catalog) VALUES (TRUE, $1) \
             ON CONFLICT (only_row) DO NOTHING",
        );
        Ok(on_pool!(self, pool => {
            sqlx::query(&insert).bind(&fresh).execute(pool).await?.rows_affected() == 1
        }))
    }

    /// The catalog's identity.
    pub async fn identity(&self) -> Result<String, CatalogError> {
        let select = self.own("SELECT catalog FROM catalog_sync.identity WHERE only_row");
        let stored: Option<String> = on_pool!(self, pool => {
            sqlx::query_scalar(&select).fetch_optional(pool).await?
        });
        stored.ok_or_else(|| {
            CatalogError::Schema("the catalog has no identity yet: run `starter migrate`".into())
        })
    }
}
