"""Layering: the simulator imports only numpy/scipy/sgp4; sim and envs never load torch."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

SIM = Path(__file__).resolve().parents[1] / "src" / "satedge" / "sim"
ALLOWED = {"numpy", "scipy", "sgp4", "satedge"}


def test_sim_modules_import_only_numpy_scipy_sgp4_and_stdlib() -> None:
    stdlib = set(sys.stdlib_module_names)
    for path in SIM.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            for name in names:
                top = name.split(".")[0]
                assert top in ALLOWED | stdlib, f"{path.name} imports {name}"
                if top == "satedge":
                    assert name.startswith("satedge.sim"), f"{path.name} imports {name}"


def test_sim_and_envs_load_no_torch() -> None:
    code = ("import sys, satedge.sim, satedge.envs, satedge.agents, gymnasium as gym; "
            "env = gym.make('satedge/MllmOffload-v0'); env.reset(seed=0); "
            "env.step(env.action_space.sample()); "
            "bad = [m for m in sys.modules if m.split('.')[0] in ('torch', 'tensorflow', 'jax')]; "
            "assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True)
