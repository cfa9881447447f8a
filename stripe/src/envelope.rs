//! What every Stripe object comes in: lists, expandable fields, and a response with its
//! `Request-Id`.

use serde::{Deserialize, Serialize};

/// A field Stripe returns as an id, or as the object when the request expanded it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(untagged)]
pub enum Expandable<T> {
    /// Not expanded.
    Id(String),
    /// Expanded.
    Object(Box<T>),
}

/// A page of a list.
#[derive(Debug, Deserialize)]
pub struct List<T> {
    /// Items.
    pub data: Vec<T>,
    /// More after the last item.
    pub has_more: bool,
}

/// A response value with the `Request-Id` it came with.
#[derive(Debug)]
pub struct Response<T> {
    /// The decoded body.
    pub value: T,
    /// `Request-Id`.
    pub request_id: Option<String>,
}
