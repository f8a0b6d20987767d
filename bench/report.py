#!/usr/bin/env python3
"""Report of bench/run.sh: per project a table of every tool's runs and the issue's targets.

bench/run.sh appends one tab-separated record per build to $RB_RECORDS and then
runs this script, which prints, per project and per cargo layout (legacy, build-dir,
new: XCACHE_BENCH_LAYOUTS), one row per run (tool and phase): the median wall time
over the rounds (with min and max), the ratio of that median to plain cargo's cold
median in the same layout, the peak RSS, hits/misses and the output check; then the
targets with PASS/FAIL; and writes $RB_OUT (results.json).

Helper modes read the counts of tools that have no common format:
  report.py --kache-counts FILE   FILE: `kache stats --last-build --json`
  report.py --mbx-counts FILE     FILE: the JSON report of `mbx build` (MBX_STATS_REPORT)
Each prints "hits misses uncacheable" ("-" for unknown).
  report.py --xcache-kinds FILE   FILE: cargo-xcache's report.json; prints its units
                                  per kind, "kind=hits/units/seeded,..."
"""

import glob
import json
import os
import platform
import statistics
import sys
import time

# 3: a project's summaries and targets are per layout ("layout" in each entry of
# "projects" and of "iterations"); the fields of 2 are all there.
FORMAT_VERSION = 3

# The targets of issue 4, per project.
# xcache-warm / plain-cold: 0.035 for `cargo build`, 0.05 for `cargo test` (issue 14).
WARM_MAX = 0.05 if os.environ.get("RB_COMMAND") == "test" else 0.035
# xcache-machine / plain-cold (another CARGO_HOME, PATH order, HOME): issue 27.
MACHINE_MAX = 0.05
COLD_MAX = 1.03  # xcache-cold / plain-cold (issue 22: within 3 %)
FLOOR_MAX = 0.15  # seconds: xcache-warm - (cargo's no-op + writing the target dir)
# xcache-warm / mbx-warm and xcache-machine / mbx-machine, in every layout.
MBX_MAX = 0.5

# cargo's build-dir layouts (bench/run.sh XCACHE_BENCH_LAYOUTS).
LAYOUT_LABELS = {
    "legacy": "legacy layout, the build dir is the target dir",
    "build-dir": "a build dir apart, CARGO_BUILD_BUILD_DIR",
    "new": "cargo's new layout, nightly, CARGO_UNSTABLE_BUILD_DIR_NEW_LAYOUT=true",
}
# The order xcache prints unit kinds in (src/report/render.rs); others after these.
KIND_ORDER = ("lib", "proc-macro", "build-script", "build-script-run", "bin", "test")

COLUMNS = ("project", "name", "tool", "phase", "iteration", "seconds", "peak_rss_kb",
           "daemon_peak_rss_kb", "packages_compiled", "units", "hits", "misses",
           "uncacheable", "seeded", "output", "floor", "cpu", "layout", "layout_check",
           "by_kind")


def num(s):
    if s in ("", "-", None):
        return None
    try:
        v = float(s)
    except ValueError:
        return None
    return int(v) if v.is_integer() else v


def find_dict_with(obj, key):
    """The first dict, depth first, that has `key`."""
    if isinstance(obj, dict):
        if key in obj:
            return obj
        obj = list(obj.values())
    if isinstance(obj, list):
        for v in obj:
            r = find_dict_with(v, key)
            if r is not None:
                return r
    return None


def kache_counts(path):
    """The build report's summary (docs/commands/report.schema.json of kache 2.0.0):
    hits are local + prefetched + remote hits; passthroughs and skipped are not cached."""
    try:
        summary = find_dict_with(json.load(open(path)), "local_hits")
    except Exception:
        summary = None
    if summary is None:
        print("- - -")
        return
    n = lambda k: summary.get(k) or 0
    hits = n("local_hits") + n("prefetch_hits") + n("remote_hits")
    print(hits, n("misses"), n("passthroughs") + n("skipped"))


