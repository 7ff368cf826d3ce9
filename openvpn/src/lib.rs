//! oxvpn's sans-IO OpenVPN client engine.
//!
//! Layer: protocol only. This crate never reads a clock, a random source or a device: `now` and randomness
//! are arguments, and every output goes into a buffer or an action the caller owns.
#![no_std]
#![forbid(unsafe_code)]

extern crate alloc;

pub mod config;
pub mod keys;

pub mod reliable;
pub mod tls;

pub mod time;
pub mod wire;
pub mod crypto;
pub mod session;
pub mod engine;
