"""Run a command under the seccomp filters a systemd unit file asks for, without systemd.

    python -m tests.unit.unit_sandbox contrib/sdn-overlay.service -- CMD ARGS...

systemd (252) turns `SystemCallFilter=` (allow-list, then `~` removals), `SystemCallErrorNumber=`
and `MemoryDenyWriteExecute=yes` into seccomp filters installed just before it execs the service;
this does the same through libseccomp (ctypes, Debian's libseccomp2), so a test can check that
the controller lives with the unit's hardening on a machine where systemd is not PID 1. Groups
(`@system-service`) are expanded by `systemd-analyze syscall-filter`, systemd's own tables.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import mmap
import os
import re
import subprocess
import sys
from pathlib import Path

ACT_ALLOW = 0x7FFF0000
ACT_KILL_PROCESS = 0x80000000
CMP_MASKED_EQ = 7
SHM_EXEC = 0o100000


def _act_errno(number: int) -> int:
    return 0x00050000 | (number & 0xFFFF)


class _ArgCmp(ctypes.Structure):
    _fields_ = [("arg", ctypes.c_uint), ("op", ctypes.c_int), ("datum_a", ctypes.c_uint64),
                ("datum_b", ctypes.c_uint64)]


def unit_settings(unit: Path) -> dict[str, list[str]]:
    """The [Service] settings of a unit file, every assignment of a key in order."""
    out: dict[str, list[str]] = {}
    section = None
    for raw in unit.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            section = line
        elif section == "[Service]" and "=" in line:
            key, value = line.split("=", 1)
            out.setdefault(key.strip(), []).append(value.strip())
    return out


def syscall_groups() -> dict[str, list[str]]:
    """systemd's syscall groups: name -> members (calls and nested groups)."""
    text = subprocess.run(["systemd-analyze", "syscall-filter"], capture_output=True, text=True, check=True).stdout
    groups: dict[str, list[str]] = {}
    current = None
    for line in text.splitlines():
        if re.match(r"^@[\w-]+$", line.strip()) and not line.startswith(" "):
            current = groups.setdefault(line.strip(), [])
        elif current is not None and line.startswith("    ") and not line.strip().startswith("#"):
            current.append(line.strip())
    return groups


def expand(names: list[str], groups: dict[str, list[str]]) -> set[str]:
    out: set[str] = set()
    for name in names:
        out |= expand(groups[name], groups) if name.startswith("@") else {name}
    return out


def allowed_calls(filters: list[str], groups: dict[str, list[str]]) -> set[str]:
    """SystemCallFilter= lines as systemd reads them: an allow-list, then `~` lines remove from it."""
    allowed: set[str] = set()
    for value in filters:
        deny = value.startswith("~")
        calls = expand(value.lstrip("~").split(), groups)
        allowed = allowed - calls if deny else allowed | calls
    return allowed


def _lib() -> ctypes.CDLL:
    path = ctypes.util.find_library("seccomp") or "libseccomp.so.2"
    lib = ctypes.CDLL(path, use_errno=True)
    lib.seccomp_init.restype = ctypes.c_void_p
    lib.seccomp_init.argtypes = [ctypes.c_uint32]
    lib.seccomp_syscall_resolve_name.argtypes = [ctypes.c_char_p]
    lib.seccomp_rule_add_array.argtypes = [ctypes.c_void_p, ctypes.c_uint32, ctypes.c_int, ctypes.c_uint,
                                           ctypes.POINTER(_ArgCmp)]
    lib.seccomp_load.argtypes = [ctypes.c_void_p]
    lib.seccomp_release.argtypes = [ctypes.c_void_p]
    return lib


def _load(lib: ctypes.CDLL, default: int, rules: list[tuple[int, str, list[tuple[int, int, int]]]]) -> None:
    ctx = lib.seccomp_init(default)
    if not ctx:
        raise OSError("seccomp_init failed")
    try:
        for action, name, cmps in rules:
            nr = lib.seccomp_syscall_resolve_name(name.encode())
            if nr < 0:
                continue  # not a call of this architecture (systemd skips those too)
            arr = (_ArgCmp * max(1, len(cmps)))(*[_ArgCmp(arg, CMP_MASKED_EQ, mask, value)
                                                  for arg, mask, value in cmps])
            rc = lib.seccomp_rule_add_array(ctx, action, nr, len(cmps), arr)
            if rc < 0:
                raise OSError(-rc, f"seccomp_rule_add {name}")
        rc = lib.seccomp_load(ctx)
        if rc < 0:
            raise OSError(-rc, "seccomp_load")
    finally:
        lib.seccomp_release(ctx)


def apply(unit: Path) -> None:
    """Install the unit's syscall filter and W^X filter on this process (inherited across exec)."""
    settings = unit_settings(unit)
    lib = _lib()
    number = settings.get("SystemCallErrorNumber", [""])[-1]
    deny = _act_errno(getattr(errno, number)) if number else ACT_KILL_PROCESS
    if settings.get("MemoryDenyWriteExecute", ["no"])[-1] == "yes":
        # systemd's seccomp_memory_deny_write_execute(): no writable+executable mapping, no mprotect
        # or pkey_mprotect to executable, no executable shared memory.
        wx, x = mmap.PROT_WRITE | mmap.PROT_EXEC, mmap.PROT_EXEC
        eperm = _act_errno(errno.EPERM)
        _load(lib, ACT_ALLOW, [(eperm, "mmap", [(2, wx, wx)]), (eperm, "mprotect", [(2, x, x)]),
                               (eperm, "pkey_mprotect", [(2, x, x)]), (eperm, "shmat", [(2, SHM_EXEC, SHM_EXEC)])])
    # last: loading a filter needs calls the allow-list may leave out
    if settings.get("SystemCallFilter"):
        calls = allowed_calls(settings["SystemCallFilter"], syscall_groups())
        _load(lib, deny, [(ACT_ALLOW, name, []) for name in sorted(calls)])


def main(argv: list[str]) -> None:
    if len(argv) < 3 or argv[1] != "--":
        sys.exit("usage: python -m tests.unit.unit_sandbox UNIT -- CMD ARGS...")
    apply(Path(argv[0]))
    os.execvp(argv[2], argv[2:])


if __name__ == "__main__":
    main(sys.argv[1:])
