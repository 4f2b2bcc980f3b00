//! One place that turns SDK errors into [`PortError`]s.

use aws_sdk_sfn::error::{ProvideErrorMetadata, SdkError};
use aws_smithy_runtime_api::http::Response;
use aws_smithy_types::error::display::DisplayErrorContext;
use break_glass_core::ports::{PortError, PortErrorKind};

/// Classifies an SDK error by its error code first and its HTTP status
/// second; dispatch failures and timeouts are transient.
pub fn classify<E>(service: &'static str, operation: &'static str, err: SdkError<E, Response>) -> PortError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let kind = match &err {
        SdkError::DispatchFailure(_) | SdkError::TimeoutError(_) | SdkError::ResponseError(_) => {
            PortErrorKind::Transient
        }
        SdkError::ConstructionFailure(_) => PortErrorKind::Invalid,
        _ => kind_of(err.code(), err.raw_response().map(|r| r.status().as_u16())),
    };
    let message = match err.message() {
        Some(m) => format!("{}: {m}", err.code().unwrap_or("error")),
        None => DisplayErrorContext(&err).to_string(),
    };
    PortError::new(kind, service, operation, message)
}

pub(crate) fn kind_of(code: Option<&str>, status: Option<u16>) -> PortErrorKind {
    match code.unwrap_or_default() {
        "ThrottlingException"
        | "Throttling"
        | "TooManyRequestsException"
        | "RequestLimitExceeded"
        | "ProvisionedThroughputExceededException"
        | "LimitExceededException"
        // A customer managed key's request quota (Step Functions' and
        // DynamoDB's spellings): the call did nothing and may be retried.
        | "KmsThrottlingException"
        | "KMSThrottlingException" => PortErrorKind::Throttled,
        // DynamoDB: a transaction in flight on the same item.
        "ConflictException" | "TransactionConflictException" => PortErrorKind::Conflict,
        "ResourceNotFoundException"
        | "ExecutionDoesNotExist"
        | "StateMachineDoesNotExist"
        | "NotFoundException"
        // IAM's spelling (GetPolicy of a policy that does not exist).
        | "NoSuchEntity"
        | "NotFound" => PortErrorKind::NotFound,
        "AccessDeniedException"
        | "AccessDenied"
        | "UnauthorizedException"
        | "ExpiredTokenException"
        | "UnrecognizedClientException"
        | "InvalidClientTokenId"
        // The key policy or grants refuse us: a deployment fault, not bad luck.
        | "KmsAccessDeniedException"
        | "KMSAccessDeniedException" => PortErrorKind::AccessDenied,
        "ValidationException"
        | "InvalidParameterException"
        | "InvalidName"
        | "InvalidArn"
        | "InvalidExecutionInput"
        | "BadRequestException" => PortErrorKind::Invalid,
        "InternalServerException"
        | "InternalServerError"
        | "InternalFailure"
        | "ServiceUnavailable"
        | "ServiceUnavailableException" => PortErrorKind::Transient,
        _ => match status {
            Some(429) => PortErrorKind::Throttled,
            Some(s) if s >= 500 => PortErrorKind::Transient,
            _ => PortErrorKind::Other,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_and_statuses_map_to_kinds() {
        assert_eq!(
            kind_of(Some("ThrottlingException"), Some(400)),
            PortErrorKind::Throttled
        );
        assert_eq!(
            kind_of(Some("ConflictException"), Some(409)),
            PortErrorKind::Conflict
        );
        assert_eq!(kind_of(Some("Weird"), Some(503)), PortErrorKind::Transient);
        // DynamoDB's names for the same things.
        for code in [
            "ProvisionedThroughputExceededException",
            "ThrottlingException",
            "RequestLimitExceeded",
        ] {
            assert_eq!(kind_of(Some(code), Some(400)), PortErrorKind::Throttled, "{code}");
        }
        assert_eq!(
            kind_of(Some("TransactionConflictException"), Some(400)),
            PortErrorKind::Conflict
        );
        assert_eq!(
            kind_of(Some("InternalServerError"), Some(500)),
            PortErrorKind::Transient
        );
        assert_eq!(kind_of(None, Some(429)), PortErrorKind::Throttled);
        // Step Functions encrypting input with a customer managed key.
        for code in ["KmsThrottlingException", "KMSThrottlingException"] {
            assert_eq!(kind_of(Some(code), Some(400)), PortErrorKind::Throttled, "{code}");
        }
        assert_eq!(
            kind_of(Some("KmsAccessDeniedException"), Some(400)),
            PortErrorKind::AccessDenied
        );
        assert_eq!(kind_of(Some("Weird"), Some(400)), PortErrorKind::Other);
    }
}