def mbx_counts(path):
    """The JSON build report mbx writes to MBX_STATS_REPORT (StatsReport of mbx 1.29.1):
    misses count compilations that looked up and missed plus those it could not look up
    ("unconsulted"); bypasses are compilations it does not cache."""
    try:
        doc = json.load(open(path))
    except Exception:
        print("- - -")
        return
    bypassed = sum((doc.get("bypasses") or {}).values())
    print(doc.get("hits", "-"), (doc.get("misses") or 0) + (doc.get("unconsulted") or 0), bypassed)


def xcache_kinds(path):
    """cargo-xcache's report: units, hits and seeded units per kind, as
    "kind=hits/units/seeded,..." (summary.by_kind; seeded counted from the units)."""
    try:
        doc = json.load(open(path))
        by_kind = doc["summary"].get("by_kind") or {}
    except Exception:
        print("-")
        return
    seeded = {}
    for u in doc.get("units") or []:
        if u.get("seeded"):
            seeded[u.get("kind")] = seeded.get(u.get("kind"), 0) + 1
    print(",".join(f"{k}={c.get('hit', 0)}/{c.get('units', 0)}/{seeded.get(k, 0)}"
                   for k, c in by_kind.items()) or "-")


def parse_kinds(s):
    """The record's "kind=hits/units/seeded,..." as {kind: {"hits", "units", "seeded"}}."""
    out = {}
    for part in (s or "").split(","):
        kind, _, counts = part.partition("=")
        n = [num(x) for x in counts.split("/")]
        if kind and len(n) == 3 and None not in n:
            out[kind] = {"hits": n[0], "units": n[1], "seeded": n[2]}
    return out or None


def kind_sort_key(kind):
    return (KIND_ORDER.index(kind) if kind in KIND_ORDER else len(KIND_ORDER), kind)


def median(vals):
    vals = [v for v in vals if v is not None]
    return statistics.median(vals) if vals else None


def fmt(v, spec="{:.0f}"):
    return "-" if v is None else spec.format(v)


def overhead_of(log_root, project, layout, name):
    """Each round's report summary of one xcache run, from the copies run.sh keeps."""
    out = []
    for path in sorted(glob.glob(os.path.join(log_root, project, f"{project}.{layout}.{name}.*.report.json"))):
        try:
            out.append(json.load(open(path))["summary"])
        except (OSError, ValueError, KeyError):
            pass
    return out


def print_overhead(project, layout, order, log_root):
    """Where the wrappers' time went, per unit kind and part (medians over rounds, ms of
    cache work summed over units), and how much of it was on cargo's critical path."""
    if not log_root:
        return
    for name in order:
        if not name.startswith("xcache"):
            continue
        rounds = overhead_of(log_root, project, layout, name)
        if not rounds:
            continue
        kinds = sorted({k for r in rounds for k in r.get("overhead_parts", {})})
        parts = sorted({p for r in rounds for k in r.get("overhead_parts", {}).values() for p in k})
        print(f"  {name}: cache work by unit kind and part, ms (median of {len(rounds)} round(s)); "
              f"total {fmt(median([r.get('overhead_ms') for r in rounds]))} ms, on the critical path "
              f"{fmt(median([r.get('critical_overhead_ms') for r in rounds]))} ms, "
              f"stored after cargo went on {fmt(median([r.get('background_ms') for r in rounds]))} ms "
              f"(waited for after cargo {fmt(median([r.get('background_wait_ms') for r in rounds]))} ms), "
              f"before cargo {fmt(median([r.get('before_cargo_ms') for r in rounds]))} ms, "
              f"seeding {fmt(median([r.get('seed_ms') for r in rounds]))} ms, "
              f"capture {fmt(median([r.get('capture_ms') for r in rounds]))} ms "
              f"(and {fmt(median([r.get('capture_early_ms', 0) for r in rounds]))} ms while waiting); peak RSS: "
              f"wrapper {fmt(median([r.get('wrapper_peak_rss_kb') for r in rounds]) and median([r.get('wrapper_peak_rss_kb') for r in rounds]) / 1024)} MB, "
              f"front-end {fmt(median([r.get('front_end_peak_rss_kb') for r in rounds]) and median([r.get('front_end_peak_rss_kb') for r in rounds]) / 1024)} MB")
        cpu = {k: median([r.get(k) for r in rounds]) for k in
               ("wrapper_cpu_ms", "checks_cpu_ms", "front_end_cpu_ms", "compile_cpu_ms")}
        if cpu["compile_cpu_ms"]:
            own = sum(cpu[k] or 0 for k in ("wrapper_cpu_ms", "checks_cpu_ms", "front_end_cpu_ms"))
            sec = lambda k: fmt((cpu[k] or 0) / 1000, "{:.2f}")
            print(f"    CPU, s (medians): the wrappers' own {sec('wrapper_cpu_ms')}, "
                  f"the checks' programs {sec('checks_cpu_ms')}, "
                  f"the front-end {sec('front_end_cpu_ms')}; "
                  f"the compiles and runs {sec('compile_cpu_ms')}: "
                  f"the cache's own {100 * own / cpu['compile_cpu_ms']:.1f} % of theirs")
        print("    " + f"{'kind':<18}" + "".join(f"{p:>10}" for p in parts))
        for k in kinds:
            cells = [median([r.get("overhead_parts", {}).get(k, {}).get(p, 0) for r in rounds])
                     for p in parts]
            print("    " + f"{k:<18}" + "".join(f"{fmt(c):>10}" for c in cells))


