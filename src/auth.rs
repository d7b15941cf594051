//! Authentication and roles: bearer tokens from a tokens file, checked by a
//! tower layer in front of every service. Health and reflection stay open.

use std::path::Path;
use std::sync::Arc;
use std::task::{Context, Poll};

use futures::future::BoxFuture;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use tonic::Status;

use crate::error::Error;

/// What a token may do; each role includes the ones before it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Reads of incidents, components and the timeline, always answered as
    /// VIEW_PUBLIC: what a status page or a customer-facing bot may show.
    Public,
    /// Every Get, List and Subscribe.
    Viewer,
    /// Viewer, plus writing incidents, status updates, notes, postmortems and action items.
    Responder,
    /// Responder, plus every Delete/Undelete and every component write.
    Admin,
}

/// Who is calling, as established by the auth layer; handlers read it from the
/// request extensions.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identity {
    pub name: String,
    pub role: Role,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TokensFile {
    token: Vec<TokenEntry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TokenEntry {
    name: String,
    role: Role,
    /// Hex SHA-256 of the token: plain tokens are never stored.
    sha256: String,
}

/// The known tokens, by digest.
pub struct Tokens {
    entries: Vec<([u8; 32], Identity)>,
}

impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Names only: digests stay out of logs.
        let names: Vec<&str> = self.entries.iter().map(|(_, i)| i.name.as_str()).collect();
        f.debug_struct("Tokens").field("names", &names).finish()
    }
}

impl Tokens {
    /// Reads a tokens file (TOML: `[[token]] name, role, sha256`).
    pub fn load(path: &Path) -> anyhow::Result<Tokens> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| anyhow::anyhow!("reading tokens file {}: {e}", path.display()))?;
        Self::parse(&text).map_err(|e| anyhow::anyhow!("tokens file {}: {e}", path.display()))
    }

    /// Parses the text of a tokens file.
    pub fn parse(text: &str) -> anyhow::Result<Tokens> {
        let file: TokensFile = toml::from_str(text)?;
        let mut entries = Vec::new();
        for (i, t) in file.token.into_iter().enumerate() {
            let digest: [u8; 32] = hex::decode(t.sha256.trim())
                .ok()
                .and_then(|d| d.try_into().ok())
                .ok_or_else(|| {
                    anyhow::anyhow!("token[{i}] ({}): sha256 must be 64 hex digits", t.name)
                })?;
            if t.name.trim().is_empty() {
                anyhow::bail!("token[{i}]: name must not be empty");
            }
            entries.push((
                digest,
                Identity {
                    name: t.name,
                    role: t.role,
                },
            ));
        }
        if entries.is_empty() {
            anyhow::bail!("no [[token]] entries");
        }
        Ok(Tokens { entries })
    }

    /// The name of every token.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.entries.iter().map(|(_, i)| i.name.as_str())
    }

    /// The identity of a presented token. Every entry is compared, in constant
    /// time, so timing tells nothing about which digest came close.
    fn identify(&self, token: &str) -> Option<&Identity> {
        let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        let mut found = None;
        for (d, identity) in &self.entries {
            if bool::from(d.ct_eq(&digest)) {
                found = Some(identity);
            }
        }
        found
    }
}

/// The hex SHA-256 of a token, as the tokens file stores it.
pub fn token_digest(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// The least role a method needs; `None` for methods open to anyone.
pub fn required_role(path: &str) -> Option<Role> {
    let (service, method) = path.trim_start_matches('/').split_once('/')?;
    match service {
        "grpc.health.v1.Health"
        | "grpc.reflection.v1.ServerReflection"
        | "grpc.reflection.v1alpha.ServerReflection" => None,
        "incident.v1.ComponentService" => Some(if is_read(method) {
            Role::Public
        } else {
            Role::Admin
        }),
        "incident.v1.IncidentService" | "incident.v1.TimelineService" if is_read(method) => {
            Some(Role::Public)
        }
        _ if is_read(method) => Some(Role::Viewer),
        _ if method.starts_with("Delete") || method.starts_with("Undelete") => Some(Role::Admin),
        "incident.v1.IncidentService"
        | "incident.v1.TimelineService"
        | "incident.v1.ActionItemService" => Some(Role::Responder),
        // Anything else is unknown: only an admin gets as far as UNIMPLEMENTED.
        _ => Some(Role::Admin),
    }
}

fn is_read(method: &str) -> bool {
    ["Get", "List", "Subscribe"]
        .iter()
        .any(|p| method.starts_with(p))
}

/// The token of an Authorization header value, as RFC 6750 §2.1 and RFC 9110
/// §11.4 frame it: the scheme `Bearer` in any case, one or more spaces, then a
/// token68 (`[A-Za-z0-9-._~+/]+=*`) and nothing else: no tabs, no other
/// whitespace, no trailing text. (HTTP/2 forbids whitespace around a field
/// value, so there is none to strip.)
fn bearer_token(value: &[u8]) -> Option<&str> {
    let value = std::str::from_utf8(value).ok()?;
    let (scheme, rest) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("Bearer") {
        return None;
    }
    let token = rest.trim_start_matches(' ');
    is_token68(token).then_some(token)
}

/// `token68 = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="`
fn is_token68(s: &str) -> bool {
    let body = s.trim_end_matches('=');
    !body.is_empty()
        && body.bytes().all(|b| {
            b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'+' | b'/')
        })
}

