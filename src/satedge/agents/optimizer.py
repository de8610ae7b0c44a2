"""The per-slot optimiser: a reference policy that minimises each slot's cost plus penalties.

What it optimises: one slot at a time, given the current state, exactly what the reward charges
for the slot, ``J = zeta C + P`` (system cost C, SPEC section 6; failure penalties P, section 7;
the default reward is ``-J / K_active`` with ``K_active`` fixed by the state; under ``reward_form:
reciprocal`` it still minimises J), over every active task's server and every IoTD's power, by
calling the simulator's pure cost function :func:`satedge.sim.cost.action_cost` and nothing else.

What it does not optimise: the future. Servers and powers do not change the next state (nothing
queues across slots; :meth:`EdgeNetwork.advance` reads only the UAV moves), and UAV moves do not
change this slot's cost (``step`` costs the action at the slot's starting state and moves the UAVs
at its end). So the only link between slots, UAV placement, is left to a heuristic: weighted
k-means of the IoTD positions (weights: expected requests per slot) started at the UAVs, each UAV
moving toward its centre within ``v_max * tau``. J is therefore a near-lower bound on any policy's
cost in the same state, not a bound on the return: a policy that places UAVs better reaches states
where this optimiser's J would be lower still.

Algorithm (numpy only, batched over B environments):

* Options per task: its feasible servers; with ``allow_reject`` also "reject" (a masked server on
  purpose: not run, charged the infeasible penalty, cheaper than a late task that slows others).
* Powers for an assignment. A satellite task's power changes only its own upload (bands split
  equally, no interference), and so does a UAV task's while one UAV serves: each is set by its own
  1-D search, all at once. UAV uplinks of different UAVs interfere (full reuse), so when two UAVs
  or more serve, their tasks' powers interact and are set by steepest descent on the slot's J,
  over single-power moves and moves scaling all of them together. The 1-D search is a grid of
  ``power_levels`` points with both ends, then ``power_rounds - 1`` zooms into the cells beside
  the best point: a grid, not a bracketing scalar search, because J is not unimodal in one power
  (deadline and visibility penalties are steps in the upload time; a UAV task's power also raises
  the other cells' costs) and the ends are often optimal (upload energy weighs little).
* Exact search when a slot has at most ``max_joint`` joint assignments: all are enumerated and
  optimised in increasing order of a lower bound (no interference, upload at p_max for time and at
  p_min for energy, only certain penalties) until the bound passes the best J found. Exact over
  servers; interacting UAV powers are a local optimum (within 1e-4 of a joint-grid brute force in
  the tests).
* Otherwise best-improvement local search (reassign one task, swap two tasks' servers, pruned by
  the same bound) from the greedy solution and ``restarts`` random feasible assignments drawn from
  the ``rng`` passed in, until a local optimum or ``max_evaluations`` cost rows per environment.
The greedy solution (:class:`GreedyPolicy`) is always a candidate: never worse than greedy.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import NamedTuple

import numpy as np
from numpy.typing import NDArray

from satedge.agents.heuristics import Action, GreedyPolicy, uniform_feasible_servers
from satedge.envs.encoding import power_units
from satedge.sim.cost import action_cost
from satedge.sim.network import EdgeNetwork
from satedge.sim.state import SlotState, TaskStatus

__all__ = ["OptimizerConfig", "OptimizerPolicy", "SlotSolution", "optimise_powers", "uav_moves"]

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]
BoolArray = NDArray[np.bool_]
_TOL = 1e-9  # relative improvement below which a change is not taken (float noise)


def _improves(new: FloatArray, ref: FloatArray) -> BoolArray:
    """``new`` is lower than ``ref`` by more than float noise (``ref`` may be +-inf)."""
    return np.asarray(new < ref - _TOL * np.abs(np.where(np.isfinite(ref), ref, 0.0)))


@dataclass(frozen=True)
class OptimizerConfig:
    """Search settings (defaults tuned on the default scenario, see docs/baselines.md)."""

    allow_reject: bool = False
    """Also consider sending a task to a masked server on purpose (it is not run and costs the
    infeasible penalty): the bound over every action the environment accepts. Off, the search
    keeps to the mask, as every masked learner does."""
    max_joint: int = 4096
    """Enumerate every joint assignment when a slot has at most this many."""
    power_levels: int = 9
    """Grid points of the 1-D power search over [p_min, p_max], both ends included."""
    power_rounds: int = 2
    """1 = grid only; each further round zooms into the cells beside the best point."""
    max_power_moves: int = 12
    """Coordinate-descent moves per zoom round over interacting UAV powers."""
    restarts: int = 1
    """Random feasible starts of the local search, besides the greedy one."""
    max_evaluations: int = 20_000
    """Local-search budget: cost-function rows per environment and slot."""
    chunk: int = 4
    """Candidates fully optimised per instance and round, in order of their lower bound."""
    kmeans_iterations: int = 5
    """Lloyd iterations of the UAV placement."""

    def __post_init__(self) -> None:
        lows = {"max_joint": 1, "power_levels": 2, "power_rounds": 1, "max_power_moves": 1,
                "restarts": 0, "max_evaluations": 1, "chunk": 1, "kmeans_iterations": 0}
        for f in fields(self)[1:]:
            value = getattr(self, f.name)
            if not isinstance(value, int) or value < lows[f.name]:
                raise ValueError(f"OptimizerConfig.{f.name}={value!r} is out of range; "
                                 f"allowed integers >= {lows[f.name]}")


class SlotSolution(NamedTuple):
    """The optimiser's answer for B environments."""

    server: IntArray
    """[B, K] server per IoTD."""
    power_w: FloatArray
    """[B, K] transmit power (W)."""
    objective: FloatArray
    """[B] ``zeta C + P`` of the slot under this action."""
    exact: BoolArray
    """[B] True where every joint assignment was enumerated."""
    evaluations: IntArray
    """[B] cost-function rows spent (greedy start excluded)."""


