//! The worker's bot session: how `cargo xcache worker` takes leases from a REAPI
//! server's Bots service (the Remote Workers API, as buildbox-worker speaks it) and
//! hands their results back. Main function: [`serve`].
//!
//! One worker process runs one lease at a time (capacity 1); several run side by side
//! on one machine and share the local blob cache. The session is the server's record
//! of this process: a lease is ours only while the session lives, so a worker stopped
//! mid-action loses nothing — the server notices the silent session (its keepalive
//! timeout), takes the lease back and hands it to another worker — and a worker that
//! finds its session gone (the server restarted) drops what it was running and opens
//! a new one, so no result is ever reported twice under two sessions.

use std::path::PathBuf;
use std::time::Duration;

use bazel_remote_apis::google::protobuf::Any;
use bazel_remote_apis::google::rpc::Status as RpcStatus;
use prost::Message as _;
use tonic::Code;

use super::action::{self, Failed};
use crate::errors::CacheError;
use crate::reapi::Reapi;
use xcache_remoteworkers::{
    BotSession, BotStatus, CreateBotSessionRequest, Device, Lease, LeaseState,
    UpdateBotSessionRequest, Worker, bots_client::BotsClient, device,
};

/// How long one `UpdateBotSession` may wait at the server for a lease while idle: the
/// server answers before (at 80% of it, BuildGrid) with or without one.
const POLL: Duration = Duration::from_secs(20);

/// How often a worker running an action tells the server it is alive.
const KEEPALIVE: Duration = Duration::from_secs(5);

/// How long the worker waits before asking again after the server did not answer.
const RETRY: Duration = Duration::from_secs(1);

/// What a worker is told to be.
pub struct WorkerSpec {
    /// The server (`grpc://HOST:PORT?instance=NAME`).
    pub server: crate::config::RemoteSpec,
    /// Where each action gets a fresh directory.
    pub work_dir: PathBuf,
    /// The blob cache and the shipped toolchains every worker of the machine shares.
    pub caches: action::Caches,
    /// This worker's name in results and in the server's records.
    pub name: String,
    /// The platform properties this worker offers (`key=value`): an action that asks
    /// for others is not given to it.
    pub properties: Vec<(String, String)>,
    /// The toolchain compiles run with (offered as [`crate::exec::wire::COMPILER_PROPERTY`]).
    pub toolchain: Option<super::Toolchain>,
    /// Stop after this many actions (for tests and benchmarks; none: run until killed).
    pub max_actions: Option<u64>,
}

/// The lease being run, and how to stop it.
struct Running {
    lease: Lease,
    /// Polled by the session's own loop between its calls (the CAS client's reads are
    /// not `Send`, so the action is not a task of its own).
    task: std::pin::Pin<Box<dyn Future<Output = Result<action::Ran, Failed>>>>,
    cancel: tokio::sync::watch::Sender<bool>,
}

