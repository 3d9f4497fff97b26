//! API tokens: generation and hashing. The store keeps only the SHA-256 of a token, so a leaked
//! store file leaks no usable token.

use sha2::{Digest, Sha256};

/// Prefix that makes a FusionCommerce token recognisable in logs and secret scanners.
pub const TOKEN_PREFIX: &str = "fct_";

/// A fresh random token (256 bits) and its hash.
pub fn generate() -> std::io::Result<(String, [u8; 32])> {
    let mut secret = [0u8; 32];
    getrandom::fill(&mut secret).map_err(|e| std::io::Error::other(e.to_string()))?;
    let token = format!("{TOKEN_PREFIX}{}", hex::encode(secret));
    let hash = hash(&token);
    Ok((token, hash))
}

pub fn hash(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_random_and_hash_stably() {
        let (a, ha) = generate().unwrap();
        let (b, _) = generate().unwrap();
        assert_ne!(a, b);
        assert!(a.starts_with(TOKEN_PREFIX) && a.len() == 4 + 64);
        assert_eq!(hash(&a), ha);
    }
}
