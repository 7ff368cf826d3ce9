#!/usr/bin/env bash
# In-QEMU boot tests: boots build/oxvpn.elf on pc, q35 and microvm and asserts on the serial console and on
# QEMU's exit status (isa-debug-exit: 33 clean, 35 bad arguments, 41 unsupported, 43 panic, 45 CPU exception).
# The ACPI power button on pc and q35 (monitor system_powerdown: S5, QEMU status 0).
# Also measures the time from starting QEMU to the first serial line and fails above BOOT_LIMIT_MS.
#
# Needs: make image. Environment: ACCEL (default tcg), BOOT_LIMIT_MS (default 1000).
set -u
cd "$(dirname "$0")/.."
[ -f build/oxvpn.elf ] || { echo "test-boot: build/oxvpn.elf missing (make image)"; exit 1; }
tmp=$(mktemp -d /tmp/oxv-boot.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
limit=${BOOT_LIMIT_MS:-1000}
checks=0
failures=0
times=()

fail() {
    failures=$((failures + 1))
    echo "FAIL: $*"
}

# boot NAME EXPECTED_STATUS [qemu.sh args...]: runs the image, keeps the console in $tmp/NAME.log and the
# milliseconds from launch to the first console line in $tmp/NAME.ms.
boot() {
    local name=$1 expect=$2
    shift 2
    local start
    start=$(date +%s%N)
    QEMU_TIMEOUT=${QEMU_TIMEOUT:-30} scripts/qemu.sh "$@" 2>&1 | {
        IFS= read -r first || true
        echo $((($(date +%s%N) - start) / 1000000)) >"$tmp/$name.ms"
        printf '%s\n' "$first"
        cat
    } >"$tmp/$name.log"
    local status=${PIPESTATUS[0]}
    checks=$((checks + 1))
    if [ "$status" != "$expect" ]; then
        fail "$name: QEMU status $status, expected $expect; console:"
        sed 's/^/    | /' "$tmp/$name.log"
        return 1
    fi
}

# expect NAME REGEX...: every extended regex must match a console line.
expect() {
    local name=$1
    shift
    for re in "$@"; do
        checks=$((checks + 1))
        if ! grep -qE -- "$re" "$tmp/$name.log"; then
            fail "$name: no console line matches /$re/; console:"
            sed 's/^/    | /' "$tmp/$name.log"
        fi
    done
}

# refuse NAME REGEX: no console line may match.
refuse() {
    checks=$((checks + 1))
    if grep -qE -- "$2" "$tmp/$1.log"; then
        fail "$1: unexpected console line matching /$2/"
    fi
}

for m in pc q35 microvm; do
    # A clean boot: banner, memory map, CPU features, clock, entropy, ring, idle timer, clean exit.
    if boot "$m" 33 -M "$m"; then
        expect "$m" \
            '^\[ +0\.[0-9]{6}\] INFO  oxvpn: oxvpn [0-9.]+ booting$' \
            'memory map \([0-9]+ entries\):' \
            '0x000100000-0x[0-9a-f]+ +[0-9]+ KiB ram' \
            'memory: image 0x100000-0x[0-9a-f]+ .* heap 0x[0-9a-f]+-0x[0-9a-f]+ \([0-9]+ MiB\)' \
            'cpu: .*sse4\.2 aes-ni pclmulqdq' \
            'clock: TSC [0-9]+\.[0-9]{3} MHz from ' \
            'wall clock: 20[0-9]{2}-[0-9]{2}-[0-9]{2}T[0-9:]{8}Z \(CMOS RTC' \
            'entropy: (RDSEED|RDRAND) seeds a ChaCha20 CSPRNG' \
            'timer: LAPIC one-shot at [0-9]+ MHz' \
            'crypto: ring SHA-256\("oxvpn"\) = 58ccb7129017f1b49516721c456968746c810794cdfa7ce9fb098f18fca81a4d' \
            'crypto: ring SystemRandom served by the kernel CSPRNG' \
            'idle: woke from hlt [0-9]+ us after arming a 10000 us deadline' \
            'exit: clean shutdown \(exit code 0x10, QEMU status 33\)'
        if [ "$m" = microvm ]; then
            expect "$m" 'acpi: power button not armed: no RSDP \(ACPI off\)'
        else
            expect "$m" 'acpi: power button armed \(PM1a_EVT 0x[0-9a-f]+, PM1a_CNT 0x[0-9a-f]+, S5 SLP_TYP [0-7];'
        fi
        refuse "$m" 'ERROR|PANIC|FATAL|powering off'
        ms=$(cat "$tmp/$m.ms")
        times+=("$m ${ms} ms")
        checks=$((checks + 1))
        [ "$ms" -lt "$limit" ] || fail "$m: first serial line after ${ms} ms (limit ${limit} ms)"
    fi

    # The CPU exception handler: a page fault at a known address, vector, error code, RIP, CR2, registers.
    if boot "$m-fault" 45 -M "$m" -a "--test-fault"; then
        expect "$m-fault" \
            'FATAL CPU exception 14 \(#PF page fault\) error code 0x0 at rip 0x[0-9a-f]{16} cr2 0x0000700000000000' \
            '^  rax 0x0000700000000000 rbx 0x[0-9a-f]{16}' \
            '^  r12 0x[0-9a-f]{16} r13' \
            '^  rflags 0x[0-9a-f]{8} cs 0x0008 ss 0x0010' \
            'FATAL exit: CPU exception \(exit code 0x16, QEMU status 45\)'
    fi

    # The stack guard page: unbounded recursion ends in a page fault that says so.
    if boot "$m-stack" 45 -M "$m" -a "--test-stack-overflow"; then
        expect "$m-stack" 'FATAL kernel stack overflow \(guard page hit\)' \
            'FATAL CPU exception 14 \(#PF page fault\) error code 0x2'
    fi

    # The panic handler.
    if boot "$m-panic" 43 -M "$m" -a "--test-panic"; then
        expect "$m-panic" 'PANIC panicked at src/[a-z_]+\.rs:[0-9]+:[0-9]+:' '^--test-panic given$' \
            'FATAL exit: panic \(exit code 0x15, QEMU status 43\)'
    fi
done

# Boot arguments: an unknown one, a malformed one, --help, and --verb=0 silencing informational lines.
if boot bad-arg 35 -M microvm -a "--nat --bogus=1"; then
    expect bad-arg "ERROR oxvpn: unknown boot argument '--bogus=1' \(see --help\)" \
        'exit: bad boot arguments \(exit code 0x11, QEMU status 35\)'
fi
if boot bad-verb 35 -M microvm -a "--verb=12"; then
    expect bad-verb 'boot argument --verb=12: expected a level from 0 to 11'
fi
if boot help 33 -M microvm -a "--help"; then
    expect help '^  --private-ipv4=CIDR' '^  --verb=N' '^  --test-fault'
fi
if boot quiet 33 -M microvm -a "--verb=0"; then
    refuse quiet 'INFO  oxvpn: (cpu|clock|memory|entropy|exit)'
    expect quiet 'INFO  oxvpn: oxvpn [0-9.]+ booting' # the banner precedes argument parsing
fi

# Hardware the image refuses to run without: no RDRAND/RDSEED, no AES-NI.
if [ "${ACCEL:-tcg}" = tcg ]; then
    if boot no-rng 41 -M microvm -- -cpu max,-rdrand,-rdseed; then
        expect no-rng 'no hardware entropy source: the CPU has neither RDSEED nor RDRAND; refusing to run' \
            'exit: unsupported machine \(exit code 0x14, QEMU status 41\)'
    fi
    if boot no-aes 41 -M microvm -- -cpu max,-aes; then
        # Checked by the trampoline before any Rust code runs (Rust code may use AES-NI/SSE4 anywhere).
        expect no-aes '^oxvpn: this CPU lacks SSE3/SSSE3/SSE4.1/SSE4.2/POPCNT/AES-NI/PCLMULQDQ'
    fi
    if boot no-sse41 41 -M pc -- -cpu max,-sse4.1; then
        expect no-sse41 '^oxvpn: this CPU lacks'
    fi
fi

# Without isa-debug-exit the image halts after saying goodbye; QEMU keeps running until killed.
for m in pc microvm; do
    if DEBUG_EXIT=off QEMU_TIMEOUT=4 boot "no-exit-device-$m" 124 -M "$m"; then
        expect "no-exit-device-$m" 'exit: clean shutdown'
    fi
done

# The ACPI power button (QEMU's monitor `system_powerdown`, what `virsh shutdown` presses): a router with two
# NICs and no config disk keeps running until then, shuts down and powers off through S5: QEMU status 0.
for m in pc q35; do
    mon=$tmp/$m-power.sock
    QEMU_TIMEOUT=30 scripts/qemu.sh -M "$m" -a "--ipv4=10.0.2.15/24 --ipv4-gateway=10.0.2.2 --private-ipv4=192.168.9.1/24" \
        -- -netdev user,id=n0 -device virtio-net-pci,netdev=n0 -netdev user,id=n1 -device virtio-net-pci,netdev=n1 \
        -monitor "unix:$mon,server,nowait" >"$tmp/$m-power.log" 2>&1 &
    qemu=$!
    for _ in $(seq 100); do grep -q "config disk: none found" "$tmp/$m-power.log" && break; sleep 0.1; done
    python3 - "$mon" <<'PY'
import socket, sys, time
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
s.settimeout(2)
s.recv(4096)
s.sendall(b"system_powerdown\n")
time.sleep(0.2)
PY
    wait "$qemu"
    status=$?
    checks=$((checks + 1))
    if [ "$status" != 0 ]; then
        fail "$m-power: QEMU status $status after system_powerdown, expected 0 (ACPI S5); console:"
        sed 's/^/    | /' "$tmp/$m-power.log"
    else
        expect "$m-power" 'acpi: power button pressed' 'host requests Poweroff: shutting down' \
            'exit: clean shutdown' 'acpi: powering off \(S5\)'
    fi
done

if [ "$failures" -eq 0 ]; then
    echo "test-boot: ok, $checks checks (first serial line under ${ACCEL:-tcg}: ${times[*]})"
else
    echo "test-boot: FAILED, $failures of $checks checks failed"
    exit 1
fi
