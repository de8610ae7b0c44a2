"""The per-slot optimiser: equal to brute force on tiny cases, never worse than greedy, seeded,
UAV placement by known centres, and usable from the command line."""

from __future__ import annotations

import itertools
import json
from dataclasses import replace

import numpy as np
import pytest

from satedge.agents.heuristics import Action, GreedyPolicy, make_policy
from satedge.agents.optimizer import OptimizerConfig, OptimizerPolicy, uav_moves
from satedge.cli import main
from satedge.envs.encoding import reward
from satedge.sim.network import EdgeNetwork
from satedge.sim.scenario import Scenario, resolve
from satedge.sim.state import Outcome, SlotState, TaskStatus

TINY = ["n_uavs=2", "n_candidates=2", "tasks.accuracy_max=0.5"]  # UAVs often feasible: interference


def _objective(sc: Scenario, out: Outcome) -> np.ndarray:
    """What the reward charges for a slot: zeta C + P (= -K_active * reward)."""
    return np.asarray(sc.cost.reward_scale * out.cost + out.penalty)


def _decoded(sc: Scenario, action: Action) -> tuple[np.ndarray, np.ndarray]:
    """Servers and powers (W) of a Dict action, mapped as the environment maps them."""
    lo, hi = sc.iotd.power_min_w, sc.iotd.power_max_w
    power = np.clip(np.asarray(action["power"], dtype=np.float64), -1.0, 1.0)
    return np.asarray(action["offload"], dtype=np.int64), lo + (power + 1.0) / 2.0 * (hi - lo)


def _brute_force(net: EdgeNetwork, st: SlotState, levels_w: np.ndarray,
                 allow_reject: bool) -> np.ndarray:
    """[B] min of zeta C + P over every server assignment (feasible ones unless
    ``allow_reject``) and every joint power on the grid ``levels_w``."""
    sc = net.scenario
    k = sc.n_iotds
    servers = np.array(list(itertools.product(range(sc.n_servers), repeat=k)))
    powers = np.array(list(itertools.product(levels_w, repeat=k)))
    best = []
    for b in range(st.batch_size):
        srv = servers
        if not allow_reject:
            mask = st.mask[b]
            srv = srv[(mask[np.arange(k), srv] | ~mask.any(-1)).all(-1)]
        s, p = np.repeat(srv, len(powers), 0), np.tile(powers, (len(srv), 1))
        out = net.cost(st.take(np.full(len(s), b)), s, p)
        best.append(_objective(sc, out).min())
    return np.array(best)


@pytest.mark.parametrize("allow_reject", [False, True])
@pytest.mark.parametrize("k", [1, 2, 3])
def test_equals_brute_force_on_tiny_cases(k: int, allow_reject: bool) -> None:
    sc = resolve("default", [f"n_iotds={k}", *TINY])
    net = EdgeNetwork(sc)
    st = net.reset([np.random.default_rng(100 * k + i) for i in range(8)])
    levels = np.linspace(sc.iotd.power_min_w, sc.iotd.power_max_w, 11)
    policy = OptimizerPolicy(OptimizerConfig(allow_reject=allow_reject))
    sol = policy.solve(net, st, np.random.default_rng(0))
    bf = _brute_force(net, st, levels, allow_reject)
    assert sol.exact.all()
    # The search is exact over servers; over powers it searches a finer, continuous set than the
    # brute-force grid (zoom rounds, scaling moves), so it may beat the grid but never lose by
    # more than 1e-4 relative (interacting UAV powers are a local optimum).
    assert np.all(sol.objective <= bf * (1.0 + 1e-4) + 1e-12), (sol.objective, bf)
    out = net.cost(st, sol.server, sol.power_w)
    np.testing.assert_allclose(sol.objective, _objective(sc, out), rtol=1e-12, atol=1e-12)
    if not allow_reject:
        chosen = np.take_along_axis(st.mask, sol.server[..., None], -1)[..., 0]
        assert np.all(chosen | ~st.tasks.active | ~st.mask.any(-1))
    if k == 3:  # the cases include interfering UAV uplinks (two UAVs serving at once)
        on_uav = out.executed & (sol.server < sc.n_uavs)
        assert any(len(set(sol.server[b][on_uav[b]])) == 2 for b in range(8))


def test_objective_is_what_the_reward_charges() -> None:
    sc = resolve("small")
    net = EdgeNetwork(sc)
    st = net.reset([np.random.default_rng(i) for i in range(6)])
    act = OptimizerPolicy().act(net, st, np.random.default_rng(0))
    out = net.cost(st, *_decoded(sc, act))
    sol = OptimizerPolicy().solve(net, st, np.random.default_rng(0))
    n = np.maximum(out.n_active, 1)
    np.testing.assert_allclose(-reward(sc, out) * n, sol.objective, rtol=1e-9, atol=1e-9)


def _mid_episode_states(sc: Scenario, n_envs: int, slots: int) -> tuple[EdgeNetwork, SlotState]:
    """States a few slots into greedy-driven episodes (UAVs moved, tasks renewed)."""
    net = EdgeNetwork(sc)
    rngs = [np.random.default_rng(7 + i) for i in range(n_envs)]
    st = net.reset(rngs)
    for _ in range(slots):
        a = GreedyPolicy().act(net, st, rngs[0])
        move = np.asarray(a["uav"], dtype=np.float64) * sc.uav.speed_max_m_s * sc.slot_s
        _, st = net.step(st, *_decoded(sc, a), move, rngs)
    return net, st


