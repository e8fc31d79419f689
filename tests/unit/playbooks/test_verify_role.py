"""The verify role, run by ansible-playbook inside a network namespace whose host has the
mail server's rules loaded (as the renderer writes them) and no IPv4 route out.

An expected-denied IPv4 flow then fails with 'network unreachable': that proves nothing about
the rules, and the role must fail the host for it, unless the flow carries inconclusive_ok.
The IPv6 flows, which do have a route, are judged as before: a real drop is denied and an
allowed flow gets out."""

from __future__ import annotations

import json
import re
import os
import subprocess
import sys
import time
import xml.etree.ElementTree as ET

import pytest
import yaml
from junit_schema import check_junit
from netns import HOST_V4, HOST_V6, Pair, sh
from sample import ADDRESSES, GROUPS, compile_for, site

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))


@pytest.fixture()
def host():
    """mail1's rules in the pair's host namespace (its addresses are mail1's), no IPv4 route."""
    assert ADDRESSES["mail1"] == [HOST_V4, HOST_V6]
    with Pair() as pair:
        deadline = time.monotonic() + 5
        while any("tentative" in sh("ip", "-6", "addr", "show", "dev", "eth0", ns=ns).stdout for ns in pair.names):
            assert time.monotonic() < deadline, "IPv6 link-local addresses still tentative after 5 s"
            time.sleep(0.05)
        pair.load(compile_for("mail1"), "nftables")
        sh("ip", "route", "del", "default", ns=pair.host)
        yield pair


def run_verify(pair, tmp_path, flows: list[dict], *options: str, twins: tuple[str, ...] = (), broken: tuple[str, ...] = (),
               serial: list[int] | None = None) -> tuple[subprocess.CompletedProcess, list[dict], str]:
    """Run the role on mail1 (and on each of ``twins``, inventory names for the same namespace
    with mail1's role and flows, and of ``broken``, the same with no Python to run modules),
    with ``serial`` batches if given."""
    report = tmp_path / "report"
    mail1 = {"egress_role": "mail_server", "egress_addresses": ADDRESSES["mail1"], "egress_verify_flows": flows}
    inventory = {"all": {
        "vars": {**site(), "ansible_connection": "local", "ansible_python_interpreter": sys.executable},
        "hosts": {"mail1": mail1, **{twin: dict(mail1) for twin in twins},
                  **{name: {**mail1, "ansible_python_interpreter": "/nonexistent/python3"} for name in broken}},
        "children": {group: {"hosts": {h: {} for h in members}} for group, members in GROUPS.items() if members},
    }}
    for other, addresses in ADDRESSES.items():  # the site's other hosts, named by groups and exceptions
        inventory["all"]["hosts"].setdefault(other, {"egress_addresses": addresses})
    (tmp_path / "hosts.yml").write_text(yaml.safe_dump(inventory))
    (tmp_path / "play.yml").write_text(yaml.safe_dump([{
        "name": "Verify", "hosts": ":".join(("mail1",) + twins + broken), "gather_facts": False, **({"serial": serial} if serial else {}),
        "roles": [{"role": "warden.egress.verify", "vars": {"verify_egress_report_dir": str(report), "verify_egress_timeout": 0.7}}],
    }]))
    env = {"ANSIBLE_COLLECTIONS_PATH": os.path.join(TOP, ".build", "collections"), "ANSIBLE_FORCE_COLOR": "0",
           "ANSIBLE_LOCAL_TEMP": str(tmp_path / "ansible-local"), "ANSIBLE_REMOTE_TEMP": str(tmp_path / "ansible-remote")}
    result = sh("env", *[f"{k}={v}" for k, v in env.items()], "ansible-playbook", "-i", str(tmp_path / "hosts.yml"), str(tmp_path / "play.yml"),
                *options, ns=pair.host, check=False)
    rows = json.loads((report / "egress-report.json").read_text()) if (report / "egress-report.json").exists() else []
    table = (report / "egress-report.txt").read_text() if (report / "egress-report.txt").exists() else ""
    return result, rows, table


