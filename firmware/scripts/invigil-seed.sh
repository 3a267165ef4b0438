#!/bin/sh
# invigil-seed.service: copy the boot partition's seed file into the state root (edge_app/seed.py: validated,
# written atomically, its Wi-Fi passphrase and enrolment code then scrubbed from the FAT partition), hand the
# enrolment code to the unit's account, set the hostname and the Wi-Fi country. Installed as /usr/lib/invigil/invigil-seed.
# Every setting comes from the environment so the script can be tried in a temporary root:
#   INVIGIL_SEED (the seed file), INVIGIL_STATE_ROOT, INVIGIL_PYTHON, INVIGIL_USER (empty: no chown).
set -eu

seed="${INVIGIL_SEED:-/boot/firmware/invigil-seed.toml}"
state="${INVIGIL_STATE_ROOT:-/var/lib/invigil}"
python="${INVIGIL_PYTHON:-/opt/invigil/venv/bin/python}"
user="${INVIGIL_USER-invigil}"

if [ ! -f "$seed" ]; then
    echo "no seed file at $seed: nothing to apply"
    exit 0
fi

# The network folder holds NetworkManager keyfiles: root's alone (NetworkManager ignores anyone else's).
mkdir -p "$state/network"
chmod 0700 "$state/network"

# Validate and copy; every problem is printed (the journal keeps it) and nothing is written when there is one.
"$python" -m edge_app seed --seed "$seed" --root "$state"

# The enrolment runs as the unit's account (invigil-firstboot.service): it must read the code.
if [ -n "$user" ] && [ -f "$state/enrol-code" ]; then
    chown "$user:$user" "$state/enrol-code"
fi

# The hostname until the next boot (the root file system is read-only; the image links /etc/hostname to
# $state/hostname so it holds after a reboot too).
if [ -s "$state/hostname" ] && command -v hostnamectl >/dev/null 2>&1; then
    hostnamectl hostname --transient "$(cat "$state/hostname")" || echo "hostname not set (no hostnamed)"
fi

# The radio's regulatory domain: the Pi's Wi-Fi stays off until it is set.
country=$("$python" -c 'import json, sys; print(json.load(open(sys.argv[1]))["wifi_country"] or "")' \
    "$state/provision.json")
if [ -n "$country" ] && command -v iw >/dev/null 2>&1; then
    iw reg set "$country" || echo "Wi-Fi country $country not set"
fi
