//! Recipe diagnostics: errors and warnings that point at `file:line:column` with a
//! source snippet.
//!
//! Every diagnostic has two renderings:
//!
//! * [`Display`](std::fmt::Display): plain text for logs and non-terminal output. The
//!   first line is always `path:line:col: message` (or `path: message` when no
//!   position is known), followed by a rustc-style snippet and notes.
//! * [`RecipeError::render`] / [`RecipeWarning::render`]: miette's graphical report
//!   (`╭─[recipes/x.yaml:12:5]`), with or without colour.
//!
//! Both types also implement [`miette::Diagnostic`] directly.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use miette::{Diagnostic, GraphicalReportHandler, GraphicalTheme, LabeledSpan, NamedSource};

/// A place in a recipe file: where a step, a key or a value starts.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Origin {
    /// The file as the user named it (the top recipe path, or an include path joined
    /// onto the including file's directory).
    pub file: PathBuf,
    /// 1-based line.
    pub line: u32,
    /// 1-based column, in characters.
    pub column: u32,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.file.display(), self.line, self.column)
    }
}

/// The text of one recipe file, shared by the diagnostics that point into it.
#[derive(Debug, Clone)]
pub(crate) struct SourceFile {
    pub path: PathBuf,
    pub text: Arc<str>,
    /// Why the file's lines must not be shown in snippets (it is not a recipe, or not
    /// text); positions are still given.
    pub hidden: Option<&'static str>,
}

impl SourceFile {
    pub(crate) fn new(path: PathBuf, text: impl Into<Arc<str>>) -> Arc<SourceFile> {
        Arc::new(SourceFile {
            path,
            text: text.into(),
            hidden: None,
        })
    }

    /// The same file, whose lines diagnostics never show (saying `why`).
    pub(crate) fn hidden(file: &Arc<SourceFile>, why: &'static str) -> Arc<SourceFile> {
        Arc::new(SourceFile {
            path: file.path.clone(),
            text: Arc::clone(&file.text),
            hidden: Some(why),
        })
    }
}

/// A byte range in a source file plus its line and column.
#[derive(Debug, Clone)]
pub(crate) struct Spot {
    pub file: Arc<SourceFile>,
    pub offset: usize,
    pub len: usize,
    pub line: u32,
    pub column: u32,
}

impl Spot {
    /// The spot at a 1-based `line` and character `column`. The label covers `len`
    /// bytes when given, otherwise the token starting there.
    pub(crate) fn at_line_col(
        file: &Arc<SourceFile>,
        line: u32,
        column: u32,
        len: Option<usize>,
    ) -> Spot {
        let text = &file.text;
        let line = line.max(1);
        let column = column.max(1);
        let offset = line_col_to_offset(text, line, column);
        let len = len.unwrap_or_else(|| token_len(text, offset));
        Spot {
            file: Arc::clone(file),
            offset,
            len: clamp_len(text, offset, len),
            line,
            column,
        }
    }

    /// The spot at a byte offset (clamped to the text).
    pub(crate) fn at_offset(file: &Arc<SourceFile>, offset: usize, len: Option<usize>) -> Spot {
        let text = &file.text;
        let mut offset = offset.min(text.len());
        while offset > 0 && !text.is_char_boundary(offset) {
            offset -= 1;
        }
        let (line, column) = offset_to_line_col(text, offset);
        let len = len.unwrap_or_else(|| token_len(text, offset));
        Spot {
            file: Arc::clone(file),
            offset,
            len: clamp_len(text, offset, len),
            line,
            column,
        }
    }

    /// The start of the file.
    pub(crate) fn file_start(file: &Arc<SourceFile>) -> Spot {
        Spot::at_offset(file, 0, Some(0))
    }

    pub(crate) fn origin(&self) -> Origin {
        Origin {
            file: self.file.path.clone(),
            line: self.line,
            column: self.column,
        }
    }
}

fn clamp_len(text: &str, offset: usize, len: usize) -> usize {
    let mut end = offset.saturating_add(len).min(text.len());
    while end > offset && !text.is_char_boundary(end) {
        end -= 1;
    }
    end - offset
}

/// Byte offset of a 1-based line and character column (clamped to the line end).
pub(crate) fn line_col_to_offset(text: &str, line: u32, column: u32) -> usize {
    let mut start = 0usize;
    for _ in 1..line {
        match text[start..].find('\n') {
            Some(i) => start += i + 1,
            None => return text.len(),
        }
    }
    let line_end = text[start..].find('\n').map_or(text.len(), |i| start + i);
    let line_text = &text[start..line_end];
    let col = usize::try_from(column.saturating_sub(1)).unwrap_or(usize::MAX);
    match line_text.char_indices().nth(col) {
        Some((i, _)) => start + i,
        None => line_end,
    }
}

