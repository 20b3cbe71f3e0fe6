//! SynthDef files: a parser for the binary `.scsyndef` format (versions 1 and 2) that reads
//! each SynthDef's name and its controls (parameter names, indices, sizes and defaults), and
//! the library of SynthDefs a show may use, starting with the ones shipped in `synthdefs/`.
//!
//! The parser walks the whole file (constants, UGens, inputs, variants) and checks every
//! count and reference against the bytes, because scsynth itself trusts the file: truncated
//! bytes sent with `/d_recv` crash scsynth 3.13, and bytes without the `SCgf` magic are
//! acknowledged with `/done` and silently ignored. So nothing is sent to a server unless it
//! parsed here.
//!
//! Must never: panic on any input bytes, or allocate in proportion to a count it has not
//! checked against the bytes that remain.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use crate::error::ScError;

/// The SynthDefs shipped with Tutti (compiled from `synthdefs/*.scd` by
/// `scripts/build-synthdefs`), as `(name, bytes)`.
pub const BUILTIN_SYNTHDEFS: [(&str, &[u8]); 4] = [
    ("drone", include_bytes!("../../../synthdefs/drone.scsyndef")),
    (
        "granular",
        include_bytes!("../../../synthdefs/granular.scsyndef"),
    ),
    (
        "rhythm",
        include_bytes!("../../../synthdefs/rhythm.scsyndef"),
    ),
    (
        "master",
        include_bytes!("../../../synthdefs/master.scsyndef"),
    ),
];

/// Name of the SynthDef that carries the `master.*` controls.
pub const MASTER_VOICE: &str = "master";

/// One control (parameter) of a SynthDef.
#[derive(Debug, Clone, PartialEq)]
pub struct Control {
    /// The control's name, e.g. `cutoff`.
    pub name: String,
    /// Index of its first value among the SynthDef's parameters.
    pub index: usize,
    /// Number of values (1 for a scalar control, more for an array control).
    pub size: usize,
    /// Default value (the first one for an array control).
    pub default: f32,
}

/// What Tutti needs to know about one SynthDef.
#[derive(Debug, Clone, PartialEq)]
pub struct SynthDefInfo {
    /// The SynthDef's name (the name `/s_new` uses).
    pub name: String,
    /// Its named controls, by parameter index.
    pub controls: Vec<Control>,
    /// Number of UGens in its graph.
    pub ugens: usize,
}

impl SynthDefInfo {
    /// The control called `name`, if the SynthDef has one.
    pub fn control(&self, name: &str) -> Option<&Control> {
        self.controls.iter().find(|c| c.name == name)
    }

    /// The control names, comma separated (for error messages).
    pub fn control_names(&self) -> String {
        let names: Vec<&str> = self.controls.iter().map(|c| c.name.as_str()).collect();
        names.join(", ")
    }
}

/// A parsed `.scsyndef` file: its bytes (what `/d_recv` sends) and the SynthDefs inside.
#[derive(Debug, Clone, PartialEq)]
pub struct SynthDefFile {
    /// Where the bytes came from (file path or label), for messages.
    pub source_name: String,
    /// File format version (1 or 2).
    pub version: u32,
    /// The raw bytes, exactly as read.
    pub bytes: Arc<[u8]>,
    /// The SynthDefs in the file, in order.
    pub defs: Vec<SynthDefInfo>,
}

