//! `tutti wizard`: the guided setup in a terminal, fully offline. Interactive on
//! stdin/stdout (choose a pack, one question at a time with its help and example,
//! re-prompt on an invalid answer, coverage after every answer), or scripted from a JSON
//! answers file. Ends with the coverage, warnings and conflicts, and the draft spec as a
//! TOML file (or, with `--server`, a draft spec version through the API).
//!
//! Must never: touch the network unless `--server` is given, overwrite a file without
//! `--force`, or write a spec that does not validate (the wizard only drafts valid ones).

use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};

use clap::Args;
use serde_json::{json, Value};
use tutti_wizard::{AnswerType, Evaluation, Question, Session, Wizard, WizardError};

use tutti_client::ClientError;

/// Arguments of `tutti wizard`.
#[derive(Args, Clone, Debug)]
pub struct WizardArgs {
    /// Domain pack id (default: chosen interactively, or the answers file's `pack`).
    #[arg(long)]
    pub pack: Option<String>,
    /// Extra domain packs: every *.json file here (replacing built-in packs of the same id).
    #[arg(long, env = "TUTTI_PACKS_DIR")]
    pub packs_dir: Option<PathBuf>,
    /// Answer from this JSON file instead of asking: `{"pack": id, "answers": {question: answer}}`
    /// or a plain `{question: answer}` object (with --pack). `null` skips a question.
    #[arg(long)]
    pub answers: Option<PathBuf>,
    /// Write the draft spec (TOML) here; `-` for stdout. Default: `<slug>.toml`.
    #[arg(long, short)]
    pub out: Option<PathBuf>,
    /// Overwrite the output file when it exists.
    #[arg(long)]
    pub force: bool,
    /// List the domain packs and exit.
    #[arg(long)]
    pub list_packs: bool,
    /// Send the draft to this server as a new draft spec version of --piece (needs `tutti login`).
    #[arg(long, requires = "piece")]
    pub server: Option<String>,
    /// The piece (id or slug) that receives the draft with --server.
    #[arg(long, requires = "server")]
    pub piece: Option<String>,
    /// Print the result (coverage, findings, spec) as JSON on stdout.
    #[arg(long)]
    pub json: bool,
    /// Configuration directory of the stored logins (with --server).
    #[arg(long, env = "TUTTI_CONFIG_DIR")]
    pub config_dir: Option<PathBuf>,
}

fn data(e: WizardError) -> ClientError {
    ClientError::Data(e.to_string())
}

/// Load the packs Tutti runs with (built-in, overlaid by `dir`).
pub fn load_packs(dir: Option<&Path>) -> Result<Wizard, ClientError> {
    Wizard::load(dir).map_err(|e| match dir {
        Some(d) => ClientError::Data(format!("domain pack ({}): {e}", d.display())),
        None => ClientError::Data(format!("domain pack: {e}")),
    })
}

/// The list of packs, one a line.
pub fn pack_list(wizard: &Wizard) -> String {
    let width = wizard
        .packs()
        .iter()
        .map(|p| p.id().len())
        .max()
        .unwrap_or(0);
    let mut s = String::new();
    for (i, p) in wizard.packs().iter().enumerate() {
        s.push_str(&format!(
            "  {:>2}. {:<width$}  {} — {} questions\n",
            i + 1,
            p.id(),
            p.title(),
            p.questions().len()
        ));
    }
    s
}

/// A question as shown in the terminal.
pub fn describe(q: &Question, maturity: u8, category: &str) -> String {
    let mut s = format!(
        "\n[{maturity:>3}%] {category}{}\n{}\n",
        if q.required { " · required" } else { "" },
        q.text
    );
    if !q.help.is_empty() {
        s.push_str(&format!("  {}\n", q.help));
    }
    if let AnswerType::Choice { options } | AnswerType::MultiChoice { options, .. } = &q.answer {
        for (i, o) in options.iter().enumerate() {
            s.push_str(&format!("    {}. {} ({})\n", i + 1, o.label, o.value));
        }
    }
    let example = match &q.example {
        Value::String(t) => t.clone(),
        Value::Array(a) => a
            .iter()
            .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_string))
            .collect::<Vec<_>>()
            .join(", "),
        Value::Bool(b) => if *b { "yes" } else { "no" }.to_string(),
        other => other.to_string(),
    };
    s.push_str(&format!(
        "  answer: {}; example: {example}\n  ({}?: help, :done: draft now)\n",
        q.answer.expected(),
        if q.required {
            "required; "
        } else {
            "empty line: skip, "
        }
    ));
    s
}

