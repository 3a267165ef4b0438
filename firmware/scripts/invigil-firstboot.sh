#!/bin/sh
# invigil-firstboot.service: enrol the unit with the bridge using the seed's one-time code, then write the
# "enrolled" marker so this never runs again. Installed as /usr/lib/invigil/invigil-firstboot. Settings from the
# environment: INVIGIL_STATE_ROOT, INVIGIL_PYTHON, INVIGIL_CONFIG.
set -eu

state="${INVIGIL_STATE_ROOT:-/var/lib/invigil}"
python="${INVIGIL_PYTHON:-/opt/invigil/venv/bin/python}"
config="${INVIGIL_CONFIG:-/etc/invigil/edge.toml}"

# The unit's local admin secret (its page's staff login): made once, here, and shown once, on the console and in
# the journal, for staff to copy onto the unit's label. There is no default password.
# (A unit that has it says so and goes on.)
if secret="$("$python" -m edge_app secret --config "$config")"; then
    echo "the unit's admin secret (shown this once; write it on the unit's label): $secret"
fi

if [ ! -s "$state/enrol-code" ]; then
    # No code yet: staff can give one through the unit's page; this runs again at the next boot.
    echo "no enrolment code in $state/enrol-code: put one in the seed file (or enter it on the unit's page)"
    exit 0
fi

if ! "$python" -m edge_app enrol --help >/dev/null 2>&1; then
    echo "this release has no 'enrol' command: the unit cannot enrol itself" >&2
    exit 1
fi

# The enrolment sends the code, the device key's public half and the versions; it keeps the broker credentials
# it receives and removes the used code.
"$python" -m edge_app enrol --config "$config" --code-file "$state/enrol-code"

# Never again: invigil-firstboot.service has ConditionPathExists=!$state/enrolled.
date -u +%Y-%m-%dT%H:%M:%SZ > "$state/enrolled.tmp"
mv "$state/enrolled.tmp" "$state/enrolled"
echo "enrolled"