impl SynthDefFile {
    /// Parses SynthDef file bytes. `source_name` labels errors.
    pub fn parse(source_name: &str, bytes: &[u8]) -> Result<SynthDefFile, ScError> {
        let mut r = Reader {
            source: source_name,
            bytes,
            pos: 0,
        };
        let magic = r.take(4, "the 'SCgf' magic")?;
        if magic != b"SCgf" {
            return Err(r.error_at(0, "not a SynthDef file (no 'SCgf' magic)"));
        }
        let version = r.u32("the version")?;
        if version != 1 && version != 2 {
            return Err(r.error_at(4, format!("unsupported SynthDef file version {version}")));
        }
        let wide = version == 2;
        let count = r.u16("the number of SynthDefs")? as usize;
        if count == 0 {
            return Err(r.error("the file holds no SynthDef"));
        }
        let mut defs = Vec::with_capacity(count.min(64));
        for _ in 0..count {
            defs.push(parse_def(&mut r, wide)?);
        }
        if r.pos != bytes.len() {
            return Err(r.error(format!(
                "{} unexpected bytes after the last SynthDef",
                bytes.len() - r.pos
            )));
        }
        Ok(SynthDefFile {
            source_name: source_name.to_string(),
            version,
            bytes: Arc::from(bytes),
            defs,
        })
    }

    /// Reads and parses a `.scsyndef` file.
    pub fn read(path: &Path) -> Result<SynthDefFile, ScError> {
        let bytes = std::fs::read(path)
            .map_err(|e| ScError::io(format!("reading SynthDef file {}", path.display()), e))?;
        SynthDefFile::parse(&path.display().to_string(), &bytes)
    }

    /// The names of the SynthDefs in the file joined by `+` (for messages).
    pub fn label(&self) -> String {
        let names: Vec<&str> = self.defs.iter().map(|d| d.name.as_str()).collect();
        names.join("+")
    }
}

fn parse_def(r: &mut Reader<'_>, wide: bool) -> Result<SynthDefInfo, ScError> {
    let name = r.pstring("the SynthDef name")?;
    if name.is_empty() {
        return Err(r.error("empty SynthDef name"));
    }
    let constants = r.count(wide, 4, "the number of constants")?;
    r.skip(constants * 4, "the constants")?;
    let params = r.count(wide, 4, "the number of parameters")?;
    let mut defaults = Vec::with_capacity(params);
    for _ in 0..params {
        defaults.push(r.f32("a parameter's initial value")?);
    }
    // Each name is at least a length byte, one character and an index.
    let names = r.count(wide, 3, "the number of parameter names")?;
    let mut named: Vec<(String, usize)> = Vec::with_capacity(names);
    for _ in 0..names {
        let pname = r.pstring("a parameter name")?;
        let index = r.index(wide, "a parameter index")?;
        if index >= params {
            return Err(r.error(format!(
                "SynthDef '{name}': parameter '{pname}' has index {index} but there are {params} parameters"
            )));
        }
        named.push((pname, index));
    }
    named.sort_by_key(|(_, i)| *i);
    let mut controls = Vec::with_capacity(named.len());
    for (i, (pname, index)) in named.iter().enumerate() {
        let end = named.get(i + 1).map_or(params, |(_, next)| *next);
        controls.push(Control {
            name: pname.clone(),
            index: *index,
            size: end.saturating_sub(*index).max(1),
            default: defaults[*index],
        });
    }
    // Smallest UGen: class name (2 bytes), rate, input and output counts, special index.
    let ugens = r.count(wide, if wide { 12 } else { 8 }, "the number of UGens")?;
    for u in 0..ugens {
        let class = r.pstring("a UGen class name")?;
        let rate = r.u8("a UGen rate")?;
        if rate > 3 {
            return Err(r.error(format!("UGen {u} ({class}) has rate {rate}")));
        }
        let inputs = r.count(wide, if wide { 8 } else { 4 }, "a UGen's input count")?;
        let outputs = r.count(wide, 1, "a UGen's output count")?;
        r.u16("a UGen's special index")?;
        for _ in 0..inputs {
            let src = r.signed_index(wide, "an input's UGen index")?;
            let out = r.signed_index(wide, "an input's output index")?;
            let ok = if src < 0 {
                src == -1 && out >= 0 && (out as usize) < constants
            } else {
                (src as usize) < u && out >= 0
            };
            if !ok {
                return Err(r.error(format!(
                    "SynthDef '{name}': UGen {u} ({class}) has an input ({src}, {out}) that refers to nothing before it"
                )));
            }
        }
        r.skip(outputs, "a UGen's output rates")?;
    }
    let variants = r.u16("the number of variants")? as usize;
    for _ in 0..variants {
        r.pstring("a variant name")?;
        r.skip(params * 4, "a variant's values")?;
    }
    Ok(SynthDefInfo {
        name,
        controls,
        ugens,
    })
}

