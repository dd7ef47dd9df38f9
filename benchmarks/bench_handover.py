"""What the hand-over of a workspace to the step's uid costs SauCI (issue 17).

    sudo python benchmarks/bench_handover.py [--builds 5] [--sauci-root PATH]

Runs, as root, under the namespace sandbox (steps as another host uid), a
five-step build whose first step makes a venv-sized tree in the workspace
(230 directories, 2,760 files, as a venv of pytest and its dependencies) and
whose four later steps run `true`, beside the same build whose first step
makes nothing (the bare baseline), in turns. Prints SauCI's own CPU time per
build (this process: the executor and the hand-overs; not the steps), the
medians of each, and what the tree adds. Each later step that walks the tree
again adds one walk (about 9-10 ms of CPU on this machine).
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

MAKE_TREE = (
    'python3 -c "import os\n'
    "for d in range(230):\n"
    "    p = f'.venv/lib/pkg{d}'; os.makedirs(p)\n"
    "    for f in range(12): open(f'{p}/m{f}.py', 'w').close()\"\n"
)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--builds", type=int, default=5, help="builds of each kind (in turns)")
    parser.add_argument(
        "--sauci-root",
        type=Path,
        default=Path(__file__).resolve().parents[1],
        help="the SauCI checkout to measure (default: this one)",
    )
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("run as root: only root hands the workspace to another uid", file=sys.stderr)
        return 2
    sys.path.insert(0, str(args.sauci_root))
    from sauci import Settings, run_pipeline
    from sauci.core.models import Pipeline, Step
    from sauci.sandbox.namespace import NamespaceSandbox

    def steps(first: str) -> Pipeline:
        later = [Step(name=f"s{i}", run="true", needs=(f"s{i - 1}",)) for i in range(2, 6)]
        return Pipeline(steps=[Step(name="s1", run=first), *later])

    area = Path(tempfile.mkdtemp(prefix="sauci-handover-", dir="/tmp"))
    area.chmod(0o711)
    sandbox = NamespaceSandbox(grace=0.5)
    cpu: dict[str, list[float]] = {"tree": [], "bare": []}
    try:
        for n in range(args.builds):
            for kind in ("bare", "tree") if n % 2 else ("tree", "bare"):
                ws = area / f"{kind}{n}"
                ws.mkdir()
                ws.chmod(0o711)
                before = resource.getrusage(resource.RUSAGE_SELF)
                outcome = run_pipeline(
                    steps(MAKE_TREE if kind == "tree" else "true"),
                    ws,
                    sandbox=sandbox,
                    settings=Settings(data_dir=area / "data"),
                    repo="handover",
                    ref="refs/heads/main",
                )
                after = resource.getrusage(resource.RUSAGE_SELF)
                if not outcome.ok:
                    print(f"build failed: {[(s.name, s.status.value) for s in outcome.steps]}")
                    return 1
                used = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
                cpu[kind].append(used * 1000)
    finally:
        sandbox.close()
        shutil.rmtree(area, ignore_errors=True)
    tree, bare = statistics.median(cpu["tree"]), statistics.median(cpu["bare"])
    print(
        f"sauci from {args.sauci_root}: SauCI's CPU per 5-step build, median of {args.builds}: "
        f"with a 2,990-entry tree {tree:.1f} ms, bare baseline (no tree) {bare:.1f} ms, "
        f"the tree adds {tree - bare:.1f} ms ({tree / bare:.2f}x); load {os.getloadavg()[0]:.1f}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
