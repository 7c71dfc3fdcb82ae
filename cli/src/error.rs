//! What the command prints when it fails, and the exit code.

use std::fmt;

use tickguard::store::StoreError;

/// A command that failed: one sentence, and a hint where one helps. Exit code 1.
#[derive(Debug)]
pub(crate) struct Failure {
    /// What went wrong, as a sentence.
    pub(crate) message: String,
    /// The underlying errors, outermost first (a driver's), one line each.
    pub(crate) causes: Vec<String>,
    /// What to try.
    pub(crate) hint: Option<String>,
}

impl Failure {
    /// A failure without a hint.
    pub(crate) fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            causes: Vec::new(),
            hint: None,
        }
    }

    /// The same failure, with a hint.
    pub(crate) fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "error: {}", self.message)?;
        for cause in &self.causes {
            write!(f, "\n  cause: {cause}")?;
        }
        if let Some(hint) = &self.hint {
            write!(f, "\n  hint: {hint}")?;
        }
        Ok(())
    }
}

impl From<StoreError> for Failure {
    fn from(e: StoreError) -> Self {
        let mut failure = Self::new(e.to_string());
        // The causes of an unavailable store, by their Display (never their Debug), each
        // unless the sentence or a cause before it already says it.
        let mut source = std::error::Error::source(&e);
        while let Some(cause) = source {
            let text = cause.to_string();
            let said =
                failure.message.contains(&text) || failure.causes.iter().any(|c| c.contains(&text));
            if !text.is_empty() && !said {
                failure.causes.push(text);
            }
            source = cause.source();
        }
        failure
    }
}

/// Replaces every occurrence of the secrets in `text` by `***`.
pub(crate) fn redact(text: &str, secrets: &[String]) -> String {
    secrets
        .iter()
        .filter(|s| !s.is_empty())
        .fold(text.to_owned(), |t, s| t.replace(s.as_str(), "***"))
}

/// The secrets of a store URL, as written and percent-decoded, so that no message can show
/// them: the password of its user part (`scheme://user:password@host/…`, up to the last
/// `@`, so a password with an unescaped `/` counts whole), and the value of each query
/// parameter that names a password, key or token (`?password=…`, `sslpassword`).
pub(crate) fn url_secrets(url: &str) -> Vec<String> {
    let Some((_, rest)) = url.split_once("://") else {
        return Vec::new();
    };
    let mut raw = Vec::new();
    if let Some((userinfo, _)) = rest.rsplit_once('@')
        && let Some((_, password)) = userinfo.split_once(':')
    {
        raw.push(password);
    }
    if let Some((_, query)) = rest.split_once('?') {
        raw.extend(query.split('&').filter_map(|pair| {
            let (key, value) = pair.split_once('=')?;
            let key = key.to_ascii_lowercase();
            ["pass", "secret", "key", "token"]
                .iter()
                .any(|word| key.contains(word))
                .then_some(value)
        }));
    }
    let mut secrets = Vec::new();
    for secret in raw.into_iter().filter(|s| !s.is_empty()) {
        let decoded = percent_decode(secret);
        if decoded != secret {
            secrets.push(decoded);
        }
        secrets.push(secret.to_owned());
    }
    // Longest first, so a password that contains another is replaced whole.
    secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
    secrets
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(b)) => {
                out.push(b);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_and_hides_passwords() {
        let secrets = url_secrets("postgres://u:hunter%232@127.0.0.1:1/db?sslmode=disable");
        assert_eq!(secrets, ["hunter%232", "hunter#2"]);
        assert_eq!(
            redact("no: postgres://u:hunter%232@h and hunter#2", &secrets),
            "no: postgres://u:***@h and ***"
        );
        assert!(url_secrets("postgres://u@host/db").is_empty());
        assert!(url_secrets("sqlite:///tmp/x.db").is_empty());
    }
}
