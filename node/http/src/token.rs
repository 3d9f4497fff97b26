//! API tokens of the node and the hub: generation and hashing. A store keeps only the SHA-256
//! of a token, so a leaked store file leaks no usable token.

use sha2::{Digest, Sha256};

/// Prefixes that make a node's and a hub's tokens recognisable in logs and secret scanners.
pub const NODE_TOKEN_PREFIX: &str = "fct_";
pub const HUB_TOKEN_PREFIX: &str = "fch_";

/// A fresh random token (256 bits) with `prefix`, and its hash.
pub fn generate(prefix: &str) -> std::io::Result<(String, [u8; 32])> {
    let mut secret = [0u8; 32];
    getrandom::fill(&mut secret).map_err(|e| std::io::Error::other(e.to_string()))?;
    let token = format!("{prefix}{}", hex::encode(secret));
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
        let (a, ha) = generate(NODE_TOKEN_PREFIX).unwrap();
        let (b, _) = generate(NODE_TOKEN_PREFIX).unwrap();
        assert_ne!(a, b);
        assert!(a.starts_with(NODE_TOKEN_PREFIX) && a.len() == 4 + 64);
        assert!(generate(HUB_TOKEN_PREFIX).unwrap().0.starts_with("fch_"));
        assert_eq!(hash(&a), ha);
    }
}