class OptimizerPolicy:
    """Per-slot optimiser as a :class:`~satedge.agents.heuristics.HeuristicPolicy`.

    Args:
        config: search settings; defaults if None.
    """

    def __init__(self, config: OptimizerConfig | None = None) -> None:
        self.config = config or OptimizerConfig()

    def act(self, network: EdgeNetwork, state: SlotState, rng: np.random.Generator) -> Action:
        """Batched action: the solution's servers and powers, UAVs toward k-means centres."""
        sol = self.solve(network, state, rng)
        return {"offload": sol.server, "power": power_units(network.scenario, sol.power_w),
                "uav": uav_moves(network, state, self.config.kmeans_iterations)}

    def solve(self, network: EdgeNetwork, state: SlotState,
              rng: np.random.Generator) -> SlotSolution:
        """Servers and powers minimising ``zeta C + P`` of this slot for every environment."""
        return _SlotSearch(network, state, self.config).solve(rng)


def optimise_powers(network: EdgeNetwork, state: SlotState, server: IntArray, power_w: FloatArray,
                    config: OptimizerConfig | None = None) -> tuple[FloatArray, FloatArray]:
    """The optimiser's power search for given assignments: best powers [B, K] (W) and
    ``zeta C + P`` [B] for ``server`` [B, K] at ``state``, starting from ``power_w`` [B, K] and
    never worse than it (independent tasks by the zoomed 1-D grid, interacting UAV uplinks by
    steepest descent; the module docstring). Tasks that are not executed keep their power."""
    search = _SlotSearch(network, state, config or OptimizerConfig())
    return search.optimise_power(np.arange(state.batch_size), np.asarray(server, np.int64),
                                 np.asarray(power_w, np.float64))