struct Reader<'a> {
    source: &'a str,
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn error(&self, reason: impl Into<String>) -> ScError {
        self.error_at(self.pos, reason)
    }

    fn error_at(&self, offset: usize, reason: impl Into<String>) -> ScError {
        ScError::SynthDefParse {
            source_name: self.source.to_string(),
            offset,
            reason: reason.into(),
        }
    }

    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8], ScError> {
        let end = self.pos.checked_add(n).filter(|e| *e <= self.bytes.len());
        match end {
            Some(end) => {
                let s = &self.bytes[self.pos..end];
                self.pos = end;
                Ok(s)
            }
            None => Err(self.error(format!("truncated while reading {what}"))),
        }
    }

    fn skip(&mut self, n: usize, what: &str) -> Result<(), ScError> {
        self.take(n, what).map(|_| ())
    }

    fn u8(&mut self, what: &str) -> Result<u8, ScError> {
        Ok(self.take(1, what)?[0])
    }

    fn u16(&mut self, what: &str) -> Result<u16, ScError> {
        let b = self.take(2, what)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    fn u32(&mut self, what: &str) -> Result<u32, ScError> {
        let b = self.take(4, what)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn f32(&mut self, what: &str) -> Result<f32, ScError> {
        Ok(f32::from_bits(self.u32(what)?))
    }

    /// A count (int16 in v1, int32 in v2) of items of at least `min_item` bytes each,
    /// checked against the bytes that remain.
    fn count(&mut self, wide: bool, min_item: usize, what: &str) -> Result<usize, ScError> {
        let start = self.pos;
        let n = if wide {
            let v = self.u32(what)? as i32;
            if v < 0 {
                return Err(self.error_at(start, format!("{what} is negative ({v})")));
            }
            v as usize
        } else {
            self.u16(what)? as usize
        };
        let remaining = self.bytes.len() - self.pos;
        if n.saturating_mul(min_item) > remaining {
            return Err(self.error_at(
                start,
                format!("{what} is {n}, more than the {remaining} remaining bytes can hold"),
            ));
        }
        Ok(n)
    }

    fn index(&mut self, wide: bool, what: &str) -> Result<usize, ScError> {
        let start = self.pos;
        let v = self.signed_index(wide, what)?;
        usize::try_from(v).map_err(|_| self.error_at(start, format!("{what} is negative ({v})")))
    }

    fn signed_index(&mut self, wide: bool, what: &str) -> Result<i64, ScError> {
        Ok(if wide {
            i64::from(self.u32(what)? as i32)
        } else {
            i64::from(self.u16(what)? as i16)
        })
    }

    fn pstring(&mut self, what: &str) -> Result<String, ScError> {
        let len = self.u8(what)? as usize;
        let start = self.pos;
        let b = self.take(len, what)?;
        String::from_utf8(b.to_vec())
            .map_err(|_| self.error_at(start, format!("{what} is not UTF-8")))
    }
}

/// The SynthDefs a show may use, by name. Cheap to clone (files are shared).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SynthDefLibrary {
    files: Vec<Arc<SynthDefFile>>,
    by_name: BTreeMap<String, (usize, usize)>,
}

impl SynthDefLibrary {
    /// An empty library.
    pub fn new() -> SynthDefLibrary {
        SynthDefLibrary::default()
    }

