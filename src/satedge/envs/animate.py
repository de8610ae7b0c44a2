"""An animated episode as a GIF: the area from above and the satellites' passes in the sky.

One frame per slot. Left, the 500 m area: IoTDs (dots), UAVs (triangles) with their coverage
circles and the trail of their trajectory so far, and each task's assignment as a line from the
IoTD to its server, coloured by the server: to the UAV itself, or to one of the candidate
satellites drawn as numbered markers above the area (``S0`` is the access satellite). Failed
tasks (masked server chosen, or none feasible) are red crosses; tasks over their deadline get a
red ring. Right, a sky plot (azimuth clockwise from north, radius = zenith angle in degrees) of
the satellites above the minimum elevation, the track of every access satellite of the episode
up to the current slot, and each handover marked where the new access satellite was picked up.

The episode is recorded first (:func:`record_episode`, no drawing) and drawn afterwards
(:func:`write_gif`), with matplotlib's animation and its Pillow writer on an Agg canvas (the
global backend is not touched).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from matplotlib.animation import PillowWriter
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Circle
from matplotlib.projections.polar import PolarAxes
from numpy.typing import NDArray

from satedge.agents.heuristics import HeuristicPolicy
from satedge.envs.vector import MllmOffloadVectorEnv
from satedge.sim import orbits
from satedge.sim.network import EdgeNetwork
from satedge.sim.scenario import Scenario
from satedge.sim.state import TaskStatus

__all__ = ["EpisodeTrace", "load_policy", "record_episode", "write_gif"]

UAV_COLOURS = ("tab:blue", "tab:orange", "tab:green", "tab:olive", "tab:cyan", "tab:gray")
SAT_COLOURS = ("crimson", "purple", "saddlebrown", "deeppink", "darkslategray", "indigo")
"""Server colours: UAV m and candidate satellite n (0 = access satellite)."""

_TRAIL_SLOTS = 20
"""Slots of UAV trajectory drawn behind each UAV."""

_SKY_SAMPLES_PER_SLOT = 4
"""Points per slot on the drawn satellite tracks (smooth arcs without a dense propagation)."""


@dataclass(frozen=True)
class EpisodeTrace:
    """What one animated episode showed, slot by slot (T slots, K IoTDs, M UAVs, S servers).

    Attributes:
        time_s: [T] slot start times since the constellation epoch (s).
        iotd_xy_m: [T, K, 2] IoTD positions (m).
        uav_xy_m: [T, M, 2] UAV positions at the start of each slot (m).
        active: [T, K] IoTD had a task in the slot.
        server: [T, K] chosen server (0..M-1 UAV, M.. candidate satellite).
        status: [T, K] :class:`~satedge.sim.state.TaskStatus` of each task.
        latency_s: [T, K] task latency (s; 0 if not executed).
        access_sat: [T] constellation index of the access satellite (-1: none).
        handover: [T] the access satellite changed at the start of the slot.
        visibility_s: [T] remaining visibility window of the access satellite (s).
        candidate_sats: [T, N] constellation indices of the candidate satellites.
        cost: [T] system cost C of the slot.
        energy_j: [T] energy of the slot (J).
    """

    time_s: NDArray[np.float64]
    iotd_xy_m: NDArray[np.float64]
    uav_xy_m: NDArray[np.float64]
    active: NDArray[np.bool_]
    server: NDArray[np.int64]
    status: NDArray[np.int64]
    latency_s: NDArray[np.float64]
    access_sat: NDArray[np.int64]
    handover: NDArray[np.bool_]
    visibility_s: NDArray[np.float64]
    candidate_sats: NDArray[np.int64]
    cost: NDArray[np.float64]
    energy_j: NDArray[np.float64]

    @property
    def n_slots(self) -> int:
        """Number of recorded slots T."""
        return int(self.time_s.shape[0])


def load_policy(name: str, scenario: Scenario,
                use_trained_scenario: bool = True) -> tuple[HeuristicPolicy, Scenario]:
    """A built-in policy by name (``random``, ``greedy``, ...) or the agent of a training run
    directory (acting deterministically; needs torch), and the scenario to animate it on.

    For a run directory the scenario is the one it trained on when ``use_trained_scenario``;
    otherwise ``scenario``, which must keep the trained K, M and N.
    """
    from satedge.agents.heuristics import POLICIES, make_policy

    if name in POLICIES:
        return make_policy(name), scenario
    if not (Path(name) / "run.json").is_file():
        raise ValueError(f"--policy {name!r} is neither a built-in policy "
                         f"({', '.join(sorted(POLICIES))}) nor a run directory with run.json")
    from satedge.experiments.evaluate import AgentPolicy
    from satedge.experiments.train import load_trained_agent

    agent, trained_on = load_trained_agent(name)
    if use_trained_scenario:
        return AgentPolicy(agent), trained_on
    sizes = ("n_iotds", "n_uavs", "n_candidates")
    if any(getattr(scenario, s) != getattr(trained_on, s) for s in sizes):
        raise ValueError(f"{name} was trained with K={trained_on.n_iotds}, "
                         f"M={trained_on.n_uavs}, N={trained_on.n_candidates}; the scenario "
                         "must keep those sizes")
    return AgentPolicy(agent), scenario


def record_episode(policy: HeuristicPolicy, scenario: Scenario, seed: int,
                   slots: int) -> EpisodeTrace:
    """Run ``policy`` for ``slots`` slots (1..episode_slots) of one seeded episode.

    Seeds as in :func:`satedge.experiments.evaluate.evaluate` with one episode: the seed is
    split into an environment stream and a policy stream.
    """
    if not 1 <= slots <= scenario.episode_slots:
        raise ValueError(f"slots={slots} must be in [1, {scenario.episode_slots}] "
                         "(the scenario's episode_slots)")
    env_seq, policy_seq = np.random.SeedSequence(seed).spawn(2)
    env = MllmOffloadVectorEnv(1, scenario)
    env.reset(seed=int(env_seq.generate_state(1)[0]))
    rng = np.random.default_rng(policy_seq)
    rows: dict[str, list[NDArray[np.generic]]] = {name: [] for name in EpisodeTrace.__annotations__}
    st = env.state
    for _ in range(slots):
        # Step the network itself: the vector env's autoreset would drop the last outcome.
        assert st is not None
        server, power_w, move_m = env.decode(policy.act(env.network, st, rng))
        out, nxt = env.network.step(st, server, power_w, move_m, env.rngs)
        for name, value in (("time_s", st.time_s), ("iotd_xy_m", st.iotd_xy_m),
                            ("uav_xy_m", st.uav_xy_m), ("active", st.tasks.active),
                            ("server", out.server), ("status", out.status),
                            ("latency_s", out.latency_s), ("access_sat", st.access_sat),
                            ("handover", st.handover), ("visibility_s", st.visibility_s),
                            ("candidate_sats", st.candidate_sats), ("cost", out.cost),
                            ("energy_j", out.energy_j.sum(axis=-1))):
            rows[name].append(np.asarray(value)[0])
        st = nxt
    return EpisodeTrace(**{name: np.stack(values) for name, values in rows.items()})


def write_gif(net: EdgeNetwork, trace: EpisodeTrace, out: str | Path, *, fps: int = 4,
              title: str = "", width_px: int = 1100, height_px: int = 520) -> Path:
    """Draw ``trace`` (recorded on ``net``'s scenario) as an animated GIF, one frame per slot."""
    if fps <= 0:
        raise ValueError(f"fps={fps} must be positive")
    path = Path(out)
    if path.suffix.lower() != ".gif":
        raise ValueError(f"--out {str(out)!r} must end in .gif")
    path.parent.mkdir(parents=True, exist_ok=True)
    fig = Figure(figsize=(width_px / 100, height_px / 100), dpi=100)
    FigureCanvasAgg(fig)
    area = fig.add_subplot(1, 2, 1)
    sky = fig.add_subplot(1, 2, 2, projection="polar")
    assert isinstance(sky, PolarAxes)
    tracks = _sky_tracks(net, trace)

    def draw(t: int) -> None:
        area.clear()
        sky.clear()
        _draw_area(area, net, trace, t)
        _draw_sky(sky, net, trace, tracks, t)
        fig.suptitle(f"{title}  slot {t + 1}/{trace.n_slots}: cost {trace.cost[t]:.1f}, "
                     f"energy {trace.energy_j[t]:.0f} J".strip(), fontsize=10, y=0.98)

    fig.subplots_adjust(left=0.07, right=0.88, bottom=0.2, top=0.8, wspace=0.35)
    # One draw per frame: FuncAnimation.save would draw each frame twice on an Agg canvas.
    writer = PillowWriter(fps=fps)
    with writer.saving(fig, str(path), dpi=fig.dpi):
        for t in range(trace.n_slots):
            draw(t)
            writer.grab_frame()
    return path


def _server_colour(server: int, n_uavs: int) -> str:
    if server < n_uavs:
        return UAV_COLOURS[server % len(UAV_COLOURS)]
    return SAT_COLOURS[(server - n_uavs) % len(SAT_COLOURS)]


def _satellite_anchors(sc: Scenario) -> NDArray[np.float64]:
    """[N, 2] where candidate satellites are drawn: a row above the area (m)."""
    n = sc.n_candidates
    x = (np.arange(n) + 0.5) * sc.area_m / n
    return np.stack([x, np.full(n, 1.12 * sc.area_m)], axis=-1)


def _draw_area(ax: Axes, net: EdgeNetwork, tr: EpisodeTrace, t: int) -> None:
    sc, m = net.scenario, net.scenario.n_uavs
    anchors = _satellite_anchors(sc)
    for j in range(m):
        colour = UAV_COLOURS[j % len(UAV_COLOURS)]
        x, y = tr.uav_xy_m[t, j]
        ax.add_patch(Circle((x, y), sc.uav.coverage_radius_m, color=colour, alpha=0.07))
        first = max(0, t - _TRAIL_SLOTS)
        ax.plot(tr.uav_xy_m[first: t + 1, j, 0], tr.uav_xy_m[first: t + 1, j, 1], color=colour,
                linewidth=1.2, alpha=0.7)
        ax.plot([x], [y], marker="^", markersize=11, color=colour, linestyle="none",
                label=f"UAV {j}")
    for n, (x, y) in enumerate(anchors):
        ax.plot([x], [y], marker="*" if n == 0 else "s", markersize=11 if n == 0 else 8,
                color=SAT_COLOURS[n % len(SAT_COLOURS)], linestyle="none", clip_on=False)
        ax.annotate(f"S{n}" + (" (access)" if n == 0 else ""), (x, y), xytext=(0, 7),
                    textcoords="offset points", ha="center", fontsize=7)
    for k in range(sc.n_iotds):
        _draw_task(ax, tr, t, k, m, anchors)
    ax.set_xlim(0, sc.area_m)
    ax.set_ylim(0, 1.2 * sc.area_m)
    ax.axhline(sc.area_m, color="black", linewidth=0.6)
    ax.set_aspect("equal")
    ax.set_xlabel("x (m)")
    ax.set_ylabel("y (m)")
    ax.set_title("area: IoTDs, UAV trails, task assignments", fontsize=9)
    handles = [*ax.get_legend_handles_labels()[0],
               Line2D([], [], marker="o", color="lightgrey", linestyle="none", label="idle IoTD"),
               Line2D([], [], marker="x", color="red", linestyle="none", label="task failed"),
               Line2D([], [], marker="o", markerfacecolor="none", markeredgecolor="red",
                      linestyle="none", label="over deadline")]
    ax.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, -0.13), ncol=3,
              fontsize=7, frameon=False)


