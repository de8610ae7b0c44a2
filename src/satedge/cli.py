"""The ``satedge`` command line: a thin layer over the library.

Commands:
    satedge scenario show [--preset NAME] [--set key=value ...] [--json]
    satedge scenario list
    satedge evaluate --policy random|random-unmasked|greedy|optimizer|optimizer-unmasked|DIR
                     [--episodes N] [--seed S] [--decision-samples N] [--preset NAME]
                     [--set key=value ...] [--json]
    satedge train --algo NAME (satedge train --help lists them) --seed S --episodes N --out DIR
                  [--preset NAME] [--set key=value ...] [--agent-set key=value ...]
    satedge profile --model SHAPE|DIR --out FILE.csv [...]   (see satedge.profiling.commands)
    satedge zoo fit ENTRY [ENTRY ...] --hardware NAME [--out FILE.csv] [...]
    satedge reproduce [--preset quick|standard|paper] [--figures 3,7] [--backend local|ray]
                      [--address ADDR] [--workers N] [--seed-batch N] --out DIR
    satedge plot DIR
    satedge render [--policy random|greedy|DIR] [--preset NAME] [--set key=value ...]
                   [--seed S] [--slots N] [--fps F] --out FILE.gif

A bad key or value is reported in one line naming it and the allowed range, with exit code 2.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

from satedge.sim.scenario import PRESETS, ScenarioError, parameter_table, resolve

__all__ = ["main"]


def _add_scenario_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--preset", default="default", choices=sorted(PRESETS),
                        help="named scenario (default: %(default)s)")
    parser.add_argument("--set", dest="overrides", action="append", default=[],
                        metavar="KEY=VALUE",
                        help="override a scenario value, e.g. --set n_iotds=20 --set "
                             "uav.altitude_m=120 (repeatable; see `satedge scenario show`)")


class _Parser(argparse.ArgumentParser):
    """Reports a bad argument in one line with exit code 2, like every other satedge error."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _seed(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{value} must be a non-negative integer")
    return value


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} must be at least 1")
    return value


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="satedge", description="Accuracy-aware MLLM offloading in UAV-assisted LEO-satellite "
        "edge computing: simulator, Gymnasium environment and policies.")
    sub = parser.add_subparsers(dest="command", required=True)

    scen = sub.add_parser("scenario", help="inspect scenarios")
    scen_sub = scen.add_subparsers(dest="scenario_command", required=True)
    show = scen_sub.add_parser("show", help="print the resolved scenario with units, ranges and "
                                            "provenance tags")
    _add_scenario_args(show)
    show.add_argument("--json", action="store_true", help="print JSON instead of a table")
    scen_sub.add_parser("list", help="list the named presets")

    ev = sub.add_parser("evaluate", help="evaluate a policy and print its metrics")
    ev.add_argument("--policy", required=True,
                    metavar="random|random-unmasked|greedy|optimizer|optimizer-unmasked|DIR",
                    help="a built-in policy (optimizer: the per-slot optimiser, see "
                         "docs/baselines.md), or a training run directory (its latest "
                         "checkpoint, acting deterministically, on the scenario it trained on "
                         "unless --preset/--set are given)")
    ev.add_argument("--episodes", type=_positive_int, default=10,
                    help="episodes, run as one batch (default: %(default)s)")
    ev.add_argument("--seed", type=_seed, default=0, help="evaluation seed (default: %(default)s)")
    ev.add_argument("--decision-samples", type=int, default=None, metavar="N",
                    help="AD-SAC runs only: act with the best, by the learned critic, of the "
                         "discrete mode and N samples of the discrete policy (the agent setting "
                         "decision_samples; default: the run's own, 0 unless set when training)")
    _add_scenario_args(ev)
    ev.add_argument("--json", action="store_true", help="print JSON only")

    tr = sub.add_parser("train", help="train a learning agent (resumable: run the same command "
                                      "again to continue an interrupted run)")
    from satedge.agents.registry import ALGORITHMS  # torch-free

    tr.add_argument("--algo", required=True, help=f"algorithm: {', '.join(ALGORITHMS)}")
    tr.add_argument("--seed", type=_seed, required=True,
                    help="run seed (all streams derive from it)")
    tr.add_argument("--episodes", type=_positive_int, required=True,
                    help="training episodes in total (a multiple of n_envs, default 4)")
    tr.add_argument("--out", required=True, help="run directory (created, or resumed)")
    _add_scenario_args(tr)
    tr.add_argument("--agent-set", dest="agent_overrides", action="append", default=[],
                    metavar="KEY=VALUE",
                    help="override an agent or loop setting, e.g. --agent-set critic_lr=1e-4 "
                         "--agent-set n_envs=8 (see docs/agents.md)")
    tr.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    from satedge.profiling.commands import add_parsers  # torch-free; needs torch only to run

    add_parsers(sub)
    _add_reproduce_parsers(sub)
    return parser