def test_never_worse_than_greedy_on_the_default_scenario() -> None:
    sc = resolve("default")
    net, st = _mid_episode_states(sc, 12, 3)
    rng = np.random.default_rng(0)
    g = GreedyPolicy().act(net, st, rng)
    greedy = _objective(sc, net.cost(st, *_decoded(sc, g)))
    act = OptimizerPolicy().act(net, st, rng)
    opt = _objective(sc, net.cost(st, *_decoded(sc, act)))
    assert np.all(opt <= greedy * (1.0 + 1e-9))
    assert opt.sum() < 0.995 * greedy.sum()  # and better overall


def test_local_search_finds_the_enumerated_optimum() -> None:
    sc = resolve("default", ["n_iotds=6"])
    net = EdgeNetwork(sc)
    st = net.reset([np.random.default_rng(50 + i) for i in range(12)])
    exact = OptimizerPolicy(OptimizerConfig(max_joint=20_000)).solve(
        net, st, np.random.default_rng(0))
    local = OptimizerPolicy(OptimizerConfig(max_joint=1)).solve(net, st, np.random.default_rng(0))
    assert exact.exact.all() and not local.exact[st.tasks.active.sum(-1) > 1].any()
    np.testing.assert_allclose(local.objective, exact.objective, rtol=2e-3)


def test_deterministic_for_a_given_seed() -> None:
    sc = resolve("default")
    net = EdgeNetwork(sc)
    st = net.reset([np.random.default_rng(i) for i in range(4)])
    config = OptimizerConfig(max_joint=1, restarts=2)
    a = OptimizerPolicy(config).act(net, st, np.random.default_rng(3))
    b = OptimizerPolicy(config).act(net, st, np.random.default_rng(3))
    for key in a:
        np.testing.assert_array_equal(a[key], b[key])


def test_uav_moves_head_for_cluster_centres_within_the_speed_limit() -> None:
    sc = resolve("default", ["n_iotds=4", "n_uavs=2"])
    net = EdgeNetwork(sc)
    st = net.reset([np.random.default_rng(0)])
    iotd = np.array([[[100.0, 100.0], [120.0, 100.0], [400.0, 400.0], [400.0, 420.0]]])
    same_rate = np.repeat(st.poisson_cdf[:, :1], 4, axis=1)  # equal weights: plain centroids
    st = replace(st, iotd_xy_m=iotd, uav_xy_m=np.array([[[90.0, 90.0], [410.0, 410.0]]]),
                 poisson_cdf=same_rate)
    step = sc.uav.speed_max_m_s * sc.slot_s  # 60 m
    # centres (110, 100) and (400, 410); moves (20, 10) and (-10, 0) m, well inside 60 m
    np.testing.assert_allclose(uav_moves(net, st, 5)[0] * step, [[20.0, 10.0], [-10.0, 0.0]])
    far = replace(st, uav_xy_m=np.array([[[110.0, 300.0], [400.0, 200.0]]]))
    move = uav_moves(net, far, 5)[0] * step  # 200 and 210 m to go: capped at 60 m
    np.testing.assert_allclose(move, [[0.0, -60.0], [0.0, 60.0]], atol=1e-9)


def test_uav_moves_do_not_change_the_current_slot_cost() -> None:
    sc = resolve("small")
    net = EdgeNetwork(sc)
    st = net.reset([np.random.default_rng(1)])
    server, power = np.zeros((1, sc.n_iotds), dtype=np.int64), np.full((1, sc.n_iotds), 0.1)
    outs = [net.step(st, server, power, np.full((1, sc.n_uavs, 2), d),
                     [np.random.default_rng(9)])[0] for d in (-60.0, 0.0, 60.0)]
    assert outs[0].cost == outs[1].cost == outs[2].cost


def test_idle_slot_costs_nothing_and_bad_config_is_named() -> None:
    net = EdgeNetwork(resolve("small"))
    st = net.reset([np.random.default_rng(0)])
    st = replace(st, tasks=replace(st.tasks, n_requests=np.zeros_like(st.tasks.n_requests)))
    sol = OptimizerPolicy().solve(net, st, np.random.default_rng(0))
    assert not st.tasks.active.any() and sol.objective[0] == 0.0
    with pytest.raises(ValueError, match=r"power_levels=1 .*>= 2"):
        OptimizerConfig(power_levels=1)


def test_evaluate_cli_runs_the_optimizer(capsys: pytest.CaptureFixture[str]) -> None:
    assert isinstance(make_policy("optimizer"), OptimizerPolicy)
    unmasked = make_policy("optimizer-unmasked")
    assert isinstance(unmasked, OptimizerPolicy) and unmasked.config.allow_reject
    code = main(["evaluate", "--policy", "optimizer", "--preset", "small", "--episodes", "2",
                 "--seed", "0", "--set", "episode_slots=4", "--json"])
    assert code == 0
    result = json.loads(capsys.readouterr().out)
    assert result["policy"] == "optimizer" and result["slots"] == 8
    assert result["infeasible_rate"] == 0.0 and result["cost_per_slot"] > 0.0
    with pytest.raises(SystemExit):
        main(["evaluate", "--help"])
    assert "optimizer" in capsys.readouterr().out


def test_rejecting_is_used_only_when_allowed() -> None:
    # a low penalty (the first default, 5) makes refusing a task pay in busy slots
    sc = resolve("default", ["cost.infeasible_penalty=5"])
    net, st = _mid_episode_states(sc, 8, 2)
    masked = OptimizerPolicy(OptimizerConfig(max_joint=1, restarts=0)).solve(
        net, st, np.random.default_rng(0))
    free = OptimizerPolicy(OptimizerConfig(max_joint=1, restarts=0, allow_reject=True)).solve(
        net, st, np.random.default_rng(0))
    n_infeasible = [(net.cost(st, s.server, s.power_w).status == TaskStatus.INFEASIBLE).sum()
                    for s in (masked, free)]
    assert n_infeasible[0] == 0 and n_infeasible[1] > 0
    assert free.objective.sum() < masked.objective.sum()
