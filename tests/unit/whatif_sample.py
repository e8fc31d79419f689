"""Two small inventories for the what-if tests: they differ in one allow (app: https -> ssh to
partner) and one role (ws1: client -> mail_server); and a git repository holding them."""

from __future__ import annotations

import os
import subprocess

import yaml

DENY = "default deny: no rule allows this flow"


def inventory(app_allow: str = "https", ws1_role: str = "client", **extra) -> dict:
    return {"all": {
        "vars": {
            "egress_trusted_prefixes": ["198.51.100.0/25"],
            "egress_roles": {"app": {"allow": [{"service": app_allow, "to": "partner"}]}},
            **extra,
        },
        "hosts": {
            "app1": {"egress_role": "app", "egress_addresses": ["198.51.100.20"], "egress_verify_flows": [{"dst": "203.0.113.80", "port": 443}]},
            "ws1": {"egress_role": ws1_role, "egress_addresses": ["198.51.100.14"]},
            "mail1": {"egress_role": "mail_server", "ansible_host": "198.51.100.11"},
        },
    }}


def write(directory, data: dict) -> str:
    """An inventory directory: hosts.yml and group_vars/all.yml (upstreams, one of them templated)."""
    os.makedirs(directory / "group_vars", exist_ok=True)
    (directory / "hosts.yml").write_text(yaml.safe_dump(data))
    (directory / "group_vars" / "all.yml").write_text(yaml.safe_dump({
        "partner_address": "203.0.113.80",
        "egress_upstreams": {"internal_resolvers": ["198.51.100.12"], "internal_proxies": ["198.51.100.13"],
                             "smtp_relays": ["203.0.113.25"], "partner": ["{{ partner_address }}"]},
    }))
    return str(directory / "hosts.yml")


# One allow changed (app: https -> ssh to partner) and one role (ws1: client -> mail_server).
EXPECTED = {
    ("app1", "app", "203.0.113.80", "tcp", "22", DENY, "role app: ssh to partner"),
    ("app1", "app", "203.0.113.80", "tcp", "443", "role app: https to partner", DENY),
    ("ws1", "client → mail_server", "198.51.100.13", "tcp", "3128", "role client: http_proxy to internal_proxies", DENY),
    ("ws1", "client → mail_server", "203.0.113.25", "tcp", "25", "alert: smtp", "role mail_server: smtp to smtp_relays"),
}


def git(repo, *argv) -> str:
    return subprocess.run(["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@example.org", *argv],
                          capture_output=True, text=True, check=True).stdout


def repository(tmp_path) -> tuple:
    """A repository whose main branch holds the current inventory and branch review the proposed one."""
    repo = tmp_path / "site"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    current = write(repo / "inventory", inventory())
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "current")
    git(repo, "checkout", "-q", "-b", "review")
    write(repo / "inventory", inventory(app_allow="ssh", ws1_role="mail_server"))
    git(repo, "commit", "-q", "-am", "proposed")
    git(repo, "checkout", "-q", "main")
    return repo, current
