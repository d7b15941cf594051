//! Tokens files, written as an operator writes them (digests only), and
//! requests carrying a token.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use incident_client::tonic::Request;
use incident_client::tonic::metadata::MetadataValue;
use incidentd::auth::{Tokens, token_digest};

/// Writes a tokens file of `(name, role, token)` entries into `dir`: the
/// digests only, never a token. Returns its path.
pub fn write_tokens_file(dir: &Path, entries: &[(&str, &str, &str)]) -> PathBuf {
    let mut text = String::new();
    for (name, role, token) in entries {
        text.push_str(&format!(
            "[[token]]\nname = \"{name}\"\nrole = \"{role}\"\nsha256 = \"{}\"\n\n",
            token_digest(token)
        ));
    }
    for (_, _, token) in entries {
        assert!(!text.contains(token), "plain tokens are never stored");
    }
    let path = dir.join("tokens.toml");
    std::fs::write(&path, text).expect("tokens file");
    path
}

/// The tokens of `entries`, loaded the way `--tokens-file` loads them.
pub fn load_tokens(entries: &[(&str, &str, &str)]) -> Arc<Tokens> {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = write_tokens_file(dir.path(), entries);
    Arc::new(Tokens::load(&path).expect("tokens file loads"))
}

/// `msg` sent with `token` as its bearer credentials.
pub fn authorized<T>(msg: T, token: &str) -> Request<T> {
    let mut r = Request::new(msg);
    r.metadata_mut().insert(
        "authorization",
        MetadataValue::try_from(format!("Bearer {token}")).expect("header"),
    );
    r
}
