//! Verifying `Stripe-Signature` as Stripe specifies it: `t=<unix time>,v1=<hex>[,v1=<hex>…]`, where
//! each `v1` is HMAC-SHA256 of `"{t}.{raw body}"` under an endpoint secret. Several `v1` values
//! appear while Stripe rolls a secret; several secrets are configured while we roll ours. Any
//! match of any secret passes. Comparison is constant-time; the timestamp must be within the
//! tolerance (replays of old deliveries are refused).

use std::time::Duration;

use common::settings::Secret;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// Why a signature was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// No `Stripe-Signature` header.
    #[error("missing Stripe-Signature header")]
    Missing,
    /// The header has no `t=` or no `v1=`, or they are not what Stripe sends.
    #[error("malformed Stripe-Signature header")]
    Malformed,
    /// The timestamp is older than the tolerance (a replay) or too far in the future.
    #[error("signature timestamp is {0} s away from now, beyond the tolerance")]
    OutsideTolerance(i64),
    /// No `v1` matches any configured secret.
    #[error("no signature matches the endpoint secret")]
    Mismatch,
}

/// Checks `header` for `payload` at time `now` (unix seconds); returns the signed timestamp.
pub fn verify(
    header: Option<&str>,
    payload: &[u8],
    secrets: &[Secret],
    tolerance: Duration,
    now: i64,
) -> Result<i64, SignatureError> {
    let header = header.ok_or(SignatureError::Missing)?;
    let mut timestamp = None;
    let mut signatures = Vec::new();
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", t)) => {
                timestamp = Some(t.parse::<i64>().map_err(|_| SignatureError::Malformed)?)
            }
            Some(("v1", sig)) => {
                if let Ok(bytes) = hex::decode(sig) {
                    signatures.push(bytes);
                }
            }
            // `v0` (test signatures) and unknown schemes are ignored, as Stripe's libraries do.
            _ => {}
        }
    }
    let timestamp = timestamp.ok_or(SignatureError::Malformed)?;
    if signatures.is_empty() {
        return Err(SignatureError::Malformed);
    }
    // Saturating: the timestamp is the sender's (i64::MIN must not overflow a subtraction).
    let age = now.saturating_sub(timestamp);
    if age.unsigned_abs() > tolerance.as_secs() {
        return Err(SignatureError::OutsideTolerance(age));
    }
    let mut matched = false;
    for secret in secrets {
        let expected = expected_signature(secret.expose(), timestamp, payload);
        for candidate in &signatures {
            // Not short-circuited: the time taken does not depend on which comparison matched.
            matched |= bool::from(expected.as_slice().ct_eq(candidate.as_slice()));
        }
    }
    if matched {
        Ok(timestamp)
    } else {
        Err(SignatureError::Mismatch)
    }
}

/// HMAC-SHA256(secret, "{timestamp}.{payload}").
pub fn expected_signature(secret: &str, timestamp: i64, payload: &[u8]) -> Vec<u8> {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(payload);
    mac.finalize().into_bytes().to_vec()
}