def junit(tmp_path) -> dict:
    """The JUnit report's testcases by (classname, name), once its structure is checked: valid
    against the JUnit schema CI systems check (skipped counted on the testsuite alone), one
    testsuite in testsuites, each count equal to the testcases with such a child, and each
    flow's time its probe's duration (more than 0), the suite's their sum."""
    text = (tmp_path / "report" / "egress-report.xml").read_bytes()
    check_junit(text)
    root = ET.fromstring(text)
    assert root.tag == "testsuites"
    assert [s.tag for s in root] == ["testsuite"]
    suite = root.find("testsuite")
    cases = suite.findall("testcase")
    for element in (root, suite):
        assert int(element.get("tests")) == len(cases)
        for count, child in (("failures", "failure"), ("errors", "error")):
            assert int(element.get(count)) == sum(1 for c in cases if c.find(child) is not None), count
    assert "skipped" not in root.attrib
    assert int(suite.get("skipped")) == sum(1 for c in cases if c.find("skipped") is not None)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d", suite.get("timestamp"))
    probed = [float(c.get("time")) for c in cases if c.get("name") != "(no result)"]
    assert all(seconds > 0 for seconds in probed), [c.get("time") for c in cases]
    assert float(root.get("time")) == float(suite.get("time")) == pytest.approx(sum(probed), abs=1e-5)
    return {(c.get("classname"), c.get("name")): c for c in cases}


def page(tmp_path) -> str:
    return (tmp_path / "report" / "egress-report.html").read_text()


FLOWS = [
    {"name": "http v4 with no route", "dst": "203.0.113.80", "port": 80},
    {"name": "http v6", "dst": "2001:db8:5100::80", "port": 80},
    {"name": "smtp to relay v6", "dst": "2001:db8:5100::25", "port": 25},
]


def test_an_inconclusive_denied_flow_fails_the_host(host, tmp_path):
    result, rows, table = run_verify(host, tmp_path, FLOWS)
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert "['http v4 with no route'] were inconclusive" in output, output
    assert "did not behave as the policy says" not in output, output
    judged = {r["name"]: (r["expect"], r["observed"], r["outcome"], r["ok"]) for r in rows}
    assert judged == {
        "http v4 with no route": ("denied", "inconclusive", "unreachable", False),
        "http v6": ("denied", "denied", "timeout", True),
        "smtp to relay v6": ("allowed", "allowed", "refused", True),
    }
    assert "INCONCLUSIVE" in table
    assert table.splitlines()[-1] == ("3 flows: 2 as expected, 0 mismatched, 1 inconclusive"
                                      " (0 accepted by inconclusive_ok, 1 failing)")
    cases = junit(tmp_path)
    assert sorted(cases) == [("mail1", "http v4 with no route"), ("mail1", "http v6"), ("mail1", "smtp to relay v6")]
    error = cases["mail1", "http v4 with no route"].find("error")
    assert error.get("type") == "inconclusive" and "unreachable" in error.get("message"), ET.tostring(error)
    assert [c.find("failure") for c in cases.values()] == [None, None, None]
    html = page(tmp_path)
    assert '<tr class="INCONCLUSIVE">' in html and html.count('<tr class="ok">') == 2
    assert str(tmp_path / "hosts.yml") in html and f"{tmp_path}: not a git checkout" in html


def test_inconclusive_ok_accepts_it(host, tmp_path):
    flows = [{**FLOWS[0], "inconclusive_ok": True}] + FLOWS[1:]
    result, rows, table = run_verify(host, tmp_path, flows)
    assert result.returncode == 0, result.stdout + result.stderr
    assert [r["ok"] for r in rows] == [True, True, True]
    assert rows[0]["observed"] == "inconclusive"
    assert table.splitlines()[-1] == ("3 flows: 2 as expected, 0 mismatched, 1 inconclusive"
                                      " (1 accepted by inconclusive_ok, 0 failing)")
    skipped = junit(tmp_path)["mail1", "http v4 with no route"].find("skipped")
    assert "unreachable" in skipped.get("message") and "accepted by inconclusive_ok" in skipped.get("message")
    assert '<tr class="accepted">' in page(tmp_path)


def test_control_with_the_route_back_every_flow_is_conclusive(host, tmp_path):
    """The same flows with the IPv4 route restored: the IPv4 flow is a real drop, denied. The
    inventory and playbook directory is a git checkout: the reports name its commit."""
    sh("ip", "route", "add", "default", "via", "198.51.100.254", ns=host.host)
    git = ("git", "-C", str(tmp_path), "-c", "user.name=t", "-c", "user.email=t@example.org")
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "commit", "-q", "--allow-empty", "-m", "inventory"], check=True)
    commit = subprocess.run([*git, "rev-parse", "HEAD"], check=True, capture_output=True, text=True).stdout.strip()
    result, rows, table = run_verify(host, tmp_path, FLOWS)
    assert result.returncode == 0, result.stdout + result.stderr
    assert [(r["observed"], r["ok"]) for r in rows] == [("denied", True), ("denied", True), ("allowed", True)]
    assert table.splitlines()[-1] == "3 flows: 3 as expected, 0 mismatched"
    cases = junit(tmp_path)
    assert len(cases) == 3 and all(list(c) == [c.find("system-out")] for c in cases.values())
    assert commit in page(tmp_path)
    properties = ET.parse(tmp_path / "report" / "egress-report.xml").iter("property")
    assert ("commit", f"{tmp_path}: {commit}") in {(p.get("name"), p.get("value")) for p in properties}