def xcache_warnings(log_root, project, layout):
    """The lines of the xcache builds' output (cold, warm, machine) that say planting was
    off: cargo-xcache found the layout other than planned, or could not tell it."""
    out = []
    if not log_root:
        return out
    for path in sorted(glob.glob(os.path.join(log_root, project, f"{project}.{layout}.xcache*.log"))):
        if path.endswith(".floor.log"):
            continue
        try:
            for line in open(path, errors="replace"):
                if "planting off" in line:
                    out.append(f"{os.path.basename(path)}: {line.strip()}")
        except OSError:
            pass
    return out


def main():
    E = os.environ
    rows = []
    for line in open(E["RB_RECORDS"]):
        f = line.rstrip("\n").split("\t")
        # Records of older runs lack the trailing columns (floor, cpu, layout, ...).
        if len(f) < len(COLUMNS) - 5:
            continue
        f += ["-"] * (len(COLUMNS) - len(f))
        r = dict(zip(COLUMNS, f))
        for k in COLUMNS[4:14] + ("cpu",):
            r[k] = num(r[k])
        if r["layout"] in ("", "-"):
            r["layout"] = "legacy"
        r["layout_check"] = None if r["layout_check"] in ("", "-") else r["layout_check"]
        r["by_kind"] = parse_kinds(r["by_kind"])
        # The warm floor: cargo's no-op and the copy of the target dir, seconds.
        noop, _, copy = r["floor"].partition(":")
        r["floor_noop"], r["floor_copy"] = num(noop), num(copy)
        r["floor"] = (r["floor_noop"] + r["floor_copy"]
                      if r["floor_noop"] is not None and r["floor_copy"] is not None else None)
        rows.append(r)

    strict = E.get("RB_STRICT") == "1"
    any_failed = False
    projects_out = []
    # One table and one set of targets per project and layout: every ratio is to plain
    # cargo's cold build in the same layout.
    for project, layout in dict.fromkeys((r["project"], r["layout"]) for r in rows):
        prow = [r for r in rows if r["project"] == project and r["layout"] == layout]
        order = list(dict.fromkeys(r["name"] for r in prow))
        ref_outputs = {r["output"] for r in prow if r["name"] == "plain-cold"}
        ref = next(iter(ref_outputs)) if len(ref_outputs) == 1 else None
        # Without a program from plain cargo (a project without a binary named
        # after its package) there is nothing to compare with.
        checked = ref not in ("missing", "failed")
        summary = {}
        for name in order:
            its = [r for r in prow if r["name"] == name]
            secs = [r["seconds"] for r in its if r["seconds"] is not None]
            peaks = [max(p for p in (r["peak_rss_kb"], r["daemon_peak_rss_kb"]) if p is not None)
                     for r in its if r["peak_rss_kb"] is not None or r["daemon_peak_rss_kb"] is not None]
            outputs_ok = (ref is not None and all(r["output"] == ref for r in its)) if checked else None
            kinds = sorted({k for r in its for k in (r["by_kind"] or {})}, key=kind_sort_key)
            summary[name] = {
                "name": name, "tool": its[0]["tool"], "phase": its[0]["phase"], "layout": layout,
                "n": len(its),
                "seconds_median": median(secs),
                "seconds_min": min(secs) if secs else None,
                "seconds_max": max(secs) if secs else None,
                "seconds_all": secs,
                # The larger of the build's tree and the tool's daemon, the most of any round.
                "peak_rss_kb": max(peaks) if peaks else None,
                "daemon_peak_rss_kb": median([r["daemon_peak_rss_kb"] for r in its]),
                "packages_compiled": median([r["packages_compiled"] for r in its]),
                "units": median([r["units"] for r in its]),
                "hits": median([r["hits"] for r in its]),
                "misses": median([r["misses"] for r in its]),
                "uncacheable": median([r["uncacheable"] for r in its]),
                # xcache: units planted from the seed pack that cargo found fresh.
                "seeded": median([r["seeded"] for r in its]),
                "output_matches_plain": outputs_ok,
                "floor_seconds": median([r["floor"] for r in its]),
                "floor_noop_seconds": median([r["floor_noop"] for r in its]),
                "floor_copy_seconds": median([r["floor_copy"] for r in its]),
                # The machine's CPU seconds during the run (bench/run.sh cpu_ticks).
                "cpu_seconds_median": median([r["cpu"] for r in its]),
                "cpu_seconds_all": [r["cpu"] for r in its],
                # xcache: per unit kind, the medians of hits, units and seeded units.
                "by_kind": {k: {c: median([(r["by_kind"] or {}).get(k, {}).get(c) for r in its])
                                for c in ("hits", "units", "seeded")} for k in kinds} or None,
                # Where cargo kept the units, each round: "ok:" or "WRONG:" and the counts
                # (bench/run.sh layout_seen).
                "layout_checks": [r["layout_check"] for r in its],
            }
        plain = summary.get("plain-cold", {}).get("seconds_median")
        plain_cpu = summary.get("plain-cold", {}).get("cpu_seconds_median")
        # Each round builds plain cargo first, then every tool: a run's ratio to the plain
        # build of its own round shares that round's conditions (the host's load, the file
        # system's state), which the ratio of two medians across rounds does not.
        plain_by_round = {r["iteration"]: r for r in prow if r["name"] == "plain-cold"}

        def paired(name, key):
            out = []
            for r in prow:
                p = plain_by_round.get(r["iteration"])
                if r["name"] == name and p and r[key] is not None and p[key]:
                    out.append(round(r[key] / p[key], 4))
            return out
        for s in summary.values():
            m = s["seconds_median"]
            s["ratio_vs_plain_cold"] = round(m / plain, 4) if m is not None and plain else None
            c = s["cpu_seconds_median"]
            s["cpu_ratio_vs_plain_cold"] = round(c / plain_cpu, 4) if c is not None and plain_cpu else None
            s["paired_ratios_vs_plain_cold"] = paired(s["name"], "seconds")
            s["paired_ratio_median"] = median(s["paired_ratios_vs_plain_cold"])
            s["paired_cpu_ratios_vs_plain_cold"] = paired(s["name"], "cpu")
            s["paired_cpu_ratio_median"] = median(s["paired_cpu_ratios_vs_plain_cold"])
            # The warm build against the floor measured right after it, in its round.
            s["minus_floor_all"] = [round(r["seconds"] - r["floor"], 3) for r in prow
                                    if r["name"] == s["name"] and r["seconds"] is not None
                                    and r["floor"] is not None]
            s["minus_floor_median"] = median(s["minus_floor_all"])

        print(f"\n== {project}, layout {layout}: {LAYOUT_LABELS.get(layout, layout)}"
              f"\n   (cargo {E.get('RB_COMMAND', 'build')}, {E.get('RB_PROFILE', 'dev')} profile, {E.get('RB_REPEAT', '1')} round(s); "
              "seconds: median [min-max]; checkouts moved and target dirs empty for warm runs; "
              "CPU s: the whole machine's CPU time during the run, background work included"
              + ("; cargo-xcache runs with an empty private directory each" if E.get("RB_FRESH_PRIVATE") == "1" else "")
              + ")")
        print(f"{'run':<17} {'n':>2} {'median s':>9} {'min-max':>13} {'vs plain':>9} {'RSS MB':>7} "
              f"{'daemon MB':>9} {'compiled':>8} {'hits/misses':>12} {'seeded':>6} {'output':>7} "
              f"{'CPU s':>7} {'CPU vs plain':>12}")
        for name in order:
            s = summary[name]
            hm = "-" if s["hits"] is None and s["misses"] is None else f"{fmt(s['hits'])}/{fmt(s['misses'])}"
            rng = f"{fmt(s['seconds_min'], '{:.2f}')}-{fmt(s['seconds_max'], '{:.2f}')}"
            mb = lambda kb: None if kb is None else kb / 1024
            out = {True: "same", False: "DIFFERS", None: "-"}[s["output_matches_plain"]]
            print(f"{name:<17} {s['n']:>2} {fmt(s['seconds_median'], '{:.2f}'):>9} {rng:>13} "
                  f"{fmt(s['ratio_vs_plain_cold'], '{:.3f}'):>9} {fmt(mb(s['peak_rss_kb'])):>7} "
                  f"{fmt(mb(s['daemon_peak_rss_kb'])):>9} {fmt(s['packages_compiled']):>8} {hm:>12} "
                  f"{fmt(s['seeded']):>6} {out:>7} {fmt(s['cpu_seconds_median'], '{:.2f}'):>7} "
                  f"{fmt(s['cpu_ratio_vs_plain_cold'], '{:.3f}'):>12}")

        fl = summary.get("xcache-warm", {})
        if fl.get("floor_seconds") is not None:
            print(f"  floor of the warm build: {fl['floor_seconds']:.2f} s (cargo's no-op on that tree "
                  f"{fl['floor_noop_seconds']:.2f} s + writing its target dir{' and build dir' if layout == 'build-dir' else ''} again "
                  f"{fl['floor_copy_seconds']:.2f} s); xcache-warm "
                  f"{fmt(fl['seconds_median'], '{:.2f}')} s, "
                  f"{fmt(None if fl['seconds_median'] is None else fl['seconds_median'] - fl['floor_seconds'], '{:+.2f}')} s from it")
        for name in order:
            sm = summary[name]
            if name != "plain-cold" and sm["phase"] == "cold" and sm["paired_ratios_vs_plain_cold"]:
                print(f"  {name} / plain-cold, round by round: "
                      + ", ".join(f"{x:.3f}" for x in sm["paired_ratios_vs_plain_cold"])
                      + f" (median {sm['paired_ratio_median']:.3f}); CPU: "
                      + ", ".join(f"{x:.3f}" for x in sm["paired_cpu_ratios_vs_plain_cold"])
                      + (f" (median {sm['paired_cpu_ratio_median']:.3f})"
                         if sm["paired_cpu_ratio_median"] is not None else ""))
        if fl.get("minus_floor_all"):
            print("  xcache-warm - its round's floor, s: "
                  + ", ".join(f"{x:+.2f}" for x in fl["minus_floor_all"])
                  + f" (median {fl['minus_floor_median']:+.2f})")
        print_overhead(project, layout, order, E.get("RB_LOG_ROOT"))
        # xcache beside mbx, warm and on another machine.
        pairs = []
        for phase, label in (("warm", "warm"), ("machine", "another machine")):
            x = summary.get(f"xcache-{phase}", {}).get("seconds_median")
            m = summary.get(f"mbx-{phase}", {}).get("seconds_median")
            if x is not None and m is not None:
                pairs.append(f"{label} {x:.2f} s against {m:.2f} s"
                             + (f" ({x / m:.3f} of mbx's time)" if m else ""))
        if pairs:
            print("  xcache beside mbx (medians): " + "; ".join(pairs))
        # xcache's units per kind where another machine builds (and warm), from its report.
        for name in ("xcache-warm", "xcache-machine"):
            bk = summary.get(name, {}).get("by_kind")
            if not bk:
                continue
            cells = []
            for k, c in bk.items():
                h, u, sd = c["hits"], c["units"], c["seeded"]
                miss = None if h is None or u is None else u - h
                cells.append(f"{k} {fmt(h)}/{fmt(miss)}" + (f" ({fmt(sd)} seeded)" if sd else ""))
            print(f"  {name} by unit kind, hits/misses (medians; misses: units not restored "
                  f"or seeded): " + ", ".join(cells))
        # Did the layout take effect? Every run's units where the layout keeps them.
        checks = [(name, r) for name in order for r in summary[name]["layout_checks"] if r]
        wrong = [(name, r) for name, r in checks if not r.startswith("ok:")]
        layout_ok = None if not checks else not wrong
        if layout_ok:
            print(f"  layout check: PASS (every build kept cargo's units where the {layout} layout "
                  f"keeps them; units legacy/new, e.g. {checks[0][0]}: {checks[0][1][3:]})")
        elif wrong:
            print(f"  layout check: FAIL, cargo's units not where the {layout} layout keeps them "
                  "(units legacy/new): " + "; ".join(f"{n}: {r.split(':', 1)[1]}" for n, r in wrong))
        warnings = xcache_warnings(E.get("RB_LOG_ROOT"), project, layout)
        for w in warnings[:10]:
            print(f"  cargo-xcache warned: {w}")

        targets = []

        def target(key, label, value, bound, ok):
            targets.append({"key": key, "label": label, "value": value, "bound": bound,
                            "pass": ok})

        xw = summary.get("xcache-warm", {}).get("seconds_median")
        r = round(xw / plain, 4) if xw is not None and plain else None
        target("xcache_warm_over_plain_cold", "xcache-warm / plain-cold", r, f"<= {WARM_MAX}",
               None if r is None else r <= WARM_MAX)
        for name, s in summary.items():
            if s["phase"] == "warm" and s["tool"] not in ("xcache", "xcache-base", "plain"):
                other = s["seconds_median"]
                r = round(xw / other, 4) if xw is not None and other else None
                target(f"xcache_warm_over_{s['tool']}_warm", f"xcache-warm / {name}", r, "< 1",
                       None if r is None else r < 1)
        xm = summary.get("xcache-machine", {}).get("seconds_median")
        r = round(xm / plain, 4) if xm is not None and plain else None
        target("xcache_machine_over_plain_cold", "xcache-machine / plain-cold", r, f"<= {MACHINE_MAX}",
               None if r is None else r <= MACHINE_MAX)
        # Against mbx, warm and on another machine: at most half its time.
        for phase in ("warm", "machine"):
            if f"mbx-{phase}" not in summary:
                continue
            x = summary.get(f"xcache-{phase}", {}).get("seconds_median")
            m = summary[f"mbx-{phase}"]["seconds_median"]
            r = round(x / m, 4) if x is not None and m else None
            target(f"xcache_{phase}_over_mbx_{phase}_half", f"xcache-{phase} / mbx-{phase}", r,
                   f"<= {MBX_MAX}", None if r is None else r <= MBX_MAX)
        # Both from the rounds' pairs (issue 22: "median of >= 3 interleaved pairs"): the
        # warm build against the floor measured right after it, the cold build against
        # plain cargo's of the same round.
        d = summary.get("xcache-warm", {}).get("minus_floor_median")
        target("xcache_warm_minus_floor", "xcache-warm - floor (s)", d, f"<= {FLOOR_MAX}",
               None if d is None else d <= FLOOR_MAX)
        r = summary.get("xcache-cold", {}).get("paired_ratio_median")
        target("xcache_cold_over_plain_cold", "xcache-cold / plain-cold", r, f"<= {COLD_MAX}",
               None if r is None else r <= COLD_MAX)
        outputs_ok = all(s["output_matches_plain"] for s in summary.values()) if checked else None
        # Before/after in one run (XCACHE_BENCH_BASE_BIN): not a target, a measure of what
        # the commits between the two binaries cost or saved.
        before_after = {}
        for phase in ("cold", "warm", "machine"):
            now = summary.get(f"xcache-{phase}", {}).get("seconds_median")
            base = summary.get(f"xcache-base-{phase}", {}).get("seconds_median")
            if now is not None and base:
                before_after[phase] = round(now / base, 4)
        if before_after:
            print("this build against the base binary (xcache / xcache-base, medians): "
                  + ", ".join(f"{p} {r:.3f}" for p, r in before_after.items()))
        print("targets (medians; the last two from the rounds' pairs):")
        for t in targets:
            verdict = "not measured" if t["pass"] is None else ("PASS" if t["pass"] else "FAIL")
            print(f"  {t['label']:<28} {fmt(t['value'], '{:.4f}'):>8}  (target {t['bound']}) {verdict}")
            if t["pass"] is False:
                any_failed = True
        if outputs_ok is None:
            print("  output check: not done (plain cargo's build has no program named after the package)")
        elif not outputs_ok:
            any_failed = True
            print("  output check: FAIL (a built program prints something else than plain cargo's, "
                  "or was not found)")
        else:
            print("  output check: PASS (every built program prints what plain cargo's prints)")
        if layout_ok is False:
            any_failed = True
        projects_out.append({"project": project, "layout": layout, "runs": [summary[n] for n in order],
                             "targets": targets, "outputs_match": outputs_ok,
                             "layout_ok": layout_ok, "xcache_warnings": warnings,
                             "xcache_over_base": before_after or None})

    result = {
        "format_version": FORMAT_VERSION,
        "date_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {"cpus": os.cpu_count(), "kernel": platform.system() + " " + platform.release(),
                    "load_average_at_start": [float(x) for x in E.get("RB_LOAD_START", "").split()] or None,
                    "load_average_at_end": [round(x, 2) for x in os.getloadavg()]},
        "rustc": E.get("RB_RUSTC") or None,
        "cargo": E.get("RB_CARGO") or None,
        # The layouts measured, and the nightly toolchain of the new one.
        "layouts": E.get("RB_LAYOUTS", "legacy").split(),
        "build_dir_at": E.get("RB_BUILD_DIR_AT") or None,
        "nightly_rustc": E.get("RB_NIGHTLY_RUSTC") or None,
        "nightly_cargo": E.get("RB_NIGHTLY_CARGO") or None,
        "tools": {"xcache_commit": E.get("RB_XCACHE_COMMIT") or None,
                  "xcache_worktree_dirty": E.get("RB_XCACHE_DIRTY") == "1",
                  "xcache_bin": E.get("RB_XCACHE_BIN") or None,
                  "xcache_base_bin": E.get("RB_XCACHE_BASE_BIN") or None,
                  "xcache_base": E.get("RB_XCACHE_BASE") or None,
                  "sccache": E.get("RB_SCCACHE") or None, "kache": E.get("RB_KACHE") or None,
                  "mbx": E.get("RB_MBX") or None},
        "tools_run": E.get("RB_TOOLS", "").split(),
        "profile": E.get("RB_PROFILE"),
        "command": E.get("RB_COMMAND", "build"),
        "jobs": int(E["RB_JOBS"]) if E.get("RB_JOBS") else None,
        "fresh_private": E.get("RB_FRESH_PRIVATE") == "1",
        "repeat": int(E.get("RB_REPEAT", "1")),
        "smoke_args": E.get("RB_SMOKE_ARGS"),
        "total_seconds": int(E.get("RB_SECONDS_TOTAL", "0")),
        "notes": "seconds: GNU time %e of the build command; daemons (sccache server, kache daemon) "
                 "are started before and stopped after it, untimed. peak_rss_kb: GNU time %M, the "
                 "largest single process, the larger of the build's tree and the daemon's, the most "
                 "of any round. Warm runs: same store as the cold run, cold checkout deleted, fresh "
                 "checkout at another absolute path, empty target dir. Each layout (legacy, build-dir, "
                 "new) runs the whole sequence with stores of its own; its ratios are to plain "
                 "cargo's cold build in the same layout.",
        "projects": projects_out,
        "iterations": rows,
    }
    with open(E["RB_OUT"], "w") as fh:
        json.dump(result, fh, indent=2)
        fh.write("\n")
    print_one_table(result)
    print(f"\nload average at start {E.get('RB_LOAD_START') or '?'}, at end "
          f"{' '.join(f'{x:.2f}' for x in os.getloadavg())} ({os.cpu_count()} CPUs)")
    print(f"results written to {E['RB_OUT']} (total {E.get('RB_SECONDS_TOTAL', '?')} s)")
    if strict and any_failed:
        print("a target was missed or an output differs (XCACHE_BENCH_STRICT=1)", file=sys.stderr)
        sys.exit(1)


