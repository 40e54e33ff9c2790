//! Block specs from elsewhere: the original system's pickles ([`pickle`]).

pub mod pickle;

pub use pickle::{PickleError, read_block_spec};
