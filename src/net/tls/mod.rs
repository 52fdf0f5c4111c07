//! The networked transport: one TCP connection with mutually authenticated TLS 1.3 per pair
//! of roles that talk, each peer's certificate pinned to its role.
//!
//! `transport` is the connected endpoint, `link` the reader and writer tasks of one link,
//! `mesh` opens the links (who dials whom, listening, handshakes, retries, the hello),
//! `gate` admits the roles that join a party late, `pin` decides which certificate each
//! peer must present, `wire` reads and writes frames with time-outs, and `node` is a process
//! that takes part in many sessions (a long-running party, a client), each on its own
//! connections.

mod gate;
mod link;
mod mesh;
mod node;
mod pin;
mod transport;
mod wire;

pub use gate::{Caller, Event, Gate, Waker};
pub use mesh::Late;
pub use node::{Connection, Node, join};
pub use transport::{Ender, Refused, TlsTransport, Wait, connect, connect_to, serve};
