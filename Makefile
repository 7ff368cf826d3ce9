# oxvpn build, test and demo entry points. See README.md.
#
#   make setup   install what the build and the tests need (rustup component, Debian packages)
#   make image   build/oxvpn.elf, the bootable PVH kernel
#   make tools   build/config-disk, build/ovpn-ping and build/ovpn-keys (host tools)
#   make run     the demo: OpenVPN server in a namespace, the router in QEMU, a LAN host using the tunnel
#   make run-server  the server demo: the image as an OpenVPN server in QEMU, three openvpn clients, a download
#   make test    host unit tests, then every scripts/test-*.sh (in-QEMU, interop, end to end, Xen domU, libvirt)
#   make xen     the image as a Xen PVH domU under nested Xen (scripts/test-xen.sh)
#   make xen-qubes  the image as a Qubes-style net VM with a client domU under nested Xen (scripts/test-xen-qubes.sh)

SHELL := /bin/bash
ACCEL ?= tcg
export ACCEL
CARGO ?= cargo
BUILD := build
KERNEL_TARGET := $(CURDIR)/x86_64-target.json
KERNEL_CARGO_FLAGS := -Zjson-target-spec -Zbuild-std=core,alloc -Zbuild-std-features=compiler-builtins-mem
# Set SKIP_SETUP=1 to skip the package checks (they are quick when everything is present).
SKIP_SETUP ?=

.PHONY: all setup image tools run run-server test-server test test-host test-scripts e2e xen xen-qubes bench bench-server fuzz fuzz-smoke lint clean

all: image tools

setup:
ifeq ($(SKIP_SETUP),)
	@scripts/setup.sh
endif

# ring's build.rs assembles its asm only for a fixed list of target_os values; the kernel build uses a copy of
# cargo's registry ring with "none" added (scripts/ring-none.sh). Host builds use stock ring.
$(BUILD)/ring-none/Cargo.toml: scripts/ring-none.sh kernel/Cargo.toml
	@scripts/ring-none.sh $(BUILD)/ring-none

image: setup $(BUILD)/ring-none/Cargo.toml
	@mkdir -p $(BUILD)
	cd kernel && RUSTC_BOOTSTRAP=1 $(CARGO) build --release $(KERNEL_CARGO_FLAGS) --target $(KERNEL_TARGET)
	cp kernel/target/x86_64-target/release/oxvpn $(BUILD)/oxvpn.elf
	@ls -l $(BUILD)/oxvpn.elf

tools: setup
	@mkdir -p $(BUILD)
	$(CARGO) build --release -p config-disk -p ovpn-ping -p ovpn-keys
	cp target/release/config-disk target/release/ovpn-ping target/release/ovpn-keys $(BUILD)/

run: image tools
	scripts/demo.sh

# SERVER=openvpn shows the same with Debian's openvpn as the server (the reference).
run-server: image tools
	scripts/demo-server.sh

# The server role against real clients; SERVER=openvpn runs it against Debian's openvpn 2.6 (the reference).
test-server: image tools
	scripts/test-server.sh

test: setup test-host image tools test-scripts

# Host unit tests: the workspace, then the kernel's pure library (boot arguments, exit codes), which lives in
# the kernel's own workspace (its manifest needs build/ring-none to resolve).
test-host: $(BUILD)/ring-none/Cargo.toml
	$(CARGO) test --workspace
	cd kernel && $(CARGO) test --lib

# Each scripts/test-*.sh is self-contained (makes its own namespaces, cleans up) and exits non-zero on failure.
test-scripts:
	@scripts/run-tests.sh

e2e: image tools
	scripts/test-e2e.sh

# The image as a Xen PVH domU under nested Xen in QEMU (scripts/xen/README.md; part of `make test`).
xen: image tools
	scripts/test-xen.sh

# The Qubes-style net VM under nested Xen (netback client domU, QubesDB rules; part of `make test`).
xen-qubes: image tools
	scripts/test-xen-qubes.sh

bench: image tools
	scripts/bench.sh

# The server role next to Debian's openvpn server (scripts/bench/server.sh); not part of `make test`.
bench-server: image tools
	scripts/bench/server.sh

fuzz:
	scripts/fuzz.sh all

fuzz-smoke:
	scripts/fuzz.sh smoke

lint:
	$(CARGO) clippy --workspace --all-targets -- -D warnings
	$(CARGO) fmt --all -- --check

clean:
	rm -rf $(BUILD) target kernel/target