/// Decides a call: the caller's identity, or the error to answer with.
fn authorize(
    tokens: &Tokens,
    path: &str,
    headers: &http::HeaderMap,
) -> Result<Option<Identity>, Error> {
    let Some(needed) = required_role(path) else {
        return Ok(None);
    };
    let mut values = headers.get_all(http::header::AUTHORIZATION).iter();
    let header = values
        .next()
        .ok_or_else(|| Error::Unauthenticated("missing authorization: Bearer <token>".into()))?;
    if values.next().is_some() {
        // Which one would count is anyone's guess: a proxy may have added one.
        return Err(Error::Unauthenticated(
            "more than one authorization header: send exactly one, Bearer <token>".into(),
        ));
    }
    let token = bearer_token(header.as_bytes()).ok_or_else(|| {
        Error::Unauthenticated("malformed authorization header: expected Bearer <token>".into())
    })?;
    let identity = tokens
        .identify(token)
        .ok_or_else(|| Error::Unauthenticated("unknown token".into()))?;
    if identity.role < needed {
        return Err(Error::PermissionDenied(format!(
            "{} ({:?}) may not call {path}: it needs the {needed:?} role",
            identity.name, identity.role
        )));
    }
    Ok(Some(identity.clone()))
}

/// The tower layer that authenticates every call; `None` tokens = open mode.
#[derive(Clone)]
pub struct AuthLayer {
    tokens: Option<Arc<Tokens>>,
}

impl AuthLayer {
    pub fn new(tokens: Option<Arc<Tokens>>) -> Self {
        AuthLayer { tokens }
    }
}

impl<S> tower::Layer<S> for AuthLayer {
    type Service = Auth<S>;
    fn layer(&self, inner: S) -> Auth<S> {
        Auth {
            inner,
            tokens: self.tokens.clone(),
        }
    }
}

/// See [`AuthLayer`].
#[derive(Clone)]
pub struct Auth<S> {
    inner: S,
    tokens: Option<Arc<Tokens>>,
}