def _draw_task(ax: Axes, tr: EpisodeTrace, t: int, k: int, m: int,
               anchors: NDArray[np.float64]) -> None:
    x, y = tr.iotd_xy_m[t, k]
    if not tr.active[t, k]:
        ax.plot([x], [y], marker="o", markersize=4, color="lightgrey", linestyle="none")
        return
    status, server = int(tr.status[t, k]), int(tr.server[t, k])
    if status in (TaskStatus.INFEASIBLE, TaskStatus.DROPPED):
        ax.plot([x], [y], marker="x", markersize=8, color="red", linestyle="none")
        return
    colour = _server_colour(server, m)
    tx, ty = tr.uav_xy_m[t, server] if server < m else anchors[server - m]
    ax.plot([x, tx], [y, ty], color=colour, linewidth=0.9, alpha=0.8)
    ax.plot([x], [y], marker="o", markersize=5, color=colour, linestyle="none")
    if status in (TaskStatus.DEADLINE, TaskStatus.VISIBILITY):
        ax.plot([x], [y], marker="o", markersize=10, markerfacecolor="none",
                markeredgecolor="red", linestyle="none")


def _sky_tracks(net: EdgeNetwork, tr: EpisodeTrace) -> dict[str, NDArray[np.float64]]:
    """Azimuth (rad), zenith angle (deg) and visibility of every satellite, [times, T] each,
    sampled from one pass duration before the episode to one after it (whole passes)."""
    step = net.scenario.slot_s / _SKY_SAMPLES_PER_SLOT
    margin = int(np.ceil(net.pass_duration_s / step))
    offsets = np.arange(-margin, tr.n_slots * _SKY_SAMPLES_PER_SLOT + margin + 1)
    az, el = orbits.azimuth_elevation_rad(
        net.constellation.positions_ecef_m(tr.time_s[0] + step * offsets), net.ground_ecef_m)
    return {"az": az, "zenith": np.degrees(np.pi / 2 - el),
            "visible": el >= net.elevation_min_rad, "start": np.array([margin])}


