//! The config disk format: raw OpenVPN config text, NUL-padded to a multiple of 512 bytes (MirageVPN's format).
#![no_std]
#![forbid(unsafe_code)]

extern crate alloc;
