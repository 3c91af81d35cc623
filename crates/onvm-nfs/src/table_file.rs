//! Table and key files: read with errors that name the flag and file
//! ([`read_text`], [`read_bytes`]), their meaningful lines ([`lines_of`]) and errors by
//! line ([`line_err`]).

use std::path::Path;

/// One meaningful line of a table file: its number (from 1) and its words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    /// Line number, from 1.
    pub no: usize,
    /// Whitespace-separated words, `#` comments removed.
    pub words: Vec<String>,
    /// The line, `#` comment removed, trimmed.
    pub text: String,
}

/// Read the text file `path` given with `flag` (an error names both).
pub fn read_text(flag: &str, path: &Path) -> Result<String, String> {
    std::fs::read_to_string(path).map_err(|e| format!("{flag} {}: {e}", path.display()))
}

/// Read the file `path` given with `flag` as bytes (an error names both).
pub fn read_bytes(flag: &str, path: &Path) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| format!("{flag} {}: {e}", path.display()))
}

/// The meaningful lines of `text`: non-empty once `#` comments are cut.
pub fn lines_of(text: &str) -> Vec<Line> {
    text.lines()
        .enumerate()
        .filter_map(|(i, l)| {
            let l = l.split('#').next().unwrap_or("");
            let words: Vec<String> = l.split_whitespace().map(str::to_string).collect();
            (!words.is_empty()).then(|| Line {
                no: i + 1,
                words,
                text: l.trim().to_string(),
            })
        })
        .collect()
}

/// An error about line `no` of the file `path` given with `flag`.
pub fn line_err(flag: &str, path: &Path, no: usize, what: impl std::fmt::Display) -> String {
    format!("{flag} {}: line {no}: {what}", path.display())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_lose_comments_and_blanks() {
        let l = lines_of("# head\n\n10.0.0.0/8 pass # ok\n  ::/0   drop\n");
        assert_eq!(l.len(), 2);
        assert_eq!(
            (l[0].no, l[0].words.clone()),
            (3, vec!["10.0.0.0/8".to_string(), "pass".into()])
        );
        assert_eq!((l[1].no, l[1].text.as_str()), (4, "::/0   drop"));
        let e = read_text("-f", Path::new("/nonexistent/x")).unwrap_err();
        assert!(e.starts_with("-f /nonexistent/x: "), "{e}");
        assert_eq!(line_err("-f", Path::new("t"), 3, "bad"), "-f t: line 3: bad");
    }
}
