//! Health, first-run setup, sign-in (tokens or cookie), refresh rotation, logout, the
//! caller's own account, and user administration.
//!
//! The user directory (`GET /users`, someone else's `GET /users/{id}`) is for admins only:
//! usernames are half of a sign-in, so they are not listed for everyone.
//!
//! Must never: say whether a username exists on a failed login, return a password hash, list
//! users to anyone but an admin, or keep serving a credential it just revoked (the token
//! cache is purged on this node).

use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use tutti_store::{
    KeepCredential, NewAuthSession, NewTokenPair, NewUser, RotateRefresh, UserRole, UserRow,
    AUDIENCE_PASSWORD_HASH,
};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{check_id, to_value, Health, UserOut, UserPage};
use crate::auth::{self, Caller, Via, SESSION_COOKIE};
use crate::error::ApiError;
use crate::extract::{ApiJson, ApiPath, ApiQuery, Create, Problems, Validate};
use crate::limits::{self, ClientAddr};
use crate::{idem, page, ApiState};

pub(super) fn routes() -> OpenApiRouter<ApiState> {
    OpenApiRouter::new()
        .routes(routes!(health))
        .routes(routes!(setup_needed, setup))
        .routes(routes!(login))
        .routes(routes!(refresh))
        .routes(routes!(logout))
        .routes(routes!(me))
        .routes(routes!(change_password))
        .routes(routes!(list_users, create_user))
        .routes(routes!(get_user))
        .routes(routes!(deactivate_user))
}

fn check_username(p: &mut Problems, v: &str) {
    if v.is_empty()
        || v.len() > 64
        || !v
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
    {
        p.add(
            "username",
            "must be 1–64 characters of A-Z, a-z, 0-9, '.', '_' and '-'",
        );
    }
}

fn check_password(p: &mut Problems, field: &str, v: &str) {
    p.len(field, v, 8, 256);
}

/// `GET /api/v1/health`
#[utoipa::path(get, path = "/api/v1/health", tag = "meta",
    responses((status = 200, description = "The API is up", body = Health)))]
async fn health() -> ApiJson<Health> {
    ApiJson(Health {
        status: "ok".into(),
        version: env!("CARGO_PKG_VERSION").into(),
    })
}

/// Whether first-run setup is still open.
#[derive(Debug, Serialize, ToSchema)]
pub struct SetupState {
    /// True until the first account exists.
    pub needed: bool,
}

/// `GET /api/v1/setup`
#[utoipa::path(get, path = "/api/v1/setup", tag = "accounts",
    responses((status = 200, description = "Whether setup is needed", body = SetupState)))]
async fn setup_needed(State(s): State<ApiState>) -> Result<ApiJson<SetupState>, ApiError> {
    Ok(ApiJson(SetupState {
        needed: s.store.user_count().await? == 0,
    }))
}

/// The first admin.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetupIn {
    /// 1–64 of `A-Za-z0-9._-`.
    pub username: String,
    /// 8–256 characters.
    pub password: String,
    /// 1–200 characters.
    pub display_name: String,
}

impl Validate for SetupIn {
    fn validate(&self, p: &mut Problems) {
        check_username(p, &self.username);
        check_password(p, "password", &self.password);
        p.text("display_name", &self.display_name, 1, 200);
    }
}

/// A fresh token pair.
#[derive(Debug, Serialize, ToSchema)]
pub struct TokenOut {
    /// Short-lived bearer token.
    pub access_token: String,
    /// Exchange at `/auth/refresh` for a new pair (once).
    pub refresh_token: String,
    /// Always `Bearer`.
    pub token_type: String,
    /// Seconds until the access token expires.
    pub expires_in: u64,
    /// The signed-in user.
    pub user: UserOut,
}

