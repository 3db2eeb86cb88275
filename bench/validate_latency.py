"""Benchmark: how long one `evaluate(spec)` takes, per bundled example (the admission webhook calls it inline).

Usage: python bench/validate_latency.py [--repeat N]
Prints a table of median / p99 / max milliseconds per plan, and writes bench/results/validate_latency.json.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import platform
import statistics
import time

import yaml

from moe_operator.api import MoEDeployment
from moe_operator.capacity.evaluate import evaluate

ROOT = pathlib.Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=200)
    args = ap.parse_args()
    paths = sorted(ROOT.glob("deploy/examples/*.yaml")) + sorted(ROOT.glob("deploy/examples/infeasible/*.yaml"))
    rows = []
    for path in paths:
        d = MoEDeployment.model_validate(yaml.safe_load(path.read_text()))
        evaluate(d.spec)  # warm the catalog cache, as a running webhook would be
        samples = []
        for _ in range(args.repeat):
            start = time.perf_counter()
            # parse + evaluate: what the webhook does with an admission request body
            evaluate(MoEDeployment.model_validate(yaml.safe_load(path.read_text())).spec)
            samples.append((time.perf_counter() - start) * 1e3)
        samples.sort()
        rows.append({"plan": str(path.relative_to(ROOT)), "medianMilliseconds": round(statistics.median(samples), 3),
                     "p99Milliseconds": round(samples[int(0.99 * (len(samples) - 1))], 3), "maxMilliseconds": round(samples[-1], 3)})
    width = max(len(r["plan"]) for r in rows)
    print(f"{'plan':<{width}}  median ms  p99 ms  max ms")
    for r in rows:
        print(f"{r['plan']:<{width}}  {r['medianMilliseconds']:9.2f}  {r['p99Milliseconds']:6.2f}  {r['maxMilliseconds']:6.2f}")
    out = ROOT / "bench" / "results" / "validate_latency.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
                               "python": platform.python_version(), "repeat": args.repeat, "plans": rows}, indent=2) + "\n")
    print(f"wrote {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
