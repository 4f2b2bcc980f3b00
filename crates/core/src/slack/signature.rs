//! Slack request signing, `v0` scheme: `v0=` + hex(HMAC-SHA256(secret,
//! "v0:{timestamp}:{raw body}")), with a 300 s replay window either way.

use std::fmt;

use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use thiserror::Error;

use crate::ErrorType;

pub const TIMESTAMP_HEADER: &str = "x-slack-request-timestamp";
pub const SIGNATURE_HEADER: &str = "x-slack-signature";
/// Slack's replay window, in seconds, applied both ways.
pub const MAX_SKEW_SECONDS: i64 = 300;

/// The app's signing secret. Its `Debug` never shows the value, so it cannot
/// leak through a `{:?}` in a log line.
#[derive(Clone)]
pub struct SigningSecret(Vec<u8>);

impl SigningSecret {
    pub fn new(secret: impl Into<String>) -> Self {
        Self(secret.into().into_bytes())
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    /// Signs like Slack does. For stand-ins, tests and the local demo.
    pub fn sign(&self, timestamp: i64, body: &[u8]) -> String {
        format!(
            "v0={}",
            hex::encode(self.mac(timestamp.to_string().as_bytes(), body))
        )
    }
    fn mac(&self, timestamp: &[u8], body: &[u8]) -> Vec<u8> {
        self.hmac(timestamp, body).finalize().into_bytes().to_vec()
    }
    fn hmac(&self, timestamp: &[u8], body: &[u8]) -> Hmac<Sha256> {
        // HMAC takes keys of any length, so this cannot fail.
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.0)
            .unwrap_or_else(|_| unreachable!("HMAC accepts any key length"));
        mac.update(b"v0:");
        mac.update(timestamp);
        mac.update(b":");
        mac.update(body);
        mac
    }
}

impl fmt::Debug for SigningSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SigningSecret(<redacted>)")
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SignatureError {
    #[error("missing header {0}")]
    MissingHeader(&'static str),
    #[error("malformed header {header}: {reason}")]
    MalformedHeader {
        header: &'static str,
        reason: &'static str,
    },
    #[error("request timestamp is {age_seconds} s old, beyond the {MAX_SKEW_SECONDS} s replay window")]
    Stale { age_seconds: i64 },
    #[error("request timestamp is {ahead_seconds} s in the future, beyond the {MAX_SKEW_SECONDS} s window")]
    FromTheFuture { ahead_seconds: i64 },
    #[error("signature does not match the request")]
    Mismatch,
}

impl ErrorType for SignatureError {
    fn error_type(&self) -> &'static str {
        match self {
            Self::MissingHeader(_) => "SignatureMissingHeader",
            Self::MalformedHeader { .. } => "SignatureMalformedHeader",
            Self::Stale { .. } => "SignatureStale",
            Self::FromTheFuture { .. } => "SignatureFromTheFuture",
            Self::Mismatch => "SignatureMismatch",
        }
    }
}

/// Finds a header by name, ignoring ASCII case (API Gateway lower-cases
/// names, Slack sends them capitalised, proxies do as they please).
pub fn find_header<'a, I>(headers: I, name: &str) -> Option<&'a [u8]>
where
    I: IntoIterator<Item = (&'a str, &'a [u8])>,
{
    headers
        .into_iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v)
}

/// Verifies a Slack request: header shapes, then the replay window, then the
/// signature in constant time. `body` must be the exact bytes Slack sent
/// (already base64-decoded when API Gateway encoded it).
pub fn verify_request(
    secret: &SigningSecret,
    timestamp: Option<&[u8]>,
    signature: Option<&[u8]>,
    body: &[u8],
    now: DateTime<Utc>,
) -> Result<(), SignatureError> {
    let timestamp = timestamp.ok_or(SignatureError::MissingHeader(TIMESTAMP_HEADER))?;
    let signature = signature.ok_or(SignatureError::MissingHeader(SIGNATURE_HEADER))?;

    let ts = parse_timestamp(timestamp)?;
    let expected_mac = parse_signature(signature)?;

    let skew = now.timestamp().saturating_sub(ts);
    if skew > MAX_SKEW_SECONDS {
        return Err(SignatureError::Stale { age_seconds: skew });
    }
    if skew < -MAX_SKEW_SECONDS {
        return Err(SignatureError::FromTheFuture {
            ahead_seconds: skew.saturating_neg(),
        });
    }

    // `verify_slice` compares in constant time. Hash the timestamp exactly as
    // sent, not as re-rendered: "01531420618" must not verify as "1531420618".
    secret
        .hmac(timestamp, body)
        .verify_slice(&expected_mac)
        .map_err(|_| SignatureError::Mismatch)
}

fn parse_timestamp(raw: &[u8]) -> Result<i64, SignatureError> {
    let malformed = |reason| SignatureError::MalformedHeader {
        header: TIMESTAMP_HEADER,
        reason,
    };
    if raw.is_empty() || raw.len() > 12 || !raw.iter().all(u8::is_ascii_digit) {
        return Err(malformed("expected unix seconds"));
    }
    std::str::from_utf8(raw)
        .ok()
        .and_then(|s| s.parse::<i64>().ok())
        .ok_or(malformed("expected unix seconds"))
}

fn parse_signature(raw: &[u8]) -> Result<Vec<u8>, SignatureError> {
    let malformed = |reason| SignatureError::MalformedHeader {
        header: SIGNATURE_HEADER,
        reason,
    };
    let hex_part = raw
        .strip_prefix(b"v0=")
        .ok_or(malformed("expected the v0= scheme"))?;
    if hex_part.len() != 64 {
        return Err(malformed("expected 64 hex digits"));
    }
    hex::decode(hex_part).map_err(|_| malformed("expected 64 hex digits"))
}

