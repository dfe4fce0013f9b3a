"""Training in several processes with torch.distributed (`torchrun --nproc_per_node=N scripts/train.py ...`).

Every rank holds the whole model and propagates over the whole graph (full batch); each training batch is
drawn identically on every rank (same seed, same draws) and split among the ranks by example, so that the
N ranks together compute the gradient of one batch, averaged by DistributedDataParallel (gloo on CPU, nccl
on GPUs). One rank (0) evaluates, decides early stopping and the time budget for all, and writes the
checkpoints and the model directory. Without torch.distributed initialised everything here is a no-op.
"""
from __future__ import annotations

import hashlib
import os
from contextlib import contextmanager

import torch

__all__ = ["init_from_env", "rank", "world_size", "is_main", "agree", "barrier", "main_first", "weights_digest",
           "check_agreement", "shutdown"]


def init_from_env() -> bool:
    """Join the process group torchrun describes (WORLD_SIZE > 1 in the environment); True when distributed."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return True
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return False
    backend = "nccl" if torch.cuda.is_available() else "gloo"
    dist.init_process_group(backend=backend)
    local = int(os.environ.get("LOCAL_WORLD_SIZE", os.environ.get("WORLD_SIZE", "1")))
    torch.set_num_threads(max(1, (os.cpu_count() or 1) // local))  # the ranks of a machine share its cores
    return True


def _on() -> bool:
    import torch.distributed as dist
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank() -> int:
    import torch.distributed as dist
    return dist.get_rank() if _on() else 0


def world_size() -> int:
    import torch.distributed as dist
    return dist.get_world_size() if _on() else 1


def is_main() -> bool:
    return rank() == 0


def agree(value):
    """Rank 0's `value` on every rank (any picklable object)."""
    if not _on():
        return value
    import torch.distributed as dist
    box = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def barrier() -> None:
    if _on():
        import torch.distributed as dist
        dist.barrier()


@contextmanager
def main_first():
    """Rank 0 runs the block first (e.g. filling a cache), the others after it is done."""
    if not is_main():
        barrier()
    try:
        yield
    finally:
        if is_main():
            barrier()


def weights_digest(module: torch.nn.Module) -> str:
    """SHA-256 (16 hex digits) of every parameter and buffer, in state_dict order."""
    h = hashlib.sha256()
    for k, v in module.state_dict().items():
        h.update(k.encode())
        h.update(v.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


def check_agreement(module: torch.nn.Module) -> list[str]:
    """Every rank's weights digest (gathered); RuntimeError when the ranks hold different weights."""
    digest = weights_digest(module)
    if not _on():
        return [digest]
    import torch.distributed as dist
    out: list = [None] * dist.get_world_size()
    dist.all_gather_object(out, digest)
    if len(set(out)) > 1:
        raise RuntimeError(f"the ranks trained different weights: {out}")
    return out


def shutdown() -> None:
    """Leave the process group (no-op when none): a rank that exits with gloo's worker threads still alive
    aborts at interpreter teardown ("terminate called without an active exception", pytorch/pytorch#190489)."""
    import torch.distributed as dist
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
