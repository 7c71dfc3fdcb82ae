//! What the PostgreSQL lock and store share (feature `postgres`): URL parsing, addresses and
//! descriptions without passwords, the first connection, and the driver's errors in plain
//! words. Helpers return messages; each backend wraps them in its own error type.

use std::{io, time::Duration};

use sqlx::{
    Connection, Error as SqlxError,
    postgres::{PgConnectOptions, PgConnection},
};

/// How long a backend's `connect` waits for the server before it reports it unreachable.
pub(crate) const STARTUP_TIMEOUT: Duration = Duration::from_secs(5);

/// How long an operation waits for a connection from a backend's own pool (a new one
/// included) before it fails: a dead server fails every operation within this.
pub(crate) const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(3);

/// The `application_name` of the connections the backends open, unless the URL sets one:
/// what `pg_stat_activity` shows for them.
const APPLICATION_NAME: &str = "tickguard";

/// A failure with what to tell the user and the driver's error, if there was one.
#[derive(Debug)]
pub(crate) struct Failure {
    /// What failed and what to check.
    pub(crate) message: String,
    /// The driver's error.
    pub(crate) source: Option<SqlxError>,
}

/// `name` as a quoted identifier: any text is safe to splice into a statement.
pub(crate) fn quote(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Someone without the advisory lock (a person at a `psql` prompt, say) created the object
/// at the same moment: what we wanted exists.
pub(crate) fn already_exists<T: Default>(e: SqlxError) -> Result<T, SqlxError> {
    match &e {
        // unique_violation (on the catalog), duplicate_table, duplicate_schema
        SqlxError::Database(db)
            if matches!(db.code().as_deref(), Some("23505" | "42P07" | "42P06")) =>
        {
            Ok(T::default())
        }
        _ => Err(e),
    }
}

/// Creates the schema `quoted` (a quoted identifier) if it is missing, in a statement of
/// its own, outside any transaction: the lock and the store set up their tables under
/// advisory locks of their own, so a lock and a store connecting at once to a new schema
/// both create it, and the one that loses the race gets a unique violation (23505) or
/// `duplicate_schema` (42P06), which inside a transaction would abort it. Here the loser
/// tries once more and finds it. A schema that exists is not created again, so a user
/// without the right to create schemas can use one made for it.
pub(crate) async fn create_schema(conn: &mut PgConnection, quoted: &str) -> Result<(), SqlxError> {
    let exists = sqlx::query_scalar::<_, bool>("SELECT to_regnamespace($1) IS NOT NULL")
        .bind(quoted)
        .fetch_one(&mut *conn)
        .await?;
    if exists {
        return Ok(());
    }
    let create = format!("CREATE SCHEMA IF NOT EXISTS {quoted}");
    let mut tried = false;
    loop {
        let created = sqlx::query(sqlx::AssertSqlSafe(create.as_str()))
            .persistent(false)
            .execute(&mut *conn)
            .await;
        match created {
            Ok(_) => return Ok(()),
            Err(SqlxError::Database(db))
                if !tried && matches!(db.code().as_deref(), Some("23505" | "42P06")) =>
            {
                tried = true;
            }
            Err(e) => return Err(e),
        }
    }
}

/// Whether `e` says the statement's connection is dead, so a fresh one may succeed.
pub(crate) fn connection_lost(e: &SqlxError) -> bool {
    match e {
        SqlxError::Io(_) => true,
        // connection_exception (class 08), admin_shutdown (pg_terminate_backend, a fast
        // shutdown), crash_shutdown, idle_session_timeout.
        SqlxError::Database(db) => db
            .code()
            .is_some_and(|c| c.starts_with("08") || matches!(&*c, "57P01" | "57P02" | "57P05")),
        _ => false,
    }
}

/// What failed, in plain words: the driver's message without its decoration.
pub(crate) fn reason(e: &SqlxError) -> String {
    match e {
        SqlxError::Io(io) if io.kind() == io::ErrorKind::ConnectionRefused => {
            "connection refused".to_owned()
        }
        SqlxError::Io(io) if io.kind() == io::ErrorKind::UnexpectedEof => {
            "the server closed the connection".to_owned()
        }
        SqlxError::Io(io) => io.to_string(),
        SqlxError::Database(db) => match db.code() {
            Some(code) => format!("{} (SQLSTATE {code})", db.message()),
            None => db.message().to_owned(),
        },
        SqlxError::Configuration(e) => e.to_string(),
        e => e.to_string(),
    }
}

/// What a failed operation's message ends with: `; is postgres running and reachable?` for
/// a lost server, `gone` (what to do) when the tables were dropped while the backend ran,
/// the grant to give on `objects` (`the lock table`) when the user lacks it, else nothing.
pub(crate) fn hint(e: &SqlxError, gone: &str, objects: &str) -> String {
    match e {
        SqlxError::PoolTimedOut | SqlxError::Io(_) => {
            "; is postgres running and reachable?".to_owned()
        }
        e if connection_lost(e) => "; is postgres running and reachable?".to_owned(),
        SqlxError::Database(db) => match db.code().as_deref() {
            // undefined_table, invalid_schema_name: dropped while we ran.
            Some("42P01" | "3F000") => {
                format!("; {gone}")
            }
            Some("42501") => {
                format!("; grant this user SELECT, INSERT, UPDATE, DELETE on {objects}")
            }
            _ => String::new(),
        },
        _ => String::new(),
    }
}

/// Parses a libpq URL, with an error that says what is wrong and never shows the password;
/// statements are logged at DEBUG (slow ones at WARN), see
/// [`statement_logging`](crate::store::sql::statement_logging).
pub(crate) fn parse_url(url: &str) -> Result<PgConnectOptions, String> {
    const EXPECTED: &str = "expected postgres://[user[:password]@]host[:port]/database";
    let scheme = url.split_once(':').map(|(scheme, _)| scheme);
    if !matches!(scheme, Some("postgres" | "postgresql")) {
        return Err(format!(
            "invalid PostgreSQL URL `{}`: the scheme must be postgres:// or postgresql://; \
             {EXPECTED}",
            redact(url)
        ));
    }
    let options: PgConnectOptions = url.parse().map_err(|e: SqlxError| {
        let reason = match &e {
            SqlxError::Configuration(source) => source.to_string(),
            e => e.to_string(),
        };
        format!(
            "invalid PostgreSQL URL `{}`: {reason}; {EXPECTED}",
            redact(url)
        )
    })?;
    let options = crate::store::sql::statement_logging(options);
    Ok(match options.get_application_name() {
        Some(_) => options,
        None => options.application_name(APPLICATION_NAME),
    })
}

/// Opens one connection for a backend's setup, waiting at most [`STARTUP_TIMEOUT`].
pub(crate) async fn connect(options: &PgConnectOptions) -> Result<PgConnection, Failure> {
    let addr = address(options);
    match tokio::time::timeout(STARTUP_TIMEOUT, PgConnection::connect_with(options)).await {
        Ok(Ok(conn)) => Ok(conn),
        Ok(Err(e)) => Err(cannot_reach(&addr, e)),
        Err(_) => Err(Failure {
            message: format!(
                "cannot reach PostgreSQL at {addr}: no answer within {} s; is the address \
                 right (a PostgreSQL server on that port?), and does a firewall drop the \
                 packets?",
                STARTUP_TIMEOUT.as_secs()
            ),
            source: None,
        }),
    }
}

/// The startup error: the server at `addr` could not be reached or refused us.
pub(crate) fn cannot_reach(addr: &str, e: SqlxError) -> Failure {
    let check = match &e {
        SqlxError::Io(io) if io.kind() == io::ErrorKind::ConnectionRefused => {
            "is postgres running, and listening on that address and port? (check the host \
             and port in the URL, the server's listen_addresses, and that a firewall lets the \
             connection through)"
        }
        SqlxError::Io(_) => "is the address right, and is postgres running there?",
        SqlxError::Tls(_) => {
            "tickguard builds sqlx without TLS: use sslmode=disable or prefer, or turn TLS on \
             by adding `sqlx = { version = \"0.9\", features = [\"tls-rustls\"] }` to your own \
             dependencies"
        }
        SqlxError::Protocol(_) => {
            "the server there does not speak the PostgreSQL protocol; is the port right?"
        }
        SqlxError::Database(db) => match db.code().as_deref() {
            // invalid_password, invalid_authorization_specification
            Some("28P01" | "28000") => {
                "check the user name and password in the URL \
                 (postgres://user:password@host:port/database) and the server's pg_hba.conf"
            }
            // invalid_catalog_name
            Some("3D000") => "create the database, or fix its name in the URL",
            // too_many_connections
            Some("53300") => "the server has no connection slot left (max_connections)",
            // cannot_connect_now
            Some("57P03") => "the server is starting up or shutting down; try again",
            _ => "check the URL and the server's log",
        },
        _ => "is the address right, and is postgres running there?",
    };
    Failure {
        message: format!("cannot reach PostgreSQL at {addr}: {}; {check}", reason(&e)),
        source: Some(e),
    }
}

/// `host:port/database` or `socket/database`, for errors.
pub(crate) fn address(options: &PgConnectOptions) -> String {
    // Without a database name, the server uses the user's name.
    let db = options.get_database().unwrap_or(options.get_username());
    let port = options.get_port();
    match options.get_socket() {
        Some(dir) => format!("{}/.s.PGSQL.{port}/{db}", dir.display()),
        // An IPv6 address, unless it came from a URL, which keeps its brackets.
        None if options.get_host().contains(':') && !options.get_host().starts_with('[') => {
            format!("[{}]:{port}/{db}", options.get_host())
        }
        None => format!("{}:{port}/{db}", options.get_host()),
    }
}

/// The server as a URL without the password, for logs.
pub(crate) fn describe(options: &PgConnectOptions) -> String {
    format!("postgres://{}@{}", options.get_username(), address(options))
}

/// `url` with the password replaced by `***`, for an error about a URL that did not parse.
fn redact(url: &str) -> String {
    crate::lock::redact_url(url, false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_passwords() {
        assert_eq!(
            redact("postgres://u:secret@h:1/db"),
            "postgres://u:***@h:1/db"
        );
        assert_eq!(redact("postgres://:secret@h"), "postgres://:***@h");
        assert_eq!(redact("postgres://u@h/db"), "postgres://u@h/db");
        assert_eq!(redact("postgres://h:1/db"), "postgres://h:1/db");
        assert_eq!(redact("not a url"), "not a url");
        assert_eq!(
            redact("postgres://u:pa/ss?w@h:1/db"),
            "postgres://u:***@h:1/db"
        );
        assert_eq!(
            redact("postgres://u@h/db?password=hunter2&sslmode=require&sslpassword=x"),
            "postgres://u@h/db?password=***&sslmode=require&sslpassword=***"
        );
    }

    #[test]
    fn describes_without_password() {
        let options = parse_url("postgres://user:secret@example.com:5433/app")
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(describe(&options), "postgres://user@example.com:5433/app");
        assert_eq!(options.get_application_name(), Some("tickguard"));
        let options = parse_url("postgresql://u@[::1]/app?application_name=mine")
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(describe(&options), "postgres://u@[::1]:5432/app");
        assert_eq!(options.get_application_name(), Some("mine"));
        let options = parse_url("postgres://u@h/app?password=hunter2&sslmode=disable")
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(describe(&options), "postgres://u@h:5432/app");
    }

    #[test]
    fn rejects_other_schemes_without_the_password() {
        for url in [
            "http://u:hunter2@127.0.0.1:5432/db",
            "127.0.0.1:5432",
            "postgres://u:hunter2@127.0.0.1:notaport/db",
            "postgres://u:hun/ter2@127.0.0.1:notaport/db",
            "postgres://u@127.0.0.1:notaport/db?password=hunter2",
        ] {
            let message = parse_url(url).err();
            let message = message.unwrap_or_else(|| panic!("{url} parsed"));
            assert!(
                message.starts_with("invalid PostgreSQL URL `"),
                "{url}: {message}"
            );
            assert!(
                !message.contains("hunter2") && !message.contains("ter2"),
                "{url}: {message}"
            );
        }
    }

    #[test]
    fn quotes_identifiers() {
        assert_eq!(quote("public"), "\"public\"");
        assert_eq!(quote("a\"b; drop"), "\"a\"\"b; drop\"");
    }
}
