//! What a lease names, read from the server: the `Action` its payload holds
//! ([`action_of`]), and each message of the CAS checked against its digest.

use bazel_remote_apis::build::bazel::remote::execution::v2 as re;
use bazel_remote_apis::google::protobuf::Any;
use prost::Message as _;

use super::failed::{Failed, missing};
use crate::reapi::Reapi;

/// The `Action` a lease's payload holds (BuildGrid packs the `Action` itself, or its
/// digest).
pub async fn action_of(cas: &Reapi, payload: Option<&Any>) -> Result<re::Action, Failed> {
    let Some(any) = payload else {
        return Err(Failed::invalid("the lease has no payload".into()));
    };
    if any
        .type_url
        .ends_with("/build.bazel.remote.execution.v2.Action")
    {
        return re::Action::decode(any.value.as_slice())
            .map_err(|e| Failed::invalid(format!("the lease's Action does not decode ({e})")));
    }
    if any
        .type_url
        .ends_with("/build.bazel.remote.execution.v2.Digest")
    {
        let digest = re::Digest::decode(any.value.as_slice())
            .map_err(|e| Failed::invalid(format!("the lease's Digest does not decode ({e})")))?;
        return message(cas, &digest, "Action").await;
    }
    Err(Failed::invalid(format!(
        "the lease's payload is a {}, not an Action",
        any.type_url
    )))
}

/// One message from the CAS, checked against its digest.
pub(super) async fn message<M: prost::Message + Default>(
    cas: &Reapi,
    digest: &re::Digest,
    what: &str,
) -> Result<M, Failed> {
    let Some(bytes) = cas.blob(digest).await? else {
        return Err(missing(digest, what));
    };
    M::decode(bytes.as_slice())
        .map_err(|e| Failed::invalid(format!("the {what} {} does not decode ({e})", digest.hash)))
}
