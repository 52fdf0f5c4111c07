//! The networked transport: one TCP connection with mutually authenticated TLS 1.3 per pair
//! of roles that talk, each peer's certificate pinned to its role.
//!
//! `transport` is the connected endpoint and the reader and writer tasks of its links,
//! `mesh` opens the links (who dials whom, listening, handshakes, retries, the hello),
//! `pin` decides which certificate each peer must present, and `wire` reads and writes
//! frames with time-outs.

mod mesh;
mod pin;
mod transport;
mod wire;

pub use transport::{TlsTransport, connect};
