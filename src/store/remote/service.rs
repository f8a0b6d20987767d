//! The services: how each is reached (opendal's operator, a Redis login checked
//! first), and how its failures are named, with what to check.

use std::time::Duration;

use opendal::layers::{RetryLayer, TimeoutLayer};
use opendal::{ErrorKind, Operator, services};

use super::advice::{BUCKET_MISSING, advice};
use crate::config::{RemoteKind, RemoteSpec, Writes};
use crate::errors::CacheError;

/// The opendal operator of a service, with its retries and time limits.
pub(super) fn operator(spec: &RemoteSpec, timeout: Duration) -> Result<Operator, CacheError> {
    let cfg_err = |e: opendal::Error| remote_failure(spec, e);
    let op = match &spec.kind {
        RemoteKind::S3 {
            bucket,
            root,
            endpoint,
            region,
            virtual_host_style,
        } => {
            let mut b = services::S3::default().bucket(bucket).root(root);
            if let Some(e) = endpoint {
                b = b.endpoint(e);
            }
            // opendal needs a region; S3-compatible servers accept any.
            b = b.region(region.as_deref().unwrap_or("us-east-1"));
            if *virtual_host_style {
                b = b.enable_virtual_host_style();
            }
            Operator::new(b).map_err(cfg_err)?
        }
        RemoteKind::Gcs {
            bucket,
            root,
            endpoint,
            anonymous,
        } => {
            let mut b = services::Gcs::default().bucket(bucket).root(root);
            if let Some(e) = endpoint {
                b = b.endpoint(e);
            }
            if *anonymous {
                b = b
                    .skip_signature()
                    .disable_vm_metadata()
                    .disable_config_load();
            }
            Operator::new(b).map_err(cfg_err)?
        }
        RemoteKind::Azblob {
            container,
            root,
            endpoint,
            account,
            key,
        } => {
            let mut b = services::Azblob::default().container(container).root(root);
            if let Some(k) = key {
                b = b.account_key(&k.0);
            }
            if let Some(a) = account {
                b = b.account_name(a);
                if endpoint.is_none() {
                    b = b.endpoint(&format!("https://{a}.blob.core.windows.net"));
                }
            }
            if let Some(e) = endpoint {
                b = b.endpoint(e);
            }
            Operator::new(b).map_err(cfg_err)?
        }
        RemoteKind::Redis {
            endpoint,
            db,
            username,
            password,
        } => {
            let b = services::Redis::default().endpoint(endpoint).db(*db);
            Operator::new(redis_login(b, username, password)).map_err(cfg_err)?
        }
        RemoteKind::RedisCluster {
            nodes,
            username,
            password,
        } => {
            // The client asks these nodes for the slot map and follows redirections
            // to the others.
            let b = services::Redis::default().cluster_endpoints(&nodes.join(","));
            Operator::new(redis_login(b, username, password)).map_err(cfg_err)?
        }
        RemoteKind::Memcached { endpoint } => Operator::new(
            services::Memcached::default()
                .endpoint(endpoint)
                .root("/xcache/"),
        )
        .map_err(cfg_err)?,
        RemoteKind::Webdav {
            endpoint,
            root,
            username,
            password,
        } => {
            let mut b = services::Webdav::default().endpoint(endpoint).root(root);
            if let Some(u) = username {
                b = b.username(u);
            }
            if let Some(p) = password {
                b = b.password(&p.0);
            }
            Operator::new(b).map_err(cfg_err)?
        }
        RemoteKind::Ghac => {
            Operator::new(services::Ghac::default().root("/xcache/")).map_err(cfg_err)?
        }
        RemoteKind::Fs { root } => {
            Operator::new(services::Fs::default().root(root)).map_err(cfg_err)?
        }
        RemoteKind::Reapi { .. } => {
            return Err(CacheError::RemoteConfig(format!(
                "{spec}: a REAPI server is reached through its own client, not opendal"
            )));
        }
    };
    // Temporary failures (a reset connection, a busy server) are retried twice,
    // quickly, inside the time limit: a remote that hangs costs `timeout` per
    // request, retries included, never three timeouts in a row. A transfer may take
    // longer as a whole, but each of its pieces must answer within the limit.
    let op = op
        .layer(
            RetryLayer::new()
                .with_max_times(2)
                .with_min_delay(Duration::from_millis(50))
                .with_max_delay(Duration::from_millis(300))
                .with_jitter(),
        )
        .layer(
            TimeoutLayer::new()
                .with_timeout(timeout)
                .with_io_timeout(timeout),
        );
    Ok(op)
}

