//! Log-based change capture (issue 35), its first part: from the `pgoutput` messages of a
//! logical replication slot to the products each committed transaction changed. The tables
//! followed are those triggers would follow (`mapping::Captured`: a mapped table, or a
//! query's `capture_table`), each with the column naming its product; the tracer reads that
//! column from every inserted, updated and deleted row.
//!
//! A delete (or an update that moves a row to another product) carries only the row's replica
//! identity: the primary key by default. Where the product column is not part of it (a price
//! table keyed by its own serial id), the row's product cannot be known from the log, so such a
//! table needs `REPLICA IDENTITY FULL`; a change that still cannot be traced is reported as such
//! ([`Committed::untraceable`]), never dropped, so that its reader can answer with a full
//! reconciliation.

pub mod pgoutput;
mod slot;

use std::collections::{BTreeMap, BTreeSet};

use pgoutput::{Message, Relation, Tuple, Value};

pub use pgoutput::DecodeError;
pub use slot::{PUBLICATION, SlotState};

/// A table whose changes are changes of products: its oid, its name (for messages) and the
/// column holding the product's id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TracedTable {
    /// The table's oid (`'schema.table'::regclass`).
    pub oid: u32,
    /// Its name, as configured.
    pub name: String,
    /// Its column holding the product's id, or (`through`) the key of a row naming it.
    pub key: String,
    /// The column holds the key of another table's row, which names the product
    /// (`[[catalog.follow]]` with `through`): [`Committed::through`] collects it.
    pub through: bool,
}

/// What one committed transaction changed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Committed {
    /// Where a reader that has handed these changes over resumes (the slot's position to
    /// confirm).
    pub end_lsn: u64,
    /// The products whose rows it inserted, updated or deleted (both ids of a re-keyed one).
    pub products: BTreeSet<String>,
    /// By table, the keys of rows naming products through another table (a Spree price's
    /// variant ids), which [`crate::Catalog::products_through`] turns into products.
    pub through: BTreeMap<String, BTreeSet<String>>,
    /// Followed tables it changed in a way the log does not trace to a product: a truncate, or
    /// a delete whose old row lacks the product column (the table's replica identity does not
    /// hold it). Each calls for a full reconciliation.
    pub untraceable: BTreeSet<String>,
}

/// Follows a slot's messages, one transaction at a time.
#[derive(Debug, Clone)]
pub struct Tracer {
    tables: BTreeMap<u32, TracedTable>,
    /// The shapes of the followed tables, as the stream last described them.
    relations: BTreeMap<u32, Relation>,
    current: Committed,
}

impl Tracer {
    /// A tracer of `tables`' changes.
    pub fn new(tables: Vec<TracedTable>) -> Self {
        Self {
            tables: tables.into_iter().map(|t| (t.oid, t)).collect(),
            relations: BTreeMap::new(),
            current: Committed::default(),
        }
    }

    /// Feeds one message (the bytes of one `XLogData`); at a commit, returns what the
    /// transaction changed (also when it changed no followed table: its position is still
    /// to be confirmed).
    pub fn feed(&mut self, bytes: &[u8]) -> Result<Option<Committed>, DecodeError> {
        match pgoutput::decode(bytes)? {
            Message::Begin { .. } => self.begin(),
            Message::Commit { end_lsn, .. } => return Ok(Some(self.commit(end_lsn))),
            Message::Relation(relation) => {
                self.relations.insert(relation.oid, relation);
            }
            Message::Insert { relation, new } => self.row(relation, Some(&new), true),
            Message::Update { relation, old, new } => {
                self.row(relation, Some(&new), true);
                // The old key is sent when it changed: the row left that product.
                if let Some(old) = old {
                    self.row(relation, Some(&old), false);
                }
            }
            Message::Delete { relation, old } => self.row(relation, Some(&old), false),
            Message::Truncate { relations } => {
                for oid in relations {
                    if let Some(table) = self.tables.get(&oid) {
                        self.current.untraceable.insert(table.name.clone());
                    }
                }
            }
            Message::Other(_) => {}
        }
        Ok(None)
    }

    /// A transaction begins (a reader whose client decodes `Begin` itself calls this).
    pub fn begin(&mut self) {
        self.current = Committed::default();
    }

    /// The transaction committed, ending at `end_lsn`: what it changed.
    pub fn commit(&mut self, end_lsn: u64) -> Committed {
        let mut done = std::mem::take(&mut self.current);
        done.end_lsn = end_lsn;
        done
    }

