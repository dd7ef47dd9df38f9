"""The agent inside a VmSandbox guest: PID 1 after the init script, it runs
the steps the host asks for, one at a time, over a virtio-serial port.

This file is copied into the guest's initramfs and run there by the host's
own python3 (from the read-only /usr share) with only the standard library;
the host never imports it. The protocol, host to guest: a 4-byte big-endian
length and a dict in :mod:`marshal` form (``{"op": "run", ...}`` or ``{"op":
"end", "why": "timeout"}``; the host is trusted, and marshal is built into
the interpreter: importing json and re costs an emulated guest a third of a
second at boot). Guest to host, frames of one kind byte, a 4-byte big-endian
length and the payload: ``R`` ready, ``O`` step output, ``X`` the step's end
(JSON, which the host parses as untrusted). The step never writes to the
port itself (it runs as an unprivileged uid and the port is root's 0600
device): its output reaches the host only inside ``O`` frames, so whatever
it prints cannot pass for an ``X`` frame.
"""

import marshal
import os
import select
import signal
import stat
import sys
import time

CGROUP = "/sys/fs/cgroup"
CHUNK = 65536


def find_port(name):
    base = "/sys/class/virtio-ports"
    for entry in os.listdir(base):
        try:
            with open(os.path.join(base, entry, "name")) as fh:
                if fh.read().strip() == name:
                    return "/dev/" + entry
        except OSError:
            continue
    raise SystemExit("agent: no virtio port named " + name)


class Port:
    def __init__(self, path):
        self.fd = os.open(path, os.O_RDWR)
        self.buffer = b""

    def send(self, kind, payload):
        data = kind + len(payload).to_bytes(4, "big") + payload
        while data:
            written = os.write(self.fd, data)
            data = data[written:]

    def requests(self):
        """Whole requests read so far (call when the port is readable)."""
        chunk = os.read(self.fd, CHUNK)
        if not chunk:
            time.sleep(0.05)  # the host end is not connected: nothing to read
            return []
        self.buffer += chunk
        found = []
        while len(self.buffer) >= 4:
            size = int.from_bytes(self.buffer[:4], "big")
            if len(self.buffer) < 4 + size:
                break
            found.append(marshal.loads(self.buffer[4 : 4 + size]))
            self.buffer = self.buffer[4 + size :]
        return found


def to_json(value):
    """JSON for the few values the agent reports: None, bools, ints, strings, dicts."""
    if value is None:
        return "null"
    if value is True or value is False:
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, dict):
        return "{" + ", ".join(to_json(str(k)) + ": " + to_json(v) for k, v in value.items()) + "}"
    text = str(value)
    out = []
    for ch in text:
        if ch in '\\"' or ord(ch) < 0x20 or ord(ch) > 0x7E:
            out.append(f"\\u{ord(ch):04x}" if ord(ch) <= 0xFFFF else "?")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def ignore(fn, *args, errors=(OSError,)):
    try:
        return fn(*args)
    except errors:
        return None


# The cgroup files are read and written with os calls, not open(): a file
# object costs an emulated CPU a fraction of a millisecond, several a step.
def write(path, value):
    fd = os.open(path, os.O_WRONLY)
    try:
        os.write(fd, value.encode())
    finally:
        os.close(fd)


def read(path):
    fd = os.open(path, os.O_RDONLY)
    try:
        chunks = []
        while chunk := os.read(fd, CHUNK):
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


def read_counts(path):
    counts = {}
    try:
        for line in read(path).splitlines():
            key, _, value = line.partition(b" ")
            counts[key.decode()] = int(value)
    except (OSError, ValueError):
        pass
    return counts


def cgroup_pids(group):
    try:
        return [int(p) for p in read(os.path.join(group, "cgroup.procs")).split()]
    except OSError:
        return []


def signal_group(group, sig):
    for pid in cgroup_pids(group):
        ignore(os.kill, pid, sig)


def kill_group(group):
    try:
        write(os.path.join(group, "cgroup.kill"), "1")
    except OSError:
        signal_group(group, signal.SIGKILL)


def reap(statuses):
    """Reap every ended child (PID 1 adopts the step's orphans)."""
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        statuses[pid] = status


