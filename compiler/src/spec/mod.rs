//! Block specs from elsewhere: the original system's pickles ([`pickle`]).

pub mod pickle;
