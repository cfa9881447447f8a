//! The keyring and the wire format of an encrypted payload.
//!
//! A key is 32 random bytes (AES-256), written as 64 hex digits or as base64
//! (`codec-server --new-key` prints one). Its id, stored in every payload it encrypts, is derived
//! from it (a SHA-256 prefix), so rotating needs no separate naming: put the new key in
//! `CATALOG_SYNC_PAYLOAD_KEY` and the old one in `CATALOG_SYNC_PAYLOAD_OLD_KEYS` until no history
//! that needs it is retained.

use std::collections::HashMap;
use std::sync::Arc;

use aes_gcm::aead::{Aead, AeadCore, KeyInit, OsRng};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine;
use prost::Message;
use sha2::{Digest, Sha256};
use temporalio_common::protos::temporal::api::common::v1::Payload;

/// The current key (hex or base64 of 32 bytes); unset or empty: payloads are not encrypted.
pub const KEY_ENV: &str = "CATALOG_SYNC_PAYLOAD_KEY";
/// Earlier keys, comma-separated, still accepted for decryption while rotating.
pub const OLD_KEYS_ENV: &str = "CATALOG_SYNC_PAYLOAD_OLD_KEYS";

/// Metadata key of a payload's encoding.
pub const METADATA_ENCODING: &str = "encoding";
/// Metadata key naming the key a payload was encrypted with.
pub const METADATA_KEY_ID: &str = "encryption-key-id";
/// The encoding of an encrypted payload.
pub const ENCRYPTED_ENCODING: &[u8] = b"binary/encrypted";

const NONCE_LEN: usize = 12;
const TAG_LEN: usize = 16;

/// A key that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// Neither 64 hex digits nor base64 (the key itself is never printed).
    #[error("{setting}: not a key: expected 32 bytes as 64 hex digits or base64")]
    Format {
        /// Where the key came from.
        setting: String,
    },
    /// Decoded, but not 32 bytes long.
    #[error("{setting}: the key is {len} bytes long; AES-256 needs 32")]
    Length {
        /// Where the key came from.
        setting: String,
        /// Its length.
        len: usize,
    },
}

/// A payload that cannot be decrypted. Never retryable: the same bytes and keys give the same
/// answer, until an operator fixes the keys.
#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    /// Encrypted, and this process has no key at all.
    #[error(
        "payload is encrypted (key id {key_id}) but this process has no key: set {KEY_ENV} (or {OLD_KEYS_ENV}) as on the workers"
    )]
    NoKey {
        /// The id in the payload.
        key_id: String,
    },
    /// Encrypted with a key this process does not hold.
    #[error(
        "payload is encrypted with key id {key_id}, which is neither {KEY_ENV} nor one of {OLD_KEYS_ENV} here (known: {known})"
    )]
    UnknownKey {
        /// The id in the payload.
        key_id: String,
        /// The ids this process holds.
        known: String,
    },
    /// The metadata says encrypted but names no key.
    #[error("encrypted payload without an {METADATA_KEY_ID}")]
    MissingKeyId,
    /// Shorter than a nonce and a tag.
    #[error("encrypted payload of {len} bytes is truncated")]
    Truncated {
        /// Its length.
        len: usize,
    },
    /// The tag did not verify: the data was altered, or the key with this id is not the one used.
    #[error(
        "encrypted payload (key id {key_id}) failed authentication: altered, or a different key"
    )]
    Authentication {
        /// The id in the payload.
        key_id: String,
    },
    /// Decrypted, but not a payload.
    #[error("decrypted payload is not a Temporal payload: {0}")]
    Malformed(#[from] prost::DecodeError),
}

struct Key {
    id: String,
    cipher: Aes256Gcm,
}

impl Key {
    fn parse(text: &str, setting: &str) -> Result<Self, KeyError> {
        let text = text.trim();
        let bytes = if text.len() == 64 && text.bytes().all(|b| b.is_ascii_hexdigit()) {
            hex::decode(text).map_err(|_| KeyError::Format {
                setting: setting.to_string(),
            })?
        } else {
            base64::engine::general_purpose::STANDARD
                .decode(text)
                .or_else(|_| base64::engine::general_purpose::URL_SAFE.decode(text))
                .map_err(|_| KeyError::Format {
                    setting: setting.to_string(),
                })?
        };
        let cipher = Aes256Gcm::new_from_slice(&bytes).map_err(|_| KeyError::Length {
            setting: setting.to_string(),
            len: bytes.len(),
        })?;
        let digest = Sha256::new()
            .chain_update(b"catalog-sync payload key\0")
            .chain_update(&bytes)
            .finalize();
        Ok(Self {
            id: format!("cs-{}", hex::encode(&digest[..8])),
            cipher,
        })
    }
}

