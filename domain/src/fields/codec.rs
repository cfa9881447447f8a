//! The kinds of value a field holds ([`Codec`]): how one is read from a catalog column,
//! normalised, compared with Stripe's JSON, sent in Stripe's bracket dialect and shown; and what
//! an unset value asks of Stripe ([`Unset`]).

use serde_json::{Map, Value};

/// How a field's values are read, normalised, sent to Stripe and shown: one per kind of value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Codec {
    /// Required text, trimmed.
    Name,
    /// Optional text, trimmed; empty is unset. Stripe may answer an expanded object: its `id`.
    Text,
    /// Optional `true`/`false`.
    Flag,
    /// A list of texts, kept as given (`images[0]=…`).
    Texts,
    /// A list of names, trimmed; Stripe holds `[{"name": …}]` (`marketing_features[0][name]=…`).
    Names,
    /// An object of these numbers (`package_dimensions[height]=…`); unset is `null`.
    Numbers(&'static [&'static str]),
}

/// What an unset catalog value asks of Stripe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unset {
    /// Clear Stripe's value (sent empty on an update; not sent on a create).
    Clears,
    /// Leave Stripe's value: Stripe cannot unset it, or unset means "not said".
    LeavesStripe,
}

/// Whether the content hash holds the field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hashed {
    /// Always: the field was synced from the first release.
    Always,
    /// Only when set: a field added later, so that a product which does not use it keeps the
    /// hash it was synced with (and an upgrade rewrites nothing).
    WhenSet,
}

/// Null, or an empty list: nothing said.
pub fn is_unset(value: &Value) -> bool {
    value.is_null() || value.as_array().is_some_and(Vec::is_empty)
}

impl Codec {
    /// A catalog value as a plan holds it (trimmed texts, empty text unset, numbers as floats).
    pub fn normalize(self, value: Value) -> Value {
        match self {
            Codec::Name => Value::String(value.as_str().unwrap_or_default().trim().to_string()),
            Codec::Text => trimmed(&value),
            Codec::Flag => value.as_bool().map_or(Value::Null, Value::Bool),
            Codec::Texts => strings(&value, |v| v.as_str().map(str::to_string)),
            Codec::Names => strings(&value, |v| v.as_str().map(|s| s.trim().to_string())),
            Codec::Numbers(_) => floats(&value),
        }
    }

    /// Stripe's JSON of a field as a plan holds it.
    pub fn from_stripe(self, value: &Value) -> Value {
        match self {
            Codec::Name => Value::String(value.as_str().unwrap_or_default().to_string()),
            Codec::Text => match value {
                Value::String(s) if !s.is_empty() => value.clone(),
                // An expanded object (a tax code): its id.
                Value::Object(o) => o.get("id").cloned().unwrap_or(Value::Null),
                _ => Value::Null,
            },
            Codec::Flag => value.as_bool().map_or(Value::Null, Value::Bool),
            Codec::Texts => strings(value, |v| v.as_str().map(str::to_string)),
            Codec::Names => strings(value, |v| {
                v.as_str()
                    .or_else(|| v["name"].as_str())
                    .map(str::to_string)
            }),
            Codec::Numbers(_) => floats(value),
        }
    }

    /// The form parameters of a value, in Stripe's bracket dialect; an unset value is sent
    /// empty, which clears it.
    pub fn form(self, name: &str, value: &Value) -> Vec<(String, String)> {
        let empty = || vec![(name.to_string(), String::new())];
        match (self, value) {
            (Codec::Name | Codec::Text, Value::String(s)) => vec![(name.to_string(), s.clone())],
            (Codec::Flag, Value::Bool(b)) => vec![(name.to_string(), b.to_string())],
            (Codec::Texts, Value::Array(items)) if !items.is_empty() => items
                .iter()
                .enumerate()
                .map(|(i, v)| (format!("{name}[{i}]"), v.as_str().unwrap_or("").to_string()))
                .collect(),
            (Codec::Names, Value::Array(items)) if !items.is_empty() => items
                .iter()
                .enumerate()
                .map(|(i, v)| {
                    let text = v.as_str().unwrap_or("").to_string();
                    (format!("{name}[{i}][name]"), text)
                })
                .collect(),
            (Codec::Numbers(_), Value::Object(o)) => o
                .iter()
                .map(|(k, v)| (format!("{name}[{k}]"), number_text(v)))
                .collect(),
            _ => empty(),
        }
    }

