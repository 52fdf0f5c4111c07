//! The networked transport: one TCP connection with mutually authenticated TLS 1.3 per pair
//! of roles that talk, each peer's certificate pinned to its role.
//!
//! `transport` is the connected endpoint, `link` the reader and writer tasks of one link,
//! `mesh` opens the links (who dials whom, listening, handshakes, retries, the hello),
//! `gate` admits the roles that join a party late, `pin` decides which certificate each
//! peer must present, and `wire` reads and writes frames with time-outs.

mod gate;
mod link;
mod mesh;
mod pin;
mod transport;
mod wire;

pub use gate::{Caller, Event, Gate, Waker};
pub use mesh::Late;
pub use transport::{TlsTransport, connect, connect_to, serve};
