//! A team's columns: what type each holds ([`Kind`]), what a field needs of it ([`Field`]),
//! checking both against the database at start, and reading a column as its field in SQL
//! ([`Dialect`], per backend).

use std::collections::BTreeMap;

use sqlx::{Column, Executor, TypeInfo};

use domain::fields::Codec;

use super::mapping_error;
use crate::{CatalogError, Db};

/// The type of a column, as far as the mapping cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Text,
    Integer,
    /// Numbers with a fraction: `numeric`/`decimal`, `real`, `double precision`.
    Decimal,
    Bool,
    Time,
    Json,
    TextArray,
    Uuid,
    /// SQLite: a column declared without a type, whose values may be anything.
    Untyped,
    Other,
}

pub(super) fn kind_of(db: &Db, type_name: &str) -> Kind {
    let upper = type_name.to_ascii_uppercase();
    match db {
        Db::Postgres(_) => match upper.as_str() {
            "TEXT" | "VARCHAR" | "BPCHAR" | "CHAR" | "NAME" | "CITEXT" => Kind::Text,
            "INT2" | "INT4" | "INT8" => Kind::Integer,
            "NUMERIC" | "FLOAT4" | "FLOAT8" => Kind::Decimal,
            "BOOL" => Kind::Bool,
            "TIMESTAMPTZ" | "TIMESTAMP" | "DATE" => Kind::Time,
            "JSON" | "JSONB" => Kind::Json,
            "TEXT[]" | "VARCHAR[]" => Kind::TextArray,
            "UUID" => Kind::Uuid,
            _ => Kind::Other,
        },
        Db::Sqlite(_) => match upper.as_str() {
            "TEXT" => Kind::Text,
            "INTEGER" | "INT4" | "INT8" => Kind::Integer,
            "REAL" | "NUMERIC" => Kind::Decimal,
            "BOOLEAN" => Kind::Bool,
            "DATETIME" | "DATE" | "TIME" => Kind::Time,
            "NULL" => Kind::Untyped,
            _ => Kind::Other,
        },
    }
}

/// What a field needs of its column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Field {
    /// Ids: text, integer or uuid, read as text.
    Id,
    Text,
    Integer,
    /// An amount in the currency's minor unit: an integer.
    MinorAmount,
    /// An amount in the currency's major unit: any number, or text.
    MajorAmount,
    Bool,
    Time,
    Images,
    Metadata,
    /// Structured values: JSON as text, or `json`/`jsonb`.
    Json,
    /// Soft delete: a boolean or a timestamp.
    Deleted,
    /// Anything orderable.
    Order,
}

impl Field {
    /// What a column of a product field of this kind must hold.
    pub(super) fn of(codec: Codec) -> Self {
        match codec {
            Codec::Name | Codec::Text => Field::Text,
            Codec::Flag => Field::Bool,
            Codec::Texts | Codec::Names => Field::Images,
            Codec::Numbers(_) => Field::Json,
        }
    }

    pub(super) fn accepts(self, kind: Kind) -> bool {
        use Kind as K;
        if kind == K::Untyped {
            return true;
        }
        match self {
            Field::Id => matches!(kind, K::Text | K::Integer | K::Uuid),
            Field::Text => kind == K::Text,
            Field::Integer => kind == K::Integer,
            Field::MinorAmount => kind == K::Integer,
            Field::MajorAmount => matches!(kind, K::Integer | K::Decimal | K::Text),
            Field::Bool => matches!(kind, K::Bool | K::Integer),
            Field::Time => matches!(kind, K::Time | K::Text | K::Integer),
            Field::Images => matches!(kind, K::Text | K::Json | K::TextArray),
            Field::Metadata | Field::Json => matches!(kind, K::Text | K::Json),
            Field::Deleted => matches!(kind, K::Bool | K::Integer | K::Time | K::Text),
            Field::Order => true,
        }
    }

