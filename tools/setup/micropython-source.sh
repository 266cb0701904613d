#!/usr/bin/env bash
# Finds or fetches MicroPython's source and prints its path.
#   1. MICROPY_DIR, when set: any v1.25-v1.28 checkout (with its lib/ submodules);
#   2. otherwise Debian's source package `micropython` (suite trixie), unpacked
#      once into build/micropython-src from its upstream (.orig) tarball.
# usage: micropython-source.sh BUILD_DIR   (progress on stderr, path on stdout)
set -euo pipefail

build=$(realpath -m "$1")
say() { echo "mpml setup: $*" >&2; }

check_version() {
    local dir=$1 major minor
    major=$(sed -n 's/^#define MICROPY_VERSION_MAJOR \([0-9]*\)/\1/p' "$dir/py/mpconfig.h")
    minor=$(sed -n 's/^#define MICROPY_VERSION_MINOR \([0-9]*\)/\1/p' "$dir/py/mpconfig.h")
    if [ "$major" != 1 ] || [ "$minor" -lt 25 ] || [ "$minor" -gt 28 ]; then
        say "MicroPython $major.$minor at $dir is not supported: use v1.25 to v1.28."
        exit 1
    fi
}

if [ -n "${MICROPY_DIR:-}" ]; then
    if [ ! -f "$MICROPY_DIR/py/mpconfig.h" ]; then
        say "MICROPY_DIR=$MICROPY_DIR is not a MicroPython source tree (no py/mpconfig.h)."
        exit 1
    fi
    check_version "$MICROPY_DIR"
    realpath "$MICROPY_DIR"
    exit 0
fi

src=$build/micropython-src
if [ -f "$src/py/mpconfig.h" ]; then
    check_version "$src"
    echo "$src"
    exit 0
fi

# Debian's source package. apt needs a deb-src line for trixie; add one for the
# mirror the system already uses when we are root.
if ! apt-cache showsrc micropython 2>/dev/null | grep -q '^Version: 1\.2[5-8]'; then
    if [ "$(id -u)" -ne 0 ]; then
        say "no MicroPython source found. Either"
        say "  - point MICROPY_DIR at a MicroPython v1.25-v1.28 checkout with submodules:"
        say "      git clone -b v1.25.0 https://github.com/micropython/micropython && make -C micropython/ports/unix submodules"
        say "      make MICROPY_DIR=\$PWD/micropython setup"
        say "  - or run setup as root, so it can add a deb-src entry for Debian trixie and fetch the"
        say "    'micropython' source package."
        exit 1
    fi
    mirror=$(grep -rhoE '^(URIs:|deb) +https?://[^ ]+/debian/?' /etc/apt/sources.list /etc/apt/sources.list.d/ 2>/dev/null \
             | grep -v security | head -n1 | awk '{print $2}' || true)
    mirror=${mirror:-http://deb.debian.org/debian}
    say "adding deb-src entry for Debian trixie ($mirror) to fetch MicroPython's source package"
    cat > /etc/apt/sources.list.d/mpml-trixie-src.sources <<SRC
Types: deb-src
URIs: $mirror
Suites: trixie
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
    apt-get update -q >&2
fi

dl=$build/downloads
mkdir -p "$dl"
say "downloading Debian source package 'micropython'"
if ! (cd "$dl" && apt-get source -q --download-only micropython) > "$dl/apt-source.log" 2>&1; then
    cat "$dl/apt-source.log" >&2
    say "could not download the 'micropython' source package (log above)."
    exit 1
fi
orig=$(ls -t "$dl"/micropython_*.orig.tar.* | head -n1)

# Unpack beside the final place and rename, so an interrupted run leaves
# nothing half-unpacked behind.
tmp=$build/micropython-src.partial
rm -rf "$tmp"
mkdir -p "$tmp"
say "unpacking $(basename "$orig")"
tar -xf "$orig" -C "$tmp" --strip-components=1
check_version "$tmp"
mv "$tmp" "$src"
echo "$src"
