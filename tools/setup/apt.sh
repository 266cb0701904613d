#!/usr/bin/env bash
# System packages mpml needs: cross compilers for the native modules and the
# qemu boards, qemu itself, and what the unix port links against.
# Installs them when run as root; otherwise prints the exact command and fails.
set -euo pipefail

PACKAGES=(
    build-essential pkg-config libffi-dev python3 python3-venv
    gcc-arm-none-eabi libnewlib-arm-none-eabi binutils-arm-none-eabi
    gcc-riscv64-unknown-elf picolibc-riscv64-unknown-elf
    qemu-system-arm qemu-system-misc
    dpkg-dev xz-utils
    # firmware images (make firmware BOARD=RPI_PICO): the rp2 port is built with
    # CMake, and pico-sdk compiles a little C++ (picotool, operator new/delete)
    cmake g++ libstdc++-arm-none-eabi-newlib
)
# Extra names to require (the tests use this to check the not-root message).
PACKAGES+=(${MPML_EXTRA_APT_PACKAGES:-})

missing=()
for p in "${PACKAGES[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing+=("$p")
    fi
done

if [ ${#missing[@]} -eq 0 ]; then
    exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
    echo "mpml setup: these system packages are missing: ${missing[*]}" >&2
    echo "Install them as root, then run make again:" >&2
    echo "    sudo apt-get install -y --no-install-recommends ${missing[*]}" >&2
    exit 1
fi

echo "mpml setup: installing system packages: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends "${missing[@]}"
