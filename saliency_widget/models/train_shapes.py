"""Train the bundled shapes CNN from scratch on generated data (about 10 minutes on 2 CPU cores).

Usage::

    python -m saliency_widget.models.train_shapes --threads 1     # rewrites the shipped checkpoint, bit for bit
    python -m saliency_widget.models.train_shapes --out /tmp/my.pt --epochs 2 --n-train 2000

Steps: generate ``--n-train`` single-object scenes (stream ``--seed``); train
:class:`~saliency_widget.models.shapes_cnn.ShapesCNN` *with* BatchNorm (which keeps this
from-scratch training fast and stable) using AdamW and a one-cycle learning-rate
schedule, with random flips and 90-degree rotations (all six classes are invariant to
them, so they are free extra data); fold BatchNorm into the convolutions and check the
folded network computes the same logits; measure accuracy on ``--n-test`` freshly
generated scenes from a different stream (``--test-seed``); write the fp32 state dict to
``--out`` and a JSON record (accuracy, seed, time, ...) next to it (same name, ``.json``).
"""

from __future__ import annotations

import argparse
import json
import math
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ..data.atomic import replacing, write_atomic
from ..data.shapes import CLASSES, make_batch, to_tensor
from ..errors import InputError
from .shapes_cnn import CHECKPOINT, ShapesCNN, fold_batchnorm

__all__ = ["train", "evaluate", "evaluate_two_objects", "main"]