    /// The SynthDefs shipped with Tutti: `drone`, `granular`, `rhythm` and `master`.
    pub fn builtin() -> SynthDefLibrary {
        let mut lib = SynthDefLibrary::new();
        for (name, bytes) in BUILTIN_SYNTHDEFS {
            let file = SynthDefFile::parse(&format!("synthdefs/{name}.scsyndef"), bytes)
                // The shipped files are checked by this crate's tests; a failure here means
                // the build embedded a broken file.
                .expect("the shipped SynthDef files parse");
            lib.insert(file);
        }
        lib
    }

    /// Adds a parsed file; its SynthDefs replace any of the same name already here.
    pub fn insert(&mut self, file: SynthDefFile) {
        let idx = self.files.len();
        for (d, def) in file.defs.iter().enumerate() {
            self.by_name.insert(def.name.clone(), (idx, d));
        }
        self.files.push(Arc::new(file));
    }

    /// Parses `bytes` and adds them (see [`SynthDefLibrary::insert`]).
    pub fn insert_bytes(&mut self, source_name: &str, bytes: &[u8]) -> Result<(), ScError> {
        self.insert(SynthDefFile::parse(source_name, bytes)?);
        Ok(())
    }

    /// Adds every `*.scsyndef` file in `dir` (in name order).
    pub fn insert_dir(&mut self, dir: &Path) -> Result<(), ScError> {
        let entries = std::fs::read_dir(dir)
            .map_err(|e| ScError::io(format!("listing SynthDef folder {}", dir.display()), e))?;
        let mut paths = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| {
                ScError::io(format!("listing SynthDef folder {}", dir.display()), e)
            })?;
            let path = entry.path();
            if path.extension().is_some_and(|e| e == "scsyndef") {
                paths.push(path);
            }
        }
        paths.sort();
        for path in paths {
            self.insert(SynthDefFile::read(&path)?);
        }
        Ok(())
    }

    /// The SynthDef called `name`.
    pub fn get(&self, name: &str) -> Option<&SynthDefInfo> {
        let (f, d) = *self.by_name.get(name)?;
        Some(&self.files[f].defs[d])
    }

    /// The file that holds the SynthDef called `name`.
    pub fn file_of(&self, name: &str) -> Option<&Arc<SynthDefFile>> {
        let (f, _) = *self.by_name.get(name)?;
        Some(&self.files[f])
    }

    /// All SynthDef names, sorted.
    pub fn names(&self) -> Vec<&str> {
        self.by_name.keys().map(String::as_str).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(def: &SynthDefInfo) -> Vec<&str> {
        def.controls.iter().map(|c| c.name.as_str()).collect()
    }

    #[test]
    fn builtin_synthdefs_have_the_demo_controls() {
        let lib = SynthDefLibrary::builtin();
        assert_eq!(lib.names(), ["drone", "granular", "master", "rhythm"]);
        let drone = lib.get("drone").expect("drone");
        assert_eq!(
            names(drone),
            ["out", "gate", "freq", "amp", "cutoff", "detune"]
        );
        assert_eq!(drone.control("freq").map(|c| c.default), Some(110.0));
        assert_eq!(
            names(lib.get("granular").expect("granular")),
            ["out", "gate", "density", "pitch", "amp", "spread"]
        );
        assert_eq!(
            names(lib.get("rhythm").expect("rhythm")),
            ["out", "gate", "tempo", "amp", "tone", "pattern"]
        );
        assert_eq!(
            names(lib.get("master").expect("master")),
            ["out", "reverb_mix", "room", "damp", "gain"]
        );
        for (name, bytes) in BUILTIN_SYNTHDEFS {
            let file = SynthDefFile::parse(name, bytes).expect("parses");
            assert_eq!(file.version, 2, "{name}: sclang writes version 2");
            assert!(file.defs[0].ugens > 5, "{name}: a real graph");
        }
    }

    #[test]
    fn every_truncation_is_an_error_not_a_panic() {
        let bytes = BUILTIN_SYNTHDEFS[0].1;
        for len in 0..bytes.len() {
            let err = SynthDefFile::parse("cut.scsyndef", &bytes[..len]).unwrap_err();
            let text = err.to_string();
            assert!(text.contains("cut.scsyndef"), "{text}");
        }
        let mut longer = bytes.to_vec();
        longer.push(0);
        let err = SynthDefFile::parse("long", &longer)
            .unwrap_err()
            .to_string();
        assert!(err.contains("unexpected bytes"), "{err}");
    }

    #[test]
    fn corrupt_bytes_are_rejected_with_the_reason() {
        let err = SynthDefFile::parse("junk", b"garbage bytes here")
            .unwrap_err()
            .to_string();
        assert!(err.contains("no 'SCgf' magic"), "{err}");
        let mut v3 = BUILTIN_SYNTHDEFS[0].1.to_vec();
        v3[7] = 3;
        let err = SynthDefFile::parse("v3", &v3).unwrap_err().to_string();
        assert!(err.contains("version 3"), "{err}");
        // Flip every byte in turn: the parser may accept or reject, but never panics.
        let base = BUILTIN_SYNTHDEFS[2].1;
        for i in 0..base.len() {
            let mut b = base.to_vec();
            b[i] ^= 0xa5;
            let _ = SynthDefFile::parse("flip", &b);
        }
    }

    #[test]
    fn version_1_files_parse_too() {
        // A minimal v1 file written by hand: one SynthDef "t" with controls a, b and one
        // Control UGen feeding Out.ar(0, a).
        let mut f = Vec::new();
        f.extend_from_slice(b"SCgf");
        f.extend_from_slice(&1u32.to_be_bytes());
        f.extend_from_slice(&1u16.to_be_bytes());
        f.push(1);
        f.push(b't');
        f.extend_from_slice(&1u16.to_be_bytes()); // constants
        f.extend_from_slice(&0f32.to_be_bytes());
        f.extend_from_slice(&2u16.to_be_bytes()); // params
        f.extend_from_slice(&0.5f32.to_be_bytes());
        f.extend_from_slice(&2f32.to_be_bytes());
        f.extend_from_slice(&2u16.to_be_bytes()); // names
        for (n, i) in [("a", 0u16), ("b", 1)] {
            f.push(1);
            f.extend_from_slice(n.as_bytes());
            f.extend_from_slice(&i.to_be_bytes());
        }
        f.extend_from_slice(&2u16.to_be_bytes()); // ugens
        f.push(7);
        f.extend_from_slice(b"Control");
        f.push(1);
        f.extend_from_slice(&0u16.to_be_bytes()); // inputs
        f.extend_from_slice(&2u16.to_be_bytes()); // outputs
        f.extend_from_slice(&0u16.to_be_bytes());
        f.extend_from_slice(&[1, 1]);
        f.push(3);
        f.extend_from_slice(b"Out");
        f.push(2);
        f.extend_from_slice(&2u16.to_be_bytes());
        f.extend_from_slice(&0u16.to_be_bytes());
        f.extend_from_slice(&0u16.to_be_bytes());
        f.extend_from_slice(&(-1i16).to_be_bytes());
        f.extend_from_slice(&0u16.to_be_bytes());
        f.extend_from_slice(&0u16.to_be_bytes());
        f.extend_from_slice(&0u16.to_be_bytes());
        f.extend_from_slice(&0u16.to_be_bytes()); // variants
        let file = SynthDefFile::parse("v1", &f).expect("v1 parses");
        assert_eq!(file.version, 1);
        let def = &file.defs[0];
        assert_eq!(def.name, "t");
        assert_eq!(names(def), ["a", "b"]);
        assert_eq!(def.control("b").map(|c| c.default), Some(2.0));
        // An input that refers to a later UGen is rejected.
        let mut bad = f.clone();
        let at = bad.len() - 2 - 8 + 4; // the Out UGen's second input, UGen index
        bad[at..at + 2].copy_from_slice(&5u16.to_be_bytes());
        let err = SynthDefFile::parse("v1", &bad).unwrap_err().to_string();
        assert!(err.contains("refers to nothing"), "{err}");
    }
}
