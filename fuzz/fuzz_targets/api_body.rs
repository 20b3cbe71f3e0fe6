//! `/api/v1` request bodies: every body type, parsed and validated exactly as its route's
//! extractor does (`tutti_api::check_body`, no HTTP), never panics, and a body it refuses
//! is always a client error (4xx with a stable code), never a server error.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tutti_api::{check_body, BODY_TYPES};

fuzz_target!(|input: &[u8]| {
    let Some((&which, body)) = input.split_first() else {
        return;
    };
    let name = BODY_TYPES[usize::from(which) % BODY_TYPES.len()];
    if let Err(e) = check_body(name, body) {
        assert!(
            e.status.is_client_error(),
            "{name}: {} {} for {:?}",
            e.status,
            e.code,
            String::from_utf8_lossy(body)
        );
        assert!(!e.code.is_empty());
    }
});
