//! Workflow inputs that never fail to decode.
//!
//! A workflow whose input cannot be decoded does not fail: its workflow *task* fails, and Temporal
//! retries that task forever while the run stays Running. That is what a start from the `temporal`
//! CLI with no `--input` (zero payloads) or with a mistyped field used to do. So the inputs of
//! `ProductSync` and `ReconcileCatalog` decode from anything: zero payloads, `null`, the wrong
//! shape; what cannot be used is recorded in the input (`invalid_input`), and the workflow's first
//! step fails the run with `InvalidWorkflowInput` and that reason.
//!
//! How, with this SDK: a serde `Deserialize` type gets the SDK's blanket `TemporalDeserializable`,
//! whose `from_payloads` refuses anything but exactly one payload before our code runs. So these
//! inputs implement `TemporalDeserializable` themselves (and not `Deserialize`). The default
//! payload converter, which every catalog-sync client uses (`codec::data_converter`), asks such
//! "wrapper" types first, so zero payloads reach [`LenientInput::invalid`] here. Encoding stays
//! `json/plain` as the CLI sends it, so histories recorded before replay unchanged.

use serde_json::Value;
use temporalio_common::data_converters::{
    PayloadConversionError, SerializationContext, TemporalDeserializable,
};
use temporalio_common::protos::temporal::api::common::v1::Payload;

/// The failure that ends a workflow whose input cannot be used: `InvalidWorkflowInput`, final.
pub(crate) fn invalid_workflow_input(why: String) -> temporalio_sdk::WorkflowTermination {
    temporalio_common::error::ApplicationFailure::builder(why)
        .type_name(INVALID_WORKFLOW_INPUT.to_string())
        .non_retryable(true)
        .build()
        .into()
}

/// The failure type of a workflow started with an input it cannot use.
pub const INVALID_WORKFLOW_INPUT: &str = "InvalidWorkflowInput";

/// An input decoded from JSON that records, rather than fails on, what it cannot use.
pub trait LenientInput: Sized {
    /// A smallest input that works, as the temporal CLI's `--input` takes it.
    const EXAMPLE: &'static str;
    /// The input from a JSON value of any shape.
    fn from_json(value: Value) -> Self;
    /// The input that fails the workflow with `why`.
    fn invalid(why: String) -> Self;
}

/// The JSON value of one payload as the SDK's JSON converter writes it (`json/plain`, or
/// `binary/null` for a null).
fn json_value(payload: &Payload) -> Result<Value, String> {
    let encoding = payload
        .metadata
        .get("encoding")
        .map(|v| String::from_utf8_lossy(v).into_owned());
    match encoding.as_deref() {
        Some("json/plain") => serde_json::from_slice(&payload.data)
            .map_err(|e| format!("the input is not valid JSON: {e}")),
        Some("binary/null") => Ok(Value::Null),
        other => Err(format!(
            "the input must be JSON (encoding json/plain), got encoding {}",
            other.unwrap_or("none")
        )),
    }
}

/// The input of `payloads`, for a workflow of type `workflow`: one JSON payload, or the reason
/// there is none.
pub(crate) fn decode<T: LenientInput>(workflow: &str, payloads: &[Payload]) -> T {
    match payloads {
        [] => T::invalid(format!(
            "{workflow} was started without an input: pass one, e.g. `--input '{}'` with the \
             temporal CLI",
            T::EXAMPLE
        )),
        [payload] => json_value(payload).map_or_else(T::invalid, T::from_json),
        more => T::invalid(format!("{workflow} takes one input, got {}", more.len())),
    }
}

/// Implements `TemporalDeserializable` for a [`LenientInput`] of workflow type `$workflow`.
macro_rules! lenient_temporal_input {
    ($ty:ty, $workflow:literal) => {
        impl TemporalDeserializable for $ty {
            fn from_payload(
                _ctx: &SerializationContext<'_>,
                payload: Payload,
            ) -> Result<Self, PayloadConversionError> {
                Ok(decode($workflow, std::slice::from_ref(&payload)))
            }

            fn from_payloads(
                _ctx: &SerializationContext<'_>,
                payloads: Vec<Payload>,
            ) -> Result<Self, PayloadConversionError> {
                Ok(decode($workflow, &payloads))
            }
        }
    };
}

lenient_temporal_input!(crate::ProductSyncInput, "ProductSync");
lenient_temporal_input!(crate::ReconcileInput, "ReconcileCatalog");

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ProductSyncInput, ReconcileInput};

    fn json(text: &str) -> Payload {
        Payload {
            metadata: [("encoding".to_string(), b"json/plain".to_vec())].into(),
            data: text.as_bytes().to_vec(),
            ..Payload::default()
        }
    }

    #[test]
    fn no_payload_is_a_clear_invalid_input_not_a_decode_failure() {
        let p: ProductSyncInput = decode("ProductSync", &[]);
        assert!(p.invalid_input.unwrap().contains("without an input"));
        let r: ReconcileInput = decode("ReconcileCatalog", &[]);
        assert!(r.invalid_input.unwrap().contains("without an input"));
        let two: ProductSyncInput = decode("ProductSync", &[json("{}"), json("{}")]);
        assert!(two.invalid_input.unwrap().contains("one input"));
        let binary = Payload {
            metadata: [("encoding".to_string(), b"binary/plain".to_vec())].into(),
            data: b"x".to_vec(),
            ..Payload::default()
        };
        let b: ReconcileInput = decode("ReconcileCatalog", &[binary]);
        assert!(b.invalid_input.unwrap().contains("json/plain"));
        let broken: ReconcileInput = decode("ReconcileCatalog", &[json("{")]);
        assert!(broken.invalid_input.unwrap().contains("not valid JSON"));
    }

    #[test]
    fn one_json_payload_decodes_as_before() {
        let p: ProductSyncInput = decode("ProductSync", &[json(r#"{"catalog_id": "sku-1"}"#)]);
        assert_eq!((p.catalog_id.as_str(), p.invalid_input), ("sku-1", None));
        let r: ReconcileInput = decode("ReconcileCatalog", &[json(r#"{"mode": "dry_run"}"#)]);
        assert_eq!(r.invalid_input, None);
    }
}
