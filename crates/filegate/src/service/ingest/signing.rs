//! Upload URLs that name filegate itself, for files whose size was not declared (the
//! store cannot be told their length, so their bytes stream through filegate). A URL
//! carries its expiry and an HMAC-SHA256 of the file id and that expiry under a key of
//! the file's own, kept in its row: any replica can check it, a replay can sign a
//! fresh one, and deleting the row revokes them all.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use uuid::Uuid;

type HmacSha256 = Hmac<Sha256>;

/// The path of a file's upload through filegate (`PUT`).
#[must_use]
pub fn path(file: Uuid) -> String {
    format!("/v2/uploads/{file}")
}

/// A new random signing key for one file.
///
/// # Errors
/// When the system's random source fails.
pub fn new_key() -> Result<[u8; 32], getrandom::Error> {
    let mut key = [0u8; 32];
    getrandom::fill(&mut key)?;
    Ok(key)
}

fn mac(key: &[u8], file: Uuid, expires: i64) -> HmacSha256 {
    // HMAC takes a key of any length: this cannot fail.
    let mut mac = <HmacSha256 as Mac>::new_from_slice(key).unwrap_or_else(|_| unreachable!());
    mac.update(format!("PUT {file} {expires}").as_bytes());
    mac
}

/// The signature of `file`'s upload URL expiring at `expires` (Unix seconds).
#[must_use]
pub fn sign(key: &[u8], file: Uuid, expires: i64) -> String {
    URL_SAFE_NO_PAD.encode(mac(key, file, expires).finalize().into_bytes())
}

/// Whether `signature` is `file`'s for `expires` under `key` (compared in constant time).
#[must_use]
pub fn verify(key: &[u8], file: Uuid, expires: i64, signature: &str) -> bool {
    URL_SAFE_NO_PAD
        .decode(signature)
        .is_ok_and(|sig| mac(key, file, expires).verify_slice(&sig).is_ok())
}

/// The full URL under `base` (scheme and authority clients reach filegate at).
#[must_use]
pub fn url(base: &str, key: &[u8], file: Uuid, expires: i64) -> String {
    format!(
        "{}{}?expires={expires}&signature={}",
        base.trim_end_matches('/'),
        path(file),
        sign(key, file, expires)
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_signature_holds_only_for_its_file_expiry_and_key() {
        let (key, other_key) = ([7u8; 32], [8u8; 32]);
        let (file, other_file) = (Uuid::now_v7(), Uuid::now_v7());
        let sig = sign(&key, file, 1_900_000_000);
        assert!(verify(&key, file, 1_900_000_000, &sig));
        assert!(!verify(&key, file, 1_900_000_001, &sig), "another expiry");
        assert!(
            !verify(&key, other_file, 1_900_000_000, &sig),
            "another file"
        );
        assert!(
            !verify(&other_key, file, 1_900_000_000, &sig),
            "another key"
        );
        assert!(!verify(&key, file, 1_900_000_000, "not base64!"));
        assert!(!verify(&key, file, 1_900_000_000, ""));
        assert!(!verify(&key, file, 1_900_000_000, &sig[..sig.len() - 1]));
    }

    #[test]
    fn urls_name_the_route_the_expiry_and_the_signature() {
        let file = Uuid::from_u128(5);
        let url = url("https://files.example/", &[1u8; 32], file, 42);
        assert!(url.starts_with(&format!(
            "https://files.example/v2/uploads/{file}?expires=42&signature="
        )));
        assert_eq!(sign(&[1u8; 32], file, 42).len(), 43, "32 bytes, unpadded");
        assert!(new_key().unwrap() != new_key().unwrap());
    }
}