class _SlotSearch:
    """One slot's search for B environments. Rows of the cost function belong to *instances*
    (one per environment when enumerating, one per environment and start in local search)."""

    def __init__(self, network: EdgeNetwork, state: SlotState, config: OptimizerConfig) -> None:
        sc = network.scenario
        self.net, self.state, self.cfg = network, state, config
        self.m, self.k = sc.n_uavs, sc.n_iotds
        self.p_min, self.p_max = sc.iotd.power_min_w, sc.iotd.power_max_w
        c = sc.cost
        self.zeta, self.w_t = c.reward_scale, c.latency_weight_per_s
        self.w_e = c.energy_weight_per_j
        self.penalty = np.array([0.0, 0.0, c.deadline_penalty, c.visibility_penalty,
                                 c.infeasible_penalty, c.drop_penalty])
        # a lower bound may only charge what is certain: a late satellite task may end VISIBILITY
        self.penalty_lb = self.penalty.copy()
        self.penalty_lb[TaskStatus.DEADLINE] = min(c.deadline_penalty, c.visibility_penalty)
        mask, active = state.mask, state.tasks.active
        movable = active & mask.any(-1)
        s_idx = np.arange(mask.shape[-1])
        reject = np.where(movable & ~mask.all(-1) & config.allow_reject,
                          np.argmin(mask, axis=-1), -1)
        self.options = movable[..., None] & (mask | (s_idx == reject[..., None]))  # [B, K, S]
        self.inst_env = np.arange(state.batch_size)
        self.used = np.zeros(state.batch_size, dtype=np.int64)

    # -- evaluation --------------------------------------------------------------------------
    def _rows(self, inst: IntArray) -> SlotState:
        np.add.at(self.used, inst, 1)
        return self.state.take(self.inst_env[inst])

    def _contrib(self, inst: IntArray, server: IntArray,
                 power: FloatArray) -> tuple[FloatArray, BoolArray]:
        """[R, K] per-task share of J (they sum to ``zeta C + P``) and [R, K] executed."""
        out = action_cost(self.net.scenario, self.net.servers, self._rows(inst), server, power)
        share = self.zeta * (self.w_t * out.latency_s + self.w_e * out.energy_j)
        return share + self.penalty[out.status], out.executed

    def _lower_bound(self, inst: IntArray, server: IntArray) -> FloatArray:
        """[R] a lower bound on J over all powers: no interference (only the serving UAV's gain
        is kept), upload time at p_max, upload energy at p_min (p / R(p) grows with p), and only
        the penalties the bound's latency already makes certain."""
        st = self._rows(np.concatenate([inst, inst]))
        server2 = np.concatenate([server, server])
        own = server2[..., None] == np.arange(self.m)
        st = replace(st, uav_gain=np.where(own, st.uav_gain, 0.0))
        power = np.concatenate([np.full(server.shape, self.p_max), np.full(server.shape,
                                                                          self.p_min)])
        out = action_cost(self.net.scenario, self.net.servers, st, server2, power)
        r = inst.size
        share = self.zeta * (self.w_t * out.latency_s[:r] + self.w_e * out.energy_j[r:])
        return np.asarray((share + self.penalty_lb[out.status[:r]]).sum(-1))

    # -- powers for given assignments --------------------------------------------------------
    def optimise_power(self, inst: IntArray, server: IntArray,
                       power: FloatArray) -> tuple[FloatArray, FloatArray]:
        """Best powers [R, K] (W) and J [R] for the rows' assignments, starting from ``power``
        (never worse than the start)."""
        power = power.copy()
        share, executed = self._contrib(inst, server, power)
        on_uav = executed & (server < self.m)
        cells = (on_uav[..., None] & (server[..., None] == np.arange(self.m))).any(1).sum(-1)
        coupled = on_uav & (cells >= 2)[:, None]
        free = executed & ~coupled
        lo, hi = np.full(power.shape, self.p_min), np.full(power.shape, self.p_max)
        t = np.linspace(0.0, 1.0, self.cfg.power_levels)
        log_span = np.log(self.p_max / self.p_min)
        for _ in range(self.cfg.power_rounds):
            grid = lo[..., None] + (hi - lo)[..., None] * t  # [R, K, G]
            self._free_pass(inst, server, power, share, free, grid)
            if coupled.any():
                self._coupled_descent(inst, server, power, share, coupled, grid, log_span)
            step = (hi - lo) / (self.cfg.power_levels - 1)
            log_span *= 2.0 / (self.cfg.power_levels - 1)  # zoom as the grid does
            lo, hi = np.maximum(self.p_min, power - step), np.minimum(self.p_max, power + step)
        return power, share.sum(-1)

    def _free_pass(self, inst: IntArray, server: IntArray, power: FloatArray, share: FloatArray,
                   free: BoolArray, grid: FloatArray) -> None:
        """Each independent task's best grid power at once (in place): its share of J depends
        on its own power only, so all of them can be set to grid point j in the same row."""
        rows = np.flatnonzero(free.any(-1))
        if rows.size == 0:
            return
        g = grid.shape[-1]
        trial = np.where(free[rows, None, :], grid[rows].transpose(0, 2, 1), power[rows, None, :])
        s, _ = self._contrib(np.repeat(inst[rows], g), np.repeat(server[rows], g, axis=0),
                             trial.reshape(-1, self.k))
        s = s.reshape(rows.size, g, self.k)
        j = np.argmin(s, axis=1)[:, None, :]
        best_s = np.take_along_axis(s, j, 1)[:, 0]
        better = free[rows] & _improves(best_s, share[rows])
        power[rows] = np.where(better, np.take_along_axis(trial, j, 1)[:, 0], power[rows])
        share[rows] = np.where(better, best_s, share[rows])

    def _coupled_descent(self, inst: IntArray, server: IntArray, power: FloatArray,
                         share: FloatArray, coupled: BoolArray, grid: FloatArray,
                         log_span: float) -> None:
        """Interacting UAV powers (in place), by steepest descent on the whole slot's J over two
        kinds of move, all tried in one batch, the best taken, until none improves: set one
        task's power to a grid point (coordinate descent), or scale every interacting power of
        the slot by a factor in ``exp([-log_span, log_span])``. The scale move follows the ridge
        that coordinate moves cannot: with interference far above noise the rates depend on
        power ratios, so lowering all powers together saves energy at almost no latency."""
        g, live = grid.shape[-1], np.asarray(coupled.any(-1))
        factors = np.exp(np.linspace(-log_span, log_span, g))
        for _ in range(self.cfg.max_power_moves):
            rows = np.flatnonzero(live)
            if rows.size == 0:
                return
            r, k = np.nonzero(coupled[rows])
            coord = np.repeat(power[rows[r]], g, axis=0)
            coord[np.arange(coord.shape[0]), np.repeat(k, g)] = grid[rows[r], k].reshape(-1)
            scaled = power[rows, None, :] * np.where(coupled[rows, None, :],
                                                     factors[:, None], 1.0)
            trial = np.concatenate([coord, np.clip(scaled, self.p_min, self.p_max).reshape(
                -1, self.k)])
            owner = np.concatenate([np.repeat(r, g), np.repeat(np.arange(rows.size), g)])
            s, _ = self._contrib(inst[rows[owner]], server[rows[owner]], trial)
            total = s.sum(-1)
            order = np.lexsort((total, owner))
            first = order[np.r_[True, owner[order][1:] != owner[order][:-1]]]  # best per row
            better = _improves(total[first], share[rows].sum(-1))
            live[:] = False
            live[rows[better]] = True
            power[rows[better]] = trial[first[better]]
            share[rows[better]] = s[first[better]]

    # -- choosing among candidate assignments ------------------------------------------------
    def best_of(self, inst: IntArray, server: IntArray, power: FloatArray, threshold: FloatArray,
                budget: float) -> tuple[FloatArray, IntArray, FloatArray]:
        """Per instance, the candidate with the lowest J below ``threshold`` [I] (J, server,
        power; J stays ``threshold`` where none beats it). Candidates are optimised in
        increasing order of their lower bound until the bound passes the best J found or the
        instance has used ``budget`` rows."""
        n_inst = threshold.size
        best, best_srv = threshold.copy(), np.zeros((n_inst, self.k), dtype=np.int64)
        best_pow = np.full((n_inst, self.k), self.p_max)
        if inst.size == 0:
            return best, best_srv, best_pow
        bound = self._lower_bound(inst, server)
        order = np.lexsort((bound, inst))
        sorted_inst, sorted_bound = inst[order], bound[order]
        ptr = np.searchsorted(sorted_inst, np.arange(n_inst))
        end = np.searchsorted(sorted_inst, np.arange(n_inst), side="right")
        chunk = np.arange(self.cfg.chunk)
        while True:
            live = (ptr < end) & (self.used < budget)
            live &= _improves(sorted_bound[np.minimum(ptr, order.size - 1)], best)
            if not live.any():
                return best, best_srv, best_pow
            idx = (ptr[live, None] + chunk).reshape(-1)
            idx = idx[idx < np.repeat(end[live], chunk.size)]
            idx = idx[sorted_bound[idx] < best[sorted_inst[idx]]]
            rows = order[idx]
            p, obj = self.optimise_power(inst[rows], server[rows], power[rows])
            for i in np.argsort(-obj, kind="stable"):  # the lowest J per instance is written last
                owner = inst[rows[i]]
                if _improves(obj[i:i + 1], best[owner:owner + 1])[0]:
                    best[owner], best_srv[owner], best_pow[owner] = obj[i], server[rows[i]], p[i]
            ptr[live] += chunk.size

    # -- the two searches --------------------------------------------------------------------
    def exhaustive(self, envs: IntArray, greedy: tuple[IntArray, FloatArray]) -> tuple[
            FloatArray, IntArray, FloatArray]:
        """Exact search for ``envs`` (one instance each): every joint assignment, plus greedy's."""
        self.inst_env, self.used = envs, np.zeros(envs.size, dtype=np.int64)
        inst, servers = [], []
        for i, b in enumerate(envs):
            choices = [np.flatnonzero(o) if o.any() else np.zeros(1, dtype=np.int64)
                       for o in self.options[b]]
            grid = np.stack(np.meshgrid(*choices, indexing="ij"), -1).reshape(-1, self.k)
            servers += [grid, greedy[0][b][None]]
            inst.append(np.full(grid.shape[0] + 1, i))
        server, inst_a = np.concatenate(servers).astype(np.int64), np.concatenate(inst)
        power = np.full(server.shape, self.p_max)
        is_greedy = np.r_[inst_a[1:] != inst_a[:-1], True]  # greedy is last of its instance
        power[is_greedy] = greedy[1][envs]
        return self.best_of(inst_a, server, power, np.full(envs.size, np.inf), np.inf)

    def local_search(self, envs: IntArray, starts: list[tuple[IntArray, FloatArray]]) -> tuple[
            FloatArray, IntArray, FloatArray]:
        """Best-improvement local search for ``envs`` from every start; best per environment."""
        n = len(starts)
        self.inst_env = np.tile(envs, n)
        self.used = np.zeros(self.inst_env.size, dtype=np.int64)
        inst = np.arange(self.inst_env.size)
        server = np.concatenate([s[envs] for s, _ in starts])
        power, obj = self.optimise_power(inst, server, np.concatenate([p[envs] for _, p in starts]))
        budget = self.cfg.max_evaluations / n
        live = np.ones(inst.size, dtype=bool)
        while live.any():
            nb_inst, nb_srv, nb_pow = self._neighbours(np.flatnonzero(live), server, power)
            threshold = np.where(live, obj, -np.inf)  # finished instances take no candidate
            new_obj, new_srv, new_pow = self.best_of(nb_inst, nb_srv, nb_pow, threshold, budget)
            improved = live & (new_obj < obj)
            obj[improved], server[improved], power[improved] = (
                new_obj[improved], new_srv[improved], new_pow[improved])
            live = improved & (self.used < budget)
        best = np.argmin(obj.reshape(n, envs.size), axis=0) * envs.size + np.arange(envs.size)
        return obj[best], server[best], power[best]

    def _neighbours(self, inst: IntArray, server: IntArray,
                    power: FloatArray) -> tuple[IntArray, IntArray, FloatArray]:
        """Reassign-one and swap-two moves of the instances ``inst``; moved tasks restart at
        p_max, the others keep their powers."""
        opts = self.options[self.inst_env[inst]]  # [I, K, S]
        cur = server[inst]
        i, k, s = np.nonzero(opts & (np.arange(opts.shape[-1]) != cur[..., None]))
        srv, pw = cur[i], power[inst][i]
        srv[np.arange(i.size), k], pw[np.arange(i.size), k] = s, self.p_max
        # cross[i, k, l]: task k may take task l's server
        cross = np.take_along_axis(opts, np.broadcast_to(cur[:, None, :], (*cur.shape, self.k)), 2)
        pairs = cross & cross.transpose(0, 2, 1) & (cur[:, :, None] != cur[:, None, :])
        j, a, b = np.nonzero(np.triu(pairs, 1))
        srv2, pw2 = cur[j], power[inst][j]
        r = np.arange(j.size)
        srv2[r, a], srv2[r, b] = cur[j, b], cur[j, a]
        pw2[r, a], pw2[r, b] = self.p_max, self.p_max
        return (np.concatenate([inst[i], inst[j]]), np.concatenate([srv, srv2]),
                np.concatenate([pw, pw2]))

    def solve(self, rng: np.random.Generator) -> SlotSolution:
        state, b = self.state, self.state.batch_size
        span = self.p_max - self.p_min
        g_act = GreedyPolicy().act(self.net, state, rng)
        greedy = (np.asarray(g_act["offload"], dtype=np.int64),
                  self.p_min + (np.asarray(g_act["power"], dtype=np.float64) + 1.0) / 2.0 * span)
        n_opt = np.maximum(self.options.sum(-1), 1).astype(np.float64)
        exact = np.prod(n_opt, axis=-1) <= self.cfg.max_joint
        obj, server = np.empty(b), np.zeros((b, self.k), dtype=np.int64)
        power, used = np.full((b, self.k), self.p_max), np.zeros(b, dtype=np.int64)
        small = np.flatnonzero(exact)
        if small.size:
            obj[small], server[small], power[small] = self.exhaustive(small, greedy)
            used[small] = self.used
        large = np.flatnonzero(~exact)
        if large.size:
            movable = self.options.any(-1)
            starts = [greedy] + [
                (np.where(movable, uniform_feasible_servers(state.mask, rng), 0),
                 np.full((b, self.k), self.p_max)) for _ in range(self.cfg.restarts)]
            obj[large], server[large], power[large] = self.local_search(large, starts)
            np.add.at(used, self.inst_env, self.used)
        return SlotSolution(server, power, obj, exact, used)


