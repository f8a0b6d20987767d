//! One compile sent to the executor ([`attempt`]); an executor found down is given up
//! for the rest of the build (a state file the build's processes share).

use std::path::PathBuf;
use std::time::Instant;

use super::finish::finish;
use super::job::{Job, Origin, RemoteRun};
use super::outcome::{Fallback, Fell, said};
use super::request::request;
use super::roots::Roots;
use crate::config::ExecutorSpec;
use crate::errors::CacheError;
use crate::exec::Executor;

/// Runs the compile remotely. `Err` is why it must run here instead; a server found
/// down is recorded for the build and warned about once.
pub fn attempt(cx: &mut dyn Origin, job: &Job<'_>) -> Result<RemoteRun, Fell> {
    let state = state_file(job.spec);
    if let Ok(text) = std::fs::read_to_string(&state)
        && let Some(why) = text.strip_prefix("down\t")
    {
        return Err((
            Fallback::Unavailable,
            format!("given up earlier in this build ({})", why.trim()),
        ));
    }
    let t = Instant::now();
    let roots = Roots::new(cx.path_map());
    let req = request(cx, job, &roots).map_err(|m| (Fallback::InputRoot, m))?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| (Fallback::Failed, format!("no I/O runtime ({e})")))?;
    let result = rt.block_on(async {
        let ex = Executor::new(&job.spec.server, job.spec.deadline)
            .map_err(|e| (Fallback::Unavailable, said(&e)))?;
        let run = ex.execute(&req).await.map_err(|e| {
            let down = crate::exec::is_unreachable(&e);
            (
                if down {
                    Fallback::Unavailable
                } else {
                    Fallback::Failed
                },
                said(&e),
            )
        })?;
        finish(cx, job, &roots, &ex, run).await
    });
    match result {
        Ok(mut done) => {
            done.record.action_ms = t.elapsed().as_millis() as u64;
            Ok(done)
        }
        Err((Fallback::Unavailable, why)) => {
            let _ = crate::fsx::write_atomic(&state, format!("down\t{why}\n").as_bytes());
            cx.warn(&CacheError::Executor {
                uri: job.spec.server.display().to_string(),
                message: format!("{why}; compiles run here for the rest of the build"),
            });
            Err((Fallback::Unavailable, why))
        }
        Err(e) => Err(e),
    }
}

/// The file that says, for the processes of one build, that the executor is down.
fn state_file(spec: &ExecutorSpec) -> PathBuf {
    let id = crate::key::KeyHasher::new("executor-state")
        .str("uri", spec.server.display())
        .finish();
    std::env::temp_dir().join(format!(
        "xcache-executor-{}-{}",
        std::os::unix::process::parent_id(),
        &id.to_hex()[..16]
    ))
}
