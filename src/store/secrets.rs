//! The router's secrets, kept as files of the data directory readable by their owner only
//! (mode 0600): whoever may read the records may read these, nobody else.
//!
//! - `admin.token`: the admin API's bearer token, new at every start (the CLI reads it);
//! - `nonce.key`: the digest nonces' HMAC key, kept across restarts so challenges in flight
//!   stay valid (a phone answering one gets in, instead of a second 401 that some phones
//!   take for a wrong password);
//! - `metrics.token`: the bearer token a remote Prometheus scrapes `/metrics` with, kept
//!   across restarts so its `credentials_file` stays right.

use rand::RngCore;
use std::io::Write;
use std::path::Path;

/// A fresh admin token, written to `<dir>/admin.token`.
pub fn admin_token(dir: &Path) -> std::io::Result<String> {
    let token = hex_token();
    write_private(&dir.join("admin.token"), token.as_bytes())?;
    Ok(token)
}

/// The nonce key of `<dir>/nonce.key`, made on first start.
pub fn nonce_key(dir: &Path) -> std::io::Result<[u8; 32]> {
    let path = dir.join("nonce.key");
    if let Ok(bytes) = std::fs::read(&path)
        && let Ok(key) = <[u8; 32]>::try_from(bytes.as_slice())
    {
        return Ok(key);
    }
    let key = crate::sip::digest::NonceStore::random_secret();
    write_private(&path, &key)?;
    Ok(key)
}

/// The metrics token of `<dir>/metrics.token`, made on first start.
pub fn metrics_token(dir: &Path) -> std::io::Result<String> {
    let path = dir.join("metrics.token");
    if let Ok(text) = std::fs::read_to_string(&path) {
        let token = text.trim();
        if token.len() >= 32 && token.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Ok(token.to_string());
        }
    }
    let token = hex_token();
    write_private(&path, token.as_bytes())?;
    Ok(token)
}

/// 32 random bytes in hex.
fn hex_token() -> String {
    let mut bytes = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path)?.write_all(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kept_secrets_survive_a_restart_and_the_admin_token_does_not() {
        let dir = tempfile::tempdir().unwrap();
        let (nonce, metrics, admin) = (
            nonce_key(dir.path()).unwrap(),
            metrics_token(dir.path()).unwrap(),
            admin_token(dir.path()).unwrap(),
        );
        assert_eq!(nonce_key(dir.path()).unwrap(), nonce);
        assert_eq!(metrics_token(dir.path()).unwrap(), metrics);
        assert_ne!(admin_token(dir.path()).unwrap(), admin);
        assert_eq!(metrics.len(), 64);
        #[cfg(unix)]
        for name in ["nonce.key", "metrics.token", "admin.token"] {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join(name))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600, "{name}");
        }
    }

    #[test]
    fn a_damaged_metrics_token_is_replaced() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("metrics.token"), "short").unwrap();
        let token = metrics_token(dir.path()).unwrap();
        assert_eq!(token.len(), 64);
        assert_eq!(metrics_token(dir.path()).unwrap(), token);
    }
}
