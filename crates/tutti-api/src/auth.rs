//! Who is calling: passwords (argon2id), random tokens (only their sha256 is stored),
//! bearer access tokens, cookie sessions with CSRF, an in-memory cache of verified
//! credentials, and the permission checks on ensembles and pieces.
//!
//! Permission policy: an admin may do everything. Inside an ensemble, owners and performers
//! edit its pieces, specs, shows and webhooks; crew read and move shows along their
//! lifecycle; only owners (and admins) manage members. Someone outside an ensemble gets
//! 404 for its objects (their existence is not revealed); a member lacking the role gets
//! 403. Audience accounts and guests get 403 from every management route.
//!
//! Must never: store or log a secret (tokens, passwords), hash a password on the async
//! runtime's threads or without a [`HashSlot`] of the password gate, or serve a credential from the cache after it was revoked on this node.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{header, Method, StatusCode};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use sha2::{Digest, Sha256};
use tutti_store::{EnsembleRole, PieceRow, TokenHash, UserRole, UserRow};

use crate::error::ApiError;
use crate::limits::HashSlot;
use crate::ApiState;

/// Name of the session cookie.
pub const SESSION_COOKIE: &str = "tutti_session";

/// A new random secret: `prefix` + 32 random bytes, base64url.
pub fn new_secret(prefix: &str) -> String {
    let bytes: [u8; 32] = rand::random();
    format!("{prefix}{}", URL_SAFE_NO_PAD.encode(bytes))
}

/// sha256 of a secret (what the store keeps).
pub fn token_hash(secret: &str) -> TokenHash {
    Sha256::digest(secret.as_bytes()).into()
}

