//! Where each configuration value came from. The four layers (built-in defaults, the file,
//! `TUTTI_*` environment variables, flags) become figment providers that name themselves,
//! so that an error can say where the bad value was set: the file and line, the
//! environment variable's full name, or the flag. Unknown keys in the file are refused
//! (with file, line and the keys that table has); unknown `TUTTI_*` variables are ignored
//! with a warning naming them, because other tools set variables such as `TUTTI_HOME`.
//!
//! Must never: read the process environment (the caller passes it), accept a key that
//! [`Config`] does not have, or put a Rust type name into a message.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use figment::error::Kind;
use figment::providers::Format;
use figment::value::{Dict, Map, Value};
use figment::{Figment, Metadata, Profile, Provider};
use serde_json::Value as Json;

use super::{CliOverrides, Config};
use crate::error::ServerError;

/// Largest configuration file read, in bytes.
const MAX_FILE_BYTES: u64 = 1 << 20;

/// One layer as a figment provider; `name` tells the layers apart in errors.
struct Layer {
    name: &'static str,
    dict: Dict,
}

const DEFAULTS: &str = "built-in defaults";
const FILE: &str = "configuration file";
const ENV: &str = "environment";
const FLAGS: &str = "command line";

impl Provider for Layer {
    fn metadata(&self) -> Metadata {
        Metadata::named(self.name)
    }

    fn data(&self) -> Result<Map<Profile, Dict>, figment::Error> {
        Ok(Profile::Default.collect(self.dict.clone()))
    }
}

/// The keys [`Config`] has, as a tree: objects are tables, anything else a value.
fn known_keys() -> Json {
    serde_json::to_value(Config::default()).unwrap_or(Json::Null)
}

/// The node at `path` in the key tree.
fn lookup<'a>(keys: &'a Json, path: &[String]) -> Option<&'a Json> {
    path.iter().try_fold(keys, |node, k| node.get(k))
}

fn key_list(table: Option<&Json>) -> String {
    table
        .and_then(Json::as_object)
        .map(|m| {
            let mut keys: Vec<&str> = m.keys().map(String::as_str).collect();
            keys.sort_unstable();
            keys.join(", ")
        })
        .unwrap_or_default()
}

/// A configuration file, read and parsed once with positions kept.
struct FileText {
    path: PathBuf,
    text: String,
    doc: toml_edit::ImDocument<String>,
}

impl FileText {
    fn read(path: &Path) -> Result<FileText, ServerError> {
        let bad = |m: String| ServerError::Config(format!("{}: {m}", path.display()));
        let meta = std::fs::metadata(path).map_err(|e| bad(format!("cannot read it: {e}")))?;
        if meta.len() > MAX_FILE_BYTES {
            return Err(bad(format!(
                "{} bytes; a configuration file has at most {MAX_FILE_BYTES}",
                meta.len()
            )));
        }
        let text =
            std::fs::read_to_string(path).map_err(|e| bad(format!("cannot read it: {e}")))?;
        let doc = toml_edit::ImDocument::parse(text.clone()).map_err(|e| {
            let at = e
                .span()
                .map(|s| {
                    let (line, col) = line_col(&text, s.start);
                    format!("line {line}, column {col}: ")
                })
                .unwrap_or_default();
            bad(format!("{at}not valid TOML: {}", e.message().trim_end()))
        })?;
        Ok(FileText {
            path: path.to_path_buf(),
            text,
            doc,
        })
    }

    /// The line of the key at `path`, when the file has it.
    fn line_of(&self, path: &[String]) -> Option<usize> {
        let mut table: &dyn toml_edit::TableLike = self.doc.as_table();
        let mut line = None;
        for (i, k) in path.iter().enumerate() {
            let (key, item) = table.get_key_value(k)?;
            line = key
                .span()
                .or_else(|| item.span())
                .map(|s| line_col(&self.text, s.start).0);
            if i + 1 < path.len() {
                table = item.as_table_like()?;
            }
        }
        line
    }

    /// "FILE, line N" (or just the file).
    fn place(&self, path: &[String]) -> String {
        match self.line_of(path) {
            Some(l) => format!("{}, line {l}", self.path.display()),
            None => self.path.display().to_string(),
        }
    }

    /// Refuses the first key that [`Config`] does not have.
    fn check_keys(&self, keys: &Json) -> Result<(), ServerError> {
        fn walk(
            file: &FileText,
            table: &dyn toml_edit::TableLike,
            keys: &Json,
            prefix: &mut Vec<String>,
        ) -> Result<(), ServerError> {
            for (k, item) in table.iter() {
                prefix.push(k.to_string());
                match keys.get(k) {
                    None => {
                        let section = if prefix.len() == 1 {
                            "at the top level".to_string()
                        } else {
                            format!("in [{}]", prefix[..prefix.len() - 1].join("."))
                        };
                        return Err(ServerError::Config(format!(
                            "{}: unknown key {} (the keys {section} are: {})",
                            file.place(prefix),
                            prefix.join("."),
                            key_list(Some(keys))
                        )));
                    }
                    Some(sub @ Json::Object(_)) => {
                        if let Some(t) = item.as_table_like() {
                            walk(file, t, sub, prefix)?;
                        }
                    }
                    Some(_) => {}
                }
                prefix.pop();
            }
            Ok(())
        }
        walk(self, self.doc.as_table(), keys, &mut Vec::new())
    }