fn category_title(session: &Session, id: &str) -> String {
    session
        .pack()
        .categories()
        .iter()
        .find(|c| c.id == id)
        .map_or_else(|| id.to_string(), |c| c.title.clone())
}

/// A line of input, trimmed; `None` at the end. When stdin is not a terminal (answers piped
/// in), the line is echoed after the prompt so the transcript reads like a session.
fn read_line(
    input: &mut impl BufRead,
    out: &mut impl Write,
) -> Result<Option<String>, ClientError> {
    let mut line = String::new();
    let n = input
        .read_line(&mut line)
        .map_err(|e| ClientError::Io(format!("stdin: {e}")))?;
    let line = (n > 0).then(|| line.trim().to_string());
    if let Some(l) = &line {
        if !std::io::IsTerminal::is_terminal(&std::io::stdin()) {
            say(out, &format!("{l}\n"))?;
        }
    }
    Ok(line)
}

fn say(out: &mut impl Write, s: &str) -> Result<(), ClientError> {
    out.write_all(s.as_bytes())
        .and_then(|()| out.flush())
        .map_err(|e| ClientError::Io(format!("stdout: {e}")))
}

/// Choose a pack interactively (number or id); `None` at end of input.
pub fn choose_pack(
    wizard: &Wizard,
    input: &mut impl BufRead,
    out: &mut impl Write,
) -> Result<Option<String>, ClientError> {
    say(out, &format!("Domain packs:\n{}", pack_list(wizard)))?;
    loop {
        say(out, "Which pack? (number or id) > ")?;
        let Some(line) = read_line(input, out)? else {
            return Ok(None);
        };
        let by_number = line
            .parse::<usize>()
            .ok()
            .and_then(|n| n.checked_sub(1))
            .and_then(|i| wizard.packs().get(i));
        if let Some(p) = by_number.or_else(|| wizard.pack(&line)) {
            say(out, &format!("{}: {}\n", p.title(), p.description()))?;
            return Ok(Some(p.id().to_string()));
        }
        say(
            out,
            &format!(
                "  '{line}' is not a pack: type a number from 1 to {} or a pack id\n",
                wizard.packs().len()
            ),
        )?;
    }
}

/// Findings that appeared since `seen`, as lines to show right after an answer.
fn new_findings(session: &Session, seen: &mut Vec<(bool, String)>) -> String {
    let Ok(ev) = session.evaluate() else {
        return String::new();
    };
    let now: Vec<(bool, String)> = ev
        .warnings
        .iter()
        .map(|w| (false, w.message.clone()))
        .chain(ev.conflicts.iter().map(|c| (true, c.message.clone())))
        .collect();
    let mut s = String::new();
    for (conflict, msg) in &now {
        if !seen.iter().any(|(c, m)| c == conflict && m == msg) {
            let kind = if *conflict { "CONFLICT" } else { "warning" };
            s.push_str(&format!("  {kind}: {msg}\n"));
        }
    }
    *seen = now;
    s
}

