"""Draw the per-stage memory breakdown of every role against the GPU's capacity (matplotlib)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from ..capacity.report import CapacityReport  # noqa: E402
from ..capacity.types import GIB_BYTES  # noqa: E402

COMPONENTS = (("weights_bytes", "weights"), ("kv_cache_bytes", "KV cache"), ("activations_bytes", "activations"),
              ("communication_bytes", "communication"), ("runtime_bytes", "runtime"))


def plot_memory(report: CapacityReport, path: str) -> None:
    """Stacked bars, one per role and stage, of memory per GPU in GiB, with capacity and limit lines."""
    labels, stacks = [], {key: [] for key, _ in COMPONENTS}
    for name, role in report.roles.items():
        for s in role.stages:
            labels.append(f"{name}\nstage {s.index}")
            for key, _ in COMPONENTS:
                stacks[key].append(getattr(s.memory, key) / GIB_BYTES)
    fig, ax = plt.subplots(figsize=(max(6.0, 1.2 * len(labels) + 3), 5))
    bottom = [0.0] * len(labels)
    for key, label in COMPONENTS:
        ax.bar(labels, stacks[key], bottom=bottom, label=label)
        bottom = [b + v for b, v in zip(bottom, stacks[key])]
    ax.axhline(report.gpu_memory_bytes / GIB_BYTES, color="black", linestyle="-", label=f"{report.gpu} capacity")
    ax.axhline(report.memory_limit_bytes / GIB_BYTES, color="red", linestyle="--", label="plan limit")
    ax.set_ylabel("GiB per GPU")
    ax.set_title(f"{report.name}: memory per GPU by pipeline stage ({'feasible' if report.feasible else 'INFEASIBLE'})")
    ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize="small")
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
