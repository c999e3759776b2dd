"""Rotary angles in float64 for the `transformers` reference forwards of the convert tests.

transformers takes a Llama's rotary cos/sin in float32, and there torch's cos/sin of angles
past about 50 radians came out up to 1.5e-4 apart from one test process to the next (CI,
2026-12-05 and 12-06). That put the reference logits 4.3e-4 (relative) off now and then, from
position 53 of the check text on, and failed the 1e-4 bounds the conversion proofs hold
llama.cpp to. Taken in float64 by numpy, the angles are the same in every process and are
the exact maths the GGUF is measured against.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def exact_rotary(model: Any) -> Any:
    """Give every rotary embedding of the torch `model` float64 angles; return `model`."""
    for module in model.modules():
        if type(module).__name__.endswith("RotaryEmbedding"):
            module.forward = _float64_forward(module)
    return model


def _float64_forward(rotary: Any) -> Any:
    import torch

    inv_freq = rotary.inv_freq.double().numpy()
    scaling = float(rotary.attention_scaling)

    def forward(x: Any, position_ids: Any) -> tuple[Any, Any]:
        angles = position_ids.double().numpy()[..., None] * inv_freq
        angles = np.concatenate([angles, angles], axis=-1)
        cos = torch.from_numpy(np.cos(angles) * scaling).to(x.dtype)
        sin = torch.from_numpy(np.sin(angles) * scaling).to(x.dtype)
        return cos, sin

    return forward
