//! Secrets at rest: upstream credentials are sealed with XChaCha20-Poly1305 under a master key
//! (they must be recoverable to be sent upstream); client keys are only ever stored as a
//! SHA-256 digest (they are high-entropy random tokens, so a slow hash buys nothing).

use std::path::{Path, PathBuf};

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use chacha20poly1305::aead::{Aead, KeyInit};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use sha2::{Digest, Sha256};

use crate::types::Secret;

/// Format version of a sealed blob: `1 ‖ nonce(24) ‖ ciphertext+tag`.
const SEAL_V1: u8 = 1;
const NONCE_LEN: usize = 24;
/// Sealed into the store on first start; opening it proves the master key is the right one.
const CHECK_PLAINTEXT: &[u8] = b"keyloop master key check v1";
pub const MASTER_KEY_ENV: &str = "KEYLOOP_MASTER_KEY";

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("master key from {origin} is not 32 bytes of base64 or hex")]
    BadMasterKey { origin: String },
    #[error("cannot read or create the master key file {path}: {source}")]
    MasterKeyFile {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("a sealed secret could not be opened (wrong master key or corrupted data)")]
    Open,
    #[error(
        "the master key file {path} is readable by every user; make it private (chmod 600) \
         and rotate the credentials it protected if others could read it"
    )]
    MasterKeyExposed { path: PathBuf },
}

pub struct Vault {
    cipher: XChaCha20Poly1305,
}

impl std::fmt::Debug for Vault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Vault(*****)")
    }
}

impl Vault {
    pub fn new(master_key: &Secret<[u8; 32]>) -> Self {
        Self {
            cipher: XChaCha20Poly1305::new(master_key.expose().into()),
        }
    }

    pub fn seal(&self, plaintext: &[u8]) -> Vec<u8> {
        let mut nonce = [0u8; NONCE_LEN];
        getrandom::fill(&mut nonce).expect("the OS random source is available");
        let ciphertext = self
            .cipher
            .encrypt(XNonce::from_slice(&nonce), plaintext)
            .expect("encryption of an in-memory buffer cannot fail");
        let mut out = Vec::with_capacity(1 + NONCE_LEN + ciphertext.len());
        out.push(SEAL_V1);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&ciphertext);
        out
    }

    pub fn open(&self, sealed: &[u8]) -> Result<Vec<u8>, Error> {
        if sealed.len() < 1 + NONCE_LEN || sealed[0] != SEAL_V1 {
            return Err(Error::Open);
        }
        let (nonce, ciphertext) = sealed[1..].split_at(NONCE_LEN);
        self.cipher
            .decrypt(XNonce::from_slice(nonce), ciphertext)
            .map_err(|_| Error::Open)
    }

    pub fn open_string(&self, sealed: &[u8]) -> Result<Secret<String>, Error> {
        let bytes = self.open(sealed)?;
        String::from_utf8(bytes)
            .map(Secret::new)
            .map_err(|_| Error::Open)
    }

    pub fn check_token(&self) -> Vec<u8> {
        self.seal(CHECK_PLAINTEXT)
    }

    pub fn verify_check_token(&self, sealed: &[u8]) -> bool {
        self.open(sealed).is_ok_and(|p| p == CHECK_PLAINTEXT)
    }
}

/// Finds the master key: the environment wins, then the configured file, then a key file in the
/// data directory (generated, mode 0600, on first start so `keyloop serve` needs no set-up).
pub fn load_master_key(
    env_value: Option<String>,
    configured_file: Option<&Path>,
    data_dir: &Path,
) -> Result<(Secret<[u8; 32]>, String), Error> {
    if let Some(value) = env_value {
        return Ok((decode_key(&value, MASTER_KEY_ENV)?, MASTER_KEY_ENV.into()));
    }
    let path = configured_file
        .map(Path::to_path_buf)
        .unwrap_or_else(|| data_dir.join("master.key"));
    let origin = path.display().to_string();
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            refuse_exposed(&path)?;
            Ok((decode_key(&text, &origin)?, origin))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && configured_file.is_none() => {
            let mut key = [0u8; 32];
            getrandom::fill(&mut key).expect("the OS random source is available");
            write_private(&path, STANDARD.encode(key).as_bytes(), false)
                .map_err(|source| Error::MasterKeyFile { path, source })?;
            Ok((Secret::new(key), format!("{origin} (generated)")))
        }
        Err(source) => Err(Error::MasterKeyFile { path, source }),
    }
}

/// A master key file others may read is no secret: refuse it rather than run on it.
fn refuse_exposed(path: &Path) -> Result<(), Error> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(path)
            .map_err(|source| Error::MasterKeyFile {
                path: path.to_path_buf(),
                source,
            })?
            .permissions()
            .mode();
        if mode & 0o004 != 0 {
            return Err(Error::MasterKeyExposed {
                path: path.to_path_buf(),
            });
        }
    }
    Ok(())
}