def uav_moves(network: EdgeNetwork, state: SlotState, iterations: int) -> FloatArray:
    """[B, M, 2] UAV actions in [-1, 1]: toward weighted k-means centres of the IoTDs.

    Lloyd's algorithm on the IoTD positions [B, K, 2] weighted by each IoTD's expected requests
    per slot (from its arrival CDF), started at the UAV positions so that cluster m stays UAV m's;
    a UAV whose cluster is empty stays. The move is capped at ``v_max * tau`` along its direction.
    """
    sc = network.scenario
    xy = state.iotd_xy_m
    weight = np.sum(1.0 - state.poisson_cdf, axis=-1)  # E[min(n, R)] = sum_j P(n > j)
    centre = state.uav_xy_m.copy()
    for _ in range(iterations):
        d2 = np.sum((xy[:, :, None, :] - centre[:, None, :, :]) ** 2, axis=-1)  # [B, K, M]
        member = (np.argmin(d2, axis=-1)[..., None] == np.arange(sc.n_uavs)) * weight[..., None]
        mass = member.sum(axis=1)  # [B, M]
        mean = np.einsum("bkm,bkd->bmd", member, xy) / np.maximum(mass, 1e-12)[..., None]
        centre = np.where(mass[..., None] > 0, mean, centre)
    step = sc.uav.speed_max_m_s * sc.slot_s
    move = centre - state.uav_xy_m
    norm = np.linalg.norm(move, axis=-1, keepdims=True)
    move *= np.minimum(1.0, step / np.maximum(norm, 1e-12))
    return np.asarray(np.clip(move / max(step, 1e-12), -1.0, 1.0))
