//! The private side of the oxvpn router.
//!
//! Layer: sans-IO L2/L3. Never reads a clock or touches a device.
#![no_std]
#![forbid(unsafe_code)]

extern crate alloc;
