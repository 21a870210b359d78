//! The database adapter's one error type. `db` sits below the use cases, so it cannot speak
//! their error (`app::AppError`); it says what went wrong in its own terms and `app` maps each
//! variant once (`impl From<DbError> for AppError` in `app::error`). A stored value the domain
//! cannot read is [`DbError::Corrupt`], never a default.

use sea_orm::{DbErr, SqlErr};

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// The database itself failed (connection, timeout, a constraint we do not name); the
    /// cause is logged, never returned → `AppError::Database`.
    #[error("database error")]
    Database(#[source] DbErr),
    /// A stored row that no longer parses: a bug or a tampered database, never caller input
    /// → `AppError::Database` (INTERNAL).
    #[error("corrupt {0}")]
    Corrupt(String),
    /// A row the caller named by key does not exist → `AppError::NotFound`.
    #[error("{0}")]
    NotFound(String),
    /// The write would break a rule the schema keeps (a prepayment below zero, a bill paid
    /// beyond its total); nothing was written → `AppError::FailedPrecondition`.
    #[error("{0}")]
    Refused(String),
    /// A value too large for its column → `AppError::InvalidArgument`.
    #[error("{0}")]
    OutOfRange(String),
}

pub type DbResult<T> = Result<T, DbError>;

impl DbError {
    /// Whether a unique key refused the write, i.e. a concurrent writer got there first.
    pub fn is_unique_violation(&self) -> bool {
        matches!(self, Self::Database(err)
            if matches!(err.sql_err(), Some(SqlErr::UniqueConstraintViolation(_))))
    }
}

impl From<DbErr> for DbError {
    fn from(err: DbErr) -> Self {
        Self::Database(err)
    }
}

/// A stored row that no longer parses (`what` names the row, `detail` why).
pub fn corrupt(what: &str, detail: impl std::fmt::Display) -> DbError {
    DbError::Corrupt(format!("{what}: {detail}"))
}
