#!/bin/bash -e
# pi-gen, on the build host: copy the bundle `make image` staged (build/image/bundle: app wheel, pins,
# int8 models, invigil-* units from firmware/systemd/, install-unit.sh) into the image.
: "${INVIGIL_BUNDLE:?set INVIGIL_BUNDLE in the pi-gen config to build/image/bundle of the repository}"
[ -f "${INVIGIL_BUNDLE}/install-unit.sh" ] || { echo "no bundle at ${INVIGIL_BUNDLE}: run make image" >&2; exit 1; }
rm -rf "${ROOTFS_DIR}/tmp/invigil-bundle"
cp -r "${INVIGIL_BUNDLE}" "${ROOTFS_DIR}/tmp/invigil-bundle"
