//! The lifecycle's order, once for every kind of unit ([`run_cached`]): a reason known
//! before anything runs, the key, a hit, or the real run observed, its inputs and outputs
//! (judged after cargo went on where they can be), the roots to bind, the store, one event.

use std::path::PathBuf;
use std::time::Instant;

use super::cached::{Cached, OutSource};
use super::context::Cx;
use super::emit::event;
use super::lookup::try_hit;
use crate::errors::CacheError;
use crate::key::{Input, InputKind, Key};
use crate::reason::Uncacheable;
use crate::store::{BoundBy, PutOutcome};
use crate::wrapper::Outcome;
use crate::wrapper::background::{self, Release, Stamps};
use crate::wrapper::event::CpuTimes;

/// Runs one unit through the cache and returns the exit code to give cargo.
pub(in crate::wrapper) fn run_cached(unit: &mut impl Cached, cx: &mut Cx) -> i32 {
    cx.start_event(&unit.record(cx));
    if let Some(message) = cx.cfg.remote_error.clone() {
        cx.warn(&CacheError::RemoteConfig(message));
    }
    if let Some(message) = cx.cfg.executor_error.clone() {
        cx.warn(&CacheError::Executor {
            uri: crate::config::vars::EXECUTOR.to_string(),
            message,
        });
    }
    let mut reason = unit.refusal(cx);
    if reason.is_none() {
        cx.open_store();
    }
    let mut l1 = None;
    if reason.is_none() && cx.store.is_some() {
        match cx.phase("key", |cx| unit.l1(cx)) {
            Ok(k) => l1 = Some(k),
            Err(u) => reason = Some(u),
        }
    }
    if let (Some(key), None) = (&l1, reason)
        && let Some(code) = try_hit(unit, cx, key)
    {
        return code;
    }
    if reason.is_none() {
        reason = unit.reason_after_miss();
    }
    let observer = match (&l1, reason) {
        (Some(_), None) => match cx.phase("observe", |cx| cx.observer()) {
            Ok(o) => Some(o),
            Err(u) => {
                reason = Some(u);
                None
            }
        },
        _ => None,
    };
    let t = Instant::now();
    let cpu = CpuTimes::now();
    let ran = unit.run(cx, observer);
    cx.run_ms = t.elapsed().as_millis() as u64;
    cx.compile_cpu_ms = CpuTimes::now().children_ms.saturating_sub(cpu.children_ms);
    let ran = match ran {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: xcache: failed to run the compiler or build script: {e}");
            return 1;
        }
    };
    if ran.code != 0 {
        let ev = event(
            unit,
            cx,
            Outcome::Error,
            Some(unit.failure_code().into()),
            None,
            0,
            l1,
        );
        cx.finish_event(&ev);
        return ran.code;
    }
    let mut stored: Option<(Key, PutOutcome)> = None;
    if let (Some(l1_key), None) = (&l1, reason) {
        // Outputs that follow from what the unit read (a run's outputs are the files
        // it wrote) are judged first; when every file they can be is known, after cargo
        // went on all the same (stamped before, like any outputs).
        let mut released = false;
        if unit.outputs_follow_inputs()
            && unit.may_store_in_background(cx)
            && let Some(dir) = cx.cfg.pending.clone()
            && let Some(paths) = unit.possible_outputs(cx)
        {
            match background::release(&dir, Stamps::of(paths.iter().map(PathBuf::as_path))) {
                Release::Parent => return 0,
                Release::Child(pending) => {
                    cx.enter_background(pending);
                    released = true;
                }
                Release::Stay => {}
            }
        }
        let read_first = unit
            .outputs_follow_inputs()
            .then(|| cx.phase("inputs", |cx| unit.inputs(cx, &ran)))
            .transpose();
        let mut listed = read_first
            .and_then(|read| Ok((read, cx.phase("outputs", |cx| unit.outputs(cx, &ran))?)));
        if let Ok((_, files)) = &mut listed
            && !released
            && let Some(dir) = cx.cfg.pending.clone()
            && unit.may_store_in_background(cx)
        {
            unit.before_release(cx, files);
            let stamps = Stamps::of(files.iter().filter_map(|f| match &f.source {
                OutSource::File(p) => Some(p.as_path()),
                OutSource::Text(_) => None,
            }));
            match background::release(&dir, stamps) {
                Release::Parent => return 0,
                Release::Child(pending) => cx.enter_background(pending),
                Release::Stay => {}
            }
        }
        let attempt = listed.and_then(|(read, files)| match read {
            Some(inputs) => Ok((inputs, files)),
            None => Ok((cx.phase("inputs", |cx| unit.inputs(cx, &ran))?, files)),
        });
        match attempt {
            Ok((mut inputs, files)) => {
                let mut checked = Vec::new();
                let bind = cx.phase("check", |cx| {
                    unit.roots_to_bind(cx, l1_key, &ran, &inputs, &files)
                });
                for root in bind.iter().flat_map(|(roots, _)| roots) {
                    let token = root.kind.token();
                    if !inputs
                        .iter()
                        .any(|i| i.kind == InputKind::Root && i.name == token)
                    {
                        inputs.push(Input::new(InputKind::Root, token, root.real.clone()));
                        checked.push(BoundBy {
                            root: token.to_string(),
                            file: bind
                                .as_ref()
                                .map_or_else(String::new, |(_, why)| why.clone()),
                            count: 0,
                            c_file_name: false,
                        });
                    }
                }
                checked.extend(unit.bound_by_reads());
                let ansi = unit.ansi();
                match cx.phase("store", |cx| {
                    cx.store_entry(l1_key, inputs, &files, &ran, ansi, checked)
                }) {
                    Ok(Some(s)) => stored = Some(s),
                    Ok(None) => reason = Some(Uncacheable::OutputChangedWhileStored),
                    Err(e) => cx.warn(&e),
                }
            }
            Err(u) => reason = Some(u),
        }
    }
    cx.phase("finish", |cx| {
        unit.finished(cx, stored.as_ref().map(|(k, o)| (k, o)))
    });
    let (outcome, key, bytes) = match (&stored, reason) {
        (_, Some(_)) => (Outcome::Uncacheable, None, 0),
        (Some((k, o)), None) => (Outcome::Miss, Some(*k), o.bytes),
        (None, None) => (Outcome::Miss, None, 0),
    };
    let mut ev = event(
        unit,
        cx,
        outcome,
        reason.map(|r| r.code().to_string()),
        key,
        bytes,
        l1,
    );
    ev.upload = stored.is_some() && cx.upload_later;
    ev.object_bytes = stored
        .as_ref()
        .map_or(0, |(_, o)| o.objects.iter().map(|b| b.len).sum());
    cx.finish_event(&ev);
    if let Some(pending) = cx.background.take() {
        pending.done();
    }
    0
}
