"""``DIR/REPORT.md``: a sweep's figures, the paper's quoted numbers beside ours, and what differs.

The report is written from saved results only (:mod:`satedge.experiments.results`): the
manifest gives the preset and the figures, each finished run's ``result.json`` the budget it ran
with and the library versions, and the finals table our side of every comparison. Our values
are interquartile means over seeds (:mod:`satedge.plots.summary`); relative differences are
``(ours - paper) / |paper|``. A number more than :data:`DIFF_TOLERANCE_PCT` away from the paper's,
and a stated trend that does not hold on our results, each get a plain sentence.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from satedge.experiments.paper_numbers import (
    PAPER_CLAIMS,
    PAPER_NUMBERS,
    SOURCE,
    PaperClaim,
    PaperNumber,
)
from satedge.plots.panels import sweep_x_name
from satedge.plots.style import Rendered, method_label
from satedge.plots.summary import figure_rows, normalise_figure, summarise_finals

__all__ = ["DIFF_TOLERANCE_PCT", "REPORT_FILE", "check_claim", "claims_table",
           "numbers_table", "our_number", "write_report"]

REPORT_FILE = "REPORT.md"
DIFF_TOLERANCE_PCT = 10.0
"""Relative difference (%) beyond which the report states that a number differs."""


# -- our side of each comparison ----------------------------------------------------------
def _iqm(finals: pd.DataFrame, figure: str, metric: str) -> pd.DataFrame:
    """IQM per method and x of one figure's ``metric`` (empty if the figure or metric is
    missing)."""
    rows = figure_rows(finals, figure)
    if rows.empty or metric not in rows.columns:
        return pd.DataFrame(columns=["method", "x", "iqm"])
    return summarise_finals(rows, metric)


def _at(table: pd.DataFrame, method: str, x: float | None) -> float | None:
    rows = table[table["method"] == method]
    if x is not None:
        rows = rows[np.isclose(rows["x"].astype(np.float64), x)]
    values = rows["iqm"].dropna()
    return float(values.iloc[0]) if len(values) == 1 else None


def _pct(value: float, reference: float) -> float:
    return 100.0 * (value - reference) / abs(reference)


def our_number(num: PaperNumber, finals: pd.DataFrame) -> float | None:
    """Our value of ``num`` (see :mod:`satedge.experiments.paper_numbers` for the kinds), or
    None when the sweep lacks what it needs (figure, method or scenario value)."""
    table = _iqm(finals, num.figure, num.metric)
    if num.kind == "value":
        return _at(table, num.method, num.x)
    if num.kind == "change":
        end, start = _at(table, num.method, num.x), _at(table, num.method, num.x_from)
        return None if end is None or start is None or start == 0 else _pct(end, start)
    if num.kind == "versus":
        ours, ref = _at(table, num.method, None), _at(table, num.reference, None)
        return None if ours is None or ref is None or ref == 0 else _pct(ours, ref)
    if num.kind in ("gap_min", "gap_max"):
        ref = _at(table, num.reference, None)
        gaps = [-_pct(v, ref) for m in num.methods
                if ref is not None and ref != 0 and (v := _at(table, m, None)) is not None]
        if not gaps:
            return None
        return min(gaps) if num.kind == "gap_min" else max(gaps)
    raise ValueError(f"paper number {num.key!r} has unknown kind {num.kind!r}")


def numbers_table(finals: pd.DataFrame) -> pd.DataFrame:
    """One row per :data:`PAPER_NUMBERS` entry: paper, ours, relative difference (%)."""
    rows = []
    for num in PAPER_NUMBERS:
        ours = our_number(num, finals)
        rel = None if ours is None else _pct(ours, num.value)
        rows.append({"key": num.key, "figure": num.figure, "quantity": num.quantity,
                     "unit": num.unit, "paper": num.value, "ours": ours, "rel_diff_pct": rel,
                     "source": num.source})
    return pd.DataFrame(rows)


def _fmt_x(x: float) -> str:
    return f"{x:g}"


def check_claim(claim: PaperClaim, finals: pd.DataFrame) -> tuple[bool | None, str]:
    """Whether ``claim`` holds on our results (None: not testable) and the evidence in words."""
    table = _iqm(finals, claim.figure, claim.metric)
    xname = sweep_x_name(figure_rows(finals, claim.figure))
    present = [m for m in claim.methods if m in set(table["method"])]
    xs = sorted(table["x"].dropna().unique()) if len(table) else []
    if figure_rows(finals, claim.figure).empty:
        return None, f"Fig. {claim.figure} is not in this sweep"
    if not present:
        return None, f"Fig. {claim.figure} has no {'/'.join(claim.methods)} results"
    if claim.check in ("rises", "falls"):
        if len(xs) < 2:
            return None, "fewer than two swept values"
        bad = []
        for m in present:
            lo, hi = _at(table, m, xs[0]), _at(table, m, xs[-1])
            if lo is None or hi is None or (hi > lo) != (claim.check == "rises"):
                bad.append(f"{method_label(m)} {lo:.4g} -> {hi:.4g}" if lo is not None and
                           hi is not None else method_label(m))
        trend = f"from {xname} = {_fmt_x(xs[0])} to {_fmt_x(xs[-1])}"
        return (not bad, f"all {len(present)} methods {claim.check[:-1]} {trend}" if not bad
                else f"not for {', '.join(bad)} ({trend})")
    if claim.check in ("lowest", "highest"):
        return _extreme(claim, table, present, xs, xname)
    if claim.check == "steepest":
        return _steepest(claim, table, xs, xname)
    if claim.check == "best_x":
        values = {x: v for x in xs if (v := _at(table, claim.methods[0], x)) is not None}
        if len(values) < 2 or claim.x is None:
            return None, "fewer than two swept values"
        best = max(values, key=lambda x: values[x])
        listed = ", ".join(f"{_fmt_x(x)}: {v:.4g}" for x, v in values.items())
        return bool(np.isclose(best, claim.x)), f"highest at {xname} = {_fmt_x(best)} ({listed})"
    raise ValueError(f"paper claim {claim.key!r} has unknown check {claim.check!r}")


def _extreme(claim: PaperClaim, table: pd.DataFrame, present: list[str], xs: list[float],
             xname: str) -> tuple[bool | None, str]:
    lead = claim.methods[0]
    if lead not in present or len(present) < 2:
        others = ", ".join(method_label(m) for m in claim.methods[1:])
        return None, f"needs {method_label(lead)} and one of the paper's methods: {others}"
    pick = min if claim.check == "lowest" else max
    misses = []
    points: list[float | None] = [*xs] if xs else [None]
    for x in points:
        values = {m: v for m in present if (v := _at(table, m, x)) is not None}
        best = pick(values, key=lambda m: values[m])
        if best != lead:
            where = "" if x is None else f"{xname} = {_fmt_x(x)}: "
            misses.append(f"{where}{method_label(best)} {values[best]:.4g} vs "
                          f"{method_label(lead)} {values.get(lead, float('nan')):.4g}")
    scope = f"at every {xname}" if xs else ""
    return (not misses, f"{method_label(lead)} {claim.check} of {len(present)} {scope}".strip()
            if not misses else "; ".join(misses))


def _steepest(claim: PaperClaim, table: pd.DataFrame, xs: list[float],
              xname: str) -> tuple[bool | None, str]:
    if claim.x is None or claim.x_from is None or not (
            any(np.isclose(xs, claim.x)) and any(np.isclose(xs, claim.x_from))):
        return None, (f"{xname} = {claim.x_from:g} and {claim.x:g} are not both in the sweep "
                      f"({', '.join(map(_fmt_x, xs))})")
    values = [_at(table, claim.methods[0], x) for x in xs]
    if any(v is None for v in values):
        return None, "missing values"
    steps = np.diff(np.asarray(values, dtype=np.float64))
    i = int(np.argmax(steps))
    text = f"largest rise {xs[i]:g} -> {xs[i + 1]:g} ({steps[i]:+.4g})"
    return bool(np.isclose(xs[i], claim.x_from) and np.isclose(xs[i + 1], claim.x)), text


def claims_table(finals: pd.DataFrame) -> pd.DataFrame:
    """One row per :data:`PAPER_CLAIMS` entry: holds (True / False / None) and the evidence."""
    rows = []
    for claim in PAPER_CLAIMS:
        holds, detail = check_claim(claim, finals)
        rows.append({"key": claim.key, "figure": claim.figure, "claim": claim.text,
                     "holds": holds, "detail": detail, "source": claim.source})
    return pd.DataFrame(rows)


# -- the sweep's budget and versions ------------------------------------------------------
def _run_records(sweep_dir: Path, manifest: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    from satedge.experiments.results import read_run_result

    records = {}
    for key in manifest.get("runs", {}):
        record = read_run_result(sweep_dir / "runs" / key, key)
        if record is not None:
            records[key] = record
    return records


def _budget_rows(manifest: Mapping[str, Any], records: Mapping[str, dict[str, Any]]
                 ) -> list[str]:
    lines = ["| fig | preset | methods | swept values | seeds | training episodes | "
             "eval episodes | slots / episode | runs done |", "|---" * 9 + "|"]
    for figure, fig in sorted(manifest.get("figures", {}).items(), key=lambda kv: kv[0]):
        runs = fig.get("runs", [])
        done = [records[r["key"]] for r in runs if r["key"] in records]
        methods = sorted({r["method"] for r in runs})
        xs = sorted({r["x"] for r in runs if r.get("x") is not None})
        seeds = sorted({int(r["seed"]) for r in runs})
        episodes = sorted({int(d["identity"].get("episodes", 0)) for d in done
                           if d.get("kind") == "learner"})
        evals = sorted({int(d["identity"]["eval_episodes"]) for d in done})
        slots = sorted({int(d["identity"]["scenario"]["episode_slots"]) for d in done})
        swept = f"{fig.get('x_name')}: {', '.join(map(_fmt_x, xs))}" if xs else "-"
        lines.append(
            f"| {figure} | {fig.get('preset', '')} | {', '.join(methods)} | "
            f"{swept} | "
            f"{len(seeds)} ({_span(seeds)}) | {_join(episodes)} | {_join(evals)} | "
            f"{_join(slots)} | {len(done)}/{len(runs)} |")
    return lines


def _span(values: list[int]) -> str:
    if not values:
        return "-"
    return f"{values[0]}-{values[-1]}" if values == list(range(values[0], values[-1] + 1)) \
        and len(values) > 1 else ", ".join(map(str, values))


def _join(values: list[int]) -> str:
    return ", ".join(map(str, values)) if values else "-"


def _versions(records: Mapping[str, dict[str, Any]]) -> str:
    seen: dict[str, set[str]] = {}
    for record in records.values():
        for name, version in (record.get("versions") or {}).items():
            seen.setdefault(name, set()).add(str(version))
    return ", ".join(f"{name} {' / '.join(sorted(v))}" for name, v in sorted(seen.items())) \
        or "not recorded"


# -- the document -------------------------------------------------------------------------
def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and not np.isfinite(value))


def _numbers_section(numbers: pd.DataFrame) -> list[str]:
    lines = ["| fig | quantity | paper | ours | relative difference |", "|---|---|---|---|---|"]
    for r in numbers.to_dict("records"):
        ours = "-" if _missing(r["ours"]) else f"{r['ours']:.4g}"
        rel = "-" if _missing(r["rel_diff_pct"]) else f"{r['rel_diff_pct']:+.1f} %"
        lines.append(f"| {r['figure']} | {r['quantity']} ({r['unit']}) | {r['paper']:g} | {ours} "
                     f"| {rel} |")
    return lines


_VERDICT = {True: "holds", False: "does not hold", None: "not testable"}


def _claims_section(claims: pd.DataFrame) -> list[str]:
    lines = ["| fig | the paper says | on our results | evidence |", "|---|---|---|---|"]
    for r in claims.to_dict("records"):
        verdict = _VERDICT[None if _missing(r["holds"]) else bool(r["holds"])]
        lines.append(f"| {r['figure']} | {r['claim']} | {verdict} | {r['detail']} |")
    return lines


def _differences(numbers: pd.DataFrame, claims: pd.DataFrame, ran: set[str]) -> list[str]:
    lines = []
    absent = sorted({str(f) for f in (*numbers["figure"], *claims["figure"])} - ran,
                    key=lambda f: (len(f), f))
    if absent:
        verb = "is" if len(absent) == 1 else "are"
        lines.append(f"- Not compared: Fig. {', '.join(absent)} {verb} not in this sweep.")
    for r in numbers.to_dict("records"):
        if str(r["figure"]) not in ran:
            continue
        if _missing(r["ours"]):
            lines.append(f"- Fig. {r['figure']}, {r['quantity']}: not computed, the sweep lacks "
                         "the method or scenario value it needs.")
        elif abs(float(r["rel_diff_pct"])) > DIFF_TOLERANCE_PCT:
            lines.append(f"- Fig. {r['figure']}, {r['quantity']}: ours is {r['ours']:.4g} "
                         f"{r['unit']}, the paper's {r['paper']:g} {r['unit']} "
                         f"({r['rel_diff_pct']:+.1f} %).")
    for r in claims.to_dict("records"):
        if not _missing(r["holds"]) and not r["holds"]:
            lines.append(f"- Fig. {r['figure']}: the paper says \"{r['claim']}\"; ours does "
                         f"not: {r['detail']}.")
    return lines or [f"- None: every number is within {DIFF_TOLERANCE_PCT:g} % of the paper's "
                     "and every testable trend holds."]


def _figures_section(rendered: Mapping[str, Rendered], report_dir: Path) -> list[str]:
    lines = []
    for name, r in rendered.items():
        rel = {ext: Path(os.path.relpath(p, report_dir)).as_posix()
               for ext, p in (("png", r.png), ("pdf", r.pdf), ("csv", r.csv))}
        lines += [f"### {name}", "", f"![{name}]({rel['png']})", "",
                  f"{r.caption}. [PDF]({rel['pdf']}), [numbers (CSV)]({rel['csv']}).", ""]
    return lines or ["No figure could be drawn: the sweep has no finished runs."]


def write_report(sweep_dir: str | Path, rendered: Mapping[str, Rendered] | None = None) -> Path:
    """Write ``sweep_dir/REPORT.md`` (drawing the figures first with
    :func:`satedge.plots.plot_all` unless ``rendered`` is given); returns its path."""
    from satedge.experiments.results import load_finals, load_manifest
    from satedge.plots import plot_all

    sweep = Path(sweep_dir)
    manifest = load_manifest(sweep)
    figures = plot_all(sweep) if rendered is None else rendered
    finals = load_finals(sweep)
    records = _run_records(sweep, manifest)
    numbers, claims = numbers_table(finals), claims_table(finals)
    last = manifest.get("last_sweep", {})
    lines = [
        "# Reproduction report", "",
        f"Sweep `{sweep.name}`, preset **{manifest.get('preset', '?')}** (last sweep: backend "
        f"{last.get('backend', '?')}, started {last.get('started', '?')}, finished "
        f"{last.get('finished', '?')}). Written {time.strftime('%Y-%m-%d %H:%M')} from saved "
        "results only.", "",
        f"Versions: satedge {manifest.get('satedge_version', '?')}; runs: {_versions(records)}.",
        "", "Every value is the interquartile mean (IQM) over seeds; figures show 95 % "
        "stratified-bootstrap confidence intervals.", "",
        "## Budget", "", *_budget_rows(manifest, records), "",
        "## The paper's numbers beside ours", "",
        f"Source: {SOURCE}. Relative difference = (ours - paper) / |paper|.", "",
        *_numbers_section(numbers), "",
        "## The paper's trends on our results", "", *_claims_section(claims), "",
        "## Where ours differ", "",
        *_differences(numbers, claims, set(finals["figure"].map(normalise_figure))), "",
        "## Figures", "", *_figures_section(figures, sweep),
    ]
    path = sweep / REPORT_FILE
    tmp = path.with_suffix(".md.tmp")
    tmp.write_text("\n".join(lines).rstrip() + "\n", encoding="utf-8")
    tmp.replace(path)
    return path
