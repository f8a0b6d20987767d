#!/usr/bin/env python3
"""bench/exec_report.py: the tables and the model of bench/exec.sh (remote execution on
hosts of their own or on loopback). Reads the records exec.sh wrote (RB_RECORDS: one
line per run: kind (plain, workers-N, hosts-N, first, unserved), workers up, round,
seconds, build CPU s, workers' CPU s, servers' CPU s, output checksum, report path or
"-", GNU time's peak RSS in KB, bytes the link to the farm sent and received or "-")
and writes RB_OUT (JSON). Besides the model below it prints what a toolchain's first
upload costs (first against hosts-N with as many hosts) and what the queue wait costs
(unserved against plain).

The model (the book's Design -> Remote execution explains it), from the reports' own
numbers:
  W    compile time of every unit, workers-0 (ms, sum of the units' compile_ms)
  Wr   the part of W that remote execution takes: the units workers ran in the runs
       with workers, at their workers-0 compile time
  CP   workers-0's critical path (ms), d the units on it that ran remotely elsewhere
  o    the time an action adds to a compile: its action time (first request to last
       output in place) less the same unit's workers-0 compile time (median)
  F    what a build spends outside compiling: workers-0's wall time less max(CP, W/c)
A worker runs one action at a time (run one per core). For M machines of k workers each
and c cores here:
  T(M) = F + max(CP + d*o, (W - Wr)/c, (Wr + A*o)/(M*k))
Checked against the runs here, where N workers share this machine's c cores with cargo,
so the remote work adds to the same cores: T_here(N) = F + max(CP + d*o, (W + A*x)/c,
(Wr + A*o)/N), x being the CPU an action costs beyond its compile (measured: all CPU of
the run with workers, build, workers and servers, less workers-0's, per action). o is
measured with queueing at the server included (a worker busy with another action), so
it is largest with one worker.
"""

import json
import os
import statistics
import sys

E = os.environ


def med(vals):
    vals = [v for v in vals if v is not None]
    return statistics.median(vals) if vals else None


def unit_id(u):
    return (u.get("package"), u.get("version"), u.get("crate_name"), u.get("kind"))


def num(v):
    return None if v in ("", "-") else float(v)


runs = []
for line in open(E["RB_RECORDS"]):
    f = line.rstrip("\n").split("\t")
    if len(f) < 12:
        continue
    kind, n, it, secs, cpu, wcpu, srv, out, report, rss, link_up, link_down = f[:12]
    rep = json.load(open(report)) if report != "-" else None
    runs.append({"kind": kind, "workers": int(n), "round": int(it), "seconds": float(secs),
                 "build_cpu": float(cpu), "workers_cpu": float(wcpu), "servers_cpu": float(srv),
                 "output": out, "peak_rss_kb": num(rss), "link_bytes_up": num(link_up),
                 "link_bytes_down": num(link_down), "report": rep})

ORDER = {"plain": 0, "workers-0": 1, "first": 2, "unserved": 9, "unserved-off": 10}
by_kind = {}
for r in runs:
    by_kind.setdefault(r["kind"], []).append(r)
kinds = sorted(by_kind, key=lambda k: (ORDER.get(k, 5), by_kind[k][0]["workers"]))
# The model's runs: workers-0 and the runs with N workers (hosts-N or workers-N).
by_n = {}
for k, rs in by_kind.items():
    if k == "workers-0" or (k.startswith(("hosts-", "workers-")) and rs[0]["workers"] > 0):
        by_n[rs[0]["workers"]] = rs
cores = int(E.get("RB_CPUS") or os.cpu_count() or 1)
fmt = lambda v, spec="{:.0f}": "-" if v is None else spec.format(v)
mb = lambda v: None if v is None else v / 1e6
print()
farm = E.get("RB_FARM", "loopback")
print(f"farm: {farm}" + (f", {E.get('RB_RTT_MS')} ms round trip between this machine and the farm"
                         if E.get("RB_RTT_MS") else "")
      + f"; load average at the end {E.get('RB_LOAD', '?')} on {cores} cores")

