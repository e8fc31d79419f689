"""warden.egress.host_addresses: a host's addresses as the compiler reads them."""

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.warden.egress.plugins.filter.host_addresses import host_addresses

HOSTVARS = {
    "both": {"egress_addresses": ["198.51.100.11", "2001:db8:10::11"], "ansible_host": "198.51.100.99"},
    "ip": {"ansible_host": "198.51.100.14"},
    "ip6": {"ansible_host": "2001:db8:10::14"},
    "name": {"ansible_host": "ws1.example.org"},
    "bare": {},
    "empty": {"egress_addresses": [], "ansible_host": "198.51.100.15"},
}


@pytest.mark.parametrize(("host", "expected"), [
    ("both", ["198.51.100.11", "2001:db8:10::11"]),  # egress_addresses first
    ("ip", ["198.51.100.14"]),
    ("ip6", ["2001:db8:10::14"]),
    ("name", []),  # a DNS name is not an address
    ("bare", []),
    ("empty", ["198.51.100.15"]),
])
def test_egress_addresses_else_ansible_host_when_it_is_an_address(host, expected):
    assert host_addresses(HOSTVARS, host) == expected


def test_an_unknown_host_is_an_error():
    with pytest.raises(AnsibleFilterError, match="warden.egress.host_addresses: target 'nohost' is not an inventory host"):
        host_addresses(HOSTVARS, "nohost")
