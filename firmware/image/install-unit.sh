#!/usr/bin/env bash
# Install the camera unit into the root filesystem it runs in (a chroot of the image being built), laid out
# as firmware/README.md ("On the unit") describes. Shared by the Raspberry Pi OS stage
# (stage-invigil/00-invigil/02-run-chroot.sh) and the Debian arm64 root filesystem (build-rootfs.sh), so both
# images hold the same thing:
#   /opt/invigil/venv                         the pinned dependencies with the `pi` and `audio` extras
#   /var/lib/invigil/releases/<version>/      app/ (edge_app), models/ (manifest.json + int8 models), manifest.json
#   /var/lib/invigil/releases/current         -> <version>, what the units run
#   /etc/systemd/..., /usr/lib/invigil/, /etc/invigil/, /etc/NetworkManager/conf.d/   from firmware/
#   /opt/invigil/selftest                     the image self-test (tools/image/selftest.py) and the pins
#
#   install-unit.sh BUNDLE [WHEELS]
# BUNDLE is what build-rootfs.sh stages under build/image/bundle; WHEELS, if given, is a folder of wheels
# to install from offline (otherwise pip uses the package index).
set -euo pipefail

bundle="${1:?usage: install-unit.sh BUNDLE [WHEELS]}"
wheels="${2:-}"
fw="$bundle/firmware"
state=/var/lib/invigil
pip_from=()
if [ -n "$wheels" ]; then
    pip_from=(--no-index --find-links "$wheels")
fi

# The service account: the unit app and its page run as invigil, with the camera, audio and GPIO groups.
for group in video audio gpio; do
    getent group "$group" >/dev/null || groupadd --system "$group"
done
id invigil >/dev/null 2>&1 || useradd --system --home-dir "$state" --no-create-home --shell /usr/sbin/nologin \
    --groups video,audio,gpio invigil
install -d -m 0750 -o invigil -g invigil "$state"
install -d -m 0755 -o root -g root "$state/releases"

# --system-site-packages: on Raspberry Pi OS the libcamera bindings picamera2 needs exist only as apt packages.
python3 -m venv --system-site-packages /opt/invigil/venv
pip=(/opt/invigil/venv/bin/pip --disable-pip-version-check --no-cache-dir --quiet)
"${pip[@]}" install "${pip_from[@]}" -r "$bundle/requirements.txt"
"${pip[@]}" check

# The first release: the app (from its wheel, no dependencies: those are the venv's) and the int8 models.
wheel="$(echo "$bundle"/app/invigil-*.whl)"
version="$(basename "$wheel" | cut -d- -f2)"
release="$state/releases/$version"
rm -rf "$release" && install -d -m 0755 "$release/app" "$release/models"
"${pip[@]}" install --no-index --no-deps --no-compile --target "$release/app" "$wheel"
install -m 0644 "$bundle"/models/* "$release/models/"
(cd "$release/models" && python3 - <<'PY'
import hashlib, json, pathlib, sys
manifest = json.loads(pathlib.Path("manifest.json").read_text())
for name, entry in manifest["models"].items():
    info = entry["files"]["int8"]
    if hashlib.sha256(pathlib.Path(info["file"]).read_bytes()).hexdigest() != info["sha256"]:
        sys.exit(f"{info['file']} ({name}) does not match manifest.json")
PY
)
# Its manifest.json (every file's SHA-256; no signature: the image is built, not updated), so that a rollback to
# it after the first update checks its files as it does any release's (edge_app/update/releases.py).
PYTHONPATH="$release/app" /opt/invigil/venv/bin/python -c \
    'import pathlib, sys; from edge_app.update.releases import write_first_manifest; write_first_manifest(pathlib.Path(sys.argv[1]))' \
    "$release"
ln -sfn "$version" "$state/releases/current"

# The operating-system layer from firmware/ (paths as in firmware/README.md).
install -d -m 0755 /etc/invigil /usr/lib/invigil /etc/systemd/journald.conf.d /etc/NetworkManager/conf.d \
    /boot/firmware /opt/invigil/selftest
install -m 0644 "$fw/config/edge.toml" /etc/invigil/edge.toml
install -m 0644 "$fw/config/NetworkManager-invigil.conf" /etc/NetworkManager/conf.d/invigil.conf
for script in "$fw"/scripts/invigil-*.sh; do
    [ -f "$script" ] && install -m 0755 "$script" "/usr/lib/invigil/$(basename "$script" .sh)"
done
for seed in "$fw"/seed/*.example; do
    [ -f "$seed" ] && install -m 0644 "$seed" /boot/firmware/
done
units=()
for unit in "$fw"/systemd/invigil-*; do
    [ -f "$unit" ] || continue
    install -m 0644 "$unit" /etc/systemd/system/
    case "$unit" in *.service | *.timer | *.path) units+=("$(basename "$unit")") ;; esac
done
for dropin in "$fw"/systemd/*.d/*.conf; do
    [ -f "$dropin" ] || continue
    where="$(basename "$(dirname "$dropin")")"
    case "$where" in
        journald.conf.d) target=/etc/systemd/journald.conf.d ;;
        *) target="/etc/systemd/system/$where" ;;
    esac
    install -D -m 0644 "$dropin" "$target/$(basename "$dropin")"
done
if [ ${#units[@]} -gt 0 ]; then
    systemctl enable "${units[@]}"
fi

install -m 0644 "$bundle/requirements.txt" /opt/invigil/requirements.txt
install -m 0644 "$bundle/selftest.py" /opt/invigil/selftest/selftest.py
echo "invigil $version installed: $(find "$release/models" -name '*.int8.tflite' | wc -l) int8 models," \
    "${#units[@]} systemd units, venv $(/opt/invigil/venv/bin/python -m pip list --format=freeze | wc -l) packages"
