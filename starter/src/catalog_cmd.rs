//! `starter catalog …`: seeding and editing the built-in catalog, and its identity.

use anyhow::Context;

use crate::exit::Exit;
use catalog::Catalog;
use clap::Subcommand;

#[derive(Subcommand)]
pub(crate) enum CatalogCommand {
    /// The same as `starter migrate`.
    Migrate,
    /// Write deterministic sample products (sku-000001 …).
    Seed {
        /// How many products.
        #[arg(long, default_value_t = 100)]
        products: usize,
        /// Seed of the generator: the same seed gives the same catalog.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// A Billing Meter id (`mtr_…`, from `starter meters ensure`): with it, some samples get
        /// a metered usage price on that meter.
        #[arg(long)]
        meter: Option<String>,
        /// Prices per product on average, from 1.0 to 2.0 (the samples have 2 each): some
        /// samples keep only their first price, spread evenly (1.5: every odd-numbered one).
        #[arg(long, value_parser = mean_prices)]
        prices_per_product: Option<f64>,
    },
    /// Print the catalog's identity: what its workflow ids (`{identity}:product-sync:{id}`) and
    /// schedule id (`{identity}:reconcile`) start with, and what its Stripe objects carry in
    /// `catalog_sync_catalog`. A database whose identity is bound to another (a restored copy)
    /// is refused everywhere until one of the flags decides.
    Identity {
        /// This database is another catalog (e.g. staging restored from production's backup):
        /// give it a new identity and write key; it claims nothing the old identity wrote.
        #[arg(long, conflicts_with = "moved")]
        new: bool,
        /// This database is the same catalog, moved (restored in place, a new server,
        /// pg_upgrade): bind its identity to where it is now.
        #[arg(long)]
        moved: bool,
    },
    /// Print one product as JSON, as catalog-sync reads it (after the mapping), and on stderr
    /// whether it would sync: each reason it is invalid (exit 4), or what it would send.
    Show {
        /// Catalog id.
        id: String,
    },
    /// Change a product as an application would (the version grows).
    Edit {
        /// Catalog id.
        id: String,
        /// New name.
        #[arg(long)]
        name: Option<String>,
        /// New description.
        #[arg(long)]
        description: Option<String>,
        /// New amount (minor units) of the default price.
        #[arg(long)]
        amount: Option<i64>,
        /// Mark active or inactive.
        #[arg(long)]
        active: Option<bool>,
    },
    /// Soft-delete a product (the sync archives it in Stripe).
    Delete {
        /// Catalog id.
        id: String,
    },
}

/// `--prices-per-product`: a mean from 1.0 to 2.0.
pub(crate) fn mean_prices(arg: &str) -> Result<f64, String> {
    match arg.parse::<f64>() {
        Ok(mean) if (1.0..=2.0).contains(&mean) => Ok(mean),
        _ => Err(format!(
            "{arg:?} is not a mean from 1.0 to 2.0 (the samples have 1 or 2 prices each)"
        )),
    }
}

