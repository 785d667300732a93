//! Reading the YAML into the raw shape, reporting every shape error, not
//! only the first. serde stops at the first error, so after each one the
//! offending entry (its line and the lines nested under it) is blanked out
//! and the text read again; line numbers stay those of the file. Syntax
//! errors end the reading: after one, nothing that follows can be trusted.

use std::borrow::Cow;

use serde_saphyr::Error;

use super::raw::RawConfig;

/// At most this many shape errors are reported; a file with more is
/// probably not a tokengate config at all.
const MAX_ERRORS: usize = 20;

/// One shape error: the operator-facing message and, when reading can go
/// on past it, the line (1-based) whose entry to blank out.
struct ShapeError {
    message: String,
    blank: Option<usize>,
    /// A consequence of blanking when it follows another error: a required
    /// field blanked out, or a document blanked to nothing.
    consequence: bool,
}

/// The raw config, or every shape error found, each with its field path,
/// the expected form and a snippet.
pub(super) fn read(text: &str, origin: &str) -> Result<RawConfig, Vec<String>> {
    let original_text = text;
    let mut text = Cow::Borrowed(text);
    let mut errors = Vec::new();
    while errors.len() < MAX_ERRORS {
        let error = match read_once(&text, original_text, origin) {
            Ok(raw) if errors.is_empty() => return Ok(raw),
            Ok(_) => break,
            Err(e) => e,
        };
        // Once an entry is blanked out, a missing required field may be
        // the one we removed: not the operator's second mistake.
        if error.consequence && !errors.is_empty() {
            break;
        }
        errors.push(error.message);
        match error.blank {
            Some(line) => text = Cow::Owned(blank_entry(&text, line)),
            None => break,
        }
    }
    Err(errors)
}

/// Reads `text` (the original with entries blanked out); snippets quote
/// `original`, so an operator sees their own lines.
fn read_once(text: &str, original: &str, origin: &str) -> Result<RawConfig, ShapeError> {
    // The field path of a shape error (`upstream.connect_timeout`), which
    // the parser's own message lacks.
    let mut at = String::new();
    let parsed = serde_saphyr::with_deserializer_from_str(text, |de| {
        serde_path_to_error::deserialize::<_, RawConfig>(de).map_err(|e| {
            at = e.path().to_string();
            e.into_inner()
        })
    });
    parsed.map_err(|e| shape_error(&e, &at, original, origin))
}

fn shape_error(e: &Error, at: &str, original: &str, origin: &str) -> ShapeError {
    // `Spanned` values add a `.value` step the operator never wrote.
    let path = at.strip_suffix(".value").unwrap_or(at);
    let inner = e.without_snippet();
    let location = inner.location();
    let line = location.and_then(|l| usize::try_from(l.line()).ok());
    let plain = inner.render_with_options(serde_saphyr::render_options! {
        source_name: Some(origin),
        snippets: serde_saphyr::SnippetMode::Off,
    });
    let snippet = match location {
        Some(l) => format!("{plain}\n{}", quote(original, origin, l.line(), l.column())),
        None => plain.clone(),
    };
    let missing_field = matches!(inner, Error::SerdeMissingField { .. });
    if missing_field
        && (path.is_empty() || path == ".")
        && let Some(field) = plain.split("missing field `").nth(1).and_then(|r| r.split('`').next())
    {
        // The parser points at wherever it noticed, usually an unrelated
        // line; the field belongs to the top level.
        return ShapeError {
            message: format!("the top level is missing the required field `{field}`"),
            blank: None,
            consequence: true,
        };
    }
    let expected = expected_form(inner);
    let message = match (path.is_empty() || path == ".", expected) {
        (true, None) => snippet,
        (true, Some(expected)) => format!("{expected}\n{snippet}"),
        (false, None) => format!("at `{path}`: {snippet}"),
        (false, Some(expected)) => format!("at `{path}`: {expected}\n{snippet}"),
    };
    let recoverable = matches!(
        inner,
        Error::Unexpected { .. }
            | Error::InvalidScalar { .. }
            | Error::InvalidBooleanStrict { .. }
            | Error::NullIntoString { .. }
            | Error::SerdeInvalidType { .. }
            | Error::SerdeInvalidValue { .. }
            | Error::SerdeInvalidLength { .. }
            | Error::SerdeUnknownVariant { .. }
            | Error::SerdeUnknownField { .. }
            | Error::DuplicateMappingKey { .. }
    );
    ShapeError {
        message,
        blank: line.filter(|_| recoverable),
        consequence: missing_field || matches!(inner, Error::Eof { .. }),
    }
}

/// What the field wants, in the operator's terms, where the parser's
/// wording ("expected string scalar", "invalid boolean") names a Rust type.
fn expected_form(e: &Error) -> Option<&'static str> {
    match e {
        Error::InvalidBooleanStrict { .. } => Some("expected true or false"),
        Error::Unexpected { expected, .. } if expected.contains("str") => {
            Some("expected one value (a duration such as `2s`, an address, a URL, a name), not a list or a mapping")
        }
        Error::Unexpected { expected, .. } if expected.contains("bool") => Some("expected true or false"),
        Error::Unexpected { expected, .. } if expected.contains("sequence") => {
            Some("expected a list (`[a, b]` or `- a` lines)")
        }
        Error::Unexpected { expected, .. } if expected.contains("mapping") => {
            Some("expected a mapping (`key: value` lines)")
        }
        Error::InvalidScalar { ty, .. } if ty.contains("bool") => Some("expected true or false"),
        Error::InvalidScalar { ty, .. } if ty.starts_with('u') || ty.starts_with('i') => {
            Some("expected a whole number")
        }
        _ => None,
    }
}

