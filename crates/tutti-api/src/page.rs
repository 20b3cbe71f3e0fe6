//! Cursor pagination: `?limit=1..100` (default 50) and an opaque `cursor`; lists answer
//! `{"items": [...], "next_cursor": string|null}`.
//!
//! Must never: expose the cursor's format as a contract (clients pass it back verbatim).

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use tutti_store::Page;

use crate::error::ApiError;
use crate::extract::Problems;

/// Default page size.
pub const DEFAULT_LIMIT: u32 = 50;
/// Largest page size.
pub const MAX_LIMIT: u32 = 100;

/// Encodes a store position as a cursor.
pub fn encode_cursor(after_id: i64) -> String {
    URL_SAFE_NO_PAD.encode(format!("c1:{after_id}"))
}

fn decode_cursor(c: &str) -> Option<i64> {
    let bytes = URL_SAFE_NO_PAD.decode(c).ok()?;
    let text = String::from_utf8(bytes).ok()?;
    text.strip_prefix("c1:")?.parse().ok().filter(|id| *id >= 0)
}

/// Checks `limit` and `cursor`.
pub fn check(p: &mut Problems, limit: Option<u32>, cursor: Option<&str>) {
    if let Some(l) = limit {
        if !(1..=MAX_LIMIT).contains(&l) {
            p.add("limit", format!("must be 1–{MAX_LIMIT}"));
        }
    }
    if let Some(c) = cursor {
        if decode_cursor(c).is_none() {
            p.add("cursor", "not a cursor this server issued");
        }
    }
}

/// The store page for a checked `limit` and `cursor`.
pub fn page(limit: Option<u32>, cursor: Option<&str>) -> Result<Page, ApiError> {
    let after_id = match cursor {
        Some(c) => Some(
            decode_cursor(c)
                .ok_or_else(|| ApiError::field("cursor", "not a cursor this server issued"))?,
        ),
        None => None,
    };
    Ok(Page {
        after_id,
        limit: limit.unwrap_or(DEFAULT_LIMIT).clamp(1, MAX_LIMIT),
    })
}

/// Declares a list response type `$name { items: Vec<$item>, next_cursor }`.
macro_rules! page_type {
    ($name:ident, $item:ty) => {
        /// One page of a list.
        #[derive(Debug, serde::Serialize, utoipa::ToSchema)]
        pub struct $name {
            /// The items, in id order.
            pub items: Vec<$item>,
            /// Pass as `cursor` for the next page; null on the last page.
            pub next_cursor: Option<String>,
        }

        impl $name {
            /// From a store page.
            pub fn new(items: Vec<$item>, next: Option<i64>) -> Self {
                Self {
                    items,
                    next_cursor: next.map($crate::page::encode_cursor),
                }
            }
        }
    };
}
pub(crate) use page_type;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip() {
        assert_eq!(decode_cursor(&encode_cursor(42)), Some(42));
        assert_eq!(decode_cursor("garbage!"), None);
        let mut p = Problems::default();
        check(&mut p, Some(0), Some("nope"));
        assert_eq!(p.0.len(), 2);
    }
}
