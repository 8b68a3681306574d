"""The encoder network and the Prototypical Network loss (PyTorch, training only)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def conv_block(channels_in: int, channels_out: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(channels_in, channels_out, 3, padding=1, bias=False),
        nn.BatchNorm2d(channels_out),
        nn.ReLU(inplace=True),
        nn.MaxPool2d(2),
    )


class Encoder(nn.Module):
    """Four conv blocks (Snell et al.'s backbone) over a normalised ``(N, C, S, S)`` input.

    The output is the flattened feature map: ``(N, width * (S / 16) ** 2)`` ``float32``.
    """

    def __init__(self, width: int = 64, blocks: int = 4, channels: int = 1) -> None:
        super().__init__()
        layers = [conv_block(channels, width)] + [conv_block(width, width) for _ in range(blocks - 1)]
        self.body = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x).flatten(1)


def prototypes(support: torch.Tensor, labels: torch.Tensor, ways: int) -> torch.Tensor:
    """Mean embedding per class.

    Args:
        support: ``(n_support, D)`` embeddings.
        labels: ``(n_support,)`` ``int64`` in ``[0, ways)``.
    Returns:
        ``(ways, D)`` prototypes.
    """
    sums = torch.zeros(ways, support.shape[1], dtype=support.dtype, device=support.device)
    sums.index_add_(0, labels, support)
    counts = torch.bincount(labels, minlength=ways).clamp(min=1).unsqueeze(1)
    return sums / counts


def squared_distances(queries: torch.Tensor, protos: torch.Tensor) -> torch.Tensor:
    """``(n_query, ways)`` squared Euclidean distances."""
    return (
        queries.pow(2).sum(1, keepdim=True)
        - 2 * queries @ protos.T
        + protos.pow(2).sum(1).unsqueeze(0)
    ).clamp(min=0)


class ProtoLoss(nn.Module):
    """Cross-entropy over ``-scale * squared distance`` with a learned scale (1/temperature)."""

    def __init__(self, learn_scale: bool = True) -> None:
        super().__init__()
        self.log_scale = nn.Parameter(torch.zeros(()), requires_grad=learn_scale)

    @property
    def temperature(self) -> float:
        return float(torch.exp(-self.log_scale.detach()))

    def forward(
        self, support: torch.Tensor, support_labels: torch.Tensor, queries: torch.Tensor,
        query_labels: torch.Tensor, ways: int,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        logits = -self.log_scale.exp() * squared_distances(queries, prototypes(support, support_labels, ways))
        loss = F.cross_entropy(logits, query_labels)
        accuracy = (logits.argmax(1) == query_labels).float().mean()
        return loss, accuracy
