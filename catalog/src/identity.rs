//! The catalog's identity: a name catalog-sync gives the catalog in this database the first time
//! it migrates it (`cat_` and 16 random hex digits), kept in `catalog_sync.identity`. Every Stripe
//! object catalog-sync creates carries it in its metadata, and a process touches only the objects
//! that carry its own catalog's identity: see `stripe::identity`.
//!
//! A copy of the database (a staging database restored from production's backup) would carry the
//! same identity, and its workers would rename and archive production's Stripe products. So the
//! identity is bound to where the database is, which a copy does not share: on PostgreSQL the
//! database's oid and name and the cluster's system identifier (where the role may read it), on
//! SQLite the file's path. The first
//! process to read the identity binds it; every later read checks it, and a mismatch refuses
//! until the operator decides with `starter catalog identity --new` (a new catalog: a new
//! identity, its own write key, and no claim on what the old identity wrote) or `--moved` (the
//! same catalog, restored in place or upgraded: bound to where it is now).
//!
//! What it cannot see: a physical clone of a PostgreSQL cluster (`pg_basebackup`, a snapshot of
//! its disk) keeps the system identifier and the oids, and a copy made before this binding was
//! first recorded binds to itself.

use crate::{Catalog, CatalogError};

/// The cursor holding where the identity is bound.
const BOUND_TO: &str = "identity_bound_to";

/// What an operator decides about a database whose identity is bound elsewhere.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdentityDecision {
    /// A new catalog (a copy): a new identity, a new write key, no claim on the old one's writes.
    New,
    /// The same catalog, moved: bind the identity to where the database is now.
    Moved,
}

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

    /// The catalog's identity, once this database is the one it is bound to (bound now if it
    /// was not yet).
    pub async fn identity(&self) -> Result<String, CatalogError> {
        let identity = self.stored_identity().await?;
        let here = self.whereabouts().await?;
        let bound = self
            .cursor(BOUND_TO)
            .await?
            .and_then(|stored| Whereabouts::decode(&stored));
        match bound {
            None => self.set_cursor(BOUND_TO, &here.encode()).await?,
            // Bound by a role that could not read the system identifier: add it now.
            Some(bound) if here.is(&bound) && here.knows_more_than(&bound) => {
                self.set_cursor(BOUND_TO, &here.encode()).await?
            }
            Some(bound) if here.is(&bound) => {}
            Some(bound) => {
                return Err(CatalogError::Schema(format!(
                    "this catalog database carries the identity {identity} of the database at \
                     {bound}, but it is {here}: a restored copy or a clone. Its workers would \
                     sync into the Stripe products of that catalog. Nothing was done. If it is \
                     another catalog (staging restored from a backup), run `starter catalog \
                     identity --new`; if it is the same catalog moved (restored in place, a new \
                     server, pg_upgrade), run `starter catalog identity --moved`"
                )));
            }
        }
        Ok(identity)
    }

    /// Settles a database whose identity is bound elsewhere (see [`IdentityDecision`]); the
    /// identity it has afterwards.
    pub async fn decide_identity(
        &self,
        decision: IdentityDecision,
    ) -> Result<String, CatalogError> {
        let here = self.whereabouts().await?;
        if decision == IdentityDecision::New {
            // The ledger's writes were the old identity's (`Catalog::written_products`).
            let fresh = format!("cat_{}", hex::encode(rand::random::<[u8; 8]>()));
            on_pool!(self, pool => {
                sqlx::query(&self.own("UPDATE catalog_sync.identity SET catalog = $1 WHERE only_row"))
                    .bind(&fresh)
                    .execute(pool)
                    .await?;
                // The copy's own writes must not pass for the original's echoes.
                sqlx::query(&self.own("DELETE FROM catalog_sync.secrets WHERE name = 'write_key'"))
                    .execute(pool)
                    .await?;
            });
        }
        self.set_cursor(BOUND_TO, &here.encode()).await?;
        self.stored_identity().await
    }

    async fn stored_identity(&self) -> Result<String, CatalogError> {
        let select = self.own("SELECT catalog FROM catalog_sync.identity WHERE only_row");
        let stored: Option<String> = on_pool!(self, pool => {
            sqlx::query_scalar(&select).fetch_optional(pool).await?
        });
        stored.ok_or_else(|| {
            CatalogError::Schema("the catalog has no identity yet: run `starter migrate`".into())
        })
    }

    /// Where this database is, in terms a copy does not share.
    async fn whereabouts(&self) -> Result<Whereabouts, CatalogError> {
        Ok(match &self.db {
            crate::Db::Postgres(pool) => {
                let (oid, name): (String, String) = sqlx::query_as(
                    "SELECT oid::text, datname::text FROM pg_database \
                     WHERE datname = current_database()",
                )
                .fetch_one(pool)
                .await?;
                // A managed server may refuse `pg_control_system()` to some roles: then the
                // database's oid and name are compared alone (see `Whereabouts::is`).
                let system: Option<String> =
                    sqlx::query_scalar("SELECT system_identifier::text FROM pg_control_system()")
                        .fetch_one(pool)
                        .await
                        .ok();
                Whereabouts::Postgres { system, oid, name }
            }
            crate::Db::Sqlite(pool) => {
                let file: String =
                    sqlx::query_scalar("SELECT file FROM pragma_database_list WHERE name = 'main'")
                        .fetch_one(pool)
                        .await?;
                Whereabouts::Sqlite { file }
            }
        })
    }
}

