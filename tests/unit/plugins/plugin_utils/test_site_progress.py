"""site_compile.Progress: a count every batch, every few seconds and at the end, on a large site only."""

from __future__ import annotations

from ansible_collections.warden.egress.plugins.plugin_utils.compile.site import Progress


def test_a_line_every_batch_every_few_seconds_and_at_the_end():
    clock = iter([0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 11.0, 12.0, 13.0, 14.0, 15.0])  # the start, then after each target
    now = [0.0]

    def tick():
        now[0] = next(clock)
        return now[0]

    said = []
    progress = Progress(10, said.append, clock=tick, minimum=5, every=4, seconds=5.0)
    for done in range(1, 11):
        progress.step(done)
    assert said == [
        "warden.egress: compiled 4/10 hosts (4 s)",   # a batch of 4
        "warden.egress: compiled 6/10 hosts (11 s)",  # 7 s since the last line
        "warden.egress: compiled 8/10 hosts (13 s)",  # a batch of 4
        "warden.egress: compiled 10/10 hosts (15 s)",  # the end
    ]
    quiet = []
    small = Progress(5, quiet.append, clock=lambda: now[0], minimum=5, every=1, seconds=0.0)
    for done in range(1, 6):
        small.step(done)
    assert quiet == []