/// The keys of one process: the current one (encrypts) and any old ones (decrypt only).
#[derive(Clone, Default)]
pub struct Keyring {
    current: Option<Arc<Key>>,
    by_id: HashMap<String, Arc<Key>>,
}

impl std::fmt::Debug for Keyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keyring")
            .field("current", &self.current_key_id())
            .field("keys", &self.by_id.len())
            .finish()
    }
}

impl Keyring {
    /// `current` encrypts (none: payloads stay plain); it and `old` decrypt.
    pub fn new(current: Option<&str>, old: &[&str]) -> Result<Self, KeyError> {
        let mut keyring = Self::default();
        if let Some(text) = current {
            let key = Arc::new(Key::parse(text, KEY_ENV)?);
            keyring.by_id.insert(key.id.clone(), key.clone());
            keyring.current = Some(key);
        }
        for text in old {
            let key = Key::parse(text, OLD_KEYS_ENV)?;
            keyring
                .by_id
                .entry(key.id.clone())
                .or_insert_with(|| Arc::new(key));
        }
        Ok(keyring)
    }

    /// Whether new payloads are encrypted.
    pub fn encrypts(&self) -> bool {
        self.current.is_some()
    }

    /// The id of the key new payloads are encrypted with.
    pub fn current_key_id(&self) -> Option<&str> {
        self.current.as_deref().map(|k| k.id.as_str())
    }

    /// Every key id this keyring can decrypt.
    pub fn key_ids(&self) -> Vec<&str> {
        let mut ids: Vec<&str> = self.by_id.keys().map(String::as_str).collect();
        ids.sort_unstable();
        ids
    }

    /// `payload` encrypted with the current key; as it is without one, or if it is encrypted
    /// already.
    pub fn encrypt(&self, payload: Payload) -> Payload {
        let Some(key) = &self.current else {
            return payload;
        };
        if is_encrypted(&payload) {
            return payload;
        }
        let nonce = Aes256Gcm::generate_nonce(&mut OsRng);
        let sealed = key
            .cipher
            .encrypt(&nonce, payload.encode_to_vec().as_slice())
            .expect("AES-GCM encrypts any payload a Temporal server accepts");
        let mut data = Vec::with_capacity(NONCE_LEN + sealed.len());
        data.extend_from_slice(&nonce);
        data.extend_from_slice(&sealed);
        Payload {
            metadata: HashMap::from([
                (METADATA_ENCODING.to_string(), ENCRYPTED_ENCODING.to_vec()),
                (METADATA_KEY_ID.to_string(), key.id.clone().into_bytes()),
            ]),
            data,
            ..Default::default()
        }
    }

    /// The original of an encrypted payload; a payload that is not encrypted, as it is.
    pub fn decrypt(&self, payload: Payload) -> Result<Payload, CodecError> {
        if !is_encrypted(&payload) {
            return Ok(payload);
        }
        let key_id = payload
            .metadata
            .get(METADATA_KEY_ID)
            .map(|id| String::from_utf8_lossy(id).into_owned())
            .ok_or(CodecError::MissingKeyId)?;
        let key = self.by_id.get(&key_id).ok_or_else(|| {
            if self.by_id.is_empty() {
                CodecError::NoKey {
                    key_id: key_id.clone(),
                }
            } else {
                CodecError::UnknownKey {
                    key_id: key_id.clone(),
                    known: self.key_ids().join(", "),
                }
            }
        })?;
        if payload.data.len() < NONCE_LEN + TAG_LEN {
            return Err(CodecError::Truncated {
                len: payload.data.len(),
            });
        }
        let (nonce, sealed) = payload.data.split_at(NONCE_LEN);
        let plain = key
            .cipher
            .decrypt(Nonce::from_slice(nonce), sealed)
            .map_err(|_| CodecError::Authentication { key_id })?;
        Ok(Payload::decode(plain.as_slice())?)
    }
}

/// Whether a payload is encrypted (by this codec or one with the same format).
pub fn is_encrypted(payload: &Payload) -> bool {
    payload.metadata.get(METADATA_ENCODING).map(Vec::as_slice) == Some(ENCRYPTED_ENCODING)
}

