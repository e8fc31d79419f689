"""A small simulated Arista EOS command line over SSH, for testing the network_acl role's
apply and confirm sequence with the real arista.eos modules, cliconf and network_cli.

It is NOT EOS. On top of fake_ios.Device's SSH and state handling, it models what the EOS
sequence touches, the way Arista documents it: named ACLs (entries indented by three spaces
in the running configuration), ``ip``/``ipv6 access-group`` on interfaces (binding another
ACL in a direction replaces the one there), and configuration sessions: ``configure session
NAME`` works on a copy of the running configuration, ``end`` leaves it pending, ``commit``
makes it live at once, ``configure session NAME commit timer HH:MM:SS`` makes it live and
takes it back when the timer ends unless ``configure session NAME commit`` comes first. A
timer minute lasts ``minute`` seconds. ``show configuration sessions detail | json`` answers
in the ``sessions`` map form.
"""

from __future__ import annotations

import copy
import json
import re
import threading

from fake_ios import INVALID, Device

HOSTNAME = "sw1"


class EOSDevice(Device):
    def __init__(self, interfaces=("Ethernet1", "Ethernet2"), minute: float = 60.0):
        super().__init__(interfaces=interfaces, minute=minute)
        self.config_sessions: dict = {}  # name -> {"state": ..., "work": {"acls", "bound"} | None}

    # ------------------------------------------------------------------ sessions
    def _live(self, work: dict) -> None:
        self.acls, self.bound = work["acls"], work["bound"]

    def commit_timer(self, name: str, seconds: int) -> str:
        session = self.config_sessions.get(name)
        if session is None or session["state"] != "pending":
            return f"% Error: session {name} is not pending"
        if self.pending is not None:
            return "% Error: another session has a commit timer running"
        snapshot = self.state()
        self._live(session["work"])
        session.update(state="pendingCommitTimer", work=None)
        timer = threading.Timer(seconds * self.minute / 60, self.expire)
        timer.daemon = True
        self.pending = {"snapshot": snapshot, "timer": timer, "minutes": seconds / 60, "session": name}
        self.event(f"session {name} committed with a timer ({seconds} s)")
        for interface, groups in self.bound.items():
            for key, acl in groups.items():
                if snapshot["bound"].get(interface, {}).get(key) != acl:
                    self.event(f"binding {interface} {key[0]} {key[1]}: {snapshot['bound'].get(interface, {}).get(key)} -> {acl}"
                               + ("" if acl in self.acls else " (no such ACL)"))
            for key in snapshot["bound"].get(interface, {}):
                if key not in groups:
                    self.event(f"binding {interface} {key[0]} {key[1]}: {snapshot['bound'][interface][key]} -> None")
        timer.start()
        return ""

    def expire(self) -> None:
        with self.lock:
            if self.pending is None:
                return
            name = self.pending.get("session")
            super().expire()
            if name in self.config_sessions:
                self.config_sessions[name]["state"] = "completed"

    def session_commit(self, name: str) -> str:
        session = self.config_sessions.get(name)
        if self.pending is not None and self.pending.get("session") == name:
            self.pending["timer"].cancel()
            self.pending = None
            session["state"] = "completed"
            self.event(f"session {name} confirmed")
            return ""
        if session is None or session["state"] != "pending":
            return f"% Error: session {name} is not pending"
        before = self.state()
        self._live(session["work"])
        session.update(state="completed", work=None)
        self.event(f"session {name} committed")
        for interface, groups in before["bound"].items():
            for key, acl in groups.items():
                if self.bound[interface].get(key) != acl:
                    self.event(f"binding {interface} {key[0]} {key[1]}: {acl} -> {self.bound[interface].get(key)}")
        return ""

    # ------------------------------------------------------------------ show
    def running_config(self, state: dict | None = None) -> list:
        acls, bound = (state or {"acls": self.acls, "bound": self.bound}).values()
        lines = ["! Command: show running-config", f"hostname {HOSTNAME}", "!"]
        for interface, groups in bound.items():
            lines.append(f"interface {interface}")
            for (afi, direction), name in sorted(groups.items()):
                lines.append(f"   {'ip' if afi == 'ipv4' else 'ipv6'} access-group {name} {direction}")
            lines.append("!")
        for name, acl in acls.items():
            lines.append(("ip access-list " if acl["afi"] == "ipv4" else "ipv6 access-list ") + name)
            lines += acl["lines"]
            lines.append("!")
        return lines + ["end"]

    def show(self, command: str) -> str | None:
        if command == "show running-config":
            return "\n".join(self.running_config())
        if command == "show running-config | section access-list":
            out, inside = [], False
            for line in self.running_config():
                if not line.startswith(" "):
                    inside = "access-list" in line
                if inside:
                    out.append(line)
            return "\n".join(out)
        if command == "show version | json":
            return json.dumps({"version": "4.31.2F", "modelName": "vEOS-lab", "uptime": 86400.0})
        if command == "show hostname | json":
            return json.dumps({"hostname": HOSTNAME, "fqdn": HOSTNAME})
        if command == "show configuration sessions":
            return "\n".join(f"  {name}  {info['state']}" for name, info in self.config_sessions.items()) or "There are no configuration sessions"
        if command == "show configuration sessions detail | json":
            return json.dumps({"maxSavedSessions": 1, "maxOpenSessions": 5,
                               "sessions": {name: {"state": info["state"], "description": ""} for name, info in self.config_sessions.items()}})
        return None

    # ------------------------------------------------------------------ configure
    def configure_in(self, work: dict, mode: tuple, command: str) -> tuple:
        """One configuration command against ``work`` (the running configuration or a
        session's copy); ``mode`` is (kind, name) below the configuration level."""
        acls, bound = work["acls"], work["bound"]
        found = re.fullmatch(r"(no )?(ip|ipv6) access-list (\S+)", command)
        if found:
            afi, name = ("ipv4" if found.group(2) == "ip" else "ipv6"), found.group(3)
            if found.group(1):
                if name in acls:
                    users = [f"{i} {d}" for i, groups in bound.items() for (dummy, d), n in groups.items() if n == name]
                    del acls[name]
                    self.event(f"deleted {name}" + (f" WHILE BOUND ({', '.join(users)})" if users else ""))
                return ("config", None), ""
            acls.setdefault(name, {"afi": afi, "lines": []})
            return ("acl", name), ""
        found = re.fullmatch(r"interface (\S+)", command)
        if found:
            return (("if", found.group(1)), "") if found.group(1) in bound else (mode, INVALID)
        if mode[0] == "if":
            found = re.fullmatch(r"(no )?(ip|ipv6) access-group (\S+) (in|out)", command)
            if found:
                afi = "ipv4" if found.group(2) == "ip" else "ipv6"
                if found.group(1):
                    bound[mode[1]].pop((afi, found.group(4)), None)
                else:
                    bound[mode[1]][(afi, found.group(4))] = found.group(3)
                if work["bound"] is not self.bound:  # a session's copy: events come at its commit
                    return mode, ""
                self.event(f"binding {mode[1]} {afi} {found.group(4)}: -> {None if found.group(1) else found.group(3)}")
                return mode, ""
        if mode[0] == "acl" and mode[1] in acls:
            found = re.fullmatch(r"(\d+) (remark .*|permit .*|deny .*)", command)
            if found:
                if any(line.split()[0] == found.group(1) for line in acls[mode[1]]["lines"]):
                    return mode, "% Error: duplicate sequence number"
                acls[mode[1]]["lines"].append("   " + command)
                return mode, ""
        if command == "exit":
            return ("config", None), ""
        return mode, INVALID

    def _work_of_running(self) -> dict:
        return {"acls": self.acls, "bound": self.bound}

    def execute(self, mode: tuple, command: str) -> tuple:
        """``mode``: ("exec",), ("config", sub) on the running configuration, or
        ("session", NAME, sub) in a configuration session."""
        with self.lock:
            if mode[0] == "session":
                name, sub = mode[1], mode[2]
                session = self.config_sessions[name]
                if command == "end":
                    return ("exec",), ""
                if command == "commit":
                    return ("exec",), self.session_commit(name)
                if command == "abort":
                    session.update(state="aborted", work=None)
                    return ("exec",), ""
                if command == "show session-config diffs":
                    return mode, "--- system:/running-config\n+++ session:/" + name + "-session-config"
                if command == "rollback clean-config":
                    session["work"] = {"acls": {}, "bound": {i: {} for i in self.bound}}
                    return mode, ""
                sub, out = self.configure_in(session["work"], sub or ("config", None), command)
                return ("session", name, sub), out
            if mode[0] == "config":
                if command == "end":
                    return ("exec",), ""
                work = {"acls": self.acls, "bound": self.bound}
                sub, out = self.configure_in(work, mode[1] or ("config", None), command)
                return ("config", sub), out
            if command in ("terminal length 0", "terminal width 512"):
                return mode, ""
            if command in ("configure", "configure terminal"):
                return ("config", None), ""
            found = re.fullmatch(r"configure session (\S+)(?: (commit|abort)(?: timer (\d\d):(\d\d):(\d\d))?)?", command)
            if found:
                name, action = found.group(1), found.group(2)
                if action == "commit" and found.group(3):
                    seconds = int(found.group(3)) * 3600 + int(found.group(4)) * 60 + int(found.group(5))
                    return mode, self.commit_timer(name, seconds)
                if action == "commit":
                    return mode, self.session_commit(name)
                if action == "abort":
                    session = self.config_sessions.get(name)
                    if session is not None and session["state"] == "pending":
                        session.update(state="aborted", work=None)
                    return mode, ""
                session = self.config_sessions.setdefault(name, {"state": "pending", "work": copy.deepcopy(self._work_of_running())})
                if session["state"] != "pending":
                    return mode, f"% Error: session {name} is {session['state']}"
                return ("session", name, None), ""
            if command == "copy running-config startup-config":
                self.saved = self.state()
                self.event("saved to startup-config" + (" WHILE A CHANGE WAITS FOR CONFIRMATION" if self.pending else ""))
                return mode, "Copy completed successfully."
            out = self.show(command.strip())
            return mode, INVALID if out is None else out

    def prompt(self, mode: tuple) -> str:
        if mode[0] == "exec":
            return f"{HOSTNAME}#"
        if mode[0] == "session":
            sub = mode[2] or ("config", None)
            tail = "" if sub[0] == "config" else f"-{'acl' if sub[0] == 'acl' else 'if'}-{sub[1][:8]}"
            return f"{HOSTNAME}(config-s-{mode[1][:6]}{tail})#"
        sub = mode[1] or ("config", None)
        return f"{HOSTNAME}(config)#" if sub[0] == "config" else f"{HOSTNAME}(config-{'acl' if sub[0] == 'acl' else 'if'}-{sub[1][:8]})#"
