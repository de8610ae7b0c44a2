"""``satedge profile`` end to end with the tiny shape, and its one-line errors (exit code 2)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from satedge.cli import main

FAST = ["--text-tokens", "8", "--images", "1", "--new-tokens", "4", "--repeats", "2",
        "--warmup", "1", "--threads", "1"]


def test_profile_command_writes_a_loadable_entry_with_provenance(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("transformers")
    from satedge.sim import zoo

    out = tmp_path / "entries" / "tiny.csv"
    code = main(["profile", "--model", "tiny", *FAST, "--seed", "3", "--name", "tiny-cli",
                 "--mmmu-val", "0.35", "--out", str(out)])
    printed = capsys.readouterr().out
    assert code == 0 and "decode_tokens_per_s" in printed and "wrote" in printed
    entry = zoo.load_zoo(extra=out)["tiny-cli"]
    assert entry.mmmu_val_fp16 == 0.35 and entry.vision_tokens == 10
    assert entry.measured_decode_tokens_per_s is not None and "float32" in str(entry.measured_on)
    sidecar = json.loads(out.with_suffix(".json").read_text())
    assert sidecar["format"] == "satedge-profile"
    assert {"device", "date", "torch", "transformers", "python"} <= set(sidecar["provenance"])
    assert sidecar["settings"]["seed"] == 3 and len(sidecar["repeats"]) == 2
    assert sidecar["zoo_row"]["name"] == "tiny-cli"


@pytest.mark.parametrize(("args", "fragment"), [
    (["--model", "tiny", "--repeats", "0"], "repeats=0 is out of range; allowed integers >= 1"),
    (["--model", "tiny", "--new-tokens", "1"], "new_tokens=1 is out of range"),
    (["--model", "tiny", "--text-tokens", "0"], "text_tokens=0 is out of range"),
    (["--model", "tiny", "--out", "entry.txt"], "must end in .csv"),
])
def test_bad_settings_fail_before_any_model_is_loaded(
        args: list[str], fragment: str, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["profile", *args] + ([] if "--out" in args else ["--out", "x.csv"])
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert fragment in err and err.count("\n") == 1


@pytest.mark.parametrize(("args", "fragment"), [
    (["--model", "llava-9b"], "model 'llava-9b' is neither a named shape (llava-1.6-7b"),
    (["--model", "tiny", "--text-layers", "5"], "text_layers=5 is out of range"),
    (["--model", "tiny", "--mmmu-val", "35.8"], "mmmu_val=35.8 is out of range; allowed (0, 1]"),
])
def test_bad_models_are_one_line_errors(tmp_path: Path, args: list[str], fragment: str,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("transformers")
    assert main(["profile", *args, *FAST, "--out", str(tmp_path / "x.csv")]) == 2
    err = capsys.readouterr().err
    assert fragment in err and err.count("\n") == 1
    assert not (tmp_path / "x.csv").exists()


def test_cuda_without_a_gpu_is_a_clear_error(tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("transformers")
    import torch

    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    assert main(["profile", "--model", "tiny", "--device", "cuda", "--out",
                 str(tmp_path / "x.csv")]) == 2
    assert "sees no CUDA device" in capsys.readouterr().err


def test_simulator_and_cli_parser_never_load_transformers_or_torch() -> None:
    code = ("import sys, satedge.sim, satedge.envs, satedge.profiling.fit, satedge.cli; "
            "satedge.cli._parser(); "
            "bad = [m for m in sys.modules if m.split('.')[0] in ('torch', 'transformers')]; "
            "assert not bad, bad[:5]")
    subprocess.run([sys.executable, "-c", code], check=True)
