//! JUnit XML for CI dashboards: one `<testsuite>` (the recipe), one `<testcase>` per device.
//!
//! * `name` is the device (port basename), `classname` is `sim7k.<recipe>`, `time` its seconds.
//! * `<properties>`: `port`, `imei`, `verdict`, `run`, `transcript`, then every capture as
//!   `capture.<name>` and every measurement as `measurement.<name>` (`<value> pass|fail`).
//! * A `failed` or `timeout` verdict is a `<failure>`; `io_error`, `recipe_error` and
//!   `interrupted` are an `<error>`; `type` is the verdict, `message` is
//!   ``step `<step>`: <reason>``.
//! * Text from outside (the modem, the recipe) has its control characters escaped as
//!   `\xNN` ([`crate::util::escape::escape_text`]) before XML escaping, so an escape
//!   sequence is shown, not run, by whoever reads the report in a terminal.

use std::fmt::Write as _;
use std::path::Path;

use super::DeviceRecord;
use crate::job::Verdict;
use crate::output::WriteError;
use crate::util::escape::escape_text;

/// Escape text for an XML attribute or element (XML 1.0: characters it cannot carry become
/// U+FFFD).
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

/// Text from a record for an XML attribute or element: control characters shown as
/// `\xNN`, then XML-escaped.
fn text(value: &str) -> String {
    escape(&escape_text(value))
}

/// Render the records and replace `path` with them (see [`crate::output::replace`]).
pub fn write(
    path: &Path,
    records: &[DeviceRecord],
    suite: &str,
    wall_seconds: f64,
) -> Result<(), WriteError> {
    crate::output::replace(path, render(records, suite, wall_seconds).as_bytes())
        .map_err(|e| WriteError::new("JUnit report", path, &e))
}

/// Whether a verdict counts as a JUnit `<failure>` (else an `<error>`), for non-passed ones.
fn is_failure(v: Verdict) -> bool {
    matches!(v, Verdict::Failed | Verdict::Timeout)
}

/// Render the records. `suite` names the test suite (the recipe); `wall_seconds` is the
/// wall time of the whole run.
pub fn render(records: &[DeviceRecord], suite: &str, wall_seconds: f64) -> String {
    let tests = records.len();
    let failures = records
        .iter()
        .filter(|r| !r.passed() && is_failure(r.verdict))
        .count();
    let errors = records
        .iter()
        .filter(|r| !r.passed() && !is_failure(r.verdict))
        .count();
    let timestamp = records
        .iter()
        .map(|r| r.started.as_str())
        .min()
        .map(|t| t.get(..19).unwrap_or(t).to_string())
        .unwrap_or_default();
    let suite = text(suite);
    let mut x = String::new();
    x.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        x,
        "<testsuites name=\"sim7k\" tests=\"{tests}\" failures=\"{failures}\" errors=\"{errors}\" skipped=\"0\" time=\"{wall_seconds:.3}\">"
    );
    let _ = writeln!(
        x,
        "  <testsuite name=\"{suite}\" tests=\"{tests}\" failures=\"{failures}\" errors=\"{errors}\" skipped=\"0\" time=\"{wall_seconds:.3}\" timestamp=\"{}\">",
        text(&timestamp)
    );
    for r in records {
        let _ = writeln!(
            x,
            "    <testcase name=\"{}\" classname=\"sim7k.{suite}\" time=\"{:.3}\">",
            text(&r.device),
            r.seconds
        );
        x.push_str("      <properties>\n");
        let mut prop = |name: &str, value: &str| {
            let _ = writeln!(
                x,
                "        <property name=\"{}\" value=\"{}\"/>",
                text(name),
                text(value)
            );
        };
        prop("port", &r.port);
        if let Some(imei) = &r.imei {
            prop("imei", imei);
        }
        prop("verdict", verdict_name(r.verdict));
        prop("run", &r.run);
        if let Some(t) = &r.transcript {
            prop("transcript", t);
        }
        for (k, v) in &r.captures {
            prop(&format!("capture.{k}"), v);
        }
        for m in &r.measurements {
            prop(
                &format!("measurement.{}", m.name),
                &format!(
                    "{} {}",
                    m.value.as_deref().unwrap_or("(missing)"),
                    if m.passed { "pass" } else { "fail" }
                ),
            );
        }
        x.push_str("      </properties>\n");
        if !r.passed() {
            let tag = if is_failure(r.verdict) {
                "failure"
            } else {
                "error"
            };
            let step = escape_text(r.failed_step.as_deref().unwrap_or("?"));
            let reason = escape_text(r.reason.as_deref().unwrap_or(""));
            let mut body = format!("step: {step}\n");
            if let Some(o) = &r.failed_origin {
                let _ = writeln!(body, "at: {}", escape_text(o));
            }
            let _ = writeln!(body, "reason: {reason}");
            if let Some(t) = &r.transcript {
                let _ = writeln!(body, "transcript: {}", escape_text(t));
            }
            // The parts are escaped above; the body's own line breaks stay.
            let _ = writeln!(
                x,
                "      <{tag} type=\"{}\" message=\"{}\">{}</{tag}>",
                verdict_name(r.verdict),
                escape(&format!("step `{step}`: {reason}")),
                escape(&body)
            );
        }
        x.push_str("    </testcase>\n");
    }
    x.push_str("  </testsuite>\n</testsuites>\n");
    x
}

