#!/usr/bin/env bash
# Install the Debian packages Invigil needs (Mosquitto broker, PortAudio for the microphone, espeak-ng for
# the speech the voice-activity tests synthesize, Chromium and its driver for the proctor page test, a C
# compiler for the outbox's power-cut test, nats-server for the clustered-broker test, shellcheck and
# systemd-analyze for the firmware's scripts and units).
# As root it runs apt-get; otherwise it prints the exact command and carries on.
set -euo pipefail
packages=(mosquitto mosquitto-clients portaudio19-dev espeak-ng chromium chromium-driver gcc libc6-dev nats-server
          shellcheck systemd)
missing=()
for package in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
[ ${#missing[@]} -eq 0 ] && exit 0
command="apt-get update && apt-get install -y --no-install-recommends ${missing[*]}"
if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
    echo "system packages: installing ${missing[*]}"
    DEBIAN_FRONTEND=noninteractive bash -c "$command" >/dev/null
else
    echo "system packages missing: ${missing[*]}. Install them with:"
    echo "    sudo sh -c '$command'"
fi
