//! The OpenAPI 3.1 document, generated from the handlers' `#[utoipa::path]` annotations and
//! the DTOs' `ToSchema` derives, served at `/api/v1/openapi.json`, and a self-contained
//! reference page at `/api/v1/docs` that renders it (no CDN: venues are often offline).
//!
//! Every operation gets a `default` response with the error envelope, so any documented
//! failure status matches the document; bearer auth is the security scheme; the operations
//! of [`crate::DEPRECATIONS`] are marked `deprecated`.
//!
//! Must never: describe a route that is not mounted, or load anything from outside.

use std::sync::Arc;

use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ContentBuilder, OpenApi, RefOr, ResponseBuilder};
use utoipa::{Modify, OpenApi as _};

use crate::error::ErrorEnvelope;
use crate::ApiState;

#[derive(utoipa::OpenApi)]
#[openapi(
    info(
        title = "Tutti management API",
        version = "1",
        description = "Accounts, ensembles, pieces, versioned specs and shows. Every failure is \
            `{\"error\": {code, message, details, request_id}}`; see docs/api.md for the codes and \
            the versioning policy."
    ),
    components(schemas(ErrorEnvelope)),
    modifiers(&Security)
)]
struct ApiDoc;

struct Security;

impl Modify for Security {
    fn modify(&self, openapi: &mut OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("opaque")
                    .build(),
            ),
        );
        // Chat bots (`/chat/bot/...`) send `Authorization: Bot <key>`.
        components.add_security_scheme(
            "bot",
            SecurityScheme::ApiKey(utoipa::openapi::security::ApiKey::Header(
                utoipa::openapi::security::ApiKeyValue::with_description(
                    "Authorization",
                    "'Bot <key>': a chat bot's key (never in the URL)",
                ),
            )),
        );
    }
}

/// The routes and the document.
pub(crate) fn build() -> (Router<ApiState>, OpenApi) {
    let (router, mut doc) = utoipa_axum::router::OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(crate::routes::api())
        .merge(crate::wizard::routes())
        .split_for_parts();
    add_error_responses(&mut doc);
    mark_deprecated(&mut doc);
    (router, doc)
}

/// Marks the operations of [`crate::DEPRECATIONS`] `deprecated: true`.
fn mark_deprecated(doc: &mut OpenApi) {
    for d in crate::DEPRECATIONS {
        let Some(item) = doc.paths.paths.get_mut(d.path) else {
            continue;
        };
        let op = match d.method {
            "GET" => &mut item.get,
            "POST" => &mut item.post,
            "PUT" => &mut item.put,
            "PATCH" => &mut item.patch,
            "DELETE" => &mut item.delete,
            _ => continue,
        };
        if let Some(op) = op {
            op.deprecated = Some(utoipa::openapi::Deprecated::True);
        }
    }
}

fn add_error_responses(doc: &mut OpenApi) {
    let error = ResponseBuilder::new()
        .description("Any failure, in the one envelope (see the `code`).")
        .content(
            "application/json",
            ContentBuilder::new()
                .schema(Some(RefOr::Ref(utoipa::openapi::Ref::from_schema_name(
                    "ErrorEnvelope",
                ))))
                .build(),
        )
        .build();
    for item in doc.paths.paths.values_mut() {
        for op in [
            &mut item.get,
            &mut item.post,
            &mut item.put,
            &mut item.patch,
            &mut item.delete,
        ]
        .into_iter()
        .flatten()
        {
            op.responses
                .responses
                .entry("default".to_owned())
                .or_insert_with(|| RefOr::T(error.clone()));
        }
    }
}

/// `/api/v1/openapi.json` and `/api/v1/docs`.
pub(crate) fn doc_routes(doc: Arc<OpenApi>) -> Router<ApiState> {
    let json: Arc<str> = doc
        .to_pretty_json()
        .unwrap_or_else(|_| "{}".to_owned())
        .into();
    Router::new()
        .route(
            "/api/v1/openapi.json",
            get(move || {
                let json = json.clone();
                async move {
                    (
                        [(header::CONTENT_TYPE, "application/json")],
                        json.to_string(),
                    )
                        .into_response()
                }
            }),
        )
        .route("/api/v1/docs", get(docs_page))
}

async fn docs_page() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        include_str!("docs.html"),
    )
        .into_response()
}