/// Hashes a password with argon2id on the blocking pool, holding `slot` until it is done.
pub async fn hash_password(slot: HashSlot, password: String) -> Result<String, ApiError> {
    tokio::task::spawn_blocking(move || {
        let _slot = slot;
        let salt_bytes: [u8; 16] = rand::random();
        let salt = SaltString::encode_b64(&salt_bytes).map_err(ApiError::internal)?;
        Argon2::default()
            .hash_password(password.as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(ApiError::internal)
    })
    .await
    .map_err(ApiError::internal)?
}

/// A valid hash to verify against when the user does not exist (same work either way).
const DUMMY_HASH: &str =
    "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$TW9V7fBu9R/3SqjSm8NzjnwmwOWg8PRrbVPx2cN9fJc";

/// Verifies a password on the blocking pool, holding `slot` until it is done; `hash = None`
/// still does the work.
pub async fn verify_password(slot: HashSlot, hash: Option<String>, password: String) -> bool {
    let known = hash.is_some();
    let hash = hash.unwrap_or_else(|| DUMMY_HASH.to_owned());
    let ok = tokio::task::spawn_blocking(move || {
        let _slot = slot;
        PasswordHash::new(&hash)
            .map(|parsed| {
                Argon2::default()
                    .verify_password(password.as_bytes(), &parsed)
                    .is_ok()
            })
            .unwrap_or(false)
    })
    .await
    .unwrap_or(false);
    known && ok
}

/// Constant-time equality of two byte strings.
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// How the caller authenticated.
#[derive(Debug, Clone)]
pub enum Via {
    /// `Authorization: Bearer`.
    Bearer {
        /// The token family (logout revokes it).
        family_id: i64,
    },
    /// The `tutti_session` cookie.
    Session {
        /// sha256 of the cookie secret.
        token_hash: TokenHash,
    },
}

#[derive(Debug, Clone)]
struct Cached {
    user: Arc<UserRow>,
    via: Via,
    csrf: Option<String>,
    expires_at_ms: i64,
}

/// Verified credentials by token hash. Entries are dropped on revocation on this node and
/// re-checked against the store after [`TokenCache::TTL_MS`].
#[derive(Default)]
pub struct TokenCache {
    map: RwLock<HashMap<TokenHash, (Cached, i64)>>,
}

impl TokenCache {
    /// How long a verified credential is trusted before the store is asked again.
    pub const TTL_MS: i64 = 30_000;
    const MAX: usize = 100_000;

    fn get(&self, h: &TokenHash, now: i64) -> Option<Cached> {
        let map = self.map.read().unwrap_or_else(|p| p.into_inner());
        map.get(h)
            .filter(|(_, at)| now - at < Self::TTL_MS)
            .map(|(c, _)| c.clone())
    }

    fn put(&self, h: TokenHash, c: Cached, now: i64) {
        let mut map = self.map.write().unwrap_or_else(|p| p.into_inner());
        if map.len() >= Self::MAX {
            map.clear();
        }
        map.insert(h, (c, now));
    }

    /// Forgets every credential of a user.
    pub fn forget_user(&self, user_id: i64) {
        let mut map = self.map.write().unwrap_or_else(|p| p.into_inner());
        map.retain(|_, (c, _)| c.user.id != user_id);
    }

    /// Forgets every access token of a family.
    pub fn forget_family(&self, family_id: i64) {
        let mut map = self.map.write().unwrap_or_else(|p| p.into_inner());
        map.retain(|_, (c, _)| !matches!(c.via, Via::Bearer { family_id: f } if f == family_id));
    }

    /// Forgets one credential.
    pub fn forget(&self, h: &TokenHash) {
        self.map
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .remove(h);
    }
}

/// An authenticated, active user.
#[derive(Debug, Clone)]
pub struct Caller {
    /// The account.
    pub user: Arc<UserRow>,
    /// How they authenticated.
    pub via: Via,
}

impl Caller {
    /// The user's id.
    pub fn id(&self) -> i64 {
        self.user.id
    }

    /// Whether the user is an admin.
    pub fn is_admin(&self) -> bool {
        self.user.role == UserRole::Admin
    }

    /// Refuses audience accounts (no management rights).
    pub fn require_staff(&self) -> Result<(), ApiError> {
        if self.user.role == UserRole::Audience {
            Err(ApiError::forbidden(
                "audience accounts have no access to the management API",
            ))
        } else {
            Ok(())
        }
    }

    /// Refuses everyone but admins.
    pub fn require_admin(&self) -> Result<(), ApiError> {
        if self.is_admin() {
            Ok(())
        } else {
            Err(ApiError::forbidden("only an admin may do this"))
        }
    }
}

pub(crate) fn bearer(parts: &Parts) -> Option<&str> {
    let v = parts.headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = v.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// The value of a cookie in the request.
pub fn cookie<'a>(parts: &'a Parts, name: &str) -> Option<&'a str> {
    parts
        .headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

impl ApiState {
    /// Checks an access token: the active user it belongs to, or the reason it fails.
    pub async fn verify_access(&self, token: &str) -> Result<Caller, ApiError> {
        let h = token_hash(token);
        let now = self.now_ms();
        if let Some(c) = self.tokens.get(&h, now) {
            if c.expires_at_ms <= now {
                return Err(ApiError::new(
                    StatusCode::UNAUTHORIZED,
                    "token_expired",
                    "the access token expired; refresh it",
                ));
            }
            return Ok(Caller {
                user: c.user,
                via: c.via,
            });
        }
        let row = self
            .store
            .access_token(h)
            .await?
            .ok_or_else(|| ApiError::unauthorized("unknown access token"))?;
        if row.revoked_at_ms.is_some() || !row.user.active {
            return Err(ApiError::unauthorized("the access token was revoked"));
        }
        if row.expires_at_ms <= now {
            return Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "token_expired",
                "the access token expired; refresh it",
            ));
        }
        let cached = Cached {
            user: Arc::new(row.user),
            via: Via::Bearer {
                family_id: row.family_id,
            },
            csrf: None,
            expires_at_ms: row.expires_at_ms,
        };
        self.tokens.put(h, cached.clone(), now);
        Ok(Caller {
            user: cached.user,
            via: cached.via,
        })
    }

    async fn verify_session(&self, secret: &str) -> Result<(Caller, String), ApiError> {
        let h = token_hash(secret);
        let now = self.now_ms();
        let cached = match self.tokens.get(&h, now) {
            Some(c) => c,
            None => {
                let (session, user) = self
                    .store
                    .auth_session(h)
                    .await?
                    .ok_or_else(|| ApiError::unauthorized("unknown session"))?;
                if session.revoked_at_ms.is_some() || !user.active {
                    return Err(ApiError::unauthorized("the session was revoked"));
                }
                let c = Cached {
                    user: Arc::new(user),
                    via: Via::Session { token_hash: h },
                    csrf: Some(session.csrf_token),
                    expires_at_ms: session.expires_at_ms,
                };
                self.tokens.put(h, c.clone(), now);
                c
            }
        };
        if cached.expires_at_ms <= now {
            return Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "token_expired",
                "the session expired; sign in again",
            ));
        }
        Ok((
            Caller {
                user: cached.user,
                via: cached.via,
            },
            cached.csrf.unwrap_or_default(),
        ))
    }

    /// Whether `token` (an access token) lets its user perform the show of `ensemble_id`
    /// (admins, and owners or performers of the ensemble). Used by the live hub.
    pub async fn may_perform(&self, token: &str, ensemble_id: Option<i64>) -> bool {
        let Ok(caller) = self.verify_access(token).await else {
            return false;
        };
        if caller.is_admin() {
            return true;
        }
        let Some(eid) = ensemble_id else { return false };
        matches!(
            self.store.membership(eid, caller.id()).await,
            Ok(Some(EnsembleRole::Owner | EnsembleRole::Performer))
        ) && caller.user.role != UserRole::Audience
    }

    /// The caller's role in an ensemble (admins count as owners); `None` outside it.
    pub async fn ensemble_role(
        &self,
        caller: &Caller,
        ensemble_id: i64,
    ) -> Result<Option<EnsembleRole>, ApiError> {
        if caller.is_admin() {
            return Ok(Some(EnsembleRole::Owner));
        }
        if caller.user.role == UserRole::Audience {
            return Ok(None);
        }
        let key = (ensemble_id, caller.id());
        if let Some(role) = self.caches.members.get(&key) {
            return Ok(role);
        }
        let role = self.store.membership(ensemble_id, caller.id()).await?;
        self.caches.members.put(key, role);
        Ok(role)
    }

    /// The piece with this id (cached briefly; changes through the API drop the entry).
    pub async fn piece(&self, piece_id: i64) -> Result<Option<PieceRow>, ApiError> {
        if let Some(p) = self.caches.pieces.get(&piece_id) {
            return Ok(Some(p));
        }
        let p = self.store.piece(piece_id).await?;
        if let Some(p) = &p {
            self.caches.pieces.put(piece_id, p.clone());
        }
        Ok(p)
    }

    /// Checks access to an ensemble: 404 outside it, 403 when the role is not enough.
    pub async fn ensemble_access(
        &self,
        caller: &Caller,
        ensemble_id: i64,
        need: Need,
    ) -> Result<EnsembleRole, ApiError> {
        caller.require_staff()?;
        match self.ensemble_role(caller, ensemble_id).await? {
            None => Err(ApiError::not_found(format!("ensemble {ensemble_id}"))),
            Some(role) if need.allows(role) => Ok(role),
            Some(role) => Err(ApiError::forbidden(format!(
                "a {} of this ensemble may not {}",
                role.as_str(),
                need.verb()
            ))),
        }
    }

    /// Loads a piece the caller may access at `need` (404 when unknown or outside).
    pub async fn piece_access(
        &self,
        caller: &Caller,
        piece_id: i64,
        need: Need,
    ) -> Result<PieceRow, ApiError> {
        caller.require_staff()?;
        let piece = self
            .piece(piece_id)
            .await?
            .ok_or_else(|| ApiError::not_found(format!("piece {piece_id}")))?;
        match piece.ensemble_id {
            Some(eid) => {
                self.ensemble_access(caller, eid, need).await.map_err(|e| {
                    if e.status == StatusCode::NOT_FOUND {
                        ApiError::not_found(format!("piece {piece_id}"))
                    } else {
                        e
                    }
                })?;
            }
            // Pieces from the configuration belong to no ensemble: admins only.
            None if caller.is_admin() => {}
            None => return Err(ApiError::not_found(format!("piece {piece_id}"))),
        }
        Ok(piece)
    }
}

