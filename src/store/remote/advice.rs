//! What a remote's user is told to check or set, in the remote's own terms: one table
//! with a row per backend ([`advice`]), and the hint every bucket service shares
//! ([`BUCKET_MISSING`]).

use crate::config::RemoteKind;

/// Said of a bucket or container that does not exist (`remote-bucket-missing`).
pub(super) const BUCKET_MISSING: &str =
    "the bucket or container does not exist; create it or fix the name";

/// The hints for one backend.
pub(super) struct Advice {
    /// What to check when the service refused the credentials.
    pub denied: &'static str,
    /// What to set when no credentials were found at all (the bucket services' signers
    /// say so; S3's words where a backend has none of its own).
    pub missing: &'static str,
    /// Where the password goes in the URI, for a login a Redis server refused (`None`
    /// for the other backends).
    pub login: Option<&'static str>,
}

/// No credentials found, in S3's words, for every backend without words of its own.
const NO_CREDENTIALS: &str = "no credentials were found; set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, a profile, or run where instance credentials exist";

/// The hints for `kind`'s backend.
pub(super) fn advice(kind: &RemoteKind) -> Advice {
    let (denied, missing, login) = match kind {
        RemoteKind::S3 { .. } => (
            "the credentials were refused; check AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or AWS_PROFILE)",
            NO_CREDENTIALS,
            None,
        ),
        RemoteKind::Gcs { .. } => (
            "the credentials were refused; check GOOGLE_APPLICATION_CREDENTIALS (or anonymous=true for an emulator)",
            "no credentials were found; set GOOGLE_APPLICATION_CREDENTIALS, run where instance credentials exist, or add anonymous=true for an emulator",
            None,
        ),
        RemoteKind::Azblob { .. } => (
            "the credentials were refused; check account= (or AZURE_STORAGE_ACCOUNT) and AZURE_STORAGE_KEY",
            "no credentials were found; set AZURE_STORAGE_KEY (and account= or AZURE_STORAGE_ACCOUNT)",
            None,
        ),
        RemoteKind::Redis { .. } => (
            "Redis refused the login; check the password in redis://:PASSWORD@host:port/db",
            NO_CREDENTIALS,
            Some(
                "put the password in the URI as redis://:PASSWORD@host:port/db (or redis://USER:PASSWORD@… for an ACL user)",
            ),
        ),
        RemoteKind::RedisCluster { .. } => (
            "Redis refused the login; check the password in redis+cluster://:PASSWORD@host:port,host:port,…",
            NO_CREDENTIALS,
            Some(
                "put the password in the URI as redis+cluster://:PASSWORD@host:port,host:port,… (or redis+cluster://USER:PASSWORD@… for an ACL user)",
            ),
        ),
        RemoteKind::Memcached { .. } => ("memcached refused the request", NO_CREDENTIALS, None),
        RemoteKind::Webdav { .. } => (
            "the WebDAV server refused the login; check webdav://USER:PASSWORD@host/path",
            NO_CREDENTIALS,
            None,
        ),
        RemoteKind::Ghac => (
            "the cache service refused the token; run inside a GitHub Actions job (ACTIONS_RUNTIME_TOKEN)",
            NO_CREDENTIALS,
            None,
        ),
        RemoteKind::Fs { .. } => (
            "the folder is not readable or writable by this user",
            NO_CREDENTIALS,
            None,
        ),
        RemoteKind::Reapi { .. } => (
            "the server refused the request; set XCACHE_REMOTE_TOKEN to a token it accepts",
            NO_CREDENTIALS,
            None,
        ),
    };
    Advice {
        denied,
        missing,
        login,
    }
}
