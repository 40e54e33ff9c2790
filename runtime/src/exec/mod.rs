//! Running a program: the shared [`model::Model`], the per-role secure interpreter
//! ([`engine`]), and the in-process three-party runner ([`local`]).

pub mod engine;
pub mod local;
pub mod model;
pub mod report;
pub mod secure;
pub mod session;
pub mod step;
#[cfg(test)]
mod stream_addresses;