/// Names the class of a remote failure, with a sentence saying what to check in that
/// remote's own terms. Credentials are scrubbed from the service's message.
pub(super) fn remote_failure(spec: &RemoteSpec, e: opendal::Error) -> CacheError {
    let text = e.to_string();
    let lower = text.to_lowercase();
    let (code, what) = if lower.contains("timeout reached") {
        (
            "remote-timed-out",
            "the remote stopped answering; it is left out of the rest of this build",
        )
    } else if lower.contains("nosuchbucket")
        || lower.contains("containernotfound")
        || (lower.contains("listobjects") && lower.contains("status: 404"))
    {
        ("remote-bucket-missing", BUCKET_MISSING)
    } else if lower.contains("authorizationheadermalformed")
        || lower.contains("permanentredirect")
        || lower.contains("wrong region")
    {
        (
            "remote-wrong-region",
            "the bucket lives in another region; set region= in the URI or AWS_REGION",
        )
    } else if lower.contains("failed to load signing credential")
        || lower.contains("no valid credential")
    {
        ("remote-denied", advice(&spec.kind).missing)
    } else if e.kind() == ErrorKind::PermissionDenied
        || lower.contains("invalidaccesskeyid")
        || lower.contains("signaturedoesnotmatch")
        || lower.contains("accessdenied")
        || lower.contains("authenticationfailed")
        || lower.contains("authorizationfailure")
        || lower.contains("noauth")
        || lower.contains("wrongpass")
        || lower.contains("status: 401")
        || lower.contains("status: 403")
    {
        ("remote-denied", advice(&spec.kind).denied)
    } else if lower.contains("too large")
        || lower.contains("entitytoolarge")
        // memcached's binary protocol: status 3 is "value too large".
        || (lower.contains("service: memcached") && lower.contains("message: 3"))
    {
        (
            "remote-entry-too-large",
            "the entry is larger than the backend accepts; it stays in the local store",
        )
    } else if e.kind() == ErrorKind::ConfigInvalid {
        (
            "remote-config-invalid",
            "the remote's configuration is invalid",
        )
    } else {
        (
            "remote-unavailable",
            "the remote did not answer as expected",
        )
    };
    CacheError::Remote {
        code,
        uri: spec.display().to_string(),
        message: spec.scrub(&format!("{what} ({})", first_line(&text))),
    }
}

/// The key prefix and the login of a Redis (or Redis Cluster) client.
fn redis_login(
    b: services::Redis,
    username: &Option<String>,
    password: &Option<crate::config::Secret>,
) -> services::Redis {
    let mut b = b.root("/xcache/");
    if let Some(u) = username {
        b = b.username(u);
    }
    if let Some(p) = password {
        b = b.password(&p.0);
    }
    b
}