    /// A value as a person reads it: `"text"`, `[a, b]`, `true`, or `(none)`.
    pub fn show(self, value: &Value) -> String {
        match value {
            Value::Null => "(none)".into(),
            Value::String(s) => format!("\"{s}\""),
            Value::Array(items) if items.is_empty() => "(none)".into(),
            Value::Array(items) => {
                let items: Vec<&str> = items.iter().filter_map(Value::as_str).collect();
                format!("[{}]", items.join(", "))
            }
            Value::Object(o) => o
                .iter()
                .map(|(k, v)| format!("{k} {}", number_text(v)))
                .collect::<Vec<_>>()
                .join(", "),
            other => other.to_string(),
        }
    }

    /// How a catalog column holds the field.
    pub fn stored(self) -> Stored {
        match self {
            Codec::Name | Codec::Texts | Codec::Names => Stored::Text { required: true },
            Codec::Text | Codec::Numbers(_) => Stored::Text { required: false },
            Codec::Flag => Stored::Flag,
        }
    }

    /// What a JSON column must hold, for a message.
    pub fn shape(self) -> String {
        match self {
            Codec::Texts | Codec::Names => "a JSON array of strings".into(),
            Codec::Numbers(keys) => match keys.split_last() {
                Some((last, rest)) => format!("a JSON object of {} and {last}", rest.join(", ")),
                None => "a JSON object".into(),
            },
            Codec::Name | Codec::Text => "text".into(),
            Codec::Flag => "true or false".into(),
        }
    }

    /// A catalog column's value as JSON (lists and objects parsed from their text); an error
    /// says what the column should hold.
    pub fn from_column(self, column: Column) -> Result<Value, String> {
        match (self, column) {
            (Codec::Flag, Column::Flag(flag)) => Ok(flag.map_or(Value::Null, Value::Bool)),
            (Codec::Name | Codec::Text, Column::Text(text)) => {
                Ok(text.map_or(Value::Null, Value::String))
            }
            (Codec::Texts | Codec::Names | Codec::Numbers(_), Column::Text(None)) => {
                Ok(Value::Null)
            }
            (Codec::Texts | Codec::Names | Codec::Numbers(_), Column::Text(Some(raw))) => {
                serde_json::from_str(&raw).map_err(|e| format!("is not {}: {e}", self.shape()))
            }
            (_, column) => Err(format!("is not {}: {column:?}", self.shape())),
        }
    }

    /// A normalised value as a catalog column stores it: text, a flag, or (lists and objects)
    /// JSON text; `None` for unset.
    pub fn column(self, value: &Value) -> Column {
        match self {
            Codec::Flag => Column::Flag(value.as_bool()),
            Codec::Name => Column::Text(Some(value.as_str().unwrap_or_default().to_string())),
            Codec::Text => Column::Text(value.as_str().map(str::to_string)),
            Codec::Texts | Codec::Names if value.is_array() => {
                Column::Text(Some(value.to_string()))
            }
            Codec::Texts | Codec::Names => Column::Text(Some("[]".into())),
            Codec::Numbers(_) => Column::Text(value.is_object().then(|| value.to_string())),
        }
    }
}

/// How a catalog column holds a field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stored {
    /// A text column (lists and objects as JSON text); `required`: never NULL.
    Text {
        /// NULL is a corrupt row.
        required: bool,
    },
    /// A boolean column.
    Flag,
}

/// A field's value as a catalog column holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Column {
    /// A text column (lists and objects as JSON text).
    Text(Option<String>),
    /// A boolean column.
    Flag(Option<bool>),
}

pub(crate) fn to_value<T: serde::Serialize>(value: &T) -> Value {
    serde_json::to_value(value).expect("a product field serializes to JSON")
}

fn trimmed(value: &Value) -> Value {
    match value.as_str().map(str::trim) {
        Some(s) if !s.is_empty() => Value::String(s.to_string()),
        _ => Value::Null,
    }
}

fn strings(value: &Value, item: impl Fn(&Value) -> Option<String>) -> Value {
    Value::Array(
        value
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(item)
            .map(Value::String)
            .collect(),
    )
}

/// An object's numbers as floats (Stripe may answer `1` for the `1.0` it was sent).
fn floats(value: &Value) -> Value {
    match value.as_object() {
        Some(o) => Value::Object(
            o.iter()
                .map(|(k, v)| {
                    let v = v
                        .as_f64()
                        .and_then(serde_json::Number::from_f64)
                        .map_or_else(|| v.clone(), Value::Number);
                    (k.clone(), v)
                })
                .collect::<Map<_, _>>(),
        ),
        None => Value::Null,
    }
}

/// A number as Stripe's forms take it: `2` for 2.0, `2.5` for 2.5.
fn number_text(value: &Value) -> String {
    value
        .as_f64()
        .map_or_else(|| value.to_string(), |f| f.to_string())
}
