//! Why an action could not be run ([`Failed`]): the status its lease is completed
//! with, a `google.rpc.Code` and a message, never a made-up result.

use bazel_remote_apis::build::bazel::remote::execution::v2 as re;

use crate::errors::CacheError;

/// Why an action could not be run: the lease is completed with this status (the
/// client compiles locally), never with a made-up result.
#[derive(Debug)]
pub struct Failed {
    /// A `google.rpc.Code`.
    pub code: i32,
    pub message: String,
}

impl Failed {
    pub(super) fn precondition(message: String) -> Failed {
        Failed { code: 9, message }
    }

    pub(super) fn invalid(message: String) -> Failed {
        Failed { code: 3, message }
    }

    pub(super) fn internal(message: String) -> Failed {
        Failed { code: 13, message }
    }
}

impl From<CacheError> for Failed {
    fn from(e: CacheError) -> Failed {
        // UNAVAILABLE: the server retries the lease elsewhere.
        Failed {
            code: 14,
            message: e.to_string(),
        }
    }
}

/// A blob the action names that the CAS does not have.
pub(super) fn missing(digest: &re::Digest, what: &str) -> Failed {
    Failed::precondition(format!(
        "the {what} blob {}/{} is missing from the CAS",
        digest.hash, digest.size_bytes
    ))
}
