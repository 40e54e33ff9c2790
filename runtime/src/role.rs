//! The three parties and the pairs they form.

use core::fmt;

/// A party. P0 owns the input and learns the output, P1 owns the weights, P2 deals
/// correlated randomness and takes part in comparisons without learning anything.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub enum Role {
    /// P0: supplies the input and is the only party that learns the output.
    Client,
    /// P1: holds the model's weights and the other share of every secret.
    Server,
    /// P2: deals correlated randomness and finds comparison bits; holds no shares.
    Helper,
}

impl Role {
    /// The three parties in index order (P0, P1, P2), for iterating over them.
    pub const ALL: [Role; 3] = [Role::Client, Role::Server, Role::Helper];

    /// 0, 1 or 2.
    pub const fn index(self) -> usize {
        self as usize
    }

    /// The inverse of [`Role::index`]; `None` for `i` above 2.
    pub fn from_index(i: usize) -> Option<Role> {
        Role::ALL.get(i).copied()
    }

    /// The two other parties.
    pub fn others(self) -> [Role; 2] {
        match self {
            Role::Client => [Role::Server, Role::Helper],
            Role::Server => [Role::Client, Role::Helper],
            Role::Helper => [Role::Client, Role::Server],
        }
    }

    /// `P0`, `P1`, `P2`.
    pub const fn short(self) -> &'static str {
        match self {
            Role::Client => "P0",
            Role::Server => "P1",
            Role::Helper => "P2",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Role::Client => "P0 (client)",
            Role::Server => "P1 (server)",
            Role::Helper => "P2 (helper)",
        })
    }
}

/// An unordered pair of parties that share a secret (and so a randomness stream).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Pair {
    /// (P0, P1)
    ClientServer,
    /// (P0, P2)
    ClientHelper,
    /// (P1, P2)
    ServerHelper,
}

impl Pair {
    /// The three pairs in index order; [`Keys::triple_from`](crate::prf::Keys::triple_from)
    /// takes their secrets in this order.
    pub const ALL: [Pair; 3] = [Pair::ClientServer, Pair::ClientHelper, Pair::ServerHelper];

    /// 0, 1 or 2, the position in [`Pair::ALL`]: where a party's keys keep the pair's secret.
    pub const fn index(self) -> usize {
        self as usize
    }

    /// The pair two different roles form, in either order; `None` when `a == b`.
    pub fn of(a: Role, b: Role) -> Option<Pair> {
        match (a.min(b), a.max(b)) {
            (Role::Client, Role::Server) => Some(Pair::ClientServer),
            (Role::Client, Role::Helper) => Some(Pair::ClientHelper),
            (Role::Server, Role::Helper) => Some(Pair::ServerHelper),
            _ => None,
        }
    }

    /// Whether `r` is one of the pair's two parties, and so holds its secret and streams.
    pub fn contains(self, r: Role) -> bool {
        matches!(
            (self, r),
            (Pair::ClientServer, Role::Client | Role::Server)
                | (Pair::ClientHelper, Role::Client | Role::Helper)
                | (Pair::ServerHelper, Role::Server | Role::Helper)
        )
    }
}
