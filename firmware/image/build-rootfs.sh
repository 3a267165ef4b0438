#!/usr/bin/env bash
# Build a Debian Bookworm arm64 root filesystem with the unit installed the way the Raspberry Pi OS stage
# (firmware/image/stage-invigil/) installs it: a venv with the pinned packages and the `pi` and `audio`
# extras, the int8 models, the invigil-* systemd units. Runs arm64 binaries through qemu-user-static
# (binfmt_misc), so it needs root on an x86 Debian host.
#
#   firmware/image/build-rootfs.sh            -> build/image/rootfs/ and build/image/invigil-arm64-rootfs.tar.zst
#
# Cached outside git under $INVIGIL_CACHE/image (default ~/.cache/invigil/image):
#   rootfs-<hash of suite, arch and rootfs-packages.txt>/  the debootstrap result
#   wheels-<hash of that and the pins>/                     aarch64 wheels of every pin (sdists built natively)
# so a second run only copies, installs offline and packs. DEBIAN_MIRROR overrides the archive taken from
# the host's own apt sources.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
CACHE="${INVIGIL_CACHE:-$HOME/.cache/invigil}/image"
OUT="$ROOT/build/image"
SUITE=bookworm
ARCH=arm64
VARIANT=minbase
# Only needed to build the wheels that PyPI has no aarch64 binary for (pyaudio, python-prctl, ...).
BUILD_PACKAGES=(python3-dev gcc libc6-dev portaudio19-dev libcap-dev pkg-config)
HOST_PYTHON="${PYTHON:-python3}"

log() { printf '[image %s] %s\n' "$(date +%H:%M:%S)" "$*"; }
die() { printf 'image: %s\n' "$*" >&2; exit 1; }
now() { date +%s; }
hash16() { sha256sum | cut -c1-16; }

mirror() {
    if [ -n "${DEBIAN_MIRROR:-}" ]; then echo "$DEBIAN_MIRROR"; return; fi
    local uri
    uri="$(grep -hoP '^URIs:\s*\K\S+' /etc/apt/sources.list.d/*.sources 2>/dev/null | grep -v security | head -n1 || true)"
    [ -n "$uri" ] || uri="$(grep -hoP '^deb\s+(\[[^]]*\]\s+)?\K\S+' /etc/apt/sources.list 2>/dev/null | head -n1 || true)"
    [ -n "$uri" ] || die "no Debian archive in the host's apt sources; set DEBIAN_MIRROR"
    echo "$uri"
}

