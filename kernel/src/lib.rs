//! The pure half of the oxvpn kernel: boot-argument parsing, the exit-code table, heap placement, the
//! server's pushed options as the router's tunnel configuration.
//!
//! Layer: no hardware (allocation only in `pushed`); tested on the host with `cargo test --lib` in
//! `kernel/`. The image's hardware glue is in `main.rs` and its modules (binary crate `oxvpn`).
#![cfg_attr(not(test), no_std)]

extern crate alloc;

pub mod args;
pub mod exit;
pub mod heap_region;
pub mod nic_roles;
pub mod pushed;