def set_network(up):
    """The step's network: QEMU's user-mode network, up only for a step that has it."""
    if os.path.exists("/sys/class/net/eth0"):
        os.system("/sauci/bin/ip link set eth0 " + ("up" if up else "down"))
        if up:
            os.system("/sauci/bin/ip route replace default via 10.0.2.2 dev eth0")


READ_ONLY = ("/usr/", "/bin", "/sbin")  # the host's /usr and the initramfs's links to it


def find_program(name, env, uid, gid, cwd, found={}):  # noqa: B006 - the cache, for the guest's life
    """The file ``name`` runs, looked up on the step's PATH as execvp would for
    the step's uid in its working directory ``cwd`` (None: not found).
    Remembered when the PATH is all read-only (the host's /usr): each lookup
    over 9p is a round trip to the host, and they cannot change."""
    if "/" in name:
        return name
    folders = env.get("PATH", "/usr/bin:/bin").split(":")
    key = (name, tuple(folders), uid, gid)
    if key in found:
        return found[key]
    program = None
    for folder in folders:
        path = os.path.join(cwd, folder, name)  # an empty or relative folder: in cwd
        try:
            st = os.stat(path)
        except OSError:
            continue
        if stat.S_ISREG(st.st_mode) and runnable(st, uid, gid):
            program = path
            break
    if all(f.startswith(READ_ONLY) for f in folders):
        found[key] = program
    return program


def runnable(st, uid, gid):
    """Whether ``uid:gid`` (with no other groups) may execute the file ``st`` describes."""
    if st.st_uid == uid:
        return bool(st.st_mode & stat.S_IXUSR)
    if st.st_gid == gid:
        return bool(st.st_mode & stat.S_IXGRP)
    return bool(st.st_mode & stat.S_IXOTH)


def start(request, procs_fd, null_fd, out_w):
    """Fork the step. Everything it needs is ready before the fork: a forked
    copy of the interpreter pays a page copy for each object it touches, and
    under emulation each costs; so the child only makes system calls."""
    argv, env = request["argv"], request["env"]
    uid, gid, cwd = request["uid"], request["gid"], request["cwd"]
    program = find_program(argv[0], env, uid, gid, cwd)
    pid = os.fork()
    if pid == 0:  # the step: its own session, cgroup, uid; output to the pipe
        try:
            os.setsid()
            os.write(procs_fd, b"0")  # into the step's cgroup before anything runs
            os.dup2(null_fd, 0)
            os.dup2(out_w, 1)
            os.dup2(out_w, 2)
            os.closerange(3, 1 << 16)
            os.setgroups([])
            os.setgid(gid)
            os.setuid(uid)
            os.chdir(cwd)
            if program is None:  # never a file of that name in the working directory
                raise FileNotFoundError(f"{argv[0]!r} is not on the PATH")
            os.execve(program, argv, env)
        except BaseException as exc:  # the child must never return
            try:
                os.write(2, f"sauci: cannot start the step: {exc}\n".encode())
            finally:
                os._exit(127)
    return pid


def new_group(number):
    """A fresh cgroup for step ``number``: no charges, no limits yet."""
    group = os.path.join(CGROUP, f"step{number}")
    os.mkdir(group)
    return group


