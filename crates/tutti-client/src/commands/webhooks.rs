//! `tutti webhooks list|create|delete`: an ensemble's webhook subscriptions.
//!
//! Must never: send a URL or kind list that is plainly out of the API's limits (checked
//! first, naming the flag), or print a webhook's secret other than in the answer that
//! creates it (the only time the server sends it).

use serde_json::{json, Value};

use super::ensemble_id;
use crate::error::ClientError;
use crate::output::{self, print, WEBHOOK_COLUMNS};
use crate::session::Api;
use crate::table;

/// Longest URL the API accepts.
const MAX_URL: usize = 2000;
/// Most event kinds per webhook.
const MAX_KINDS: usize = 32;

/// `tutti webhooks list ENSEMBLE`.
pub async fn list(api: &mut Api, ensemble: &str, json: bool) -> Result<(), ClientError> {
    let id = ensemble_id(api, ensemble).await?;
    let v = api
        .call(
            "GET",
            &format!("/api/v1/ensembles/{id}/webhooks"),
            None,
            None,
        )
        .await?;
    output::list(&v, WEBHOOK_COLUMNS, json)
}

/// Local checks of `--url` and `--kind` (the server checks everything again).
fn check(url: &str, kinds: &[String]) -> Result<(), ClientError> {
    let usage = |m: String| Err(ClientError::Usage(m));
    if url.is_empty() || url.chars().count() > MAX_URL {
        return usage(format!("--url must be 1–{MAX_URL} characters"));
    }
    if url.chars().any(char::is_whitespace) {
        return usage(format!("--url '{url}': a URL has no spaces"));
    }
    if kinds.len() > MAX_KINDS {
        return usage(format!("--kind: at most {MAX_KINDS} kinds"));
    }
    if let Some(k) = kinds.iter().find(|k| k.trim().is_empty()) {
        return usage(format!("--kind '{k}': an event kind such as show.created"));
    }
    Ok(())
}

/// `tutti webhooks create ENSEMBLE --url URL [--kind KIND]...` (no kind: every event).
pub async fn create(
    api: &mut Api,
    ensemble: &str,
    url: &str,
    kinds: &[String],
    idempotency_key: Option<&str>,
    json: bool,
) -> Result<(), ClientError> {
    check(url, kinds)?;
    let id = ensemble_id(api, ensemble).await?;
    let mut body = json!({ "url": url });
    if !kinds.is_empty() {
        body["kinds"] = json!(kinds);
    }
    let v = api
        .call(
            "POST",
            &format!("/api/v1/ensembles/{id}/webhooks"),
            Some(&body),
            idempotency_key,
        )
        .await?;
    if json {
        return output::print_json(&v);
    }
    print(&table::object(&v, &[]))?;
    if v.get("secret").is_some_and(Value::is_string) {
        eprintln!(
            "the secret is shown only now: keep it to check each delivery's tutti-signature header"
        );
    }
    Ok(())
}

/// `tutti webhooks delete ID`: the webhook and its delivery log.
pub async fn delete(api: &mut Api, webhook: i64) -> Result<(), ClientError> {
    api.call("DELETE", &format!("/api/v1/webhooks/{webhook}"), None, None)
        .await?;
    print(&format!("webhook {webhook} deleted\n"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_and_kinds_are_checked_before_sending() {
        assert!(check("http://127.0.0.1:9000/hook", &[]).is_ok());
        for (url, kinds, flag) in [
            ("", vec![], "--url must be"),
            ("http://a b", vec![], "no spaces"),
            ("http://h", vec![" ".to_string()], "--kind ' '"),
            (
                "http://h",
                vec!["show.created".to_string(); 33],
                "at most 32",
            ),
        ] {
            let e = check(url, &kinds).unwrap_err();
            assert_eq!(e.exit_code(), 2);
            assert!(e.to_string().contains(flag), "{e}");
        }
        let long = format!("http://h/{}", "x".repeat(MAX_URL));
        assert!(check(&long, &[]).is_err());
    }
}
