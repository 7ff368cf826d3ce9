#!/usr/bin/env bash
# Installs what building and testing oxvpn needs on a fresh Debian machine: the rust-src component (for
# -Zbuild-std) and the Debian packages the test scripts use. Quick when everything is present.
set -eu
cd "$(dirname "$0")/.."
need=()
for pair in qemu-system-x86_64:qemu-system-x86 openvpn:openvpn ip:iproute2 iperf3:iperf3 tcpdump:tcpdump \
            dnsmasq:dnsmasq-base nft:nftables busybox:busybox python3:python3 gcc:gcc make:make curl:curl openssl:openssl \
            cpio:cpio nm:binutils virsh:libvirt-clients; do
    cmd=${pair%%:*}; pkg=${pair#*:}
    command -v "$cmd" >/dev/null 2>&1 || need+=("$pkg")
done
[ -f /etc/ssl/certs/ca-certificates.crt ] || need+=(ca-certificates)
python3 -c 'import cryptography' 2>/dev/null || need+=(python3-cryptography) # scripts/server-probe.py (AES-CTR)
[ -f /usr/include/stdio.h ] || need+=(libc6-dev) # host linking and ring's C; gcc only recommends it
# scripts/test-libvirt.sh: libvirtd, virtlogd, the QEMU driver and the libvirt-qemu user QEMU runs as. It
# depends on systemd's or sysvinit's glue; the test starts the daemons by hand when none runs.
[ -x /usr/sbin/libvirtd ] && getent passwd libvirt-qemu >/dev/null || need+=(libvirt-daemon-system)
if [ ${#need[@]} -gt 0 ]; then
    echo "setup: installing ${need[*]}"
    if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=; fi
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
# Rust: rustup if there is no cargo at all (fresh machine); rust-toolchain.toml then pins the toolchain and its
# components (rust-src for -Zbuild-std) on first use.
export PATH="$HOME/.cargo/bin:$PATH"
if ! command -v cargo >/dev/null 2>&1; then
    echo "setup: installing rustup"
    curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh -s -- -y -q --profile minimal --default-toolchain none
fi
rustup component list --installed 2>/dev/null | grep -q '^rust-src' || rustup component add rust-src