check_host() {
    [ "$(id -u)" -eq 0 ] || die "needs root (debootstrap, chroot, mounts)"
    local missing=()
    command -v debootstrap >/dev/null || missing+=(debootstrap)
    command -v qemu-aarch64-static >/dev/null || missing+=(qemu-user-static)
    command -v update-binfmts >/dev/null || missing+=(binfmt-support)
    command -v zstd >/dev/null || missing+=(zstd)
    if [ ${#missing[@]} -gt 0 ]; then
        log "installing ${missing[*]}"
        DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}" >/dev/null
    fi
    if [ ! -e /proc/sys/fs/binfmt_misc/register ]; then
        mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc || die "binfmt_misc cannot be mounted here"
    fi
    [ -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ] || update-binfmts --enable qemu-aarch64 \
        || die "qemu-aarch64 cannot be registered with binfmt_misc"
    grep -q '^flags:.*F' /proc/sys/fs/binfmt_misc/qemu-aarch64 \
        || die "qemu-aarch64 is registered without the F flag; chroot would not find the interpreter"
}

MOUNTED=()
bind() {  # bind <source> <target inside a root>
    mkdir -p "$2"
    mount --bind "$1" "$2"
    MOUNTED+=("$2")
}
unmount_all() {
    local i
    for ((i = ${#MOUNTED[@]} - 1; i >= 0; i--)); do umount -l "${MOUNTED[$i]}" 2>/dev/null || true; done
    MOUNTED=()
}
trap unmount_all EXIT

ROOT_ENV=()  # extra VAR=value settings for in_root
in_root() {  # in_root <root> <command...>: a clean environment, so host pip settings stay outside
    local root="$1"; shift
    env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 \
        DEBIAN_FRONTEND=noninteractive "${ROOT_ENV[@]}" chroot "$root" "$@"
}

with_proc() {  # with_proc <root>: mount /proc and /dev the way apt and pip expect
    bind /proc "$1/proc"
    bind /dev "$1/dev"
}

build_base() {  # -> $BASE
    local packages key started
    packages="$(grep -v '^\s*#' "$HERE/rootfs-packages.txt" | grep -v '^\s*$' | paste -sd, -)"
    key="$(printf '%s %s %s\n' "$SUITE" "$ARCH" "$VARIANT" | cat - "$HERE/rootfs-packages.txt" | hash16)"
    BASE="$CACHE/rootfs-$key"
    if [ -f "$BASE/.complete" ]; then log "root filesystem cached ($BASE)"; return; fi
    log "debootstrap $SUITE $ARCH ($packages)"
    started="$(now)"
    rm -rf "$BASE.partial"
    debootstrap --arch="$ARCH" --variant="$VARIANT" --include="$packages" "$SUITE" "$BASE.partial" "$(mirror)"
    in_root "$BASE.partial" apt-get clean
    rm -rf "$BASE" && mv "$BASE.partial" "$BASE"
    echo "$(($(now) - started))" > "$BASE/.complete"
    log "debootstrap took $(cat "$BASE/.complete") s"
}

build_wheels() {  # -> $WHEELS
    local key builder started
    key="$(cat "$OUT/requirements.txt" <(basename "$BASE") <(printf '%s\n' "${BUILD_PACKAGES[@]}") | hash16)"
    WHEELS="$CACHE/wheels-$key"
    if [ -f "$WHEELS/.complete" ]; then log "aarch64 wheels cached ($WHEELS)"; return; fi
    started="$(now)"
    builder="$OUT/builder"
    rm -rf "$builder" "$WHEELS.partial" && mkdir -p "$WHEELS.partial"
    cp -a "$BASE" "$builder"
    cp -L /etc/resolv.conf "$builder/etc/resolv.conf"
    with_proc "$builder"
    log "build packages for sdists: ${BUILD_PACKAGES[*]}"
    in_root "$builder" apt-get update -qq
    in_root "$builder" apt-get install -y -qq --no-install-recommends "${BUILD_PACKAGES[@]}" >/dev/null
    bind "$WHEELS.partial" "$builder/wheels"
    cp "$OUT/requirements.txt" "$builder/requirements.txt"
    # The builder trusts what the host's pip trusts (a site's own CA, for one); the image never sees it.
    cp -L "${PIP_CERT:-/etc/ssl/certs/ca-certificates.crt}" "$builder/tmp/host-ca.pem"
    log "pip wheel (aarch64, under emulation)"
    in_root "$builder" python3 -m venv /tmp/wheelvenv
    ROOT_ENV=(PIP_CERT=/tmp/host-ca.pem)
    in_root "$builder" /tmp/wheelvenv/bin/pip wheel --disable-pip-version-check --progress-bar off --use-pep517 \
        --wheel-dir /wheels -r /requirements.txt
    ROOT_ENV=()
    unmount_all
    rm -rf "$builder" "$WHEELS"
    mv "$WHEELS.partial" "$WHEELS"
    echo "$(($(now) - started))" > "$WHEELS/.complete"
    log "wheels took $(cat "$WHEELS/.complete") s"
}

make_bundle() {  # build/image/bundle: what install-unit.sh installs, for this build and for the Pi OS stage
    local bundle="$OUT/bundle" part
    rm -rf "$bundle" "$OUT/appsrc" && mkdir -p "$bundle/app" "$bundle/firmware" "$OUT/appsrc"
    # The wheel is built from a copy, so setuptools' build/lib never lands in (or goes stale in) the checkout.
    (cd "$ROOT" && tar --exclude=__pycache__ -cf - pyproject.toml README.md edge_app cloud_bridge) \
        | tar -C "$OUT/appsrc" -xf -
    "$HOST_PYTHON" -m pip wheel --quiet --disable-pip-version-check --no-deps \
        --wheel-dir "$bundle/app" "$OUT/appsrc" >/dev/null
    rm -rf "$OUT/appsrc"
    (cd "$ROOT" && "$HOST_PYTHON" -m tools.image.layout models build/models "$bundle/models")
    cp "$OUT/requirements.txt" "$bundle/requirements.txt"
    cp "$ROOT/tools/image/selftest.py" "$HERE/install-unit.sh" "$bundle/"
    for part in systemd scripts config seed; do  # units and scripts are written alongside: whatever is there
        [ -d "$ROOT/firmware/$part" ] && cp -r "$ROOT/firmware/$part" "$bundle/firmware/"
    done
    log "bundle: $(find "$bundle/firmware" -type f | wc -l) files from firmware/"
}

install_app() {  # $OUT/rootfs: the cached root filesystem with the unit installed, offline
    local rootfs="$OUT/rootfs"
    rm -rf "$rootfs"
    cp -a "$BASE" "$rootfs" && rm -f "$rootfs/.complete"
    with_proc "$rootfs"
    bind "$OUT/bundle" "$rootfs/tmp/invigil-bundle"
    bind "$WHEELS" "$rootfs/tmp/wheels"
    log "installing the unit (venv with the pins, pi and audio extras; models; units) under emulation"
    in_root "$rootfs" bash /tmp/invigil-bundle/install-unit.sh /tmp/invigil-bundle /tmp/wheels
    in_root "$rootfs" /opt/invigil/venv/bin/pip freeze --all > "$OUT/freeze-aarch64.txt"
    unmount_all
    rmdir "$rootfs/tmp/invigil-bundle" "$rootfs/tmp/wheels"
    echo invigil > "$rootfs/etc/hostname"
    rm -rf "$rootfs/var/lib/apt/lists/"* "$rootfs/var/cache/apt/"*.bin "$rootfs/root/.cache"
}

pack() {
    log "packing"
    tar -C "$OUT/rootfs" --numeric-owner -cf - . | zstd -q -T0 -12 -o "$OUT/invigil-arm64-rootfs.tar.zst" -f
}

main() {
    local started total
    started="$(now)"
    check_host
    mkdir -p "$CACHE" "$OUT"
    (cd "$ROOT" && "$HOST_PYTHON" -m tools.image.pins) > "$OUT/requirements.txt"
    [ -f "$ROOT/build/models/manifest.json" ] || die "no build/models/manifest.json: run \`make models\` first"
    build_base
    echo "$BASE" > "$OUT/base-path"  # for make image-test BOOT=1 (its kernel kit is keyed on this root filesystem)
    build_wheels
    make_bundle
    install_app
    pack
    total="$(($(now) - started))"
    (cd "$ROOT" && "$HOST_PYTHON" -m tools.image.layout figures "$OUT" --debootstrap-s "$(cat "$BASE/.complete")" \
        --wheels-s "$(cat "$WHEELS/.complete")" --build-s "$total")
}

main "$@"
