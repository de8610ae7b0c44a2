r"""Wireless links: path loss, fading, interference, sharing and rates (SPEC section 5).

Every function is pure and vectorised over leading array dimensions ``[...]`` (a batch of
environments, typically). Random models follow the simulator's randomness contract: the environment
draws standard normals, uniforms and standard-gamma variates from its own
:class:`numpy.random.Generator`, and a *pure transform* here turns them into channel gains. The
``sample_*`` helpers are thin conveniences that draw in a documented order and call the transform.

Power gains are linear (W/W) unless the name says ``_db``. Tags follow the SPEC: [paper] stated in
the paper's text, [recon] reconstructed standard form, [choice] our own decision.

Deviations and choices (also in the links section of ``docs/``):

- Uplink interference [recon]: full frequency reuse between UAVs, with every interfering band
  assumed to overlap the victim's band, so the interference is a sum of power spectral densities.
- The shadowed-Rician gain is *not* normalised by default [choice]: heavy shadowing lowers the mean
  received power (``2b + omega``), as it should.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy import special

from satedge.sim.constants import C_M_S

FloatArray = npt.NDArray[np.float64]
Size = int | tuple[int, ...]

_LN2 = float(np.log(2.0))


# ------------------------------------------------------------------------------------ unit helpers
def db_to_linear(x_db: npt.ArrayLike) -> FloatArray:
    r"""Decibels to a linear power ratio, :math:`x = 10^{x_\mathrm{dB}/10}`."""
    return np.power(10.0, np.asarray(x_db, dtype=np.float64) / 10.0)


def linear_to_db(x: npt.ArrayLike) -> FloatArray:
    r"""Linear power ratio to decibels, :math:`x_\mathrm{dB} = 10 \log_{10} x` (``-inf`` at 0)."""
    return 10.0 * np.log10(np.asarray(x, dtype=np.float64))


def dbm_to_w(x_dbm: npt.ArrayLike) -> FloatArray:
    r"""Power in dBm to watts, :math:`P_\mathrm{W} = 10^{(P_\mathrm{dBm} - 30)/10}`."""
    return np.power(10.0, (np.asarray(x_dbm, dtype=np.float64) - 30.0) / 10.0)


def w_to_dbm(x_w: npt.ArrayLike) -> FloatArray:
    r"""Power in watts to dBm, :math:`P_\mathrm{dBm} = 10 \log_{10} P_\mathrm{W} + 30`."""
    return 10.0 * np.log10(np.asarray(x_w, dtype=np.float64)) + 30.0


def noise_power_w(noise_psd_dbm_hz: npt.ArrayLike, bandwidth_hz: npt.ArrayLike) -> FloatArray:
    r"""Thermal noise power in a band, :math:`N = N_0 B` with :math:`N_0` given in dBm/Hz.

    SPEC section 5: :math:`N_0 = -174` dBm/Hz (:math:`k_B \cdot 290` K), so 10 MHz gives -104 dBm.

    Input: ``noise_psd_dbm_hz`` [...] (dBm/Hz), ``bandwidth_hz`` [...] (Hz), broadcast together.
    Output: [...] noise power (W).
    """
    return dbm_to_w(noise_psd_dbm_hz) * np.asarray(bandwidth_hz, dtype=np.float64)


# ------------------------------------------------------------------------------------- large scale
def free_space_path_loss_db(distance_m: npt.ArrayLike, frequency_hz: npt.ArrayLike) -> FloatArray:
    r"""Free-space path loss (Friis), :math:`L = 20 \log_{10}(4 \pi d f / c)` in dB.

    Reference: ITU-R P.525-4 Eq. (4); paper Eq. 10 [recon]. 2 GHz over 1000 km gives 158.47 dB.

    Input: ``distance_m`` [...] (m), ``frequency_hz`` [...] (Hz), broadcast together.
    Output: [...] path loss (dB, positive = loss).
    """
    d = np.asarray(distance_m, dtype=np.float64)
    f = np.asarray(frequency_hz, dtype=np.float64)
    return 20.0 * np.log10((4.0 * np.pi / C_M_S) * d * f)


def ground_satellite_gain(
    slant_range_m: npt.ArrayLike,
    frequency_hz: npt.ArrayLike,
    tx_gain_dbi: npt.ArrayLike,
    rx_gain_dbi: npt.ArrayLike,
) -> FloatArray:
    r"""Large-scale ground-to-satellite power gain, :math:`g = 10^{(G_t + G_r - L_\mathrm{FS})/10}`.

    :math:`L_\mathrm{FS}` is :func:`free_space_path_loss_db` over the slant range (paper Eq. 10-11
    [recon]); SPEC defaults: IoTD 0 dBi, satellite 30 dBi, 2 GHz. Multiply by a shadowed-Rician
    power gain for the small-scale part.

    Input: ``slant_range_m`` [...] (m), ``frequency_hz`` (Hz), ``tx_gain_dbi`` and ``rx_gain_dbi``
    (dBi), all broadcast together.
    Output: [...] linear power gain (W/W).
    """
    path_loss_db = free_space_path_loss_db(slant_range_m, frequency_hz)
    return db_to_linear(np.asarray(tx_gain_dbi) + np.asarray(rx_gain_dbi) - path_loss_db)


def ground_uav_large_scale_gain(
    distance_m: npt.ArrayLike, beta0_db: float = -30.0, alpha: float = 2.0
) -> FloatArray:
    r"""Large-scale ground-to-UAV power gain, :math:`g = \beta_0 d^{-\alpha}`.

    :math:`\beta_0` is the gain at the reference distance 1 m (default -30 dB) and :math:`\alpha`
    the path-loss exponent (default 2); paper Eq. 6-9 [recon]. Valid for :math:`d \ge 1` m only
    (the UAV altitude keeps :math:`d \ge 100` m in practice).

    Input: ``distance_m`` [...] (m). Output: [...] linear power gain (W/W).
    """
    d = np.asarray(distance_m, dtype=np.float64)
    return db_to_linear(beta0_db) * np.power(d, -alpha)


def horizontal_distance_m(iotd_xy_m: npt.ArrayLike, uav_xy_m: npt.ArrayLike) -> FloatArray:
    r"""Horizontal IoTD-to-UAV distance, :math:`r_{km} = \lVert q_k - u_m \rVert_2`.

    Input: ``iotd_xy_m`` [..., K, 2] (m), ``uav_xy_m`` [..., M, 2] (m).
    Output: [..., K, M] distance (m).
    """
    dx, dy = _xy_offsets_m(iotd_xy_m, uav_xy_m)
    return np.hypot(dx, dy)


def ground_uav_distance_m(
    iotd_xy_m: npt.ArrayLike, uav_xy_m: npt.ArrayLike, uav_altitude_m: npt.ArrayLike
) -> FloatArray:
    r"""3-D IoTD-to-UAV distance, :math:`d_{km} = \sqrt{H_m^2 + \lVert q_k - u_m \rVert_2^2}`.

    Paper Eq. 6 [recon]; IoTDs are on the ground (height 0).

    Input: ``iotd_xy_m`` [..., K, 2] (m), ``uav_xy_m`` [..., M, 2] (m), ``uav_altitude_m`` scalar
    or [..., M] (m).
    Output: [..., K, M] distance (m).
    """
    dx, dy = _xy_offsets_m(iotd_xy_m, uav_xy_m)
    h = np.asarray(uav_altitude_m, dtype=np.float64)
    if h.ndim:
        h = h[..., None, :]
    return np.sqrt(dx * dx + dy * dy + h * h)


def _xy_offsets_m(
    iotd_xy_m: npt.ArrayLike, uav_xy_m: npt.ArrayLike
) -> tuple[FloatArray, FloatArray]:
    """Pairwise x and y offsets [..., K, M] between IoTDs [..., K, 2] and UAVs [..., M, 2]."""
    q = np.asarray(iotd_xy_m, dtype=np.float64)
    u = np.asarray(uav_xy_m, dtype=np.float64)
    dx = q[..., :, None, 0] - u[..., None, :, 0]
    dy = q[..., :, None, 1] - u[..., None, :, 1]
    return dx, dy


# ------------------------------------------------------------------------------ Rician (ground-UAV)
def rician_power_gain(
    z_re: npt.ArrayLike, z_im: npt.ArrayLike, k_factor_linear: npt.ArrayLike
) -> FloatArray:
    r"""Rician small-scale power gain with unit mean, from two standard normals.

    .. math::
        |h|^2 = \left| \sqrt{\tfrac{K}{K+1}} + \sqrt{\tfrac{1}{K+1}}\,
                \tfrac{z_\mathrm{re} + j z_\mathrm{im}}{\sqrt{2}} \right|^2

    so :math:`2(K+1)|h|^2` is noncentral chi-square with 2 degrees of freedom and noncentrality
    :math:`2K`; :math:`E|h|^2 = 1`. Paper Eq. 8 [recon]; SPEC default :math:`K` = 10 dB.

    Input: ``z_re``, ``z_im`` [...] standard normals; ``k_factor_linear`` (linear, not dB),
    broadcast against them.
    Output: [...] power gain (W/W).
    """
    k = np.asarray(k_factor_linear, dtype=np.float64)
    scale = np.sqrt(1.0 / (2.0 * (k + 1.0)))
    re = np.sqrt(k / (k + 1.0)) + scale * np.asarray(z_re, dtype=np.float64)
    im = scale * np.asarray(z_im, dtype=np.float64)
    return re * re + im * im


def sample_rician_power_gain(
    rng: np.random.Generator, k_factor_linear: npt.ArrayLike, size: Size
) -> FloatArray:
    """Draw Rician power gains: ``z_re`` then ``z_im`` from ``rng.standard_normal(size)``."""
    z_re = rng.standard_normal(size)
    z_im = rng.standard_normal(size)
    return rician_power_gain(z_re, z_im, k_factor_linear)


# --------------------------------------------------------------- shadowed Rician (ground-satellite)
@dataclass(frozen=True)
class ShadowedRicianParams:
    r"""Shadowed-Rician (Loo-type) parameters of Abdi et al. (2003).

    :math:`h = A e^{j\phi} + Z`: ``b`` is half the average scatter power (:math:`Z \sim
    \mathcal{CN}(0, 2b)`), ``m`` the Nakagami parameter of the line-of-sight amplitude :math:`A`
    (``m`` = 0 total shadowing, ``m`` -> inf none), ``omega`` its average power :math:`E[A^2]`.
    """

    b: float
    m: float
    omega: float

    def __post_init__(self) -> None:
        if not self.b > 0.0:
            raise ValueError(f"ShadowedRicianParams.b must be in (0, inf), got {self.b}")
        if not self.m > 0.0:
            raise ValueError(f"ShadowedRicianParams.m must be in (0, inf), got {self.m}")
        if not self.omega >= 0.0:
            raise ValueError(f"ShadowedRicianParams.omega must be in [0, inf), got {self.omega}")

    @property
    def mean_power(self) -> float:
        r""":math:`E|h|^2 = 2b + \Omega` (SPEC section 5; 1.087 for average shadowing)."""
        return 2.0 * self.b + self.omega


SHADOWING: dict[str, ShadowedRicianParams] = {
    # Abdi, Lau, Alouini, Kaveh, IEEE Trans. Wireless Commun. 2(3), 2003, Table (Loo's LMS data).
    "frequent_heavy": ShadowedRicianParams(b=0.063, m=0.739, omega=8.97e-4),
    "average": ShadowedRicianParams(b=0.126, m=10.1, omega=0.835),
    "infrequent_light": ShadowedRicianParams(b=0.158, m=19.4, omega=1.29),
}
"""Shadowed-Rician parameter sets (b, m, omega); SPEC default is ``"average"``."""


def shadowed_rician_power_gain(
    gamma_m: npt.ArrayLike,
    phase_u: npt.ArrayLike,
    z_re: npt.ArrayLike,
    z_im: npt.ArrayLike,
    params: ShadowedRicianParams,
    normalise: bool = False,
) -> FloatArray:
    r"""Shadowed-Rician power gain :math:`|h|^2` from pre-drawn variates (Abdi et al. 2003).

    .. math::
        h = A e^{j 2\pi u} + \sqrt{b}\,(z_\mathrm{re} + j z_\mathrm{im}), \qquad
        A^2 = \frac{\Omega}{m} G, \quad G \sim \Gamma(m, 1)

    so :math:`A` is Nakagami-:math:`m` with spread :math:`\Omega` and :math:`Z \sim
    \mathcal{CN}(0, 2b)`. :math:`E|h|^2 = 2b + \Omega`. Paper Eq. 11 [recon]. Not normalised by
    default [choice]; ``normalise=True`` divides by :math:`2b + \Omega` (unit mean).

    Input: ``gamma_m`` [...] standard-gamma variates of shape ``params.m``; ``phase_u`` [...]
    uniforms on [0, 1); ``z_re``, ``z_im`` [...] standard normals; all broadcast together.
    Output: [...] power gain (W/W).
    """
    amplitude = np.sqrt((params.omega / params.m) * np.asarray(gamma_m, dtype=np.float64))
    phi = (2.0 * np.pi) * np.asarray(phase_u, dtype=np.float64)
    sigma = np.sqrt(params.b)
    re = amplitude * np.cos(phi) + sigma * np.asarray(z_re, dtype=np.float64)
    im = amplitude * np.sin(phi) + sigma * np.asarray(z_im, dtype=np.float64)
    power = re * re + im * im
    if normalise:
        power /= params.mean_power
    return power


def sample_shadowed_rician_power_gain(
    rng: np.random.Generator, params: ShadowedRicianParams, size: Size, normalise: bool = False
) -> FloatArray:
    """Draw shadowed-Rician power gains.

    Draw order: ``rng.standard_gamma(m, size)``, ``rng.random(size)``, then two
    ``rng.standard_normal(size)`` (real, imaginary).
    """
    gamma_m = rng.standard_gamma(params.m, size)
    phase_u = rng.random(size)
    z_re = rng.standard_normal(size)
    z_im = rng.standard_normal(size)
    return shadowed_rician_power_gain(gamma_m, phase_u, z_re, z_im, params, normalise)


def shadowed_rician_power_pdf(x: npt.ArrayLike, params: ShadowedRicianParams) -> FloatArray:
    r"""Closed-form PDF of the (unnormalised) shadowed-Rician power :math:`|h|^2`.

    .. math::
        f(x) = \left(\frac{2bm}{2bm + \Omega}\right)^m \frac{1}{2b}
               \exp\!\left(-\frac{x}{2b}\right)
               {}_1F_1\!\left(m; 1; \frac{\Omega x}{2b(2bm + \Omega)}\right), \quad x \ge 0

    Abdi et al. (2003), Eq. (7) with the change of variable :math:`x = r^2`; zero for :math:`x < 0`.
    Evaluated through Kummer's transformation :math:`e^{-x/2b}\,{}_1F_1(m; 1; z) =
    e^{z - x/2b}\,{}_1F_1(1 - m; 1; -z)` so that neither factor overflows in the tail.

    Input: ``x`` [...] power (W/W). Output: [...] density (1/(W/W)).
    """
    b, m, omega = params.b, params.m, params.omega
    x = np.asarray(x, dtype=np.float64)
    inside = (x >= 0.0) & np.isfinite(x)
    xc = np.where(inside, x, 0.0)
    coeff = (2.0 * b * m / (2.0 * b * m + omega)) ** m / (2.0 * b)
    arg = (omega / (2.0 * b * (2.0 * b * m + omega))) * xc
    decay = np.exp(-(m / (2.0 * b * m + omega)) * xc)  # e^{z - x/2b}, exponent simplified
    pdf = coeff * decay * special.hyp1f1(1.0 - m, 1.0, -arg)
    return np.where(inside, pdf, 0.0)


# ---------------------------------------------------------------------------- sharing, SINR, rate
def shannon_rate_bps(bandwidth_hz: npt.ArrayLike, sinr: npt.ArrayLike) -> FloatArray:
    r"""Shannon rate, :math:`R = B \log_2(1 + \gamma)` (SPEC section 5); 0 dB gives :math:`R = B`.

    Input: ``bandwidth_hz`` [...] (Hz), ``sinr`` [...] (linear), broadcast together.
    Output: [...] rate (bit/s).
    """
    b = np.asarray(bandwidth_hz, dtype=np.float64)
    return b * (np.log1p(np.asarray(sinr, dtype=np.float64)) / _LN2)


def equal_share_bandwidth_hz(
    total_bandwidth_hz: npt.ArrayLike, group: npt.ArrayLike, n_groups: int
) -> FloatArray:
    r"""Equal split of a band among each group's members, :math:`B_k = B / |\mathcal{G}_{g_k}|`.

    Used for a UAV's band among the IoTDs it serves and for the satellite uplink among the IoTDs
    sending to satellites (SPEC section 5 [choice]). Members of no group (index -1) get 0.

    Input: ``total_bandwidth_hz`` scalar or broadcastable to [..., K] (Hz, e.g. [..., 1] per
    environment); ``group`` [..., K] int in {-1, 0, ..., ``n_groups`` - 1}.
    Output: [..., K] bandwidth share (Hz).
    """
    g = np.asarray(group)
    if g.size and (g.max() >= n_groups or g.min() < -1):
        raise ValueError(f"group indices must be in [-1, {n_groups - 1}], got {g.min()}..{g.max()}")
    member = g >= 0
    # One key per (environment, group) pair; bincount counts the members of each in one pass.
    n_k = max(g.shape[-1], 1)
    env = np.arange(g.size).reshape(g.shape) // n_k
    key = env * n_groups + np.where(member, g, 0)
    n_members = np.bincount(key[member], minlength=g.size // n_k * n_groups)[key]
    total = np.asarray(total_bandwidth_hz, dtype=np.float64)
    return np.where(member, total / np.maximum(n_members, 1), 0.0)


def uav_uplink_sinr(
    power_w: npt.ArrayLike,
    gain: npt.ArrayLike,
    serving_uav: npt.ArrayLike,
    bandwidth_hz: npt.ArrayLike,
    noise_psd_w_hz: npt.ArrayLike,
) -> FloatArray:
    r"""Uplink SINR of each IoTD at its serving UAV, with inter-cell interference.

    .. math::
        \gamma_k = \frac{(p_k / B_k)\, g_{k m_k}}{N_0 + I_{m_k}}, \qquad
        I_m = \sum_{j:\, m_j \ge 0,\, m_j \ne m} (p_j / B_j)\, g_{j m}

    SPEC section 5 [recon]: full frequency reuse between UAVs; IoTDs of one UAV are orthogonal
    (FDMA), so no intra-cell interference. Each IoTD spreads :math:`p_j` evenly over its band
    :math:`B_j`, and every interfering band is assumed to overlap the victim's band, so the
    interference is a power spectral density (a worst case when bands differ in width).

    Input: ``power_w`` [..., K] (W); ``gain`` [..., K, M] total linear power gain IoTD -> UAV
    (large-scale times fading); ``serving_uav`` [..., K] int, UAV index or -1 if not UAV-served;
    ``bandwidth_hz`` [..., K] (Hz, > 0 where served, ignored elsewhere); ``noise_psd_w_hz`` (W/Hz,
    > 0) scalar or broadcastable to [..., K]. ``power_w``, ``serving_uav`` and ``bandwidth_hz``
    broadcast to ``gain.shape[:-1]``.
    Output: [..., K] SINR (linear), 0 where ``serving_uav`` is -1.
    """
    g = np.ascontiguousarray(gain, dtype=np.float64)
    shape, n_uav = g.shape[:-1], g.shape[-1]
    serving = _broadcast_to(np.asarray(serving_uav), shape)
    if serving.size and serving.max() >= n_uav:
        raise ValueError(f"serving_uav must be in [-1, {n_uav - 1}], got {serving.max()}")
    served = serving >= 0
    psd = np.divide(power_w, bandwidth_hz, out=np.zeros(shape), where=served)  # p_k / B_k (W/Hz)
    cell = np.maximum(serving, 0)  # unserved IoTDs have psd 0, any cell index will do
    row_m, env_m = _cell_index(shape, n_uav)
    own = row_m + cell  # flat index of g[..., k, m_k]
    own_gain = g.reshape(-1)[own]
    # Zero g[j, m_j] so that the sum over j at UAV m skips m's own cell exactly (FDMA): the one
    # [..., K, M] temporary this needs is the price of exact cancellation.
    other_cell_gain = g.copy()
    other_cell_gain.reshape(-1)[own] = 0.0
    interference = np.matmul(psd[..., None, :], other_cell_gain).reshape(-1)  # [n_env * M] (W/Hz)
    own_interference = interference[env_m + cell]
    return psd * own_gain / (np.asarray(noise_psd_w_hz) + own_interference)


@functools.lru_cache(maxsize=32)
def _cell_index(shape: tuple[int, ...], n_uav: int) -> tuple[npt.NDArray[np.intp], ...]:
    """Flat offsets for IoTDs of ``shape`` [..., K]: ``(env, k) * M`` into [..., K, M] gains and
    ``env * M`` into [..., M] per-UAV sums (cached per shape)."""
    row = np.arange(math.prod(shape)).reshape(shape)
    offsets = row * n_uav, row // max(shape[-1], 1) * n_uav
    for a in offsets:
        a.setflags(write=False)
    return offsets


def _broadcast_to(a: npt.NDArray[Any], shape: tuple[int, ...]) -> npt.NDArray[Any]:
    """``np.broadcast_to`` with a fast path for the common case of matching shapes."""
    return a if a.shape == shape else np.broadcast_to(a, shape)
