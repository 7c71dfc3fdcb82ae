//! What the console answers when it cannot show what was asked: an HTML page with a status
//! and one sentence. A store that cannot be reached is a 503 whose page names no URL (the
//! cause goes to the log, which never holds a password either).

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use super::pages;
use crate::store::StoreError;

/// A request the console could not serve.
#[derive(Debug)]
pub(crate) enum Problem {
    /// No token, or a wrong one: the same answer for both (401).
    Unauthorized,
    /// A POST without the CSRF token of its session, with a wrong one, or sent by a page of
    /// another site (403).
    Forbidden,
    /// An unknown job, execution or page (404).
    NotFound(String),
    /// The store refused the request: a re-run of a running execution (409).
    Refused(String),
    /// The request's form was not understood (400).
    BadRequest(String),
    /// The store could not be asked (503).
    Unavailable,
}

impl From<StoreError> for Problem {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound { message } => Self::NotFound(message),
            StoreError::Refused { message } => Self::Refused(message),
            e @ StoreError::Fenced { .. } => Self::Refused(e.to_string()),
            e => {
                tracing::warn!(error = ?e, "console: the execution store did not answer");
                Self::Unavailable
            }
        }
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let (status, title, text) = match self {
            Self::Unauthorized => return pages::login(StatusCode::UNAUTHORIZED, false),
            Self::Forbidden => (
                StatusCode::FORBIDDEN,
                "Refused",
                "This form was not sent from a page of this console with the CSRF token of \
                 your session. Open the page again and resend it from there."
                    .to_owned(),
            ),
            Self::NotFound(text) => (StatusCode::NOT_FOUND, "Not found", text),
            Self::Refused(text) => (StatusCode::CONFLICT, "Refused", text),
            Self::BadRequest(text) => (StatusCode::BAD_REQUEST, "Bad request", text),
            Self::Unavailable => (
                StatusCode::SERVICE_UNAVAILABLE,
                "Store unavailable",
                "The execution store could not be reached: the console shows nothing until it \
                 answers again. The scheduler's log and `tickguard jobs` say more; reload this \
                 page to try again."
                    .to_owned(),
            ),
        };
        (status, pages::message(title, &text)).into_response()
    }
}