print(f"{'run':<10} {'n':>2} {'seconds':>8} {'pre-cargo':>9} {'remote':>6} {'fallback':>8} {'action ms':>9} "
      f"{'+ms/act':>8} {'MB up':>7} {'MB down':>7} {'CPU s':>6} {'wrk CPU':>7} {'srv CPU':>7}")
summary = {}
base = by_n.get(0, [])
base_compile = {}
for r in base:
    for u in r["report"]["units"]:
        if u.get("compile_ms") is not None and u.get("outcome") in ("miss", "uncacheable"):
            base_compile.setdefault(unit_id(u), []).append(u["compile_ms"])
base_compile = {k: med(v) for k, v in base_compile.items()}
rows2 = []
for kind in kinds:
    rs = by_kind[kind]
    n = rs[0]["workers"]
    actions, added, up, down, fallbacks = [], [], [], [], {}
    for r in rs:
        for u in (r["report"] or {}).get("units", []):
            x = u.get("remote_exec")
            if not x:
                continue
            if x.get("fallback"):
                fallbacks[x["fallback"]] = fallbacks.get(x["fallback"], 0) + 1
                continue
            actions.append(x.get("action_ms") or 0)
            up.append(x.get("bytes_up") or 0)
            down.append(x.get("bytes_down") or 0)
            local = base_compile.get(unit_id(u))
            if local is not None:
                added.append((x.get("action_ms") or 0) - local)
    k = len(rs)
    sm = lambda key: med([(r["report"] or {}).get("summary", {}).get(key) for r in rs])
    s = {
        "kind": kind, "workers": n, "rounds": k,
        "seconds": med([r["seconds"] for r in rs]),
        "before_cargo_ms": sm("before_cargo_ms"),
        "peak_rss_kb": med([r["peak_rss_kb"] for r in rs]),
        "front_end_peak_rss_kb": sm("front_end_peak_rss_kb"),
        "wrapper_peak_rss_kb": sm("wrapper_peak_rss_kb"),
        # What the front-end sent before cargo and how long it took (report fields of
        # main since 4acc6a8; absent from older reports: "-").
        "toolchain_sent_bytes": sm("toolchain_sent_bytes"),
        "toolchain_send_ms": sm("toolchain_send_ms"),
        "link_bytes_up": med([r["link_bytes_up"] for r in rs]),
        "link_bytes_down": med([r["link_bytes_down"] for r in rs]),
        "actions_bytes_up": med([sum(((u.get("remote_exec") or {}).get("bytes_up") or 0)
                                     for u in (r["report"] or {}).get("units", [])) for r in rs]),
        "build_cpu": med([r["build_cpu"] for r in rs]),
        "workers_cpu": med([r["workers_cpu"] for r in rs]),
        "servers_cpu": med([r["servers_cpu"] for r in rs]),
        "remote_compiled": len(actions) / k,
        "fallbacks": {why: c / k for why, c in fallbacks.items()},
        "action_ms_median": med(actions),
        "added_ms_per_action_median": med(added),
        "bytes_up_per_action": statistics.mean(up) if up else None,
        "bytes_down_per_action": statistics.mean(down) if down else None,
    }
    summary[kind] = s
    print(f"{kind:<10} {n:>2} {fmt(s['seconds'], '{:.2f}'):>8} {fmt(s['before_cargo_ms']):>9} "
          f"{fmt(s['remote_compiled']):>6} {fmt(sum(s['fallbacks'].values())):>8} "
          f"{fmt(s['action_ms_median']):>9} {fmt(s['added_ms_per_action_median']):>8} "
          f"{fmt(mb(s['bytes_up_per_action']), '{:.2f}'):>7} {fmt(mb(s['bytes_down_per_action']), '{:.2f}'):>7} "
          f"{fmt(s['build_cpu'], '{:.1f}'):>6} {fmt(s['workers_cpu'], '{:.1f}'):>7} {fmt(s['servers_cpu'], '{:.1f}'):>7}")
    if fallbacks:
        print(f"           compiled here after all: {', '.join(f'{w} {c / k:g}' for w, c in sorted(fallbacks.items()))}")
    kb_mb = lambda v: None if v is None else v / 1024
    rows2.append(f"{kind:<10} {fmt(mb(s['link_bytes_up']), '{:.1f}'):>10} {fmt(mb(s['link_bytes_down']), '{:.1f}'):>10} "
                 f"{fmt(mb(s['actions_bytes_up']), '{:.1f}'):>10} {fmt(kb_mb(s['peak_rss_kb'])):>9} "
                 f"{fmt(kb_mb(s['front_end_peak_rss_kb'])):>9} {fmt(kb_mb(s['wrapper_peak_rss_kb'])):>9}")
