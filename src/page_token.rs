//! Opaque, tamper-evident page tokens (AIP-158): the position after the last
//! item of a page plus a fingerprint of the filters it was issued for, signed
//! with HMAC-SHA-256 under a key kept in the database.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize, de::DeserializeOwned};
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

type HmacSha256 = Hmac<Sha256>;

const MAC_LEN: usize = 16;

#[derive(Serialize, Deserialize)]
struct Body<C> {
    /// Which list and which filters the token belongs to.
    f: String,
    /// Where the next page starts.
    c: C,
}

fn scope_fingerprint(scope: &str, filters: &impl Serialize) -> Result<String> {
    let mut h = Sha256::new();
    h.update(scope.as_bytes());
    h.update(serde_json::to_vec(filters)?);
    Ok(h.finalize()[..12]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect())
}

fn mac(key: &[u8; 32], body: &[u8]) -> Result<Vec<u8>> {
    let mut m = HmacSha256::new_from_slice(key).map_err(|e| Error::Internal(e.to_string()))?;
    m.update(body);
    Ok(m.finalize().into_bytes()[..MAC_LEN].to_vec())
}

/// Issues a token for the page after `cursor` of list `scope` under `filters`.
pub fn encode<C: Serialize>(
    key: &[u8; 32],
    scope: &str,
    filters: &impl Serialize,
    cursor: &C,
) -> Result<String> {
    let body = serde_json::to_vec(&Body {
        f: scope_fingerprint(scope, filters)?,
        c: cursor,
    })?;
    let mut raw = mac(key, &body)?;
    raw.extend_from_slice(&body);
    Ok(URL_SAFE_NO_PAD.encode(raw))
}

/// Reads a token back, refusing one that was forged, altered, or issued for
/// another list or other filters.
pub fn decode<C: DeserializeOwned>(
    key: &[u8; 32],
    scope: &str,
    filters: &impl Serialize,
    token: &str,
) -> Result<C> {
    let invalid = |why: &str| Error::PageTokenInvalid(why.to_owned());
    let raw = URL_SAFE_NO_PAD
        .decode(token)
        .map_err(|_| invalid("not a page token of this server"))?;
    if raw.len() <= MAC_LEN {
        return Err(invalid("not a page token of this server"));
    }
    let (tag, body) = raw.split_at(MAC_LEN);
    let mut m = HmacSha256::new_from_slice(key).map_err(|e| Error::Internal(e.to_string()))?;
    m.update(body);
    m.verify_truncated_left(tag)
        .map_err(|_| invalid("page token was altered or issued by another server"))?;
    let body: Body<C> =
        serde_json::from_slice(body).map_err(|_| invalid("not a page token of this server"))?;
    if body.f != scope_fingerprint(scope, filters)? {
        return Err(invalid(
            "page token was issued for a different list or different filters",
        ));
    }
    Ok(body.c)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const KEY: [u8; 32] = [7; 32];

    #[test]
    fn round_trips_under_the_same_filters() {
        let t = encode(&KEY, "incidents", &("open", 1), &(42i64, "x")).unwrap();
        let c: (i64, String) = decode(&KEY, "incidents", &("open", 1), &t).unwrap();
        assert_eq!(c, (42, "x".to_owned()));
    }

    #[test]
    fn refuses_other_filters_other_lists_and_other_keys() {
        let t = encode(&KEY, "incidents", &("open", 1), &1i64).unwrap();
        assert!(decode::<i64>(&KEY, "incidents", &("open", 2), &t).is_err());
        assert!(decode::<i64>(&KEY, "components", &("open", 1), &t).is_err());
        assert!(decode::<i64>(&[8; 32], "incidents", &("open", 1), &t).is_err());
    }

    proptest! {
        #[test]
        fn any_altered_byte_is_refused(pos in 0usize..64, flip in 1u8..=255) {
            let t = encode(&KEY, "incidents", &"f", &(123i64, "abc")).unwrap();
            let mut raw = URL_SAFE_NO_PAD.decode(&t).unwrap();
            let pos = pos % raw.len();
            raw[pos] ^= flip;
            let forged = URL_SAFE_NO_PAD.encode(raw);
            prop_assert!(decode::<(i64, String)>(&KEY, "incidents", &"f", &forged).is_err());
        }

        #[test]
        fn garbage_is_refused_not_panicking(s in ".{0,80}") {
            prop_assert!(decode::<i64>(&KEY, "incidents", &"f", &s).is_err());
        }
    }
}