    pub(super) fn wanted(self) -> &'static str {
        match self {
            Field::Id => "text, integer or uuid",
            Field::Text => "text",
            Field::Integer => "an integer",
            Field::MinorAmount => {
                "an integer in the currency's minor unit, 1999 for $19.99 (a column holding \
                 19.99 needs amount_unit = \"major\")"
            }
            Field::MajorAmount => "a number (numeric, decimal, real or integer) or text",
            Field::Bool => "a boolean",
            Field::Time => "a timestamp",
            Field::Images => "text holding a JSON array, json/jsonb or text[]",
            Field::Metadata => "text holding a JSON object, or json/jsonb",
            Field::Json => "text holding JSON, or json/jsonb",
            Field::Deleted => "a boolean or a timestamp",
            Field::Order => "any type",
        }
    }
}

/// A column of the team's, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct MappedColumn {
    /// The column's name, quoted for SQL.
    pub quoted: String,
    /// Its name as configured.
    pub name: String,
    pub kind: Kind,
}

/// The `FROM` of a source, and for a table its quoted and configured names.
pub(super) fn source_sql(
    setting: &str,
    table: &Option<String>,
    query: &Option<String>,
) -> Result<(String, Option<String>, Option<String>), CatalogError> {
    match (table, query) {
        (Some(table), None) => {
            let quoted = quote_table(table).ok_or_else(|| {
                mapping_error(
                    &format!("{setting}.table"),
                    &format!("= {table:?} is not a table name (name or schema.name)"),
                )
            })?;
            Ok((quoted.clone(), Some(quoted), Some(table.clone())))
        }
        (None, Some(query)) => Ok((format!("({query}) AS source"), None, None)),
        (Some(_), Some(_)) => Err(mapping_error(
            setting,
            "names both `table` and `query`: give one",
        )),
        (None, None) => Err(mapping_error(setting, "needs `table` or `query`")),
    }
}

/// `"schema"."table"` from `schema.table`, or `None` if it is not such a name.
pub(crate) fn quote_table(name: &str) -> Option<String> {
    let parts: Vec<&str> = name.split('.').collect();
    if parts.is_empty() || parts.len() > 2 || parts.iter().any(|p| p.is_empty()) {
        return None;
    }
    Some(
        parts
            .iter()
            .map(|p| quote_ident(p))
            .collect::<Vec<_>>()
            .join("."),
    )
}

/// A quoted SQL identifier (both backends quote with `"`).
pub(crate) fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// The columns of `from` and their types, by preparing `SELECT * FROM … LIMIT 0`.
pub(super) async fn column_types(
    db: &Db,
    setting: &str,
    from: &str,
) -> Result<BTreeMap<String, Kind>, CatalogError> {
    let sql = format!("SELECT * FROM {from} LIMIT 0");
    let columns = describe(db, &sql).await.map_err(|e| {
        mapping_error(
            setting,
            &format!(
                "cannot be read: {}",
                e.trim_start_matches("error returned from database: ")
            ),
        )
    })?;
    Ok(columns
        .into_iter()
        .map(|(name, type_name)| {
            let kind = kind_of(db, &type_name);
            (name, kind)
        })
        .collect())
}

/// Column names and type names of a statement, prepared but not run.
pub(super) async fn describe(db: &Db, sql: &str) -> Result<Vec<(String, String)>, String> {
    match db {
        Db::Postgres(pool) => pool.describe(sql).await.map(named),
        Db::Sqlite(pool) => pool.describe(sql).await.map(named),
    }
    .map_err(|e| e.to_string())
}

/// The name and type name of each column a statement returns.
fn named<DB: sqlx::Database>(described: sqlx::Describe<DB>) -> Vec<(String, String)> {
    described
        .columns()
        .iter()
        .map(|c| (c.name().to_string(), c.type_info().name().to_string()))
        .collect()
}

