//! Change capture on a team's own tables, by choice: `starter capture install` adds triggers to
//! the mapped product and price tables that append every change to catalog-sync's outbox in the
//! writer's own transaction (as the built-in tables' triggers do); `--print` shows the SQL for a
//! DBA to review instead; `uninstall` removes them. Nothing else ever adds a trigger to a team's
//! table.
//!
//! PostgreSQL: one trigger per table, `catalog_sync_capture`, running `catalog_sync.capture()`
//! (made by `starter migrate`) with the id column's name; a deleted or re-keyed row counts as a
//! deletion of its product, any change of a price row as an update of its product. SQLite: three
//! triggers per table (`catalog_sync_capture_<table>_insert|update|delete`) doing the same.

use crate::mapping::{Captured, MappedColumn, MappedTables, quote_ident};
use crate::{Catalog, CatalogError, Db};

/// The PostgreSQL trigger's name on each table.
const TRIGGER: &str = "catalog_sync_capture";

/// What capture SQL is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CaptureAction {
    /// Add the triggers.
    Install,
    /// Remove them.
    Uninstall,
}

impl Catalog {
    /// The SQL that installs or removes capture triggers on the mapped tables, as `--print`
    /// shows it.
    pub fn capture_sql(&self, action: CaptureAction) -> Result<String, CatalogError> {
        let mapped = self.queries.mapped.as_ref().ok_or_else(|| {
            CatalogError::Capture(
                "the built-in catalog tables capture their changes already (starter migrate made \
                 their triggers); capture install is for a mapped catalog"
                    .into(),
            )
        })?;
        let tables = capture_tables(mapped)?;
        let mut sql = String::new();
        for table in &tables {
            sql.push_str(&match (&self.db, action) {
                (Db::Postgres(_), CaptureAction::Install) => postgres_install(table),
                (Db::Postgres(_), CaptureAction::Uninstall) => postgres_uninstall(table),
                (Db::Sqlite(_), CaptureAction::Install) => sqlite_install(table),
                (Db::Sqlite(_), CaptureAction::Uninstall) => sqlite_uninstall(table),
            });
        }
        Ok(sql)
    }

    /// Runs [`Catalog::capture_sql`] in one transaction and returns the SQL it ran.
    pub async fn capture(&self, action: CaptureAction) -> Result<String, CatalogError> {
        let sql = self.capture_sql(action)?;
        on_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            sqlx::raw_sql(&sql).execute(&mut *tx).await.map_err(|e| {
                CatalogError::Capture(format!(
                    "{e} (the database user needs the TRIGGER privilege on the mapped tables, or \
                     run the SQL of `starter capture install --print` as one that has it)"
                ))
            })?;
            tx.commit().await?;
        });
        Ok(sql)
    }

    /// Which of the mapped tables carry catalog-sync's capture triggers (the built-in tables
    /// always do). `Err` when a mapping reads a query, which triggers cannot follow.
    pub async fn capture_state(&self) -> Result<CaptureState, CatalogError> {
        let Some(mapped) = &self.queries.mapped else {
            return Ok(CaptureState {
                captured: vec!["built-in products".into(), "built-in prices".into()],
                missing: Vec::new(),
            });
        };
        let mut state = CaptureState::default();
        for table in &capture_tables(mapped)? {
            let present: i64 = match &self.db {
                Db::Postgres(pool) => {
                    sqlx::query_scalar(
                        "SELECT COUNT(*) FROM pg_trigger WHERE tgname = $1 AND tgrelid = to_regclass($2)",
                    )
                    .bind(TRIGGER)
                    .bind(&table.quoted)
                    .fetch_one(pool)
                    .await?
                }
                Db::Sqlite(pool) => {
                    sqlx::query_scalar(
                        "SELECT COUNT(*) FROM sqlite_master WHERE type = 'trigger' AND name = $1",
                    )
                    .bind(sqlite_trigger(table, "insert"))
                    .fetch_one(pool)
                    .await?
                }
            };
            if present > 0 {
                state.captured.push(table.quoted.clone());
            } else {
                state.missing.push(table.quoted.clone());
            }
        }
        Ok(state)
    }
}

/// Which mapped tables have catalog-sync's capture triggers ([`Catalog::capture_state`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CaptureState {
    /// Tables with the triggers.
    pub captured: Vec<String>,
    /// Tables without: their changes reach the outbox only by polling.
    pub missing: Vec<String>,
}

