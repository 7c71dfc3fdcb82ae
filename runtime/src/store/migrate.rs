//! One migration loop for the SQL stores: each database implements [`Migrate`] (its
//! migrations table, its lock, how it applies a step), and [`run`] brings the tables to the
//! build's latest version, or refuses tables a newer build migrated.

use sqlx::Error as SqlxError;

/// One step of a store's schema.
pub(crate) struct Migration {
    /// Its number: the steps apply in increasing order, each once.
    pub(crate) version: i32,
    /// What it does, recorded with it.
    pub(crate) description: &'static str,
    /// The statements.
    pub(crate) sql: &'static str,
}

/// Why the tables could not be set up.
#[derive(Debug)]
pub(crate) enum MigrateError {
    /// The database failed.
    Db(SqlxError),
    /// The tables are at a version this build does not know.
    Newer {
        /// The tables' version.
        found: i32,
        /// The latest version this build knows.
        known: i32,
    },
}

impl From<SqlxError> for MigrateError {
    fn from(e: SqlxError) -> Self {
        Self::Db(e)
    }
}

/// A database's side of the migration loop, on one connection.
pub(crate) trait Migrate {
    /// The tables' version read without the lock, for the common start where every step is
    /// applied already; `None` when unknown (no migrations table, or no cheap way to tell).
    async fn version_unlocked(&mut self) -> Result<Option<i32>, SqlxError>;

    /// Takes the lock that makes concurrent startups apply each step once, and begins the
    /// transaction the steps run in.
    async fn lock(&mut self) -> Result<(), SqlxError>;

    /// Creates the migrations table (and its schema) if missing.
    async fn ensure_migrations_table(&mut self) -> Result<(), SqlxError>;

    /// The tables' version under the lock: 0 before the first step.
    async fn version(&mut self) -> Result<i32, SqlxError>;

    /// Applies one step and records it.
    async fn apply(&mut self, migration: &Migration) -> Result<(), SqlxError>;

    /// Ends the transaction (commits if `commit`, else rolls back) and releases the lock.
    async fn unlock(&mut self, commit: bool) -> Result<(), SqlxError>;
}

/// Brings the tables to the latest of `migrations` (oldest first).
pub(crate) async fn run(
    db: &mut impl Migrate,
    migrations: &[Migration],
) -> Result<(), MigrateError> {
    let latest = migrations.last().map_or(0, |m| m.version);
    if db.version_unlocked().await? == Some(latest) {
        return Ok(());
    }
    db.lock().await?;
    let migrated = apply_missing(db, migrations, latest).await;
    let unlocked = db.unlock(migrated.is_ok()).await;
    migrated?;
    unlocked?;
    Ok(())
}

async fn apply_missing(
    db: &mut impl Migrate,
    migrations: &[Migration],
    latest: i32,
) -> Result<(), MigrateError> {
    db.ensure_migrations_table().await?;
    let found = db.version().await?;
    if found > latest {
        return Err(MigrateError::Newer {
            found,
            known: latest,
        });
    }
    for m in migrations.iter().filter(|m| m.version > found) {
        db.apply(m).await?;
    }
    Ok(())
}
