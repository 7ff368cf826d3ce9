//! The private side of the oxvpn router.
//!
//! Layer: sans-IO L2/L3. Never reads a clock or touches a device.
#![no_std]
#![forbid(unsafe_code)]

extern crate alloc;

pub mod arp;
mod checksum;
pub mod frag;
pub mod icmp;
mod ip;
mod mss;
pub mod nat;
#[cfg(test)]
mod testutil;
