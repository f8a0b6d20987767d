//! The executor: sends one command as a REAPI action to a server's Execution service
//! and brings back what it made. Main type: [`Executor`].
//!
//! The whole exchange is bounded by one deadline (uploads, the queue, the run, the
//! answer): a server that is gone, slow or wrong costs at most that, and the caller
//! compiles locally. While no worker is known to serve the action's platform, its wait
//! in the queue is bounded too ([`QueueWait`]): a farm with no worker for it costs that
//! wait, not the deadline. Nothing the answer says is trusted for coming from the server: an
//! output is named by digest and checked against it when fetched, and what the worker
//! observed is judged by the caller.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use bazel_remote_apis::build::bazel::remote::execution::v2 as re;
use bazel_remote_apis::google::longrunning::operation;
use bazel_remote_apis::google::longrunning::operations_client::OperationsClient;
use futures_util::StreamExt;
use prost::Message as _;
use re::execution_client::ExecutionClient;

use super::tree::{Bytes, InputRoot};
use crate::config::RemoteSpec;
use crate::errors::CacheError;
use crate::reapi::{Reapi, Source};

/// The blobs of a Merkle tree, by hash: its directories and its files.
fn add_tree(blobs: &mut BTreeMap<String, (re::Digest, Source)>, merkle: super::tree::Merkle) {
    for (d, bytes) in merkle.directories {
        blobs.insert(
            d.hash.clone(),
            (d, Source::Bytes(std::sync::Arc::new(bytes))),
        );
    }
    for (d, bytes) in merkle.files {
        let source = match bytes {
            Bytes::File(p) | Bytes::Hashed(p, _) => Source::Files(vec![p]),
            Bytes::Inline(b) => Source::Bytes(b),
        };
        blobs.insert(d.hash.clone(), (d, source));
    }
}

/// How often a compile waiting for a worker looks whether another compile of the build
/// has given its platform up.
const GIVEN_UP_POLL: Duration = Duration::from_millis(250);

/// One command to run remotely.
#[derive(Clone, Debug, Default)]
pub struct ExecRequest {
    /// The program and its arguments, as the worker runs them.
    pub arguments: Vec<String>,
    /// The whole environment of the command (nothing else is set).
    pub env: BTreeMap<String, String>,
    /// Where it runs, relative to the input root (empty: the root).
    pub working_directory: String,
    /// What it may read.
    pub inputs: InputRoot,
    /// The files it must make, relative to the working directory.
    pub outputs: Vec<String>,
    /// The platform properties a worker must offer to run it.
    pub platform: BTreeMap<String, String>,
    /// Whether the server may answer from its action cache. Off where the caller judges
    /// every run itself: a cached result carries no observation of its own.
    pub cache_lookup: bool,
}

/// What a remote run gave.
#[derive(Clone, Debug)]
pub struct Executed {
    pub exit_code: i32,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    /// The outputs it made, by path, with their digests (fetched with
    /// [`Executor::fetch`]).
    pub outputs: BTreeMap<String, re::Digest>,
    /// The worker that ran it, as it names itself.
    pub worker: String,
    /// Whether the server answered from its action cache.
    pub cached: bool,
    /// Bytes sent (blobs the server lacked) and received (stdout, stderr; outputs
    /// are counted by [`Executor::fetch`]).
    pub bytes_up: u64,
    pub bytes_down: u64,
}

/// How long an action may wait for a worker to take it, while no worker is known to
/// serve its platform: when the wait is over and still none is, the action is cancelled
/// and [`Executor::execute`] answers [`CacheError::ExecutorUnserved`].
pub struct QueueWait<'a> {
    pub limit: Duration,
    /// When the build's first compile of this platform began to wait (asked when this
    /// one begins to: its action sent, its inputs uploaded): every compile of it waits
    /// until that time and `limit` at most, so a farm with no worker for it costs one
    /// wait per build, not one per compile in a row.
    pub since: &'a (dyn Fn() -> std::time::SystemTime + Sync),
    /// Whether another compile of the build gave the platform up meanwhile: this one
    /// gives up at once.
    pub given_up: &'a (dyn Fn() -> bool + Sync),
    /// Whether a worker took an action of this platform meanwhile (another compile of
    /// the build): then this one waits on, to the deadline.
    pub served: &'a (dyn Fn() -> bool + Sync),
    /// Told once, when a worker takes this action.
    pub taken: &'a (dyn Fn() + Sync),
    /// The operation: `None` until the action is asked to run, then the name the server
    /// gave it (empty until its first answer). The caller cancels it when a compile here
    /// of the same unit ended first (`XCACHE_EXECUTOR_HEDGE`).
    pub operation: &'a std::sync::Mutex<Option<String>>,
}

