//! The one MIME table: the content type of a file by its extension, for e-mail attachments
//! and downloads alike.

use std::path::Path;

/// The content type of an xlsx workbook.
pub const XLSX: &str = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet";

/// The content type of `path`, by its extension (any case); `application/octet-stream` when
/// the extension is unknown or missing.
pub fn content_type(path: &Path) -> &'static str {
    let ext = path
        .extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default();
    match ext.as_str() {
        "xlsx" => XLSX,
        "xls" => "application/vnd.ms-excel",
        "csv" => "text/csv; charset=utf-8",
        "txt" | "log" => "text/plain; charset=utf-8",
        "html" | "htm" => "text/html; charset=utf-8",
        "json" => "application/json",
        "pdf" => "application/pdf",
        "zip" => "application/zip",
        "gz" => "application/gzip",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn types_by_extension_in_any_case() {
        assert_eq!(content_type(Path::new("a.XLSX")), XLSX);
        assert_eq!(
            content_type(Path::new("订单.csv")),
            "text/csv; charset=utf-8"
        );
        assert_eq!(content_type(Path::new("a")), "application/octet-stream");
    }
}
