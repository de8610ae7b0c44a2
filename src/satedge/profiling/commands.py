"""The ``satedge profile`` and ``satedge zoo fit`` commands (wired into ``satedge.cli``).

    satedge profile --model SHAPE|DIR [--device cpu|cuda] [--dtype float32|float16|bfloat16]
                    [--text-tokens N] [--images K] [--new-tokens L] [--repeats R] [--warmup W]
                    [--seed S] [--image-px PX] [--text-layers N] [--threads T] [--name NAME]
                    [--mmmu-val X] --out FILE.csv
    satedge zoo fit ENTRY [ENTRY ...] --hardware NAME [--out FILE.csv] [--overhead-s S]
                    [--power-min-w W] [--power-max-w W]

Importing this module is cheap (no torch); the handlers import torch and transformers only when
they run. Bad inputs raise ``ValueError``, which the CLI prints in one line with exit code 2.
"""

from __future__ import annotations

import argparse
from dataclasses import fields
from pathlib import Path
from typing import Any

from satedge.profiling.settings import DEVICES, DTYPES, ProfileSettings

__all__ = ["add_parsers", "run_command"]

_DEFAULTS = {f.name: f.default for f in fields(ProfileSettings)}


def add_parsers(sub: Any) -> None:
    """Add ``profile`` and ``zoo`` to the ``satedge`` subparsers ``sub``."""
    pr = sub.add_parser("profile", help="time a vision-language model (prefill, decode, memory) "
                                        "and write an MLLM zoo entry (needs satedge[profile])")
    pr.add_argument("--model", required=True, metavar="SHAPE|DIR",
                    help="a named shape (llava-1.6-7b, llava-1.6-mistral-7b, llava-1.6-13b, "
                         "tiny; random weights, nothing downloaded) or a local model directory")
    pr.add_argument("--device", choices=DEVICES, default=_DEFAULTS["device"])
    pr.add_argument("--dtype", choices=DTYPES, default=_DEFAULTS["dtype"])
    for flag, key, meaning in (
            ("--text-tokens", "text_tokens", "prompt text tokens N"),
            ("--images", "images", "generated images K per prompt"),
            ("--new-tokens", "new_tokens", "generated tokens L, forced exactly (>= 2)"),
            ("--repeats", "repeats", "timed runs R"), ("--warmup", "warmup", "untimed runs W"),
            ("--seed", "seed", "seed of prompts and random weights"),
            ("--image-px", "image_px", "image side in px (default: the model's input size)"),
            ("--threads", "threads", "torch CPU threads (default: torch's)")):
        pr.add_argument(flag, dest=key, type=int, default=_DEFAULTS[key],
                        help=f"{meaning} (default: %(default)s)")
    pr.add_argument("--text-layers", type=int, default=None,
                    help="keep only this many language-model layers of a named shape (a scaled "
                         "check; the entry then has no MMMU)")
    pr.add_argument("--name", default=None, help="zoo key of the entry (default: "
                                                 "MODEL@DEVICE-DTYPE)")
    pr.add_argument("--mmmu-val", type=float, default=None,
                    help="MMMU val accuracy (fraction) to give the entry (default: the published "
                         "score of a named shape's real model, else none)")
    pr.add_argument("--out", required=True, metavar="FILE.csv",
                    help="zoo CSV to write; the provenance goes to FILE.json beside it")

    zoo = sub.add_parser("zoo", help="work with MLLM zoo entries")
    zoo_sub = zoo.add_subparsers(dest="zoo_command", required=True)
    fit = zoo_sub.add_parser("fit", help="refit a hardware row of the roofline cost model from "
                                         "profile entries (least squares)")
    fit.add_argument("entries", nargs="+", metavar="ENTRY",
                     help="profile CSVs (their .json sidecars are read) or sidecar JSONs")
    fit.add_argument("--hardware", required=True, metavar="NAME", help="name of the fitted row")
    fit.add_argument("--out", default=None, metavar="FILE.csv",
                     help="write the row as a hardware CSV (default: print it)")
    fit.add_argument("--overhead-s", type=float, default=None,
                     help="hold the per-token overhead t0 at this value (s) instead of fitting")
    fit.add_argument("--power-min-w", type=float, default=None,
                     help="device power range (W); default: that of the shipped row NAME")
    fit.add_argument("--power-max-w", type=float, default=None)


def run_command(args: argparse.Namespace) -> int:
    """Run ``profile`` or ``zoo fit``; returns the exit code."""
    if args.command == "profile":
        return _profile(args)
    return _zoo_fit(args)


