//! The one mapping from use-case errors to gRPC status codes. Database detail is logged with its
//! cause chain and never returned to the caller.

use tonic::{Code, Status};

use crate::app::AppError;

impl From<AppError> for Status {
    fn from(err: AppError) -> Self {
        match err {
            AppError::InvalidArgument(message) => Status::new(Code::InvalidArgument, message),
            AppError::NotFound(message) => Status::new(Code::NotFound, message),
            AppError::AlreadyExists(message) => Status::new(Code::AlreadyExists, message),
            AppError::FailedPrecondition(message) | AppError::NotReady(message) => {
                Status::new(Code::FailedPrecondition, message)
            }
            AppError::Conflict(message) => Status::new(Code::Aborted, message),
            AppError::Unavailable(message) => Status::new(Code::Unavailable, message),
            AppError::Database(source) => {
                let unavailable = matches!(
                    source,
                    sea_orm::DbErr::ConnectionAcquire(_) | sea_orm::DbErr::Conn(_)
                );
                tracing::error!(error = ?source, "database error");
                if unavailable {
                    Status::new(
                        Code::Unavailable,
                        "the database is unavailable; retry later",
                    )
                } else {
                    Status::new(Code::Internal, "internal error; it has been logged")
                }
            }
        }
    }
}
