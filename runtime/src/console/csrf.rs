//! CSRF protection: every form that changes something carries a token bound to the
//! browser's session (the MAC of its session cookie under the per-process key), and a POST
//! made with the session cookie is refused (403) without it. A page of another site cannot
//! read the token, so it cannot forge the form; the cookie is `SameSite=Strict` besides.

use super::auth::{Keys, Viewer, hex, unhex};

/// The form field that carries the token.
pub(crate) const FIELD: &str = "csrf";

/// The token the forms of `viewer`'s pages carry: `None` for a viewer whose requests a
/// browser cannot be tricked into sending (a Bearer header) or who cannot act.
pub(crate) fn token(keys: &Keys, viewer: &Viewer) -> Option<String> {
    match viewer {
        Viewer::Session(session) => Some(hex(&keys.tag("csrf", session.as_bytes()))),
        Viewer::Bearer | Viewer::Anonymous => None,
    }
}

/// Whether a POST by `viewer` carrying `given` passes: a session's must carry its token.
pub(crate) fn passes(keys: &Keys, viewer: &Viewer, given: Option<&str>) -> bool {
    match viewer {
        Viewer::Session(session) => given
            .and_then(unhex)
            .is_some_and(|tag| keys.verify("csrf", session.as_bytes(), &tag)),
        Viewer::Bearer => true,
        Viewer::Anonymous => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_token_is_bound_to_the_session() {
        let keys = Keys::new(Some("t")).unwrap();
        let one = Viewer::Session(keys.new_session(0).unwrap());
        let two = Viewer::Session(keys.new_session(0).unwrap());
        let token = token(&keys, &one).unwrap();
        assert!(passes(&keys, &one, Some(&token)));
        assert!(
            !passes(&keys, &two, Some(&token)),
            "another session's token"
        );
        assert!(!passes(&keys, &one, None));
        assert!(!passes(&keys, &one, Some("")));
        assert!(!passes(&keys, &Viewer::Anonymous, Some(&token)));
        assert!(passes(&keys, &Viewer::Bearer, None));
    }
}