def test_check_mode_sends_nothing_and_says_what_it_would_try(host, tmp_path):
    """--check --diff sends no packet: the far end counts none (and with the same run for
    real, it does count them); the plan lists each flow with what the policies expect."""
    counting = "table inet probes {\n chain input {\n  type filter hook input priority 0;\n  tcp dport { 25, 80 } counter\n }\n}\n"
    sh("nft", "-f", "-", ns=host.world, data=counting)

    def seen() -> int:
        return int(sh("nft", "list", "table", "inet", "probes", ns=host.world).stdout.split("packets ")[1].split()[0])

    result, rows, table = run_verify(host, tmp_path, FLOWS, "--check", "--diff")
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert seen() == 0
    assert "http v4 with no route: tcp/80 to 203.0.113.80, expected denied (" in output, output
    assert "smtp to relay v6: tcp/25 to 2001:db8:5100::25, expected allowed (" in output, output
    assert rows == [] and "ok" not in table
    assert not (tmp_path / "report" / "egress-report.xml").exists() and not (tmp_path / "report" / "egress-report.html").exists()
    run_verify(host, tmp_path, FLOWS)
    assert seen() > 0


NASTY = "smtp <to> relay & 'co' \"v6\""


def test_serial_batches_count_progress_and_the_reports_hold_every_batch(host, tmp_path):
    """Three hosts in batches [1, 2]: after the first batch a count (not the table); after the
    last, the table and reports of both hosts that ran, and an error for the host that could
    not run its probe; a flow name with <, & and quotes is escaped in both files."""
    sh("ip", "route", "add", "default", "via", "198.51.100.254", ns=host.host)
    flows = FLOWS[:2] + [{**FLOWS[2], "name": NASTY}]
    result, rows, table = run_verify(host, tmp_path, flows, twins=("mail1-again",), broken=("mail1-broken",), serial=[1, 2])
    output = result.stdout + result.stderr
    assert result.returncode != 0, output  # mail1-broken failed
    progress = re.findall(r"warden\.egress verify: .*? the last batch\.", " ".join(output.split()))
    assert progress == ["warden.egress verify: 1 of 3 hosts tried (1 in this batch), 3 flows so far, 0 not as the policy expects;"
                        " 2 hosts to go. The table comes after the last batch."], output
    assert "3 flows: 3 as expected" not in output, output  # no table after the first batch
    assert output.count("6 flows: 6 as expected, 0 mismatched") == 1, output
    assert [r["host"] for r in rows] == ["mail1"] * 3 + ["mail1-again"] * 3 and all(r["ok"] for r in rows)
    cases = junit(tmp_path)
    assert sorted(cases) == sorted([(h, f["name"]) for h in ("mail1", "mail1-again") for f in flows] + [("mail1-broken", "(no result)")])
    assert cases["mail1-broken", "(no result)"].find("error") is not None
    html = page(tmp_path)
    assert NASTY not in html and "smtp &lt;to&gt; relay &amp; &#x27;co&#x27; &quot;v6&quot;" in html
    assert '<th>hosts without a result</th><td class="meta">mail1-broken</td>' in html
    assert "mail1 (3 flows)" in html and "mail1-again (3 flows)" in html


def test_a_name_the_host_cannot_resolve_fails_the_host_even_with_inconclusive_ok(host, tmp_path):
    """A flow to a DNS name: the probe asks the host's resolver, which it cannot reach here (no
    IPv4 route), so nothing is tried. The host fails, saying so, whatever inconclusive_ok says;
    the table shows the name; check mode lists the flow by its name."""
    flows = [{"name": "api by name", "dst": "dns:api.example.com", "port": 443, "inconclusive_ok": True}, FLOWS[1]]
    result, rows, table = run_verify(host, tmp_path, flows)
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert "['api by name'] went to names the host could not resolve, so nothing was tried (api.example.com did not resolve" in output, output
    assert "were inconclusive" not in output and "did not behave as the policy says" not in output, output
    (named,) = [r for r in rows if r["name"] == "api by name"]
    assert (named["expect"], named["outcome"], named["observed"], named["ok"]) == ("denied", "unresolved", "inconclusive", False), named
    assert named["dns_name"] == "api.example.com" and named["tried"] == []
    assert "dns:api.example.com (not resolved)" in table and "INCONCLUSIVE" in table
    assert junit(tmp_path)["mail1", "api by name"].find("error") is not None
    result, rows, table = run_verify(host, tmp_path, flows, "--check")
    assert result.returncode == 0 and "api by name: tcp/443 to dns:api.example.com, expected denied (" in result.stdout, result.stdout
