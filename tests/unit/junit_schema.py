"""The JUnit schema CI systems check a report against before they read it (junit.xsd beside
this file), for the tests of the verify role's JUnit report."""

from __future__ import annotations

import os

from lxml import etree

SCHEMA = etree.XMLSchema(etree.parse(os.path.join(os.path.dirname(os.path.abspath(__file__)), "junit.xsd")))


def check_junit(text: str | bytes) -> None:
    """Raise lxml's DocumentInvalid, naming the element and the attribute, unless ``text`` is
    a report the schema accepts."""
    SCHEMA.assertValid(etree.fromstring(text.encode() if isinstance(text, str) else text))
