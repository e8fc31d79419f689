"""A small simulated Cisco IOS command line over SSH, for testing the network_acl role's
apply and confirm sequence with the real cisco.ios modules, cliconf and network_cli.

It is NOT IOS. It models only what that sequence touches, the way Cisco documents it:
named extended and IPv6 ACLs, ``ip access-group`` / ``ipv6 traffic-filter`` on interfaces
(one ACL per family and direction: binding another replaces it), ``show running-config``
with the sections the resource modules read, the archive, and ``configure terminal revert
timer N`` / ``configure confirm`` (the configuration from before the change comes back when
the timer ends unconfirmed). A timer minute lasts ``minute`` seconds, so a test can watch a
rollback. Every command of every SSH session is logged, and so is every binding change, so
a test can see what was sent, over which connection, and whether the outside interface was
ever left without an ACL. Anything it does not model answers ``% Invalid input detected``,
which the modules report as an error.
"""

from __future__ import annotations

import copy
import re
import socket
import threading
import time

import paramiko

HOSTNAME = "edge1"
INVALID = "% Invalid input detected at '^' marker."
MODES = {"config": "config", "acl4": "config-ext-nacl", "acl6": "config-ipv6-acl", "if": "config-if", "og4": "config-network-group",
         "og6": "config-ipv6-nw-group"}


