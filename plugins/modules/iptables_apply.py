#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: contributors to warden.egress
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: iptables_apply
short_description: Replace the collection's own iptables chains and ipsets atomically, only when they differ, with an optional confirmed apply
version_added: 0.2.0
description:
  - Loads the files rendered by P(warden.egress.to_iptables#filter) for IPv4 and IPv6. The
    collection owns the filter-table chains named C(TABLE-*) and the ipsets their rules use;
    every other chain, rule, policy and set is left as it was (nothing is flushed but its own
    chains).
  - Each family is changed in one C(iptables-restore --noflush) transaction that refills the
    collection's chains, puts its jump at the top of OUTPUT or FORWARD (moving it back there
    if something was inserted above it), and removes chains it no longer needs.
  - Set names carry a generation. New sets are created first and the old ones are destroyed
    only after both families switched, so no packet meets new sets with old rules.
  - Before anything is touched the files are loaded into a scratch network namespace (when
    the target allows C(unshare --net)), and each transaction is checked with
    C(iptables-restore --test). If the IPv6 load fails after the IPv4 one succeeded, the IPv4
    chains are put back as they were.
  - Idempotent. After a load the module records the files' hash and the chains, jumps and
    set members as the kernel lists them back. When both still match, nothing is done; a hand
    edit, a deleted jump or a jump pushed down is drift and is put right. A set created with a
    C(timeout) (audit mode's memory of the flows already logged) is filled by the kernel, so
    only its definition is compared, never its members.
  - Writes the files to O(directory) so that a boot-time unit can load the same rules again.
    The new files are written under temporary names in O(directory) before anything is
    loaded, and renamed into place after both families switched; the previous generation's
    sets are destroyed only then. If a file cannot be written, nothing is loaded; if a rename
    fails, the files already renamed and both families are put back as they were. The kernel
    and the boot files never disagree, and never mix two policies.
  - With O(confirm_timeout), a confirmed apply. The host puts the previous chains and sets back by itself
    unless a second call with O(confirm=true) arrives within that many seconds, and only a
    confirmed load reaches the boot files and the record. The same contract as
    P(warden.egress.pf_apply#module).
  - One apply at a time. The module holds a lock in O(state_dir) for the whole run, so a second
    run on the same host waits for the first (at most O(lock_timeout) seconds).
    The commands it runs inherit that lock, so a command still running after the module was
    killed (an interrupted load) holds the next run back until it has finished.
  - Directories it creates get explicit modes whatever the umask (O(state_dir) 0700,
    O(directory) 0755).
author:
  - warden.egress contributors (@warden-egress)
attributes:
  check_mode:
    support: full
    description: Reports whether the rules or files would change; loads and writes nothing.
  diff_mode:
    support: full
    description: Shows the previously applied files (or the live chains) against the new ones.
  idempotent:
    support: full
    description: A second run with the same content reports no change.
options:
  ipset:
    description: The ipset file (C(create) and C(add) lines only). Required when O(state=present).
    type: str
  ipv4:
    description:
      - The C(iptables-restore) file for IPv4. Required when O(state=present).
      - It must insert the jump into the collection's chains. An empty file, or one with no
        jump, is refused; remove the chains with O(state=absent).
    type: str
  ipv6:
    description:
      - The C(ip6tables-restore) file for IPv6. Required when O(state=present).
      - It must insert the jump into the collection's chains, as O(ipv4) does.
    type: str
  table:
    description: Owner name; the collection's chains are named C(TABLE-*).
    type: str
    default: warden_egress
  directory:
    description:
      - Where the loaded files are kept for boot-time loading, as C(TABLE.ipset),
        C(TABLE.rules.v4) and C(TABLE.rules.v6).
      - Set to an empty string to keep no files.
    type: path
    default: /etc/warden_egress
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
        that rollback puts back exactly what was saved, in one transaction per family (the sets first, then IPv4, then IPv6).
      - The rollback is a transient systemd timer (C(systemd-run --on-active)) where systemd runs
        the target and the module shares its network and mount namespaces; elsewhere (no systemd,
        or under C(ip netns exec)) it is a detached process and a twin forked from it, both holding
        a lock on its pid file; whichever is left when the window ends rolls back, so killing one
        of them (not their process group) leaves the load guarded.
      - The boot files and the record of what was applied are written only on confirmation, so
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
        record and the boot files. Give it without the rules (and without O(state=absent)).
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
    description: C(present) loads the files; C(absent) removes the chains, jumps, sets, files and record.
    type: str
    choices: [present, absent]
    default: present
requirements:
  - iptables (C(iptables-restore), C(ip6tables-restore), C(iptables-save), C(ip6tables-save)), nft or legacy backend
  - ipset
notes:
  - Needs root (CAP_NET_ADMIN) on the target.
"""

EXAMPLES = r"""
- name: Load the host's egress policy with iptables
  warden.egress.iptables_apply:
    ipset: "{{ ruleset.ipset }}"
    ipv4: "{{ ruleset.ipv4 }}"
    ipv6: "{{ ruleset.ipv6 }}"
  vars:
    ruleset: "{{ egress_policy | warden.egress.to_iptables }}"

- name: Load; the host puts the previous chains and sets back by itself unless confirmed within 60 seconds
  warden.egress.iptables_apply:
    ipset: "{{ ruleset.ipset }}"
    ipv4: "{{ ruleset.ipv4 }}"
    ipv6: "{{ ruleset.ipv6 }}"
    confirm_timeout: 60
  vars:
    ruleset: "{{ egress_policy | warden.egress.to_iptables }}"
  register: applied

- name: Drop the connection, so that the next task needs a new one
  ansible.builtin.meta: reset_connection

- name: Confirm over the new connection (keeps the rules, writes the boot files, destroys the old sets)
  warden.egress.iptables_apply:
    confirm: true
  when: applied.pending_confirmation

- name: Remove the collection's chains, sets and boot files
  warden.egress.iptables_apply:
    state: absent
"""

RETURN = r"""
chains:
  description: The collection's chains after the run, per family.
  returned: always
  type: dict
  sample: {"ipv4": ["warden_egress-deny", "warden_egress-output"], "ipv6": ["warden_egress-deny", "warden_egress-output"]}
sha256:
  description: SHA-256 of the three files together.
  returned: when O(state=present)
  type: str
  sample: 3f1d5c0e0b1e2d7a9c5f4e6b8a7d6c5b4a3f2e1d0c9b8a7f6e5d4c3b2a1f0e9d
ruleset_changed:
  description: Whether the chains or sets were (or in check mode would be) replaced.
  returned: always
  type: bool
  sample: true
file_changed:
  description: Whether the boot files were (or would be) written or removed.
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
validated:
  description: How the files were checked before loading (C(scratch namespace and --test) or C(--test)).
  returned: when the rules were loaded
  type: str
  sample: scratch namespace and --test
"""

from ansible_collections.warden.egress.plugins.module_utils import _apply_lifecycle as lifecycle
from ansible_collections.warden.egress.plugins.module_utils._apply_iptables import IptablesDriver


def main() -> None:
    lifecycle.run(IptablesDriver, {
        "ipset": {"type": "str"},
        "ipv4": {"type": "str"},
        "ipv6": {"type": "str"},
        "table": {"type": "str", "default": "warden_egress"},
        "directory": {"type": "path", "default": "/etc/warden_egress"},
    })


if __name__ == "__main__":
    main()
