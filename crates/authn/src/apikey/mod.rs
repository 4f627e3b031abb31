//! Portcullis API keys: `pk_live_<key id>_<secret>`.
//!
//! The key id (16 hex digits) is public: it names the key in `keys list`, audit records and
//! `keys revoke`. The secret (64 hex digits, 256 bits) is shown once by `keys create` and
//! stored only as `HMAC-SHA256(pepper, "portcullis/api-key/v1\0" ‖ id ‖ "\0" ‖ secret)`.
//! Verification recomputes that digest and compares it in constant time.

mod store;
mod verify;

pub use store::{CreatedKey, KeyInfo, KeyStore, NewKey};
pub(crate) use verify::ApiKeys;

use hmac::Mac;
use secrecy::SecretString;
use zeroize::Zeroizing;

use crate::failure::{Fail, FailureKind};
use crate::pepper::{Pepper, random_hex};

/// Every key starts with this.
pub const KEY_PREFIX: &str = "pk_live_";
const ID_LEN: usize = 16;
const SECRET_LEN: usize = 64;
const DIGEST_LABEL: &[u8] = b"portcullis/api-key/v1\0";

/// A presented key split into its parts.
pub(crate) struct ParsedKey<'a> {
    pub id: &'a str,
    pub secret: &'a str,
}

fn is_lower_hex(text: &str) -> bool {
    text.bytes()
        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// Splits `pk_live_<16 hex>_<64 hex>`.
pub(crate) fn parse(raw: &str) -> Result<ParsedKey<'_>, Fail> {
    let malformed = || {
        Fail::new(
            FailureKind::Malformed("not a Portcullis API key"),
            format!("API key does not have the form {KEY_PREFIX}<{ID_LEN} hex>_<{SECRET_LEN} hex>"),
        )
    };
    let rest = raw.strip_prefix(KEY_PREFIX).ok_or_else(malformed)?;
    let (id, secret) = rest.split_once('_').ok_or_else(malformed)?;
    if id.len() != ID_LEN
        || secret.len() != SECRET_LEN
        || !is_lower_hex(id)
        || !is_lower_hex(secret)
    {
        return Err(malformed());
    }
    Ok(ParsedKey { id, secret })
}

/// The key id of a presented key, even a malformed one, for the audit record.
pub(crate) fn id_hint(raw: &str) -> Option<&str> {
    let id = raw.strip_prefix(KEY_PREFIX)?.get(..ID_LEN)?;
    is_lower_hex(id).then_some(id)
}

/// A new key's parts: its id, its secret and the whole key text.
pub(crate) struct Generated {
    pub id: String,
    pub secret: Zeroizing<String>,
    pub key: SecretString,
}

pub(crate) fn generate() -> Generated {
    let id = random_hex(ID_LEN / 2);
    let secret = Zeroizing::new(random_hex(SECRET_LEN / 2));
    let key = SecretString::from(format!("{KEY_PREFIX}{id}_{}", secret.as_str()));
    Generated { id, secret, key }
}

/// `HMAC-SHA256(pepper, label ‖ id ‖ 0 ‖ secret)`.
pub(crate) fn digest(pepper: &Pepper, id: &str, secret: &str) -> [u8; 32] {
    let mut mac = pepper.mac();
    mac.update(DIGEST_LABEL);
    mac.update(id.as_bytes());
    mac.update(b"\0");
    mac.update(secret.as_bytes());
    mac.finalize().into_bytes().into()
}

#[cfg(test)]
mod tests {
    use secrecy::ExposeSecret;

    use super::*;

    #[test]
    fn generated_keys_parse_back() {
        let g = generate();
        let parsed = parse(g.key.expose_secret()).unwrap();
        assert_eq!(parsed.id, g.id);
        assert_eq!(parsed.secret, g.secret.as_str());
        assert_eq!(parsed.secret.len(), SECRET_LEN);
        assert_eq!(id_hint(g.key.expose_secret()), Some(g.id.as_str()));
    }

    #[test]
    fn parse_table() {
        let id = "0123456789abcdef";
        let secret = "a".repeat(64);
        let rows = [
            (format!("pk_live_{id}_{secret}"), true),
            (format!("pk_test_{id}_{secret}"), false),
            (format!("pk_live_{id}{secret}"), false),
            (format!("pk_live_{id}_{}", &secret[1..]), false),
            (format!("pk_live_{}_{secret}", id.to_uppercase()), false),
            (format!("pk_live_{id}_{secret}x"), false),
            (format!("pk_live_{id}_{}", "g".repeat(64)), false),
            ("pk_live_".to_owned(), false),
        ];
        for (raw, ok) in rows {
            assert_eq!(parse(&raw).is_ok(), ok, "{raw}");
        }
    }

    #[test]
    fn digest_binds_id_secret_and_pepper() {
        let p = Pepper::from_bytes(b"pepper-one-0123456789");
        let q = Pepper::from_bytes(b"pepper-two-0123456789");
        let base = digest(&p, "id1", "secret");
        assert_ne!(base, digest(&q, "id1", "secret"));
        assert_ne!(base, digest(&p, "id2", "secret"));
        assert_ne!(base, digest(&p, "id1", "secreT"));
        assert_ne!(digest(&p, "ab", "c"), digest(&p, "a", "bc"));
    }
}
