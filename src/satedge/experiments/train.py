"""Train one learning agent on one scenario and seed into a run directory (resumable)."""

from __future__ import annotations

import json
from dataclasses import asdict, fields
from pathlib import Path
from typing import Any, cast

from satedge.agents.common.offpolicy import OffPolicyConfig, set_torch_threads, train_off_policy
from satedge.agents.common.onpolicy import OnPolicyAgent, OnPolicyConfig, train_on_policy
from satedge.agents.common.protocol import Agent
from satedge.agents.common.rundir import RunDir
from satedge.agents.registry import algorithm_spec, build_agent, check_setting_types
from satedge.envs.encoding import PER_IOTD, observation_size
from satedge.envs.vector import MllmOffloadVectorEnv
from satedge.experiments.evaluate import AgentPolicy, evaluate
from satedge.sim.scenario import Scenario

__all__ = ["load_trained_agent", "train"]

EVAL_KEYS = (
    "cost_per_slot",
    "latency_s",
    "energy_j_per_slot",
    "episode_return",
    "deadline_miss_rate",
)


def _split_loop_overrides(
    overrides: dict[str, Any], loop_cls: type = OffPolicyConfig
) -> tuple[dict[str, Any], dict[str, Any]]:
    loop_keys = {f.name for f in fields(loop_cls)}
    loop = {k: v for k, v in overrides.items() if k in loop_keys}
    return loop, {k: v for k, v in overrides.items() if k not in loop_keys}


def train(
    algo: str,
    scenario: Scenario,
    seed: int,
    episodes: int,
    out: str | Path,
    *,
    overrides: dict[str, Any] | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Train (or resume) ``algo`` for ``episodes`` episodes; returns the final evaluation.

    ``overrides`` set agent hyperparameters (e.g. ``critic_lr``) or loop settings (``n_envs``,
    ``batch_size``, ``buffer_size``, ``learning_starts``, ``eval_episodes`` ...).
    """
    set_torch_threads(1)
    spec = algorithm_spec(algo)
    on_policy = spec.loop == "on_policy"
    loop_cls = OnPolicyConfig if on_policy else OffPolicyConfig
    loop_over, agent_over = _split_loop_overrides(
        {**spec.loop_preset, **(overrides or {})}, loop_cls
    )
    check_setting_types(loop_cls, loop_over, "loop")
    loop_cfg = loop_cls(episodes=episodes, **loop_over)
    env = MllmOffloadVectorEnv(loop_cfg.n_envs, scenario)
    obs_dim = observation_size(scenario)
    cont = scenario.n_iotds + 2 * scenario.n_uavs
    probe = RunDir.seeds_for(seed)
    if "iotd_block" in {f.name for f in fields(algorithm_spec(algo).config_cls)}:
        # per-IoTD shared networks read the observation's IoTD blocks (unless set explicitly)
        agent_over = {"iotd_block": PER_IOTD + scenario.n_uavs, **agent_over}
    agent, agent_cfg = build_agent(
        algo, obs_dim, scenario.n_iotds, scenario.n_servers, cont, probe.torch, agent_over
    )
    loop_id = {k: v for k, v in asdict(loop_cfg).items() if k != "episodes"}
    run = RunDir(
        out,
        {"algo": algo, "agent": agent_cfg, "loop": loop_id, "scenario": scenario.to_dict()},
        seed,
    )

    def evaluate_agent(a: Agent) -> dict[str, float]:
        result = evaluate(AgentPolicy(a), scenario, loop_cfg.eval_episodes, run.seeds.eval[0])
        return {k: float(result[k]) for k in EVAL_KEYS}

    if run.is_finished() and run.completed_episodes() >= episodes:
        return dict(json.loads((Path(out) / "summary.json").read_text()))
    if isinstance(loop_cfg, OnPolicyConfig):
        return train_on_policy(
            cast(OnPolicyAgent, agent), env, loop_cfg, run, evaluate_agent, progress=progress
        )
    return train_off_policy(agent, env, loop_cfg, run, evaluate_agent, progress=progress)


def load_trained_agent(path: str | Path) -> tuple[Agent, Scenario]:
    """The agent of a run directory (its latest checkpoint) and the scenario it trained on."""
    meta = json.loads((Path(path) / "run.json").read_text())
    ident = meta["identity"]
    scenario = Scenario.from_dict(ident["scenario"])
    MllmOffloadVectorEnv(1, scenario)
    obs_dim = observation_size(scenario)
    cont = scenario.n_iotds + 2 * scenario.n_uavs
    agent, _ = build_agent(
        ident["algo"], obs_dim, scenario.n_iotds, scenario.n_servers, cont, 0, ident["agent"]
    )
    run = RunDir(path, {k: v for k, v in ident.items() if k != "seed"}, ident["seed"])
    agent.load_state_dict(run.load_agent_state())
    return agent, scenario