def _augment(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Random flips / transposition of a ``(N, 3, H, W)`` batch (one of the 8 square symmetries)."""
    k = int(torch.randint(0, 8, (1,), generator=generator))
    if k & 1:
        x = x.flip(-1)
    if k & 2:
        x = x.flip(-2)
    if k & 4:
        x = x.transpose(-1, -2)
    return x


@torch.no_grad()
def evaluate(model: nn.Module, n: int = 2000, seed: int = 10_000, size: int = 128, batch_size: int = 250) -> float:
    """Accuracy of ``model`` on ``n`` freshly generated single-object scenes of stream ``seed``.

    Parameters
    ----------
    model
        Maps ``(N, 3, size, size)`` normalised images to ``(N, 6)`` logits.
    n, seed, size
        How many scenes, from which stream, of which side.
    batch_size
        Scenes generated and classified at a time (bounds memory).

    Returns
    -------
    float
        Fraction of scenes whose argmax logit is the true class.
    """
    was_training = model.training
    model.eval()
    correct = 0
    for start in range(0, n, batch_size):
        batch = make_batch(min(batch_size, n - start), size=size, seed=seed, start=start)
        logits = model(to_tensor(batch.images))
        correct += int((logits.argmax(1) == torch.from_numpy(batch.labels[:, 0])).sum())
    model.train(was_training)
    return correct / n


@torch.no_grad()
def evaluate_two_objects(model: nn.Module, n: int = 500, seed: int = 10_000, size: int = 128) -> float:
    """Fraction of ``n`` fresh two-object scenes whose two highest logits are exactly their two classes.

    Uses indices ``1_000_000 ..`` of stream ``seed`` so as not to reuse the scenes of :func:`evaluate`.
    """
    was_training = model.training
    model.eval()
    batch = make_batch(n, size=size, seed=seed, n_objects=2, start=1_000_000)
    top2 = model(to_tensor(batch.images)).topk(2, dim=1).indices.sort(dim=1).values
    hits = (top2 == torch.from_numpy(np.sort(batch.labels, axis=1))).all(dim=1)
    model.train(was_training)
    return float(hits.float().mean())


def train(
    out: Path | str = CHECKPOINT,
    epochs: int = 8,
    n_train: int = 12_000,
    n_test: int = 2_000,
    seed: int = 0,
    test_seed: int = 10_000,
    size: int = 128,
    batch_size: int = 64,
    lr: float = 4e-3,
    two_object_fraction: float = 0.0,
    threads: int | None = None,
    verbose: bool = True,
) -> dict[str, Any]:
    """Train, fold BatchNorm, evaluate and save the shapes CNN.

    Parameters
    ----------
    out
        Where to write the fp32 state dict; a JSON record goes next to it (``.json``).
    epochs
        Passes over the training set.
    n_train
        Training scenes (generated once from stream ``seed``, kept as uint8 in memory:
        ``n_train * size**2 * 3`` bytes).
    n_test
        Held-out scenes generated from stream ``test_seed`` (never seen in training).
    seed
        Seeds the training data stream, the initialisation, shuffling and augmentation.
    test_seed
        Held-out data stream; must differ from ``seed``.
    size
        Image side in pixels.
    batch_size, lr
        Mini-batch size and peak learning rate (AdamW, one-cycle schedule).
    two_object_fraction
        Share of training scenes with two objects, trained towards probability 1/2 for
        each of their classes. Default 0: with 0.25 the two highest logits of a two-object
        scene are its two classes 98 % of the time (vs 45 %), but plain-gradient maps get
        diffuse (pointing game 0.64 vs 0.95 at 3 px, measured with the earlier 7x7 first
        layer), so the shipped model is trained without; its
        DeconvNet map still moves to whichever object's class is chosen.
    threads
        ``torch.set_num_threads`` value; None keeps torch's default. The shipped checkpoint
        was trained with 1 thread (17 min here); other counts change the float rounding, so
        the weights differ in the last bits (bitwise reproducibility holds per thread count).
    verbose
        Print progress once per epoch.

    Returns
    -------
    dict
        The JSON record: ``heldout_accuracy``, ``train_accuracy_last_epoch``,
        ``num_params``, ``checkpoint_bytes``, ``train_seconds``, ``total_seconds`` and the
        arguments.
    """
    for name, value in (("epochs", epochs), ("n_train", n_train), ("n_test", n_test), ("batch_size", batch_size)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise InputError(f"{name}={value!r} is not valid: expected a positive int.")
    if not 0.0 <= two_object_fraction <= 1.0:
        raise InputError(f"two_object_fraction={two_object_fraction!r} is not valid: expected a number in [0, 1].")
    if seed == test_seed:
        raise InputError(f"seed and test_seed are both {seed}: the held-out data must come from a different stream.")
    if threads is not None:
        torch.set_num_threads(threads)
    out = Path(out)
    t_start = time.perf_counter()
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)

    def log(msg: str) -> None:
        if verbose:
            print(f"[{time.perf_counter() - t_start:7.1f}s] {msg}", flush=True)

    # Scenes 0 .. n_single-1 of stream `seed` have one object, the rest two: distinct indices,
    # so the two kinds never share a random stream (and hence a background).
    n_two = round(two_object_fraction * n_train)
    n_single = n_train - n_two
    single = make_batch(n_single, size=size, seed=seed)
    two = make_batch(n_two, size=size, seed=seed, n_objects=2, start=n_single)
    images = torch.from_numpy(np.concatenate([single.images, two.images]))  # (N, H, W, 3) uint8
    # Soft targets (N, K): one-hot for one object, 1/2 + 1/2 for two, so that both classes of a
    # two-object scene score high and a user can pick either one in the widget.
    targets = torch.zeros(n_train, len(CLASSES))
    targets[torch.arange(n_single), torch.from_numpy(single.labels[:, 0])] = 1.0
    for j in range(2):
        targets[n_single + torch.arange(n_two), torch.from_numpy(two.labels[:, j])] = 0.5
    log(f"generated {n_single} one-object and {n_two} two-object training scenes")

    model = ShapesCNN(num_classes=len(CLASSES), batchnorm=True)
    # channels_last makes CPU convolutions several times faster (oneDNN's preferred layout)
    model = model.to(memory_format=torch.channels_last).train()
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
    steps_per_epoch = math.ceil(n_train / batch_size)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=epochs * steps_per_epoch, pct_start=0.2)
    loss_fn = nn.CrossEntropyLoss()

    t_train = time.perf_counter()
    train_acc = 0.0
    for epoch in range(epochs):
        order = torch.randperm(n_train, generator=gen)
        seen = correct = 0
        loss_sum = 0.0
        for start in range(0, n_train, batch_size):
            idx = order[start : start + batch_size]
            x = _augment(to_tensor(images[idx].numpy()), gen).contiguous(memory_format=torch.channels_last)
            y = targets[idx]
            logits = model(x)
            loss = loss_fn(logits, y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            seen += len(idx)
            correct += int((y.gather(1, logits.argmax(1, keepdim=True)) > 0).sum())  # top-1 is a true class
            loss_sum += float(loss.detach()) * len(idx)
        train_acc = correct / seen
        log(f"epoch {epoch + 1}/{epochs}: loss {loss_sum / seen:.4f}, train accuracy {train_acc:.4f}")
    train_seconds = time.perf_counter() - t_train

    model = model.to(memory_format=torch.contiguous_format).eval()
    folded = fold_batchnorm(model)
    # Folding must not change the function; compare on a few fresh scenes.
    probe = to_tensor(make_batch(32, size=size, seed=test_seed + 1).images)
    with torch.no_grad():
        torch.testing.assert_close(folded(probe), model(probe), rtol=1e-3, atol=1e-3)
    accuracy = evaluate(folded, n=n_test, seed=test_seed, size=size)
    top2 = evaluate_two_objects(folded, n=max(1, n_test // 4), seed=test_seed, size=size)
    log(f"held-out accuracy {accuracy:.4f} on {n_test} scenes (stream {test_seed}); two-object top-2 {top2:.4f}")

    out.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().to(torch.float32).contiguous() for k, v in folded.state_dict().items()}
    with replacing(out) as tmp:
        torch.save(state, tmp)
    record: dict[str, Any] = {
        "heldout_accuracy": accuracy,
        "heldout_n": n_test,
        "heldout_seed": test_seed,
        "heldout_two_object_top2": top2,
        "train_accuracy_last_epoch": train_acc,
        "num_params": sum(p.numel() for p in folded.parameters()),
        "checkpoint_bytes": out.stat().st_size,
        "train_seconds": round(train_seconds, 1),
        "total_seconds": round(time.perf_counter() - t_start, 1),
        "torch_threads": torch.get_num_threads(),
        "epochs": epochs,
        "n_train": n_train,
        "seed": seed,
        "size": size,
        "batch_size": batch_size,
        "lr": lr,
        "two_object_fraction": two_object_fraction,
        "torch_version": torch.__version__,
    }
    write_atomic(out.with_suffix(".json"), json.dumps(record, indent=2) + "\n")
    log(f"wrote {out} ({record['checkpoint_bytes']} bytes) and {out.with_suffix('.json').name}")
    return record


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Command-line entry point; see ``python -m saliency_widget.models.train_shapes --help``."""
    p = argparse.ArgumentParser(
        prog="python -m saliency_widget.models.train_shapes", description=__doc__.split("\n")[0]
    )
    p.add_argument("--out", type=Path, default=CHECKPOINT, help="checkpoint path (default: the shipped one)")
    p.add_argument("--epochs", type=int, default=8)
    p.add_argument("--n-train", type=int, default=12_000)
    p.add_argument("--n-test", type=int, default=2_000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--test-seed", type=int, default=10_000)
    p.add_argument("--size", type=int, default=128)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=4e-3)
    p.add_argument(
        "--two-object-fraction", type=float, default=0.0, help="share of two-object training scenes (see train())"
    )
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    p.add_argument("--quiet", action="store_true")
    a = p.parse_args(argv)
    return train(
        out=a.out,
        epochs=a.epochs,
        n_train=a.n_train,
        n_test=a.n_test,
        seed=a.seed,
        test_seed=a.test_seed,
        size=a.size,
        batch_size=a.batch_size,
        lr=a.lr,
        two_object_fraction=a.two_object_fraction,
        threads=a.threads,
        verbose=not a.quiet,
    )


if __name__ == "__main__":
    main()