/// The snake_case name of a verdict, as in the JSONL records.
pub fn verdict_name(v: Verdict) -> &'static str {
    match v {
        Verdict::Passed => "passed",
        Verdict::Failed => "failed",
        Verdict::Timeout => "timeout",
        Verdict::IoError => "io_error",
        Verdict::RecipeError => "recipe_error",
        Verdict::Interrupted => "interrupted",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::tests::sample;

    #[test]
    fn counts_failures_and_errors_and_escapes() {
        let mut bad = sample("ttyUSB1", Verdict::Failed);
        bad.reason = Some("got <ERROR> & \"x\"\u{1}".into());
        let records = vec![
            sample("ttyUSB0", Verdict::Passed),
            bad,
            sample("ttyUSB2", Verdict::IoError),
        ];
        let x = render(&records, "Provision", 3.25);
        assert!(x.contains("tests=\"3\" failures=\"1\" errors=\"1\""), "{x}");
        assert!(x.contains("time=\"3.250\""));
        // A control character is shown as `\x01` (issue 11 point 10), not replaced.
        assert!(x.contains("<failure type=\"failed\" message=\"step `signal`: got &lt;ERROR&gt; &amp; &quot;x&quot;\\x01\">"), "{x}");
        assert!(x.contains("<error type=\"io_error\""));
        assert!(x.contains("<property name=\"capture.rssi\" value=\"5\"/>"));
        assert!(x.contains("<property name=\"measurement.rssi\" value=\"5 fail\"/>"));
        assert!(x.contains("timestamp=\"2025-11-25T15:32:00\""));
        // Balanced testcase elements.
        assert_eq!(x.matches("<testcase ").count(), 3);
        assert_eq!(x.matches("</testcase>").count(), 3);
    }

    /// Regression (issue 11 point 10): an escape sequence from the modem reached the XML.
    #[test]
    fn escape_sequences_from_outside_are_shown_not_run() {
        let mut bad = sample("tty\u{1b}[2JUSB1", Verdict::Failed);
        bad.reason = Some("the modem said: \u{1b}]0;owned\u{7}\r\nERROR".into());
        bad.captures.insert("iccid".into(), "\u{9b}31m".into());
        let x = render(&[bad], "Prov\u{1b}[5mision", 1.0);
        assert!(!x.contains('\u{1b}') && !x.contains('\u{7}') && !x.contains('\u{9b}'));
        assert!(
            x.contains("the modem said: \\x1b]0;owned\\x07\\r\\nERROR"),
            "{x}"
        );
        assert!(x.contains("name=\"tty\\x1b[2JUSB1\""), "{x}");
        assert!(x.contains("value=\"\\x9b31m\""), "{x}");
        assert!(x.contains("<testsuite name=\"Prov\\x1b[5mision\""), "{x}");
    }

    #[test]
    fn verdict_names_match_serde() {
        for v in [
            Verdict::Passed,
            Verdict::Failed,
            Verdict::Timeout,
            Verdict::IoError,
            Verdict::RecipeError,
            Verdict::Interrupted,
        ] {
            assert_eq!(
                serde_json::to_value(v).unwrap(),
                serde_json::Value::String(verdict_name(v).into())
            );
        }
    }
}