def run(port, request, group, wakeup, null_fd):
    """Run one step in ``group`` (made for it, empty) and send its ``X`` frame."""
    if request.get("memory"):
        write(os.path.join(group, "memory.max"), str(request["memory"]))
        write(os.path.join(group, "memory.swap.max"), "0")
    if request.get("processes"):
        write(os.path.join(group, "pids.max"), str(request["processes"]))
    if request.get("cpu"):
        write(os.path.join(group, "cpu.max"), f"{max(1000, int(request['cpu'] * 100000))} 100000")
    set_network(bool(request.get("network")))
    out_r, out_w = os.pipe()
    procs_fd = os.open(os.path.join(group, "cgroup.procs"), os.O_WRONLY)
    try:
        pid = start(request, procs_fd, null_fd, out_w)
    finally:
        os.close(procs_fd)
        os.close(out_w)
    grace = float(request.get("grace", 5))
    ended_by = None
    kill_at = None
    statuses = {}
    status = None
    reading = True
    while reading or status is None:
        now = time.monotonic()
        if ended_by is not None and kill_at is None:
            signal_group(group, signal.SIGTERM)
            kill_at = now + grace
        if kill_at is not None and now >= kill_at:
            kill_group(group)
            kill_at = float("inf")
        limits = [0.2]
        if kill_at is not None and kill_at != float("inf"):
            limits.append(kill_at - now)
        wait = max(0.0, min(limits))
        watched = [port.fd, wakeup] + ([out_r] if reading else [])
        ready, _, _ = select.select(watched, [], [], wait)
        if wakeup in ready:  # a child ended (SIGCHLD)
            ignore(os.read, wakeup, 4096)
        if out_r in ready:
            data = os.read(out_r, CHUNK)
            if data:
                port.send(b"O", data)
            else:
                reading = False
        if port.fd in ready:
            for message in port.requests():
                # The host keeps the step's clock: the guest's may run fast or slow.
                if message.get("op") == "end" and ended_by is None:
                    ended_by = message.get("why") or "cancelled"
        reap(statuses)
        if status is None and pid in statuses:
            status = statuses.pop(pid)
            kill_group(group)  # what the step left behind ends with it
    while cgroup_pids(group):
        kill_group(group)
        time.sleep(0.01)
        reap(statuses)
    os.close(out_r)
    memory = read_counts(os.path.join(group, "memory.events"))
    pids = read_counts(os.path.join(group, "pids.events"))
    result = {
        "exit_code": os.WEXITSTATUS(status) if os.WIFEXITED(status) else None,
        "signal": os.WTERMSIG(status) if os.WIFSIGNALED(status) else None,
        "ended_by": ended_by,
        "oom_kills": memory.get("oom_kill", 0),
        "pids_max": pids.get("max", 0),
    }
    port.send(b"X", to_json(result).encode())


def main():
    os.umask(0o022)  # the steps' umask (a forked step inherits it)
    null_fd = os.open("/dev/null", os.O_RDONLY)  # the steps' stdin
    write(os.path.join(CGROUP, "cgroup.subtree_control"), "+cpu +memory +pids")
    port = Port(find_port(sys.argv[1] if len(sys.argv) > 1 else "sauci"))
    # A child's end wakes the loop at once, not at its next tick.
    wakeup_r, wakeup_w = os.pipe()
    os.set_blocking(wakeup_r, False)
    os.set_blocking(wakeup_w, False)
    signal.set_wakeup_fd(wakeup_w)
    signal.signal(signal.SIGCHLD, lambda signum, frame: None)
    # Python ignores SIGPIPE and SIGXFSZ, and an ignored signal stays ignored
    # across exec: the steps get the defaults (set here once, not in each
    # forked step). The agent is PID 1, which a default action never ends.
    for ignored in (signal.SIGPIPE, signal.SIGXFSZ):
        signal.signal(ignored, signal.SIG_DFL)
    with open("/proc/uptime") as fh:
        uptime = fh.read().split()[0]
    port.send(b"R", to_json({"uptime": uptime}).encode())
    number = 0
    group = None
    while True:
        ready, _, _ = select.select([port.fd, wakeup_r], [], [], 1.0)
        if wakeup_r in ready:
            ignore(os.read, wakeup_r, 4096)
        reap({})
        for request in port.requests():
            if request.get("op") == "run":
                number += 1
                try:
                    group = group or new_group(number)
                    run(port, request, group, wakeup_r, null_fd)
                except Exception as exc:  # report it, keep serving
                    port.send(b"X", to_json({"error": str(exc)}).encode())
                # The host has the answer: the rest is off the steps' path.
                # The step's cgroup goes (its charges with it) and the next
                # step's is made now, not when its request comes.
                set_network(False)
                if group is not None:
                    ignore(os.rmdir, group)
                group = ignore(new_group, number + 1)
            elif request.get("op") == "poweroff":
                os.sync()
                os.system("/sauci/bin/busybox poweroff -f")


if __name__ == "__main__":
    main()