/// Serves leases until stopped (SIGTERM or SIGINT: the running action is reported
/// first; or `max_actions` done).
pub async fn serve(spec: WorkerSpec) -> Result<(), CacheError> {
    std::fs::create_dir_all(&spec.work_dir).map_err(|source| CacheError::Write {
        path: spec.work_dir.clone(),
        source,
    })?;
    std::fs::create_dir_all(&spec.caches.blobs).map_err(|source| CacheError::Write {
        path: spec.caches.blobs.clone(),
        source,
    })?;
    // What a worker killed while making or removing a toolchain left, and toolchains
    // beyond the bound (it may have been lowered since the last start): removed now.
    spec.caches.toolchains.sweep();
    spec.caches.toolchains.collect();
    let cas = std::sync::Arc::new(Reapi::new(&spec.server, Duration::from_secs(60))?);
    let mut bots = BotsClient::new(cas.channel());
    let mut done = 0u64;
    let mut warned = false;
    let stopping = stop_on_signal(&spec.name);
    'session: loop {
        // Asked to stop with no session (none yet, or the server lost it): nothing of
        // ours is held, leave now.
        let mut stop = stopping.clone();
        let created = tokio::select! {
            r = create(&cas, &mut bots, &spec) => r,
            _ = stop.wait_for(|s| *s) => return Ok(()),
        };
        let mut session = match created {
            Ok(s) => s,
            Err(e) => {
                if !warned {
                    eprintln!(
                        "warning: cargo-xcache worker: failed to open a bot session: {e}; retrying"
                    );
                    warned = true;
                }
                tokio::time::sleep(RETRY).await;
                continue;
            }
        };
        warned = false;
        eprintln!(
            "cargo-xcache worker {}: session {} open",
            spec.name, session.name
        );
        let mut running: Option<Running> = None;
        // A finished lease the server has not acknowledged yet: reported again with
        // every update until it has.
        let mut finished: Option<Lease> = None;
        // Leases the server handed out in the session's first answer.
        let mut offered = std::mem::take(&mut session.leases);
        // Whether `finished` is a lease handed back unrun.
        let mut given_back = false;
        loop {
            // Take a lease the server offers, if free; stop one it cancelled.
            for lease in offered.drain(..) {
                let state = LeaseState::try_from(lease.state).unwrap_or(LeaseState::Unspecified);
                match (&running, state) {
                    // BuildGrid hands a lease out as ACTIVE (it moved it from PENDING
                    // itself); the API's own flow offers it PENDING.
                    (None, LeaseState::Pending | LeaseState::Active) if finished.is_none() => {
                        if *stopping.borrow() {
                            // Stopping: the lease goes back to the queue (UNAVAILABLE is
                            // retried elsewhere), never run half.
                            given_back = true;
                            finished = Some(completed_lease(
                                lease,
                                Err(Failed {
                                    code: 14,
                                    message: "the worker is stopping".into(),
                                }),
                            ));
                        } else {
                            running = Some(start(&cas, &spec, lease));
                        }
                    }
                    (Some(r), LeaseState::Cancelled) if r.lease.id == lease.id => {
                        let _ = r.cancel.send(true);
                    }
                    _ => {}
                }
            }
            // Running: wait a little for it (then tell the server we are alive);
            // finished: report it.
            if let Some(r) = &mut running
                && let Ok(outcome) = tokio::time::timeout(KEEPALIVE, r.task.as_mut()).await
            {
                let r = running.take().expect("running");
                finished = Some(completed_lease(r.lease, outcome));
            }
            session.leases = match (&finished, &running) {
                (Some(l), _) => vec![l.clone()],
                (None, Some(r)) => vec![r.lease.clone()],
                (None, None) => Vec::new(),
            };
            let idle = running.is_none() && finished.is_none();
            let call = update(&cas, &mut bots, &session, idle);
            let answer = if idle {
                // Idle and asked to stop: nothing of ours is lost by leaving now (a
                // lease handed out meanwhile goes back when the session expires).
                let mut stop = stopping.clone();
                tokio::select! {
                    r = call => r,
                    _ = stop.wait_for(|s| *s) => return Ok(()),
                }
            } else {
                call.await
            };
            match answer {
                Ok(mut next) => {
                    warned = false;
                    if finished.take().is_some() && !std::mem::take(&mut given_back) {
                        done += 1;
                        if spec.max_actions.is_some_and(|m| done >= m) {
                            return Ok(());
                        }
                    }
                    offered = std::mem::take(&mut next.leases);
                    if *stopping.borrow()
                        && running.is_none()
                        && !offered.iter().any(|l| {
                            l.state == LeaseState::Pending as i32
                                || l.state == LeaseState::Active as i32
                        })
                    {
                        eprintln!("cargo-xcache worker {}: stopped", spec.name);
                        return Ok(());
                    }
                    // A lease we run that the server no longer lists is not ours any more.
                    if let Some(r) = &running
                        && !offered.iter().any(|l| l.id == r.lease.id)
                    {
                        let _ = r.cancel.send(true);
                        running = None;
                    }
                    session = next;
                }
                Err(s)
                    if matches!(
                        s.code(),
                        Code::NotFound | Code::InvalidArgument | Code::FailedPrecondition
                    ) =>
                {
                    // The session is gone (the server gave up on us, or forgot us):
                    // what we ran is the server's to hand out again.
                    eprintln!(
                        "cargo-xcache worker {}: the server dropped the session ({}); opening another",
                        spec.name,
                        s.message()
                    );
                    if let Some(r) = running.take() {
                        let _ = r.cancel.send(true);
                    }
                    continue 'session;
                }
                Err(s) => {
                    // Not answering: keep the lease and its result, and ask again.
                    if !warned {
                        eprintln!(
                            "warning: cargo-xcache worker {}: the server did not take the session update: {}; retrying",
                            spec.name,
                            cas.failed(&s)
                        );
                        warned = true;
                    }
                    tokio::time::sleep(RETRY).await;
                }
            }
        }
    }
}