fn decode_key(text: &str, origin: &str) -> Result<Secret<[u8; 32]>, Error> {
    let text = text.trim();
    let bytes = if text.len() == 64 && text.bytes().all(|b| b.is_ascii_hexdigit()) {
        hex::decode(text).ok()
    } else {
        STANDARD.decode(text).ok()
    };
    bytes
        .and_then(|b| <[u8; 32]>::try_from(b).ok())
        .map(Secret::new)
        .ok_or_else(|| Error::BadMasterKey {
            origin: origin.to_owned(),
        })
}

/// Writes a file only its owner may read (its directory made if missing); `replace` lets it
/// overwrite one that exists.
pub fn write_private(path: &Path, contents: &[u8], replace: bool) -> std::io::Result<()> {
    use std::io::Write;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true);
    if replace {
        options.create(true).truncate(true);
    } else {
        options.create_new(true);
    }
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path)?;
    // A file that already existed keeps its mode through `open`: make it private too.
    #[cfg(unix)]
    std::fs::set_permissions(path, std::os::unix::fs::PermissionsExt::from_mode(0o600))?;
    file.write_all(contents)?;
    file.sync_all()
}

/// Prefix of every gateway-issued client key, so a leaked one is recognisable in a scan.
pub const CLIENT_KEY_PREFIX: &str = "klk_";

/// A fresh client key: shown once, then only its digest is kept.
pub fn generate_client_key() -> Secret<String> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).expect("the OS random source is available");
    Secret::new(format!(
        "{CLIENT_KEY_PREFIX}{}",
        URL_SAFE_NO_PAD.encode(bytes)
    ))
}

/// The lookup digest of a client key (hex SHA-256).
pub fn client_key_digest(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

/// A short, harmless reminder of which key this is, e.g. `klk_AbCd…`.
pub fn client_key_hint(key: &str) -> String {
    let head: String = key.chars().take(CLIENT_KEY_PREFIX.len() + 4).collect();
    format!("{head}…")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vault(byte: u8) -> Vault {
        Vault::new(&Secret::new([byte; 32]))
    }

    #[test]
    fn seal_round_trips_and_differs_each_time() {
        let v = vault(7);
        let a = v.seal(b"sk-ant-api03-secret");
        let b = v.seal(b"sk-ant-api03-secret");
        assert_ne!(a, b, "random nonces");
        assert!(!a.windows(6).any(|w| w == b"secret"));
        assert_eq!(v.open(&a).unwrap(), b"sk-ant-api03-secret");
    }

    #[test]
    fn wrong_key_or_tampering_fails() {
        let sealed = vault(1).seal(b"hello");
        assert!(vault(2).open(&sealed).is_err());
        let mut tampered = sealed.clone();
        *tampered.last_mut().unwrap() ^= 1;
        assert!(vault(1).open(&tampered).is_err());
        assert!(!vault(2).verify_check_token(&vault(1).check_token()));
        assert!(vault(1).verify_check_token(&vault(1).check_token()));
    }

    #[test]
    fn master_key_generated_once_then_reused() {
        let dir = tempfile::tempdir().unwrap();
        let (first, origin) = load_master_key(None, None, dir.path()).unwrap();
        assert!(origin.ends_with("(generated)"));
        let (second, _) = load_master_key(None, None, dir.path()).unwrap();
        assert_eq!(first.expose(), second.expose());
        let hex_key = hex::encode([9u8; 32]);
        let (from_env, _) = load_master_key(Some(hex_key), None, dir.path()).unwrap();
        assert_eq!(from_env.expose(), &[9u8; 32]);
        assert!(load_master_key(Some("short".into()), None, dir.path()).is_err());
    }

    #[test]
    fn a_master_key_file_every_user_can_read_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        load_master_key(None, None, dir.path()).unwrap();
        let path = dir.path().join("master.key");
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let err = load_master_key(None, None, dir.path()).unwrap_err();
        assert!(matches!(err, Error::MasterKeyExposed { .. }), "{err}");
        assert!(err.to_string().contains("chmod 600"));
    }

    #[test]
    fn client_keys_are_random_and_digested() {
        let a = generate_client_key();
        let b = generate_client_key();
        assert_ne!(a.expose(), b.expose());
        assert!(a.expose().starts_with(CLIENT_KEY_PREFIX));
        assert_eq!(client_key_digest(a.expose()).len(), 64);
        assert_ne!(client_key_digest(a.expose()), client_key_digest(b.expose()));
    }
}