/// One table that gets triggers.
struct CaptureTable<'a> {
    /// Quoted, possibly schema-qualified (PostgreSQL).
    quoted: String,
    /// The bare table name (SQLite triggers are named after it).
    bare: String,
    id: &'a MappedColumn,
    version: Option<&'a MappedColumn>,
    is_price: bool,
}

fn capture_tables(mapped: &MappedTables) -> Result<Vec<CaptureTable<'_>>, CatalogError> {
    Ok(vec![
        capture_table("products", &mapped.products_capture, false)?,
        capture_table("prices", &mapped.prices_capture, true)?,
    ])
}

/// The table of one section (`what`), or why triggers cannot follow it.
fn capture_table<'a>(
    what: &str,
    captured: &'a Option<Captured>,
    is_price: bool,
) -> Result<CaptureTable<'a>, CatalogError> {
    let captured = captured.as_ref().ok_or_else(|| {
        CatalogError::Capture(format!(
            "catalog.{what} reads a query, and triggers need a table: name the table whose \
             changes the query follows (catalog.{what}.capture_table, with capture_key its \
             product id column), map the table itself, or use polling capture \
             (CATALOG_SYNC_CAPTURE=polling)"
        ))
    })?;
    Ok(CaptureTable {
        quoted: captured.quoted.clone(),
        bare: captured
            .name
            .rsplit('.')
            .next()
            .unwrap_or(&captured.name)
            .to_string(),
        id: &captured.key,
        version: captured.version.as_ref(),
        is_price,
    })
}

/// A SQL string literal.
fn literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

fn postgres_install(t: &CaptureTable<'_>) -> String {
    format!(
        "DROP TRIGGER IF EXISTS {TRIGGER} ON {table};\n\
         CREATE TRIGGER {TRIGGER} AFTER INSERT OR UPDATE OR DELETE ON {table}\n    \
         FOR EACH ROW EXECUTE FUNCTION catalog_sync.capture({id}, {version}, {kind});\n",
        table = t.quoted,
        id = literal(&t.id.name),
        version = literal(t.version.map_or("", |c| c.name.as_str())),
        kind = literal(if t.is_price { "price" } else { "product" }),
    )
}

fn postgres_uninstall(t: &CaptureTable<'_>) -> String {
    format!("DROP TRIGGER IF EXISTS {TRIGGER} ON {};\n", t.quoted)
}

fn sqlite_trigger(t: &CaptureTable<'_>, op: &str) -> String {
    format!("catalog_sync_capture_{}_{op}", t.bare)
}

fn sqlite_install(t: &CaptureTable<'_>) -> String {
    let table = quote_ident(&t.bare);
    let id = |row: &str| format!("CAST({row}.{} AS TEXT)", t.id.quoted);
    let version = |row: &str| {
        t.version
            .map_or("NULL".to_string(), |c| format!("{row}.{}", c.quoted))
    };
    let (insert_op, delete_op) = if t.is_price {
        ("update", "update")
    } else {
        ("insert", "delete")
    };
    format!(
        "CREATE TRIGGER IF NOT EXISTS {insert} AFTER INSERT ON {table}\nBEGIN\n    \
         INSERT INTO catalog_sync_changes (product_id, op, version) VALUES ({new_id}, '{insert_op}', {new_version});\nEND;\n\
         CREATE TRIGGER IF NOT EXISTS {update} AFTER UPDATE ON {table}\nBEGIN\n    \
         INSERT INTO catalog_sync_changes (product_id, op) SELECT {old_id}, '{delete_op}' WHERE {old_id} IS NOT {new_id};\n    \
         INSERT INTO catalog_sync_changes (product_id, op, version) VALUES ({new_id}, 'update', {new_version});\nEND;\n\
         CREATE TRIGGER IF NOT EXISTS {delete} AFTER DELETE ON {table}\nBEGIN\n    \
         INSERT INTO catalog_sync_changes (product_id, op) VALUES ({old_id}, '{delete_op}');\nEND;\n",
        insert = quote_ident(&sqlite_trigger(t, "insert")),
        update = quote_ident(&sqlite_trigger(t, "update")),
        delete = quote_ident(&sqlite_trigger(t, "delete")),
        new_id = id("NEW"),
        old_id = id("OLD"),
        new_version = if t.is_price {
            "NULL".into()
        } else {
            version("NEW")
        },
    )
}

fn sqlite_uninstall(t: &CaptureTable<'_>) -> String {
    ["insert", "update", "delete"]
        .iter()
        .map(|op| {
            format!(
                "DROP TRIGGER IF EXISTS {};\n",
                quote_ident(&sqlite_trigger(t, op))
            )
        })
        .collect()
}
