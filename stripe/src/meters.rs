//! Billing Meters (`/v1/billing/meters`): the object a metered price reports usage to
//! (`recurring[meter]`). catalog-sync does not manage meters; `starter meters ensure` finds or
//! makes one by event name, for a catalog (or the sample data) that needs its id.

use reqwest::Method;
use serde::Deserialize;

use crate::client::{Form, List, StripeClient, StripeError};

/// A Billing Meter, as Stripe returns it.
#[derive(Debug, Clone, Deserialize)]
pub struct BillingMeter {
    /// `mtr_…`.
    pub id: String,
    /// The name of the usage events it counts.
    pub event_name: String,
    /// What people see.
    #[serde(default)]
    pub display_name: String,
    /// `active` or `inactive`.
    pub status: String,
}

impl StripeClient {
    /// Every active meter (all pages).
    pub async fn list_active_meters(&self) -> Result<Vec<BillingMeter>, StripeError> {
        let mut all: Vec<BillingMeter> = Vec::new();
        loop {
            let mut form = Form::new();
            form.push("status", "active").push("limit", "100");
            form.push_opt("starting_after", all.last().map(|m| m.id.as_str()));
            let page: List<BillingMeter> = self
                .call(Method::GET, "/v1/billing/meters", &form, None)
                .await?
                .value;
            let more = page.has_more && !page.data.is_empty();
            all.extend(page.data);
            if !more {
                return Ok(all);
            }
        }
    }

    /// `POST /v1/billing/meters`: a meter summing the `value` of `event_name`'s events per
    /// customer (`stripe_customer_id`), Stripe's defaults.
    pub async fn create_meter(
        &self,
        display_name: &str,
        event_name: &str,
        idempotency_key: &str,
    ) -> Result<BillingMeter, StripeError> {
        let mut form = Form::new();
        form.push("display_name", display_name)
            .push("event_name", event_name)
            .push("default_aggregation[formula]", "sum");
        Ok(self
            .call(
                Method::POST,
                "/v1/billing/meters",
                &form,
                Some(idempotency_key),
            )
            .await?
            .value)
    }
}
