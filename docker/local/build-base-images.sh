#!/usr/bin/env bash
# Base images for a machine that reaches Debian's mirror but no image registry (tests, CI):
# Debian bookworm built with debootstrap and imported into the local Docker engine, and from it
# stand-ins for the official images the stack uses by default (python, postgres, prometheus,
# nginx), each started the way the official one is. Users keep the official images; the tests
# pass these as build arguments and image variables (local/images.env).
# Needs root (debootstrap) and a running engine (local/start-engine.sh). Idempotent: an image
# already built is kept.
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
DOCKER="${DOCKER:-/usr/bin/docker}"
BASE=mlplatform-local/debian:bookworm
# The mirror apt itself uses here (no registry, but the Debian mirror answers).
MIRROR="${DEBIAN_MIRROR:-$(sed -n 's/^URIs: *//p' /etc/apt/sources.list.d/debian.sources 2>/dev/null | head -1)}"
MIRROR="${MIRROR:-http://deb.debian.org/debian}"

have() { "$DOCKER" image inspect "$1" >/dev/null 2>&1; }

if ! have "$BASE"; then
    root="$(mktemp -d /tmp/mlplatform-rootfs.XXXXXX)"
    trap 'rm -rf "$root"' EXIT
    echo "base: debootstrap bookworm from $MIRROR"
    debootstrap --variant=minbase --include=ca-certificates,python3,python3-venv,wget \
        bookworm "$root" "$MIRROR" >/dev/null
    # The machine's own extra CA certificates (an egress proxy's), so pip and requests inside
    # the images verify HTTPS as the host does.
    if compgen -G "/usr/local/share/ca-certificates/*.crt" >/dev/null; then
        cp /usr/local/share/ca-certificates/*.crt "$root/usr/local/share/ca-certificates/"
        chroot "$root" update-ca-certificates >/dev/null
    fi
    # apt as the host has it (with security updates), instead of debootstrap's one-line list.
    if cp /etc/apt/sources.list.d/debian.sources "$root/etc/apt/sources.list.d/" 2>/dev/null; then
        rm -f "$root/etc/apt/sources.list"
    fi
    rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
    tar -C "$root" -c . | "$DOCKER" import \
        -c 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
        -c 'ENV REQUESTS_CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt' \
        -c 'ENV SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt' \
        -c 'ENV PIP_CERT=/etc/ssl/certs/ca-certificates.crt' \
        -c 'CMD ["/bin/bash"]' - "$BASE" >/dev/null
fi

for image in postgres prometheus nginx; do
    if ! have "mlplatform-local/$image"; then
        echo "base: mlplatform-local/$image"
        DOCKER_BUILDKIT=1 "$DOCKER" build -q --build-arg "BASE_IMAGE=$BASE" \
            -t "mlplatform-local/$image" -f "$HERE/$image.Dockerfile" "$HERE" >/dev/null
    fi
done
echo "base images: ready ($BASE, mlplatform-local/{postgres,prometheus,nginx})"