    fn layer(&self) -> Result<Layer, ServerError> {
        let data = figment::providers::Toml::string(&self.text)
            .data()
            .map_err(|e| ServerError::Config(format!("{}: {e}", self.path.display())))?;
        Ok(Layer {
            name: FILE,
            dict: data.into_values().next().unwrap_or_default(),
        })
    }
}

/// 1-based line and column of a byte offset.
fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, col)
}

/// The flag that sets a key.
fn flag_of(path: &[String]) -> String {
    match path.join(".").as_str() {
        "osc.targets" => "--osc-target".into(),
        "osc.listen" => "--osc-listen".into(),
        other => format!("--{}", other.replace(['_', '.'], "-")),
    }
}

fn insert_path(dict: &mut Dict, path: &[String], value: Value) {
    match path {
        [] => {}
        [last] => {
            dict.insert(last.clone(), value);
        }
        [first, rest @ ..] => {
            let entry = dict
                .entry(first.clone())
                .or_insert_with(|| Value::from(Dict::new()));
            if let Value::Dict(_, inner) = entry {
                insert_path(inner, rest, value);
            } else {
                let mut inner = Dict::new();
                insert_path(&mut inner, rest, value);
                *entry = Value::from(inner);
            }
        }
    }
}

/// The layers of one load, kept to say where a key's value came from.
pub(super) struct Sources {
    file: Option<FileText>,
    /// Dotted key → the environment variable that set it.
    env_vars: BTreeMap<String, String>,
    figment: Figment,
    /// What was ignored on the way (unknown `TUTTI_*` variables).
    pub(super) warnings: Vec<String>,
}

impl Sources {
    /// Reads the layers; refuses unknown keys in the file, warns about unknown variables.
    pub(super) fn load(
        file: Option<&Path>,
        env: &[(String, String)],
        cli: &CliOverrides,
    ) -> Result<Sources, ServerError> {
        let keys = known_keys();
        let defaults = Value::serialize(Config::default())
            .ok()
            .and_then(|v| v.into_dict())
            .unwrap_or_default();
        let mut figment = Figment::from(Layer {
            name: DEFAULTS,
            dict: defaults,
        });

        let file = match file {
            Some(path) if !path.is_file() => {
                return Err(ServerError::Config(format!(
                    "configuration file {} (--config or TUTTI_CONFIG) does not exist",
                    path.display()
                )))
            }
            Some(path) => Some(FileText::read(path)?),
            None if Path::new("tutti.toml").is_file() => {
                Some(FileText::read(Path::new("tutti.toml"))?)
            }
            None => None,
        };
        if let Some(f) = &file {
            f.check_keys(&keys)?;
            figment = figment.merge(f.layer()?);
        }

        let mut dict = Dict::new();
        let mut env_vars = BTreeMap::new();
        let mut warnings = Vec::new();
        for (name, raw) in env {
            let Some(rest) = name.strip_prefix("TUTTI_") else {
                continue;
            };
            if rest == "CONFIG" {
                continue; // the file's path, read by the binary
            }
            let path: Vec<String> = rest.split("__").map(str::to_ascii_lowercase).collect();
            let is_value = !path.iter().any(String::is_empty)
                && lookup(&keys, &path).is_some_and(|n| !n.is_object());
            if !is_value {
                warnings.push(format!(
                    "ignoring the environment variable {name}: it is not a configuration key \
                     (nested keys are written TUTTI_<SECTION>__<KEY>, e.g. TUTTI_OSC__LATENCY_MS; \
                     `tutti config show` lists the keys)"
                ));
                continue;
            }
            let value = raw
                .parse::<Value>()
                .unwrap_or_else(|_| Value::from(raw.clone()));
            env_vars.insert(path.join("."), name.clone());
            insert_path(&mut dict, &path, value);
        }
        if !dict.is_empty() {
            figment = figment.merge(Layer { name: ENV, dict });
        }

        let flags = Value::serialize(cli)
            .ok()
            .and_then(|v| v.into_dict())
            .unwrap_or_default();
        figment = figment.merge(Layer {
            name: FLAGS,
            dict: flags,
        });
        Ok(Sources {
            file,
            env_vars,
            figment,
            warnings,
        })
    }

