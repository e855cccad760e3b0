"""The orchestrator against its anchors, as ratios: ``bench/orchestrator.py``, ``bench/baseline.py``
and ``bench/celery_anchor.py`` run one after the other, round after round, and each round's
figures are divided by each other. The machine's speed drifts by a fifth between minutes and by
half between days; a ratio of runs taken a minute apart drifts far less than either figure.

    .venv/bin/python bench/compare.py [--rounds 5] [--single 30] [--burst 200]

Prints each round and the medians: one-workflow p50 and burst tasks/s of the three, the
orchestrator's latency as a multiple of the bare pipeline's and of Celery's, and its throughput
as a multiple of Celery's. Without Celery installed (``pip install -e '.[anchors]'``) or a Redis
to reach, the Celery columns stay empty.
"""

from __future__ import annotations

import argparse
import re
import statistics
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
_P50 = re.compile(r"one workflow \(8 tasks\) end-to-end: p50 ([\d.]+) ms")
_TPS = re.compile(r"burst of \d+: (?:[\d.]+ workflows/s, )?([\d,]+) tasks/s")


def measure(script: str, single: int, burst: int) -> tuple[float, float] | None:
    """(p50 ms, tasks/s) of one run of a benchmark script, or None when it printed none."""
    out = subprocess.run(  # noqa: S603 - our own scripts
        [sys.executable, str(HERE / script), "--single", str(single), "--burst", str(burst), "--runs", "1"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout
    p50, tps = _P50.search(out), _TPS.search(out)
    if p50 is None or tps is None:
        return None
    return float(p50.group(1)), float(tps.group(1).replace(",", ""))


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--single", type=int, default=30)
    p.add_argument("--burst", type=int, default=200)
    args = p.parse_args()
    rows: list[dict[str, float]] = []
    print("round  taskloom p50 / tasks/s   bare p50 / tasks/s   celery p50 / tasks/s")
    for n in range(1, args.rounds + 1):
        ours = measure("orchestrator.py", args.single, args.burst)
        bare = measure("baseline.py", args.single, args.burst)
        celery = measure("celery_anchor.py", args.single, args.burst)
        if ours is None or bare is None:
            sys.exit(f"round {n}: a benchmark printed no figures; run it alone to see why")
        row = {"p50": ours[0], "tps": ours[1], "bare_p50": bare[0], "bare_tps": bare[1]}
        if celery is not None:
            row |= {"celery_p50": celery[0], "celery_tps": celery[1]}
        rows.append(row)
        cel = f"{celery[0]:7.1f} ms / {celery[1]:5.0f}" if celery else "      —"
        print(f"{n:5}  {ours[0]:7.1f} ms / {ours[1]:5.0f}     {bare[0]:6.1f} ms / {bare[1]:5.0f}   {cel}")

    def med(key: str) -> float:
        return statistics.median(r[key] for r in rows)

    def ratio(a: str, b: str) -> float:
        return statistics.median(r[a] / r[b] for r in rows)

    print(f"--- medians of {len(rows)} rounds ---")
    print(f"taskloom: p50 {med('p50'):.1f} ms, {med('tps'):.0f} tasks/s")
    print(f"bare pipeline: p50 {med('bare_p50'):.1f} ms, {med('bare_tps'):.0f} tasks/s")
    print(f"taskloom latency / bare pipeline's: {ratio('p50', 'bare_p50'):.2f}")
    if all("celery_p50" in r for r in rows):
        print(f"celery: p50 {med('celery_p50'):.1f} ms, {med('celery_tps'):.0f} tasks/s")
        print(f"taskloom latency / celery's: {ratio('p50', 'celery_p50'):.2f}")
        print(f"taskloom throughput / celery's: {ratio('tps', 'celery_tps'):.2f}")
        # the target, 15 ms where Celery took 23 ms, as a ratio: 0.65 of Celery's latency
        print("target: latency / celery's <= 0.65 (15 ms where Celery took 23 ms)")


if __name__ == "__main__":
    main()
