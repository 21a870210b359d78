//! The use-case boundary's one error type. Every variant says which gRPC code it becomes; the
//! mapping itself lives once in `grpc::status`. Messages are written for the caller: they name
//! the field or record and say what to do. Database detail stays in the logs.

use sea_orm::{DbErr, SqlErr};

use crate::db::DbError;

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// Malformed or impossible input → `INVALID_ARGUMENT`.
    #[error("{0}")]
    InvalidArgument(String),
    /// A named record does not exist → `NOT_FOUND`.
    #[error("{0}")]
    NotFound(String),
    /// A record with that key exists already → `ALREADY_EXISTS`.
    #[error("{0}")]
    AlreadyExists(String),
    /// The request is well-formed but the system's state forbids it → `FAILED_PRECONDITION`.
    #[error("{0}")]
    FailedPrecondition(String),
    /// What the request needs does not exist yet (a gateway publishes a day's statement the
    /// next morning); the same request succeeds later, so schedulers retry it →
    /// `FAILED_PRECONDITION`.
    #[error("{0}")]
    NotReady(String),
    /// A gateway did not answer conclusively; retrying with the same request is safe →
    /// `UNAVAILABLE`.
    #[error("{0}")]
    Unavailable(String),
    /// A concurrent request won a race; retrying is safe → `ABORTED`.
    #[error("{0}")]
    Conflict(String),
    /// The database failed → `UNAVAILABLE` or `INTERNAL`; the cause is logged, never returned.
    #[error("database error")]
    Database(#[source] DbErr),
}

pub type AppResult<T> = Result<T, AppError>;

impl AppError {
    pub fn invalid(field: &str, reason: impl std::fmt::Display) -> Self {
        Self::InvalidArgument(format!("{field}: {reason}"))
    }

    /// Whether the error came from a unique key, i.e. a concurrent writer got there first.
    pub fn is_unique_violation(&self) -> bool {
        matches!(self, Self::Database(err) if is_unique_violation(err))
    }
}

impl From<DbErr> for AppError {
    fn from(err: DbErr) -> Self {
        Self::Database(err)
    }
}

/// The database adapter's refusals mapped once: a corrupt row stays an internal database
/// error (its detail logged, never returned), the typed refusals keep the codes they answer.
impl From<DbError> for AppError {
    fn from(err: DbError) -> Self {
        match err {
            DbError::Database(err) => Self::Database(err),
            corrupt @ DbError::Corrupt(_) => Self::Database(DbErr::Custom(corrupt.to_string())),
            DbError::NotFound(message) => Self::NotFound(message),
            DbError::Refused(message) => Self::FailedPrecondition(message),
            DbError::OutOfRange(message) => Self::InvalidArgument(message),
        }
    }
}

/// A unique-key violation becomes the typed outcome `duplicate` builds (the caller knows which
/// key it was); any other database error stays a database error.
pub fn unique_or(err: DbErr, duplicate: impl FnOnce() -> AppError) -> AppError {
    if is_unique_violation(&err) {
        duplicate()
    } else {
        AppError::Database(err)
    }
}

pub fn is_unique_violation(err: &DbErr) -> bool {
    matches!(err.sql_err(), Some(SqlErr::UniqueConstraintViolation(_)))
}

macro_rules! invalid_from {
    ($($ty:ty),* $(,)?) => {$(
        impl From<$ty> for AppError {
            fn from(err: $ty) -> Self {
                Self::InvalidArgument(err.to_string())
            }
        }
    )*};
}

invalid_from!(
    crate::domain::money::MoneyError,
    crate::domain::calendar::CalendarError,
    crate::domain::tariff::TariffError,
);
