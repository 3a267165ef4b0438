#!/bin/bash -e
# pi-gen, inside the image: the same install as the Debian arm64 root filesystem `make image-test` checks.
# PyPI has aarch64 wheels for most pins; the rest (pyaudio, python-prctl) build against 00-packages.
bash /tmp/invigil-bundle/install-unit.sh /tmp/invigil-bundle
rm -rf /tmp/invigil-bundle /root/.cache/pip
# The compilers were only for the wheels without an aarch64 build.
apt-get purge -y python3-dev gcc libc6-dev portaudio19-dev libcap-dev pkg-config
apt-get autoremove -y
