//! Reading recipe, include and script files.

use std::path::{Path, PathBuf};

use super::super::diag::{SourceFile, Spot};
use super::{MAX_FILE_BYTES, RecipeError};

pub(super) enum ReadError {
    Io(std::io::Error),
    TooLarge(usize),
    NotUtf8 { lossy: String, offset: usize },
}

pub(super) fn read_text(path: &Path) -> Result<String, ReadError> {
    use std::io::Read;
    // Only regular files: a FIFO or a device (`/dev/stdin`) could block the load.
    let meta = std::fs::metadata(path).map_err(ReadError::Io)?;
    if !meta.is_file() {
        return Err(ReadError::Io(std::io::Error::other("not a regular file")));
    }
    let file = std::fs::File::open(path).map_err(ReadError::Io)?;
    let mut bytes = Vec::new();
    let limit = u64::try_from(MAX_FILE_BYTES).unwrap_or(u64::MAX) + 1;
    file.take(limit)
        .read_to_end(&mut bytes)
        .map_err(ReadError::Io)?;
    if bytes.len() > MAX_FILE_BYTES {
        let size = std::fs::metadata(path)
            .ok()
            .and_then(|m| usize::try_from(m.len()).ok())
            .unwrap_or(bytes.len());
        return Err(ReadError::TooLarge(size));
    }
    String::from_utf8(bytes).map_err(|e| {
        let offset = e.utf8_error().valid_up_to();
        ReadError::NotUtf8 {
            lossy: String::from_utf8_lossy(e.as_bytes()).into_owned(),
            offset,
        }
    })
}

pub(super) fn too_large_message(size: usize) -> String {
    format!(
        "file is too large ({size} bytes; recipes, includes and scripts are limited to {MAX_FILE_BYTES} bytes)"
    )
}

pub(super) fn not_utf8_error(path: &Path, lossy: String, offset: usize) -> RecipeError {
    // The lossy text has the same bytes up to `offset`, so positions agree; the text is
    // not shown (it may be any binary file).
    let file = SourceFile::hidden(
        &SourceFile::new(path.to_path_buf(), lossy),
        "it is not UTF-8 text",
    );
    RecipeError::new(
        "file is not valid UTF-8 text",
        Spot::at_offset(&file, offset, Some(1)),
    )
    .with_label("invalid byte here")
    .with_help("save the file as UTF-8")
}

/// True for the file names recipes, includes and profiles have: `*.yaml`, `*.yml`.
pub(super) fn is_recipe_file(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| e.eq_ignore_ascii_case("yaml") || e.eq_ignore_ascii_case("yml"))
}

/// For an include written with one `{{var}}` in its file name that names no file (say
/// `carriers/{{carrier_profile}}.yaml`): a message listing the values that do name a file
/// in that directory, and a "did you mean" for a near or differently-cased one.
pub(super) fn alternatives(
    raw: &str,
    path: &Path,
    expanded: &str,
) -> Option<(String, Vec<String>)> {
    let raw_name = raw.trim().rsplit('/').next()?;
    let open = raw_name.find("{{")?;
    let close = raw_name.rfind("}}")?;
    if close < open || raw_name[open + 2..close].contains("{{") {
        return None;
    }
    let var = raw_name[open + 2..close].trim();
    let (prefix, suffix) = (&raw_name[..open], &raw_name[close + 2..]);
    if prefix.contains("{{") || suffix.contains("{{") {
        return None;
    }
    let dir = path
        .parent()
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf);
    let wanted = path.file_name()?.to_str()?;
    let value = wanted.strip_prefix(prefix)?.strip_suffix(suffix)?;
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .ok()?
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
        .filter_map(|e| e.file_name().into_string().ok())
        .filter_map(|n| {
            n.strip_prefix(prefix)
                .and_then(|r| r.strip_suffix(suffix))
                .filter(|v| !v.is_empty())
                .map(str::to_owned)
        })
        .collect();
    names.sort();
    let shown_dir = Path::new(expanded.trim())
        .parent()
        .map(|p| p.display().to_string())
        .filter(|p| !p.is_empty())
        .unwrap_or_else(|| ".".to_owned());
    let message = if names.is_empty() {
        format!(
            "`{{{{{var}}}}}` is `{}`, but there is no `{prefix}…{suffix}` file in `{shown_dir}`",
            super::yaml::sanitize(value)
        )
    } else {
        format!(
            "`{{{{{var}}}}}` is `{}`, which names no file in `{shown_dir}`; the available ones are: {}",
            super::yaml::sanitize(value),
            names.join(", ")
        )
    };
    let mut help = Vec::new();
    let near = names
        .iter()
        .find(|n| n.eq_ignore_ascii_case(value))
        .map(String::as_str)
        .or_else(|| super::yaml::closest(value, names.iter().map(String::as_str)));
    if let Some(near) = near {
        help.push(format!("did you mean `--set {var}={near}`?"));
    }
    Some((message, help))
}
