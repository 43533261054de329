"""The running per-channel top-k of a scan, with one total order so shards merge exactly.

Every candidate is ``(value, image index, y, x)``: the strongest position of one channel in
one image (the first one in row-major order on ties, as ``torch.max`` documents). Candidates
are ranked by value, strongest first, and equal values by the smaller image index. That order
is total, so keeping the first ``k`` is associative and commutative: merging the top-k of any
partition of the images (batches, ranks, resumed runs) gives exactly the top-k of the whole.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..errors import InputError

__all__ = ["RunningTopK", "select_topk"]


def select_topk(
    values: torch.Tensor, index: torch.Tensor, pos: torch.Tensor, k: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Keep each row's first ``k`` candidates in the order (value descending, image index ascending).

    Parameters
    ----------
    values
        ``(C, n)`` candidate activations.
    index
        ``(C, n)`` int64 image indices.
    pos
        ``(C, n, 2)`` int64 ``(y, x)`` positions.
    k
        How many to keep (fewer when ``n < k``).

    Returns
    -------
    tuple of torch.Tensor
        ``(C, k')`` values, ``(C, k')`` indices and ``(C, k', 2)`` positions, ``k' = min(k, n)``.
    """
    # Two stable sorts make a lexicographic one: by index first, then by value (ties keep index order).
    by_index = index.argsort(dim=1, stable=True)
    v = values.gather(1, by_index)
    order = v.argsort(dim=1, descending=True, stable=True)[:, :k]
    order = by_index.gather(1, order)
    return values.gather(1, order), index.gather(1, order), pos.gather(1, order.unsqueeze(-1).expand(-1, -1, 2))


@dataclass
class RunningTopK:
    """The ``k`` strongest (value, image, position) of each channel seen so far.

    Attributes
    ----------
    k
        Winners kept per channel.
    values
        ``(C, k')`` activations, strongest first (``k' <= k`` until ``k`` images were seen); None before any update.
    index
        ``(C, k')`` int64 image indices.
    pos
        ``(C, k', 2)`` int64 ``(y, x)`` in the layer's feature map.
    seen
        Images folded in so far.
    """

    k: int
    values: torch.Tensor | None = None
    index: torch.Tensor | None = None
    pos: torch.Tensor | None = None
    seen: int = 0

    def update(self, act: torch.Tensor, index: torch.Tensor) -> None:
        """Fold in one batch of activations.

        Parameters
        ----------
        act
            ``(B, C, h, w)`` activations of the kept channels.
        index
            ``(B,)`` int64 global image index of each row.
        """
        B, C, h, w = act.shape
        v, p = act.reshape(B, C, h * w).max(dim=2)  # (B, C): first maximal position on ties
        idx = index.to(v.device).view(B, 1).expand(B, C)
        yx = torch.stack([p // w, p % w], dim=-1)  # (B, C, 2)
        self._fold(v.T, idx.T, yx.transpose(0, 1))
        self.seen += B

    def merge(self, other: RunningTopK) -> None:
        """Fold in another shard's top-k (same channels); the result is independent of merge order."""
        if other.values is None or other.index is None or other.pos is None:
            return
        self._fold(other.values, other.index, other.pos)
        self.seen += other.seen

    def _fold(self, v: torch.Tensor, i: torch.Tensor, p: torch.Tensor) -> None:
        if self.values is not None and self.index is not None and self.pos is not None:
            if self.values.shape[0] != v.shape[0]:
                raise InputError(f"cannot merge top-k of {v.shape[0]} channels into one of {self.values.shape[0]} channels")
            v = torch.cat([self.values, v.to(self.values.device, self.values.dtype)], dim=1)
            i = torch.cat([self.index, i.to(self.index.device)], dim=1)
            p = torch.cat([self.pos, p.to(self.pos.device)], dim=1)
        self.values, self.index, self.pos = select_topk(v, i.long(), p.long(), self.k)

    def state(self) -> dict[str, torch.Tensor]:
        """CPU tensors for a checkpoint or an all-gather (empty before any update)."""
        if self.values is None or self.index is None or self.pos is None:
            return {"seen": torch.tensor(self.seen)}
        return {"values": self.values.cpu(), "index": self.index.cpu(), "pos": self.pos.cpu(), "seen": torch.tensor(self.seen)}

    @classmethod
    def from_state(cls, k: int, state: dict[str, torch.Tensor]) -> RunningTopK:
        """Rebuild from :meth:`state`."""
        return cls(k, state.get("values"), state.get("index"), state.get("pos"), int(state["seen"]))
