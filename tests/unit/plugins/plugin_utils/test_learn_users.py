"""Learning keeps a role's limit to local users: a flow denied only because of who sent it is a
finding (never an allow for the whole role), a new destination of a service the role limits to
users is suggested for that user only, and the replay judges each flow as its user."""

from __future__ import annotations

import datetime

import pytest
from journal import record
from sample import ADDRESSES, GROUPS, site

from ansible_collections.warden.egress.plugins.plugin_utils.learn.collect import parse_line
from ansible_collections.warden.egress.plugins.plugin_utils.model.flow import learned_flow
from ansible_collections.warden.egress.plugins.plugin_utils.model.flow import Flow
from ansible_collections.warden.egress.plugins.plugin_utils.oracle.evaluate import evaluate
from ansible_collections.warden.egress.plugins.plugin_utils.learn.suggest import apply_change, learn
from ansible_collections.warden.egress.plugins.plugin_utils.compile.site import compile_site

TODAY = datetime.date(2026, 12, 2)
ROLES = {"web_mail": {"allow": [{"service": "smtp", "to": "smtp_relays", "users": ["postfix"]},
                                {"service": "https", "to": "updates", "groups": ["updaters"]},
                                {"service": "dns", "to": "internal_resolvers"}]}}


def host_vars() -> dict:
    upstreams = {**site()["egress_upstreams"], "updates": ["203.0.113.90"]}
    common = site(egress_upstreams=upstreams, egress_roles=ROLES, egress_mode="audit")
    return {"mail1": dict(common, egress_role="web_mail"), "ws1": dict(common, egress_role="client"), "dns1": dict(common, egress_role="dns_resolver")}


def line(dst: str, dport: int, uid: int | None, gid: int | None = None, mono: int = 0) -> str:
    owner = f" UID={uid} GID={uid if gid is None else gid}" if uid is not None else ""
    return record(f"warden-egress audit[host]: IN= OUT=eth0 SRC=198.51.100.11 DST={dst} LEN=60 TOS=0x00 PREC=0x00 TTL=64 ID=1 DF "
                  f"PROTO=TCP SPT=40000 DPT={dport} WINDOW=64240 RES=0x00 SYN URGP=0{owner}", mono=1000 + mono)


@pytest.fixture(name="learned", scope="module")
def fixture_learned():
    logs = {"mail1": [
        line("203.0.113.25", 25, 33, mono=1),          # www-data mails the relay: only postfix may
        line("203.0.113.90", 443, 1000, mono=2),       # a user not in updaters fetches updates
        line("203.0.113.91", 443, 1000, mono=3),       # https elsewhere: the role limits https to a group
        line("203.0.113.92", 443, None, mono=4),       # ... and this one has no local user
        line("203.0.113.93", 8443, 1000, mono=5),      # a port the role does not limit: for the role
    ]}
    return learn(host_vars(), ADDRESSES, GROUPS, logs, today=TODAY)


def test_a_flow_denied_for_its_user_is_a_finding_naming_the_user(learned):
    found = {(f["dst"], tuple(f["classes"])): f["why"] for f in learned["findings"]}
    assert ("203.0.113.25", ("user_restricted",)) in found and ("203.0.113.90", ("user_restricted",)) in found
    assert "uid 33" in found[("203.0.113.25", ("user_restricted",))] and "postfix" in found[("203.0.113.25", ("user_restricted",))]
    assert "uid 1000 gid 1000" in found[("203.0.113.90", ("user_restricted",))]
    assert "updaters" in found[("203.0.113.90", ("user_restricted",))]


def test_no_suggested_allow_lets_every_user_send_a_limited_service(learned):
    allows = learned["suggestion"]["egress_roles"]["web_mail"]["allow"]
    for entry in allows:
        if entry["service"] in ("smtp", "https"):
            assert entry.get("users") or entry.get("groups"), entry
    assert {"service": "https", "to": "learned_web_mail_https", "users": [1000]} in allows
    assert {"service": "learned_tcp_8443", "to": "learned_web_mail_tcp_8443"} in allows
    assert "203.0.113.25/32" not in str(learned["suggestion"]) and "203.0.113.90/32" not in str(learned["suggestion"])
    assert not learned["suggestion"].get("egress_exceptions")
    review = {r["dst"]: r["why"] for r in learned["review"]}
    assert "no local user" in review["203.0.113.92"]


def test_the_replay_judges_each_flow_as_its_user(learned):
    assert learned["replay"]["denied_now"] == 5
    # with the suggestion: the two findings and the flow with no user stay denied
    assert learned["replay"]["denied_suggested"] == 3
    after = dict(compile_site(apply_change(host_vars(), learned["suggestion"], TODAY, fill_blanks=True), ADDRESSES, GROUPS, today=TODAY))
    ir = next(i for i in after["mail1"] if i["kind"] == "host")
    packet = {"src": "198.51.100.11", "dst": "203.0.113.91", "proto": "tcp", "dport": 443}
    assert evaluate(ir, {**packet, "user": 1000})["denied"] is False
    assert evaluate(ir, {**packet, "user": 33})["denied"] is True  # another user: still denied
    assert evaluate(ir, {**packet, "dst": "203.0.113.25", "dport": 25, "user": 33})["denied"] is True


def test_a_learned_flow_is_a_flow_sent_by_its_uid_and_gid():
    """The line's UID and GID are the Flow's user and group; the reports still say uid and gid."""
    kind, read = parse_line("warden-egress audit[host]: IN= OUT=eth0 SRC=198.51.100.11 DST=203.0.113.25 LEN=60 PROTO=TCP SPT=40000 DPT=25 "
                            "WINDOW=1 URGP=0 UID=33 GID=34")
    assert kind == "flow"
    flow = Flow.from_mapping(learned_flow(read))
    assert (flow.user, flow.group, flow.oif, flow.iif, flow.dport) == (33, 34, "eth0", None, 25)
    assert learned_flow(read) == {"src": "198.51.100.11", "dst": "203.0.113.25", "proto": "tcp", "dport": 25, "oif": "eth0", "user": 33, "group": 34}
    assert "uid" not in flow.to_dict() and "user" not in learned_flow({**read, "uid": None, "gid": None})