print(f"\n{'run':<10} {'link MB up':>10} {'link MB dn':>10} {'act MB up':>10} {'peak RSS':>9} "
      f"{'front-end':>9} {'wrapper':>9}   (RSS in MB)")
print("\n".join(rows2))

# What a toolchain's first upload costs, and what the queue wait costs.
firsts = {}
first = summary.get("first")
if first:
    steady = summary.get(f"hosts-{first['workers']}")
    firsts = {"first": first["seconds"], "steady": steady and steady["seconds"]}
    print(f"\nfirst upload of the toolchain (first against hosts-{first['workers']}, the same farm once it has it):")
    for label, key, conv, spec in (("wall s", "seconds", lambda v: v, "{:.2f}"),
                                   ("before cargo ms", "before_cargo_ms", lambda v: v, "{:.0f}"),
                                   ("sent ahead MB", "toolchain_sent_bytes", mb, "{:.1f}"),
                                   ("sending ms", "toolchain_send_ms", lambda v: v, "{:.0f}"),
                                   ("link MB up", "link_bytes_up", mb, "{:.1f}"),
                                   ("actions' MB up", "actions_bytes_up", mb, "{:.1f}")):
        a_, b_ = first.get(key), steady and steady.get(key)
        a_, b_ = (None if a_ is None else conv(a_)), (None if b_ is None else conv(b_))
        d = None if a_ is None or b_ is None else a_ - b_
        print(f"  {label:<16} first {fmt(a_, spec):>9}   steady {fmt(b_, spec):>9}   difference {fmt(d, spec):>9}")
        firsts[key] = {"first": a_, "steady": b_}
queue = {}
plain = summary.get("plain")
wait_s = E.get("RB_QUEUE_WAIT", "10s")
try:
    w = float(wait_s.rstrip("s")) if not wait_s.endswith("ms") else float(wait_s[:-2]) / 1000
except ValueError:
    w = None
for kind, how in (("unserved", "each compile sent also compiled here, XCACHE_EXECUTOR_HEDGE=on"),
                  ("unserved-off", "XCACHE_EXECUTOR_HEDGE=off")):
    uns = summary.get(kind)
    if not (uns and plain):
        continue
    d = uns["seconds"] - plain["seconds"]
    ok = None if w is None else uns["seconds"] <= plain["seconds"] + w
    w0 = summary.get("workers-0")
    fb = uns["fallbacks"]
    queue[kind] = {"unserved_seconds": uns["seconds"], "plain_seconds": plain["seconds"],
                   "difference": round(d, 2), "workers_0_seconds": w0 and w0["seconds"],
                   "queue_wait_seconds": w, "within_plain_plus_wait": ok,
                   "executor_unserved": fb.get("executor-unserved", 0),
                   "here_first": fb.get("here-first", 0)}
    print(f"\nqueue wait (no host can take the actions; XCACHE_EXECUTOR_QUEUE_WAIT {wait_s}; {how}): "
          f"{kind} {uns['seconds']:.2f} s, plain cargo {plain['seconds']:.2f} s, difference {d:+.2f} s; "
          f"fell back: {fmt(fb.get('here-first', 0))} here-first, "
          f"{fmt(fb.get('executor-unserved', 0))} executor-unserved; "
          f"within plain + wait: {'yes' if ok else 'no' if ok is not None else '?'}")
    if w0:
        # The same against the cache without an executor: the wait apart from what the
        # cache itself costs a cold build.
        print(f"  against workers-0 (the cache, no executor) {w0['seconds']:.2f} s: {uns['seconds'] - w0['seconds']:+.2f} s")

ref_out = next((r["output"] for r in runs if r["output"] != "-"), None)
outputs_ok = all(r["output"] in ("-", ref_out) for r in runs)
if not outputs_ok:
    print("warning: the programs built by the runs do not all print the same", file=sys.stderr)