/// A fresh random key, as base64.
pub fn new_key() -> String {
    base64::engine::general_purpose::STANDARD.encode(Aes256Gcm::generate_key(&mut OsRng))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn json_payload(text: &str) -> Payload {
        Payload {
            metadata: HashMap::from([("encoding".to_string(), b"json/plain".to_vec())]),
            data: serde_json::to_vec(text).unwrap(),
            ..Default::default()
        }
    }

    #[test]
    fn encrypts_with_the_current_key_and_decrypts_to_the_original() {
        let keyring = Keyring::new(Some(&new_key()), &[]).unwrap();
        let original = json_payload("Linen shirt");
        let sealed = keyring.encrypt(original.clone());
        assert!(is_encrypted(&sealed));
        assert_eq!(
            sealed.metadata[METADATA_KEY_ID],
            keyring.current_key_id().unwrap().as_bytes()
        );
        assert!(!String::from_utf8_lossy(&sealed.data).contains("Linen"));
        assert_eq!(keyring.decrypt(sealed.clone()).unwrap(), original);
        // A fresh nonce each time: equal payloads do not look equal.
        assert_ne!(keyring.encrypt(original).data, sealed.data);
    }

    #[test]
    fn keys_are_read_as_hex_or_base64_and_their_ids_agree() {
        let bytes = [7u8; 32];
        let hex_key = hex::encode(bytes);
        let b64_key = base64::engine::general_purpose::STANDARD.encode(bytes);
        let a = Keyring::new(Some(&hex_key), &[]).unwrap();
        let b = Keyring::new(Some(&format!("  {b64_key}\n")), &[]).unwrap();
        assert_eq!(a.current_key_id(), b.current_key_id());
        assert!(a.current_key_id().unwrap().starts_with("cs-"));
        assert_eq!(
            a.decrypt(b.encrypt(json_payload("x"))).unwrap(),
            json_payload("x")
        );
    }

    #[test]
    fn bad_keys_are_refused_without_echoing_them() {
        let short = base64::engine::general_purpose::STANDARD.encode([1u8; 16]);
        let err = Keyring::new(Some(&short), &[]).unwrap_err();
        assert!(matches!(err, KeyError::Length { len: 16, .. }), "{err}");
        let err = Keyring::new(None, &["not a key!"]).unwrap_err();
        assert!(err.to_string().contains(OLD_KEYS_ENV), "{err}");
        assert!(!err.to_string().contains("not a key!"));
    }

    #[test]
    fn old_keys_decrypt_after_rotation_and_unknown_keys_are_named() {
        let (old, new) = (new_key(), new_key());
        let before = Keyring::new(Some(&old), &[]).unwrap();
        let sealed_before = before.encrypt(json_payload("a"));
        let rotated = Keyring::new(Some(&new), &[&old]).unwrap();
        assert_eq!(
            rotated.decrypt(sealed_before.clone()).unwrap(),
            json_payload("a")
        );
        assert_ne!(rotated.current_key_id(), before.current_key_id());

        let stranger = Keyring::new(Some(&new_key()), &[]).unwrap();
        match stranger.decrypt(sealed_before.clone()).unwrap_err() {
            CodecError::UnknownKey { key_id, .. } => {
                assert_eq!(Some(key_id.as_str()), before.current_key_id())
            }
            other => panic!("unexpected {other}"),
        }
        assert!(matches!(
            Keyring::default().decrypt(sealed_before).unwrap_err(),
            CodecError::NoKey { .. }
        ));
    }

    #[test]
    fn altered_data_fails_authentication() {
        let keyring = Keyring::new(Some(&new_key()), &[]).unwrap();
        let mut sealed = keyring.encrypt(json_payload("price 4900"));
        let last = sealed.data.len() - 1;
        sealed.data[last] ^= 1;
        assert!(matches!(
            keyring.decrypt(sealed.clone()).unwrap_err(),
            CodecError::Authentication { .. }
        ));
        sealed.data.truncate(10);
        assert!(matches!(
            keyring.decrypt(sealed).unwrap_err(),
            CodecError::Truncated { len: 10 }
        ));
    }

    #[test]
    fn plain_payloads_pass_through_both_ways_without_a_key() {
        let keyring = Keyring::default();
        assert!(!keyring.encrypts());
        let p = json_payload("plain");
        assert_eq!(keyring.encrypt(p.clone()), p);
        assert_eq!(keyring.decrypt(p.clone()).unwrap(), p);
    }
}