    /// Records the product of `row` of table `oid`; `complete`: a new row, which holds every
    /// column (an old one holds the replica identity's).
    fn row(&mut self, oid: u32, row: Option<&Tuple>, complete: bool) {
        let Some(table) = self.tables.get(&oid) else {
            return;
        };
        let product = self.relations.get(&oid).and_then(|relation| {
            let at = relation.columns.iter().position(|c| c.name == table.key)?;
            match row?.get(at)? {
                Value::Text(id) => Some(id.clone()),
                Value::Null | Value::Unchanged => None,
            }
        });
        match product {
            Some(key) if table.through => {
                self.current
                    .through
                    .entry(table.name.clone())
                    .or_default()
                    .insert(key);
            }
            Some(id) => {
                self.current.products.insert(id);
            }
            // A new row without a product is no product's; an old one is untraceable.
            None if complete => {}
            None => {
                self.current.untraceable.insert(table.name.clone());
            }
        }
    }
}

impl crate::Catalog {
    /// The tables log-based capture follows, with their oids (PostgreSQL only): the built-in
    /// tables, or the mapped ones (a query's `capture_table`) and the `[[catalog.follow]]`
    /// ones. Refused, naming it, while the mapping reads a table none of them is: its changes
    /// would reach no product.
    pub async fn logical_tables(&self) -> Result<Vec<TracedTable>, crate::CatalogError> {
        let crate::Db::Postgres(pool) = &self.db else {
            return Err(crate::CatalogError::Capture(
                "log-based capture reads PostgreSQL's write-ahead log: SQLite has none (use \
                 triggers or polling)"
                    .into(),
            ));
        };
        // (quoted, name, key column, through)
        let followed: Vec<(String, String, String, bool)> = match &self.queries.mapped {
            None => vec![
                (
                    "catalog_products".into(),
                    "catalog_products".into(),
                    "id".into(),
                    false,
                ),
                (
                    "catalog_prices".into(),
                    "catalog_prices".into(),
                    "product_id".into(),
                    false,
                ),
            ],
            Some(mapped) => [
                ("products", &mapped.products_capture),
                ("prices", &mapped.prices_capture),
            ]
            .into_iter()
            .filter_map(|(what, captured)| match captured {
                Some(c) => Some(Ok((
                    c.quoted.clone(),
                    c.name.clone(),
                    c.key.name.clone(),
                    false,
                ))),
                // A query without a capture table is fine when `follow` covers what it reads.
                None if !mapped.follow.is_empty() => None,
                None => Some(Err(crate::CatalogError::Capture(format!(
                    "catalog.{what} reads a query, and the log names tables: name the table \
                     whose changes the query follows (catalog.{what}.capture_table, with \
                     capture_key its product id column), or list the tables it reads as \
                     [[catalog.follow]]"
                )))),
            })
            .chain(mapped.follow.iter().map(|f| {
                Ok((
                    f.quoted.clone(),
                    f.name.clone(),
                    f.key.clone(),
                    f.lookup.is_some(),
                ))
            }))
            .collect::<Result<_, crate::CatalogError>>()?,
        };
        let mut tables: Vec<TracedTable> = Vec::new();
        for (quoted, name, key, through) in followed {
            let oid: Option<i64> = sqlx::query_scalar("SELECT to_regclass($1)::oid::bigint")
                .bind(&quoted)
                .fetch_one(pool)
                .await?;
            let oid =
                oid.ok_or_else(|| crate::CatalogError::Capture(format!("table {name} not found")))?;
            let oid = u32::try_from(oid).expect("an oid is 32 bits");
            if !tables.iter().any(|t| t.oid == oid) {
                tables.push(TracedTable {
                    oid,
                    name,
                    key,
                    through,
                });
            }
        }
        let unfollowed: Vec<String> = self
            .tables_read()
            .await?
            .into_iter()
            .filter(|(oid, _)| !tables.iter().any(|t| t.oid == *oid))
            .map(|(_, name)| name)
            .collect();
        if !unfollowed.is_empty() {
            return Err(crate::CatalogError::Capture(format!(
                "the mapping's queries read {}, whose changes the log would trace to no product: \
                 follow each as [[catalog.follow]] with table and product (its column holding \
                 the product's id), or key and through (its column naming a row of the table \
                 whose product column that is)",
                unfollowed.join(", ")
            )));
        }
        Ok(tables)
    }

