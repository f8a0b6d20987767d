//! How long a remote request may stall: the default, the longer bound uploads get,
//! and `XCACHE_REMOTE_TIMEOUT` parsed ([`parse_timeout`]).

/// How long a request may stall unless `XCACHE_REMOTE_TIMEOUT` says otherwise: long
/// enough for a busy server on the other side of the world, short enough that a remote
/// that hangs costs a build a couple of seconds, once.
pub const DEFAULT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);

/// Uploads run beside the build's compiles (which may leave them little CPU) and are
/// waited for only after cargo ends: each of their requests may stall this many times
/// [`RemoteSpec::timeout`](super::RemoteSpec::timeout) before the remote is given up.
pub const UPLOAD_TIMEOUT_FACTOR: u32 = 5;

/// A timeout as `XCACHE_REMOTE_TIMEOUT` takes it: `500ms`, `2s`, `1m`, or a number of
/// seconds; between 100 ms and 10 minutes.
pub fn parse_timeout(s: &str) -> Result<std::time::Duration, String> {
    use std::time::Duration;
    let s = s.trim();
    let (digits, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: u64 = digits
        .parse()
        .map_err(|_| "not a duration; write it as 500ms, 2s or 1m".to_string())?;
    let d = match unit.trim() {
        "ms" => Duration::from_millis(n),
        "" | "s" => Duration::from_secs(n),
        "m" => Duration::from_secs(n.saturating_mul(60)),
        other => {
            return Err(format!(
                "unknown unit `{other}`; write it as 500ms, 2s or 1m"
            ));
        }
    };
    if d < Duration::from_millis(100) || d > Duration::from_secs(600) {
        return Err("out of range; it must lie between 100ms and 10m".into());
    }
    Ok(d)
}
