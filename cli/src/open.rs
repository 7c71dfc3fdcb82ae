//! Opens the execution store a URL names, without creating or migrating its tables.

use std::sync::Arc;

use tickguard::store::{ExecutionStore, PostgresStore, SqliteStore};

use crate::error::Failure;

/// Opens the store at `url` (`postgres://…`, `postgresql://…`, `sqlite://…`); `schema` is
/// the Postgres schema of its tables. The tables must exist, at the version this build
/// knows: the command never creates or migrates them.
pub(crate) async fn open(url: &str, schema: &str) -> Result<Arc<dyn ExecutionStore>, Failure> {
    let scheme = url.split_once(':').map(|(s, _)| s.to_ascii_lowercase());
    match scheme.as_deref() {
        Some("postgres" | "postgresql") => {
            let store = PostgresStore::connect_existing(url, schema).await?;
            Ok(Arc::new(store))
        }
        Some("sqlite") => {
            let store = SqliteStore::open_existing(url).await?;
            Ok(Arc::new(store))
        }
        Some(other) => Err(Failure::new(format!(
            "the store URL's scheme `{other}` is not one tickguard can open"
        ))
        .hint("use postgres://user@host/database or sqlite://path/to/file.db")),
        None => Err(Failure::new("the store is not a URL").hint(
            "use postgres://user@host/database or sqlite://path/to/file.db (with --store or TICKGUARD_STORE)",
        )),
    }
}
