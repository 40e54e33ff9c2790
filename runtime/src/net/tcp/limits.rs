//! The limits that keep one peer from taking a node down.

use std::time::Duration;

/// Limits that keep one peer from taking a node down (`docs/operations.md` lists them with
/// their configuration keys).
#[derive(Clone, Debug)]
pub struct Limits {
    /// Sessions open at once on a daemon.
    pub max_sessions: usize,
    /// Sessions open at once on one client connection.
    pub max_sessions_per_client: usize,
    /// Connections at once; a connection beyond it is closed as soon as it is accepted.
    pub max_connections: usize,
    /// Connections still in their TLS handshake or greeting; when full, the oldest is closed,
    /// so a flood of silent connections cannot lock honest peers (or the P1–P2 link) out.
    pub max_unverified: usize,
    /// The same, per remote address: a flood from one address evicts only its own.
    pub max_unverified_per_address: usize,
    /// Time allowed for the TLS handshake and the greeting.
    pub handshake: Duration,
    /// A client connection with no open session and no message for this long is closed.
    pub idle: Duration,
    /// A heartbeat goes out on a connection quiet for this long ...
    pub heartbeat: Duration,
    /// ... and a peer that sends nothing at all for this long is taken for dead: its
    /// connection is closed and every session that needs it fails, naming it.
    pub dead_after: Duration,
    /// A session may last at most this long, however active (daemons).
    pub session_deadline: Duration,
    /// Bytes queued for one peer before it counts as not reading and is dropped.
    pub max_queued: usize,
    /// Bytes of frames parked for sessions that are not open yet, and how long they are kept.
    pub max_pending_bytes: usize,
    /// How long frames for a not-yet-open session are parked before being dropped.
    pub pending_ttl: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_sessions: 64,
            max_sessions_per_client: 8,
            max_connections: 512,
            max_unverified: 64,
            max_unverified_per_address: 16,
            handshake: Duration::from_secs(5),
            idle: Duration::from_secs(300),
            heartbeat: Duration::from_secs(1),
            dead_after: Duration::from_secs(8),
            session_deadline: Duration::from_secs(24 * 3600),
            max_queued: 1 << 30,
            max_pending_bytes: 64 << 20,
            pending_ttl: Duration::from_secs(30),
        }
    }
}