# The tools of the one table, in its column order: plain cargo, this build, the base
# binary (XCACHE_BENCH_BASE_BIN), the peers.
TABLE_TOOLS = (("plain", "plain cargo"), ("xcache", "xcache"), ("xcache-base", "xcache (base)"),
               ("sccache", "sccache"), ("kache", "kache"), ("mbx", "mbx"))
TABLE_PHASES = (("cold", "cold"), ("warm", "warm (moved checkout)"),
                ("machine", "another machine"))


def print_one_table(result):
    """Every project, run and tool of one bench run in a single Markdown table (the book's
    benchmark page quotes it): median seconds; for cold builds, the median of the rounds'
    ratios to plain cargo's build of the same round; for xcache's warm build, the floor
    measured right after it. Run alone on a results file: `python3 bench/report.py
    --table results.json`."""
    projects = result.get("projects") or []
    present = [(t, label) for t, label in TABLE_TOOLS
               if any(r["tool"] == t for p in projects for r in p["runs"])]
    if not present:
        return
    tools = result.get("tools") or {}
    versions = {"sccache": tools.get("sccache"), "kache": tools.get("kache"), "mbx": tools.get("mbx"),
                "xcache": tools.get("xcache_commit"), "xcache-base": tools.get("xcache_base")}
    print(f"\n== one table ({result.get('repeat')} round(s), {result.get('profile')} profile; "
          "seconds, median; cold: (median of the rounds' ratios to plain cargo's build of "
          "the same round and layout); warm: [the floor: cargo's no-op plus writing the target "
          "dir again]; layout: cargo's, legacy, build-dir (a build dir apart) or new)")
    for t, label in present:
        if versions.get(t):
            print(f"  {label}: {versions[t]}")
    if result.get("nightly_cargo") and "new" in (result.get("layouts") or []):
        print(f"  new layout: {result['nightly_cargo']}, {result.get('nightly_rustc')}")
    print("| project | layout | run | " + " | ".join(label for _, label in present) + " |")
    print("| --- | --- | --- | " + " | ".join("---" for _ in present) + " |")
    for p in projects:
        name = os.path.basename(p["project"].rstrip("/")) or p["project"]
        layout = p.get("layout", "legacy")  # results of format 2: the legacy layout
        runs = {r["name"]: r for r in p["runs"]}
        for phase, phase_label in TABLE_PHASES:
            cells = []
            for t, _ in present:
                r = runs.get("plain-cold" if t == "plain" else f"{t}-{phase}")
                if r is None or (t == "plain" and phase != "cold"):
                    cells.append("")
                    continue
                cell = fmt(r.get("seconds_median"), "{:.2f}")
                if t != "plain" and phase == "cold" and r.get("paired_ratio_median") is not None:
                    cell += f" ({r['paired_ratio_median']:.3f})"
                if t == "xcache" and phase == "warm" and r.get("floor_seconds") is not None:
                    cell += f" [{r['floor_seconds']:.2f}]"
                cells.append(cell)
            if any(cells):
                print(f"| {name} | {layout} | {phase_label} | " + " | ".join(cells) + " |")
            name = layout = ""


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--table":
        with open(sys.argv[2]) as fh:
            print_one_table(json.load(fh))
    elif len(sys.argv) == 3 and sys.argv[1] == "--kache-counts":
        kache_counts(sys.argv[2])
    elif len(sys.argv) == 3 and sys.argv[1] == "--mbx-counts":
        mbx_counts(sys.argv[2])
    elif len(sys.argv) == 3 and sys.argv[1] == "--xcache-kinds":
        xcache_kinds(sys.argv[2])
    else:
        main()
