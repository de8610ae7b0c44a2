"""Train one learning agent on one scenario and seed into a run directory (resumable)."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import asdict, fields
from pathlib import Path
from typing import Any, cast

from satedge.agents.common.offpolicy import (
    OffPolicyConfig,
    set_torch_threads,
    train_off_policy,
    train_off_policy_seeds,
)
from satedge.agents.common.onpolicy import OnPolicyAgent, OnPolicyConfig, train_on_policy
from satedge.agents.common.protocol import Agent
from satedge.agents.common.rundir import RunDir
from satedge.agents.registry import ALGORITHMS, algorithm_spec, build_agent, check_setting_types
from satedge.envs.encoding import PER_IOTD, observation_size
from satedge.envs.vector import MllmOffloadVectorEnv
from satedge.experiments.evaluate import AgentPolicy, evaluate
from satedge.sim.scenario import Scenario

__all__ = ["load_trained_agent", "supports_seed_batching", "train", "train_seeds"]

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


def scenario_agent_settings(config_cls: type, scenario: Scenario) -> dict[str, Any]:
    """Agent settings that follow from the scenario, for the fields ``config_cls`` has (explicit
    settings win): ``iotd_block``, the size of an IoTD's observation block, which per-IoTD shared
    networks read; ``uav_step``, the longest UAV move in the observation's position units
    (``2 x / area - 1``), which AD-SAC's ``uav_geometry`` needs."""
    names = {f.name for f in fields(config_cls)}
    out: dict[str, Any] = {}
    if "iotd_block" in names:
        out["iotd_block"] = PER_IOTD + scenario.n_uavs
    if "uav_step" in names:
        out["uav_step"] = 2.0 * scenario.uav.speed_max_m_s * scenario.slot_s / scenario.area_m
    return out


_LATER_AGENT_SETTINGS: dict[str, tuple[Any, tuple[str, ...]]] = {
    "server_values": ("critic", ()),
    "decision_samples": (0, ()),
    "discrete_actor": ("factorised", ()),
    "continuous_actor": ("flat", ("uav_step",)),
    "uav_geometry": (False, ("uav_step",)),
    "uav_shaping": (0.0, ()),
    "move_values": ("critic", ("move_weight",)),
    "power_values": ("critic", ("power_weight",)),
    "server_search": (0, ("server_weight",)),
    "move_centroid": (False, ()),
    "server_search_from_mode": (False, ()),
    "alpha_continuous_max": (0.0, ()),
    "move_target_slot": ("present", ()),
    "move_value_net": (False, ()),
    "target_search": ("local", ("server_weight",)),
    "decision_beam": (0, ()),
}
"""Agent settings added after the first releases: at this default the setting stays out of a
run's identity, and so do the keys beside it once every setting that reads them is at its
default."""


def _prepare(
    algo: str,
    scenario: Scenario,
    seed: int,
    episodes: int,
    out: str | Path,
    overrides: dict[str, Any] | None,
) -> tuple[Agent, OffPolicyConfig | OnPolicyConfig, RunDir, Callable[[Agent], dict[str, float]]]:
    """The agent, loop settings, run directory and evaluation of one (algo, seed) run."""
    spec = algorithm_spec(algo)
    loop_cls = OnPolicyConfig if spec.loop == "on_policy" else OffPolicyConfig
    loop_over, agent_over = _split_loop_overrides(
        {**spec.loop_preset, **(overrides or {})}, loop_cls
    )
    check_setting_types(loop_cls, loop_over, "loop")
    loop_cfg = loop_cls(episodes=episodes, **loop_over)
    obs_dim = observation_size(scenario)
    cont = scenario.n_iotds + 2 * scenario.n_uavs
    probe = RunDir.seeds_for(seed)
    agent_over = {**scenario_agent_settings(spec.config_cls, scenario), **agent_over}
    agent, agent_cfg = build_agent(
        algo, obs_dim, scenario.n_iotds, scenario.n_servers, cont, probe.torch, agent_over
    )
    loop_id = {k: v for k, v in asdict(loop_cfg).items() if k != "episodes"}
    # settings added after the first releases leave the identity at their defaults, so run
    # directories made before them still resume
    for key in ("counterfactual_samples", "move_exploration"):
        if not loop_id.get(key, 1):
            del loop_id[key]
    unset = {key for key, (default, _) in _LATER_AGENT_SETTINGS.items()
             if key in agent_cfg and agent_cfg[key] == default}
    read = {k for key, (_, also) in _LATER_AGENT_SETTINGS.items() if key not in unset
            for k in also}
    unused = {k for key in unset for k in _LATER_AGENT_SETTINGS[key][1]} - read
    agent_cfg = {k: v for k, v in agent_cfg.items() if k not in unset | unused}
    run = RunDir(
        out,
        {"algo": algo, "agent": agent_cfg, "loop": loop_id, "scenario": scenario.to_dict()},
        seed,
    )

    def evaluate_agent(a: Agent) -> dict[str, float]:
        result = evaluate(AgentPolicy(a), scenario, loop_cfg.eval_episodes, run.seeds.eval[0])
        return {k: float(result[k]) for k in EVAL_KEYS}

    return agent, loop_cfg, run, evaluate_agent