def _figure_list(text: str) -> list[str]:
    items = [t.strip() for t in text.split(",") if t.strip()]
    if not items:
        raise argparse.ArgumentTypeError(f"{text!r} names no figure; e.g. --figures 3,7")
    return items


def _add_reproduce_parsers(sub: Any) -> None:
    """``reproduce``, ``plot`` and ``render`` (docs/experiments.md)."""
    rep = sub.add_parser("reproduce", help="run what is missing of the paper's figures, then "
                                           "draw them and write DIR/REPORT.md")
    rep.add_argument("--preset", default="quick", choices=("quick", "standard", "paper"),
                     help="experiment budget (default: %(default)s)")
    rep.add_argument("--figures", type=_figure_list, default=None, metavar="3,7",
                     help="comma-separated figure ids or spec files (default: all of 3-8)")
    rep.add_argument("--backend", default="local", choices=("local", "ray"),
                     help="executor (default: %(default)s)")
    rep.add_argument("--address", default=None,
                     help="Ray only: cluster address (auto or HOST:PORT); default: a private "
                          "local cluster")
    rep.add_argument("--workers", type=_positive_int, default=None,
                     help="parallel runs (default: the CPUs available)")
    rep.add_argument("--seed-batch", type=_positive_int, default=None, metavar="N",
                     help="train up to N seeds of one AD-SAC configuration in one process, "
                          "seed-batched (1: never); default: batch only when runs outnumber "
                          "workers")
    rep.add_argument("--out", required=True, help="sweep directory (created, or resumed)")
    rep.add_argument("--no-progress", action="store_true", help="no line per finished run")
    plot = sub.add_parser("plot", help="redraw the figures and REPORT.md of a sweep directory "
                                       "from its saved results (no training)")
    plot.add_argument("dir", help="sweep directory written by `satedge reproduce`")
    ren = sub.add_parser("render", help="animate one episode as a GIF")
    ren.add_argument("--policy", default="greedy", metavar="random|greedy|...|DIR",
                     help="a built-in policy or a training run directory (default: "
                          "%(default)s)")
    _add_scenario_args(ren)
    ren.add_argument("--seed", type=_seed, default=0, help="episode seed (default: %(default)s)")
    ren.add_argument("--slots", type=_positive_int, default=40,
                     help="slots to animate, one frame each (default: %(default)s)")
    ren.add_argument("--fps", type=_positive_int, default=4,
                     help="frames per second (default: %(default)s)")
    ren.add_argument("--out", required=True, help="output file, FILE.gif")


