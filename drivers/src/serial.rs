//! 16550 UART on COM1 (I/O port 0x3f8): the console.
//!
//! Layer: one device, byte output only (the image never reads the console). QEMU's UART accepts bytes
//! immediately, so the transmit-empty wait costs one port read per byte. Interrupts from the UART stay
//! disabled. [`Com1`] has no state: the logger serialises access with its own lock, and fatal paths (panic,
//! CPU exception) write without it, which at worst interleaves bytes.

use core::fmt;

use crate::cpu::{inb, outb};

const COM1: u16 = 0x3f8;
const DATA: u16 = 0;
const INT_ENABLE: u16 = 1;
const FIFO_CTRL: u16 = 2;
const LINE_CTRL: u16 = 3;
const MODEM_CTRL: u16 = 4;
const LINE_STATUS: u16 = 5;
const LSR_THR_EMPTY: u8 = 1 << 5;

/// The COM1 console. Zero-sized: every value writes to the same port.
#[derive(Debug, Clone, Copy, Default)]
pub struct Com1;

impl Com1 {
    /// Programs 115200 baud 8N1 with FIFOs and no interrupts.
    pub fn init() -> Com1 {
        // SAFETY: COM1's registers; nothing else in the image uses these ports.
        unsafe {
            outb(COM1 + INT_ENABLE, 0x00);
            outb(COM1 + LINE_CTRL, 0x80); // DLAB: divisor follows
            outb(COM1 + DATA, 0x01); // divisor 1 = 115200 baud
            outb(COM1 + INT_ENABLE, 0x00);
            outb(COM1 + LINE_CTRL, 0x03); // 8N1, DLAB off
            outb(COM1 + FIFO_CTRL, 0xc7); // enable and clear FIFOs
            outb(COM1 + MODEM_CTRL, 0x03); // DTR, RTS
        }
        Com1
    }

    /// Sends one byte, waiting (bounded) for the transmitter.
    pub fn write_byte(&self, byte: u8) {
        // SAFETY: COM1's registers.
        unsafe {
            // Bounded: with no UART at all (reads return 0xff) or a stuck one, give up rather than hang.
            for _ in 0..100_000 {
                if inb(COM1 + LINE_STATUS) & LSR_THR_EMPTY != 0 {
                    break;
                }
                core::hint::spin_loop();
            }
            outb(COM1 + DATA, byte);
        }
    }

    /// Sends bytes as they are (`\n` line ends: the console is read by programs, not a terminal).
    pub fn write_bytes(&self, bytes: &[u8]) {
        for &b in bytes {
            self.write_byte(b);
        }
    }
}

impl fmt::Write for Com1 {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.write_bytes(s.as_bytes());
        Ok(())
    }
}