model = None
summary_n = {n: summary[rs[0]["kind"]] for n, rs in by_n.items()}
if base and any(n > 0 for n in by_n):
    rep0 = base[0]["report"]
    units0 = rep0["units"]
    W = sum(u.get("compile_ms") or 0 for u in units0)
    CP = rep0["summary"].get("critical_path_ms") or 0
    remote_ids = set()
    for n, rs in by_n.items():
        if n == 0:
            continue
        for r in rs:
            for u in r["report"]["units"]:
                x = u.get("remote_exec")
                if x and not x.get("fallback"):
                    remote_ids.add(unit_id(u))
    Wr = sum(base_compile.get(i) or 0 for i in remote_ids)
    d = sum(1 for u in units0 if u.get("critical") and unit_id(u) in remote_ids)
    ns = sorted(n for n in by_n if n > 0)
    o = med([summary_n[n]["added_ms_per_action_median"] for n in ns])
    o = max(o or 0, 0)
    T0 = summary_n[0]["seconds"] * 1000
    F = max(T0 - max(CP, W / cores), 0)
    cpu0 = summary_n[0]["build_cpu"] + summary_n[0]["workers_cpu"] + summary_n[0]["servers_cpu"]
    checks = {}
    for n in ns:
        s = summary_n[n]
        A = s["remote_compiled"] or 0
        cpu_n = s["build_cpu"] + s["workers_cpu"] + s["servers_cpu"]
        x = (cpu_n - cpu0) * 1000 / A if A else 0
        predicted = F + max(CP + d * o, (W + A * x) / cores, (Wr + A * o) / n)
        # The same N workers, one per machine of their own: their compiles no longer
        # take these cores.
        apart = F + max(CP + d * o, (W - Wr) / cores, (Wr + A * o) / n)
        checks[n] = {"predicted_seconds": round(predicted / 1000, 2), "measured_seconds": s["seconds"],
                     "extra_cpu_ms_per_action": round(x), "apart_seconds": round(apart / 1000, 2)}
    k = cores
    A = max((summary_n[n]["remote_compiled"] or 0) for n in ns)
    elsewhere = {}
    for m in (1, 2, 4, 8, 16):
        t = F + max(CP + d * o, (W - Wr) / cores, (Wr + A * o) / (m * k))
        elsewhere[m] = round(t / 1000, 2)
    model = {"W_ms": W, "Wr_ms": Wr, "CP_ms": CP, "d": d, "o_ms": o, "F_ms": round(F),
             "cores": cores, "check_here": checks, "elsewhere_seconds_by_workers": elsewhere,
             "worker_cores": k}
    print(f"\nmodel (from the reports): W {W / 1000:.1f} s of compiles, of which workers take "
          f"Wr {Wr / 1000:.1f} s; critical path CP {CP / 1000:.1f} s with d {d} remote units on it; "
          f"o {o:.0f} ms added per action; outside compiles F {F / 1000:.1f} s; c {cores} cores here")
    for n, c in checks.items():
        print(f"  here, {n} worker(s) on these cores: predicted {c['predicted_seconds']:.2f} s, "
              f"measured {c['measured_seconds']:.2f} s (x = {c['extra_cpu_ms_per_action']} ms of CPU per action "
              f"beyond its compile); {n} machine(s) of one worker elsewhere: {c['apart_seconds']:.2f} s")
    print("  elsewhere (M machines of " + str(k) + " workers each): " +
          ", ".join(f"M={m}: {t:.2f} s" for m, t in elsewhere.items()) +
          f" (workers-0 here: {T0 / 1000:.2f} s)")

result = {"project": E.get("RB_PROJECT"), "total_seconds": int(E.get("RB_SECONDS_TOTAL", "0")),
          "farm": farm, "rtt_ms": E.get("RB_RTT_MS") or None, "load_average_at_end": E.get("RB_LOAD"),
          "outputs_match": outputs_ok, "first_upload": firsts, "queue_wait": queue,
          "runs": [{k: v for k, v in r.items() if k != "report"} for r in runs],
          "summary": summary, "model": model}
with open(E["RB_OUT"], "w") as fh:
    json.dump(result, fh, indent=2)
    fh.write("\n")
print(f"\nresults written to {E['RB_OUT']}")