    /// The merged configuration, or every problem with where it was set.
    pub(super) fn extract(&self) -> Result<Config, ServerError> {
        self.figment.extract::<Config>().map_err(|e| {
            ServerError::Config(
                e.into_iter()
                    .map(|err| {
                        let mut path = err.path.clone();
                        if let Kind::UnknownField(found, _) = &err.kind {
                            if path.last() != Some(found) {
                                path.push(found.clone());
                            }
                        }
                        let layer = err.metadata.as_ref().map(|m| m.name.as_ref());
                        format!(
                            "{}: {}: {}",
                            self.place(layer, &path),
                            path.join("."),
                            problem(&err.kind)
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("; "),
            )
        })
    }

    /// Where the value of `key` (dotted) came from, for a range check that failed.
    pub(super) fn locate(&self, key: &str) -> String {
        let layer = self.figment.find_metadata(key).map(|m| m.name.as_ref());
        let path: Vec<String> = key.split('.').map(str::to_string).collect();
        self.place(layer, &path)
    }

    fn place(&self, layer: Option<&str>, path: &[String]) -> String {
        match layer {
            Some(FILE) => match &self.file {
                Some(f) => f.place(path),
                None => "the configuration file".into(),
            },
            Some(ENV) => match self.env_vars.get(&path.join(".")) {
                Some(var) => format!("environment variable {var}"),
                None => "a TUTTI_* environment variable".into(),
            },
            Some(FLAGS) => format!("flag {}", flag_of(path)),
            _ => "built-in default".into(),
        }
    }
}

/// What serde expected, in words (serde names primitive types the Rust way).
fn expected(e: &str) -> String {
    let e = e.trim();
    match e {
        "u8" | "u16" | "u32" | "u64" | "u128" | "usize" => "a whole number (0 or more)".into(),
        "i8" | "i16" | "i32" | "i64" | "i128" | "isize" => "a whole number".into(),
        "f32" | "f64" => "a number".into(),
        "a map" | "map" => "a table".into(),
        "option" => "a value".into(),
        "socket address" => "an address host:port such as 127.0.0.1:7878".into(),
        "path string" => "a path".into(),
        _ if e.starts_with("struct ") => "a table".into(),
        _ if e.starts_with("enum ") || e.ends_with("identifier") => "a name".into(),
        _ if e.contains("::") => "a value of another kind".into(),
        _ => e.to_string(),
    }
}

fn choices(list: &[&str]) -> String {
    list.iter()
        .map(|s| format!("\"{s}\""))
        .collect::<Vec<_>>()
        .join(", ")
}

/// One problem, in words.
fn problem(kind: &Kind) -> String {
    match kind {
        Kind::Message(m) => m.clone(),
        Kind::InvalidType(actual, exp) | Kind::InvalidValue(actual, exp) => {
            format!("expected {}, found {actual}", expected(exp))
        }
        Kind::InvalidLength(n, exp) => format!("expected {}, found {n} items", expected(exp)),
        Kind::UnknownVariant(found, list) => {
            format!("\"{found}\" is not one of {}", choices(list))
        }
        Kind::UnknownField(found, list) => {
            format!(
                "unknown key \"{found}\" (the keys here are: {})",
                list.join(", ")
            )
        }
        Kind::MissingField(f) => format!("the key {f} is missing"),
        Kind::DuplicateField(f) => format!("the key {f} is given twice"),
        Kind::ISizeOutOfRange(n) => format!("{n} is out of range"),
        Kind::USizeOutOfRange(n) => format!("{n} is out of range"),
        Kind::Unsupported(a) => format!("{a} is not supported here"),
        Kind::UnsupportedKey(a, _) => format!("a key must be text, found {a}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expectations_are_words_not_types() {
        for t in [
            "u32",
            "usize",
            "i64",
            "f64",
            "struct LimitsConfig",
            "enum SoundBackend",
        ] {
            let w = expected(t);
            assert!(!w.contains(t), "{t} → {w}");
        }
        assert_eq!(expected("a boolean"), "a boolean");
        assert!(!expected("alloc::string::String").contains("::"));
    }

    #[test]
    fn lines_and_flags_are_found() {
        assert_eq!(line_col("a\nbc\n", 3), (2, 2));
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("t.toml");
        std::fs::write(&p, "log = \"x\"\n\n[osc]\nlatency_ms = 3\nosc2.x = 1\n").unwrap();
        let f = FileText::read(&p).unwrap();
        let path = |s: &str| s.split('.').map(str::to_string).collect::<Vec<_>>();
        assert_eq!(f.line_of(&path("log")), Some(1));
        assert_eq!(f.line_of(&path("osc.latency_ms")), Some(4));
        assert_eq!(f.line_of(&path("osc.nope")), None);
        assert_eq!(flag_of(&path("osc.targets")), "--osc-target");
        assert_eq!(flag_of(&path("data_dir")), "--data-dir");
    }
}