async fn issue_pair(s: &ApiState, user: &UserRow) -> Result<TokenOut, ApiError> {
    let access = auth::new_secret("tta_");
    let refresh = auth::new_secret("ttr_");
    let now = s.now_ms();
    s.store
        .issue_token_pair(NewTokenPair {
            user_id: user.id,
            access_hash: auth::token_hash(&access),
            refresh_hash: auth::token_hash(&refresh),
            at_ms: now,
            access_expires_at_ms: now + ttl_ms(s.config.access_ttl_s),
            refresh_expires_at_ms: now + ttl_ms(s.config.refresh_ttl_s),
        })
        .await?;
    Ok(TokenOut {
        access_token: access,
        refresh_token: refresh,
        token_type: "Bearer".into(),
        expires_in: s.config.access_ttl_s,
        user: user.into(),
    })
}

fn ttl_ms(s: u64) -> i64 {
    i64::try_from(s.saturating_mul(1000)).unwrap_or(i64::MAX / 2)
}

/// `POST /api/v1/setup`: the first visitor creates the admin; closed afterwards.
#[utoipa::path(post, path = "/api/v1/setup", tag = "accounts", request_body = SetupIn,
    responses((status = 201, description = "The admin, signed in", body = TokenOut)))]
async fn setup(
    State(s): State<ApiState>,
    ApiJson(body): ApiJson<SetupIn>,
) -> Result<Response, ApiError> {
    if s.store.user_count().await? > 0 {
        return Err(ApiError::conflict(
            "setup_closed",
            "setup is closed: an account already exists",
        ));
    }
    let hash = auth::hash_password(s.passwords.slot()?, body.password).await?;
    let user = s
        .store
        .create_first_admin(NewUser {
            username: body.username,
            display_name: body.display_name,
            password_hash: hash,
            role: UserRole::Admin,
            at_ms: s.now_ms(),
        })
        .await?;
    let out = issue_pair(&s, &user).await?;
    Ok((StatusCode::CREATED, ApiJson(out)).into_response())
}

/// `token` (default) or `cookie`.
#[derive(Debug, Clone, Copy, Deserialize, ToSchema, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum LoginMode {
    /// Bearer access + refresh token.
    Token,
    /// A `tutti_session` cookie and a CSRF token.
    Cookie,
}

/// Credentials.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginIn {
    /// Login name.
    pub username: String,
    /// Password.
    pub password: String,
    /// `token` (default) or `cookie`.
    pub mode: Option<LoginMode>,
}

impl Validate for LoginIn {
    fn validate(&self, p: &mut Problems) {
        p.len("username", &self.username, 1, 64);
        p.len("password", &self.password, 1, 256);
    }
}

/// A cookie sign-in: the cookie is set; send `csrf_token` as `x-csrf-token` on unsafe methods.
#[derive(Debug, Serialize, ToSchema)]
pub struct CookieOut {
    /// The signed-in user.
    pub user: UserOut,
    /// Echo in `x-csrf-token`.
    pub csrf_token: String,
}

/// What a sign-in returns.
#[derive(Debug, Serialize, ToSchema)]
#[serde(untagged)]
pub enum LoginOut {
    /// `mode: token`.
    Token(TokenOut),
    /// `mode: cookie`.
    Cookie(CookieOut),
}

fn unauthorized_login() -> ApiError {
    ApiError::unauthorized("wrong username or password")
}

/// `POST /api/v1/auth/login`: failed attempts are counted per username and client address;
/// an address that failed too often waits longer each time (429 `rate_limited`), others do not.
/// When every password-hashing slot is busy the answer is 429 `rate_limited` too.
#[utoipa::path(post, path = "/api/v1/auth/login", tag = "accounts", request_body = LoginIn,
    responses((status = 200, description = "Signed in", body = LoginOut)))]
