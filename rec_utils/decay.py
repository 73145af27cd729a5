"""Position decays shared by V-SKNN, SKNNEmb and LLMSeqSim (paper §6.1, §6.5).

``i`` is the position counted **from the end** of the prompt (i = 1 is the last item, i = L the
first of an L-item prompt). All functions are vectorised over ``i`` and ``L`` arrays.

SKNN family (reference ``SessionBasedCF._compute_decay_array``): ``linear`` max(1e-4, 1 − 0.1(i−1)),
``log`` 1/(1 + ln i), ``harmonic`` 1/i, ``quadratic`` 1/i².
LLMSeqSim (reference ``main/utils/session_utils``): ``constant_linear`` max(1e-5, 1 − 0.1(i−1)),
``scaling_linear`` max(1e-5, 1 − (i−1)/L), ``scaling_quadratic`` and ``scaling_cubic`` its square
and cube, ``log``, ``harmonic``, ``squared_harmonic`` 1/i² (the code's name ``harmonic_squared``
is accepted too).
"""
from __future__ import annotations

import numpy as np

DECAYS = {
    None: lambda i, L: np.ones_like(i, dtype=np.float64),
    "none": lambda i, L: np.ones_like(i, dtype=np.float64),
    "linear": lambda i, L: np.maximum(1e-4, 1.0 - 0.1 * (i - 1)),
    "quadratic": lambda i, L: 1.0 / i**2,
    "log": lambda i, L: 1.0 / (1.0 + np.log(i)),
    "harmonic": lambda i, L: 1.0 / i,
    "squared_harmonic": lambda i, L: 1.0 / i**2,
    "harmonic_squared": lambda i, L: 1.0 / i**2,
    "constant_linear": lambda i, L: np.maximum(1e-5, 1.0 - 0.1 * (i - 1)),
    "scaling_linear": lambda i, L: np.maximum(1e-5, 1.0 - (i - 1) / L),
    "scaling_quadratic": lambda i, L: np.maximum(1e-5, 1.0 - (i - 1) / L) ** 2,
    "scaling_cubic": lambda i, L: np.maximum(1e-5, 1.0 - (i - 1) / L) ** 3,
}


def decay_weights(name: str | None, i_from_end: np.ndarray, length: np.ndarray) -> np.ndarray:
    """Weights of positions ``i_from_end`` (1 = last) in prompts of length ``length``."""
    if name not in DECAYS:
        raise ValueError(f"unknown decay {name!r}; choose one of {sorted(k for k in DECAYS if k)}")
    i = np.asarray(i_from_end, dtype=np.float64)
    L = np.asarray(length, dtype=np.float64)
    return DECAYS[name](i, L).astype(np.float64)