    /// Every table the products and prices relations read, as the planner reads them (oid and
    /// `schema.table`): a view or a join is seen through.
    async fn tables_read(&self) -> Result<Vec<(u32, String)>, crate::CatalogError> {
        let crate::Db::Postgres(pool) = &self.db else {
            return Ok(Vec::new());
        };
        let mut read = BTreeMap::new();
        for relation in [&self.queries.products, &self.queries.prices] {
            let plan: serde_json::Value = sqlx::query_scalar(&format!(
                "EXPLAIN (VERBOSE, FORMAT JSON) SELECT * FROM {relation}"
            ))
            .fetch_one(pool)
            .await?;
            let mut found = Vec::new();
            relations_in(&plan, &mut found);
            for (schema, table) in found {
                let oid: Option<i64> = sqlx::query_scalar(
                    "SELECT to_regclass(quote_ident($1) || '.' || quote_ident($2))::oid::bigint",
                )
                .bind(&schema)
                .bind(&table)
                .fetch_one(pool)
                .await?;
                if let Some(oid) = oid {
                    read.insert(
                        u32::try_from(oid).expect("an oid is 32 bits"),
                        format!("{schema}.{table}"),
                    );
                }
            }
        }
        Ok(read.into_iter().collect())
    }

    /// The products `committed` changed: its own, and those its rows name through another
    /// table (`[[catalog.follow]]` with `through`), looked up now. A row whose key names no
    /// row any more (deleted since) was left by its product, whose own change is in the log.
    pub async fn products_through(
        &self,
        committed: &Committed,
    ) -> Result<BTreeSet<String>, crate::CatalogError> {
        let mut products = committed.products.clone();
        let (crate::Db::Postgres(pool), Some(mapped)) = (&self.db, &self.queries.mapped) else {
            return Ok(products);
        };
        for (table, keys) in &committed.through {
            let Some(lookup) = mapped
                .follow
                .iter()
                .find(|f| &f.name == table)
                .and_then(|f| f.lookup.as_ref())
            else {
                continue;
            };
            let keys: Vec<String> = keys.iter().cloned().collect();
            let found: Vec<String> = sqlx::query_scalar(lookup)
                .bind(keys)
                .fetch_all(pool)
                .await?;
            products.extend(found);
        }
        Ok(products)
    }
}

/// The `(Schema, Relation Name)` of every scan in an `EXPLAIN (VERBOSE, FORMAT JSON)` plan.
fn relations_in(plan: &serde_json::Value, found: &mut Vec<(String, String)>) {
    match plan {
        serde_json::Value::Array(items) => items.iter().for_each(|i| relations_in(i, found)),
        serde_json::Value::Object(fields) => {
            if let (Some(schema), Some(table)) = (
                fields.get("Schema").and_then(|v| v.as_str()),
                fields.get("Relation Name").and_then(|v| v.as_str()),
            ) {
                found.push((schema.to_string(), table.to_string()));
            }
            fields.values().for_each(|v| relations_in(v, found));
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_transaction_names_the_products_of_its_rows() {
        let mut tracer = Tracer::new(vec![TracedTable {
            oid: 7,
            name: "shop.item_prices".into(),
            key: "item_sku".into(),
            through: false,
        }]);
        tracer.relations.insert(
            7,
            Relation {
                oid: 7,
                namespace: "shop".into(),
                name: "item_prices".into(),
                replica_identity: b'd',
                columns: vec![
                    pgoutput::Column {
                        name: "price_id".into(),
                        key: true,
                    },
                    pgoutput::Column {
                        name: "item_sku".into(),
                        key: false,
                    },
                ],
            },
        );
        let text = |s: &str| Value::Text(s.into());
        tracer.row(7, Some(&vec![text("1"), text("mug")]), true);
        tracer.row(8, Some(&vec![text("1"), text("elsewhere")]), true);
        // A delete with the default identity carries the price id alone.
        tracer.row(7, Some(&vec![text("2"), Value::Null]), false);
        let done = std::mem::take(&mut tracer.current);
        assert_eq!(done.products, BTreeSet::from(["mug".to_string()]));
        assert_eq!(
            done.untraceable,
            BTreeSet::from(["shop.item_prices".to_string()])
        );
    }

    #[test]
    fn a_plan_names_every_table_it_scans() {
        let plan = serde_json::json!([{"Plan": {
            "Node Type": "Hash Join",
            "Plans": [
                {"Node Type": "Seq Scan", "Relation Name": "prices", "Schema": "spree"},
                {"Node Type": "Hash", "Plans": [
                    {"Node Type": "Index Scan", "Relation Name": "variants", "Schema": "spree"}
                ]}
            ]
        }}]);
        let mut found = Vec::new();
        relations_in(&plan, &mut found);
        assert_eq!(
            found,
            [
                ("spree".to_string(), "prices".to_string()),
                ("spree".to_string(), "variants".to_string())
            ]
        );
    }
}