def _finished(run: RunDir, episodes: int) -> dict[str, Any] | None:
    if run.is_finished() and run.completed_episodes() >= episodes:
        return dict(json.loads((run.path / "summary.json").read_text()))
    return None


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
    agent, loop_cfg, run, evaluate_agent = _prepare(algo, scenario, seed, episodes, out,
                                                    overrides)
    done = _finished(run, episodes)
    if done is not None:
        return done
    env = MllmOffloadVectorEnv(loop_cfg.n_envs, scenario)
    if isinstance(loop_cfg, OnPolicyConfig):
        return train_on_policy(
            cast(OnPolicyAgent, agent), env, loop_cfg, run, evaluate_agent, progress=progress
        )
    return train_off_policy(agent, env, loop_cfg, run, evaluate_agent, progress=progress)


def supports_seed_batching(algo: str) -> bool:
    """Whether ``algo`` can train several seeds as one set of stacked networks."""
    return algorithm_spec(algo).seed_batched


def train_seeds(
    algo: str,
    scenario: Scenario,
    seeds: Sequence[int],
    episodes: int,
    outs: Sequence[str | Path],
    *,
    overrides: dict[str, Any] | None = None,
    progress: bool = True,
) -> list[dict[str, Any]]:
    """Train (or resume) several seeds of one configuration in one process, seed-batched
    (docs/performance.md): each seed gets the run directory ``outs[i]`` that ``train`` would
    write, with its own seeds, metrics and ordinary checkpoints. Seeds already finished are
    skipped; unfinished ones are grouped by their checkpoints' progress and each group is
    trained as one batch (a single seed as an ordinary run). Returns the final evaluations in
    the order of ``seeds``.
    """
    if len(seeds) != len(outs):
        raise ValueError(f"{len(seeds)} seeds but {len(outs)} output directories")
    if len(set(seeds)) != len(seeds):
        raise ValueError(f"seeds {list(seeds)} repeat a seed")
    if not supports_seed_batching(algo):
        raise ValueError(f"algo={algo!r} has no seed-batched form; seed batching supports "
                         f"{[a for a in ALGORITHMS if supports_seed_batching(a)]}")
    set_torch_threads(1)
    prepared = [_prepare(algo, scenario, s, episodes, o, overrides)
                for s, o in zip(seeds, outs, strict=True)]
    results: list[dict[str, Any] | None] = [_finished(p[2], episodes) for p in prepared]
    groups: dict[int, list[int]] = {}
    for i, p in enumerate(prepared):
        if results[i] is None:
            groups.setdefault(_progress(p[2]), []).append(i)
    for members in groups.values():
        agents = [prepared[i][0] for i in members]
        loop_cfg = cast(OffPolicyConfig, prepared[members[0]][1])
        agent = agents[0] if len(agents) == 1 else \
            cast(Any, type(agents[0])).seed_batched(agents)
        env = MllmOffloadVectorEnv(loop_cfg.n_envs * len(members), scenario)
        finals = train_off_policy_seeds(
            agent, env, loop_cfg, [prepared[i][2] for i in members],
            [prepared[i][3] for i in members], progress=progress)
        for i, final in zip(members, finals, strict=True):
            results[i] = {**final}
    return [r for r in results if r is not None]


def _progress(run: RunDir) -> int:
    """Environment steps of a run's checkpoint (0 without one)."""
    return run.checkpoint_steps() if run.has_checkpoint() else 0


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
