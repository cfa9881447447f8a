//! Activity tier: each activity run directly (the SDK's `ActivityEnvironment`) against a real
//! catalog and the sandbox, checking results and the retryable / non-retryable mapping.

use activities::SyncActivitiesImpl;
use harness::{Backend, Sandbox, fresh_catalog};
use serde_json::json;
use stripe::client::StripeClient;
use stripe::identity::CatalogIdentity;
use stripe::write_key::WriteKeys;
use temporalio_sdk::activities::ActivityError;
use temporalio_sdk::testing::{ActivityEnvironment, ActivityEnvironmentError};
use workflows::activities::{FetchInput, TransformInput, TransformOutput, UpsertInput};
use workflows::model::{CatalogProduct, SyncPlan};

async fn environment(backend: Backend) -> (ActivityEnvironment, catalog::Catalog, Sandbox) {
    let (_, catalog) = fresh_catalog(backend).await;
    let sandbox = Sandbox::start().await;
    let stripe = StripeClient::new(sandbox.stripe_config()).unwrap();
    let env = ActivityEnvironment::builder()
        .register_activities(SyncActivitiesImpl::new(
            catalog.clone(),
            CatalogIdentity::new(catalog.identity().await.unwrap()),
            stripe,
            WriteKeys::new(b"activities-test"),
        ))
        .build();
    (env, catalog, sandbox)
}

/// (failure type, non-retryable) of an activity failure.
fn failure(e: ActivityEnvironmentError) -> (String, bool) {
    match e {
        ActivityEnvironmentError::Activity(ActivityError::Application(f)) => (
            f.type_name().unwrap_or_default().to_string(),
            f.is_non_retryable(),
        ),
        other => panic!("expected an application failure, got {other:?}"),
    }
}

async fn plan_for(env: &ActivityEnvironment, product: CatalogProduct) -> SyncPlan {
    let out = env
        .run(
            SyncActivitiesImpl::transform_product,
            TransformInput {
                catalog_id: product.id.clone(),
                product: Some(product),
            },
        )
        .await
        .unwrap();
    match out {
        TransformOutput::Plan(plan) => *plan,
        TransformOutput::Invalid(issues) => panic!("invalid: {issues:?}"),
    }
}

#[tokio::test]
async fn fetch_reads_products_with_prices_on_both_backends() {
    for backend in [Backend::Sqlite, Backend::Postgres] {
        let (env, catalog, _sandbox) = environment(backend).await;
        let product = catalog::seed::sample_product(3, 9);
        catalog.save_product(&product).await.unwrap();
        let out = env
            .run(
                SyncActivitiesImpl::fetch_product,
                FetchInput {
                    catalog_id: product.id.clone(),
                },
            )
            .await
            .unwrap();
        let got = out.product.expect("the row exists");
        assert_eq!(got.prices, product.prices, "{backend:?}");
        assert_eq!(got.metadata, product.metadata);
        assert!(got.version >= 1);
        let missing = env
            .run(
                SyncActivitiesImpl::fetch_product,
                FetchInput {
                    catalog_id: "nope".into(),
                },
            )
            .await
            .unwrap();
        assert!(missing.product.is_none());
    }
}

#[tokio::test]
async fn a_corrupt_catalog_row_is_reported_with_its_column_and_never_retried() {
    let (env, catalog, _sandbox) = environment(Backend::Sqlite).await;
    let catalog::Db::Sqlite(pool) = catalog.db() else {
        unreachable!()
    };
    // Bad JSON, and values of the wrong type (SQLite stores anything in any column).
    for sql in [
        "INSERT INTO catalog_products (id, name, images) VALUES ('bad-json', 'Bad', 'not json')",
        "INSERT INTO catalog_products (id, name, active) VALUES ('bad-bool', 'Bad', 'yes')",
        "INSERT INTO catalog_products (id, name) VALUES ('bad-price', 'Bad')",
        "INSERT INTO catalog_prices (product_id, currency, unit_amount) VALUES ('bad-price', 'usd', 12.5)",
    ] {
        sqlx::query(sql).execute(pool).await.unwrap();
    }
    for (id, field) in [
        ("bad-json", "images"),
        ("bad-bool", "active"),
        ("bad-price", "prices[0].unit_amount"),
    ] {
        let out = env
            .run(
                SyncActivitiesImpl::fetch_product,
                FetchInput {
                    catalog_id: id.into(),
                },
            )
            .await
            .unwrap_or_else(|e| panic!("{id}: a corrupt row is data, not a failure: {e:?}"));
        assert!(out.product.is_none(), "{id}");
        assert_eq!(out.corrupt.len(), 1, "{id}: {:?}", out.corrupt);
        assert_eq!(out.corrupt[0].field, field, "{id}");
    }
}

#[tokio::test]
async fn stripe_failures_map_to_retryable_or_final() {
    let (env, _catalog, sandbox) = environment(Backend::Sqlite).await;
    let plan = plan_for(&env, catalog::seed::sample_product(4, 9)).await;

    sandbox
        .faults(json!({"error_rate": 1.0, "error_statuses": [503]}))
        .await;
    let e = env
        .run(
            SyncActivitiesImpl::upsert_product,
            UpsertInput {
                plan: plan.clone(),
                archive_approved: false,
            },
        )
        .await
        .unwrap_err();
    assert_eq!(failure(e), ("StripeUnavailable".to_string(), false));

    sandbox.faults(json!({"rate_limit_rate": 1.0})).await;
    let e = env
        .run(
            SyncActivitiesImpl::upsert_product,
            UpsertInput {
                plan: plan.clone(),
                archive_approved: false,
            },
        )
        .await
        .unwrap_err();
    assert_eq!(
        failure(e),
        ("StripeUnavailable".to_string(), false),
        "429 is retried"
    );

    sandbox.faults(json!({"drop_rate": 1.0})).await;
    let e = env
        .run(
            SyncActivitiesImpl::upsert_product,
            UpsertInput {
                plan: plan.clone(),
                archive_approved: false,
            },
        )
        .await
        .unwrap_err();
    assert_eq!(
        failure(e),
        ("StripeUnavailable".to_string(), false),
        "a dropped connection is retried"
    );
    sandbox.clear_faults().await;

    // A 4xx is final: here Stripe refuses an image URL it cannot accept.
    let SyncPlan::Upsert(mut desired) = plan.clone() else {
        unreachable!()
    };
    desired.images = (0..9)
        .map(|i| format!("https://img.example/{i}.png"))
        .collect();
    let e = env
        .run(
            SyncActivitiesImpl::upsert_product,
            UpsertInput {
                plan: SyncPlan::Upsert(desired),
                archive_approved: false,
            },
        )
        .await
        .unwrap_err();
    assert_eq!(failure(e), ("StripeRejected".to_string(), true));

    let report = env
        .run(
            SyncActivitiesImpl::upsert_product,
            UpsertInput {
                plan,
                archive_approved: false,
            },
        )
        .await
        .unwrap();
    assert_eq!(report.operations[0], "create_product");
    assert!(!report.unchanged);
}
