#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: contributors to warden.egress
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: nft_apply
short_description: Replace one nftables table atomically, only when it differs, with an optional confirmed apply
version_added: 0.1.0
description:
  - Loads a generated C(nft -f) file that declares exactly one table, in one transaction,
    so the table is replaced whole and no other table (Docker's, firewalld's, an
    administrator's) is touched.
  - The file is checked with C(nft -c) first; nothing is loaded when the check fails.
  - Idempotent. After a load, the module records the file's hash and the table as the
    kernel lists it back (without counters, and without the elements that traffic adds to
    dynamic sets such as per-source meters). When both still match, nothing is done. A hand edit to the table
    is seen as drift and put right.
  - Writes the file to O(path) so that a boot-time unit can load the same rules again. The
    new file is written under a temporary name beside O(path) before the table is loaded, and
    renamed into place after the load. If it cannot be written (a full disk, a directory at
    O(path)), nothing is loaded; if the rename fails, the previous table is loaded again. The
    kernel and the boot file never disagree, and the run fails with one line saying why.
  - With O(confirm_timeout), a confirmed apply. The host puts the previous table back by itself
    unless a second call with O(confirm=true) arrives within that many seconds, and only a
    confirmed load reaches the boot file and the record. The same contract as
    P(warden.egress.pf_apply#module).
  - One apply at a time. The module holds a lock in O(state_dir) for the whole run, so a second
    run on the same host waits for the first (at most O(lock_timeout) seconds).
    The commands it runs inherit that lock, so a command still running after the module was
    killed (an interrupted load) holds the next run back until it has finished.
  - Directories it creates get explicit modes whatever the umask (O(state_dir) 0700, the
    directory of O(path) 0755).
author:
  - warden.egress contributors (@warden-egress)
attributes:
  check_mode:
    support: full
    description: Reports whether the table or the file would change; loads and writes nothing.
  diff_mode:
    support: full
    description: Shows the previous ruleset against the new one.
  idempotent:
    support: full
    description: A second run with the same content reports no change.
options:
  content:
    description:
      - The ruleset file, as rendered by the P(warden.egress.to_nftables#filter) filter.
      - It may only create, delete and declare the table named by O(family) and O(table).
      - It must declare that table with at least one chain. An empty file, or one that only
        deletes the table, is refused; remove the table with O(state=absent).
      - Required when O(state=present).
    type: str
  table:
    description: Name of the table the collection owns.
    type: str
    default: warden_egress
  family:
    description: Family of that table.
    type: str
    choices: [inet, ip, ip6]
    default: inet
  path:
    description:
      - Where the loaded ruleset is kept for boot-time loading.
      - Set to an empty string to keep no file.
    type: path
    default: /etc/warden_egress/warden_egress.nft
  state_dir:
    description: Directory for the record of what was last applied, and the lock file C(apply.lock).
    type: path
    default: /var/lib/warden_egress
  lock_timeout:
    description:
      - Seconds to wait for another apply on the same host (same O(state_dir)) to finish.
        The run fails, changing nothing, when the lock is still held after that.
    type: int
    default: 120
    version_added: 0.5.0
  confirm_timeout:
    description:
      - Seconds the target waits for a second call with O(confirm=true) after a load that changed
        its rules. Before the load it saves what it owns (also when that is nothing), and after it
        arms a rollback that runs on the target without the controller. Unless confirmed in time,
        that rollback puts back exactly what was saved, in one transaction.
      - The rollback is a transient systemd timer (C(systemd-run --on-active)) where systemd runs
        the target and the module shares its network and mount namespaces; elsewhere (no systemd,
        or under C(ip netns exec)) it is a detached process and a twin forked from it, both holding
        a lock on its pid file; whichever is left when the window ends rolls back, so killing one
        of them (not their process group) leaves the load guarded.
      - The boot file and the record of what was applied are written only on confirmation, so
        a restart while a load waits brings the previous rules back.
      - One load waits at a time. Another load (or a removal) waits, releasing the apply lock,
        until the pending one is confirmed or rolled back, at most O(lock_timeout) seconds, then
        fails changing nothing. A plan whose rollback is no longer armed (the target restarted)
        is rolled back by the next run.
      - C(0) loads without a confirmation step. Below 15 seconds the module warns (too little
        time for a controller to reconnect and confirm).
    type: int
    default: 0
    version_added: 0.5.0
  confirm:
    description:
      - Confirm the load a previous call made with O(confirm_timeout). This stops its rollback and writes the
        record and the boot file. Give it without the rules (and without O(state=absent)).
      - Fails when no load waits ("nothing to confirm"), and when the rollback already ran or is
        no longer armed ("too late", with what the target did and when). Warns when the
        confirmation came after more than half of the window.
      - The window is strict. A confirmation that reaches the target after O(confirm_timeout) seconds
        is refused ("too late") even if the rollback has not run yet, and the previous rules are
        put back at once (in check mode it only says that the window has passed).
      - It signals the rollback process only after checking that the process group the pid file
        names runs this load's rollback program, with its token.
      - In check mode it says whether there is a load to confirm, and changes nothing.
    type: bool
    default: false
    version_added: 0.5.0
  state:
    description: C(present) loads O(content); C(absent) deletes the table, its file and its record.
    type: str
    choices: [present, absent]
    default: present
requirements:
  - nftables (the C(nft) command)
notes:
  - Needs root (CAP_NET_ADMIN) on the target.
"""

EXAMPLES = r"""
- name: Load the host's egress policy
  warden.egress.nft_apply:
    content: "{{ egress_policy | warden.egress.to_nftables }}"

- name: Load; the host puts the previous table back by itself unless confirmed within 60 seconds
  warden.egress.nft_apply:
    content: "{{ egress_policy | warden.egress.to_nftables }}"
    confirm_timeout: 60
  register: applied

- name: Drop the connection, so that the next task needs a new one
  ansible.builtin.meta: reset_connection

- name: Confirm over the new connection (keeps the table, writes the boot file)
  warden.egress.nft_apply:
    confirm: true
  when: applied.pending_confirmation

- name: Remove the collection's table and its boot file
  warden.egress.nft_apply:
    state: absent
"""

RETURN = r"""
table:
  description: The table managed, as C(family name).
  returned: always
  type: str
  sample: inet warden_egress
sha256:
  description: SHA-256 of O(content).
  returned: when O(state=present)
  type: str
  sample: 3f1d5c0e0b1e2d7a9c5f4e6b8a7d6c5b4a3f2e1d0c9b8a7f6e5d4c3b2a1f0e9d
ruleset_changed:
  description: Whether the kernel's table was (or in check mode would be) replaced.
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
    - Seconds between the load and the moment the target received this O(confirm=true) call (its clock).
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
from ansible_collections.warden.egress.plugins.module_utils._apply_nftables import NftablesDriver


def main() -> None:
    lifecycle.run(NftablesDriver, {
        "content": {"type": "str"},
        "table": {"type": "str", "default": "warden_egress"},
        "family": {"type": "str", "choices": ["inet", "ip", "ip6"], "default": "inet"},
        "path": {"type": "path", "default": "/etc/warden_egress/warden_egress.nft"},
    })


if __name__ == "__main__":
    main()