/// 1-based line and character column of a byte offset.
pub(crate) fn offset_to_line_col(text: &str, offset: usize) -> (u32, u32) {
    let offset = offset.min(text.len());
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before[line_start..].chars().count() + 1;
    (
        u32::try_from(line).unwrap_or(u32::MAX),
        u32::try_from(column).unwrap_or(u32::MAX),
    )
}

const MAX_TOKEN_CHARS: usize = 40;

/// Length of the token at `offset`: up to the end of the line, a `: ` or a `#`
/// comment, without trailing spaces. At least one character when there is one.
fn token_len(text: &str, offset: usize) -> usize {
    let rest = text.get(offset..).unwrap_or("");
    let line = rest.split('\n').next().unwrap_or("");
    let mut end = line.len();
    if let Some(i) = line.find(": ") {
        end = end.min(i);
    }
    if line.ends_with(':') {
        end = end.min(line.len() - 1);
    }
    if let Some(i) = line.find(" #") {
        end = end.min(i);
    }
    let token = line[..end].trim_end();
    if token.is_empty() {
        line.chars().next().map_or(0, char::len_utf8)
    } else {
        // Long tokens (a minified line) get a short label.
        token
            .char_indices()
            .nth(MAX_TOKEN_CHARS)
            .map_or(token.len(), |(i, _)| i)
    }
}

#[derive(Debug, Clone)]
struct Inner {
    message: String,
    /// The primary position, when known.
    spot: Option<Spot>,
    /// The file, when no position is known.
    path: Option<PathBuf>,
    label: Option<String>,
    /// More labelled spans in the same file.
    secondary: Vec<(Spot, String)>,
    /// "included from …" lines, innermost first.
    chain: Vec<Origin>,
    help: Vec<String>,
    /// The miette source of `spot`, built once.
    source: Option<NamedSource<Arc<str>>>,
}

impl Inner {
    fn new(message: String, spot: Option<Spot>, path: Option<PathBuf>) -> Inner {
        let source = spot.as_ref().filter(|s| s.file.hidden.is_none()).map(|s| {
            NamedSource::new(s.file.path.display().to_string(), Arc::clone(&s.file.text))
                .with_language("yaml")
        });
        Inner {
            message,
            spot,
            path,
            label: None,
            secondary: Vec::new(),
            chain: Vec::new(),
            help: Vec::new(),
            source,
        }
    }

    fn origin(&self) -> Option<Origin> {
        self.spot.as_ref().map(Spot::origin)
    }

    fn file(&self) -> Option<&Path> {
        self.spot
            .as_ref()
            .map(|s| s.file.path.as_path())
            .or(self.path.as_deref())
    }

    fn labels(&self) -> Vec<LabeledSpan> {
        let mut out = Vec::new();
        if let Some(spot) = self.spot.as_ref().filter(|s| s.file.hidden.is_none()) {
            out.push(LabeledSpan::new_primary_with_span(
                Some(self.label.clone().unwrap_or_else(|| "here".to_owned())),
                (spot.offset, spot.len),
            ));
            for (s, label) in &self.secondary {
                if Arc::ptr_eq(&s.file, &spot.file) {
                    out.push(LabeledSpan::new_with_span(
                        Some(label.clone()),
                        (s.offset, s.len),
                    ));
                }
            }
        }
        out
    }

    fn write_plain(&self, f: &mut fmt::Formatter<'_>, severity: &str) -> fmt::Result {
        match (&self.spot, self.file()) {
            (Some(spot), _) => write!(f, "{}: {severity}{}", spot.origin(), self.message)?,
            (None, Some(path)) => write!(f, "{}: {severity}{}", path.display(), self.message)?,
            (None, None) => write!(f, "{severity}{}", self.message)?,
        }
        if let Some(spot) = &self.spot {
            match spot.file.hidden {
                Some(why) => write!(f, "\n   = note: the line is not shown: {why}")?,
                None => write_snippet(f, spot, self.label.as_deref())?,
            }
            for (s, label) in &self.secondary {
                write!(f, "\n   = note: {}: {label}", s.origin())?;
            }
        }
        for origin in &self.chain {
            write!(f, "\n   = included from {origin}")?;
        }
        for help in &self.help {
            write!(f, "\n   = help: {help}")?;
        }
        Ok(())
    }

    fn help_text(&self) -> Option<String> {
        let mut lines: Vec<String> = self
            .chain
            .iter()
            .map(|o| format!("included from {o}"))
            .collect();
        if let Some(why) = self.spot.as_ref().and_then(|s| s.file.hidden) {
            lines.push(format!("the line is not shown: {why}"));
        }
        lines.extend(self.help.iter().cloned());
        if lines.is_empty() {
            None
        } else {
            Some(lines.join("\n"))
        }
    }
}