async fn login(
    State(s): State<ApiState>,
    ClientAddr(ip): ClientAddr,
    ApiJson(body): ApiJson<LoginIn>,
) -> Result<Response, ApiError> {
    if let Some(wait) = s.logins.wait_ms(&body.username, ip, s.now_ms()) {
        let secs = limits::retry_after_s(wait);
        return Err(ApiError::rate_limited(
            secs,
            format!("too many failed sign-ins from your address; retry in {secs} s"),
        ));
    }
    let slot = s.passwords.slot()?;
    let creds = s.store.user_credentials(&body.username).await?;
    // An audience member who chats (`tutti_store::AUDIENCE_PASSWORD_HASH`) never signs in: its
    // placeholder is no hash, and it is verified as the missing user's dummy is, so the
    // answer and the work are a wrong password's.
    let creds = creds.filter(|c| c.password_hash != AUDIENCE_PASSWORD_HASH);
    let hash = creds.as_ref().map(|c| c.password_hash.clone());
    if !auth::verify_password(slot, hash, body.password).await {
        s.logins.failed(&body.username, ip, s.now_ms());
        return Err(unauthorized_login());
    }
    let Some(creds) = creds.filter(|c| c.user.active) else {
        s.logins.failed(&body.username, ip, s.now_ms());
        return Err(unauthorized_login());
    };
    s.logins.succeeded(&body.username, ip);
    let user = creds.user;
    if body.mode == Some(LoginMode::Cookie) {
        let secret = auth::new_secret("tts_");
        let csrf = auth::new_secret("csrf_");
        let now = s.now_ms();
        s.store
            .create_auth_session(NewAuthSession {
                user_id: user.id,
                token_hash: auth::token_hash(&secret),
                csrf_token: csrf.clone(),
                created_at_ms: now,
                expires_at_ms: now + ttl_ms(s.config.session_ttl_s),
            })
            .await?;
        let cookie = format!(
            "{SESSION_COOKIE}={secret}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}{}",
            s.config.session_ttl_s,
            if s.config.secure_cookies {
                "; Secure"
            } else {
                ""
            }
        );
        let mut res = ApiJson(LoginOut::Cookie(CookieOut {
            user: (&user).into(),
            csrf_token: csrf,
        }))
        .into_response();
        if let Ok(v) = HeaderValue::from_str(&cookie) {
            res.headers_mut().insert(header::SET_COOKIE, v);
        }
        return Ok(res);
    }
    Ok(ApiJson(LoginOut::Token(issue_pair(&s, &user).await?)).into_response())
}

/// A refresh token to exchange.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefreshIn {
    /// The refresh token from the last sign-in or refresh.
    pub refresh_token: String,
}

impl Validate for RefreshIn {
    fn validate(&self, p: &mut Problems) {
        p.len("refresh_token", &self.refresh_token, 1, 256);
    }
}

/// `POST /api/v1/auth/refresh`: a new pair; the presented token is used up. Presenting a
/// used one again revokes its whole family (401 `token_reused`).
#[utoipa::path(post, path = "/api/v1/auth/refresh", tag = "accounts", request_body = RefreshIn,
    responses((status = 200, description = "A new pair", body = TokenOut)))]
async fn refresh(
    State(s): State<ApiState>,
    ApiJson(body): ApiJson<RefreshIn>,
) -> Result<ApiJson<TokenOut>, ApiError> {
    let access = auth::new_secret("tta_");
    let refresh = auth::new_secret("ttr_");
    let now = s.now_ms();
    let result = s
        .store
        .rotate_refresh(RotateRefresh {
            presented: auth::token_hash(&body.refresh_token),
            access_hash: auth::token_hash(&access),
            refresh_hash: auth::token_hash(&refresh),
            at_ms: now,
            access_expires_at_ms: now + ttl_ms(s.config.access_ttl_s),
            refresh_expires_at_ms: now + ttl_ms(s.config.refresh_ttl_s),
        })
        .await;
    let (_, user) = match result {
        Ok(r) => r,
        Err(tutti_store::StoreError::TokenReused { family_id }) => {
            s.tokens.forget_family(family_id);
            return Err(tutti_store::StoreError::TokenReused { family_id }.into());
        }
        Err(tutti_store::StoreError::NotFound { .. }) => {
            return Err(ApiError::unauthorized("unknown refresh token"))
        }
        Err(e) => return Err(e.into()),
    };
    Ok(ApiJson(TokenOut {
        access_token: access,
        refresh_token: refresh,
        token_type: "Bearer".into(),
        expires_in: s.config.access_ttl_s,
        user: (&user).into(),
    }))
}