pub(crate) async fn catalog_command(
    catalog: &Catalog,
    cmd: CatalogCommand,
) -> anyhow::Result<Exit> {
    match cmd {
        CatalogCommand::Migrate => unreachable!("handled before the catalog is opened"),
        CatalogCommand::Seed {
            products,
            seed,
            meter,
            prices_per_product,
        } => {
            for chunk_start in (1..=products).step_by(1000) {
                let chunk: Vec<_> = (chunk_start..=(chunk_start + 999).min(products))
                    .map(|n| {
                        let mut product = catalog::seed::sample_product(n, seed);
                        if let Some(mean) = prices_per_product {
                            product = catalog::seed::with_mean_prices(product, n, mean);
                        }
                        match &meter {
                            Some(meter) => catalog::seed::with_usage_price(product, n, meter),
                            None => product,
                        }
                    })
                    .collect();
                catalog.save_products(&chunk).await?;
            }
            println!(
                "seeded {products} products (seed {seed}); catalog holds {}",
                catalog.count_products().await?
            );
        }
        CatalogCommand::Identity { new, moved } => {
            let decision = match (new, moved) {
                (true, _) => Some(catalog::IdentityDecision::New),
                (_, true) => Some(catalog::IdentityDecision::Moved),
                _ => None,
            };
            match decision {
                None => println!("{}", catalog.identity().await?),
                Some(decision) => {
                    let identity = catalog.decide_identity(decision).await?;
                    match decision {
                        catalog::IdentityDecision::New => eprintln!(
                            "a new catalog: identity {identity}, with a new write key; the Stripe \
                             products of the database it was copied from are another catalog's \
                             to it now"
                        ),
                        catalog::IdentityDecision::Moved => eprintln!(
                            "the same catalog: identity {identity}, bound to this database now"
                        ),
                    }
                    println!("{identity}");
                }
            }
        }
        CatalogCommand::Show { id } => {
            let p = catalog
                .fetch_product(&id)
                .await?
                .with_context(|| format!("no product {id} in the catalog"))?;
            println!("{}", serde_json::to_string_pretty(&p)?);
            return Ok(judge(&id, &p));
        }
        CatalogCommand::Edit {
            id,
            name,
            description,
            amount,
            active,
        } => {
            let mut p = catalog
                .fetch_product(&id)
                .await?
                .with_context(|| format!("no product {id}"))?;
            if let Some(v) = name {
                p.name = v;
            }
            if let Some(v) = description {
                p.description = Some(v);
            }
            if let Some(v) = active {
                p.active = v;
            }
            if let Some(v) = amount {
                let max = domain::limits::MAX_AMOUNT;
                anyhow::ensure!(
                    (0..=max).contains(&v),
                    "--amount must be between 0 and {max} minor units (Stripe's limit), got {v}"
                );
                p.prices
                    .first_mut()
                    .context("the product has no price to change")?
                    .unit_amount = v;
            }
            let before = p.version;
            catalog.save_product(&p).await?;
            let version = catalog.fetch_product(&id).await?.map_or(0, |p| p.version);
            if version == before {
                println!("{id} is unchanged at version {version}: the edit changes nothing");
            } else {
                println!("{id} is now at version {version}");
            }
        }
        CatalogCommand::Delete { id } => {
            if !catalog.soft_delete(&id).await? {
                anyhow::bail!("no live product {id}");
            }
            println!("{id} soft-deleted");
        }
    }
    Ok(Exit::Ok)
}

/// Whether `p` would sync, said on stderr: every reason it is invalid (a sync would end
/// `invalid` and send nothing), or what a sync would make Stripe hold.
fn judge(id: &str, p: &workflows::model::CatalogProduct) -> Exit {
    use workflows::model::{SyncPlan, TransformOutput};
    match domain::transform::transform(id, Some(p)) {
        TransformOutput::Invalid(issues) => {
            for issue in &issues {
                eprintln!("invalid: {issue}");
            }
            eprintln!("{id} would not sync: a sync ends invalid and sends nothing to Stripe");
            Exit::NotSynced
        }
        TransformOutput::Plan(plan) => {
            match *plan {
                SyncPlan::Upsert(d) => eprintln!(
                    "{id} would sync: Stripe product {} ({}) with {} price(s), default {}",
                    d.stripe_id,
                    if d.active { "active" } else { "archived" },
                    d.prices.len(),
                    d.prices.first().map_or("none", |p| p.lookup_key.as_str())
                ),
                SyncPlan::Archive { stripe_id, .. } => {
                    eprintln!("{id} is deleted: a sync archives Stripe product {stripe_id}")
                }
            }
            Exit::Ok
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn show_judges_a_row_as_a_sync_would() {
        let valid = catalog::seed::sample_product(1, 1);
        assert_eq!(judge(&valid.id, &valid), Exit::Ok);
        let nameless = workflows::model::CatalogProduct {
            name: String::new(),
            ..valid.clone()
        };
        assert_eq!(judge(&valid.id, &nameless), Exit::NotSynced);
        let deleted = workflows::model::CatalogProduct {
            deleted: true,
            ..valid.clone()
        };
        assert_eq!(judge(&valid.id, &deleted), Exit::Ok);
    }
}