class Device:
    def __init__(self, interfaces=("GigabitEthernet0/0", "GigabitEthernet0/1"), minute: float = 60.0, archive: bool = True):
        self.lock = threading.RLock()
        self.minute = minute
        self.archive = archive
        self.acls: dict = {}  # name -> {"afi": "ipv4" | "ipv6", "lines": [" 10 permit ...", ...]}
        self.groups: dict = {}  # object group name -> {"afi": "ipv4" | "ipv6", "lines": [" host ...", ...]}
        self.bound: dict = {name: {} for name in interfaces}  # interface -> {(afi, direction): acl name}
        self.pending = None  # {"snapshot": ..., "timer": Timer, "minutes": int}
        self.saved = None  # the state last copied to the startup configuration
        self.sessions: list = []  # one list of commands per SSH session
        self.replies: list = []  # (command, output), every session
        self.events: list = []  # (seconds since start, what)
        self.refuse_while_pending = False  # a change that cuts the management path
        self.expire_on_disconnect = False  # the timer ends before the controller is back
        self.start = time.monotonic()
        self._server = None

    # ------------------------------------------------------------------ state
    def state(self) -> dict:
        with self.lock:
            return copy.deepcopy({"acls": self.acls, "bound": self.bound, "groups": self.groups})

    def _restore(self, state: dict) -> None:
        self.acls, self.bound, self.groups = copy.deepcopy(state["acls"]), copy.deepcopy(state["bound"]), copy.deepcopy(state["groups"])

    def event(self, what: str) -> None:
        self.events.append((round(time.monotonic() - self.start, 3), what))

    def arm(self, minutes: int) -> None:
        snapshot = self.state()
        timer = threading.Timer(minutes * self.minute, self.expire)
        timer.daemon = True
        self.pending = {"snapshot": snapshot, "timer": timer, "minutes": minutes}
        self.event(f"revert timer armed ({minutes} min)")
        timer.start()

    def expire(self) -> None:
        with self.lock:
            if self.pending is None:
                return
            self.pending["timer"].cancel()
            self._restore(self.pending["snapshot"])
            self.pending = None
            self.event("rolled back: revert timer ended unconfirmed")

    def confirm(self) -> bool:
        with self.lock:
            if self.pending is None:
                return False
            self.pending["timer"].cancel()
            self.pending = None
            self.event("confirmed")
            return True

    # ------------------------------------------------------------------ show
    def running_config(self) -> list:
        lines = ["!", f"hostname {HOSTNAME}", "!", "archive" if self.archive else "!"]
        if self.archive:
            lines += [" path flash:archive", " maximum 10"]
        for name, group in self.groups.items():
            lines.append(f"object-group {'network' if group['afi'] == 'ipv4' else 'v6-network'} {name}")
            lines += group["lines"]
        for name, acl in self.acls.items():
            lines.append(("ip access-list extended " if acl["afi"] == "ipv4" else "ipv6 access-list ") + name)
            lines += acl["lines"]
        for interface, groups in self.bound.items():
            lines += ["!", f"interface {interface}", " no ip address"]
            for (afi, direction), name in sorted(groups.items()):
                lines.append(f" ip access-group {name} {direction}" if afi == "ipv4" else f" ipv6 traffic-filter {name} {direction}")
        return lines + ["!", "end"]

    def show(self, command: str) -> str | None:
        config = self.running_config()
        if command in ("show running-config", "show running-config all"):
            return "Building configuration...\n\nCurrent configuration : 1024 bytes\n" + "\n".join(config)
        if command == "show running-config | section access-list":
            out, inside = [], False
            for line in config:
                if not line.startswith(" "):
                    inside = "access-list" in line
                if inside:
                    out.append(line)
            return "\n".join(out)
        if command == "show running-config | include ^interface|ip access-group|ipv6 traffic-filter":
            return "\n".join(line for line in config if re.search(r"^interface|ip access-group|ipv6 traffic-filter", line))
        if command == "show access-lists | include access list":
            return "\n".join(("Extended IP access list " if acl["afi"] == "ipv4" else "IPv6 access list ") + name for name, acl in self.acls.items())
        if command == "show version":
            return (f"Cisco IOS XE Software, Version 17.09.04a\n{HOSTNAME} uptime is 1 day, 2 hours\n"
                    "cisco C8000V (VXE) processor (revision VXE) with 2028465K/3075K bytes of memory.")
        if command == "show archive":
            if not self.archive:
                return "Archive feature not enabled"
            return ("The maximum archive configurations allowed is 10.\nThe next archive file will be named flash:archive-2\n"
                    " Archive #  Name\n   1  flash:archive-1 <- Most Recent")
        if command == "show archive config rollback timer":
            if self.pending is None:
                return "%No Rollback Confirmed Change pending"
            return (f"Time configured(or Reset): 10:02:11 UTC Mon Mar 2 2026\nTimer type: Rollback Confirmed Change\n"
                    f"Timer value: {self.pending['minutes']} min\nUser: netops")
        return None

    # ------------------------------------------------------------------ configure
    def _bind(self, interface: str, afi: str, name: str | None, direction: str) -> None:
        groups = self.bound[interface]
        before = groups.get((afi, direction))
        if name is None:
            groups.pop((afi, direction), None)
        else:
            groups[(afi, direction)] = name
        self.event(f"binding {interface} {afi} {direction}: {before} -> {name}" + ("" if name is None or name in self.acls else " (no such ACL)"))

    def _named_groups(self) -> set:
        return {words[i + 1] for acl in self.acls.values() for line in acl["lines"] for words in [line.split()]
                for i, word in enumerate(words[:-1]) if word == "object-group"}

    def _object_group(self, mode: tuple, command: str) -> tuple | None:
        """An object-group command (any mode), or a member line in an object-group mode; IOS
        refuses to delete a group an ACL names, and an entry naming a group it lacks."""
        found = re.fullmatch(r"(no )?object-group (network|v6-network) (\S+)", command)
        if found:
            afi, name = ("ipv4" if found.group(2) == "network" else "ipv6"), found.group(3)
            if found.group(1):
                if name in self._named_groups():
                    return ("config",), f"% Error: object-group {name} is in use by an access list"
                self.groups.pop(name, None)
                self.event(f"deleted object-group {name}")
                return ("config",), ""
            self.groups.setdefault(name, {"afi": afi, "lines": []})
            return ("og4" if afi == "ipv4" else "og6", name), ""
        if mode[0] in ("og4", "og6"):
            if re.fullmatch(r"host \S+|[0-9.]+ [0-9.]+|[0-9A-Fa-f:]+/[0-9]+", command):
                self.groups.setdefault(mode[1], {"afi": "ipv4" if mode[0] == "og4" else "ipv6", "lines": []})["lines"].append(" " + command)
                return mode, ""
            return None
        if mode[0] in ("acl4", "acl6"):
            words = command.split()
            missing = [words[i + 1] for i, word in enumerate(words[:-1]) if word == "object-group" and words[i + 1] not in self.groups]
            if missing:
                return mode, f"% Error: object-group {missing[0]} does not exist"
        return None

    def configure(self, mode: tuple, command: str) -> tuple:
        """One configuration command in ``mode``; returns (new mode, output)."""
        grouped = self._object_group(mode, command)
        if grouped is not None:
            return grouped
        found = re.fullmatch(r"(no )?ip access-list extended (\S+)", command) or re.fullmatch(r"(no )?ipv6 access-list (\S+)", command)
        if found:
            afi = "ipv6" if "ipv6 access-list" in command else "ipv4"
            name = found.group(2)
            if found.group(1):
                if name not in self.acls:
                    return ("config",), ""
                users = [f"{i} {d}" for i, groups in self.bound.items() for (dummy, d), n in groups.items() if n == name]
                del self.acls[name]
                self.event(f"deleted {name}" + (f" WHILE BOUND ({', '.join(users)})" if users else ""))
                return ("config",), ""
            self.acls.setdefault(name, {"afi": afi, "lines": []})
            return ("acl4" if afi == "ipv4" else "acl6", name), ""
        found = re.fullmatch(r"interface (\S+)", command)
        if found:
            if found.group(1) not in self.bound:
                return mode, INVALID
            return ("if", found.group(1)), ""
        if mode[0] == "if":
            found = re.fullmatch(r"(no )?(ip access-group|ipv6 traffic-filter) (\S+) (in|out)", command)
            if found:
                afi = "ipv4" if found.group(2) == "ip access-group" else "ipv6"
                self._bind(mode[1], afi, None if found.group(1) else found.group(3), found.group(4))
                return mode, ""
        if mode[0] in ("acl4", "acl6") and mode[1] not in self.acls:  # rolled back under the session's feet
            self.acls[mode[1]] = {"afi": "ipv4" if mode[0] == "acl4" else "ipv6", "lines": []}
        if mode[0] == "acl4":
            found = re.fullmatch(r"(\d+) (remark .*|permit .*|deny .*)", command)
            if found:
                lines = self.acls[mode[1]]["lines"]
                if any(line.split()[0] == found.group(1) and line.split()[1] != "remark" and not found.group(2).startswith("remark") for line in lines):
                    return mode, "% Duplicate sequence number"
                lines.append(" " + command)
                return mode, ""
        if mode[0] == "acl6":
            found = re.fullmatch(r"(permit|deny) (.*) sequence (\d+)( .*)?", command) or re.fullmatch(r"sequence (\d+) (permit|deny) (.*)", command)
            if found:
                if command.startswith("sequence"):
                    line = " " + command
                else:
                    line = f" sequence {found.group(3)} {found.group(1)} {found.group(2)}{found.group(4) or ''}"
                self.acls[mode[1]]["lines"].append(line)
                return mode, ""
        if command == "exit":
            return (("config",) if mode[0] != "config" else ("exec",)), ""
        return mode, INVALID

    def execute(self, mode: tuple, command: str) -> tuple:
        """One command line in ``mode``; returns (new mode, output)."""
        with self.lock:
            if command == "end":
                return ("exec",), ""
            if mode[0] != "exec":
                return self.configure(mode, command)
            if command in ("terminal length 0", "terminal width 512", "terminal width 0"):
                return mode, ""
            found = re.fullmatch(r"configure terminal revert timer (\d+)", command)
            if found:
                if not self.archive:
                    return mode, INVALID
                if self.pending is not None:
                    return mode, "% Rollback Confirmed Change: a change is already pending confirmation"
                self.arm(int(found.group(1)))
                return ("config",), ""
            if command in ("configure terminal", "config terminal"):
                return ("config",), ""
            if command == "configure confirm":
                return mode, "" if self.confirm() else "%No Rollback Confirmed Change pending"
            if command == "copy running-config startup-config":
                self.saved = self.state()
                self.event("saved to startup-config" + (" WHILE A CHANGE WAITS FOR CONFIRMATION" if self.pending else ""))
                return mode, "Destination filename [startup-config]? \nBuilding configuration...\n[OK]"
            out = self.show(command.strip())
            return mode, INVALID if out is None else out

    # ------------------------------------------------------------------ SSH
    def prompt(self, mode: tuple) -> str:
        return f"{HOSTNAME}#" if mode[0] == "exec" else f"{HOSTNAME}({MODES[mode[0]]})#"

    def serve(self) -> int:
        """Listen on 127.0.0.1; returns the port."""
        key = paramiko.RSAKey.generate(2048)
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        self._server = listener
        threading.Thread(target=self._accept, args=(listener, key), daemon=True).start()
        return listener.getsockname()[1]

    def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        with self.lock:
            if self.pending is not None:
                self.pending["timer"].cancel()

    def _accept(self, listener, key) -> None:
        while True:
            try:
                sock, dummy = listener.accept()
            except OSError:
                return
            with self.lock:
                refuse = self.refuse_while_pending and self.pending is not None
            if refuse:
                self.event("login refused (the management path is cut)")
                sock.close()
                continue
            threading.Thread(target=self._session, args=(sock, key), daemon=True).start()

    def _session(self, sock, key) -> None:
        transport = paramiko.Transport(sock)
        transport.add_server_key(key)
        ready = threading.Event()
        transport.start_server(server=_Login(ready))
        channel = transport.accept(20)
        if channel is None or not ready.wait(20):
            transport.close()
            return
        log: list = []
        with self.lock:
            self.sessions.append(log)
        mode: tuple = ("exec",)
        channel.sendall(f"\r\n{self.prompt(mode)}".encode())
        buffer = b""
        try:
            while True:
                data = channel.recv(4096)
                if not data:
                    break
                buffer += data
                while True:
                    cut = re.search(rb"\r\n|\r|\n", buffer)
                    if cut is None:
                        break
                    line, buffer = buffer[:cut.start()].decode(), buffer[cut.end():]
                    if not line.strip():
                        continue
                    log.append(line)
                    mode, out = self.execute(mode, line.strip())
                    self.replies.append((line.strip(), out))
                    reply = line + "\r\n" + (out.replace("\n", "\r\n") + "\r\n" if out else "") + self.prompt(mode)
                    channel.sendall(reply.encode())
        except (OSError, EOFError, paramiko.SSHException):
            pass
        except Exception as exc:  # a fault of the simulator itself: recorded, so a test sees it
            self.event(f"SIMULATOR ERROR {type(exc).__name__}: {exc}")
        finally:
            transport.close()
            with self.lock:
                self.event(f"session {len(self.sessions)} closed")
                if self.expire_on_disconnect and self.pending is not None:
                    self.pending["timer"].cancel()
                    self._restore(self.pending["snapshot"])
                    self.pending = None
                    self.event("rolled back: revert timer ended unconfirmed")


class _Login(paramiko.ServerInterface):
    def __init__(self, ready: threading.Event):
        self.ready = ready

    def check_auth_password(self, username, password):
        return paramiko.AUTH_SUCCESSFUL

    def get_allowed_auths(self, username):
        return "password"

    def check_channel_request(self, kind, chanid):
        return paramiko.OPEN_SUCCEEDED if kind == "session" else paramiko.OPEN_FAILED_ADMINISTRATIVELY_PROHIBITED

    def check_channel_pty_request(self, channel, term, width, height, pixelwidth, pixelheight, modes):
        return True

    def check_channel_shell_request(self, channel):
        self.ready.set()
        return True
