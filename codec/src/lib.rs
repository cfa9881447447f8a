//! Optional encryption of catalog-sync's Temporal payloads (AES-256-GCM), so product data in
//! workflow history (activity inputs and results, signals, workflow results, failure messages) is
//! ciphertext at rest in Temporal's database and on the wire to the server.
//!
//! Off unless `CATALOG_SYNC_PAYLOAD_KEY` is set. Every process that talks to Temporal (worker,
//! relay, starter) builds its client's data converter with [`data_converter`], so all of them
//! encrypt and decrypt alike. Search attributes are never encrypted (the server indexes them; they
//! carry no personal data).
//!
//! Layout:
//! - [`keys`]: the keyring (current key, old keys kept for decryption while rotating) and the
//!   wire format of an encrypted payload;
//! - this file: the [`PayloadCodec`] the SDK applies to every payload, and the [`DataConverter`];
//!
//! The codec server (`POST /encode`, `POST /decode`, CORS) that the Temporal Web UI and the
//! `temporal` CLI call to show encrypted payloads decrypted is the `codec-server` crate's.
//!
//! The format is that of Temporal's encryption samples (Go, Python, TypeScript): the original
//! payload, serialized as protobuf, encrypted; `encoding: binary/encrypted` and
//! `encryption-key-id` in the metadata; data = 12-byte nonce ‖ ciphertext ‖ 16-byte tag.

use std::sync::Arc;

use futures::future::{BoxFuture, ready};
use temporalio_common::data_converters::{
    DataConverter, DefaultFailureConverter, PayloadCodec, PayloadConversionError, PayloadConverter,
    SerializationContextData,
};
use temporalio_common::protos::temporal::api::common::v1::Payload;

pub mod keys;

pub use keys::{CodecError, KeyError, Keyring};

/// Encrypts payloads with the keyring's current key (when it has one) and decrypts those
/// encrypted with any of its keys. Payloads that are not encrypted decode as they are, so turning
/// encryption on leaves earlier histories readable.
#[derive(Clone)]
pub struct EncryptionCodec {
    keyring: Arc<Keyring>,
}

impl EncryptionCodec {
    /// A codec over `keyring`.
    pub fn new(keyring: Keyring) -> Self {
        Self {
            keyring: Arc::new(keyring),
        }
    }
}

impl PayloadCodec for EncryptionCodec {
    fn encode(
        &self,
        _context: &SerializationContextData,
        payloads: Vec<Payload>,
    ) -> BoxFuture<'static, Result<Vec<Payload>, PayloadConversionError>> {
        let encoded = payloads
            .into_iter()
            .map(|payload| self.keyring.encrypt(payload))
            .collect();
        Box::pin(ready(Ok(encoded)))
    }

    fn decode(
        &self,
        _context: &SerializationContextData,
        payloads: Vec<Payload>,
    ) -> BoxFuture<'static, Result<Vec<Payload>, PayloadConversionError>> {
        let decoded = payloads
            .into_iter()
            .map(|payload| self.keyring.decrypt(payload))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| PayloadConversionError::EncodingError(Box::new(e)));
        Box::pin(ready(decoded))
    }
}

/// The data converter of every catalog-sync client: JSON payloads through [`EncryptionCodec`].
/// When the keyring encrypts, failure messages and stack traces move into an encoded (so
/// encrypted) attribute too, as Temporal's SDKs recommend with encryption: Stripe's error messages
/// can quote product data.
pub fn data_converter(keyring: Keyring) -> DataConverter {
    DataConverter::new(
        PayloadConverter::default(),
        DefaultFailureConverter::new(keyring.encrypts()),
        EncryptionCodec::new(keyring),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use temporalio_common::data_converters::SerializationContextData;

    fn key(byte: u8) -> String {
        hex::encode([byte; 32])
    }

    #[tokio::test]
    async fn values_round_trip_through_the_converter_and_are_not_readable_between() {
        let converter = data_converter(Keyring::new(Some(&key(1)), &[]).unwrap());
        let context = SerializationContextData::None;
        let value = serde_json::json!({"name": "Linen shirt", "price": 4900});
        let payload = converter.to_payload(&context, &value).await.unwrap();
        assert_eq!(payload.metadata["encoding"], b"binary/encrypted");
        assert!(
            !String::from_utf8_lossy(&payload.data).contains("Linen"),
            "the product name is not in the stored bytes"
        );
        let back: serde_json::Value = converter.from_payload(&context, payload).await.unwrap();
        assert_eq!(back, value);
    }

    #[tokio::test]
    async fn without_a_key_payloads_stay_plain_and_encrypted_ones_fail_clearly() {
        let plain = data_converter(Keyring::default());
        let context = SerializationContextData::None;
        let payload = plain.to_payload(&context, &"hello").await.unwrap();
        assert_eq!(payload.metadata["encoding"], b"json/plain");

        let encrypted = data_converter(Keyring::new(Some(&key(2)), &[]).unwrap())
            .to_payload(&context, &"hello")
            .await
            .unwrap();
        let err = plain
            .from_payload::<String>(&context, encrypted)
            .await
            .unwrap_err();
        let message = match err {
            PayloadConversionError::EncodingError(e) => e.to_string(),
            other => panic!("unexpected {other:?}"),
        };
        assert!(
            message.contains("CATALOG_SYNC_PAYLOAD_KEY"),
            "names the setting: {message}"
        );
    }
}
