//! The two ways the image dies unplanned: a Rust panic and a CPU exception.
//!
//! Layer: kernel glue. Both print to COM1 directly (no logger, no lock, no allocation), then leave through
//! isa-debug-exit with their exit code (`oxvpn_kernel::exit`).

use core::fmt::Write;
use core::panic::PanicInfo;

use boot::interrupts::ExceptionFrame;
use drivers::clock;
use crate::platform::Console;
use oxvpn_kernel::exit::ExitCode;
use crate::platform::exit;

fn stamp() -> (u64, u64) {
    let us = clock::now_us();
    (us / 1_000_000, us % 1_000_000)
}

#[panic_handler]
fn panic(info: &PanicInfo<'_>) -> ! {
    let (s, us) = stamp();
    let _ = writeln!(Console, "[{s:5}.{us:06}] PANIC {info}");
    let _ = writeln!(Console, "[{s:5}.{us:06}] FATAL exit: {}", ExitCode::Panic);
    exit(ExitCode::Panic)
}

/// Registered with `boot::interrupts::set_exception_hook`.
pub fn on_exception(frame: &ExceptionFrame) -> ! {
    let (s, us) = stamp();
    let (guard_start, guard_end) = boot::paging::stack_guard();
    if frame.vector == 14 && (guard_start..guard_end).contains(&ExceptionFrame::cr2()) {
        let _ = writeln!(
            Console,
            "[{s:5}.{us:06}] FATAL kernel stack overflow (guard page hit)"
        );
    }
    let _ = writeln!(Console, "[{s:5}.{us:06}] FATAL {frame}");
    let _ = writeln!(
        Console,
        "[{s:5}.{us:06}] FATAL exit: {}",
        ExitCode::CpuException
    );
    exit(ExitCode::CpuException)
}