def _scenario_show(args: argparse.Namespace) -> int:
    scenario = resolve(args.preset, args.overrides)
    if args.json:
        print(json.dumps(scenario.to_dict(), indent=2))
        return 0
    rows = parameter_table(scenario)
    width = max(len(r["key"]) for r in rows)
    print(f"# scenario: preset={args.preset}" + (f" overrides={args.overrides}"
                                                  if args.overrides else ""))
    for r in rows:
        value = json.dumps(r["value"])
        print(f"{r['key']:<{width}}  {value:<28} {r['unit']:<8} {r['tag']:<7} {r['range']}")
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    from dataclasses import fields, replace

    from satedge.agents.heuristics import POLICIES, HeuristicPolicy, make_policy
    from satedge.experiments.evaluate import METRICS, evaluate

    if args.decision_samples is not None:
        if args.decision_samples < 0:
            raise ValueError(f"--decision-samples {args.decision_samples} must be >= 0")
        if args.policy in POLICIES:
            raise ValueError("--decision-samples applies to a trained AD-SAC run directory, "
                             f"not to the built-in policy {args.policy!r}")
    scenario = resolve(args.preset, args.overrides)
    policy: HeuristicPolicy
    if args.policy in POLICIES:
        policy = make_policy(args.policy)
    elif Path(args.policy, "run.json").is_file():
        from satedge.experiments.evaluate import AgentPolicy
        from satedge.experiments.train import load_trained_agent

        agent, trained_on = load_trained_agent(args.policy)
        if args.decision_samples is not None:
            cfg = getattr(agent, "cfg", None)
            if cfg is None or "decision_samples" not in {f.name for f in fields(cfg)}:
                raise ValueError("--decision-samples needs a run of an AD-SAC algorithm "
                                 "(adsac, adsac-paper, adsac-nompo or adsac-exact*); "
                                 f"{args.policy} holds an agent of class {type(agent).__name__}")
            agent.cfg = replace(cfg, decision_samples=args.decision_samples)  # type: ignore
        policy = AgentPolicy(agent)
        if args.preset == "default" and not args.overrides:
            scenario, args.preset = trained_on, "trained-run"
        elif scenario.to_dict() != trained_on.to_dict() and (
                scenario.n_iotds != trained_on.n_iotds or scenario.n_servers !=
                trained_on.n_servers or scenario.n_uavs != trained_on.n_uavs):
            raise ValueError(f"{args.policy} was trained with K={trained_on.n_iotds}, "
                             f"M={trained_on.n_uavs}, N={trained_on.n_candidates}; the "
                             "evaluation scenario must keep those sizes")
    else:
        raise ValueError(f"--policy {args.policy!r} is neither a built-in policy "
                         f"({', '.join(sorted(POLICIES))}) nor a run directory with run.json")
    result: dict[str, Any] = {"policy": args.policy, "preset": args.preset,
                              "overrides": list(args.overrides)}
    if args.decision_samples is not None:
        result["decision_samples"] = args.decision_samples
    result.update(evaluate(policy, scenario, args.episodes, args.seed))
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(f"policy={args.policy} preset={args.preset} episodes={args.episodes} seed={args.seed}")
    for key, meaning in METRICS.items():
        print(f"  {key:<22} {result[key]:>12.4f}   {meaning}")
    return 0


def _parse_agent_overrides(items: Sequence[str]) -> dict[str, Any]:
    from satedge.sim.scenario import parse_override

    return dict(parse_override(item) for item in items)


def _train(args: argparse.Namespace) -> int:
    from satedge.experiments.train import train

    scenario = resolve(args.preset, args.overrides)
    result = train(args.algo, scenario, args.seed, args.episodes, args.out,
                   overrides=_parse_agent_overrides(args.agent_overrides),
                   progress=not args.no_progress)
    print(json.dumps({"algo": args.algo, "seed": args.seed, "out": args.out, **result}, indent=2))
    return 0


def _reproduce(args: argparse.Namespace) -> int:
    from satedge.experiments.report import write_report
    from satedge.experiments.runner import SweepError, run_sweep
    from satedge.experiments.spec import FIGURES

    figures = list(FIGURES) if args.figures is None else args.figures
    failed = None
    try:
        run_sweep(figures, args.preset, args.out, backend=args.backend, address=args.address,
                  workers=args.workers, progress=not args.no_progress,
                  seed_batch=args.seed_batch)
    except SweepError as err:  # report what finished, then fail
        failed = str(err)
    report = write_report(args.out)
    if failed is not None:
        raise ValueError(f"{failed}; partial report: {report}")
    print(f"report: {report}")
    return 0


def _plot(args: argparse.Namespace) -> int:
    from satedge.experiments.report import write_report

    report = write_report(args.dir)
    print(f"report: {report}")
    return 0


def _render(args: argparse.Namespace) -> int:
    from satedge.envs.animate import load_policy, record_episode, write_gif
    from satedge.sim.network import EdgeNetwork

    default = args.preset == "default" and not args.overrides
    policy, scenario = load_policy(args.policy, resolve(args.preset, args.overrides), default)
    trace = record_episode(policy, scenario, args.seed, args.slots)
    out = write_gif(EdgeNetwork(scenario), trace, args.out, fps=args.fps,
                    title=f"{Path(args.policy).name}, seed {args.seed}")
    print(f"{out}: {trace.n_slots} frames")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``satedge`` command; returns the exit code."""
    args = _parser().parse_args(argv)
    try:
        if args.command == "scenario":
            if args.scenario_command == "list":
                for name, overrides in PRESETS.items():
                    print(f"{name:<16} {json.dumps(overrides)}")
                return 0
            return _scenario_show(args)
        if args.command == "train":
            return _train(args)
        if args.command in ("reproduce", "plot", "render"):
            return {"reproduce": _reproduce, "plot": _plot, "render": _render}[args.command](args)
        if args.command in ("profile", "zoo"):
            from satedge.profiling.commands import run_command

            return run_command(args)
        return _evaluate(args)
    except (ScenarioError, ValueError, OSError) as exc:  # CheckpointError is a ValueError
        print(f"satedge: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
