//! Human output of the CLI client: aligned tables of API items, key/value listings of one
//! object, and times as UTC dates. `--json` bypasses all of this.
//!
//! Must never: hide a field silently in a key/value listing (nested values are shown as
//! compact JSON), or let one long value break the alignment (cells are cut at a width).

use serde_json::Value;

/// Longest cell, in characters.
const MAX_CELL: usize = 60;

/// Text of a JSON value for a cell: strings bare, `null` as `-`, others as JSON.
pub fn text(v: &Value) -> String {
    match v {
        Value::Null => "-".to_string(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The first of `keys` present (and not null) in `item`.
pub fn field<'a>(item: &'a Value, keys: &[&str]) -> &'a Value {
    keys.iter()
        .filter_map(|k| item.get(*k))
        .find(|v| !v.is_null())
        .unwrap_or(&Value::Null)
}

/// Unix milliseconds as `YYYY-MM-DD HH:MM:SS` UTC.
pub fn utc(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// A cell for a value: `*_ms` and `*_at` numbers become dates.
pub fn cell_for(key: &str, v: &Value) -> String {
    match v.as_i64() {
        Some(ms) if key.ends_with("_ms") || key.ends_with("_at") => utc(ms),
        _ => text(v),
    }
}

fn cut(s: &str) -> String {
    let one_line: String = s
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if one_line.chars().count() > MAX_CELL {
        one_line.chars().take(MAX_CELL - 1).collect::<String>() + "…"
    } else {
        one_line
    }
}

/// An aligned table: a header row, a rule, and the rows. Cells are cut at 60 characters.
pub fn render(headers: &[&str], rows: &[Vec<String>]) -> String {
    let rows: Vec<Vec<String>> = rows
        .iter()
        .map(|r| r.iter().map(|c| cut(c)).collect())
        .collect();
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for r in &rows {
        for (i, c) in r.iter().enumerate().take(widths.len()) {
            widths[i] = widths[i].max(c.chars().count());
        }
    }
    let line = |cells: Vec<&str>| -> String {
        let mut s = String::new();
        for (i, c) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                s.push_str(c);
            } else {
                s.push_str(c);
                let pad = widths[i] - c.chars().count() + 2;
                s.extend(std::iter::repeat_n(' ', pad));
            }
        }
        s.trim_end().to_string() + "\n"
    };
    let mut out = line(headers.to_vec());
    out.push_str(&line(
        widths
            .iter()
            .map(|w| "-".repeat(*w))
            .collect::<Vec<_>>()
            .iter()
            .map(String::as_str)
            .collect(),
    ));
    for r in &rows {
        let mut cells: Vec<&str> = r.iter().map(String::as_str).collect();
        cells.resize(headers.len(), "");
        out.push_str(&line(cells));
    }
    out
}

/// A table of API items with `columns` as `(header, keys to try)`.
pub fn items(items: &[Value], columns: &[(&str, &[&str])]) -> String {
    let headers: Vec<&str> = columns.iter().map(|c| c.0).collect();
    let rows: Vec<Vec<String>> = items
        .iter()
        .map(|it| {
            columns
                .iter()
                .map(|(_, keys)| {
                    let v = field(it, keys);
                    let key = keys
                        .iter()
                        .find(|k| it.get(**k).is_some_and(|x| !x.is_null()))
                        .copied()
                        .unwrap_or("");
                    cell_for(key, v)
                })
                .collect()
        })
        .collect();
    if rows.is_empty() {
        return "(none)\n".to_string();
    }
    render(&headers, &rows)
}

/// One object as `key  value` lines (keys sorted), skipping `skip`.
pub fn object(v: &Value, skip: &[&str]) -> String {
    let Some(map) = v.as_object() else {
        return text(v) + "\n";
    };
    let width = map
        .keys()
        .filter(|k| !skip.contains(&k.as_str()))
        .map(|k| k.chars().count())
        .max()
        .unwrap_or(0);
    let mut out = String::new();
    for (k, val) in map {
        if skip.contains(&k.as_str()) {
            continue;
        }
        let pad = width - k.chars().count() + 2;
        out.push_str(k);
        out.extend(std::iter::repeat_n(' ', pad));
        out.push_str(&cell_for(k, val));
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn tables_align_and_cut_long_cells() {
        let t = render(
            &["id", "title"],
            &[
                vec!["1".into(), "Short".into()],
                vec!["12345".into(), "x".repeat(100)],
            ],
        );
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines[0], "id     title");
        assert_eq!(lines[1], format!("-----  {}", "-".repeat(60)));
        assert_eq!(lines[2], "1      Short");
        assert!(lines[3].starts_with("12345  xxx"));
        assert!(lines[3].ends_with('…'));
        assert_eq!(lines[3].chars().count(), 7 + 60);
    }

    #[test]
    fn item_tables_use_fallback_keys_and_dates() {
        let list = vec![
            json!({"id": 1, "slug": "a", "status": "draft", "created_at_ms": 0}),
            json!({"id": 2, "slug": "b|c", "state": "ready", "created_at_ms": 1_700_000_000_000i64}),
        ];
        let t = items(
            &list,
            &[
                ("ID", &["id"]),
                ("SLUG", &["slug"]),
                ("STATUS", &["status", "state"]),
                ("CREATED", &["created_at_ms"]),
                ("MISSING", &["nope"]),
            ],
        );
        assert_eq!(
            t,
            "ID  SLUG  STATUS  CREATED              MISSING\n\
             --  ----  ------  -------------------  -------\n\
             1   a     draft   1970-01-01 00:00:00  -\n\
             2   b|c   ready   2023-11-14 22:13:20  -\n"
        );
        assert_eq!(items(&[], &[("ID", &["id"])]), "(none)\n");
    }

    #[test]
    fn objects_list_every_field() {
        let v = json!({"id": 7, "title": "T", "ensemble": {"id": 2}, "spec": {"x": 1}, "updated_at_ms": 86_400_000});
        assert_eq!(
            object(&v, &["spec"]),
            "ensemble       {\"id\":2}\nid             7\ntitle          T\nupdated_at_ms  1970-01-02 00:00:00\n"
        );
    }

    #[test]
    fn utc_dates_are_right_across_leap_years() {
        assert_eq!(utc(951_782_400_000), "2000-02-29 00:00:00");
        assert_eq!(utc(-1000), "1969-12-31 23:59:59");
        assert_eq!(utc(4_102_444_799_000), "2099-12-31 23:59:59");
    }
}
