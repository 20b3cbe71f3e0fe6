//! Check pack files and print the first error of each, or `ok` with its size.
//!
//! `cargo run -p tutti-wizard --example check_pack -- packs/*.json`
//!
//! Must never: be more than a demonstration of the public API.

fn main() {
    for path in std::env::args().skip(1) {
        match tutti_wizard::Pack::load_file(&path) {
            Ok(p) => println!(
                "{path}: ok ({} questions, {} rules)",
                p.questions().len(),
                p.rules().len()
            ),
            Err(e) => println!("{e}"),
        }
    }
}