/// Whether a Redis server takes these credentials and this database: a direct
/// connection that says so at once. (opendal's connection pool retries a refused login
/// until the request times out, and then cannot tell a wrong password from a server
/// that does not answer.) For a cluster (`RemoteKind::RedisCluster`), the first of its
/// `nodes` that accepts a connection is asked too whether it is a cluster node and
/// whether the cluster serves every slot. `rediss://` nodes are left to opendal.
pub(super) fn redis_check(
    spec: &RemoteSpec,
    nodes: &[String],
    db: i64,
    username: Option<&str>,
    password: &Option<crate::config::Secret>,
) -> Result<(), CacheError> {
    let fail = |code: &'static str, what: String| CacheError::Remote {
        code,
        uri: spec.display().to_string(),
        message: spec.scrub(&what),
    };
    let cluster = matches!(spec.kind, RemoteKind::RedisCluster { .. });
    let timeout = spec.timeout;
    let addrs: Vec<(String, u16)> = nodes
        .iter()
        .filter_map(|n| {
            let (h, p) = n.strip_prefix("redis://")?.rsplit_once(':')?;
            let h = h.trim_start_matches('[').trim_end_matches(']');
            Some((h.to_string(), p.parse::<u16>().ok()?))
        })
        .collect();
    if addrs.is_empty() {
        return Ok(());
    }
    let settings = crate::store::swap::redis_settings(db, username, password);
    use redis::IntoConnectionInfo;
    let clients = addrs
        .into_iter()
        .map(|(h, p)| {
            redis::ConnectionAddr::Tcp(h, p)
                .into_connection_info()
                .map(|i| i.set_redis_settings(settings.clone()))
                .and_then(redis::Client::open)
        })
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| {
            fail(
                "remote-config-invalid",
                format!("the Redis URI is not usable ({e})"),
            )
        })?;
    // The client's timeout bounds each read of its handshake, not the handshake: the
    // whole check is bounded here (the thread ends by itself, its reads time out).
    // A node that refuses the connection hands over to the next one.
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut last = None;
        for client in clients {
            match client.get_connection_with_timeout(timeout) {
                Ok(mut conn) => {
                    let info = if cluster {
                        redis::cmd("CLUSTER").arg("INFO").query::<String>(&mut conn)
                    } else {
                        Ok(String::new())
                    };
                    let _ = tx.send(info);
                    return;
                }
                Err(e) if e.is_connection_refusal() => last = Some(e),
                Err(e) => {
                    let _ = tx.send(Err(e));
                    return;
                }
            }
        }
        if let Some(e) = last {
            let _ = tx.send(Err(e));
        }
    });
    let result = rx.recv_timeout(timeout).unwrap_or_else(|_| {
        Err(redis::RedisError::from(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            "no answer",
        )))
    });
    let result = match result {
        Ok(info) if cluster && !info.lines().any(|l| l.trim() == "cluster_state:ok") => {
            return Err(fail(
                "remote-unavailable",
                "the Redis Cluster does not serve every hash slot (cluster_state is not ok); check `redis-cli cluster info` on its nodes".into(),
            ));
        }
        Ok(_) => Ok(()),
        Err(e)
            if cluster
                && e.to_string()
                    .to_lowercase()
                    .contains("cluster support disabled") =>
        {
            return Err(fail(
                "remote-config-invalid",
                format!(
                    "the server is not a cluster node ({}); for a single Redis server write redis://host:port/db",
                    first_line(&e.to_string())
                ),
            ));
        }
        Err(e) => Err(e),
    };
    match result {
        Ok(()) => Ok(()),
        Err(e)
            if e.kind() == redis::ErrorKind::AuthenticationFailed
                || e.code()
                    .is_some_and(|c| matches!(c, "WRONGPASS" | "NOAUTH" | "NOPERM")) =>
        {
            Err(fail(
                "remote-denied",
                format!(
                    "Redis refused the login ({}); {}",
                    first_line(&e.to_string()),
                    advice(&spec.kind).login.unwrap_or_default()
                ),
            ))
        }
        Err(e) if e.to_string().to_lowercase().contains("db index") => Err(fail(
            "remote-database-invalid",
            format!(
                "Redis has no database {db} ({}); use a number below the server's `databases` setting (16 by default) in redis://host:port/DB",
                first_line(&e.to_string())
            ),
        )),
        Err(e) if e.is_timeout() => Err(fail(
            "remote-timed-out",
            format!(
                "Redis did not answer within {:?}; the remote is left out of this build",
                timeout
            ),
        )),
        Err(e) => Err(fail(
            "remote-unavailable",
            format!(
                "Redis did not answer as expected ({})",
                first_line(&e.to_string())
            ),
        )),
    }
}

/// The error for an object of `spec` that is not what it claims to be.
pub(in crate::store) fn damaged(spec: &RemoteSpec, path: &str, what: &str) -> CacheError {
    CacheError::Remote {
        code: "remote-entry-damaged",
        uri: spec.display().to_string(),
        message: if spec.writes == Writes::Once {
            format!(
                "object {path} is damaged ({what}); it was not used, and it stays until the store drops it (the store keeps each name once, so no build can replace it)"
            )
        } else {
            format!(
                "object {path} is damaged ({what}); it was not used, and the next build that stores the unit replaces it"
            )
        },
    }
}

pub(super) fn first_line(s: &str) -> String {
    s.lines().next().unwrap_or("").chars().take(200).collect()
}