/// `POST /api/v1/auth/logout`: revokes this session or this token family.
#[utoipa::path(post, path = "/api/v1/auth/logout", tag = "accounts",
    security(("bearer" = [])),
    responses((status = 204, description = "Signed out")))]
async fn logout(State(s): State<ApiState>, caller: Caller) -> Result<Response, ApiError> {
    let now = s.now_ms();
    match caller.via {
        Via::Bearer { family_id } => {
            s.store.revoke_token_family(family_id, now).await?;
            s.tokens.forget_family(family_id);
        }
        Via::Session { token_hash } => {
            s.store.revoke_auth_session(token_hash, now).await?;
            s.tokens.forget(&token_hash);
        }
    }
    let mut res = StatusCode::NO_CONTENT.into_response();
    if matches!(caller.via, Via::Session { .. }) {
        res.headers_mut().insert(
            header::SET_COOKIE,
            HeaderValue::from_static(
                "tutti_session=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0",
            ),
        );
    }
    Ok(res)
}

/// `GET /api/v1/me`
#[utoipa::path(get, path = "/api/v1/me", tag = "accounts", security(("bearer" = [])),
    responses((status = 200, description = "The caller", body = UserOut)))]
async fn me(caller: Caller) -> ApiJson<UserOut> {
    ApiJson(caller.user.as_ref().into())
}

/// A password change.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordIn {
    /// The current password.
    pub current_password: String,
    /// 8–256 characters.
    pub new_password: String,
}

impl Validate for PasswordIn {
    fn validate(&self, p: &mut Problems) {
        p.len("current_password", &self.current_password, 1, 256);
        check_password(p, "new_password", &self.new_password);
    }
}

/// `POST /api/v1/me/password`: every other session and token family is revoked.
#[utoipa::path(post, path = "/api/v1/me/password", tag = "accounts", request_body = PasswordIn,
    security(("bearer" = [])),
    responses((status = 204, description = "Changed")))]
async fn change_password(
    State(s): State<ApiState>,
    caller: Caller,
    ApiJson(body): ApiJson<PasswordIn>,
) -> Result<StatusCode, ApiError> {
    let slot = s.passwords.slot()?;
    let creds = s.store.user_credentials(&caller.user.username).await?;
    let hash = creds.map(|c| c.password_hash);
    if !auth::verify_password(slot, hash, body.current_password).await {
        return Err(ApiError::forbidden("the current password is wrong"));
    }
    let new_hash = auth::hash_password(s.passwords.slot()?, body.new_password).await?;
    let keep = match caller.via {
        Via::Bearer { family_id } => KeepCredential::Family(family_id),
        Via::Session { token_hash } => KeepCredential::Session(token_hash),
    };
    s.store
        .set_password_hash(caller.id(), &new_hash, keep, s.now_ms())
        .await?;
    s.tokens.forget_user(caller.id());
    Ok(StatusCode::NO_CONTENT)
}

/// Paging parameters.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// 1–100, default 50.
    pub limit: Option<u32>,
    /// From the previous page's `next_cursor`.
    pub cursor: Option<String>,
}

impl Validate for ListQuery {
    fn validate(&self, p: &mut Problems) {
        page::check(p, self.limit, self.cursor.as_deref());
    }
}

/// A role name.
#[derive(Debug, Clone, Copy, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum RoleIn {
    /// Everything.
    Admin,
    /// Creates ensembles and performs.
    Performer,
    /// Technical crew.
    Crew,
    /// Signed-in audience member.
    Audience,
}

impl From<RoleIn> for UserRole {
    fn from(r: RoleIn) -> Self {
        match r {
            RoleIn::Admin => UserRole::Admin,
            RoleIn::Performer => UserRole::Performer,
            RoleIn::Crew => UserRole::Crew,
            RoleIn::Audience => UserRole::Audience,
        }
    }
}

/// A new account.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewUserIn {
    /// 1–64 of `A-Za-z0-9._-`, unique ignoring case.
    pub username: String,
    /// 8–256 characters.
    pub password: String,
    /// 1–200 characters.
    pub display_name: String,
    /// Global role.
    pub role: RoleIn,
}

