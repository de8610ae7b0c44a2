"""``rgb_array`` frames of one environment: the area and the sky above it.

Left: the area with IoTDs (coloured by the server their task went to), UAVs with their coverage
circles, and a line from each IoTD to its UAV. Right: a sky plot (azimuth, zenith angle) of the
satellites above the minimum elevation, with the access satellite and the other candidates marked.
Matplotlib's Agg backend is used without touching the global backend setting.
"""

from __future__ import annotations

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from numpy.typing import NDArray

from satedge.sim import orbits
from satedge.sim.network import EdgeNetwork
from satedge.sim.state import Outcome, SlotState, TaskStatus

__all__ = ["render_frame"]

_UAV_COLOURS = ("tab:blue", "tab:orange", "tab:green", "tab:purple", "tab:brown", "tab:pink")


def render_frame(net: EdgeNetwork, state: SlotState, outcome: Outcome | None,
                 width_px: int = 960, height_px: int = 480) -> NDArray[np.uint8]:
    """An RGB image [H, W, 3] of environment 0 of ``state`` with ``outcome``'s assignments."""
    fig = Figure(figsize=(width_px / 96, height_px / 96), dpi=96)
    canvas = FigureCanvasAgg(fig)
    _draw_area(fig.add_subplot(1, 2, 1), net, state, outcome)
    _draw_sky(fig.add_subplot(1, 2, 2, projection="polar"), net, state)
    fig.tight_layout()
    canvas.draw()
    return np.asarray(canvas.buffer_rgba())[..., :3].copy()


def _draw_area(ax: object, net: EdgeNetwork, st: SlotState, outcome: Outcome | None) -> None:
    from matplotlib.axes import Axes
    from matplotlib.patches import Circle

    assert isinstance(ax, Axes)
    sc, m = net.scenario, net.scenario.n_uavs
    iotd, uav = st.iotd_xy_m[0], st.uav_xy_m[0]
    for j in range(m):
        colour = _UAV_COLOURS[j % len(_UAV_COLOURS)]
        ax.add_patch(Circle(tuple(uav[j]), sc.uav.coverage_radius_m, color=colour, alpha=0.08))
        ax.plot(*uav[j], marker="^", markersize=12, color=colour, linestyle="none")
    for k in range(sc.n_iotds):
        colour, marker = "lightgrey", "o"
        if outcome is not None and st.tasks.active[0, k]:
            srv, status = int(outcome.server[0, k]), int(outcome.status[0, k])
            if status in (TaskStatus.INFEASIBLE, TaskStatus.DROPPED):
                colour, marker = "red", "x"
            elif srv < m:
                colour = _UAV_COLOURS[srv % len(_UAV_COLOURS)]
                ax.plot([iotd[k, 0], uav[srv, 0]], [iotd[k, 1], uav[srv, 1]], color=colour,
                        linewidth=0.8)
            else:
                colour, marker = "black", "s"
        elif st.tasks.active[0, k]:
            colour = "dimgrey"
        ax.plot(*iotd[k], marker=marker, color=colour, linestyle="none")
    ax.set_xlim(0, sc.area_m)
    ax.set_ylim(0, sc.area_m)
    ax.set_aspect("equal")
    ax.set_xlabel("x (m)")
    ax.set_ylabel("y (m)")
    ax.set_title(f"slot {int(st.slot[0])}: IoTDs (black square = satellite), UAVs")


def _draw_sky(ax: object, net: EdgeNetwork, st: SlotState) -> None:
    from matplotlib.projections.polar import PolarAxes

    assert isinstance(ax, PolarAxes)
    pos = net.constellation.positions_ecef_m(st.time_s[:1])[0]  # [T, 3]
    az, el = orbits.azimuth_elevation_rad(pos, net.ground_ecef_m)
    visible = el >= net.elevation_min_rad
    zenith = np.degrees(np.pi / 2 - el)
    ax.set_theta_zero_location("N")
    ax.set_theta_direction(-1)
    ax.scatter(az[visible], zenith[visible], s=12, color="grey", label="visible")
    cand = st.candidate_sats[0]
    if st.access_sat[0] >= 0:
        ok = visible[cand]
        ax.scatter(az[cand][ok], zenith[cand][ok], s=40, facecolors="none",
                   edgecolors="tab:red", label="candidate")
        a = int(st.access_sat[0])
        ax.scatter([az[a]], [zenith[a]], s=80, marker="*", color="tab:red", label="access")
    ax.set_rmax(90.0 - net.scenario.constellation.elevation_min_deg)
    ax.set_title(f"sky (radius = zenith angle, deg): window {float(st.visibility_s[0]):.0f} s"
                 + (" (handover)" if bool(st.handover[0]) else ""))
    ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=7)
