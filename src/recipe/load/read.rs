//! Reading recipe, include and script files.

use std::path::Path;

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
    // The lossy text has the same bytes up to `offset`, so positions agree.
    let file = SourceFile::new(path.to_path_buf(), lossy);
    RecipeError::new(
        "file is not valid UTF-8 text",
        Spot::at_offset(&file, offset, Some(1)),
    )
    .with_label("invalid byte here")
    .with_help("save the file as UTF-8")
}