/// Turns SIGTERM or SIGINT into a request to stop: the running action is finished and
/// reported, no new one is taken. A second signal stops the worker at once (its
/// lease then goes back to the queue when the session expires).
fn stop_on_signal(name: &str) -> tokio::sync::watch::Receiver<bool> {
    use tokio::signal::unix::{SignalKind, signal};
    let (tx, rx) = tokio::sync::watch::channel(false);
    let name = name.to_string();
    tokio::spawn(async move {
        let (Ok(mut term), Ok(mut int)) = (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        ) else {
            return;
        };
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
        eprintln!("cargo-xcache worker {name}: stopping once the running action is reported");
        let _ = tx.send(true);
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
        eprintln!("cargo-xcache worker {name}: stopped at once");
        std::process::exit(130);
    });
    rx
}

/// Starts running `lease` on its own task.
fn start(cas: &std::sync::Arc<Reapi>, spec: &WorkerSpec, mut lease: Lease) -> Running {
    lease.state = LeaseState::Active as i32;
    let (cancel, cancelled) = tokio::sync::watch::channel(false);
    let cas = cas.clone();
    let payload = lease.payload.clone();
    let work = spec.work_dir.clone();
    let caches = spec.caches.clone();
    let name = spec.name.clone();
    let toolchain = spec.toolchain.clone();
    let task = Box::pin(async move {
        let action = action::action_of(&cas, payload.as_ref()).await?;
        action::run(
            &cas,
            &action,
            &work,
            &caches,
            &name,
            toolchain.as_ref(),
            &cancelled,
        )
        .await
    });
    Running {
        lease,
        task,
        cancel,
    }
}

/// The lease as reported done: the `ActionResult` packed in its result, or the status
/// that says why there is none.
fn completed_lease(mut lease: Lease, outcome: Result<action::Ran, Failed>) -> Lease {
    lease.state = LeaseState::Completed as i32;
    match outcome {
        Ok(ran) => {
            lease.result = Some(Any {
                type_url: "type.googleapis.com/build.bazel.remote.execution.v2.ActionResult".into(),
                value: ran.result.encode_to_vec(),
            });
            lease.status = Some(RpcStatus {
                code: 0,
                ..Default::default()
            });
        }
        Err(f) => {
            lease.result = None;
            lease.status = Some(RpcStatus {
                code: f.code,
                message: f.message,
                ..Default::default()
            });
        }
    }
    lease
}

/// The worker as the server sees it: one device, with the properties it offers.
fn worker(spec: &WorkerSpec) -> Worker {
    Worker {
        devices: vec![Device {
            handle: spec.name.clone(),
            properties: spec
                .properties
                .iter()
                .map(|(k, v)| device::Property {
                    key: k.clone(),
                    value: v.clone(),
                })
                .collect(),
        }],
        ..Default::default()
    }
}

async fn create(
    cas: &Reapi,
    bots: &mut BotsClient<tonic::transport::Channel>,
    spec: &WorkerSpec,
) -> Result<BotSession, CacheError> {
    let mut req = cas.request(CreateBotSessionRequest {
        parent: cas.instance().to_string(),
        bot_session: Some(BotSession {
            bot_id: spec.name.clone(),
            status: BotStatus::Ok as i32,
            worker: Some(worker(spec)),
            ..Default::default()
        }),
    });
    // The server may wait for a lease before it answers.
    req.set_timeout(POLL);
    match tokio::time::timeout(POLL + Duration::from_secs(10), bots.create_bot_session(req)).await {
        Err(_) => Err(CacheError::Remote {
            code: "remote-timed-out",
            uri: cas.spec().display().to_string(),
            message: "the Bots service did not answer CreateBotSession".into(),
        }),
        Ok(Err(s)) => Err(cas.failed(&s)),
        Ok(Ok(r)) => Ok(r.into_inner()),
    }
}

async fn update(
    cas: &Reapi,
    bots: &mut BotsClient<tonic::transport::Channel>,
    session: &BotSession,
    idle: bool,
) -> Result<BotSession, tonic::Status> {
    let mut req = cas.request(UpdateBotSessionRequest {
        name: session.name.clone(),
        bot_session: Some(session.clone()),
        update_mask: None,
    });
    let wait = if idle { POLL } else { KEEPALIVE };
    req.set_timeout(wait);
    match tokio::time::timeout(wait + Duration::from_secs(10), bots.update_bot_session(req)).await {
        Err(_) => Err(tonic::Status::deadline_exceeded(
            "the Bots service did not answer UpdateBotSession",
        )),
        Ok(r) => r.map(|r| r.into_inner()),
    }
}