/// Line `line` of `text` with a caret under `column` (both 1-based), as
/// compilers quote source.
fn quote(text: &str, origin: &str, line: u64, column: u64) -> String {
    let number = line.to_string();
    let pad = " ".repeat(number.len());
    let source = usize::try_from(line.saturating_sub(1))
        .ok()
        .and_then(|i| text.lines().nth(i))
        .unwrap_or_default();
    let caret = " ".repeat(usize::try_from(column.saturating_sub(1)).unwrap_or(0));
    format!("{pad}--> {origin}:{line}:{column}\n{pad} |\n{number} | {source}\n{pad} | {caret}^")
}

/// `text` with line `line` (1-based) and the lines nested under it (more
/// indented, or blank) replaced by empty lines.
fn blank_entry(text: &str, line: usize) -> String {
    let indent = |l: &str| l.len() - l.trim_start_matches(' ').len();
    let mut out = String::with_capacity(text.len());
    let mut entry_indent = None;
    for (i, l) in text.split_inclusive('\n').enumerate() {
        let newline = if l.ends_with('\n') { "\n" } else { "" };
        let body = l.trim_end_matches(['\n', '\r']);
        let blank = match entry_indent {
            _ if i + 1 == line => {
                entry_indent = Some(indent(body));
                true
            }
            Some(n) if body.trim().is_empty() || indent(body) > n => true,
            Some(_) => {
                entry_indent = None;
                false
            }
            None => false,
        };
        out.push_str(if blank { newline } else { l });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = "upstream: { url: \"http://127.0.0.1:3000\" }\nauth:\n  issuers: []\n";

    fn errors(yaml: &str) -> Vec<String> {
        match read(yaml, "t.yaml") {
            Ok(_) => Vec::new(),
            Err(e) => e,
        }
    }

    #[test]
    fn every_shape_error_is_reported_with_its_field_and_form() {
        let yaml = format!(
            "{BASE}limits:\n  max_connections: many\n  idle_timeout: [2s]\nroutes:\n  - path: /x\n    public: \"yes please\"\n    surprise: 1\n  - path: /y\n    public: true\n"
        );
        let e = errors(&yaml);
        assert_eq!(e.len(), 4, "{e:#?}");
        assert!(
            e[0].starts_with("at `limits.max_connections`: expected a whole number"),
            "{}",
            e[0]
        );
        assert!(
            e[1].starts_with("at `limits.idle_timeout`: expected one value"),
            "{}",
            e[1]
        );
        assert!(
            e[2].starts_with("at `routes[0].public`: expected true or false"),
            "{}",
            e[2]
        );
        assert!(e[3].contains("surprise"), "{}", e[3]);
        // Line numbers and quoted lines are the file's, not the blanked copy's.
        assert!(e[2].contains("t.yaml:9:13"), "{}", e[2]);
        assert!(
            e[2].contains("9 |     public: \"yes please\"\n  |             ^"),
            "{}",
            e[2]
        );
    }

    #[test]
    fn a_blanked_required_field_is_not_a_second_error() {
        let yaml = "upstream: { url: [x] }\nauth:\n  issuers: []\n";
        let e = errors(yaml);
        assert_eq!(e.len(), 1, "{e:#?}");
        assert!(e[0].starts_with("at `upstream"), "{}", e[0]);
    }

    #[test]
    fn a_syntax_error_ends_the_reading() {
        // What the streaming parser met before the syntax error is reported
        // too; nothing after it is.
        let e = errors("upstream: { url: \"http://x\" }\nauth:\n  issuers: [\nroutes: 7\n");
        let last = e.last().map(String::as_str).unwrap_or_default();
        assert!(last.contains("unclosed bracket"), "{e:#?}");
        let again = errors("upstream: { url: \"http://x\" }\nauth:\n  issuers: [\n");
        assert_eq!(again.len(), 1, "{again:#?}");
        assert!(again[0].contains("unclosed bracket"), "{again:#?}");
    }

    #[test]
    fn a_missing_top_level_field_is_named() {
        let e = errors("auth:\n  issuers: []\nrevocation: {}\n");
        assert_eq!(e, ["the top level is missing the required field `upstream`"]);
    }

    #[test]
    fn blanking_takes_the_nested_lines_and_keeps_the_numbering() {
        let text = "a:\n  b: 1\n  c:\n    - x\n\n  d: 2\ne: 3\n";
        assert_eq!(blank_entry(text, 3), "a:\n  b: 1\n\n\n\n  d: 2\ne: 3\n");
        assert_eq!(blank_entry(text, 1), "\n\n\n\n\n\ne: 3\n");
    }
}
