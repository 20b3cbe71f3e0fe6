//! `Wizard::load`: the built-in packs overlaid by a configured directory; one bad file
//! refuses the whole set and the error names the file and the field.

use tutti_wizard::{Wizard, WizardError, BUILTIN_PACK_FILES};

fn electronic() -> serde_json::Value {
    let text = BUILTIN_PACK_FILES
        .iter()
        .find(|(n, _)| *n == "electronic.json")
        .unwrap()
        .1;
    serde_json::from_str(text).unwrap()
}

#[test]
fn no_directory_gives_the_builtin_packs() {
    let w = Wizard::load(None).unwrap();
    assert_eq!(w.packs().len(), BUILTIN_PACK_FILES.len());
    assert!(w.pack("electronic").is_some());
}

#[test]
fn a_directory_adds_packs_and_replaces_builtin_ones_by_id() {
    let dir = tempfile::tempdir().unwrap();
    let mut own = electronic();
    own["id"] = "my-club".into();
    own["title"] = "My club nights".into();
    std::fs::write(dir.path().join("my-club.json"), own.to_string()).unwrap();
    let mut replaced = electronic();
    replaced["title"] = "Electronic (venue edition)".into();
    std::fs::write(dir.path().join("electronic.json"), replaced.to_string()).unwrap();
    std::fs::write(dir.path().join("notes.txt"), "not a pack").unwrap();

    let w = Wizard::load(Some(dir.path())).unwrap();
    assert_eq!(w.packs().len(), BUILTIN_PACK_FILES.len() + 1);
    assert_eq!(
        w.pack("electronic").unwrap().title(),
        "Electronic (venue edition)"
    );
    assert_eq!(w.packs().last().unwrap().id(), "my-club");
}

#[test]
fn one_bad_file_refuses_the_set_naming_file_and_field() {
    let dir = tempfile::tempdir().unwrap();
    let mut bad = electronic();
    bad["id"] = "broken".into();
    bad["questions"][2]["text"] = 5.into();
    std::fs::write(dir.path().join("broken.json"), bad.to_string()).unwrap();
    let e = Wizard::load(Some(dir.path())).unwrap_err();
    let text = e.to_string();
    assert!(matches!(e, WizardError::PackFormat { .. }), "{e:?}");
    assert!(
        text.starts_with("broken.json: questions[2] (id 'audience_size').text: invalid type"),
        "{text}"
    );
}

#[test]
fn a_missing_directory_is_an_io_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope");
    let e = Wizard::load(Some(&missing)).unwrap_err();
    assert!(matches!(e, WizardError::Io { .. }), "{e:?}");
    assert!(e.to_string().contains("nope"), "{e}");
}
