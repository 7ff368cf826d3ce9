//! The server role: many clients, each with the session core of [`crate::peer`].

pub mod engine;
