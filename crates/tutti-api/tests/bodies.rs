//! `check_body` (the fuzz target `api_body`'s way in, docs/fuzzing.md) reaches every
//! request body type and answers as the extractor does; and regressions found by fuzzing.

use tutti_api::{check_body, BODY_TYPES};

#[test]
fn every_body_type_is_checked_and_refusals_are_client_errors() {
    for name in BODY_TYPES {
        for body in [
            &b""[..],
            b"{}",
            b"[",
            b"{\"x\":1}",
            b"\xff",
            b"null",
            b"{\"\":[]}",
        ] {
            if let Err(e) = check_body(name, body) {
                assert!(
                    e.status.is_client_error(),
                    "{name}: {} {}",
                    e.status,
                    e.code
                );
            }
        }
    }
    assert!(check_body("new_ensemble", br#"{"slug":"choir","name":"The Choir"}"#).is_ok());
    let e = check_body("new_ensemble", br#"{"slug":"Choir!","name":"The Choir"}"#).unwrap_err();
    assert_eq!(e.code, "validation_failed");
}
