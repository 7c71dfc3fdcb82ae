//! Who is asking: the console's token (a `Bearer` header, or the session cookie a login
//! sets), or an anonymous reader where read-only access without the token is enabled.
//!
//! The token is never compared as text: both it and the candidate are MACed with a key
//! drawn at start, and the tags compared in constant time, so neither the length nor a
//! prefix of the token shows in how long a refusal takes. A session cookie is the time it
//! was issued and a random nonce, with their MAC under the same key: it is good for
//! [`SESSION_HOURS`] hours, and never past the process.

use axum::http::{HeaderMap, header};
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// The session cookie's name.
pub(crate) const COOKIE: &str = "tickguard_console";

/// How long a session lasts: a working day, so that a cookie left in a browser (or
/// copied from it) does not open the console for good.
pub(crate) const SESSION_HOURS: i64 = 12;

/// What a request is allowed to do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Viewer {
    /// No token: may read, where anonymous reading is enabled; never act.
    Anonymous,
    /// The token in an `Authorization: Bearer` header (a script): may read and act; a
    /// browser never sends the header on its own, so its forms need no CSRF token.
    Bearer,
    /// A browser's session cookie (this value): may read, and act with the CSRF token
    /// bound to it.
    Session(String),
}

impl Viewer {
    /// Whether the viewer may pause, resume, trigger and re-run.
    pub(crate) fn may_act(&self) -> bool {
        !matches!(self, Self::Anonymous)
    }
}

/// The per-process key, and the tag of the token.
pub(crate) struct Keys {
    key: [u8; 32],
    token_tag: Option<Vec<u8>>,
}

impl Keys {
    /// A fresh random key; `token` is the one that grants access (`None`: nobody acts).
    pub(crate) fn new(token: Option<&str>) -> std::io::Result<Self> {
        let mut key = [0_u8; 32];
        getrandom::fill(&mut key).map_err(|e| std::io::Error::other(e.to_string()))?;
        let mut keys = Self {
            key,
            token_tag: None,
        };
        keys.token_tag = token.map(|t| keys.tag("token", t.as_bytes()));
        Ok(keys)
    }

    /// The MAC of `data` under the key, for `purpose`.
    fn mac(&self, purpose: &str, data: &[u8]) -> HmacSha256 {
        #[allow(clippy::expect_used)] // HMAC takes a key of any length
        let mut mac = HmacSha256::new_from_slice(&self.key).expect("HMAC accepts any key");
        mac.update(purpose.as_bytes());
        mac.update(b"\0");
        mac.update(data);
        mac
    }

    /// The tag of `data` for `purpose`.
    pub(crate) fn tag(&self, purpose: &str, data: &[u8]) -> Vec<u8> {
        self.mac(purpose, data).finalize().into_bytes().to_vec()
    }

    /// Whether `tag` is the tag of `data` for `purpose` (compared in constant time).
    pub(crate) fn verify(&self, purpose: &str, data: &[u8], tag: &[u8]) -> bool {
        self.mac(purpose, data).verify_slice(tag).is_ok()
    }

    /// Whether `given` is the token.
    pub(crate) fn token_matches(&self, given: &str) -> bool {
        self.token_tag
            .as_ref()
            .is_some_and(|tag| self.verify("token", given.as_bytes(), tag))
    }

    /// A new session cookie value, issued at `now` (Unix seconds): `now-nonce.tag`.
    pub(crate) fn new_session(&self, now: i64) -> std::io::Result<String> {
        let mut nonce = [0_u8; 16];
        getrandom::fill(&mut nonce).map_err(|e| std::io::Error::other(e.to_string()))?;
        Ok(self.session(&format!("{now}-{}", hex(&nonce))))
    }

    /// The cookie value of session `id`: `id.tag`.
    fn session(&self, id: &str) -> String {
        format!("{id}.{}", hex(&self.tag("session", id.as_bytes())))
    }