/// A rustc-style snippet: the line, then a caret line under the span.
fn write_snippet(f: &mut fmt::Formatter<'_>, spot: &Spot, label: Option<&str>) -> fmt::Result {
    let text = &spot.file.text;
    let line_start = text[..spot.offset].rfind('\n').map_or(0, |i| i + 1);
    let line_end = text[spot.offset..]
        .find('\n')
        .map_or(text.len(), |i| spot.offset + i);
    let line_text = text[line_start..line_end].trim_end_matches('\r');
    let number = spot.line.to_string();
    let pad = " ".repeat(number.len());
    let shown: String = line_text
        .chars()
        .map(|c| if c == '\t' { ' ' } else { c })
        .filter(|c| !c.is_control())
        .collect();
    let caret_pad = text[line_start..spot.offset].chars().count();
    let span_end = (spot.offset + spot.len).min(line_end);
    let carets = text[spot.offset..span_end].chars().count().max(1);
    write!(f, "\n{pad} |\n{number} | {shown}\n{pad} | ")?;
    write!(f, "{}{}", " ".repeat(caret_pad), "^".repeat(carets))?;
    if let Some(label) = label {
        write!(f, " {label}")?;
    }
    Ok(())
}

fn render_graphical(diag: &dyn Diagnostic, color: bool) -> String {
    let theme = if color {
        GraphicalTheme::unicode()
    } else {
        GraphicalTheme::unicode_nocolor()
    };
    let handler = GraphicalReportHandler::new_themed(theme).with_width(100);
    let mut out = String::new();
    if handler.render_report(&mut out, diag).is_err() {
        // Rendering into a String cannot fail on I/O; fall back to the plain form.
        out = diag.to_string();
    }
    out
}

/// A message-only view used for the graphical report, whose header already shows
/// the position.
struct Graphical<'a> {
    inner: &'a Inner,
    severity: miette::Severity,
}

impl fmt::Debug for Graphical<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.inner.message)
    }
}

impl fmt::Display for Graphical<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.inner.spot, self.inner.file()) {
            (Some(spot), _) if spot.file.hidden.is_some() => {
                write!(f, "{}: {}", spot.origin(), self.inner.message)
            }
            (None, Some(path)) => write!(f, "{}: {}", path.display(), self.inner.message),
            _ => f.write_str(&self.inner.message),
        }
    }
}

impl std::error::Error for Graphical<'_> {}

impl Diagnostic for Graphical<'_> {
    fn severity(&self) -> Option<miette::Severity> {
        Some(self.severity)
    }
    fn help<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        self.inner
            .help_text()
            .map(|h| Box::new(h) as Box<dyn fmt::Display>)
    }
    fn source_code(&self) -> Option<&dyn miette::SourceCode> {
        self.inner
            .source
            .as_ref()
            .map(|s| s as &dyn miette::SourceCode)
    }
    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        let labels = self.inner.labels();
        if labels.is_empty() {
            None
        } else {
            Some(Box::new(labels.into_iter()))
        }
    }
}

macro_rules! diagnostic_type {
    ($ty:ident, $severity:expr, $prefix:expr) => {
        impl $ty {
            /// The message without position.
            pub fn message(&self) -> &str {
                &self.0.message
            }
            /// Where the problem is, when known.
            pub fn origin(&self) -> Option<Origin> {
                self.0.origin()
            }
            /// The file the problem is in, when known.
            pub fn file(&self) -> Option<&Path> {
                self.0.file()
            }
            /// Hints and "included from" notes.
            pub fn help(&self) -> Option<String> {
                self.0.help_text()
            }
            /// miette's graphical report (`╭─[file:line:col]` with the snippet),
            /// with ANSI colours when `color` is true.
            pub fn render(&self, color: bool) -> String {
                render_graphical(
                    &Graphical {
                        inner: &self.0,
                        severity: $severity,
                    },
                    color,
                )
            }
        }

        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.write_plain(f, $prefix)
            }
        }

        impl fmt::Debug for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(self, f)
            }
        }

        impl std::error::Error for $ty {}

        impl Diagnostic for $ty {
            fn severity(&self) -> Option<miette::Severity> {
                Some($severity)
            }
            fn help<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
                self.0
                    .help_text()
                    .map(|h| Box::new(h) as Box<dyn fmt::Display>)
            }
            fn source_code(&self) -> Option<&dyn miette::SourceCode> {
                self.0.source.as_ref().map(|s| s as &dyn miette::SourceCode)
            }
            fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
                let labels = self.0.labels();
                if labels.is_empty() {
                    None
                } else {
                    Some(Box::new(labels.into_iter()))
                }
            }
        }
    };
}

