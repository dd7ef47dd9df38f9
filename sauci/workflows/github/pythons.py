"""Python interpreters on this machine for actions/setup-python, and virtual environments of them.

Standard library only: the job driver (jobdriver.py) carries this file's
source into the sandbox, and the plan uses it to skip a matrix entry whose
Python the machine lacks before the build starts.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess

__all__ = ["activate_python", "find_python", "make_venv"]

_VERSION = re.compile(
    r"(?P<pypy>pypy-?)?(?P<major>\d+)(?:\.(?P<minor>\d+|x))?(?:\.(?P<patch>\d+|x))?(?P<t>t)?(?P<dev>-dev)?\Z"
)


def find_python(spec: str, path: str | None = None) -> str | None:
    """The interpreter on ``path`` (default $PATH) that setup-python's ``spec`` names, or None.

    Accepted: ``3``, ``3.x``, ``3.12``, ``3.12.4`` (patch ignored: the
    machine's 3.12 is used), ``3.13-dev``, ``3.13t`` (free-threaded),
    ``pypy-3.10``/``pypy3.10``, and ranges such as ``>=3.9,<3.13`` (the newest
    that fits). A ``python3.X`` executable or ``uv python find`` finds it.
    """
    spec = spec.strip()
    found = _interpreters(path)
    if any(c in spec for c in "<>=!~^ "):
        clauses = [c for c in re.split(r"[,\s]+", spec) if c]
        return _best(
            [
                (v, exe)
                for (kind, v, t), exe in found
                if kind == "cpython" and not t and all(_fits(v, c) for c in clauses)
            ]
        )
    m = _VERSION.match(spec)
    if m is None:
        return None
    kind = "pypy" if m["pypy"] else "cpython"
    major = int(m["major"])
    minor = m["minor"]
    want_t = bool(m["t"])
    if minor in (None, "x"):
        return _best(
            [(v, exe) for (k, v, t), exe in found if k == kind and v[0] == major and t == want_t]
        )
    exe = _best(
        [(v, e) for (k, v, t), e in found if (k, v, t) == (kind, (major, int(minor)), want_t)]
    )
    uv = shutil.which("uv", path=path)
    if exe is None and kind == "cpython" and uv:
        try:
            done = subprocess.run(
                [uv, "python", "find", "--no-project", f"{major}.{minor}{'t' if want_t else ''}"],
                capture_output=True,
                text=True,
                timeout=30,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired):
            return None
        if done.returncode == 0 and done.stdout.strip():
            exe = done.stdout.strip()
    return exe


def _best(candidates: list[tuple[tuple[int, int], str]]) -> str | None:
    """The newest candidate that starts (checked in that order, so few are started)."""
    for _version, exe in sorted(candidates, key=lambda c: c[0], reverse=True):
        if _works(exe):
            return exe
    return None


def _fits(version: tuple[int, int], clause: str) -> bool:
    m = re.match(r"(>=|<=|==|!=|>|<|~=|\^)?\s*(\d+)(?:\.(\d+))?", clause)
    if m is None:
        return False
    op = m[1] or "=="
    want = (int(m[2]), int(m[3] or 0))
    return {
        ">=": version >= want,
        "<=": version <= want,
        ">": version > want,
        "<": version < want,
        "==": version == want,
        "!=": version != want,
        "~=": version >= want and version[0] == want[0],
        "^": version >= want and version[0] == want[0],
    }[op]


def _interpreters(path: str | None) -> list[tuple[tuple[str, tuple[int, int], bool], str]]:
    found: list[tuple[tuple[str, tuple[int, int], bool], str]] = []
    pattern = re.compile(r"(python|pypy)(\d+)\.(\d+)(t?)\Z")
    for folder in (path if path is not None else os.environ.get("PATH", "")).split(os.pathsep):
        try:
            names = sorted(os.listdir(folder or "."))
        except OSError:
            continue
        for name in names:
            m = pattern.match(name)
            full = os.path.join(folder, name)
            if m and os.access(full, os.X_OK):
                key = ("pypy" if m[1] == "pypy" else "cpython", (int(m[2]), int(m[3])), bool(m[4]))
                found.append((key, full))
    return found


_WORKS: dict[str, bool] = {}


def _works(exe: str) -> bool:
    """Whether ``exe`` starts (a pyenv shim for a version not selected does not)."""
    if exe not in _WORKS:
        try:
            done = subprocess.run([exe, "-c", ""], capture_output=True, timeout=20, check=False)
            _WORKS[exe] = done.returncode == 0
        except (OSError, subprocess.TimeoutExpired):
            _WORKS[exe] = False
    return _WORKS[exe]


def make_venv(exe: str, venv: str, env: dict[str, str]) -> int:
    """A virtual environment of ``exe`` at ``venv`` with pip, in a fraction of a second.

    ``python -m venv`` spends seconds installing pip from its bundled wheel;
    when the interpreter has pip already, the environment is made without it
    and sees only that pip (a ``.pth`` file naming a directory that holds a
    link to it, never the interpreter's other packages), with ``pip`` and
    ``pip3`` scripts. ``pip install -U pip`` then installs its own.
    """
    found = subprocess.run(
        [exe, "-c", "import os, pip; print(os.path.dirname(os.path.dirname(pip.__file__)))"],
        capture_output=True,
        text=True,
        check=False,
        env=env,
    )
    fast = found.returncode == 0 and found.stdout.strip()
    argv = [exe, "-m", "venv", *(["--without-pip"] if fast else []), venv]
    done = subprocess.run(argv, env=env, check=False)
    if done.returncode != 0:
        print(f"sauci: '{' '.join(argv)}' failed with exit code {done.returncode}", flush=True)
        return done.returncode
    if fast:
        shelf = os.path.join(venv, "sauci-pip")
        os.makedirs(shelf, exist_ok=True)
        os.symlink(os.path.join(found.stdout.strip(), "pip"), os.path.join(shelf, "pip"))
        purelib = subprocess.run(
            [
                os.path.join(venv, "bin", "python"),
                "-c",
                "import sysconfig; print(sysconfig.get_paths()['purelib'])",
            ],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        with open(os.path.join(purelib, "_sauci_pip.pth"), "w", encoding="utf-8") as fh:
            fh.write(shelf + "\n")
        for name in ("pip", "pip3"):
            script = os.path.join(venv, "bin", name)
            with open(script, "w", encoding="utf-8") as fh:
                fh.write(
                    f"#!{os.path.join(venv, 'bin', 'python')}\nimport sys\nfrom pip._internal.cli.main import main\nsys.exit(main())\n"
                )
            os.chmod(script, 0o755)
    return 0


def activate_python(spec: str, folder: str, env: dict[str, str], files: dict[str, str]) -> int:
    """What actions/setup-python does for the job driver: the interpreter ``spec`` names,
    in a virtual environment under ``folder``, first on PATH for the steps after it
    (through the step's ``GITHUB_PATH``/``GITHUB_ENV``/``GITHUB_OUTPUT`` ``files``)."""
    exe = find_python(spec, env["PATH"])
    if exe is None:
        print(f"sauci: no interpreter for python-version {spec!r} on this machine", flush=True)
        return 1
    venv = os.path.join(folder, "python-" + (re.sub(r"[^\w.-]+", "_", spec)[:40] or "_"))
    if not os.path.exists(os.path.join(venv, "pyvenv.cfg")):
        code = make_venv(exe, venv, env)
        if code != 0:
            return code
    bin_dir = os.path.join(venv, "bin")
    version = subprocess.run(
        [
            os.path.join(bin_dir, "python"),
            "-c",
            "import sys; print('%d.%d.%d' % sys.version_info[:3])",
        ],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    print(f"Python {version} from {exe}, in the virtual environment {venv}", flush=True)
    with open(files["path"], "a", encoding="utf-8") as fh:
        fh.write(bin_dir + "\n")
    with open(files["env"], "a", encoding="utf-8") as fh:
        fh.write(f"pythonLocation={venv}\nVIRTUAL_ENV={venv}\n")
    with open(files["output"], "a", encoding="utf-8") as fh:
        fh.write(f"python-version={version}\npython-path={os.path.join(bin_dir, 'python')}\n")
    return 0
