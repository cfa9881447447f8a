//! Whether the namespace has catalog-sync's search attributes ([`workflows::search`]). The worker
//! checks at start and every 30 s until they appear (after `starter setup`), and passes the answer
//! to the workflows through the fetch activity: upserting an attribute the namespace lacks would
//! fail the workflow task.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use temporalio_client::tonic::{self, Request};
use temporalio_client::{Client, NamespacedClient};
use temporalio_common::protos::temporal::api::enums::v1::IndexedValueType;
use temporalio_common::protos::temporal::api::operatorservice::v1::ListSearchAttributesRequest;
use workflows::search::NAMES;

/// The search attributes catalog-sync needs that the namespace lacks (empty: all there).
pub async fn missing(client: &Client) -> Result<Vec<&'static str>, tonic::Status> {
    let response = client
        .connection()
        .operator_service()
        .list_search_attributes(Request::new(ListSearchAttributesRequest {
            namespace: client.namespace(),
        }))
        .await?
        .into_inner();
    let keyword = IndexedValueType::Keyword as i32;
    Ok(NAMES
        .into_iter()
        .filter(|name| response.custom_attributes.get(*name) != Some(&keyword))
        .collect())
}

/// Keeps `registered` current until the attributes are there.
pub async fn watch(client: Client, registered: Arc<AtomicBool>) {
    let mut warned = false;
    loop {
        match missing(&client).await {
            Ok(missing) if missing.is_empty() => {
                registered.store(true, Ordering::Relaxed);
                tracing::info!("search attributes registered: workflows set them");
                return;
            }
            Ok(missing) if !warned => {
                warned = true;
                tracing::warn!(
                    ?missing,
                    "search attributes not registered: run `starter setup` (workflows run without them meanwhile)"
                );
            }
            Ok(_) => {}
            Err(e) => tracing::debug!(error = %e, "could not list search attributes"),
        }
        tokio::time::sleep(Duration::from_secs(30)).await;
    }
}
