"""How long `cutover preview --stack prod` takes in a fresh process (target: under 3 s).

Prints one JSON object, beside the floor measured in the same run: declaring the program
alone under mocks in a fresh process (`python -m cutover.preview.program`), which the preview must
also do before it can ask the policy pack anything.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TRIALS = 5


def timed(args: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(args, cwd=ROOT, capture_output=True)
    return time.perf_counter() - start


def main() -> None:
    preview = [
        timed([sys.executable, "-m", "cutover", "preview", "--stack", "prod"])
        for _ in range(TRIALS)
    ]
    declare = [
        timed([sys.executable, "-m", "cutover.preview.program", "--stack", "prod"])
        for _ in range(TRIALS)
    ]
    p, d = statistics.median(preview), statistics.median(declare)
    print(
        json.dumps(
            {
                "preview_seconds": round(p, 3),
                "declare_only_seconds": round(d, 3),
                "preview_over_declare_ratio": round(p / d, 2),
                "target_preview_seconds": 3.0,
                "trials": TRIALS,
            }
        )
    )


if __name__ == "__main__":
    main()
