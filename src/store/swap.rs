//! Compare-and-swap on the key-value services, which opendal writes without
//! conditions: a script on Redis (one step that compares the object with what was read
//! and only then sets it), `cas` and `add` on memcached. Main type: [`Swap`]; its user is
//! [`super::RemoteStore::update_bytes`].
//!
//! The objects are the ones opendal reads and writes: the same keys (opendal's root,
//! `xcache/`, and on memcached its percent-encoding) and plain bytes.

use std::time::Duration;

use crate::config::{RemoteKind, RemoteSpec};

/// Where opendal puts a path on Redis and memcached (`redis_login`'s and the memcached
/// builder's root, without its leading `/`).
const ROOT: &str = "xcache/";

/// Sets `KEYS[1]` to `ARGV[3]` only if it holds `ARGV[2]` (`ARGV[1]` = `1`) or is absent
/// (`ARGV[1]` = `0`); returns 1 if it did.
const REDIS_SWAP: &str = r"
local now = redis.call('GET', KEYS[1])
if ARGV[1] == '1' then
  if now ~= ARGV[2] then return 0 end
elseif now then
  return 0
end
redis.call('SET', KEYS[1], ARGV[3])
return 1
";

/// A client of the service's own compare-and-swap.
pub(super) enum Swap {
    Redis(redis::Client, Duration, Idle<redis::Connection>),
    RedisCluster(
        redis::cluster::ClusterClient,
        Idle<redis::cluster::ClusterConnection>,
    ),
    Memcached(memcache::Client),
}

/// Connections not in use, kept for the next read or write (an update is a read and a
/// write; a build makes many): one is taken, or opened where none is idle, and put back
/// when it served without an error.
pub(super) struct Idle<C>(std::sync::Mutex<Vec<C>>);

impl<C> Idle<C> {
    fn new() -> Idle<C> {
        Idle(std::sync::Mutex::new(Vec::new()))
    }

    fn with<T>(
        &self,
        open: impl FnOnce() -> Result<C, SwapError>,
        use_it: impl FnOnce(&mut C) -> Result<T, SwapError>,
    ) -> Result<T, SwapError> {
        let idle = self.0.lock().ok().and_then(|mut v| v.pop());
        let mut conn = match idle {
            Some(c) => c,
            None => open()?,
        };
        let out = use_it(&mut conn)?;
        if let Ok(mut v) = self.0.lock() {
            v.push(conn);
        }
        Ok(out)
    }
}

/// Why a read or write of [`Swap`] did not happen.
#[derive(Debug)]
pub(super) enum SwapError {
    /// The service refuses the compare-and-swap itself (a Redis-like server without
    /// scripts, or whose access list denies them; a memcached without `cas`): every
    /// writer meets the same refusal, and all of them write and read back instead.
    Refused,
    /// Anything else (a timeout, a dropped connection, a cluster's redirection): tried
    /// again, then an error of the remote. Never answered by writing without the
    /// condition, which could undo another writer's swap that is not read back.
    Failed(String),
}

impl SwapError {
    fn redis(e: redis::RedisError) -> SwapError {
        use redis::{ErrorKind, ServerErrorKind};
        let refused = match e.kind() {
            ErrorKind::Extension | ErrorKind::UnexpectedReturnType | ErrorKind::Parse => true,
            ErrorKind::Server(k) => matches!(
                k,
                ServerErrorKind::ResponseError
                    | ServerErrorKind::NoScript
                    | ServerErrorKind::NoPerm
            ),
            _ => false,
        };
        if refused && !e.is_io_error() && !e.is_timeout() {
            SwapError::Refused
        } else {
            SwapError::Failed(e.to_string())
        }
    }

    fn memcached(e: memcache::MemcacheError) -> SwapError {
        use memcache::{CommandError, MemcacheError};
        match e {
            MemcacheError::CommandError(
                CommandError::InvalidCommand | CommandError::Unknown(_),
            ) => SwapError::Refused,
            e => SwapError::Failed(e.to_string()),
        }
    }
}

/// What a read saw, for the write that follows it.
pub(super) enum Seen {
    Absent,
    /// Redis: the bytes themselves (the script compares them).
    Bytes,
    /// memcached: the item's CAS value.
    Cas(u64),
}

impl Swap {
    /// The client for `spec`, or `None` where the service has no compare-and-swap we
    /// speak (every service but plain-TCP Redis and memcached) or the client cannot be
    /// made (the caller then writes and reads back, as for any other service).
    pub(super) fn open(spec: &RemoteSpec) -> Option<Swap> {
        let timeout = spec.timeout;
        match &spec.kind {
            RemoteKind::Redis {
                endpoint,
                db,
                username,
                password,
            } if endpoint.starts_with("redis://") => {
                use redis::IntoConnectionInfo;
                let info = endpoint
                    .as_str()
                    .into_connection_info()
                    .ok()?
                    .set_redis_settings(redis_settings(*db, username.as_deref(), password));
                Some(Swap::Redis(
                    redis::Client::open(info).ok()?,
                    timeout,
                    Idle::new(),
                ))
            }
            RemoteKind::RedisCluster {
                nodes,
                username,
                password,
            } if nodes.iter().all(|n| n.starts_with("redis://")) => {
                let mut b = redis::cluster::ClusterClient::builder(nodes.clone())
                    .connection_timeout(timeout)
                    .response_timeout(timeout);
                if let Some(u) = username {
                    b = b.username(u.clone());
                }
                if let Some(p) = password {
                    b = b.password(p.0.clone());
                }
                Some(Swap::RedisCluster(b.build().ok()?, Idle::new()))
            }
            RemoteKind::Memcached { endpoint } => {
                let addr = endpoint.strip_prefix("tcp://")?;
                let client = memcache::Client::builder()
                    .add_server(format!("memcache://{addr}?protocol=binary"))
                    .ok()?
                    .with_connection_timeout(timeout)
                    .with_read_timeout(timeout)
                    .with_write_timeout(timeout)
                    .build()
                    .ok()?;
                Some(Swap::Memcached(client))
            }
            _ => None,
        }
    }

