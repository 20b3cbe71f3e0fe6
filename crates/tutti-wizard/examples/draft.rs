//! Walk through a built-in pack answering every question with its example answer, then
//! print the coverage, the drafted spec, warnings and conflicts.
//!
//! `cargo run -p tutti-wizard --example draft -- electronic`
//!
//! Must never: be more than a demonstration of the public API.

use tutti_wizard::Wizard;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let id = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "electronic".into());
    let wizard = Wizard::builtin()?;
    let mut session = wizard.start(&id)?;
    while let Some(q) = session.next_question() {
        let (qid, text, example) = (q.id.clone(), q.text.clone(), q.example.clone());
        let out = session.answer(&qid, example.clone())?;
        println!(
            "[{:>3}%] {qid}: {text}\n        → {example}",
            out.coverage.maturity
        );
    }
    let ev = session.evaluate()?;
    println!("\nfired: {}", ev.fired_rules.join(", "));
    for w in &ev.warnings {
        println!("warning ({}): {}", w.rule, w.message);
    }
    for c in &ev.conflicts {
        println!("conflict ({}): {}", c.rule, c.message);
    }
    println!("\n{}", serde_json::to_string_pretty(&ev.spec)?);
    Ok(())
}
