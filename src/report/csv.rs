//! CSV for spreadsheets (RFC 4180: comma-separated, CRLF line ends, fields with a comma, a
//! quote or a line break quoted, quotes doubled), one row per device.
//!
//! Columns: [`FIXED_COLUMNS`], then `capture.<name>` for every capture name found in any
//! record (sorted), then `check.<name>` (`pass` / `fail`) for every measurement name (sorted).
//! A cell is empty where a record has no value.
//!
//! Every cell is text from outside (the modem, the recipe), made safe for a spreadsheet:
//!
//! * control characters (ESC sequences among them, CR and LF too) are escaped as `\xNN`,
//!   `\r`, `\n` ([`crate::util::escape::escape_text`]), so one record is one line;
//! * a cell that starts with `=`, `+`, `-` or `@` and is not a plain number gets a leading
//!   `'`: spreadsheets run such a cell as a formula (CSV injection). A number such as
//!   `-85` (an RSSI in dBm) stays a number;
//! * a cell is cut at [`MAX_CELL`] characters (Excel holds 32,767) with `… N bytes more`.

use std::collections::BTreeSet;

use std::path::Path;

use super::DeviceRecord;
use super::junit::verdict_name;
use crate::output::WriteError;
use crate::util::escape::shorten;

/// Longest cell, in characters.
pub const MAX_CELL: usize = 32_000;

/// The columns every CSV starts with.
pub const FIXED_COLUMNS: [&str; 14] = [
    "port",
    "device",
    "imei",
    "verdict",
    "exit_code",
    "failed_step",
    "failed_origin",
    "reason",
    "started",
    "ended",
    "seconds",
    "steps_passed",
    "transcript",
    "run",
];

/// One cell: escaped, shortened, neutralised when a spreadsheet would run it as a formula,
/// quoted if it needs it.
pub fn field(text: &str) -> String {
    let mut text = shorten(text, MAX_CELL);
    if starts_formula(&text) {
        text.insert(0, '\'');
    }
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text
    }
}

/// True when a spreadsheet would read `text` as a formula: it starts with `=`, `+`, `-` or
/// `@` and is not a plain decimal number.
fn starts_formula(text: &str) -> bool {
    if !text.starts_with(['=', '+', '-', '@']) {
        return false;
    }
    let digits = text.get(1..).unwrap_or_default();
    let plain_number = !digits.is_empty()
        && digits.chars().any(|c| c.is_ascii_digit())
        && digits.chars().all(|c| c.is_ascii_digit() || c == '.')
        && digits.matches('.').count() <= 1
        && !text.starts_with(['=', '@']);
    !plain_number
}

/// Render the records and replace `path` with them (see [`crate::output::replace`]).
pub fn write(path: &Path, records: &[DeviceRecord]) -> Result<(), WriteError> {
    crate::output::replace(path, render(records).as_bytes())
        .map_err(|e| WriteError::new("CSV report", path, &e))
}

/// Render the records.
pub fn render(records: &[DeviceRecord]) -> String {
    let captures: BTreeSet<&str> = records
        .iter()
        .flat_map(|r| r.captures.keys().map(String::as_str))
        .collect();
    let checks: BTreeSet<&str> = records
        .iter()
        .flat_map(|r| r.measurements.iter().map(|m| m.name.as_str()))
        .collect();
    let mut header: Vec<String> = FIXED_COLUMNS.iter().map(|c| c.to_string()).collect();
    header.extend(captures.iter().map(|c| format!("capture.{c}")));
    header.extend(checks.iter().map(|c| format!("check.{c}")));
    let mut out = String::new();
    push_row(&mut out, &header);
    for r in records {
        let opt = |v: &Option<String>| v.clone().unwrap_or_default();
        let mut row = vec![
            r.port.clone(),
            r.device.clone(),
            opt(&r.imei),
            verdict_name(r.verdict).to_string(),
            r.exit_code.to_string(),
            opt(&r.failed_step),
            opt(&r.failed_origin),
            opt(&r.reason),
            r.started.clone(),
            r.ended.clone(),
            format!("{:.3}", r.seconds),
            r.steps.passed.to_string(),
            opt(&r.transcript),
            r.run.clone(),
        ];
        row.extend(
            captures
                .iter()
                .map(|c| r.captures.get(*c).cloned().unwrap_or_default()),
        );
        row.extend(checks.iter().map(|c| {
            // The last measurement of that name decides (a value re-measured later wins).
            match r.measurements.iter().rev().find(|m| m.name == *c) {
                Some(m) if m.passed => "pass".to_string(),
                Some(_) => "fail".to_string(),
                None => String::new(),
            }
        }));
        push_row(&mut out, &row);
    }
    out
}

