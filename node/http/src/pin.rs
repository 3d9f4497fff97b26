//! Staff PINs: stored only as a salted argon2id hash (PHC string), checked in constant work.
//! Both are slow on purpose (tens of milliseconds): call them off the async threads
//! ([`crate::blocking`]).
//!
//! A 4-digit PIN has 10,000 values, so its hash protects it only from a casual reader of a
//! store file, not from a patient one: what protects a PIN is the till's lockout
//! (`fusion_rules::staff`) and the store files' permissions (0600).

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};

/// The PHC string of `pin` with a fresh random salt.
pub fn hash(pin: &str) -> std::io::Result<String> {
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt).map_err(|e| std::io::Error::other(e.to_string()))?;
    let salt = SaltString::encode_b64(&salt).map_err(|e| std::io::Error::other(e.to_string()))?;
    Argon2::default()
        .hash_password(pin.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| std::io::Error::other(e.to_string()))
}

/// Whether `pin` is the one `phc` was made from. A hash that is not a valid PHC string (a
/// peer's document) matches nothing.
pub fn verify(pin: &str, phc: &str) -> bool {
    let Ok(parsed) = PasswordHash::new(phc) else {
        return false;
    };
    Argon2::default()
        .verify_password(pin.as_bytes(), &parsed)
        .is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pin_matches_its_hash_only() {
        let a = hash("1234").unwrap();
        let b = hash("1234").unwrap();
        assert_ne!(a, b, "salted");
        assert!(a.starts_with("$argon2id$"), "{a}");
        assert!(!a.contains("1234"));
        assert!(verify("1234", &a) && verify("1234", &b));
        assert!(!verify("1235", &a));
        assert!(!verify("1234", "not a hash"));
        assert!(!verify("1234", ""));
    }
}