pub(super) fn check_column(
    setting: &str,
    field: &str,
    column: &str,
    wants: Field,
    types: &BTreeMap<String, Kind>,
    table: Option<&str>,
) -> Result<MappedColumn, CatalogError> {
    let Some(&kind) = types.get(column) else {
        let names: Vec<&str> = types.keys().map(String::as_str).collect();
        return Err(mapping_error(
            &format!("{setting}.{field}"),
            &format!(
                "= {column:?}: {} has no such column (it has {})",
                table.map_or("the query".to_string(), |t| t.to_string()),
                names.join(", ")
            ),
        ));
    };
    if !wants.accepts(kind) {
        return Err(mapping_error(
            &format!("{setting}.{field}"),
            &format!(
                "= {column:?}: the column's type cannot give this field (it needs {})",
                wants.wanted()
            ),
        ));
    }
    Ok(MappedColumn {
        quoted: quote_ident(column),
        name: column.to_string(),
        kind,
    })
}

/// SQL for reading a column as the type catalog-sync decodes, per backend.
pub(super) struct Dialect<'a>(pub(super) &'a Db);

impl Dialect<'_> {
    pub(super) fn pg(&self) -> bool {
        matches!(self.0, Db::Postgres(_))
    }

    pub(super) fn id(&self, c: &MappedColumn) -> String {
        match c.kind {
            Kind::Text => c.quoted.clone(),
            _ => format!("CAST({} AS TEXT)", c.quoted),
        }
    }

    pub(super) fn text(&self, c: &MappedColumn) -> String {
        if self.pg() && c.kind == Kind::Text {
            // varchar, bpchar, citext and name decode as text only once cast.
            format!("CAST({} AS TEXT)", c.quoted)
        } else {
            c.quoted.clone()
        }
    }

    pub(super) fn integer(&self, c: &MappedColumn) -> String {
        if self.pg() {
            format!("CAST({} AS BIGINT)", c.quoted)
        } else {
            c.quoted.clone()
        }
    }

    pub(super) fn integer32(&self, c: &MappedColumn) -> String {
        if self.pg() {
            format!("CAST({} AS INTEGER)", c.quoted)
        } else {
            c.quoted.clone()
        }
    }

    pub(super) fn bool(&self, c: &MappedColumn) -> String {
        self.bool_or(c, false)
    }

    /// A boolean, `default` where the row has NULL.
    pub(super) fn bool_or(&self, c: &MappedColumn, default: bool) -> String {
        if self.pg() {
            format!("COALESCE({}, {})", c.quoted, self.bool_const(default))
        } else {
            format!(
                "(COALESCE({}, {}) <> 0)",
                c.quoted,
                self.bool_const(default)
            )
        }
    }

    /// A boolean that stays NULL when the row has none (a setting left to Stripe).
    pub(super) fn nullable_bool(&self, c: &MappedColumn) -> String {
        if self.pg() {
            c.quoted.clone()
        } else {
            format!(
                "(CASE WHEN {0} IS NULL THEN NULL ELSE ({0} <> 0) END)",
                c.quoted
            )
        }
    }

    pub(super) fn null_bool(&self) -> &'static str {
        if self.pg() {
            "CAST(NULL AS BOOLEAN)"
        } else {
            "NULL"
        }
    }

    /// A field of `codec` in the relation: its column read as the field's kind, or the value an
    /// unmapped field has (unset; an empty list).
    pub(super) fn field(&self, codec: Codec, column: Option<&MappedColumn>) -> String {
        match (codec, column) {
            (Codec::Name | Codec::Text, Some(c)) => self.text(c),
            (Codec::Flag, Some(c)) => self.nullable_bool(c),
            (Codec::Texts | Codec::Names, Some(c)) => self.images(c),
            (Codec::Numbers(_), Some(c)) => self.json_text(c),
            (Codec::Flag, None) => self.null_bool().into(),
            (Codec::Texts | Codec::Names, None) => "'[]'".into(),
            (Codec::Name | Codec::Text | Codec::Numbers(_), None) => "NULL".into(),
        }
    }

    /// JSON as text, NULL when the row has none.
    pub(super) fn json_text(&self, c: &MappedColumn) -> String {
        match c.kind {
            Kind::Json => format!("CAST({} AS TEXT)", c.quoted),
            _ => self.text(c),
        }
    }

    pub(super) fn bool_const(&self, value: bool) -> &'static str {
        match (self.pg(), value) {
            (true, true) => "TRUE",
            (true, false) => "FALSE",
            (false, true) => "1",
            (false, false) => "0",
        }
    }

    pub(super) fn images(&self, c: &MappedColumn) -> String {
        match c.kind {
            Kind::TextArray => format!("COALESCE(CAST(array_to_json({}) AS TEXT), '[]')", c.quoted),
            Kind::Json => format!("COALESCE(CAST({} AS TEXT), '[]')", c.quoted),
            _ => format!("COALESCE({}, '[]')", self.text(c)),
        }
    }

    /// A JSON array of image objects as the JSON array of their `key` values, in order (a
    /// missing key or an element that is no object gives `null`, which the row's reading reports;
    /// on SQLite, text that is not JSON is passed on as it is, to be reported the same way).
    pub(super) fn image_urls(&self, c: &MappedColumn, key: &str) -> String {
        let col = &c.quoted;
        if self.pg() {
            format!(
                "COALESCE((SELECT CAST(jsonb_agg(e.v -> '{key}' ORDER BY e.i) AS TEXT) \
                 FROM jsonb_array_elements(CAST({col} AS JSONB)) WITH ORDINALITY AS e(v, i)), '[]')"
            )
        } else {
            format!(
                "(CASE WHEN {col} IS NULL THEN '[]' WHEN json_valid({col}) AND json_type({col}) = 'array' \
                 THEN (SELECT json_group_array(CASE WHEN json_type(value) = 'object' \
                 THEN json_extract(value, '$.{key}') END) FROM json_each({col})) ELSE {col} END)"
            )
        }
    }

    pub(super) fn metadata(&self, c: &MappedColumn) -> String {
        match c.kind {
            Kind::Json => format!("COALESCE(CAST({} AS TEXT), '{{}}')", c.quoted),
            _ => format!("COALESCE({}, '{{}}')", self.text(c)),
        }
    }

    /// A timestamp in the form catalog-sync compares: `timestamptz` on PostgreSQL, the text
    /// `%Y-%m-%dT%H:%M:%fZ` on SQLite (whose text order is time order).
    pub(super) fn time(&self, c: &MappedColumn) -> String {
        if self.pg() {
            format!("CAST({} AS TIMESTAMPTZ)", c.quoted)
        } else if c.kind == Kind::Integer {
            format!("strftime('%Y-%m-%dT%H:%M:%fZ', {}, 'unixepoch')", c.quoted)
        } else {
            format!("strftime('%Y-%m-%dT%H:%M:%fZ', {})", c.quoted)
        }
    }

    pub(super) fn now(&self) -> &'static str {
        if self.pg() {
            "now()"
        } else {
            "strftime('%Y-%m-%dT%H:%M:%fZ', 'now')"
        }
    }

    /// Milliseconds since the epoch of a [`Dialect::time`] expression: the version of a row
    /// with `updated_at` and no version column.
    pub(super) fn epoch_millis(&self, time: &str) -> String {
        if self.pg() {
            format!("CAST(FLOOR(EXTRACT(EPOCH FROM {time}) * 1000) AS BIGINT)")
        } else {
            format!("CAST(ROUND((julianday({time}) - 2440587.5) * 86400000) AS INTEGER)")
        }
    }

    /// The later of two [`Dialect::time`] expressions, either of which may be NULL.
    pub(super) fn latest(&self, a: &str, b: &str) -> String {
        if self.pg() {
            format!("GREATEST({a}, {b})")
        } else {
            format!("MAX(COALESCE({a}, {b}), COALESCE({b}, {a}))")
        }
    }

    /// A soft-delete column holds a time (set = deleted), not a flag.
    pub(super) fn is_time(&self, c: &MappedColumn) -> bool {
        !matches!(c.kind, Kind::Bool | Kind::Integer)
    }

    pub(super) fn deleted(&self, c: &MappedColumn) -> String {
        match c.kind {
            Kind::Bool | Kind::Integer => self.bool(c),
            _ => format!("({} IS NOT NULL)", c.quoted),
        }
    }
}
