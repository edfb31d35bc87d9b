//! OpenPGP signatures of notifications (RFC 3156, PGP/MIME), with the center's key, so that
//! recipients can tell a real notification from a phishing message that imitates one.

use pgp::composed::{ArmorOptions, Deserializable, DetachedSignature, SignedSecretKey};
use pgp::crypto::hash::HashAlgorithm;
use pgp::types::{KeyDetails, Password};

/// The center's signing key, unlocked.
pub struct Signer {
    key: SignedSecretKey,
    password: Password,
}

impl std::fmt::Debug for Signer {
    /// The fingerprint only.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signer").field("fingerprint", &self.fingerprint()).finish_non_exhaustive()
    }
}

impl Signer {
    /// Reads an ASCII-armored secret key (as `gpg --armor --export-secret-keys` writes it),
    /// protected by `passphrase` or by nothing, and checks that it signs.
    pub fn from_armored(text: &str, passphrase: Option<&str>) -> Result<Signer, String> {
        let (key, _) =
            SignedSecretKey::from_string(text).map_err(|e| format!("not an ASCII-armored OpenPGP secret key ({e})"))?;
        let signer = Signer { key, password: passphrase.map_or_else(Password::empty, Password::from) };
        signer.sign(b"check").map_err(|e| {
            format!("the key does not sign: {e} (a passphrase-protected key needs FAROL_SIGNING_PASSPHRASE)")
        })?;
        Ok(signer)
    }

    /// The primary key's fingerprint, in upper-case hex.
    pub fn fingerprint(&self) -> String {
        format!("{:X}", self.key.primary_key.fingerprint())
    }

    /// An ASCII-armored detached signature (binary, SHA-256) of `data`.
    pub(crate) fn sign(&self, data: &[u8]) -> Result<String, String> {
        let signature = DetachedSignature::sign_binary_data(
            rand::thread_rng(),
            &self.key.primary_key,
            &self.password,
            HashAlgorithm::Sha256,
            data,
        )
        .map_err(|e| e.to_string())?;
        signature.to_armored_string(ArmorOptions::default()).map_err(|e| e.to_string())
    }
}