/// What a caller wants to do inside an ensemble.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    /// Read.
    Read,
    /// Move shows along their lifecycle (crew and up).
    Operate,
    /// Edit pieces, specs, shows, webhooks (performer and owner).
    Edit,
    /// Manage members (owner).
    Manage,
}

impl Need {
    fn allows(self, role: EnsembleRole) -> bool {
        match self {
            Need::Read | Need::Operate => true,
            Need::Edit => matches!(role, EnsembleRole::Owner | EnsembleRole::Performer),
            Need::Manage => role == EnsembleRole::Owner,
        }
    }

    fn verb(self) -> &'static str {
        match self {
            Need::Read => "read this",
            Need::Operate => "operate shows",
            Need::Edit => "edit this",
            Need::Manage => "manage members",
        }
    }
}

impl FromRequestParts<ApiState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &ApiState) -> Result<Self, ApiError> {
        if let Some(token) = bearer(parts) {
            return state.verify_access(token).await;
        }
        if parts.headers.contains_key(header::AUTHORIZATION) {
            return Err(ApiError::unauthorized(
                "the Authorization header must be 'Bearer <access token>'",
            ));
        }
        if let Some(secret) = cookie(parts, SESSION_COOKIE) {
            let (caller, csrf) = state.verify_session(secret).await?;
            let safe = matches!(parts.method, Method::GET | Method::HEAD | Method::OPTIONS);
            if !safe {
                let given = parts
                    .headers
                    .get("x-csrf-token")
                    .map(|v| v.as_bytes())
                    .unwrap_or_default();
                if csrf.is_empty() || !ct_eq(given, csrf.as_bytes()) {
                    return Err(ApiError::new(
                        StatusCode::FORBIDDEN,
                        "csrf_failed",
                        "missing or wrong x-csrf-token header for a cookie session",
                    ));
                }
            }
            return Ok(caller);
        }
        Err(ApiError::unauthorized(
            "sign in: send 'Authorization: Bearer <access token>' or the session cookie",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::limits::PasswordGate;

    #[test]
    fn secrets_are_random_and_hashed() {
        let a = new_secret("tta_");
        let b = new_secret("tta_");
        assert_ne!(a, b);
        assert!(a.starts_with("tta_") && a.len() > 40);
        assert_eq!(token_hash(&a), token_hash(&a));
        assert_ne!(token_hash(&a), token_hash(&b));
    }

    #[tokio::test]
    async fn passwords_verify() {
        let gate = PasswordGate::new(1);
        let slot = || gate.slot().unwrap();
        let h = hash_password(slot(), "correct horse".into()).await.unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(verify_password(slot(), Some(h.clone()), "correct horse".into()).await);
        assert!(!verify_password(slot(), Some(h), "wrong".into()).await);
        assert!(!verify_password(slot(), None, "correct horse".into()).await);
        assert_eq!(gate.available(), 1, "every slot came back");
    }
}