def _draw_sky(ax: PolarAxes, net: EdgeNetwork, tr: EpisodeTrace,
              tracks: dict[str, NDArray[np.float64]], t: int) -> None:
    az, zen, vis = tracks["az"], tracks["zenith"], tracks["visible"]
    start = int(tracks["start"][0])
    now = start + t * _SKY_SAMPLES_PER_SLOT
    ax.set_theta_zero_location("N")
    ax.set_theta_direction(-1)
    ax.scatter(az[now][vis[now]], zen[now][vis[now]], s=10, color="grey", label="visible")
    for i, sat in enumerate(s for s in np.unique(tr.access_sat[: t + 1]) if s >= 0):
        arc_az = np.where(vis[:, sat], az[:, sat], np.nan)  # the whole pass, dotted
        ax.plot(arc_az, zen[:, sat], color="crimson", alpha=0.35, linewidth=0.8, linestyle=":",
                label="access passes" if i == 0 else None)
        ax.plot(arc_az[start: now + 1], zen[start: now + 1, sat], color="crimson", alpha=0.8,
                linewidth=1.5)  # travelled during the episode
    cand = tr.candidate_sats[t]
    for n in np.flatnonzero(vis[now, cand])[1:]:
        ax.scatter([az[now, cand[n]]], [zen[now, cand[n]]], s=40, marker="s",
                   color=SAT_COLOURS[n % len(SAT_COLOURS)], label=f"S{n}")
    access = int(tr.access_sat[t])
    if access >= 0:
        ax.scatter([az[now, access]], [zen[now, access]], s=110, marker="*", color="crimson",
                   label="access (S0)", zorder=3)
    # the first slot's "handover" is the initial acquisition, not a change of satellite
    slots = np.flatnonzero(tr.handover[1: t + 1]) + 1
    for i, s in enumerate(slots):
        sat, when = int(tr.access_sat[s]), start + int(s) * _SKY_SAMPLES_PER_SLOT
        if sat >= 0:
            ax.scatter([az[when, sat]], [zen[when, sat]], s=70, marker="X", color="black",
                       label="handover" if i == 0 else None, zorder=4)
    ax.set_rmax(90.0 - net.scenario.constellation.elevation_min_deg)
    last = f", last handover at slot {int(slots[-1]) + 1}" if slots.size else ""
    ax.set_title(f"sky (radius = zenith angle, deg)\nwindow left {tr.visibility_s[t]:.0f} s"
                 f"{last}", fontsize=9)
    ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1.05), fontsize=7)