fn push_row(out: &mut String, cells: &[String]) {
    let line: Vec<String> = cells.iter().map(|c| field(c)).collect();
    out.push_str(&line.join(","));
    out.push_str("\r\n");
}

/// Split CSV text into rows of fields (the inverse of [`render`]; for tests and tools).
pub fn parse(text: &str) -> Vec<Vec<String>> {
    let mut rows = Vec::new();
    let mut row = Vec::new();
    let mut cell = String::new();
    let mut quoted = false;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if quoted {
            match c {
                '"' if chars.peek() == Some(&'"') => {
                    chars.next();
                    cell.push('"');
                }
                '"' => quoted = false,
                c => cell.push(c),
            }
            continue;
        }
        match c {
            '"' => quoted = true,
            ',' => row.push(std::mem::take(&mut cell)),
            '\r' if chars.peek() == Some(&'\n') => {}
            '\n' => {
                row.push(std::mem::take(&mut cell));
                rows.push(std::mem::take(&mut row));
            }
            c => cell.push(c),
        }
    }
    if !cell.is_empty() || !row.is_empty() {
        row.push(cell);
        rows.push(row);
    }
    rows
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::job::Verdict;
    use crate::report::tests::sample;

    #[test]
    fn header_and_rows_round_trip() {
        let mut b = sample("ttyUSB1", Verdict::Failed);
        b.reason = Some("said \"ERROR\", then\r\nCLOSED".into());
        b.captures.insert("iccid".into(), "8947".into());
        let text = render(&[sample("ttyUSB0", Verdict::Passed), b.clone()]);
        assert!(text.ends_with("\r\n"));
        let rows = parse(&text);
        assert_eq!(rows.len(), 3);
        let header = &rows[0];
        assert_eq!(&header[..FIXED_COLUMNS.len()], FIXED_COLUMNS);
        assert_eq!(
            &header[FIXED_COLUMNS.len()..],
            [
                "capture.iccid",
                "capture.imei",
                "capture.rssi",
                "check.rssi"
            ]
        );
        let col = |name: &str| header.iter().position(|h| h == name).unwrap();
        assert_eq!(rows[1][col("verdict")], "passed");
        assert_eq!(rows[1][col("capture.iccid")], "");
        assert_eq!(rows[1][col("check.rssi")], "pass");
        // Control characters are escaped: one record, one line (issue 11 point 10).
        assert_eq!(rows[2][col("reason")], "said \"ERROR\", then\\r\\nCLOSED");
        assert_eq!(rows[2][col("capture.iccid")], "8947");
        assert_eq!(rows[2][col("check.rssi")], "fail");
        assert_eq!(rows[2][col("seconds")], "1.500");
        assert!(rows.iter().all(|r| r.len() == header.len()));
    }

    /// Regression (issue 11 point 10): escape sequences and formulas reached the CSV as is.
    #[test]
    fn outside_text_is_escaped_and_formulas_neutralised() {
        assert_eq!(field("\u{1b}[31mred"), "\\x1b[31mred");
        assert_eq!(field("=HYPERLINK(\"x\")"), "\"'=HYPERLINK(\"\"x\"\")\"");
        assert_eq!(field("+CSQ: 24,99"), "\"'+CSQ: 24,99\"");
        assert_eq!(field("@SUM(A1)"), "'@SUM(A1)");
        assert_eq!(field("-2+3"), "'-2+3");
        assert_eq!(field("-"), "'-");
        assert_eq!(field("-85"), "-85");
        assert_eq!(field("+3.5"), "+3.5");
        assert_eq!(field("1.500"), "1.500");
        let long = field(&"x".repeat(40_000));
        assert!(
            long.ends_with("… 8000 bytes more"),
            "{}",
            &long[long.len() - 30..]
        );
        let mut r = sample("ttyUSB1", Verdict::Failed);
        r.reason = Some("=cmd|' /C calc'!A0 \u{1b}]0;x\u{7}".into());
        let text = render(&[r]);
        assert!(
            !text.contains('\u{1b}') && !text.contains('\u{7}'),
            "{text}"
        );
        assert!(text.contains("'=cmd|"), "{text}");
    }

    #[test]
    fn quoting() {
        assert_eq!(field("plain"), "plain");
        assert_eq!(field("a,b"), "\"a,b\"");
        assert_eq!(field("say \"hi\""), "\"say \"\"hi\"\"\"");
    }
}
