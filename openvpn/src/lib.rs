//! oxvpn's sans-IO OpenVPN client engine.
//!
//! Layer: protocol only. This crate never reads a clock, a random source or a device: `now` and randomness
//! are arguments, and every output goes into a buffer or an action the caller owns.
#![no_std]
#![forbid(unsafe_code)]
// Panics must be unreachable from the network and the config disk (STYLE.md rule 6): outside tests no
// unwrap/expect/panic!, no unchecked indexing and no lossy `as` casts.
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::indexing_slicing,
        clippy::panic,
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        clippy::cast_possible_wrap
    )
)]

extern crate alloc;

pub mod config;
pub mod keys;

pub mod reliable;
pub mod tls;

pub mod crypto;
pub mod engine;
pub mod server;
pub mod session;
pub mod time;
pub mod wire;

#[cfg(test)]
mod hygiene_tests;