impl<S, B> tower::Service<http::Request<B>> for Auth<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<tonic::body::Body>> + Send,
    S::Future: Send + 'static,
    B: Send + 'static,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: http::Request<B>) -> Self::Future {
        if let Some(tokens) = &self.tokens {
            match authorize(tokens, req.uri().path(), req.headers()) {
                Ok(Some(identity)) => {
                    req.extensions_mut().insert(identity);
                }
                Ok(None) => {}
                Err(e) => {
                    let status: Status = e.into();
                    return Box::pin(async move { Ok(status.into_http()) });
                }
            }
        }
        Box::pin(self.inner.call(req))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens() -> Tokens {
        Tokens::parse(&format!(
            "[[token]]\nname = \"vic\"\nrole = \"viewer\"\nsha256 = \"{}\"\n\n\
             [[token]]\nname = \"rita\"\nrole = \"responder\"\nsha256 = \"{}\"\n",
            token_digest("v-secret"),
            token_digest("r-secret")
        ))
        .unwrap()
    }

    fn headers(value: &str) -> http::HeaderMap {
        let mut h = http::HeaderMap::new();
        h.insert(http::header::AUTHORIZATION, value.parse().unwrap());
        h
    }

    #[test]
    fn roles_follow_the_design_table() {
        assert_eq!(
            required_role("/incident.v1.IncidentService/GetIncident"),
            Some(Role::Public)
        );
        assert_eq!(
            required_role("/incident.v1.TimelineService/SubscribeTimeline"),
            Some(Role::Public)
        );
        assert_eq!(
            required_role("/incident.v1.IncidentService/PostStatusUpdate"),
            Some(Role::Responder)
        );
        assert_eq!(
            required_role("/incident.v1.TimelineService/AddNote"),
            Some(Role::Responder)
        );
        assert_eq!(
            required_role("/incident.v1.ActionItemService/UpdateActionItem"),
            Some(Role::Responder)
        );
        assert_eq!(
            required_role("/incident.v1.IncidentService/UndeleteIncident"),
            Some(Role::Admin)
        );
        assert_eq!(
            required_role("/incident.v1.ActionItemService/DeleteActionItem"),
            Some(Role::Admin)
        );
        assert_eq!(
            required_role("/incident.v1.ComponentService/CreateComponent"),
            Some(Role::Admin)
        );
        assert_eq!(
            required_role("/incident.v1.ComponentService/ListComponents"),
            Some(Role::Public)
        );
        assert_eq!(
            required_role("/incident.v1.ActionItemService/ListActionItems"),
            Some(Role::Viewer)
        );
        assert_eq!(required_role("/grpc.health.v1.Health/Check"), None);
        assert_eq!(
            required_role("/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo"),
            None
        );
        assert_eq!(required_role("/other.Service/Anything"), Some(Role::Admin));
    }

    #[test]
    fn tokens_are_matched_by_digest_and_roles_enforced() {
        let t = tokens();
        let ok = authorize(
            &t,
            "/incident.v1.IncidentService/GetIncident",
            &headers("Bearer v-secret"),
        )
        .unwrap();
        assert_eq!(ok.map(|i| i.name), Some("vic".into()));
        let denied = authorize(
            &t,
            "/incident.v1.IncidentService/CreateIncident",
            &headers("Bearer v-secret"),
        );
        assert!(matches!(denied, Err(Error::PermissionDenied(_))));
        let unknown = authorize(
            &t,
            "/incident.v1.IncidentService/GetIncident",
            &headers("Bearer nope"),
        );
        assert!(matches!(unknown, Err(Error::Unauthenticated(_))));
        let malformed = authorize(
            &t,
            "/incident.v1.IncidentService/GetIncident",
            &headers("Basic abc"),
        );
        assert!(matches!(malformed, Err(Error::Unauthenticated(_))));
        let missing = authorize(
            &t,
            "/incident.v1.IncidentService/GetIncident",
            &http::HeaderMap::new(),
        );
        assert!(matches!(missing, Err(Error::Unauthenticated(_))));
        let open = authorize(&t, "/grpc.health.v1.Health/Check", &http::HeaderMap::new()).unwrap();
        assert_eq!(open, None);
    }

    const GET: &str = "/incident.v1.IncidentService/GetIncident";

    fn who(value: &[u8]) -> Result<Option<String>, Error> {
        let mut h = http::HeaderMap::new();
        h.insert(
            http::header::AUTHORIZATION,
            http::HeaderValue::from_bytes(value).unwrap(),
        );
        authorize(&tokens(), GET, &h).map(|i| i.map(|i| i.name))
    }

    fn refused(value: &[u8]) -> bool {
        matches!(who(value), Err(Error::Unauthenticated(_)))
    }

    #[test]
    fn two_authorization_headers_are_refused() {
        let t = tokens();
        for second in ["Bearer v-secret", "Bearer r-secret", "Bearer nope"] {
            let mut h = http::HeaderMap::new();
            h.append(
                http::header::AUTHORIZATION,
                "Bearer v-secret".parse().unwrap(),
            );
            h.append(http::header::AUTHORIZATION, second.parse().unwrap());
            let r = authorize(&t, GET, &h);
            assert!(
                matches!(&r, Err(Error::Unauthenticated(m)) if m.contains("more than one")),
                "{second}: {r:?}"
            );
        }
    }

    #[test]
    fn the_scheme_is_case_insensitive() {
        for scheme in ["Bearer", "bearer", "BEARER", "bEaReR"] {
            assert_eq!(
                who(format!("{scheme} v-secret").as_bytes()).unwrap(),
                Some("vic".into()),
                "{scheme}"
            );
        }
        assert!(refused(b"Bearers v-secret"));
        assert!(refused(b"Beare v-secret"));
        assert!(refused(b"Basic v-secret"));
    }

    #[test]
    fn scheme_and_token_are_separated_by_spaces_only() {
        assert_eq!(who(b"Bearer   v-secret").unwrap(), Some("vic".into()));
        assert!(refused(b"Bearer\tv-secret"));
        assert!(refused(b"Bearer \tv-secret"));
        assert!(refused(b"Bearerv-secret"));
        assert!(refused(b"Bearer"));
        assert!(refused(b"Bearer "));
        assert!(refused(b"Bearer    "));
    }

    #[test]
    fn the_token_is_a_token68_and_nothing_follows() {
        assert!(refused(b"Bearer v-secret extra"));
        assert!(refused(b"Bearer v-secret "));
        assert!(refused(b"Bearer v-secret\t"));
        assert!(refused(b"Bearer v-secret,"));
        assert!(refused(b"Bearer v-s\xc3\xa9cret"));
        assert!(refused(b"Bearer ="));
        assert!(refused(b"Bearer v=secret"));
        assert!(is_token68("aZ09-._~+/"));
        assert!(is_token68("abc=="));
        assert!(!is_token68(""));
        assert!(!is_token68("=="));
        assert!(!is_token68("a b"));
        assert!(!is_token68("a\"b"));
        // A well-formed token that is not known is refused too, for its own reason.
        assert!(
            matches!(who(b"Bearer dW5rbm93bg=="), Err(Error::Unauthenticated(m)) if m == "unknown token")
        );
    }

    #[test]
    fn a_bad_digest_is_refused_at_load() {
        assert!(
            Tokens::parse("[[token]]\nname = \"x\"\nrole = \"admin\"\nsha256 = \"abc\"\n").is_err()
        );
        assert!(
            Tokens::parse("[[token]]\nname = \"x\"\nrole = \"root\"\nsha256 = \"abc\"\n").is_err()
        );
    }
}