#[cfg(test)]
mod tests {
    use super::*;

    // Slack's documented worked example ("Verifying requests from Slack").
    const DOC_SECRET: &str = "8f742231b10e8888abcd99yyyzzz85a5";
    const DOC_TS: &str = "1531420618";
    const DOC_BODY: &str = "token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c";
    const DOC_SIG: &str = "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503";

    fn at(ts: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(ts, 0).unwrap()
    }

    fn check(secret: &str, ts: &str, sig: &str, body: &str, now: i64) -> Result<(), SignatureError> {
        verify_request(
            &SigningSecret::new(secret),
            Some(ts.as_bytes()),
            Some(sig.as_bytes()),
            body.as_bytes(),
            at(now),
        )
    }

    #[test]
    fn slacks_worked_example_verifies_at_its_own_time() {
        assert_eq!(
            check(DOC_SECRET, DOC_TS, DOC_SIG, DOC_BODY, 1_531_420_618),
            Ok(())
        );
        assert_eq!(
            SigningSecret::new(DOC_SECRET).sign(1_531_420_618, DOC_BODY.as_bytes()),
            DOC_SIG
        );
    }

    #[test]
    fn slacks_worked_example_is_stale_today() {
        let today = Utc::now().timestamp();
        assert!(matches!(
            check(DOC_SECRET, DOC_TS, DOC_SIG, DOC_BODY, today),
            Err(SignatureError::Stale { .. })
        ));
    }

    #[test]
    fn the_window_is_300_seconds_both_ways() {
        let ts = 1_531_420_618;
        assert!(check(DOC_SECRET, DOC_TS, DOC_SIG, DOC_BODY, ts + 300).is_ok());
        assert!(check(DOC_SECRET, DOC_TS, DOC_SIG, DOC_BODY, ts - 300).is_ok());
        assert_eq!(
            check(DOC_SECRET, DOC_TS, DOC_SIG, DOC_BODY, ts + 301),
            Err(SignatureError::Stale { age_seconds: 301 })
        );
        assert_eq!(
            check(DOC_SECRET, DOC_TS, DOC_SIG, DOC_BODY, ts - 301),
            Err(SignatureError::FromTheFuture { ahead_seconds: 301 })
        );
    }

    #[test]
    fn tampering_or_the_wrong_secret_is_a_mismatch() {
        let now = 1_531_420_618;
        let tampered = DOC_BODY.replace("roadrunner", "wileecoyote");
        assert_eq!(
            check(DOC_SECRET, DOC_TS, DOC_SIG, &tampered, now),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            check("not-the-secret", DOC_TS, DOC_SIG, DOC_BODY, now),
            Err(SignatureError::Mismatch)
        );
        // Same instant, different spelling: the signed string differs.
        assert_eq!(
            check(DOC_SECRET, "01531420618", DOC_SIG, DOC_BODY, now),
            Err(SignatureError::Mismatch)
        );
        let upper = DOC_SIG.to_uppercase().replacen("V0=", "v0=", 1);
        assert_eq!(check(DOC_SECRET, DOC_TS, &upper, DOC_BODY, now), Ok(()));
    }

    #[test]
    fn missing_and_malformed_headers_are_named() {
        let secret = SigningSecret::new(DOC_SECRET);
        let body = DOC_BODY.as_bytes();
        let now = at(1_531_420_618);
        assert_eq!(
            verify_request(&secret, None, Some(DOC_SIG.as_bytes()), body, now),
            Err(SignatureError::MissingHeader(TIMESTAMP_HEADER))
        );
        assert_eq!(
            verify_request(&secret, Some(DOC_TS.as_bytes()), None, body, now),
            Err(SignatureError::MissingHeader(SIGNATURE_HEADER))
        );
        for (ts, sig, header) in [
            ("abc", DOC_SIG, TIMESTAMP_HEADER),
            ("-5", DOC_SIG, TIMESTAMP_HEADER),
            ("", DOC_SIG, TIMESTAMP_HEADER),
            ("99999999999999999999", DOC_SIG, TIMESTAMP_HEADER),
            (DOC_TS, "v1=abc", SIGNATURE_HEADER),
            (
                DOC_TS,
                "a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503",
                SIGNATURE_HEADER,
            ),
            (
                DOC_TS,
                "v0=zz14d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503",
                SIGNATURE_HEADER,
            ),
            (DOC_TS, "v0=a211", SIGNATURE_HEADER),
        ] {
            let got = verify_request(&secret, Some(ts.as_bytes()), Some(sig.as_bytes()), body, now);
            assert!(
                matches!(got, Err(SignatureError::MalformedHeader { header: h, .. }) if h == header),
                "{ts} {sig}: {got:?}"
            );
        }
    }

    #[test]
    fn header_lookup_ignores_case() {
        let headers = [
            ("X-Slack-Request-Timestamp", b"1".as_slice()),
            ("x-slack-signature", b"v0=".as_slice()),
        ];
        assert_eq!(find_header(headers, TIMESTAMP_HEADER), Some(b"1".as_slice()));
        assert_eq!(find_header(headers, "X-SLACK-SIGNATURE"), Some(b"v0=".as_slice()));
        assert_eq!(find_header(headers, "x-other"), None);
    }

    #[test]
    fn the_secret_never_shows_in_debug_output() {
        let shown = format!("{:?}", SigningSecret::new("hunter2-very-secret"));
        assert!(!shown.contains("hunter2"));
    }
}
