//! Rules Stripe applies to more than one object: metadata, currencies, caller-chosen ids. Each
//! object's own rules live in its store module (`store::products`, `store::prices`).

use std::collections::BTreeMap;

use crate::error::ApiError;
use crate::form::StringMap;

pub use domain::limits::{
    CURRENCIES, MAX_AMOUNT as MAX_UNIT_AMOUNT, MAX_IMAGES, METADATA_MAX_KEY_LEN, METADATA_MAX_KEYS,
    METADATA_MAX_VALUE_LEN,
};

/// Applies a metadata update with Stripe's limits.
pub fn apply_metadata(
    target: &mut BTreeMap<String, String>,
    update: StringMap,
    param: &str,
) -> Result<(), ApiError> {
    let mut next = if update.cleared {
        BTreeMap::new()
    } else {
        target.clone()
    };
    for (key, value) in update.entries {
        if key.chars().count() > METADATA_MAX_KEY_LEN {
            return Err(ApiError::invalid(
                format!(
                    "Metadata keys can have up to {METADATA_MAX_KEY_LEN} characters, but key '{key}' has {}.",
                    key.chars().count()
                ),
                Some(format!("{param}[{key}]")),
            ));
        }
        if key.contains('[') || key.contains(']') {
            return Err(ApiError::invalid(
                "Metadata keys cannot contain square brackets.",
                Some(format!("{param}[{key}]")),
            ));
        }
        match value {
            Some(v) if v.chars().count() > METADATA_MAX_VALUE_LEN => {
                return Err(ApiError::invalid(
                    format!(
                        "Metadata values can have up to {METADATA_MAX_VALUE_LEN} characters, but the value for '{key}' has {}.",
                        v.chars().count()
                    ),
                    Some(format!("{param}[{key}]")),
                ));
            }
            Some(v) => {
                next.insert(key, v);
            }
            None => {
                next.remove(&key);
            }
        }
    }
    if next.len() > METADATA_MAX_KEYS {
        return Err(ApiError::invalid(
            format!(
                "Metadata can have up to {METADATA_MAX_KEYS} keys, but {} were given.",
                next.len()
            ),
            Some(param.into()),
        ));
    }
    *target = next;
    Ok(())
}

/// Validates a currency code.
pub fn currency(raw: String, param: &str) -> Result<String, ApiError> {
    let lower = raw.to_ascii_lowercase();
    if CURRENCIES.contains(&lower.as_str()) {
        Ok(lower)
    } else {
        Err(ApiError::invalid(
            format!(
                "Invalid currency: {raw}. Stripe currently supports these currencies: {}",
                CURRENCIES.join(", ")
            ),
            Some(param.into()),
        ))
    }
}

/// Checks a caller-chosen object id.
pub fn custom_id(id: &str) -> Result<(), ApiError> {
    let ok = !id.is_empty()
        && id.len() <= 255
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if ok {
        Ok(())
    } else {
        Err(ApiError::invalid(
            format!("Invalid id: {id}. Ids may contain only letters, digits, '_' and '-'."),
            Some("id".into()),
        ))
    }
}