/// Ask until the pack has no question left, `:done`, or the end of input. Warnings and
/// conflicts are shown as soon as an answer raises them.
pub fn ask(
    session: &mut Session,
    input: &mut impl BufRead,
    out: &mut impl Write,
) -> Result<(), ClientError> {
    let mut seen = Vec::new();
    new_findings(session, &mut seen);
    while let Some(q) = session.next_question() {
        let q = q.clone();
        let cov = session.coverage();
        say(
            out,
            &describe(&q, cov.maturity, &category_title(session, &q.category)),
        )?;
        loop {
            say(out, "> ")?;
            let Some(line) = read_line(input, out)? else {
                say(out, "\n")?;
                return Ok(());
            };
            match line.as_str() {
                ":done" | ":quit" => return Ok(()),
                "?" | ":help" => {
                    say(
                        out,
                        &describe(&q, cov.maturity, &category_title(session, &q.category)),
                    )?;
                }
                "" => match session.skip(&q.id) {
                    Ok(()) => {
                        say(out, "  skipped\n")?;
                        break;
                    }
                    Err(e) => say(out, &format!("  ✗ {e}\n"))?,
                },
                text => match session.answer_text(&q.id, text) {
                    Ok(o) => {
                        let mut msg = format!("  ✓ maturity {}%", o.coverage.maturity);
                        if !o.follow_ups.is_empty() {
                            msg.push_str(&format!(" (follow-up: {})", o.follow_ups.join(", ")));
                        }
                        say(out, &(msg + "\n"))?;
                        say(out, &new_findings(session, &mut seen))?;
                        break;
                    }
                    Err(e) => say(out, &format!("  ✗ {e}; try again\n"))?,
                },
            }
        }
    }
    Ok(())
}

/// The answers file: `{"pack", "answers"}` or a plain object of answers.
pub fn read_answers(
    path: &Path,
) -> Result<(Option<String>, serde_json::Map<String, Value>), ClientError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| ClientError::Io(format!("{}: {e}", path.display())))?;
    let v: Value = serde_json::from_str(&text)
        .map_err(|e| ClientError::Data(format!("{}: not JSON: {e}", path.display())))?;
    let Value::Object(mut map) = v else {
        return Err(ClientError::Data(format!(
            "{}: must be a JSON object of answers",
            path.display()
        )));
    };
    if map.contains_key("answers") {
        let pack = match map.remove("pack") {
            None => None,
            Some(Value::String(s)) => Some(s),
            Some(_) => {
                return Err(ClientError::Data(format!(
                    "{}: pack: must be a pack id (a string)",
                    path.display()
                )))
            }
        };
        if let Some(k) = map.keys().find(|k| *k != "answers") {
            return Err(ClientError::Data(format!(
                "{}: unknown field '{k}' (expected pack and answers)",
                path.display()
            )));
        }
        match map.remove("answers") {
            Some(Value::Object(a)) => Ok((pack, a)),
            _ => Err(ClientError::Data(format!(
                "{}: answers: must be an object of question id → answer",
                path.display()
            ))),
        }
    } else {
        Ok((None, map))
    }
}

/// Apply scripted answers, in as many passes as dependencies need. A string answer to a
/// question that is not text is read like a typed line (`"30 Hz"`, `"yes"`); `null` skips.
pub fn apply_answers(
    session: &mut Session,
    answers: &serde_json::Map<String, Value>,
    file: &Path,
) -> Result<(), ClientError> {
    let err = |e: WizardError| ClientError::Data(format!("{}: {e}", file.display()));
    for id in answers.keys() {
        if session.pack().question(id).is_none() {
            return Err(err(WizardError::UnknownQuestion {
                pack: session.pack().id().to_string(),
                question: id.clone(),
            }));
        }
    }
    let mut left: Vec<&String> = answers.keys().collect();
    loop {
        let before = left.len();
        let mut still = Vec::new();
        for id in left {
            if !session.applies(id) {
                still.push(id);
                continue;
            }
            let v = &answers[id];
            match v {
                Value::Null => session.skip(id).map_err(err)?,
                Value::String(s)
                    if !matches!(
                        session.pack().question(id).map(|q| &q.answer),
                        Some(AnswerType::Text { .. })
                    ) =>
                {
                    session.answer_text(id, s).map_err(err)?;
                }
                _ => {
                    session.answer(id, v.clone()).map_err(err)?;
                }
            }
        }
        left = still;
        if left.is_empty() || left.len() == before {
            break;
        }
    }
    match left.first() {
        None => Ok(()),
        Some(id) => {
            // Not applicable under the final answers: report it the wizard's way.
            let e = session
                .answer(id, answers[id.as_str()].clone())
                .err()
                .unwrap_or(WizardError::Resume {
                    message: format!("question '{id}' could not be answered"),
                });
            Err(err(e))
        }
    }
}