    /// The key of `path`, as opendal names it.
    fn key(&self, path: &str) -> String {
        let key = format!("{ROOT}{path}");
        match self {
            Swap::Memcached(..) => opendal::raw::percent_encode_path(&key),
            _ => key,
        }
    }

    /// The object at `path` (`None`: absent) and what the write after it compares.
    pub(super) fn read(&self, path: &str) -> Result<(Option<Vec<u8>>, Seen), SwapError> {
        let key = self.key(path);
        let now: Option<Vec<u8>> = match self {
            Swap::Redis(client, timeout, idle) => idle.with(
                || redis_conn(client, *timeout),
                |conn| redis_get(conn, &key),
            )?,
            Swap::RedisCluster(client, idle) => idle.with(
                || client.get_connection().map_err(SwapError::redis),
                |conn| redis_get(conn, &key),
            )?,
            Swap::Memcached(client) => {
                let mut got: std::collections::HashMap<String, (Vec<u8>, u32, Option<u64>)> =
                    client.gets(&[key.as_str()]).map_err(SwapError::memcached)?;
                return Ok(match got.remove(&key) {
                    None => (None, Seen::Absent),
                    Some((bytes, _, Some(cas))) => (Some(bytes), Seen::Cas(cas)),
                    Some((_, _, None)) => {
                        return Err(SwapError::Refused);
                    }
                });
            }
        };
        let seen = if now.is_some() {
            Seen::Bytes
        } else {
            Seen::Absent
        };
        Ok((now, seen))
    }

    /// Writes `bytes` at `path` only if it still holds `now` (as `seen` by the read);
    /// `Ok(false)`: another writer changed it in between.
    pub(super) fn write(
        &self,
        path: &str,
        now: Option<&[u8]>,
        seen: &Seen,
        bytes: &[u8],
    ) -> Result<bool, SwapError> {
        let key = self.key(path);
        let script = redis::Script::new(REDIS_SWAP);
        let mut invocation = script.prepare_invoke();
        invocation
            .key(&key)
            .arg(if now.is_some() { "1" } else { "0" })
            .arg(now.unwrap_or_default())
            .arg(bytes);
        match self {
            Swap::Redis(client, timeout, idle) => idle.with(
                || redis_conn(client, *timeout),
                |conn| redis_swap(conn, &invocation),
            ),
            Swap::RedisCluster(client, idle) => idle.with(
                || client.get_connection().map_err(SwapError::redis),
                |conn| redis_swap(conn, &invocation),
            ),
            Swap::Memcached(client) => {
                use memcache::{CommandError, MemcacheError};
                let written = match seen {
                    Seen::Cas(cas) => client.cas(&key, bytes, 0, *cas),
                    _ => client.add(&key, bytes, 0).map(|()| true),
                };
                match written {
                    Ok(done) => Ok(done),
                    Err(MemcacheError::CommandError(
                        CommandError::KeyExists | CommandError::KeyNotFound,
                    )) => Ok(false),
                    Err(e) => Err(SwapError::memcached(e)),
                }
            }
        }
    }
}

/// `GET` of `key` on a Redis server or cluster.
fn redis_get(
    conn: &mut impl redis::ConnectionLike,
    key: &str,
) -> Result<Option<Vec<u8>>, SwapError> {
    redis::cmd("GET")
        .arg(key)
        .query(conn)
        .map_err(SwapError::redis)
}

/// Runs the swap script; whether it set the object.
fn redis_swap(
    conn: &mut impl redis::ConnectionLike,
    invocation: &redis::ScriptInvocation<'_>,
) -> Result<bool, SwapError> {
    let set: i64 = invocation.invoke(conn).map_err(SwapError::redis)?;
    Ok(set == 1)
}

/// The database and login of a connection to a Redis server.
pub(super) fn redis_settings(
    db: i64,
    username: Option<&str>,
    password: &Option<crate::config::Secret>,
) -> redis::RedisConnectionInfo {
    let mut settings = redis::RedisConnectionInfo::default()
        .set_db(db)
        .set_skip_set_lib_name();
    if let Some(u) = username {
        settings = settings.set_username(u);
    }
    if let Some(p) = password {
        settings = settings.set_password(&p.0);
    }
    settings
}

/// A connection to one Redis server whose every read and write ends within `timeout`.
fn redis_conn(client: &redis::Client, timeout: Duration) -> Result<redis::Connection, SwapError> {
    let conn = client
        .get_connection_with_timeout(timeout)
        .map_err(SwapError::redis)?;
    conn.set_read_timeout(Some(timeout))
        .and_then(|()| conn.set_write_timeout(Some(timeout)))
        .map_err(SwapError::redis)?;
    Ok(conn)
}
