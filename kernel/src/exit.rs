//! Exit codes. Leaving the VM is the platform's (`kernel/src/platform`): under QEMU through isa-debug-exit,
//! under Xen through SCHEDOP_shutdown (poweroff for a clean exit, crash otherwise; the code is only logged).
//!
//! Layer: the one place that decides what the image's endings mean. QEMU's `isa-debug-exit` device
//! (`-device isa-debug-exit,iobase=0xf4,iosize=0x04`) makes QEMU exit with status `(code << 1) | 1` when the
//! guest writes `code` to port 0xf4. Codes start at 0x10 so that no oxvpn status collides with QEMU's own
//! (0 normal, 1 startup error):
//!
//! | code | QEMU exit status | meaning                                                         |
//! |------|------------------|-----------------------------------------------------------------|
//! | 0x10 | 33               | clean shutdown (`--help`, or nothing left to do)                |
//! | 0x11 | 35               | bad boot arguments                                              |
//! | 0x12 | 37               | bad configuration (config disk missing or invalid)             |
//! | 0x13 | 39               | fatal protocol error (e.g. the server refused us for good)     |
//! | 0x14 | 41               | unsupported machine: no entropy source, missing CPU feature, no usable memory |
//! | 0x15 | 43               | Rust panic                                                      |
//! | 0x16 | 45               | CPU exception                                                   |
//!
//! Without the device the write is ignored and the CPU halts with interrupts off (the VM stays up doing
//! nothing; QEMU's `-no-shutdown`-free default is not affected).

use core::fmt;

/// Why the image stops. See the module table for the numeric values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum ExitCode {
    /// Nothing left to do, or `--help`.
    Clean = 0x10,
    /// A boot argument was unknown or malformed.
    BadArguments = 0x11,
    /// The OpenVPN configuration is missing or invalid.
    BadConfig = 0x12,
    /// The VPN cannot continue (e.g. authentication failed permanently).
    FatalProtocol = 0x13,
    /// The machine lacks something required: entropy, a CPU feature, memory.
    Unsupported = 0x14,
    /// A Rust panic.
    Panic = 0x15,
    /// A CPU exception.
    CpuException = 0x16,
}

impl ExitCode {
    /// The byte written to the isa-debug-exit port.
    pub fn code(self) -> u8 {
        self as u8
    }

    /// QEMU's process exit status for this code.
    pub fn qemu_status(self) -> i32 {
        (i32::from(self.code()) << 1) | 1
    }
}

impl fmt::Display for ExitCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = match self {
            ExitCode::Clean => "clean shutdown",
            ExitCode::BadArguments => "bad boot arguments",
            ExitCode::BadConfig => "bad configuration",
            ExitCode::FatalProtocol => "fatal protocol error",
            ExitCode::Unsupported => "unsupported machine",
            ExitCode::Panic => "panic",
            ExitCode::CpuException => "CPU exception",
        };
        write!(
            f,
            "{what} (exit code {:#04x}, QEMU status {})",
            self.code(),
            self.qemu_status()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_match_the_table() {
        let table = [
            (ExitCode::Clean, 33),
            (ExitCode::BadArguments, 35),
            (ExitCode::BadConfig, 37),
            (ExitCode::FatalProtocol, 39),
            (ExitCode::Unsupported, 41),
            (ExitCode::Panic, 43),
            (ExitCode::CpuException, 45),
        ];
        for (code, status) in table {
            assert_eq!(code.qemu_status(), status, "{code}");
        }
    }
}
