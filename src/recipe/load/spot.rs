//! Positions: from YAML locations and tree nodes to spots in a source file.

use std::sync::Arc;

use serde_saphyr::Location;

use super::super::diag::{SourceFile, Spot};
use super::super::program::InlineScript;
use super::RecipeError;
use super::tree::Node;

pub(super) fn spot_at(file: &Arc<SourceFile>, loc: &Location) -> Spot {
    if loc.line() == 0 {
        return Spot::file_start(file);
    }
    let span = loc.span();
    if let (Some(off), Some(len)) = (span.byte_offset(), span.byte_len()) {
        let off = usize::try_from(off).unwrap_or(usize::MAX);
        let len = usize::try_from(len).unwrap_or(0);
        if off <= file.text.len() {
            // Label one line at most.
            let line_len = file.text[off..].find('\n').unwrap_or(file.text.len() - off);
            let len = if len == 0 || len > line_len {
                None
            } else {
                Some(len)
            };
            return Spot::at_offset(file, off, len);
        }
    }
    let line = u32::try_from(loc.line()).unwrap_or(u32::MAX);
    let col = u32::try_from(loc.column()).unwrap_or(u32::MAX);
    Spot::at_line_col(file, line, col, None)
}

pub(super) fn node_spot(file: &Arc<SourceFile>, node: &Node) -> Spot {
    spot_at(file, &node.defined)
}

/// An error at a node; for a node that comes from an alias or a `<<` merge, the
/// place of use is shown too.
pub(super) fn node_error(
    file: &Arc<SourceFile>,
    node: &Node,
    message: impl Into<String>,
) -> RecipeError {
    let e = RecipeError::new(message, node_spot(file, node));
    if node.referenced != node.defined && node.referenced.line() > 0 {
        e.with_secondary(
            spot_at(file, &node.referenced),
            "used here (alias or `<<` merge)",
        )
    } else {
        e
    }
}

/// The spot of a byte range inside a scalar's text, when the scalar is written
/// plainly enough to find it; otherwise the scalar itself.
pub(super) fn sub_spot(value: &Spot, template: &str, offset: usize, len: usize) -> Spot {
    let text = &value.file.text;
    let start = value.offset;
    let piece = template.get(offset..offset + len).unwrap_or("");
    let rest = text.get(start..).unwrap_or("");
    if rest.starts_with(template) {
        return Spot::at_offset(&value.file, start + offset, Some(len));
    }
    if (rest.starts_with('"') || rest.starts_with('\''))
        && rest.get(1..).is_some_and(|r| r.starts_with(template))
    {
        return Spot::at_offset(&value.file, start + 1 + offset, Some(len));
    }
    if !piece.is_empty() {
        let window_end = (start + template.len() * 2 + 64).min(text.len());
        let mut end = window_end;
        while end > start && !text.is_char_boundary(end) {
            end -= 1;
        }
        if let Some(i) = text.get(start..end).and_then(|w| w.find(piece)) {
            return Spot::at_offset(&value.file, start + i, Some(len));
        }
    }
    value.clone()
}

/// An inline script with the place of its first character. serde-saphyr reports the
/// position of the scalar; for a block scalar (`|`) the text starts on the next line, for a
/// quoted one after the quote.
pub(super) fn inline_script(
    file: &Arc<SourceFile>,
    script: &serde_saphyr::Spanned<String>,
) -> InlineScript {
    let yaml = &file.text;
    let line = usize::try_from(script.referenced.line()).unwrap_or(0);
    let column = usize::try_from(script.referenced.column()).unwrap_or(0);
    let yaml_line = yaml.lines().nth(line.saturating_sub(1)).unwrap_or("");
    let at = yaml_line
        .char_indices()
        .nth(column.saturating_sub(1))
        .map_or("", |(i, _)| &yaml_line[i..]);
    let (line, column) = if at.starts_with('|') || at.starts_with('>') {
        // Block scalar: content starts on the next non-empty line, at its indentation.
        let mut l = line + 1;
        let mut col = 1;
        for text in yaml.lines().skip(line) {
            if !text.trim().is_empty() {
                col = text.len() - text.trim_start().len() + 1;
                break;
            }
            l += 1;
        }
        (l, col)
    } else if at.starts_with('"') || at.starts_with('\'') {
        (line, column + 1)
    } else {
        (line, column)
    };
    InlineScript {
        text: Arc::from(script.value.as_str()),
        file: file.path.clone(),
        line,
        column,
        yaml: Arc::clone(&file.text),
    }
}
