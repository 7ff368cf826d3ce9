//! The console logger: `log` records to COM1 with the time since boot on every line.
//!
//! Layer: kernel glue. Line format: `[   SSSS.uuuuuu] LEVEL target: message`, seconds and microseconds of
//! [`drivers::clock::now_us`] (0 until the TSC is calibrated, a few milliseconds into boot). The level filter
//! comes from `--verb` (see `oxvpn_kernel::args::Verb`).
//!
//! No lock: the image is single-core, interrupt handlers never log, and fatal paths (panic, CPU exception)
//! write to the port directly.

use core::fmt::Write;

use drivers::clock;
use crate::platform::Console;
use log::{LevelFilter, Log, Metadata, Record};

struct SerialLogger;

static LOGGER: SerialLogger = SerialLogger;

impl Log for SerialLogger {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        metadata.level() <= log::max_level()
    }

    fn log(&self, record: &Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let us = clock::now_us();
        let _ = writeln!(
            Console,
            "[{:5}.{:06}] {:<5} {}: {}",
            us / 1_000_000,
            us % 1_000_000,
            record.level(),
            record.target(),
            record.args()
        );
    }

    fn flush(&self) {}
}

/// Installs the logger with `level` (re-settable later with `log::set_max_level`).
pub fn init(level: LevelFilter) {
    // set_logger only fails when called twice; the first logger stays, which is the same one.
    let _ = log::set_logger(&LOGGER);
    log::set_max_level(level);
}