/// A `Stripe-Signature` header value, as Stripe (and the sandbox) sends it.
pub fn header_value(secret: &str, timestamp: i64, payload: &[u8]) -> String {
    format!(
        "t={timestamp},v1={}",
        hex::encode(expected_signature(secret, timestamp, payload))
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const BODY: &[u8] = br#"{"id":"evt_1","type":"product.updated"}"#;
    const NOW: i64 = 1_800_000_000;
    const TOLERANCE: Duration = Duration::from_secs(300);

    fn secrets(list: &[&str]) -> Vec<Secret> {
        list.iter().map(|s| Secret::new(*s)).collect()
    }

    #[test]
    fn a_signature_of_the_secret_passes() {
        let header = header_value("whsec_a", NOW - 10, BODY);
        assert_eq!(
            verify(Some(&header), BODY, &secrets(&["whsec_a"]), TOLERANCE, NOW),
            Ok(NOW - 10)
        );
    }

    #[test]
    fn rotation_on_either_side_passes() {
        // Stripe rolling its secret: two v1 values, one of them ours.
        let old = hex::encode(expected_signature("whsec_old", NOW, BODY));
        let new = hex::encode(expected_signature("whsec_new", NOW, BODY));
        let header = format!("t={NOW},v1={old},v1={new}");
        assert!(
            verify(
                Some(&header),
                BODY,
                &secrets(&["whsec_new"]),
                TOLERANCE,
                NOW
            )
            .is_ok()
        );
        // We rolling ours: two secrets configured, Stripe signs with one.
        let header = header_value("whsec_old", NOW, BODY);
        let both = secrets(&["whsec_new", "whsec_old"]);
        assert!(verify(Some(&header), BODY, &both, TOLERANCE, NOW).is_ok());
    }

    #[test]
    fn forged_tampered_stale_and_malformed_are_refused() {
        let ours = secrets(&["whsec_a"]);
        let forged = header_value("whsec_attacker", NOW, BODY);
        assert_eq!(
            verify(Some(&forged), BODY, &ours, TOLERANCE, NOW),
            Err(SignatureError::Mismatch)
        );
        let header = header_value("whsec_a", NOW, BODY);
        let tampered = br#"{"id":"evt_1","type":"product.deleted"}"#;
        assert_eq!(
            verify(Some(&header), tampered, &ours, TOLERANCE, NOW),
            Err(SignatureError::Mismatch)
        );
        let stale = header_value("whsec_a", NOW - 301, BODY);
        assert_eq!(
            verify(Some(&stale), BODY, &ours, TOLERANCE, NOW),
            Err(SignatureError::OutsideTolerance(301))
        );
        let future = header_value("whsec_a", NOW + 301, BODY);
        assert!(verify(Some(&future), BODY, &ours, TOLERANCE, NOW).is_err());
        assert_eq!(
            verify(None, BODY, &ours, TOLERANCE, NOW),
            Err(SignatureError::Missing)
        );
        for bad in [
            "",
            "v1=abcd",
            &format!("t={NOW}"),
            "t=soon,v1=00",
            &format!("t={NOW},v0=00"),
        ] {
            assert_eq!(
                verify(Some(bad), BODY, &ours, TOLERANCE, NOW),
                Err(SignatureError::Malformed),
                "{bad}"
            );
        }
    }

    #[test]
    fn hostile_headers_are_refused_without_panicking() {
        let secrets = secrets(&["whsec_a"]);
        let extremes = [
            "t=-9223372036854775808,v1=00",
            "t=9223372036854775807,v1=00",
            "t=-1,v1=",
            "t=,v1=zz",
            "t=99999999999999999999999,v1=00",
            "v1=00,v1=00,t=0",
            ",,,,=,=,t==,v1==",
            "t=1800000000,v1=",
            "\u{0}t=1",
            "",
        ];
        for header in extremes {
            assert!(
                verify(Some(header), BODY, &secrets, TOLERANCE, NOW).is_err(),
                "{header:?}"
            );
            assert!(verify(Some(header), BODY, &secrets, TOLERANCE, i64::MIN).is_err());
            assert!(verify(Some(header), BODY, &secrets, TOLERANCE, i64::MAX).is_err());
        }
        // Random headers built from the pieces Stripe's format is made of.
        let pieces = [
            "t=",
            "v1=",
            "v0=",
            ",",
            "=",
            "-",
            "9",
            "0",
            "f",
            "9223372036854775808",
            " ",
        ];
        let mut seed = 0x2545_f491_4f6c_dd1d_u64;
        for _ in 0..20_000 {
            let mut header = String::new();
            for _ in 0..(seed % 12) {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                header.push_str(pieces[(seed % pieces.len() as u64) as usize]);
            }
            let now = [NOW, i64::MIN, i64::MAX, 0][(seed % 4) as usize];
            assert!(verify(Some(&header), BODY, &secrets, TOLERANCE, now).is_err());
        }
    }
}
