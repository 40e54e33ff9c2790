//! Parties over TCP + mutual TLS. One mio event loop per process owns every socket
//! (`event_loop`); protocol threads talk to it through a [`Transport`](crate::net::Transport)
//! per session ([`TcpTransport`], in `node`) and never block on a send. `conn` is one TLS
//! connection and its frame codec; `admission` takes connections in; `greeting` checks a new
//! peer; `sessions` keeps the session table; [`Limits`] bounds what one peer can take.

mod admission;
mod conn;
pub mod control;
mod event_loop;
mod greeting;
pub mod keying;
mod limits;
mod node;
mod sessions;

pub use keying::Session;
pub use limits::Limits;
pub use node::{Latency, Node, NodeConfig, NodeEvent, TcpTransport};
pub use sessions::short_id;