/// A client of one server's Execution service (and its CAS).
pub struct Executor {
    cas: Reapi,
    deadline: Duration,
}

impl Executor {
    /// The client for `spec` (a `grpc://` URI); each [`Executor::execute`] may take
    /// `deadline` at most. Must run inside the runtime that drives it.
    pub fn new(spec: &RemoteSpec, deadline: Duration) -> Result<Executor, CacheError> {
        // A single call (one upload, one read) is bounded by the same deadline.
        Ok(Executor {
            cas: Reapi::new(spec, deadline)?,
            deadline,
        })
    }

    /// Runs `req` remotely: uploads what the server lacks, asks for the run, waits for
    /// its answer. An `Err` is "no usable answer in time".
    /// `queue`: how long it may wait for a worker, where no worker is known to serve it.
    pub async fn execute(
        &self,
        req: &ExecRequest,
        queue: Option<&QueueWait<'_>>,
    ) -> Result<Executed, CacheError> {
        match tokio::time::timeout(self.deadline, self.execute_inner(req, queue)).await {
            Ok(r) => r,
            Err(_) => Err(CacheError::Remote {
                code: "remote-timed-out",
                uri: self.cas.spec().display().to_string(),
                message: format!(
                    "the remote execution gave no answer within {:?}",
                    self.deadline
                ),
            }),
        }
    }

