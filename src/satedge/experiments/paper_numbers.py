"""The source paper's quoted results (SPEC section 10) as data, each with the sentence it is from.

Yan et al. 2025, Sec. 5.2 ("Numerical Results") quotes a few numbers and states a few trends;
its plots themselves were lost in conversion. :data:`PAPER_NUMBERS` holds the numbers and
:data:`PAPER_CLAIMS` the trends, each saying how our value is computed from a sweep's saved
final metrics so that :mod:`satedge.experiments.report` can put the two side by side.

How ours is computed (``kind``), always from the interquartile means over seeds of the final
metrics at each scenario value:

- ``value``: ``metric`` of ``method`` at ``x``.
- ``change``: relative change (%) of ``metric`` of ``method`` from ``x_from`` to ``x``.
- ``versus``: relative change (%) of ``metric`` of ``method`` against ``reference`` (same x).
- ``gap_min`` / ``gap_max``: the smallest / largest relative shortfall (%) of ``methods``'
  ``metric`` below ``reference``'s, ``(ref - m) / |ref|`` (the paper's "X % lower reward").

Claims (``check``): ``rises`` / ``falls`` (``metric`` of every one of ``methods`` is higher /
lower at the largest x than at the smallest), ``lowest`` (``methods[0]`` has the lowest
``metric`` at every x among ``methods``), ``highest`` (likewise highest), ``order`` (``methods``
sorted from highest to lowest ``metric``), ``steepest`` (the largest rise of ``methods[0]``'s
``metric`` between neighbouring x is the step from ``x_from`` to ``x``), ``best_x``
(``methods[0]``'s ``metric`` is highest at ``x`` among the figure's x values).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["PAPER_CLAIMS", "PAPER_NUMBERS", "SOURCE", "PaperClaim", "PaperNumber"]

SOURCE = ("H. Yan, H. Huang, Z. Zhao, Z. Wang, Z. Zhao, \"Accuracy-Aware MLLM Task Offloading and "
          "Resource Allocation in UAV-Assisted Satellite Edge Computing\", 2025, Sec. 5.2")

BASELINES = ("hybrid-ppo", "ddpg", "d3qn", "ppo")
"""The learning baselines of Fig. 3 (the paper's order)."""


@dataclass(frozen=True)
class PaperNumber:
    """One number the paper quotes and how ours is computed (see the module docstring)."""

    key: str
    figure: str
    quantity: str
    value: float
    unit: str
    kind: str
    metric: str
    method: str = "adsac"
    x: float | None = None
    x_from: float | None = None
    reference: str = ""
    methods: tuple[str, ...] = ()
    source: str = ""


@dataclass(frozen=True)
class PaperClaim:
    """A trend the paper states and the check that tests it on our results."""

    key: str
    figure: str
    text: str
    check: str
    metric: str
    methods: tuple[str, ...]
    x: float | None = None
    x_from: float | None = None
    source: str = ""


_FIG3 = ("Hybrid-PPO, DDPG, D3QN, and PPO obtain approximately 5.7-13.4% lower reward compared to "
         "the AD-SAC algorithm.")
_FIG7_LAT = ("when the accuracy requirement increases from 0.3 to 0.7, the average system latency "
             "rises from 1.41 s to 2.19 s, representing a 55.3% increase.")
_FIG7_EN = ("energy consumption exhibits a substantial growth from 377J per time slot to 782J per "
            "time slot, marking a 107.4% increase.")
_FIG8 = ("AD-SAC-D shows a 7.4% latency increase and 24.3% energy increase [...], while AD-SAC-C "
         "exhibits the worst latency performance 11.7% increase but better energy efficiency "
         "13.5% increase")

PAPER_NUMBERS: tuple[PaperNumber, ...] = (
    PaperNumber("fig3_gap_min", "3", "smallest reward shortfall of a baseline below AD-SAC", 5.7,
                "%", "gap_min", "episode_return", reference="adsac", methods=BASELINES,
                source=_FIG3),
    PaperNumber("fig3_gap_max", "3", "largest reward shortfall of a baseline below AD-SAC", 13.4,
                "%", "gap_max", "episode_return", reference="adsac", methods=BASELINES,
                source=_FIG3),
    PaperNumber("fig7_latency_03", "7", "AD-SAC latency at A_min = 0.3", 1.41, "s", "value",
                "latency_s", x=0.3, source=_FIG7_LAT),
    PaperNumber("fig7_latency_07", "7", "AD-SAC latency at A_min = 0.7", 2.19, "s", "value",
                "latency_s", x=0.7, source=_FIG7_LAT),
    PaperNumber("fig7_latency_rise", "7", "AD-SAC latency rise from A_min 0.3 to 0.7", 55.3, "%",
                "change", "latency_s", x=0.7, x_from=0.3, source=_FIG7_LAT),
    PaperNumber("fig7_energy_03", "7", "AD-SAC energy at A_min = 0.3", 377.0, "J/slot", "value",
                "energy_j_per_slot", x=0.3, source=_FIG7_EN),
    PaperNumber("fig7_energy_07", "7", "AD-SAC energy at A_min = 0.7", 782.0, "J/slot", "value",
                "energy_j_per_slot", x=0.7, source=_FIG7_EN),
    PaperNumber("fig7_energy_rise", "7", "AD-SAC energy rise from A_min 0.3 to 0.7", 107.4, "%",
                "change", "energy_j_per_slot", x=0.7, x_from=0.3, source=_FIG7_EN),
    PaperNumber("fig8_d_latency", "8", "AD-SAC-D latency above AD-SAC", 7.4, "%", "versus",
                "latency_s", method="adsac-d", reference="adsac", source=_FIG8),
    PaperNumber("fig8_d_energy", "8", "AD-SAC-D energy above AD-SAC", 24.3, "%", "versus",
                "energy_j_per_slot", method="adsac-d", reference="adsac", source=_FIG8),
    PaperNumber("fig8_c_latency", "8", "AD-SAC-C latency above AD-SAC", 11.7, "%", "versus",
                "latency_s", method="adsac-c", reference="adsac", source=_FIG8),
    PaperNumber("fig8_c_energy", "8", "AD-SAC-C energy above AD-SAC", 13.5, "%", "versus",
                "energy_j_per_slot", method="adsac-c", reference="adsac", source=_FIG8),
)
"""Every number Sec. 5.2 quotes (SPEC section 10)."""

_LEARNERS = ("adsac", "ppo", "d3qn", "ddpg", "hybrid-ppo", "random")

PAPER_CLAIMS: tuple[PaperClaim, ...] = (
    PaperClaim("fig3_adsac_best", "3", "AD-SAC reaches the highest final reward", "highest",
               "episode_return", ("adsac", *BASELINES), source=_FIG3),
    PaperClaim("fig3_hybrid_next", "3", "Hybrid-PPO ends above DDPG, D3QN and PPO", "highest",
               "episode_return", BASELINES,
               source="Hybrid-PPO exhibits [...] a higher final reward than DDPG, D3QN, and PPO"),
    PaperClaim("fig4_lr", "4", "critic learning rate 1e-3 ends highest of 1e-4, 1e-3, 1e-2",
               "best_x", "episode_return", ("adsac",), x=1e-3,
               source="we set the critic learning rate to 0.001"),
    PaperClaim("fig5_latency", "5", "latency rises with the number of IoTDs K", "rises",
               "latency_s", _LEARNERS,
               source="the increase in the number of IoTDs leads to higher service latency and "
                      "energy consumption across all evaluated algorithms"),
    PaperClaim("fig5_energy", "5", "energy rises with K", "rises", "energy_j_per_slot",
               _LEARNERS, source="higher service latency and energy consumption"),
    PaperClaim("fig5_lowest", "5", "AD-SAC has the lowest latency at every K", "lowest",
               "latency_s", _LEARNERS,
               source="the AD-SAC algorithm consistently achieves the lowest service latency"),
    PaperClaim("fig6_latency", "6", "latency rises as the deadline T_max loosens", "rises",
               "latency_s", _LEARNERS,
               source="a direct correlation between increasing T_max and heightened service "
                      "latency across all assessed algorithms"),
    PaperClaim("fig6_energy", "6", "energy falls as T_max loosens", "falls", "energy_j_per_slot",
               _LEARNERS, source="a marked reduction in energy consumption is observed across "
                                 "all algorithms"),
    PaperClaim("fig6_lowest", "6", "AD-SAC has the lowest energy at every T_max", "lowest",
               "energy_j_per_slot", _LEARNERS,
               source="the AD-SAC algorithm also shows the lowest energy consumption"),
    PaperClaim("fig7_steepest", "7", "AD-SAC's latency rises most from A_min 0.5 to 0.6",
               "steepest", "latency_s", ("adsac",), x=0.6, x_from=0.5,
               source="The most significant performance degradation occurs in the transition "
                      "from accuracy requirement 0.5 to 0.6"),
    PaperClaim("fig7_lowest", "7", "AD-SAC has the lowest latency at every A_min", "lowest",
               "latency_s", _LEARNERS,
               source="AD-SAC [...] demonstrates significant advantages compared to D3QN, PPO, "
                      "DDPG, Hybrid-PPO, and Random"),
    PaperClaim("fig8_best", "8", "AD-SAC has lower latency than AD-SAC-D and AD-SAC-C", "lowest",
               "latency_s", ("adsac", "adsac-d", "adsac-c"),
               source="the proposed AD-SAC achieves optimal performance in terms of latency and "
                      "energy consumption"),
)
"""The trends Sec. 5.2 states, with the check that tests each on our results."""
