//! Parties over TCP + mutual TLS. One mio event loop per process owns every socket
//! ([`node`]); protocol threads talk to it through a [`Transport`](crate::net::Transport) per
//! session and never block on a send. [`conn`] is one TLS connection and its frame codec.

pub mod conn;
pub mod control;
pub mod keying;
pub mod node;

pub use keying::Session;
pub use node::{Node, NodeConfig, NodeEvent, TcpTransport};
