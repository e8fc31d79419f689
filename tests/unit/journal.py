"""Kernel log records as journald keeps them, for the learn tests: made up (``record``), or
read back from the machine's /dev/kmsg (``kmsg_write``, ``kmsg_records``) and turned into the
record journald would store (``as_journal``, what journald's kmsg reader does)."""

from __future__ import annotations

import datetime
import json
import os
import time
import uuid

BOOT_ID = "0b5e7c1d2a3f4e5d6c7b8a9f0e1d2c3b"


def _micros(when: str) -> int:
    stamp = datetime.datetime.fromisoformat(when.replace("Z", "+00:00"))
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=datetime.timezone.utc)
    return int(stamp.timestamp() * 1_000_000)


def record(message: str, when: str = "2026-12-02T10:00:01Z", facility: int | None = 0, transport: str = "kernel",
           mono: int | None = None, boot: str = BOOT_ID, as_text: bool = True) -> str | dict:
    """One record of ``journalctl -k -o json``: a kernel line (``facility`` 0) unless told otherwise.
    ``mono`` is the kernel's own stamp of the line (the same in every copy of it); a fresh one
    when not given."""
    out = {"__REALTIME_TIMESTAMP": str(_micros(when)), "_BOOT_ID": boot, "_TRANSPORT": transport, "PRIORITY": "4",
           "_SOURCE_MONOTONIC_TIMESTAMP": str(mono if mono is not None else uuid.uuid4().int % 10**12), "MESSAGE": message}
    if facility is not None:
        out["SYSLOG_FACILITY"] = str(facility)
    if facility == 0:
        out["SYSLOG_IDENTIFIER"] = "kernel"
    return json.dumps(out) if as_text else out


def kmsg_write(text: str, level: int = 4) -> None:
    """Write a line to the kernel log as root in user space does (``<level>text``)."""
    fd = os.open("/dev/kmsg", os.O_WRONLY)
    try:
        os.write(fd, f"<{level}>{text}\n".encode())
    finally:
        os.close(fd)


def kmsg_records(marker: str, wait: float = 0.0) -> list[tuple[int, int, int, str]]:
    """Every record of the kernel log whose text holds ``marker``: ``(PRI, seq, usec, text)``
    from /dev/kmsg's ``PRI,seq,usec,flags;text`` (PRI = facility * 8 + level)."""
    deadline = time.monotonic() + wait
    while True:
        found = []
        fd = os.open("/dev/kmsg", os.O_RDONLY | os.O_NONBLOCK)
        try:
            while True:
                try:
                    raw = os.read(fd, 8192)
                except BlockingIOError:
                    break
                except BrokenPipeError:  # overwritten while reading: go on with the next
                    continue
                head, _sep, rest = raw.decode("utf-8", "replace").partition(";")
                text = rest.split("\n", 1)[0]
                if marker in text:
                    pri, seq, usec = (int(part) for part in head.split(",")[:3])
                    found.append((pri, seq, usec, text))
        finally:
            os.close(fd)
        if found or time.monotonic() >= deadline:
            return found
        time.sleep(0.1)


def as_journal(kmsg: tuple[int, int, int, str], as_text: bool = True) -> str | dict:
    """The record journald stores for a /dev/kmsg record (systemd's dev_kmsg_record): transport
    kernel, the priority's level and facility, the kernel's stamp, the text as MESSAGE."""
    pri, _seq, usec, text = kmsg
    with open("/proc/sys/kernel/random/boot_id", encoding="ascii") as handle:
        boot = handle.read().strip().replace("-", "")
    out = {"__REALTIME_TIMESTAMP": str(int(time.time() * 1_000_000)), "_BOOT_ID": boot, "_TRANSPORT": "kernel",
           "_SOURCE_MONOTONIC_TIMESTAMP": str(usec), "PRIORITY": str(pri & 7), "SYSLOG_FACILITY": str(pri >> 3), "MESSAGE": text}
    if pri >> 3 == 0:
        out["SYSLOG_IDENTIFIER"] = "kernel"
    return json.dumps(out) if as_text else out
