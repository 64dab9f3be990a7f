"""The glial feedback pathway: from the output error to a learning signal for each hidden layer.

With output error `delta_t` `[B, C]` and pseudo-derivatives `psi_t^(l)` `[B, N_l]`:

    layered:  g_t^(L-1) = delta_t F^(L),   g_t^(l) = (g_t^(l+1) * psi_t^(l+1)) F^(l+1)
    direct:   g_t^(l)   = delta_t D^(l)

Feedback matrices have the shape of the forward weights they stand in for, `[post, pre]`:

- `exact`:  F = W * M, the forward weights themselves (weight transport; not biological,
  the reference that the others approximate).
- `sign`:   F = sign(W * M) * mean |W| over the layer's synapses. Glia know only the sign.
- `random`: F fixed and random (feedback alignment).
- `direct`: no F; a fixed random `D^(l)` `[C, N_l]` broadcasts the error to every hidden layer
  (direct feedback alignment).
"""

from __future__ import annotations

import enum
import math

import torch
from torch import nn

from microglia.network import SpikingMLP


class FeedbackKind(str, enum.Enum):
    """Kind of matrices that carry the error back to the hidden layers."""

    EXACT = "exact"
    SIGN = "sign"
    RANDOM = "random"
    DIRECT = "direct"


class FeedbackPathway(nn.Module):
    """Learning signals for the hidden layers of a `SpikingMLP`.

    Fixed random matrices are buffers (`fixed_0`, `fixed_1`, ...), saved with the state dict
    and never trained.

    Args:
        kind: the feedback kind.
        network: the network whose hidden layers receive the signals.
        generator: random generator for the fixed matrices of `random` and `direct`.
    """

    def __init__(self, kind: FeedbackKind | str, network: SpikingMLP, generator: torch.Generator | None = None):
        super().__init__()
        self.kind = FeedbackKind(kind)
        self.network = [network]  # a list, so the network is not registered as a submodule
        layers = network.synaptic_layers

        fixed_matrices = []
        if self.kind is FeedbackKind.RANDOM:
            for layer in layers[1:]:
                bound = layer.init_scale / math.sqrt(layer.in_features)
                fixed_matrices.append(
                    torch.empty(layer.out_features, layer.in_features).uniform_(-bound, bound, generator=generator)
                )
        elif self.kind is FeedbackKind.DIRECT:
            n_classes = network.sizes[-1]
            for layer in layers[:-1]:
                bound = 1.0 / math.sqrt(layer.out_features)
                fixed_matrices.append(torch.empty(n_classes, layer.out_features).uniform_(-bound, bound, generator=generator))

        self.n_fixed = len(fixed_matrices)
        for index, matrix in enumerate(fixed_matrices):
            self.register_buffer(f"fixed_{index}", matrix)

    def matrices(self) -> list[torch.Tensor]:
        """Return the feedback matrices now in force.

        For the layered kinds, one `[post, pre]` matrix per synaptic layer after the first;
        for `direct`, one `D^(l)` `[C, N_l]` per hidden layer.
        """
        if self.kind in (FeedbackKind.RANDOM, FeedbackKind.DIRECT):
            return [getattr(self, f"fixed_{index}") for index in range(self.n_fixed)]

        downstream = self.network[0].synaptic_layers[1:]
        forward_weights = [layer.masked_weight().detach() for layer in downstream]
        if self.kind is FeedbackKind.EXACT:
            return forward_weights
        return [_sign_feedback(weight, layer.mask) for weight, layer in zip(forward_weights, downstream)]

    def learning_signals(
        self,
        error: torch.Tensor,
        psis: list[torch.Tensor],
        matrices: list[torch.Tensor] | None = None,
        *,
        out: list[torch.Tensor] | None = None,
    ) -> list[torch.Tensor]:
        """Compute the learning signal of every hidden layer for a chunk of steps.

        Args:
            error: output error `delta` `[Tc, B, C]`.
            psis: pseudo-derivatives of the hidden layers, `[Tc, B, N_l]` each, input side first.
            matrices: the result of `matrices()`, when the caller already has it.
            out: contiguous tensors `[Tc, B, N_l]`, one per hidden layer, that receive the
                signals instead of new tensors.

        Returns:
            Learning signals `g^(l)` `[Tc, B, N_l]`, one per hidden layer, input side first.
        """
        if matrices is None:
            matrices = self.matrices()
        if out is None:
            out = [None] * len(psis)

        if self.kind is FeedbackKind.DIRECT:
            return [torch.matmul(error, matrix, out=buffer) for matrix, buffer in zip(matrices, out)]

        signals = [None] * len(psis)
        signals[-1] = torch.matmul(error, matrices[-1], out=out[-1])
        for l in range(len(psis) - 1, 0, -1):
            signals[l - 1] = torch.matmul(signals[l] * psis[l], matrices[l - 1], out=out[l - 1])
        return signals


def _sign_feedback(weight: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Return sign(W) scaled by the mean |W| over present synapses, `[post, pre]`."""
    present = mask.sum().clamp(min=1.0)
    scale = weight.abs().sum() / present
    return torch.sign(weight) * scale