    async fn execute_inner(
        &self,
        req: &ExecRequest,
        queue: Option<&QueueWait<'_>>,
    ) -> Result<Executed, CacheError> {
        let merkle = req.inputs.merkle()?;
        #[expect(
            deprecated,
            reason = "servers before REAPI 2.2 read the platform from the Command"
        )]
        let command = re::Command {
            arguments: req.arguments.clone(),
            environment_variables: req
                .env
                .iter()
                .map(|(k, v)| re::command::EnvironmentVariable {
                    name: k.clone(),
                    value: v.clone(),
                })
                .collect(),
            output_paths: req.outputs.clone(),
            working_directory: req.working_directory.clone(),
            platform: Some(self.platform(req)),
            ..Default::default()
        };
        let command_bytes = command.encode_to_vec();
        let command_digest = crate::reapi::digest_of(&command_bytes);
        let action = re::Action {
            command_digest: Some(command_digest.clone()),
            input_root_digest: Some(merkle.root.clone()),
            do_not_cache: !req.cache_lookup,
            platform: Some(self.platform(req)),
            ..Default::default()
        };
        let action_bytes = action.encode_to_vec();
        let action_digest = crate::reapi::digest_of(&action_bytes);

        let mut blobs: BTreeMap<String, (re::Digest, Source)> = BTreeMap::new();
        let inline = |b: Vec<u8>| Source::Bytes(std::sync::Arc::new(b));
        blobs.insert(
            command_digest.hash.clone(),
            (command_digest.clone(), inline(command_bytes)),
        );
        blobs.insert(
            action_digest.hash.clone(),
            (action_digest.clone(), inline(action_bytes)),
        );
        add_tree(&mut blobs, merkle);
        let bytes_up = self.send_missing(blobs).await?;

        let response = self.run(&action_digest, req.cache_lookup, queue).await?;
        if let Some(s) = response.status.as_ref().filter(|s| s.code != 0) {
            return Err(self.failed(s.code, &s.message));
        }
        let Some(result) = response.result else {
            return Err(self.unexpected("the execution answered no result"));
        };
        let mut bytes_down = 0u64;
        let stdout = self
            .small(result.stdout_digest.as_ref(), &result.stdout_raw)
            .await?;
        let stderr = self
            .small(result.stderr_digest.as_ref(), &result.stderr_raw)
            .await?;
        bytes_down += (stdout.len() + stderr.len()) as u64;
        let mut outputs = BTreeMap::new();
        for f in result.output_files {
            // Only what was asked for, under the name it was asked for.
            if let Some(d) = f.digest
                && req.outputs.contains(&f.path)
            {
                outputs.insert(f.path, d);
            }
        }
        Ok(Executed {
            exit_code: result.exit_code,
            stdout,
            stderr,
            outputs,
            worker: result
                .execution_metadata
                .map(|m| m.worker)
                .unwrap_or_default(),
            cached: response.cached_result,
            bytes_up,
            bytes_down,
        })
    }

    /// Sends the blobs of `root` the server lacks (a tree many actions share, sent once
    /// before them: a shipped toolchain). Its root digest and the bytes sent.
    pub async fn send_tree(&self, root: &InputRoot) -> Result<(re::Digest, u64), CacheError> {
        let merkle = root.merkle()?;
        let digest = merkle.root.clone();
        let mut blobs = BTreeMap::new();
        add_tree(&mut blobs, merkle);
        let sent = tokio::time::timeout(self.deadline, self.send_missing(blobs))
            .await
            .map_err(|_| CacheError::Remote {
                code: "remote-timed-out",
                uri: self.cas.spec().display().to_string(),
                message: format!("the upload took longer than {:?}", self.deadline),
            })??;
        Ok((digest, sent))
    }

    /// Which of the blobs of `root` the server lacks.
    pub async fn missing_of_tree(&self, root: &InputRoot) -> Result<usize, CacheError> {
        let merkle = root.merkle()?;
        let mut blobs = BTreeMap::new();
        add_tree(&mut blobs, merkle);
        Ok(self
            .cas
            .missing_of(blobs.values().map(|(d, _)| d.clone()).collect())
            .await?
            .len())
    }

    /// Uploads what the server lacks of `blobs`: one question for every blob, then each
    /// missing one. The bytes sent.
    async fn send_missing(
        &self,
        mut blobs: BTreeMap<String, (re::Digest, Source)>,
    ) -> Result<u64, CacheError> {
        let missing = self
            .cas
            .missing_of(blobs.values().map(|(d, _)| d.clone()).collect())
            .await?;
        let mut bytes_up = 0u64;
        for d in missing {
            if let Some((digest, source)) = blobs.remove(&d.hash) {
                let put = self.cas.put_blob(source).await?;
                if put.hash != digest.hash {
                    return Err(CacheError::Remote {
                        code: "remote-unavailable",
                        uri: self.cas.spec().display().to_string(),
                        message: "an input changed while it was sent".into(),
                    });
                }
                bytes_up += digest.size_bytes.max(0) as u64;
            }
        }
        Ok(bytes_up)
    }

    fn platform(&self, req: &ExecRequest) -> re::Platform {
        re::Platform {
            properties: req
                .platform
                .iter()
                .map(|(k, v)| re::platform::Property {
                    name: k.clone(),
                    value: v.clone(),
                })
                .collect(),
        }
    }

    /// One `Execute` call, followed to its end; with `queue`, given up (and cancelled)
    /// when no worker takes it within the wait and none is known to serve its platform.
    async fn run(
        &self,
        action_digest: &re::Digest,
        cache_lookup: bool,
        queue: Option<&QueueWait<'_>>,
    ) -> Result<re::ExecuteResponse, CacheError> {
        let mut client = ExecutionClient::new(self.cas.channel());
        let req = self.cas.request(re::ExecuteRequest {
            instance_name: self.cas.instance().to_string(),
            skip_cache_lookup: !cache_lookup,
            action_digest: Some(action_digest.clone()),
            ..Default::default()
        });
        let mut waiting = queue.map(|q| {
            let left = ((q.since)() + q.limit)
                .duration_since(std::time::SystemTime::now())
                .unwrap_or_default();
            (q, tokio::time::Instant::now() + left)
        });
        if let Some(q) = queue
            && let Ok(mut n) = q.operation.lock()
        {
            *n = Some(String::new());
        }
        let mut stream = client
            .execute(req)
            .await
            .map_err(|s| self.cas.failed(&s))?
            .into_inner();
        let mut name = String::new();
        loop {
            let next = match waiting {
                Some((q, end)) => {
                    // Looked at again now and then: another compile may learn first.
                    let tick = (tokio::time::Instant::now() + GIVEN_UP_POLL).min(end);
                    tokio::select! {
                        next = stream.next() => next,
                        () = tokio::time::sleep_until(tick) => {
                            if (q.served)() {
                                waiting = None;
                                continue;
                            }
                            let why = if (q.given_up)() {
                                "another compile of this build found no worker for it".to_string()
                            } else if tokio::time::Instant::now() >= end {
                                format!(
                                    "no worker took a compile within {:?} \
                                     (XCACHE_EXECUTOR_QUEUE_WAIT)",
                                    q.limit
                                )
                            } else {
                                continue;
                            };
                            self.cancel(&name).await;
                            return Err(CacheError::ExecutorUnserved {
                                uri: self.cas.spec().display().to_string(),
                                message: why,
                            });
                        }
                    }
                }
                None => stream.next().await,
            };
            let Some(op) = next else { break };
            let op = op.map_err(|s| self.cas.failed(&s))?;
            if name != op.name {
                name.clone_from(&op.name);
                if let Some(q) = queue
                    && let Ok(mut n) = q.operation.lock()
                {
                    *n = Some(op.name.clone());
                }
            }
            let response = match (op.done, op.result) {
                (false, _) => None,
                (true, Some(operation::Result::Response(any))) => Some(
                    re::ExecuteResponse::decode(any.value.as_slice()).map_err(|e| {
                        self.unexpected(&format!("the ExecuteResponse does not decode ({e})"))
                    })?,
                ),
                (true, Some(operation::Result::Error(s))) => {
                    return Err(self.failed(s.code, &s.message));
                }
                (true, None) => return Err(self.unexpected("the operation ended with no result")),
            };
            // A worker took it: it runs, or ran (a result from the action cache is no
            // worker's).
            let ran = response.as_ref().is_some_and(|r| !r.cached_result);
            if let Some((q, _)) = waiting
                && (ran || executing(op.metadata.as_ref()))
            {
                (q.taken)();
                waiting = None;
            }
            if let Some(response) = response {
                return Ok(response);
            }
        }
        Err(self.unexpected("the operation stream ended before the operation did"))
    }

    /// Asks the server to drop an action no worker took (best effort, briefly): it
    /// would wait in the queue for nobody, or its result is not wanted any more.
    pub async fn cancel(&self, name: &str) {
        if name.is_empty() {
            return;
        }
        let mut ops = OperationsClient::new(self.cas.channel());
        let req = self.cas.request(
            bazel_remote_apis::google::longrunning::CancelOperationRequest {
                name: name.to_string(),
            },
        );
        let _ = tokio::time::timeout(Duration::from_secs(2), ops.cancel_operation(req)).await;
    }

    /// stdout or stderr: inline, or a blob.
    async fn small(&self, digest: Option<&re::Digest>, raw: &[u8]) -> Result<Vec<u8>, CacheError> {
        match digest.filter(|d| d.size_bytes > 0) {
            None => Ok(raw.to_vec()),
            Some(d) => self
                .cas
                .blob(d)
                .await?
                .ok_or_else(|| self.unexpected("an output stream's blob is missing")),
        }
    }

    /// Fetches the output `digest` to `dest` (through a temporary file beside it,
    /// renamed once it hashed to its digest). The bytes fetched.
    pub async fn fetch(&self, digest: &re::Digest, dest: &Path) -> Result<u64, CacheError> {
        use std::io::Write;
        let dir = dest.parent().unwrap_or(Path::new("."));
        let tmp = tempfile::NamedTempFile::new_in(dir).map_err(|source| CacheError::Write {
            path: dir.to_path_buf(),
            source,
        })?;
        let mut file = tmp.as_file();
        let mut write_err = None;
        let got = self
            .cas
            .blob_to(digest, &mut |chunk| {
                if write_err.is_none()
                    && let Err(e) = file.write_all(chunk)
                {
                    write_err = Some(e);
                }
                Ok(())
            })
            .await?;
        if let Some(source) = write_err {
            return Err(CacheError::Write {
                path: dest.to_path_buf(),
                source,
            });
        }
        let Some(n) = got else {
            return Err(self.unexpected("an output's blob is missing"));
        };
        tmp.persist(dest).map_err(|e| CacheError::Write {
            path: dest.to_path_buf(),
            source: e.error,
        })?;
        Ok(n)
    }

    /// An output's bytes, in memory (for small ones: the observation record).
    pub async fn read(&self, digest: &re::Digest) -> Result<Option<Vec<u8>>, CacheError> {
        self.cas.blob(digest).await
    }

    /// The server ran the action and reports it failed (a gRPC status).
    fn failed(&self, code: i32, message: &str) -> CacheError {
        CacheError::Remote {
            code: "remote-unavailable",
            uri: self.cas.spec().display().to_string(),
            message: format!(
                "the remote execution failed ({code}: {})",
                first_line(message)
            ),
        }
    }

    fn unexpected(&self, what: &str) -> CacheError {
        CacheError::Remote {
            code: "remote-unavailable",
            uri: self.cas.spec().display().to_string(),
            message: format!("the remote did not answer as expected ({what})"),
        }
    }
}

fn first_line(s: &str) -> String {
    s.lines().next().unwrap_or("").chars().take(200).collect()
}

/// Whether `e` says the server cannot be used at all (it does not answer, refuses us,
/// or gave no answer within the deadline), rather than that one action failed: the
/// caller then gives the server up for the rest of its build.
pub fn is_unreachable(e: &CacheError) -> bool {
    match e {
        CacheError::Remote { code, message, .. } => match *code {
            "remote-timed-out" | "remote-denied" | "remote-config-invalid" => true,
            // A transport failure (connection refused, reset, no route).
            _ => message.contains("(Unavailable:") || message.contains("(Unknown: transport"),
        },
        _ => false,
    }
}

/// Whether an operation's metadata says a worker is running it.
fn executing(metadata: Option<&bazel_remote_apis::google::protobuf::Any>) -> bool {
    use re::execution_stage::Value as Stage;
    metadata
        .filter(|m| m.type_url.ends_with("ExecuteOperationMetadata"))
        .and_then(|m| re::ExecuteOperationMetadata::decode(m.value.as_slice()).ok())
        .is_some_and(|m| m.stage == Stage::Executing as i32 || m.stage == Stage::Completed as i32)
}
