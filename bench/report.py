"""Writes bench/results.json and bench/RESULTS.md from one run's results.

A run of some sections only (BENCH_ONLY) at the scale of the results on file replaces those sections and keeps the
others with the run that measured them: every entry names its run (`run`, the run's timestamp), and both runs'
facts (commit, load, duration) are listed. Every ratio still compares figures of one run.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from bench.measure import Results

ALL_SECTIONS = ("1", "2", "3", "4", "5")

HERE = Path(__file__).resolve().parent


def section_of(benchmark: str) -> str:
    """The BENCH_ONLY section of a benchmark's name ("2. bulk import" is 2; cost growth is part of 5)."""
    number = benchmark.split(".", 1)[0]
    return "5" if number == "6" else number


def _kept(info: dict[str, Any]) -> dict[str, Any]:
    """The runs, entries and load on file that this run does not replace (none unless this run measured only
    some sections at the same scale)."""
    path = HERE / "results.json"
    ran = set(info.get("sections", ()))
    if not path.exists() or not ran or ran >= set(ALL_SECTIONS):
        return {"runs": [], "benchmarks": [], "load": {}}
    earlier = json.loads(path.read_text())
    runs = earlier.get("runs") or [earlier["info"]]
    if runs[-1].get("scale") != info.get("scale"):
        return {"runs": [], "benchmarks": [], "load": {}}
    default = runs[-1].get("timestamp")
    entries = [{"run": default, **e} for e in earlier["benchmarks"] if section_of(e["benchmark"]) not in ran]
    load = {k: v for k, v in earlier.get("load", {}).items() if section_of(k) not in ran}
    used = {e["run"] for e in entries} | {p.get("run", default) for v in load.values() for p in v}
    return {"runs": [r for r in runs if r.get("timestamp") in used], "benchmarks": entries, "load": load}


def write(results: Results) -> None:
    cores = results.info.get("cpu_count")
    run = results.info.get("timestamp")
    kept = _kept(results.info)
    entries: list[dict[str, Any]] = kept["benchmarks"] + [{**r.as_dict(), "cpu_count": cores, "run": run}
                                                          for r in results.items]
    load = {**kept["load"], **{k: [{**p, "run": run} for p in v] for k, v in results.load.items()}}
    runs = [*kept["runs"], results.info]
    (HERE / "results.json").write_text(json.dumps({"info": results.info, "runs": runs, "benchmarks": entries,
                                                   "load": load}, indent=2) + "\n")
    (HERE / "RESULTS.md").write_text(markdown(runs, entries, load))
    for line in busy_warnings(results.load):
        print(line, file=sys.stderr, flush=True)


def busy_warnings(load: dict[str, list[dict[str, Any]]]) -> list[str]:
    """One loud line per phase that ran on a busy machine (load average above the cores, or other processes
    using CPU): its figures do not compare with a quiet run's."""
    return [f"WARNING: BUSY MACHINE during {benchmark} [{phase['phase']}]: {'; '.join(phase['busy_reasons'])}; "
            "its figures are not comparable with a quiet run's" for benchmark, phases in load.items()
            for phase in phases if phase.get("busy")]


def _load_table(phases: list[dict[str, Any]]) -> list[str]:
    processes = sorted({name for phase in phases for name in phase["cpu_seconds_per_operation"]})
    lines = ["", "Load and CPU (CPU-seconds of each process per operation, in ms; `others`: cores used by processes "
                 "outside the stack and the bench):", "",
             "| phase | operations | seconds | load before | load after | others | "
             + " | ".join(processes) + " | busy |",
             "|---|---:|---:|---:|---:|---:|" + "---:|" * len(processes) + "---|"]
    for phase in phases:
        cpu = phase["cpu_seconds_per_operation"]
        cells = [_fmt(None if cpu.get(name) is None else cpu[name] * 1000) for name in processes]
        lines.append(f"| {phase['phase']} | {phase['operations']} | {_fmt(phase['seconds'])} | "
                     f"{_fmt(phase['load_average_before'][0])} | {_fmt(phase['load_average_after'][0])} | "
                     f"{_fmt(phase['other_processes_cores'])} | " + " | ".join(cells) + " | "
                     + ("**BUSY**: " + "; ".join(phase["busy_reasons"]) if phase["busy"] else "no") + " |")
    return lines


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.3f}" if abs(value) < 10 else f"{value:,.1f}"
    return str(value)


_FACTS = ("timestamp", "scale", "sizes", "git_commit", "git_dirty", "python", "platform", "cpu_model", "cpu_count",
          "memory_total_mib", "service_log_level", "sections", "load_average_at_start", "load_average_at_end",
          "duration_seconds", "complete")


def _run_facts(info: dict[str, Any]) -> list[str]:
    lines = []
    for key in _FACTS:
        if key in info:
            value = info[key]
            if isinstance(value, dict):
                value = ", ".join(f"{k}={v}" for k, v in value.items())
            lines.append(f"- **{key.replace('_', ' ')}**: {value}")
    return lines


def markdown(runs: list[dict[str, Any]], entries: list[dict[str, Any]],
             load: dict[str, list[dict[str, Any]]] | None = None) -> str:
    load = load or {}
    warnings = busy_warnings(load)
    lines = ["# Benchmark results", "",
             *(f"> **{line}**" for line in warnings), *([""] if warnings else []),
             "Generated by `make bench` (`bench/`). Every figure is measured beside its raw baseline in the same run "
             "on the same machine; `ratio` is value / baseline (for latencies and memory lower is better, for "
             "rates higher is better).", "",
             "## Runs" if len(runs) > 1 else "## Run"]
    for info in runs:
        lines += ["", *([f"### Run of {info.get('timestamp')} (sections {', '.join(info.get('sections', []))})", ""]
                        if len(runs) > 1 else []), *_run_facts(info)]
    groups: dict[str, list[dict[str, Any]]] = {}
    for e in entries:
        groups.setdefault(e["benchmark"], []).append(e)
    for name, rows in groups.items():
        lines += ["", f"## {name}", "", f"Baseline: {rows[0]['baseline_desc']}."
                  + (f" Run of {rows[0]['run']}." if len(runs) > 1 else ""), "",
                  "| metric | value | baseline | ratio | unit | better | samples |",
                  "|---|---:|---:|---:|---|---|---:|"]
        for e in rows:
            lines.append(f"| {e['metric']} | {_fmt(e['value'])} | {_fmt(e['baseline'])} | {_fmt(e['ratio'])} | "
                         f"{e['unit']} | {e['better']} | {_fmt(e['samples'])} |")
        notes = sorted({e["notes"] for e in rows if e["notes"]})
        if notes:
            lines += ["", "Notes: " + "; ".join(notes) + "."]
        if name in load:
            lines += _load_table(load[name])
    for name, phases in load.items():
        if name not in groups:
            lines += ["", f"## {name}", *_load_table(phases)]
    analysis = HERE / "analysis.md"
    if analysis.exists():
        lines += ["", analysis.read_text().rstrip()]
    return "\n".join(lines) + "\n"
