"""The verify role's JUnit XML and HTML reports: the XML is valid against the JUnit schema CI
systems check, parses back with the counts equal to its testcases' failure/error/skipped
children and each testcase's time the probe's, each verdict lands where CI looks for it, and
values from the inventory (names, comments) with <, & and quotes are escaped in both files."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from html.parser import HTMLParser

import pytest
from junit_schema import check_junit
from lxml.etree import DocumentInvalid

from ansible_collections.warden.egress.plugins.filter.flow_html import flow_html
from ansible_collections.warden.egress.plugins.filter.flow_junit import flow_junit
from ansible_collections.warden.egress.plugins.plugin_utils.oracle.flow_report import html_page, junit_xml

from ansible.errors import AnsibleFilterError

NASTY = "<b>x & 'y' \"z\"</b>"
BASE = {"dst": "203.0.113.80", "port": 80, "proto": "tcp", "src": None, "inconclusive_ok": False, "detail": ""}
ROWS = [
    {**BASE, "host": "mail1", "name": "smtp to relay", "port": 25, "expect": "allowed", "observed": "allowed",
     "outcome": "connected", "ok": True, "reason": "role mail_server: smtp to smtp_relays", "seconds": 0.001234},
    {**BASE, "host": "mail1", "name": NASTY, "expect": "denied", "observed": "allowed", "outcome": "connected",
     "ok": False, "reason": f"exception {NASTY}", "seconds": 0.000071},
    {**BASE, "host": "mail1", "name": "http v4 with no route", "expect": "denied", "observed": "inconclusive",
     "outcome": "unreachable", "detail": "[Errno 101] Network is unreachable", "ok": False, "reason": "default deny", "seconds": 0.0005},
    {**BASE, "host": "mail1", "name": "ntp", "proto": "udp", "port": 123, "expect": "allowed", "observed": "inconclusive",
     "outcome": "timeout", "detail": "no answer within 2 s", "inconclusive_ok": True, "ok": True, "reason": "role: ntp", "seconds": 2.003},
    {**BASE, "host": "web1", "name": "https in from mail1", "port": 443, "dst": "198.51.100.80", "expect": "allowed",
     "observed": "allowed", "outcome": "connected", "ok": True, "reason": "serves https", "from_host": "mail1", "seconds": 1},
]
RUN = {"time": "2026-12-04T10:35:00", "inventory": [f"/srv/inv/{NASTY}.yml"],
       "commits": [{"dir": "/srv/inv", "commit": "0123456789abcdef0123456789abcdef01234567"}, {"dir": "/srv/play", "commit": None}],
       "hosts": ["mail1", "web1"], "missing": ["db1 & co"], "pending": []}


def parse(rows=None, run=None) -> ET.Element:
    return ET.fromstring(junit_xml(ROWS if rows is None else rows, RUN if run is None else run).encode())


def test_junit_counts_equal_the_testcases_children():
    root = parse()
    assert root.tag == "testsuites"
    suites = root.findall("testsuite")
    assert len(suites) == 1
    suite = suites[0]
    cases = suite.findall("testcase")
    assert len(cases) == len(ROWS) + 1  # and the host without a result
    for element in (root, suite):
        assert int(element.get("tests")) == len(cases)
        for kind, count in (("failures", "failure"), ("errors", "error")):
            assert int(element.get(kind)) == sum(1 for c in cases if c.find(count) is not None), kind
    assert int(suite.get("skipped")) == sum(1 for c in cases if c.find("skipped") is not None)
    assert (suite.get("tests"), suite.get("failures"), suite.get("errors"), suite.get("skipped")) == ("6", "1", "2", "1")
    assert suite.get("timestamp") == "2026-12-04T10:35:00"


def test_junit_is_valid_for_ci_with_skipped_on_the_testsuite_alone():
    text = junit_xml(ROWS, RUN)
    check_junit(text)
    root = ET.fromstring(text.encode())
    assert "skipped" not in root.attrib and root.find("testsuite").get("skipped") == "1"
    assert set(root.attrib) == {"name", "tests", "failures", "errors", "time"}
    # the schema refuses what the report used to write
    with pytest.raises(DocumentInvalid, match="attribute 'skipped' is not allowed"):
        check_junit(text.replace('<testsuites name="warden.egress verify"', '<testsuites name="warden.egress verify" skipped="1"'))


def test_junit_times_are_the_probes_durations_and_their_sum():
    root = parse()
    suite = root.find("testsuite")
    times = {c.get("name"): c.get("time") for c in suite.iter("testcase")}
    assert times == {"smtp to relay": "0.001234", NASTY: "0.000071", "http v4 with no route": "0.000500", "ntp": "2.003000",
                     "https in from mail1 (inbound to web1)": "1.000000", "(no result)": "0.000000"}
    assert suite.get("time") == root.get("time") == "3.004805"
    # a row without a duration counts 0; one that is not a duration is refused, naming it
    assert parse([{k: v for k, v in ROWS[0].items() if k != "seconds"}]).find("testsuite").get("time") == "0.000000"
    for bad in ("fast", -1, True, None):
        with pytest.raises(AnsibleFilterError, match=rf"^warden.egress.flow_junit: input\[1\].seconds: {re.escape(repr(bad))} must be the probe's"):
            flow_junit([ROWS[0], {**ROWS[1], "seconds": bad}], RUN)


def test_junit_each_verdict_and_its_text():
    cases = {c.get("name"): c for c in parse().iter("testcase")}
    assert [c.get("classname") for c in cases.values()] == ["mail1", "mail1", "mail1", "mail1", "mail1", "db1 & co"]
    assert list(cases["smtp to relay"]) == [cases["smtp to relay"].find("system-out")]
    failure = cases[NASTY].find("failure")
    assert failure.get("message") == "expected denied (decided by exception " + NASTY + "), observed allowed (connected)"
    assert "expected denied" in failure.text and "observed allowed (connected)" in failure.text
    error = cases["http v4 with no route"].find("error")
    assert error.get("type") == "inconclusive"
    assert "unreachable: [Errno 101] Network is unreachable" in error.get("message")
    assert "no answer within 2 s" in cases["ntp"].find("skipped").get("message")
    assert "inconclusive_ok" in cases["ntp"].find("skipped").get("message")
    # an inbound flow: sent by the host that opens it, named with the host it goes to
    assert cases["https in from mail1 (inbound to web1)"].get("classname") == "mail1"
    assert cases["(no result)"].find("error").get("message") == "the host failed or was unreachable before its flows were tried"


def test_junit_properties_and_characters_xml_cannot_hold():
    root = parse([{**ROWS[1], "name": "bell\x07 and nul\x00"}], {**RUN, "missing": []})
    props = {(p.get("name"), p.get("value")) for p in root.iter("property")}
    assert ("inventory", f"/srv/inv/{NASTY}.yml") in props
    assert ("commit", "/srv/inv: 0123456789abcdef0123456789abcdef01234567") in props
    assert ("commit", "/srv/play: not a git checkout") in props
    assert [c.get("name") for c in root.iter("testcase")] == ["bell\ufffd and nul\ufffd"]
    assert (root.get("tests"), root.get("failures"), root.get("errors")) == ("1", "1", "0")


class Page(HTMLParser):
    """The tags, attributes and text of a page."""

    def __init__(self):
        super().__init__()
        self.tags, self.attrs, self.text, self.rows = [], [], [], []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self.attrs += attrs
        if tag == "tr":
            self.rows.append(dict(attrs).get("class"))

    def handle_data(self, data):
        self.text.append(data)


def test_html_is_escaped_and_self_contained():
    page = html_page(ROWS, RUN)
    assert NASTY not in page
    assert "&lt;b&gt;x &amp; &#x27;y&#x27; &quot;z&quot;&lt;/b&gt;" in page
    parsed = Page()
    parsed.feed(page)
    text = "".join(parsed.text)
    assert NASTY in text and f"exception {NASTY}" in text and f"/srv/inv/{NASTY}.yml" in text
    assert "/srv/inv: 0123456789abcdef0123456789abcdef01234567" in text and "/srv/play: not a git checkout" in text
    assert "2026-12-04T10:35:00" in text and "mail1 (4 flows)" in text and "web1 (1 flows)" in text
    assert "db1 &amp; co" in page
    # nothing loaded from elsewhere: no script, no link, no src or href attribute
    assert not {"script", "link", "img", "iframe", "object"} & set(parsed.tags)
    assert not [a for a in parsed.attrs if a[0] in ("src", "href")]
    assert "http://" not in page and "https://" not in page and "url(" not in page
    # one coloured class a verdict
    assert parsed.rows[-6:] == ["ok", "MISMATCH", "INCONCLUSIVE", "accepted", "ok", "missing"]
    assert "tr.MISMATCH td { background" in page and "tr.INCONCLUSIVE td { background" in page


def test_html_says_a_partial_report_is_partial():
    assert "this report is partial" in html_page(ROWS[:1], {**RUN, "pending": ["web1"]})
    assert "this report is partial" not in html_page(ROWS[:1], RUN)


@pytest.mark.parametrize(("run", "message"), [
    ({**RUN, "time": "2026-12-04 10:35"}, "run.time: '2026-12-04 10:35' must be a UTC time as YYYY-MM-DDTHH:MM:SS"),
    ({**RUN, "hosts": "mail1"}, "run.hosts: 'mail1' must be a list of strings"),
    ({**RUN, "commits": [{"dir": "/x", "commit": "; rm -rf /"}]}, "run.commits[0].commit: '; rm -rf /' must be a git commit hash"),
    ({**RUN, "colour": "red"}, "run.colour is not a known key"),
])
@pytest.mark.parametrize("builder", [flow_junit, flow_html])
def test_bad_run_metadata_fails_naming_the_key(builder, run, message):
    with pytest.raises(AnsibleFilterError) as error:
        builder(ROWS, run)
    assert message in str(error.value)
    assert str(error.value).startswith(f"warden.egress.{builder.__name__}: ")


def test_bad_rows_fail():
    with pytest.raises(AnsibleFilterError, match="input must be a list of result rows"):
        flow_junit("mail1", RUN)
