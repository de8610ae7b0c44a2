"""The ``satedge`` command line: a thin layer over the library.

Commands:
    satedge scenario show [--preset NAME] [--set key=value ...] [--json]
    satedge scenario list
    satedge evaluate --policy random|random-unmasked|greedy [--episodes N] [--seed S]
                     [--preset NAME] [--set key=value ...] [--json]

A bad key or value is reported in one line naming it and the allowed range, with exit code 2.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import Any

from satedge.sim.scenario import PRESETS, ScenarioError, parameter_table, resolve

__all__ = ["main"]


def _add_scenario_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--preset", default="default", choices=sorted(PRESETS),
                        help="named scenario (default: %(default)s)")
    parser.add_argument("--set", dest="overrides", action="append", default=[],
                        metavar="KEY=VALUE",
                        help="override a scenario value, e.g. --set n_iotds=20 --set "
                             "uav.altitude_m=120 (repeatable; see `satedge scenario show`)")


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} must be at least 1")
    return value


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
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
    ev.add_argument("--policy", required=True, choices=["random", "random-unmasked", "greedy"],
                    help="built-in policy to evaluate")
    ev.add_argument("--episodes", type=_positive_int, default=10,
                    help="episodes, run as one batch (default: %(default)s)")
    ev.add_argument("--seed", type=int, default=0, help="evaluation seed (default: %(default)s)")
    _add_scenario_args(ev)
    ev.add_argument("--json", action="store_true", help="print JSON only")
    return parser


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
    from satedge.agents.heuristics import make_policy
    from satedge.experiments.evaluate import METRICS, evaluate

    scenario = resolve(args.preset, args.overrides)
    result: dict[str, Any] = {"policy": args.policy, "preset": args.preset,
                              "overrides": list(args.overrides)}
    result.update(evaluate(make_policy(args.policy), scenario, args.episodes, args.seed))
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(f"policy={args.policy} preset={args.preset} episodes={args.episodes} seed={args.seed}")
    for key, meaning in METRICS.items():
        print(f"  {key:<22} {result[key]:>12.4f}   {meaning}")
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
        return _evaluate(args)
    except (ScenarioError, ValueError) as exc:
        print(f"satedge: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