/// Where a catalog database is: what its identity is bound to.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Whereabouts {
    /// The cluster's system identifier (when the role may read it), the database's oid and name.
    Postgres {
        system: Option<String>,
        oid: String,
        name: String,
    },
    /// The database file.
    Sqlite { file: String },
}

impl Whereabouts {
    /// As stored in the cursor.
    fn encode(&self) -> String {
        match self {
            Self::Postgres { system, oid, name } => {
                format!("pg|{}|{oid}|{name}", system.as_deref().unwrap_or(""))
            }
            Self::Sqlite { file } => format!("sqlite|{file}"),
        }
    }

    /// From the cursor; a value of an earlier form is taken as unknown (bound again).
    fn decode(stored: &str) -> Option<Self> {
        let mut parts = stored.splitn(4, '|');
        match parts.next()? {
            "pg" => {
                let system = parts.next()?;
                Some(Self::Postgres {
                    system: (!system.is_empty()).then(|| system.to_string()),
                    oid: parts.next()?.to_string(),
                    name: parts.next()?.to_string(),
                })
            }
            "sqlite" => Some(Self::Sqlite {
                file: stored.strip_prefix("sqlite|")?.to_string(),
            }),
            _ => None,
        }
    }

    /// The system identifier is known here and was not where it was bound.
    fn knows_more_than(&self, bound: &Self) -> bool {
        matches!(
            (self, bound),
            (
                Self::Postgres {
                    system: Some(_),
                    ..
                },
                Self::Postgres { system: None, .. }
            )
        )
    }

    /// The same database: the same oid and name (and system identifier, where both sides could
    /// read it), or the same file.
    fn is(&self, bound: &Self) -> bool {
        match (self, bound) {
            (
                Self::Postgres { system, oid, name },
                Self::Postgres {
                    system: bound_system,
                    oid: bound_oid,
                    name: bound_name,
                },
            ) => {
                oid == bound_oid
                    && name == bound_name
                    && match (system, bound_system) {
                        (Some(a), Some(b)) => a == b,
                        _ => true,
                    }
            }
            (Self::Sqlite { file }, Self::Sqlite { file: bound }) => file == bound,
            _ => false,
        }
    }
}

impl std::fmt::Display for Whereabouts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Postgres {
                system: Some(system),
                oid,
                name,
            } => write!(f, "PostgreSQL system {system}, database {name} (oid {oid})"),
            Self::Postgres {
                system: None,
                oid,
                name,
            } => write!(f, "PostgreSQL database {name} (oid {oid})"),
            Self::Sqlite { file } => write!(f, "SQLite file {file}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_copy_differs_and_an_unreadable_system_identifier_is_not_a_difference() {
        let pg = |system: Option<&str>, oid: &str| Whereabouts::Postgres {
            system: system.map(str::to_string),
            oid: oid.into(),
            name: "catalog".into(),
        };
        let bound = pg(Some("7716"), "16386");
        for w in [
            bound.clone(),
            pg(None, "16386"),
            Whereabouts::Sqlite {
                file: "/a|b".into(),
            },
        ] {
            assert_eq!(Whereabouts::decode(&w.encode()), Some(w));
        }
        assert!(pg(Some("7716"), "16386").is(&bound));
        assert!(pg(None, "16386").is(&bound), "a role that cannot read it");
        assert!(bound.knows_more_than(&pg(None, "16386")));
        assert!(!pg(None, "16386").knows_more_than(&bound));
        assert!(!pg(Some("9999"), "16386").is(&bound), "another cluster");
        assert!(!pg(Some("7716"), "16390").is(&bound), "another database");
        assert!(
            !Whereabouts::Sqlite { file: "/x".into() }
                .is(&Whereabouts::Sqlite { file: "/y".into() })
        );
        assert_eq!(Whereabouts::decode("PostgreSQL system 1"), None);
    }
}