impl Validate for NewUserIn {
    fn validate(&self, p: &mut Problems) {
        check_username(p, &self.username);
        check_password(p, "password", &self.password);
        p.text("display_name", &self.display_name, 1, 200);
    }
}

/// `POST /api/v1/users` (admin)
#[utoipa::path(post, path = "/api/v1/users", tag = "accounts", request_body = NewUserIn,
    security(("bearer" = [])),
    params(("Idempotency-Key" = Option<String>, Header, description = "Replays the first response")),
    responses((status = 201, description = "Created", body = UserOut)))]
async fn create_user(
    State(s): State<ApiState>,
    caller: Caller,
    req: Create<NewUserIn>,
) -> Result<Response, ApiError> {
    caller.require_admin()?;
    let body = req.body;
    idem::run(&s, caller.id(), req.idem, async {
        let hash = auth::hash_password(s.passwords.slot()?, body.password).await?;
        let user = s
            .store
            .create_user(NewUser {
                username: body.username,
                display_name: body.display_name,
                password_hash: hash,
                role: body.role.into(),
                at_ms: s.now_ms(),
            })
            .await?;
        Ok((StatusCode::CREATED, to_value(&UserOut::from(&user))?))
    })
    .await
}

/// Refuses everyone but admins from the user directory (the listing and other people's
/// accounts); ensemble owners add members by exact username instead.
fn require_directory(caller: &Caller) -> Result<(), ApiError> {
    if caller.is_admin() {
        Ok(())
    } else {
        Err(ApiError::forbidden(
            "only an admin may read the user directory; ensemble owners add members by \
             username (POST /api/v1/ensembles/{id}/members)",
        ))
    }
}

/// `GET /api/v1/users` (admin)
#[utoipa::path(get, path = "/api/v1/users", tag = "accounts", params(ListQuery),
    security(("bearer" = [])),
    responses((status = 200, description = "Users by id", body = UserPage)))]
async fn list_users(
    State(s): State<ApiState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> Result<ApiJson<UserPage>, ApiError> {
    require_directory(&caller)?;
    let (rows, next) = s
        .store
        .users(page::page(q.limit, q.cursor.as_deref())?)
        .await?;
    Ok(ApiJson(UserPage::new(
        rows.iter().map(UserOut::from).collect(),
        next,
    )))
}

/// `GET /api/v1/users/{id}` (admin, or the user themself)
#[utoipa::path(get, path = "/api/v1/users/{id}", tag = "accounts",
    params(("id" = i64, Path, description = "User id")),
    security(("bearer" = [])),
    responses((status = 200, description = "The user", body = UserOut)))]
async fn get_user(
    State(s): State<ApiState>,
    caller: Caller,
    ApiPath(id): ApiPath<i64>,
) -> Result<ApiJson<UserOut>, ApiError> {
    if caller.id() != id {
        require_directory(&caller)?;
    }
    let id = check_id("user", id)?;
    let user = s
        .store
        .user(id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("user {id}")))?;
    Ok(ApiJson((&user).into()))
}

/// `POST /api/v1/users/{id}/deactivate` (admin): signs the user out everywhere.
#[utoipa::path(post, path = "/api/v1/users/{id}/deactivate", tag = "accounts",
    params(("id" = i64, Path, description = "User id")),
    security(("bearer" = [])),
    responses((status = 200, description = "Deactivated", body = UserOut)))]
async fn deactivate_user(
    State(s): State<ApiState>,
    caller: Caller,
    ApiPath(id): ApiPath<i64>,
) -> Result<ApiJson<UserOut>, ApiError> {
    caller.require_admin()?;
    let id = check_id("user", id)?;
    if id == caller.id() {
        return Err(ApiError::conflict(
            "conflict",
            "an admin cannot deactivate their own account",
        ));
    }
    let user = s.store.deactivate_user(id, s.now_ms()).await?;
    s.tokens.forget_user(id);
    Ok(ApiJson((&user).into()))
}