    /// Whether `value` is a session cookie this process set less than [`SESSION_HOURS`]
    /// before `now` (Unix seconds).
    pub(crate) fn session_valid(&self, value: &str, now: i64) -> bool {
        let Some((id, tag)) = value.split_once('.') else {
            return false;
        };
        let signed = unhex(tag).is_some_and(|tag| self.verify("session", id.as_bytes(), &tag));
        let issued = id
            .split_once('-')
            .and_then(|(at, _)| at.parse::<i64>().ok());
        signed && issued.is_some_and(|at| (0..SESSION_HOURS * 3_600).contains(&(now - at)))
    }

    /// Who sent `headers`: the token as a Bearer header, a valid session cookie, or (where
    /// `anonymous_read`) nobody. `None`: refused, the same for a wrong token as a missing
    /// one.
    pub(crate) fn viewer(&self, headers: &HeaderMap, anonymous_read: bool) -> Option<Viewer> {
        let now = chrono::Utc::now().timestamp();
        let bearer = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split_once(' '))
            // The scheme is case-insensitive (RFC 9110): `bearer` is `Bearer`.
            .and_then(|(scheme, token)| scheme.eq_ignore_ascii_case("bearer").then_some(token));
        if let Some(token) = bearer {
            // A header that names a token is judged by it, never waved through as anonymous.
            return self.token_matches(token.trim()).then_some(Viewer::Bearer);
        }
        if let Some(session) = cookie(headers).filter(|s| self.session_valid(s, now)) {
            return Some(Viewer::Session(session));
        }
        anonymous_read.then_some(Viewer::Anonymous)
    }
}

/// The session cookie's value in `headers`, if any.
fn cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value.to_owned())
}

/// `bytes` as lower-case hex.
pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The bytes of a hex text; `None` if it is not hex.
pub(crate) fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn headers(name: header::HeaderName, value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(name, HeaderValue::from_str(value).unwrap());
        headers
    }

    #[test]
    fn the_token_and_sessions_are_checked() {
        let keys = Keys::new(Some("s3cret")).unwrap();
        assert!(keys.token_matches("s3cret"));
        for wrong in ["", "s3cre", "s3cret ", "S3CRET", "s3cretx"] {
            assert!(!keys.token_matches(wrong), "{wrong:?}");
        }
        let now = chrono::Utc::now().timestamp();
        let session = keys.new_session(now).unwrap();
        assert!(keys.session_valid(&session, now));
        let other = Keys::new(Some("s3cret")).unwrap();
        assert!(
            !other.session_valid(&session, now),
            "a session of another process"
        );
        assert!(!keys.session_valid("00.00", now));
        let lifetime = SESSION_HOURS * 3_600;
        assert!(keys.session_valid(&session, now + lifetime - 1));
        assert!(!keys.session_valid(&session, now + lifetime), "expired");
        assert!(!keys.session_valid(&session, now - 1), "issued later");
        let (id, tag) = session.split_once('.').unwrap();
        let older = id.replacen(&now.to_string(), &(now + 1).to_string(), 1);
        assert!(
            !keys.session_valid(&format!("{older}.{tag}"), now + 2),
            "a time changed under its tag"
        );
        assert!(!keys.session_valid(&keys.session("nonce"), now), "no time");
        for scheme in ["Bearer", "bearer", "BEARER"] {
            let bearer = headers(header::AUTHORIZATION, &format!("{scheme} s3cret"));
            assert_eq!(
                keys.viewer(&bearer, false),
                Some(Viewer::Bearer),
                "{scheme}"
            );
        }
        let wrong = headers(header::AUTHORIZATION, "Bearer nope");
        assert_eq!(
            keys.viewer(&wrong, true),
            None,
            "a wrong token is never anonymous"
        );
        let cookie = headers(header::COOKIE, &format!("a=b; {COOKIE}={session}"));
        assert_eq!(keys.viewer(&cookie, false), Some(Viewer::Session(session)));
        assert_eq!(keys.viewer(&HeaderMap::new(), false), None);
        assert_eq!(
            keys.viewer(&HeaderMap::new(), true),
            Some(Viewer::Anonymous)
        );
        let nobody = Keys::new(None).unwrap();
        assert!(!nobody.token_matches(""));
    }
}
