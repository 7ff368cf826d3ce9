#!/usr/bin/env bash
# Installs what building and testing oxvpn needs on a fresh Debian machine: the rust-src component (for
# -Zbuild-std) and the Debian packages the test scripts use. Quick when everything is present.
set -eu
cd "$(dirname "$0")/.."
rustup component list --installed 2>/dev/null | grep -q '^rust-src' || rustup component add rust-src
need=()
for pair in qemu-system-x86_64:qemu-system-x86 openvpn:openvpn ip:iproute2 iperf3:iperf3 tcpdump:tcpdump \
            dnsmasq:dnsmasq-base busybox:busybox python3:python3; do
    cmd=${pair%%:*}; pkg=${pair#*:}
    command -v "$cmd" >/dev/null 2>&1 || need+=("$pkg")
done
if [ ${#need[@]} -gt 0 ]; then
    echo "setup: installing ${need[*]}"
    if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=; fi
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
