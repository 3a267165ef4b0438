#!/bin/sh
# The health check after an update switch (INVIGIL_UPDATE_HEALTH of invigil-update.service): restart the unit on
# the release now current and see it come up, then make sure the new release's updater runs (a release that
# broke it could never be replaced). Exit 0: healthy; anything else rolls the switch back.
# Installed as /usr/lib/invigil/invigil-health. INVIGIL_RELEASE names the release folder to check.
set -eu

release="${INVIGIL_RELEASE:?INVIGIL_RELEASE must name the release folder}"
python="${INVIGIL_PYTHON:-/opt/invigil/venv/bin/python}"
settle="${INVIGIL_HEALTH_SETTLE:-30}"

state="${INVIGIL_STATE_ROOT:-/var/lib/invigil}"

# Type=notify: the restart returns once the unit said READY=1 (models loaded, camera delivering), or fails after
# its TimeoutStartSec.
started="$(date +%s)"
systemctl restart invigil-unit.service
# A release that crashes soon after READY (or stops feeding the watchdog) fails too.
sleep "$settle"
systemctl is-active --quiet invigil-unit.service
# An enrolled unit must have reached its broker again since the restart (its first heartbeat writes link.json).
if [ -e "$state/enrolment.env" ]; then
    "$python" -c 'import json, sys; sys.exit(json.load(open(sys.argv[1]))["connected_at"] < float(sys.argv[2]))' \
        "$state/link.json" "$started" || { echo "unhealthy: the unit did not reconnect to its broker" >&2; exit 1; }
fi
# The page follows the release it serves.
systemctl try-restart invigil-page.service
# The new release's updater imports and reads the state.
PYTHONPATH="$release/app" "$python" -m edge_app update status >/dev/null
echo "healthy: $release"