/// The summary printed at the end: coverage per category, findings, rules fired.
pub fn summary(ev: &Evaluation) -> String {
    let c = &ev.coverage;
    let mut s = format!(
        "\nCoverage: maturity {}% ({} of {} applicable questions answered){}\n",
        c.maturity,
        c.answered,
        c.applicable,
        if c.complete { ", complete" } else { "" }
    );
    let width = c
        .categories
        .iter()
        .map(|k| k.title.chars().count())
        .max()
        .unwrap_or(0);
    for k in &c.categories {
        let filled = (k.ratio.clamp(0.0, 1.0) * 10.0).round() as usize;
        s.push_str(&format!(
            "  {:<width$}  {}/{}  {}{}  {:>3.0}%\n",
            k.title,
            k.answered,
            k.effective_target,
            "#".repeat(filled),
            ".".repeat(10 - filled),
            k.ratio * 100.0
        ));
    }
    if !c.missing_required.is_empty() {
        s.push_str(&format!(
            "Missing required answers: {}\n",
            c.missing_required.join(", ")
        ));
    }
    for w in &ev.warnings {
        s.push_str(&format!("warning ({}): {}\n", w.rule, w.message));
    }
    for x in &ev.conflicts {
        s.push_str(&format!("CONFLICT ({}): {}\n", x.rule, x.message));
    }
    s.push_str(&format!(
        "Rules fired: {}\n",
        if ev.fired_rules.is_empty() {
            "none".to_string()
        } else {
            ev.fired_rules.join(", ")
        }
    ));
    s
}

/// The TOML file: a header naming the pack, the maturity and the findings, then the spec.
pub fn toml_file(pack: &str, ev: &Evaluation) -> Result<String, ClientError> {
    let mut s = format!(
        "# Drafted by `tutti wizard` with the '{pack}' pack (maturity {}%).\n",
        ev.coverage.maturity
    );
    for w in &ev.warnings {
        s.push_str(&format!(
            "# warning ({}): {}\n",
            w.rule,
            one_line(&w.message)
        ));
    }
    for x in &ev.conflicts {
        s.push_str(&format!(
            "# CONFLICT ({}): {}\n",
            x.rule,
            one_line(&x.message)
        ));
    }
    s.push_str(
        &ev.spec
            .to_toml()
            .map_err(|e| ClientError::Data(e.to_string()))?,
    );
    Ok(s)
}

fn one_line(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// The result as JSON for `--json`.
pub fn result_json(pack: &str, ev: &Evaluation, session: &Session) -> Value {
    json!({
        "pack": pack,
        "answers": session.answers(),
        "coverage": ev.coverage,
        "warnings": ev.warnings,
        "conflicts": ev.conflicts,
        "fired_rules": ev.fired_rules,
        "ready": ev.is_ready(),
        "spec": ev.spec,
    })
}

/// Run the session (scripted or interactive) and return it with its pack id; `None` when
/// the input ended before a pack was chosen.
pub fn run_session(
    args: &WizardArgs,
    wizard: &Wizard,
    input: &mut impl BufRead,
    out: &mut impl Write,
) -> Result<Option<Session>, ClientError> {
    if let Some(file) = &args.answers {
        let (file_pack, answers) = read_answers(file)?;
        let pack = match (&args.pack, file_pack) {
            (Some(p), Some(f)) if *p != f => {
                return Err(ClientError::Usage(format!(
                    "--pack {p} differs from the answers file's pack '{f}'"
                )))
            }
            (Some(p), _) => p.clone(),
            (None, Some(f)) => f,
            (None, None) => {
                return Err(ClientError::Usage(format!(
                    "{}: name the pack with --pack or a \"pack\" field",
                    file.display()
                )))
            }
        };
        let mut session = wizard.start(&pack).map_err(data)?;
        apply_answers(&mut session, &answers, file)?;
        return Ok(Some(session));
    }
    let pack = match &args.pack {
        Some(p) => p.clone(),
        None => match choose_pack(wizard, input, out)? {
            Some(p) => p,
            None => return Ok(None),
        },
    };
    let mut session = wizard.start(&pack).map_err(data)?;
    say(
        out,
        &format!(
            "Answering the '{}' pack: {} questions at most.\n",
            session.pack().id(),
            session.pack().questions().len()
        ),
    )?;
    ask(&mut session, input, out)?;
    Ok(Some(session))
}
