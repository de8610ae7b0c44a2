"""Physical constants shared by the simulator (SI units).

Sources: WGS-84 / IERS for the Earth values, CODATA for the speed of light. SPEC section 11 uses a
spherical Earth of radius 6371 km, which we follow everywhere (the oblateness is irrelevant at the
accuracy the offloading model needs).
"""

from __future__ import annotations

MU_EARTH_M3_S2: float = 3.986004418e14
"""Standard gravitational parameter of the Earth (m^3/s^2)."""

R_EARTH_M: float = 6_371_000.0
"""Mean (spherical) Earth radius used by the model (m)."""

OMEGA_EARTH_RAD_S: float = 7.2921159e-5
"""Earth rotation rate, sidereal (rad/s)."""

C_M_S: float = 299_792_458.0
"""Speed of light in vacuum (m/s)."""

BOLTZMANN_J_K: float = 1.380649e-23
"""Boltzmann constant (J/K)."""
