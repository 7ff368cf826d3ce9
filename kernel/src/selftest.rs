//! Test-only boot arguments that break the image on purpose, to show the fatal paths work
//! (`scripts/test-boot.sh`): `--test-panic`, `--test-stack-overflow`, `--test-fault`.
//!
//! Layer: kernel glue. Each hook ends the VM; none returns when its argument is given.

use log::info;
use oxvpn_kernel::args::BootArgs;
use oxvpn_kernel::exit::ExitCode;

use crate::fail;

/// Runs the hook of any `--test-*` argument given.
pub fn run(args: &BootArgs) {
    if args.test_panic {
        panic!("--test-panic given");
    }
    if args.test_stack_overflow {
        let (guard, _) = boot::paging::stack_guard();
        info!("--test-stack-overflow: recursing into the guard page at {guard:#x}");
        let depth = recurse(0);
        fail(
            ExitCode::Panic,
            format_args!("--test-stack-overflow: recursion returned at depth {depth}"),
        );
    }
    if args.test_fault {
        info!(
            "--test-fault: reading unmapped address {:#x}",
            TEST_FAULT_ADDR
        );
        // SAFETY: deliberately not safe: the read must fault (this address is not mapped) to show the
        // exception handler at work. It never returns.
        let v = unsafe { core::ptr::read_volatile(TEST_FAULT_ADDR as *const u64) };
        fail(
            ExitCode::Panic,
            format_args!("--test-fault: read of an unmapped address returned {v:#x}"),
        );
    }
}

/// Unbounded recursion with a frame the optimiser cannot remove, for `--test-stack-overflow`.
#[inline(never)]
fn recurse(depth: u64) -> u64 {
    let frame = core::hint::black_box([depth; 64]);
    if depth == core::hint::black_box(u64::MAX) {
        return depth;
    }
    core::hint::black_box(recurse(depth + 1)) + frame[0]
}

/// Not mapped: beyond the identity map (512 GiB at most) and canonical, so the CPU raises #PF (not #GP).
const TEST_FAULT_ADDR: u64 = 0x0000_7000_0000_0000;
