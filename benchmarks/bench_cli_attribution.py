"""Where the instructions of `import sauci, sauci.cli` (or of a one-step `sauci
run`) go, by module and by kind of work: each module's own body (nested imports
counted to themselves), the attrs classes it builds, its Enum, Protocol and
NamedTuple classes, dataclasses, the patterns `re` compiles (cache misses
only) and the unmarshalling of its `.pyc`.

    python benchmarks/bench_cli_attribution.py [--run] [--pre MODULES] [--top N]

Counted by callgrind (load-independent, like bench_cli_instructions.py): a
small C helper (built here with gcc from valgrind's callgrind.h) dumps the
counters at every event, and the child records which (module, kind) each
interval between two dumps belongs to. The modules named by ``--pre`` are
imported before counting starts (default: the libraries a run uses, so the
count is SauCI's own; ``--pre attrs`` counts the standard library and PyYAML
too; the probe's own imports, argparse, subprocess and tempfile among them,
are never counted). About 30 s; needs valgrind, its headers and gcc. Each event costs about
4,000 instructions of bookkeeping, printed as "overhead".
"""

from __future__ import annotations

import argparse
import collections
import compileall
import contextlib
import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from bench_cli_instructions import LIBRARIES

HERE = Path(__file__).resolve().parents[1]
HELPER = "#include <valgrind/callgrind.h>\nvoid dump(void) { CALLGRIND_DUMP_STATS; }\n"
# The probe needs these itself, so they are always imported first.
ALWAYS = "abc, collections, ctypes, dataclasses, enum, json, re, typing, attrs"


def child(out: str, helper: str, run: bool) -> None:
    """Runs under callgrind: hooks the events, then imports SauCI (or runs it)."""
    import _frozen_importlib as bootstrap
    import _frozen_importlib_external as external
    import abc
    import ctypes
    import dataclasses
    import enum
    import typing

    import attr._next_gen as next_gen

    dump = ctypes.CDLL(helper).dump
    intervals: list[tuple[str, str, str]] = []  # the frame each dump closes
    stack = [("<setup>", "setup", "")]

    def event() -> None:
        intervals.append(stack[-1])
        dump()

    def framed(kind: str, label: Any, call: Any, *args: Any, **kwargs: Any) -> Any:
        event()
        stack.append((stack[-1][0] if kind != "module" else label, kind, str(label)[:40]))
        try:
            return call(*args, **kwargs)
        finally:
            event()
            stack.pop()

    load, unmarshal, attrs_ = bootstrap._load_unlocked, external._compile_bytecode, next_gen.attrs
    bootstrap._load_unlocked = lambda spec: framed("module", spec.name, load, spec)
    external._compile_bytecode = lambda *a, **k: framed("unmarshal", "", unmarshal, *a, **k)

    def attrs_hook(*args: Any, **kwargs: Any) -> Any:
        cls = kwargs.get("maybe_cls")
        if cls is None:
            return attrs_(*args, **kwargs)
        return framed("attrs", cls.__qualname__, attrs_, *args, **kwargs)

    next_gen.attrs = attrs_hook

    def on_new(meta: type, kind: Any) -> None:
        new = meta.__dict__["__new__"]

        def hook(*args: Any, **kwargs: Any) -> Any:
            name = kind(args) if callable(kind) else kind
            return framed(name, args[1], new, *args, **kwargs)

        meta.__new__ = staticmethod(hook)  # type: ignore[assignment]

    def abc_kind(args: tuple[Any, ...]) -> str:
        bases = args[2]
        return "Protocol" if any(getattr(b, "_is_protocol", False) for b in bases) else "ABC"

    on_new(enum.EnumType, "enum")
    on_new(abc.ABCMeta, abc_kind)
    on_new(typing.NamedTupleMeta, "NamedTuple")  # type: ignore[attr-defined]
    on_new(typing._TypedDictMeta, "TypedDict")  # type: ignore[attr-defined]
    process = dataclasses._process_class  # type: ignore[attr-defined]
    dataclasses._process_class = lambda cls, *a: framed(  # type: ignore[attr-defined]
        "dataclass", cls.__qualname__, process, cls, *a
    )
    compile_re = re._compile  # type: ignore[attr-defined]

    def re_hook(pattern: Any, flags: Any) -> Any:
        key = (type(pattern), pattern, flags.value if isinstance(flags, re.RegexFlag) else flags)
        if key in re._cache:  # type: ignore[attr-defined]
            return compile_re(pattern, flags)
        return framed("re", pattern, compile_re, pattern, flags)

    re._compile = re_hook  # type: ignore[attr-defined]
    for _ in range(100):  # calibration: empty frames
        framed("calibration", "", lambda: None)
    event()
    stack[0] = ("<top>", "self", "")
    if run:
        import runpy

        sys.argv = ["sauci", "run", "--quiet"]
        with contextlib.suppress(SystemExit):  # the command's exit code
            runpy.run_module("sauci", run_name="__main__", alter_sys=True)
    else:
        import sauci
        import sauci.cli  # noqa: F401
    event()
    Path(out, "intervals.json").write_text(json.dumps(intervals))


