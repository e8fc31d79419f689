# -*- coding: utf-8 -*-
# Copyright: contributors to warden.egress
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: unconfirmed_reason
author: warden.egress contributors (@warden-egress)
version_added: 0.5.0
short_description: Why a confirmed apply was not confirmed, from what the controller and the target saw
description:
  - Used by the P(warden.egress.linux#role) role when a load made with C(confirm_timeout) was not
    confirmed. Returns one clause saying why, for the message that fails the host.
  - The controller's times are seconds since just before the load task began; the target's
    (C(since_load), C(rollback_seconds) in the confirmation's result) are seconds since the load.
    They are related through the confirmation call only, so a conclusion (the connection the
    rules were loaded over stopped answering until the rollback; new connections did not
    complete under the new rules) is drawn only when those bounds settle it. Otherwise the
    reason says what was measured.
options:
  _input:
    description:
      - What was observed, a dictionary with C(window) (seconds), C(unconfirmed) (why the role
        did not try to confirm, empty when it did), C(load_returned), C(reconnected), C(asked),
        C(answered) (controller seconds; the last three may be null) and C(confirm) (the
        confirmation task's registered result).
    type: dict
    required: true
"""

EXAMPLES = r"""
- name: Say why the load was not confirmed
  ansible.builtin.set_fact:
    __why: >-
      {{ {'window': 20, 'unconfirmed': '', 'load_returned': 0.8, 'reconnected': 24.0, 'asked': 24.1,
          'answered': 24.6, 'confirm': confirmed} | warden.egress.unconfirmed_reason }}
"""

RETURN = r"""
_value:
  description: Why the load was not confirmed, one clause without a final full stop.
  type: str
"""

from ansible.errors import AnsibleFilterError

from ansible_collections.warden.egress.plugins.module_utils._apply_outcome import unconfirmed_reason as reason


def unconfirmed_reason(observed):
    try:
        return reason(observed)
    except ValueError as exc:
        raise AnsibleFilterError(f"warden.egress.unconfirmed_reason: {exc}") from None


class FilterModule:
    def filters(self):
        return {"unconfirmed_reason": unconfirmed_reason}