def _profile(args: argparse.Namespace) -> int:
    settings = ProfileSettings(**{f.name: getattr(args, f.name) for f in fields(ProfileSettings)})
    if Path(args.out).suffix != ".csv":
        raise ValueError(f"--out {args.out!r} must end in .csv (the provenance goes to .json)")
    try:
        from satedge.profiling.entry import write_entry
        from satedge.profiling.runner import run_profile
    except ImportError as exc:
        raise ValueError(f"satedge profile needs the optional extra: pip install "
                         f"'satedge[profile]' ({exc})") from None
    record = run_profile(args.model, settings, name=args.name, mmmu_val=args.mmmu_val,
                         text_layers=args.text_layers)
    csv_path, json_path = write_entry(record, args.out)
    s, summary = record.settings, record.summary
    print(f"profiled {record.name}: {record.params} parameters ({s['dtype']}), "
          f"{record.input_tokens} prompt tokens ({s['text_tokens']} text + {s['images']} x "
          f"{record.vision_tokens} image), {s['new_tokens']} new tokens, {s['repeats']} repeats "
          f"after {s['warmup']} warm-up, on {record.provenance['device']}")
    for key, unit, scale in (("prefill_s", "s", 1.0), ("decode_tokens_per_s", "token/s", 1.0),
                             ("new_tokens", "token", 1.0),
                             ("peak_memory_bytes", "MiB", 2.0**-20)):
        st = summary[key]
        print(f"  {key:<20} mean {st['mean'] * scale:<11.5g} std {st['std'] * scale:<11.4g} "
              f"min {st['min'] * scale:<11.5g} max {st['max'] * scale:<11.5g} {unit}")
    print(f"  memory: {record.provenance['memory_method']}")
    print(f"  zoo rates: prefill {record.prefill_tokens_per_s:.6g} token/s, decode "
          f"{record.decode_tokens_per_s:.6g} token/s")
    print(f"wrote {csv_path} and {json_path}")
    return 0


def _power_range(args: argparse.Namespace) -> tuple[float, float, str]:
    from satedge.sim.zoo import load_hardware

    low, high = args.power_min_w, args.power_max_w
    if low is not None and high is not None:
        return low, high, "power range given"
    shipped = load_hardware()
    if args.hardware not in shipped:
        raise ValueError(f"--hardware {args.hardware!r} is not a shipped row "
                         f"({', '.join(sorted(shipped))}), so give --power-min-w and "
                         "--power-max-w (W)")
    row = shipped[args.hardware]
    return (row.power_min_w if low is None else low, row.power_max_w if high is None else high,
            f"power range of the shipped row {args.hardware}")


def _zoo_fit(args: argparse.Namespace) -> int:
    from satedge.profiling.entry import read_profile
    from satedge.profiling.fit import fit_hardware, fit_points, hardware_csv, write_hardware_csv

    power_min, power_max, power_note = _power_range(args)
    points = fit_points([read_profile(path) for path in args.entries])
    fit = fit_hardware(points, overhead_s=args.overhead_s)
    if fit.overhead_fitted:
        how = "fitted"
    elif args.overhead_s is not None:
        how = "held at --overhead-s"
    else:
        how = "held at 0, as the decode points span one weight size"
    print(f"roofline fit of {args.hardware!r} from {len(points)} profile(s) on {points[0].device}")
    print(f"  flops                     {fit.flops:.6g} FLOP/s")
    print(f"  memory_bandwidth_bytes_s  {fit.memory_bandwidth_bytes_s:.6g} byte/s")
    print(f"  token_overhead_s          {fit.token_overhead_s:.6g} s ({how})")
    print(f"  RMS log residual          {fit.rms_log_residual:.4g}")
    print(f"  {'entry':<32} {'quantity':<14} {'measured s':>12} {'predicted s':>12} {'error':>8}")
    for name, quantity, measured, predicted in fit.residuals:
        print(f"  {name:<32} {quantity:<14} {measured:>12.5g} {predicted:>12.5g} "
              f"{predicted / measured - 1:>+8.1%}")
    source = (f"[measured] fitted by satedge zoo fit from {len(points)} profile(s) on "
              f"{points[0].device} ({', '.join(p.name for p in points)}); roofline with "
              f"efficiencies 1, overhead {how}; RMS log residual {fit.rms_log_residual:.3g}; "
              f"{power_note}")
    text = hardware_csv(fit, args.hardware, power_min, power_max, source)
    if args.out is None:
        print(text, end="")
    else:
        print(f"wrote {write_hardware_csv(text, args.out)}")
    return 0
