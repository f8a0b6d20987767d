//! Redis Cluster URIs (`redis+cluster://HOST:PORT,HOST:PORT,…`): several hosts in one
//! authority, split here and each checked as a `redis://` URI of its own.

use url::Url;

use super::credentials::decode;
use super::spec::{NO_RANGES, RemoteDefaults, RemoteKind, RemoteSpec, Secret, Uploads, Writes};
use super::timeout::DEFAULT_TIMEOUT;

/// `redis+cluster://[USER:PASSWORD@]HOST:PORT,HOST:PORT,…[/0]` (or `rediss+cluster://`
/// for TLS): `node_scheme` is `redis` or `rediss`, `rest` what follows `://`. The
/// authority holds several hosts, which a URL parser does not take: it is split here,
/// and each node checked as a `redis://` URI of its own.
pub(super) fn parse_cluster(
    node_scheme: &str,
    rest: &str,
    defaults: &RemoteDefaults,
) -> Result<RemoteSpec, String> {
    let form = "redis+cluster://[:PASSWORD@]HOST:PORT,HOST:PORT,HOST:PORT";
    if !matches!(node_scheme, "redis" | "rediss") {
        return Err(format!(
            "unknown scheme `{node_scheme}+cluster:`; a Redis Cluster is written {form} (rediss+cluster:// for TLS)"
        ));
    }
    let scheme = format!("{node_scheme}+cluster");
    let (rest, query) = match rest.split_once('?') {
        Some((r, q)) => (r, Some(q)),
        None => (rest, None),
    };
    let (authority, path) = match rest.split_once('/') {
        Some((a, p)) => (a, p),
        None => (rest, ""),
    };
    // Credentials come before the last `@`; the password may hold `@` itself.
    let (userinfo, hosts) = match authority.rsplit_once('@') {
        Some((u, h)) => (Some(u), h),
        None => (None, authority),
    };
    let display = format!("{scheme}://{hosts}");
    if let Some(q) = query {
        // The value may be a misspelt credential: only the option's name is shown.
        let name = q.split(['=', '&']).next().unwrap_or_default();
        let why = if name == "uploads" {
            format!(": {NO_RANGES}")
        } else {
            ";".to_string()
        };
        return Err(format!(
            "{display}: unknown option `{name}`{why} {scheme}:// URIs take no options"
        ));
    }
    let path = path.trim_matches('/');
    if !path.is_empty() && path != "0" {
        return Err(format!(
            "{display}/{path}: a Redis Cluster has database 0 only; leave the path out or write /0"
        ));
    }
    if hosts.is_empty() {
        return Err(format!("{display} names no node; write {form}"));
    }
    let mut nodes = Vec::new();
    for (i, node) in hosts.split(',').enumerate() {
        let n = i + 1;
        if node.is_empty() {
            return Err(format!(
                "{display}: node {n} is empty (a stray comma?); write {form}"
            ));
        }
        let url = Url::parse(&format!("{node_scheme}://{node}"))
            .ok()
            .filter(|u| {
                u.host_str().is_some_and(|h| !h.is_empty())
                    && u.path().is_empty()
                    && u.username().is_empty()
                    && u.password().is_none()
            })
            .ok_or_else(|| {
                format!("{display}: node {n} `{node}` is not HOST:PORT; write {form}")
            })?;
        let host = url.host_str().unwrap_or_default();
        nodes.push(format!(
            "{node_scheme}://{host}:{}",
            url.port().unwrap_or(6379)
        ));
    }
    let (username, password) = match userinfo {
        None => (None, None),
        Some(u) => {
            let (user, pass) = match u.split_once(':') {
                Some((user, pass)) => (decode(user), Some(Secret(decode(pass)))),
                None => (decode(u), None),
            };
            ((!user.is_empty()).then_some(user), pass)
        }
    };
    let mut secrets = defaults.secrets.clone();
    if let Some((_, raw)) = userinfo.and_then(|u| u.split_once(':')) {
        secrets.push(Secret(raw.to_string()));
    }
    secrets.extend(password.clone());
    secrets.retain(|s| s.0.len() >= 3);
    Ok(RemoteSpec {
        uploads: Uploads::Objects,
        writes: Writes::Replace,
        timeout: DEFAULT_TIMEOUT,
        kind: RemoteKind::RedisCluster {
            nodes,
            username,
            password,
        },
        display,
        secrets,
    })
}
