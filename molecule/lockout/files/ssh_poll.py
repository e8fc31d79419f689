"""Open a new SSH login to a host every half second, until logins have failed and then worked
again (or time runs out); print when they changed, as JSON: [{"at": EPOCH, "ok": BOOL}, ...].
Each try is a new connection (no connection sharing), as a controller's would be."""

from __future__ import annotations

import json
import subprocess
import sys
import time


def main(host: str, key: str, seconds: float) -> None:
    end = time.time() + seconds
    events: list[dict] = []
    while time.time() < end:
        started = time.time()
        try:
            ok = subprocess.run(["ssh", "-i", key, "-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes", "-o", "StrictHostKeyChecking=no",
                                 "-o", "UserKnownHostsFile=/dev/null", "-o", "ControlPath=none", "-o", "ConnectTimeout=3",
                                 "-o", "LogLevel=ERROR", f"root@{host}", "true"],
                                capture_output=True, timeout=10, check=False).returncode == 0
        except subprocess.TimeoutExpired:
            ok = False
        if not events or events[-1]["ok"] != ok:
            events.append({"at": started, "ok": ok})
        if ok and any(not event["ok"] for event in events):
            break
        time.sleep(0.5)
    print(json.dumps(events))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], float(sys.argv[3]))