/// A recipe that cannot run: a YAML error, an unknown key, a bad regex, a missing
/// include, an unset `{{env.X}}`… It points into the file the problem is in (an
/// included file, if that is where it is), with the include chain as notes.
#[derive(Clone)]
pub struct RecipeError(Box<Inner>);

/// Something suspicious that does not stop the run (for example a `{{name}}` that
/// no var, `--set` or earlier capture defines: a script may still set it).
#[derive(Clone)]
pub struct RecipeWarning(Box<Inner>);

diagnostic_type!(RecipeError, miette::Severity::Error, "");
diagnostic_type!(RecipeWarning, miette::Severity::Warning, "");

impl RecipeError {
    /// An error at `line`/`column` (1-based, column in characters) of a file whose
    /// text is `text`, e.g. a script error mapped back onto the recipe.
    pub fn at(file: &Path, text: &str, line: u32, column: u32, message: impl Into<String>) -> Self {
        let source = SourceFile::new(file.to_path_buf(), text);
        RecipeError::new(message, Spot::at_line_col(&source, line, column, None))
    }

    /// An error about a whole file (unreadable, say), without a position.
    pub fn in_file(file: &Path, message: impl Into<String>) -> Self {
        RecipeError(Box::new(Inner::new(
            message.into(),
            None,
            Some(file.to_path_buf()),
        )))
    }

    pub(crate) fn new(message: impl Into<String>, spot: Spot) -> Self {
        RecipeError(Box::new(Inner::new(message.into(), Some(spot), None)))
    }

    /// Adds a hint shown after the snippet.
    pub fn with_help(mut self, help: impl Into<String>) -> Self {
        self.0.help.push(help.into());
        self
    }

    pub(crate) fn with_label(mut self, label: impl Into<String>) -> Self {
        self.0.label = Some(label.into());
        self
    }

    pub(crate) fn with_secondary(mut self, spot: Spot, label: impl Into<String>) -> Self {
        self.0.secondary.push((spot, label.into()));
        self
    }

    pub(crate) fn with_chain(mut self, chain: &[Origin]) -> Self {
        if self.0.chain.is_empty() {
            self.0.chain = chain.to_vec();
        }
        self
    }
}

impl RecipeWarning {
    pub(crate) fn new(message: impl Into<String>, spot: Spot) -> Self {
        RecipeWarning(Box::new(Inner::new(message.into(), Some(spot), None)))
    }

    pub(crate) fn with_help(mut self, help: impl Into<String>) -> Self {
        self.0.help.push(help.into());
        self
    }

    pub(crate) fn with_label(mut self, label: impl Into<String>) -> Self {
        self.0.label = Some(label.into());
        self
    }

    pub(crate) fn with_chain(mut self, chain: &[Origin]) -> Self {
        self.0.chain = chain.to_vec();
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_col_round_trip() {
        let text = "a: 1\nbé: [x]\n\nlast";
        for (line, col) in [(1, 1), (1, 4), (2, 1), (2, 5), (3, 1), (4, 2)] {
            let off = line_col_to_offset(text, line, col);
            assert_eq!(offset_to_line_col(text, off), (line, col), "{line}:{col}");
        }
        // Past the end of a line clamps to the line end; past the end of text to its end.
        assert_eq!(line_col_to_offset(text, 1, 99), 4);
        assert_eq!(line_col_to_offset(text, 99, 1), text.len());
    }

    #[test]
    fn plain_display_starts_with_position_and_shows_snippet() {
        let file = SourceFile::new(PathBuf::from("r/x.yaml"), "steps:\n  - sned: AT\n");
        let err = RecipeError::new("unknown key `sned`", Spot::at_line_col(&file, 2, 5, None))
            .with_label("unknown key")
            .with_help("did you mean `send`?");
        let text = err.to_string();
        assert!(
            text.starts_with("r/x.yaml:2:5: unknown key `sned`"),
            "{text}"
        );
        assert!(text.contains("2 |   - sned: AT"), "{text}");
        assert!(text.contains("|     ^^^^ unknown key"), "{text}");
        assert!(text.contains("help: did you mean `send`?"), "{text}");
        let graphical = err.render(false);
        assert!(graphical.contains("╭─[r/x.yaml:2:5]"), "{graphical}");
        assert!(graphical.contains("- sned: AT"), "{graphical}");
    }

    #[test]
    fn error_without_position_names_the_file() {
        let err = RecipeError::in_file(Path::new("missing.yaml"), "cannot read: gone");
        assert_eq!(err.to_string(), "missing.yaml: cannot read: gone");
        assert!(err.origin().is_none());
        assert!(
            err.render(false)
                .contains("missing.yaml: cannot read: gone")
        );
    }
}
