//! Events (`GET /v1/events`, `GET /v1/events/{id}`): every event the account's writes made (the
//! same objects its webhooks deliver), kept for Stripe's 30 days and listed newest first with
//! Stripe's filters: `type` (with a `*` wildcard, as in `product.*`), `types[]` (up to 20),
//! `created` (a timestamp or `gt`/`gte`/`lt`/`lte`), and `starting_after` / `ending_before` /
//! `limit` pagination.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{Account, now};
use crate::error::ApiError;
use crate::form::Params;

/// How long Stripe keeps events: 30 days.
pub const RETENTION_SECS: i64 = domain::limits::EVENT_RETENTION_SECS;

/// The most `types[]` Stripe takes.
const MAX_TYPES: usize = 20;

/// An event as the account keeps it: what the filters need, and the event as compact JSON. A
/// parsed `Value` takes several times the memory of its text, and an account keeps every write's
/// events for 30 days (a million seeded products are millions of events). State files hold the
/// event itself, as before.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(try_from = "Value", into = "Value")]
pub(crate) struct StoredEvent {
    id: String,
    kind: String,
    created: i64,
    json: Box<str>,
}

impl StoredEvent {
    fn value(&self) -> Value {
        serde_json::from_str(&self.json).expect("a stored event is JSON")
    }
}

impl TryFrom<Value> for StoredEvent {
    type Error = String;

    fn try_from(event: Value) -> Result<Self, String> {
        let id = event["id"].as_str().ok_or("an event without an id")?;
        Ok(Self {
            id: id.to_string(),
            kind: event["type"].as_str().unwrap_or_default().to_string(),
            created: event["created"].as_i64().unwrap_or_default(),
            json: event.to_string().into_boxed_str(),
        })
    }
}

impl From<StoredEvent> for Value {
    fn from(event: StoredEvent) -> Value {
        event.value()
    }
}

impl Account {
    /// Keeps `events` (in the order they happened) and forgets those past the retention.
    pub fn record_events(&mut self, events: &[Value]) {
        for event in events {
            let Ok(stored) = StoredEvent::try_from(event.clone()) else {
                continue;
            };
            self.next_seq += 1;
            self.events.insert(self.next_seq, stored.id.clone(), stored);
        }
        self.forget_events_before(now() - RETENTION_SECS);
    }

    /// Forgets the events created before `cutoff` (Unix seconds); the oldest come first.
    pub(crate) fn forget_events_before(&mut self, cutoff: i64) {
        while let Some((_, oldest)) = self.events.by_seq.first_key_value() {
            if oldest.created >= cutoff {
                break;
            }
            let id = oldest.id.clone();
            self.events.remove(&id);
        }
    }

    /// `GET /v1/events/{id}`.
    pub fn get_event(&self, id: &str, p: Params) -> Result<Value, ApiError> {
        p.finish()?;
        self.events
            .get(id)
            .map(StoredEvent::value)
            .ok_or_else(|| ApiError::not_found("event", id))
    }

    /// `GET /v1/events`.
    pub fn list_events(&self, mut p: Params) -> Result<Value, ApiError> {
        let one_type = p.string("type")?;
        let types = p.string_list("types")?;
        if one_type.is_some() && types.is_some() {
            return Err(ApiError::invalid(
                "You may only specify one of these parameters: type, types.",
                Some("types".into()),
            ));
        }
        if types.as_ref().is_some_and(|t| t.len() > MAX_TYPES) {
            return Err(ApiError::invalid(
                format!("Invalid array: types may contain at most {MAX_TYPES} elements"),
                Some("types".into()),
            ));
        }
        let patterns: Vec<String> = one_type
            .into_iter()
            .chain(types.into_iter().flatten())
            .collect();
        let created = created_filter(&mut p)?;
        // Accepted as Stripe does; the sandbox delivers without keeping per-event outcomes.
        let _ = p.boolean("delivery_success")?;
        let page = self.page(&mut p, &self.events.seq_of, "event")?;
        p.finish()?;
        let keep = |event: &StoredEvent| {
            (patterns.is_empty() || patterns.iter().any(|p| type_matches(p, &event.kind)))
                && created
                    .iter()
                    .all(|(op, bound)| op.holds(event.created, *bound))
        };
        let (items, has_more) = Self::paginate(&self.events.by_seq, &page, keep);
        Ok(Self::list_json(
            "/v1/events",
            items.into_iter().map(StoredEvent::value).collect(),
            has_more,
        ))
    }
}

/// `product.*` matches every product event; anything else matches itself.
fn type_matches(pattern: &str, kind: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) => kind.starts_with(prefix),
        None => pattern == kind,
    }
}

#[derive(Debug, Clone, Copy)]
enum Bound {
    Eq,
    Gt,
    Gte,
    Lt,
    Lte,
}

impl Bound {
    fn holds(self, at: i64, bound: i64) -> bool {
        match self {
            Bound::Eq => at == bound,
            Bound::Gt => at > bound,
            Bound::Gte => at >= bound,
            Bound::Lt => at < bound,
            Bound::Lte => at <= bound,
        }
    }
}

/// `created=T` or `created[gt|gte|lt|lte]=T`.
fn created_filter(p: &mut Params) -> Result<Vec<(Bound, i64)>, ApiError> {
    if !p.is_hash("created") {
        return Ok(p
            .integer("created")?
            .map(|at| (Bound::Eq, at))
            .into_iter()
            .collect());
    }
    let Some(mut range) = p.hash("created")? else {
        return Ok(Vec::new());
    };
    let mut bounds = Vec::new();
    for (name, bound) in [
        ("gt", Bound::Gt),
        ("gte", Bound::Gte),
        ("lt", Bound::Lt),
        ("lte", Bound::Lte),
    ] {
        if let Some(at) = range.integer(name)? {
            bounds.push((bound, at));
        }
    }
    range.finish()?;
    Ok(bounds)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn events_older_than_thirty_days_are_forgotten() {
        let mut account = Account::default();
        let old = now() - RETENTION_SECS - 60;
        account.record_events(&[
            json!({ "id": "evt_old", "type": "product.created", "created": old }),
            json!({ "id": "evt_new", "type": "product.updated", "created": now() }),
        ]);
        assert!(account.events.get("evt_old").is_none());
        assert!(account.events.get("evt_new").is_some());
        // Kept as text, shown as the event; a state file holds the event itself.
        let shown = account
            .get_event("evt_new", Params::new(Default::default()))
            .unwrap();
        assert_eq!(shown["type"], "product.updated");
        let saved = serde_json::to_value(&account).unwrap();
        assert_eq!(saved["events"]["by_seq"]["2"]["id"], "evt_new");
        let loaded: Account = serde_json::from_value(saved).unwrap();
        assert_eq!(
            loaded.events.get("evt_new").unwrap().kind,
            "product.updated"
        );
        assert!(type_matches("product.*", "product.updated"));
        assert!(!type_matches("product.*", "price.created"));
    }
}
