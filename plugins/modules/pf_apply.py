#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: contributors to warden.egress
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: pf_apply
short_description: Load the collection's pf anchor atomically, only when it differs, with an optional confirmed apply
version_added: 0.3.0
description:
  - Loads the rules rendered by P(warden.egress.to_pf#filter) into one pf anchor with
    C(pfctl -a ANCHOR -f FILE). pfctl loads an anchor's rules and tables in one transaction;
    the main ruleset and every other anchor are left as they were.
  - The file is checked with C(pfctl -n -a ANCHOR -f FILE) first; nothing is loaded when
    that fails.
  - Idempotent. After a load the module records the file's hash and the anchor as pfctl
    lists it back (rules, tables and their addresses). When both still match, nothing is done;
    a hand edit is drift and is put right.
  - With O(confirm_timeout), the previous anchor is put back by the box itself unless a
    second call with O(confirm=true) arrives within that many seconds; the contract is the same
    as that of P(warden.egress.nft_apply#module) and P(warden.egress.iptables_apply#module).
    The rollback process holds a lock on its pid file for as long as it lives; a confirmation
    only signals a process that holds it, so a leftover pid file (after a restart) never gets
    another process killed.
  - Without O(confirm_timeout), the boot file is written under a temporary name beside O(path)
    before the load and renamed into place after it. If it cannot be written, nothing is
    loaded; if the rename fails, the previous rules are loaded again. The anchor and the boot
    file never disagree, and the run fails with one line saying why.
  - One apply at a time. The module holds a lock in O(state_dir) for the whole run (and the
    rollback job takes it before it rolls back), so a second run waits for the first (at most
    O(lock_timeout) seconds).
    The commands it runs inherit that lock, so a command still running after the module was
    killed (an interrupted load) holds the next run back until it has finished.
  - Directories it creates get explicit modes whatever the umask (O(state_dir) 0700, the
    directory of O(path) 0755).
author:
  - warden.egress contributors (@warden-egress)
attributes:
  check_mode:
    support: full
    description: Reports whether the anchor or the file would change; loads and writes nothing.
  diff_mode:
    support: full
    description: Shows the previously applied rules against the new ones.
  idempotent:
    support: full
    description: A second run with the same content reports no change.
options:
  content:
    description:
      - The anchor's rules. Required when O(state=present) and O(confirm) is not set.
      - It must hold at least one C(pass) or C(block) rule. An empty file is refused; empty the
        anchor with O(state=absent).
    type: str
  anchor:
    description: The anchor the collection owns.
    type: str
    default: warden_egress
  path:
    description:
      - The anchor file that pf.conf loads at boot (C(load anchor ... from PATH)).
      - Set to an empty string to keep no file.
    type: path
    default: /etc/pf.anchors/warden_egress
  state_dir:
    description: Directory for the record of what was last applied, of a pending confirmation, and the lock file C(apply.lock).
    type: path
    default: /var/lib/warden_egress
  lock_timeout:
    description:
      - Seconds to wait for another apply on the same box (same O(state_dir)) to finish.
        The run fails, changing nothing, when the lock is still held after that.
    type: int
    default: 120
    version_added: 0.5.0
  confirm_timeout:
    description:
      - Seconds the box waits for a second call with O(confirm=true) after a load that changed
        its rules. Before the load it saves what it owns (also when that is nothing), and after it
        arms a rollback that runs on the box without the controller. Unless confirmed in time,
        that rollback puts back exactly what was saved, in one transaction.
      - The rollback is a transient systemd timer (C(systemd-run --on-active)) where systemd runs
        the box and the module shares its network and mount namespaces; elsewhere (no systemd,
        or under C(ip netns exec)) it is a detached process and a twin forked from it, both holding
        a lock on its pid file; whichever is left when the window ends rolls back, so killing one
        of them (not their process group) leaves the load guarded.
      - The boot file and the record of what was applied are written only on confirmation, so
        a restart while a load waits brings the previous rules back.
      - One load waits at a time. Another load (or a removal) waits, releasing the apply lock,
        until the pending one is confirmed or rolled back, at most O(lock_timeout) seconds, then
        fails changing nothing. A plan whose rollback is no longer armed (the box restarted)
        is rolled back by the next run.
      - C(0) loads without a confirmation step. Below 15 seconds the module warns (too little
        time for a controller to reconnect and confirm).
    type: int
    default: 0
  confirm:
    description:
      - Confirm the load a previous call made with O(confirm_timeout). This stops its rollback and writes the
        record and the boot file. Give it without the rules (and without O(state=absent)).
      - Fails when no load waits ("nothing to confirm"), and when the rollback already ran or is
        no longer armed ("too late", with what the box did and when). Warns when the
        confirmation came after more than half of the window.
      - The window is strict. A confirmation that reaches the box after O(confirm_timeout) seconds
        is refused ("too late") even if the rollback has not run yet, and the previous rules are
        put back at once (in check mode it only says that the window has passed).
      - It signals the rollback process only after checking that the process group the pid file
        names runs this load's rollback program, with its token.
      - In check mode it says whether there is a load to confirm, and changes nothing.
    type: bool
    default: false
  state:
    description: C(present) loads O(content); C(absent) flushes the anchor and removes its file and record.
    type: str
    choices: [present, absent]
    default: present
requirements:
  - pf and pfctl (OpenBSD or FreeBSD)
notes:
  - Needs root on the target.
"""

EXAMPLES = r"""
- name: Load the anchor; the box rolls back by itself unless confirmed within 60 seconds
  warden.egress.pf_apply:
    content: "{{ egress_policy | warden.egress.to_pf }}"
    confirm_timeout: 60

- name: Reach the box again
  ansible.builtin.wait_for_connection:
    timeout: 30

- name: Confirm the new rules
  warden.egress.pf_apply:
    confirm: true
"""

RETURN = r"""
anchor:
  description: The anchor managed.
  returned: always
  type: str
  sample: warden_egress
sha256:
  description: SHA-256 of O(content).
  returned: when O(content) is given
  type: str
  sample: 3f1d5c0e0b1e2d7a9c5f4e6b8a7d6c5b4a3f2e1d0c9b8a7f6e5d4c3b2a1f0e9d
ruleset_changed:
  description: Whether the anchor was (or in check mode would be) loaded.
  returned: always
  type: bool
  sample: true
file_changed:
  description: Whether the boot file was (or would be) written or removed.
  returned: always
  type: bool
  sample: false
pending_confirmation:
  description: Whether the load waits for O(confirm=true).
  returned: always
  type: bool
  sample: true
rollback_by:
  description: What puts the previous rules back unless the load is confirmed.
  returned: when the load waits for confirmation
  type: str
  sample: systemd timer warden-egress-rollback-3f1d5c0e0b1e.timer
rollback_at:
  description: When the target puts the previous rules back unless the load is confirmed (the target's clock).
  returned: when the load waits for confirmation
  type: str
  sample: "2026-12-02 11:02:00 +0000"
since_load:
  description:
    - Seconds between the load and the moment the box received this O(confirm=true) call (its clock).
    - Lets the controller place the load and the rollback on its own clock.
  returned: when O(confirm=true) finds a load waiting, or what its rollback did
  type: float
  sample: 21.3
confirmed_after:
  description: Seconds between the load and its confirmation.
  returned: when O(confirm=true) confirmed a load
  type: float
  sample: 2.4
rolled_back:
  description: Whether the target put the previous rules back (a late O(confirm=true) reports it).
  returned: when O(confirm=true) came too late
  type: bool
  sample: true
rolled_back_at:
  description: When the target put the previous rules back.
  returned: when O(confirm=true) came too late
  type: str
  sample: "2026-12-02 11:02:00 +0000"
rollback_seconds:
  description: Seconds between the load and the rollback.
  returned: when O(confirm=true) came too late
  type: float
  sample: 10.1
"""

from ansible_collections.warden.egress.plugins.module_utils import _apply_lifecycle as lifecycle
from ansible_collections.warden.egress.plugins.module_utils._apply_pf import PfDriver


def main() -> None:
    lifecycle.run(PfDriver, {
        "content": {"type": "str"},
        "anchor": {"type": "str", "default": "warden_egress"},
        "path": {"type": "path", "default": "/etc/pf.anchors/warden_egress"},
    })


if __name__ == "__main__":
    main()
