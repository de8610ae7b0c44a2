"""Tests of satedge.sim.channels: known values, statistics of the fading models, and physics
monotonicity properties. Every known value names its source; tolerances are in physical units."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import integrate, stats

from satedge.sim import channels as ch
from satedge.sim.constants import BOLTZMANN_J_K

N_SAMPLES = 400_000
SIGMAS = 5.0  # moment tolerance in standard errors of the sample mean


def _assert_mean_within_ci(samples: np.ndarray, expected: float, std: float) -> None:
    """Sample mean within SIGMAS standard errors (std given or estimated) of the expected value."""
    stderr = std / np.sqrt(samples.size)
    assert abs(samples.mean() - expected) < SIGMAS * stderr, (samples.mean(), expected, stderr)


# ------------------------------------------------------------------------------------ unit helpers
def test_db_and_dbm_conversions_known_values() -> None:
    assert ch.db_to_linear(10.0) == pytest.approx(10.0, rel=1e-12)
    assert ch.db_to_linear(-30.0) == pytest.approx(1e-3, rel=1e-12)
    assert ch.linear_to_db(2.0) == pytest.approx(3.0103, abs=1e-4)
    assert ch.dbm_to_w(30.0) == pytest.approx(1.0, rel=1e-12)  # 30 dBm = 1 W by definition
    assert ch.w_to_dbm(1e-3) == pytest.approx(0.0, abs=1e-12)
    x_db = np.linspace(-200.0, 100.0, 31)
    np.testing.assert_allclose(ch.linear_to_db(ch.db_to_linear(x_db)), x_db, atol=1e-10)
    np.testing.assert_allclose(ch.w_to_dbm(ch.dbm_to_w(x_db)), x_db, atol=1e-10)


def test_noise_power_matches_thermal_noise() -> None:
    # SPEC section 5: -174 dBm/Hz over 10 MHz is -104 dBm.
    assert ch.w_to_dbm(ch.noise_power_w(-174.0, 10e6)) == pytest.approx(-104.0, abs=1e-9)
    # Johnson-Nyquist: N = k_B T B with T = 290 K gives -173.98 dBm/Hz; agree within 0.05 dB.
    thermal_w = BOLTZMANN_J_K * 290.0 * 10e6
    assert ch.linear_to_db(ch.noise_power_w(-174.0, 10e6) / thermal_w) == pytest.approx(0, abs=0.05)


# ------------------------------------------------------------------------------------- large scale
def test_fspl_spec_known_value() -> None:
    # SPEC section 11: free-space path loss at 2 GHz over 1000 km is about 158.5 dB.
    assert ch.free_space_path_loss_db(1_000e3, 2e9) == pytest.approx(158.5, abs=0.05)


def test_fspl_matches_itu_r_p525() -> None:
    # ITU-R P.525-4 Eq. (5): L = 32.45 + 20 log10(f / MHz) + 20 log10(d / km) (constant rounded).
    d_m = np.array([[100.0], [1e3], [500e3], [1695e3], [4e7]])
    f_hz = np.array([[1e8, 2e9, 2.6e10]])
    itu_db = 32.45 + 20 * np.log10(f_hz / 1e6) + 20 * np.log10(d_m / 1e3)
    np.testing.assert_allclose(ch.free_space_path_loss_db(d_m, f_hz), itu_db, atol=0.01)


def test_fspl_inverse_square_law() -> None:
    # Doubling the distance adds 20 log10(2) = 6.0206 dB.
    delta = ch.free_space_path_loss_db(2e6, 2e9) - ch.free_space_path_loss_db(1e6, 2e9)
    assert delta == pytest.approx(6.0206, abs=1e-4)


def test_ground_satellite_gain_is_antenna_gains_minus_fspl() -> None:
    # SPEC section 5 defaults: IoTD 0 dBi, satellite 30 dBi, 2 GHz; 1000 km -> 30 - 158.47 dB.
    gain_db = ch.linear_to_db(ch.ground_satellite_gain(1_000e3, 2e9, 0.0, 30.0))
    assert gain_db == pytest.approx(30.0 - 158.468, abs=0.01)


def test_ground_uav_large_scale_gain_known_values() -> None:
    # beta0 = -30 dB at 1 m, alpha = 2 (SPEC section 5): at 100 m the gain is -70 dB.
    assert ch.ground_uav_large_scale_gain(100.0) == pytest.approx(1e-7, rel=1e-12)
    assert ch.ground_uav_large_scale_gain(1.0) == pytest.approx(1e-3, rel=1e-12)
    assert ch.linear_to_db(ch.ground_uav_large_scale_gain(10.0, -40.0, 3.0)) == pytest.approx(-70)


def test_ground_uav_distances_pythagoras() -> None:
    # 3-4-5 and 5-12-13 right triangles, batch of 2 environments, per-UAV altitudes.
    iotd = np.array([[[0.0, 0.0], [6.0, 8.0]], [[1.0, 1.0], [1.0, 1.0]]])  # [2, K=2, 2]
    uav = np.array([[[3.0, 4.0], [0.0, 0.0], [6.0, 8.0]], [[4.0, 5.0], [1.0, 1.0], [1.0, 1.0]]])
    horiz = ch.horizontal_distance_m(iotd, uav)
    assert horiz.shape == (2, 2, 3)
    np.testing.assert_allclose(horiz[0], [[5.0, 0.0, 10.0], [5.0, 10.0, 0.0]], atol=1e-12)
    np.testing.assert_allclose(horiz[1], [[5.0, 0.0, 0.0]] * 2, atol=1e-12)
    dist = ch.ground_uav_distance_m(iotd, uav, np.array([12.0, 100.0, 100.0]))
    np.testing.assert_allclose(dist[0, 0], [13.0, 100.0, np.hypot(10.0, 100.0)], atol=1e-12)
    np.testing.assert_allclose(ch.ground_uav_distance_m(iotd, uav, 12.0)[1, 0, 0], 13.0)


# ---------------------------------------------------------------------------------------- Rician
@pytest.mark.parametrize("k_factor_db", [-np.inf, 0.0, 10.0, 20.0])
def test_rician_moments(k_factor_db: float) -> None:
    k = float(ch.db_to_linear(k_factor_db))
    x = ch.sample_rician_power_gain(np.random.default_rng(11), k, N_SAMPLES)
    second = (2.0 + 4.0 * k + k * k) / (k + 1.0) ** 2  # E|h|^4 from the noncentral chi-square
    _assert_mean_within_ci(x, 1.0, np.sqrt(second - 1.0))
    _assert_mean_within_ci(x * x, second, float(np.std(x * x)))


@pytest.mark.parametrize("k_factor_db", [-np.inf, 0.0, 10.0, 20.0])
def test_rician_ks_against_noncentral_chi_square(k_factor_db: float) -> None:
    # 2(K+1)|h|^2 ~ ncx2(df=2, nc=2K) (e.g. Simon & Alouini, Digital Communication over Fading
    # Channels, Eq. 2.16); K = 0 is Rayleigh (exponential power), handled by nc = 0.
    k = float(ch.db_to_linear(k_factor_db))
    x = ch.sample_rician_power_gain(np.random.default_rng(12), k, N_SAMPLES)
    dist = stats.ncx2(df=2, nc=2 * k, scale=1 / (2 * (k + 1))) if k > 0 else stats.expon()
    assert stats.kstest(x, dist.cdf).pvalue > 1e-3


def test_rician_transform_deterministic_values() -> None:
    # z = 0 leaves only the line of sight: |h|^2 = K / (K + 1); K = 0 gives (z_re^2 + z_im^2) / 2.
    assert ch.rician_power_gain(0.0, 0.0, 10.0) == pytest.approx(10.0 / 11.0, rel=1e-12)
    assert ch.rician_power_gain(1.0, -1.0, 0.0) == pytest.approx(1.0, rel=1e-12)


# ------------------------------------------------------------------------------- shadowed Rician
def _second_moment(p: ch.ShadowedRicianParams) -> float:
    # E|h|^4 = E A^4 + E|Z|^4 + 4 E|A|^2 E|Z|^2 = omega^2 (m+1)/m + 8 b^2 + 8 b omega
    # (Nakagami E A^4 = omega^2 (m+1)/m; |Z|^2 exponential of mean 2b; cross terms average out).
    return 8 * p.b**2 + 8 * p.b * p.omega + p.omega**2 * (p.m + 1) / p.m


def test_shadowing_table_values_and_spec_mean() -> None:
    # Abdi et al. 2003, Table (Loo's land-mobile satellite measurements); SPEC section 5 and 11.
    assert ch.SHADOWING["frequent_heavy"] == ch.ShadowedRicianParams(0.063, 0.739, 8.97e-4)
    assert ch.SHADOWING["average"] == ch.ShadowedRicianParams(0.126, 10.1, 0.835)
    assert ch.SHADOWING["infrequent_light"] == ch.ShadowedRicianParams(0.158, 19.4, 1.29)
    assert ch.SHADOWING["average"].mean_power == pytest.approx(1.087, abs=1e-12)


@pytest.mark.parametrize("field", ["b", "m", "omega"])
def test_shadowed_rician_params_validation_names_the_field(field: str) -> None:
    values = {"b": 0.126, "m": 10.1, "omega": 0.835, field: -1.0}
    with pytest.raises(ValueError, match=f"ShadowedRicianParams.{field}"):
        ch.ShadowedRicianParams(**values)


@pytest.mark.parametrize("name", list(ch.SHADOWING))
def test_shadowed_rician_sample_moments(name: str) -> None:
    p = ch.SHADOWING[name]
    x = ch.sample_shadowed_rician_power_gain(np.random.default_rng(21), p, N_SAMPLES)
    second = _second_moment(p)
    _assert_mean_within_ci(x, p.mean_power, np.sqrt(second - p.mean_power**2))
    _assert_mean_within_ci(x * x, second, float(np.std(x * x)))


@pytest.mark.parametrize("name", list(ch.SHADOWING))
def test_shadowed_rician_pdf_normalised_with_closed_form_moments(name: str) -> None:
    p = ch.SHADOWING[name]
    moments = [
        integrate.quad(lambda x, n=n: x**n * ch.shadowed_rician_power_pdf(x, p), 0, np.inf)[0]
        for n in range(3)
    ]
    np.testing.assert_allclose(moments, [1.0, p.mean_power, _second_moment(p)], rtol=1e-7)


def test_shadowed_rician_pdf_limits() -> None:
    # m = 1: A is Rayleigh, so h is CN(0, 2b + omega) and |h|^2 is exponential (1F1(0;1;z) = 1).
    x = np.linspace(0.0, 6.0, 61)
    p1 = ch.ShadowedRicianParams(0.126, 1.0, 0.835)
    expo = stats.expon.pdf(x, scale=p1.mean_power)
    np.testing.assert_allclose(ch.shadowed_rician_power_pdf(x, p1), expo, rtol=1e-12)
    # m -> inf: no shadowing, Rician with |h|^2 / b ~ ncx2(2, omega / b); error is O(1/m).
    p_inf = ch.ShadowedRicianParams(0.126, 1e4, 0.835)
    rician = stats.ncx2.pdf(x[1:] / p_inf.b, 2, p_inf.omega / p_inf.b) / p_inf.b
    np.testing.assert_allclose(ch.shadowed_rician_power_pdf(x[1:], p_inf), rician, rtol=2e-3)
    assert ch.shadowed_rician_power_pdf(-1.0, p1) == 0.0


def _shadowed_rician_cdf(
    p: ch.ShadowedRicianParams, x_max: float
) -> Callable[[np.ndarray], np.ndarray]:
    """CDF by Simpson integration of the closed-form PDF on a fine grid, linearly interpolated."""
    grid = np.linspace(0.0, x_max, 40_001)
    cdf = integrate.cumulative_simpson(ch.shadowed_rician_power_pdf(grid, p), x=grid, initial=0.0)
    return lambda x: np.interp(x, grid, cdf)


@pytest.mark.parametrize("name", list(ch.SHADOWING))
def test_shadowed_rician_ks_against_closed_form_pdf(name: str) -> None:
    p = ch.SHADOWING[name]
    x = ch.sample_shadowed_rician_power_gain(np.random.default_rng(22), p, N_SAMPLES)
    cdf = _shadowed_rician_cdf(p, 1.01 * x.max())
    assert cdf(x.max()) == pytest.approx(1.0, abs=1e-5)
    assert stats.kstest(x, cdf).pvalue > 1e-3


def test_shadowed_rician_ks_has_power() -> None:
    # Negative control: 'average' samples are clearly rejected against the 'infrequent_light' PDF.
    x = ch.sample_shadowed_rician_power_gain(
        np.random.default_rng(23), ch.SHADOWING["average"], N_SAMPLES
    )
    cdf = _shadowed_rician_cdf(ch.SHADOWING["infrequent_light"], 1.01 * x.max() + 10.0)
    assert stats.kstest(x, cdf).pvalue < 1e-10


def test_shadowed_rician_normalise_gives_unit_mean() -> None:
    p = ch.SHADOWING["frequent_heavy"]
    raw = ch.sample_shadowed_rician_power_gain(np.random.default_rng(5), p, N_SAMPLES)
    unit = ch.sample_shadowed_rician_power_gain(np.random.default_rng(5), p, N_SAMPLES, True)
    np.testing.assert_allclose(unit, raw / p.mean_power, rtol=1e-12)
    rel_std = np.sqrt(_second_moment(p) - p.mean_power**2) / p.mean_power
    _assert_mean_within_ci(unit, 1.0, rel_std)


def test_shadowed_rician_transform_known_value() -> None:
    # G = m (A^2 = omega), phase 0, Z = sqrt(b) (1 + 0j): |h|^2 = (sqrt(omega) + sqrt(b))^2.
    p = ch.SHADOWING["average"]
    got = ch.shadowed_rician_power_gain(p.m, 0.0, 1.0, 0.0, p)
    assert got == pytest.approx((np.sqrt(p.omega) + np.sqrt(p.b)) ** 2, rel=1e-12)
    # Phase u = 1/4 turns the line of sight by 90 degrees, orthogonal to Z: |h|^2 = omega + b.
    got = ch.shadowed_rician_power_gain(p.m, 0.25, 1.0, 0.0, p)
    assert got == pytest.approx(p.omega + p.b, rel=1e-12)


# ----------------------------------------------------------------------------------- rate, share
def test_shannon_rate_known_values() -> None:
    # SPEC section 11: at 0 dB SINR the rate equals the bandwidth.
    assert ch.shannon_rate_bps(10e6, ch.db_to_linear(0.0)) == pytest.approx(10e6, rel=1e-12)
    assert ch.shannon_rate_bps(10e6, 15.0) == pytest.approx(40e6, rel=1e-12)
    assert ch.shannon_rate_bps(20e6, 0.0) == 0.0


def test_equal_share_known_values_and_batch() -> None:
    # Environments count their groups separately: group 0 has 3 members in env 0, 1 in env 1.
    group = np.array([[0, 0, 1, -1, 0], [0, 2, 2, 2, -1]])
    got = ch.equal_share_bandwidth_hz(np.array([[9e6], [12e6]]), group, n_groups=3)
    expected = [[3e6, 3e6, 9e6, 0, 3e6], [12e6, 4e6, 4e6, 4e6, 0]]
    np.testing.assert_allclose(got, expected, rtol=1e-12)
    assert ch.equal_share_bandwidth_hz(1e6, np.zeros((3, 0), int), 2).shape == (3, 0)  # no IoTDs
    with pytest.raises(ValueError, match="group indices"):
        ch.equal_share_bandwidth_hz(1e6, np.array([0, 3]), n_groups=3)


# ------------------------------------------------------------------------------------------ SINR
def _sinr_reference(
    p: np.ndarray, g: np.ndarray, serving: np.ndarray, bw: np.ndarray, n0: float
) -> np.ndarray:
    """Loop-by-loop SPEC section 5 SINR for one environment (independent of the vectorised code)."""
    k_n = g.shape[0]
    out = np.zeros(k_n)
    for k in range(k_n):
        m = serving[k]
        if m < 0:
            continue
        interference = sum(
            p[j] / bw[j] * g[j, m] for j in range(k_n) if serving[j] >= 0 and serving[j] != m
        )
        out[k] = p[k] / bw[k] * g[k, m] / (n0 + interference)
    return out


def test_uav_uplink_sinr_hand_computed() -> None:
    # Two UAVs; IoTDs 0 and 1 on UAV 0 (FDMA, 5 MHz each), IoTD 2 on UAV 1 (10 MHz), 3 unserved.
    p = np.array([0.1, 0.2, 0.1, 0.2])
    g = np.array([[1e-7, 1e-9], [2e-8, 4e-9], [1e-9, 1e-7], [1e-8, 1e-8]])
    serving = np.array([0, 0, 1, -1])
    bw = np.array([5e6, 5e6, 10e6, 0.0])
    n0 = 4e-21
    # At UAV 0 the interference is IoTD 2 only: 0.1 / 10 MHz * 1e-9 = 1e-17 W/Hz.
    # At UAV 1: IoTDs 0 and 1, 0.1/5e6 * 1e-9 + 0.2/5e6 * 4e-9 = 2e-17 + 1.6e-16 W/Hz.
    expected = [
        0.1 / 5e6 * 1e-7 / (n0 + 1e-17),
        0.2 / 5e6 * 2e-8 / (n0 + 1e-17),
        0.1 / 10e6 * 1e-7 / (n0 + 1.8e-16),
        0.0,
    ]
    got = ch.uav_uplink_sinr(p, g, serving, bw, n0)
    np.testing.assert_allclose(got, expected, rtol=1e-12)


def test_uav_uplink_sinr_matches_loop_reference_on_a_batch() -> None:
    rng = np.random.default_rng(3)
    n_env, k_n, m_n, n0 = 16, 12, 3, float(ch.dbm_to_w(-174.0))
    p = rng.uniform(0.01, 0.2, (n_env, k_n))
    g = ch.ground_uav_large_scale_gain(rng.uniform(100, 600, (n_env, k_n, m_n)))
    g = g * ch.sample_rician_power_gain(rng, 10.0, g.shape)
    serving = rng.integers(-1, m_n, (n_env, k_n))
    bw = ch.equal_share_bandwidth_hz(10e6, serving, m_n)
    got = ch.uav_uplink_sinr(p, g, serving, bw, n0)
    expected = [_sinr_reference(p[e], g[e], serving[e], bw[e], n0) for e in range(n_env)]
    np.testing.assert_allclose(got, expected, rtol=1e-12)
    # A single UAV has no inter-cell interference: SINR = SNR.
    bw_one = np.full(k_n, 10e6 / k_n)
    one = ch.uav_uplink_sinr(p[0], g[0, :, :1], np.zeros(k_n, int), bw_one, n0)
    np.testing.assert_allclose(one, p[0] / bw_one * g[0, :, 0] / n0, rtol=1e-12)
    no_iotd = np.zeros((2, 0))
    assert ch.uav_uplink_sinr(no_iotd, np.zeros((2, 0, 3)), no_iotd.astype(int), 1.0, n0).size == 0
    with pytest.raises(ValueError, match="serving_uav"):
        ch.uav_uplink_sinr(p[0], g[0], np.full(k_n, m_n), bw[0], n0)


# ------------------------------------------------------------------------ monotonicity properties
@st.composite
def uplinks(draw: st.DrawFn) -> tuple[np.ndarray, ...]:
    """A random uplink slot: powers, gains, serving UAVs, bandwidth shares."""
    k_n, m_n = draw(st.integers(2, 8)), draw(st.integers(1, 4))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    p = rng.uniform(0.01, 0.2, k_n)
    g = ch.ground_uav_large_scale_gain(rng.uniform(100.0, 800.0, (k_n, m_n)))
    serving = rng.integers(-1, m_n, k_n)
    bw = ch.equal_share_bandwidth_hz(10e6, serving, m_n)
    return p, g, serving, bw


N0_W_HZ = float(ch.dbm_to_w(-174.0))
power_factor = st.floats(1.0, 1e3)


@settings(max_examples=200, deadline=None)
@given(uplinks(), st.data(), power_factor)
def test_more_own_power_never_lowers_own_sinr_or_rate(
    link: tuple[np.ndarray, ...], data: st.DataObject, factor: float
) -> None:
    p, g, serving, bw = link
    k = data.draw(st.integers(0, p.size - 1))
    p2 = p.copy()
    p2[k] *= factor
    before = ch.uav_uplink_sinr(p, g, serving, bw, N0_W_HZ)
    after = ch.uav_uplink_sinr(p2, g, serving, bw, N0_W_HZ)
    assert after[k] >= before[k]
    assert ch.shannon_rate_bps(bw, after)[k] >= ch.shannon_rate_bps(bw, before)[k]


@settings(max_examples=200, deadline=None)
@given(uplinks(), st.data(), power_factor)
def test_more_interferer_power_never_raises_others_sinr(
    link: tuple[np.ndarray, ...], data: st.DataObject, factor: float
) -> None:
    p, g, serving, bw = link
    j = data.draw(st.integers(0, p.size - 1))
    p2 = p.copy()
    p2[j] *= factor
    before = ch.uav_uplink_sinr(p, g, serving, bw, N0_W_HZ)
    after = ch.uav_uplink_sinr(p2, g, serving, bw, N0_W_HZ)
    others = np.arange(p.size) != j
    assert np.all(after[others] <= before[others])
    same_cell = others & (serving == serving[j])  # FDMA: no intra-cell interference, exactly
    np.testing.assert_array_equal(after[same_cell], before[same_cell])
    if factor >= 2 and serving[j] >= 0:  # a real interferer strictly lowers the other cells' SINR
        other_cell = (serving >= 0) & (serving != serving[j])
        assert np.all(after[other_cell] < before[other_cell])


@settings(max_examples=200, deadline=None)
@given(st.floats(1.0, 1e9), st.floats(1.0, 1e3), st.floats(0.0, 1e6))
def test_more_bandwidth_never_lowers_rate(bw_hz: float, factor: float, sinr: float) -> None:
    assert ch.shannon_rate_bps(bw_hz * factor, sinr) >= ch.shannon_rate_bps(bw_hz, sinr)


@settings(max_examples=200, deadline=None)
@given(st.floats(1.0, 1e8), st.floats(1.0, 1e3), st.floats(1.5, 6.0))
def test_larger_distance_never_raises_large_scale_gain(d_m: float, f: float, alpha: float) -> None:
    assert ch.ground_uav_large_scale_gain(d_m * f, -30.0, alpha) <= ch.ground_uav_large_scale_gain(
        d_m, -30.0, alpha
    )
    far, near = ch.ground_satellite_gain(np.array([d_m * f, d_m]), 2e9, 0.0, 30.0)
    assert far <= near


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(-1, 3), min_size=2, max_size=25), st.data())
def test_joining_a_group_never_raises_others_share(group: list[int], data: st.DataObject) -> None:
    before_group = np.array(group)
    newcomer = data.draw(st.integers(0, len(group) - 1))
    before_group[newcomer] = -1  # the newcomer was in no group
    after_group = before_group.copy()
    after_group[newcomer] = data.draw(st.integers(0, 3))
    before = ch.equal_share_bandwidth_hz(10e6, before_group, 4)
    after = ch.equal_share_bandwidth_hz(10e6, after_group, 4)
    others = np.arange(len(group)) != newcomer
    assert np.all(after[others] <= before[others])
    for g in set(after_group.tolist()) - {-1}:  # each group's band is fully shared out
        assert after[after_group == g].sum() == pytest.approx(10e6, rel=1e-12)