def report(out: Path, top: int) -> None:
    intervals = [tuple(i) for i in json.loads((out / "intervals.json").read_text())]
    costs = []
    for n in sorted(int(p.name.rsplit(".", 1)[1]) for p in out.glob("cg.*.*")):
        text = next(out.glob(f"cg.*.{n}")).read_text()
        found = re.search(r"^(?:totals|summary):\s+(\d+)", text, re.MULTILINE)
        costs.append(int(found.group(1)) if found else 0)
    pairs = list(zip(intervals, costs, strict=False))
    calibration = [c for (m, kind, _), c in pairs if kind == "calibration"]
    per_event = sum(calibration) / max(1, len(calibration))
    counted = [(frame, c) for frame, c in pairs if frame[0] not in ("<setup>",)]
    counted = [(f, c) for f, c in counted if f[1] != "calibration"]
    total = sum(c for _, c in counted)
    print(
        f"{total / 1e6:.1f} M instructions counted in {len(counted)} intervals "
        f"(of them about {len(counted) * per_event / 1e6:.1f} M this probe's bookkeeping)"
    )
    kinds: collections.Counter[str] = collections.Counter()
    modules: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
    labels: collections.Counter[tuple[str, str, str]] = collections.Counter()
    for (module, kind, label), c in counted:
        kinds[kind] += c
        modules[module][kind] += c
        if kind not in ("module", "unmarshal", "self"):
            labels[(kind, module, label)] += c
    print("\nby kind (each exclusive of what it imports):")
    for kind, c in kinds.most_common():
        print(f"  {kind:<12} {c / 1e6:8.1f} M")
    sauci = sum(sum(k.values()) for m, k in modules.items() if m.startswith("sauci"))
    print(f"\nSauCI's modules {sauci / 1e6:.1f} M, the others {(total - sauci) / 1e6:.1f} M")
    print(f"\nby module, largest {top} (module: its body; then what it built):")
    ranked = sorted(modules.items(), key=lambda item: -sum(item[1].values()))
    for module, k in ranked[:top]:
        parts = ", ".join(f"{n} {v / 1e6:.1f}" for n, v in k.most_common() if v >= 50_000)
        print(f"  {module:<42} {sum(k.values()) / 1e6:7.2f} M  [{parts}]")
    print(f"\nlargest classes and patterns, {top}:")
    for (kind, module, label), c in labels.most_common(top):
        print(f"  {kind:<10} {module:<40} {label:<40} {c / 1e6:6.2f} M")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", action="store_true", help="a one-step `sauci run` instead")
    parser.add_argument("--pre", default=LIBRARIES, help="modules imported before counting")
    parser.add_argument("--top", type=int, default=40)
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        exec(f"import {ALWAYS}, {args.pre}")  # before the hooks: not counted
        child(args.child[0], args.child[1], args.run)
        return
    from bench_cli_pairs import one_step_repo

    compileall.compile_dir(str(HERE / "sauci"), quiet=1)
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        (tmp / "helper.c").write_text(HELPER)
        helper = tmp / "helper.so"
        subprocess.run(
            ["gcc", "-O2", "-shared", "-fPIC", "-o", helper, tmp / "helper.c"], check=True
        )
        repo = one_step_repo(tmp / "repo")
        env = {**os.environ, "PYTHONPATH": str(HERE), "SAUCI_DATA_DIR": str(tmp / "data")}
        env["PYTHONHASHSEED"] = "0"
        command = [sys.executable, "-m", "sauci", "run", "--quiet"]
        subprocess.run(command, cwd=repo, env=env, stdout=subprocess.DEVNULL, check=True)
        out = tmp / "out"
        out.mkdir()
        valgrind = ["valgrind", "--tool=callgrind", "--dump-instr=no", "--dump-line=no"]
        probe = [sys.executable, __file__, "--pre", args.pre, "--child", str(out), str(helper)]
        subprocess.run(
            [*valgrind, f"--callgrind-out-file={out}/cg.%p", *probe, *(["--run"] * args.run)],
            cwd=repo,
            env=env,
            capture_output=True,
            check=True,
        )
        report(out, args.top)


if __name__ == "__main__":
    main()
