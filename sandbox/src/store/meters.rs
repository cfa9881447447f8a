//! Billing Meters (`/v1/billing/meters`): what metered prices are attached to in current API
//! versions (`recurring[meter]`). Create, retrieve, list (with `status`), deactivate and
//! reactivate, with Stripe's rules: a display name, an event name unique among the account's
//! active meters, and an aggregation formula (`sum`, `count` or `last`).

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::{Account, Change, now, random_id};
use crate::error::ApiError;
use crate::form::Params;

/// One Billing Meter.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct Meter {
    pub(super) id: String,
    display_name: String,
    pub(super) event_name: String,
    formula: String,
    customer_key: String,
    value_key: String,
    /// `active` or `inactive`.
    pub(super) status: String,
    created: i64,
    updated: i64,
}

impl Meter {
    fn to_json(&self) -> Value {
        json!({
            "id": self.id,
            "object": "billing.meter",
            "created": self.created,
            "customer_mapping": {"event_payload_key": self.customer_key, "type": "by_id"},
            "default_aggregation": {"formula": self.formula},
            "display_name": self.display_name,
            "event_name": self.event_name,
            "event_time_window": null,
            "livemode": false,
            "status": self.status,
            "status_transitions": {"deactivated_at": null},
            "updated": self.updated,
            "value_settings": {"event_payload_key": self.value_key},
        })
    }
}

impl Account {
    /// `POST /v1/billing/meters`.
    pub fn create_meter(&mut self, mut p: Params) -> Result<(Value, Vec<Change>), ApiError> {
        let display_name = p.required_string("display_name")?;
        let event_name = p.required_string("event_name")?;
        if event_name.chars().count() > 100 {
            return Err(ApiError::invalid(
                "The event_name must be at most 100 characters.",
                Some("event_name".into()),
            ));
        }
        let mut aggregation = p
            .hash("default_aggregation")?
            .ok_or_else(|| ApiError::missing("default_aggregation"))?;
        let formula = aggregation.required_string("formula")?;
        aggregation.finish()?;
        if !["sum", "count", "last"].contains(&formula.as_str()) {
            return Err(ApiError::invalid(
                "Invalid default_aggregation[formula]: must be one of sum, count, or last",
                Some("default_aggregation[formula]".into()),
            ));
        }
        let customer_key = match p.hash("customer_mapping")? {
            Some(mut m) => {
                let key = m.required_string("event_payload_key")?;
                if m.string("type")?.is_some_and(|t| t != "by_id") {
                    return Err(ApiError::invalid(
                        "Invalid customer_mapping[type]: must be by_id",
                        Some("customer_mapping[type]".into()),
                    ));
                }
                m.finish()?;
                key
            }
            None => "stripe_customer_id".into(),
        };
        let value_key = match p.hash("value_settings")? {
            Some(mut v) => {
                let key = v.required_string("event_payload_key")?;
                v.finish()?;
                key
            }
            None => "value".into(),
        };
        p.finish()?;
        if self
            .meters
            .by_seq
            .values()
            .any(|m| m.status == "active" && m.event_name == event_name)
        {
            return Err(ApiError::invalid(
                format!("An active meter with event_name `{event_name}` already exists."),
                Some("event_name".into()),
            ));
        }
        let t = now();
        let meter = Meter {
            id: random_id("mtr"),
            display_name,
            event_name,
            formula,
            customer_key,
            value_key,
            status: "active".into(),
            created: t,
            updated: t,
        };
        let out = meter.to_json();
        let seq = self.seq();
        self.meters.insert(seq, meter.id.clone(), meter);
        Ok((out, Vec::new()))
    }

    /// `GET /v1/billing/meters/{id}`.
    pub fn get_meter(&self, id: &str, p: Params) -> Result<Value, ApiError> {
        p.finish()?;
        self.meters
            .get(id)
            .map(Meter::to_json)
            .ok_or_else(|| ApiError::not_found("billing meter", id))
    }

    /// `GET /v1/billing/meters`.
    pub fn list_meters(&self, mut p: Params) -> Result<Value, ApiError> {
        let status = p.string("status")?;
        let page = self.page(&mut p, &self.meters.seq_of, "billing meter")?;
        p.finish()?;
        let (items, has_more) = Self::paginate(&self.meters.by_seq, &page, |m| {
            status.as_ref().is_none_or(|s| &m.status == s)
        });
        let data = items.into_iter().map(Meter::to_json).collect();
        Ok(Self::list_json("/v1/billing/meters", data, has_more))
    }

    /// `POST /v1/billing/meters/{id}/deactivate` and `…/reactivate`.
    pub fn set_meter_status(
        &mut self,
        id: &str,
        active: bool,
        p: Params,
    ) -> Result<(Value, Vec<Change>), ApiError> {
        p.finish()?;
        let meter = self
            .meters
            .get_mut(id)
            .ok_or_else(|| ApiError::not_found("billing meter", id))?;
        meter.status = if active { "active" } else { "inactive" }.into();
        meter.updated = now();
        Ok((meter.to_json(), Vec::new()))
    }

    /// The meter a metered price names, if it exists and is active.
    pub(super) fn active_meter(&self, id: &str) -> Option<&Meter> {
        self.meters.get(id).filter(|m| m.status == "active")
    }
}
