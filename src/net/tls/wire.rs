//! Frames on a TLS link: reading and writing whole frames, where every I/O step must make
//! progress within a time-out so that a dead peer shows up as an error.

use crate::net::frame::{HEADER_LEN, Kind, Opener};
use anyhow::{Result, anyhow, bail, ensure};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;
use tokio_rustls::TlsStream;

/// One established link, whichever side dialed.
pub(super) type Stream = TlsStream<TcpStream>;

/// An I/O step that must make progress within `silence`.
pub(super) async fn patiently<T>(
    silence: Duration,
    step: impl Future<Output = std::io::Result<T>>,
) -> Result<T> {
    match timeout(silence, step).await {
        Ok(r) => r.map_err(describe_io),
        Err(_) => bail!(
            "no progress for {:.1} s: the peer or the network is down",
            silence.as_secs_f64()
        ),
    }
}

pub(super) fn describe_io(e: std::io::Error) -> anyhow::Error {
    if e.kind() == std::io::ErrorKind::UnexpectedEof {
        anyhow!("the connection was closed (the peer stopped)")
    } else {
        anyhow!("connection error: {e}")
    }
}

/// Fills `buf`, allowing at most `silence` between pieces, so a long frame on a slow link is
/// not mistaken for a lost peer.
async fn read_full(
    rd: &mut (impl AsyncRead + Unpin),
    buf: &mut [u8],
    silence: Duration,
) -> Result<()> {
    let mut filled = 0;
    while filled < buf.len() {
        let n = patiently(silence, rd.read(&mut buf[filled..])).await?;
        ensure!(n > 0, "the connection was closed (the peer stopped)");
        filled += n;
    }
    Ok(())
}

/// Payload words read at a time (512 KiB).
const CHUNK_WORDS: usize = 1 << 16;

/// The next frame from `rd`, checked by `opener`. A header alone costs no memory beyond a
/// chunk: the payload is allocated as its bytes arrive.
pub(super) async fn read_frame(
    rd: &mut (impl AsyncRead + Unpin),
    opener: &mut Opener,
    silence: Duration,
) -> Result<(Kind, Vec<u64>)> {
    let mut header = [0; HEADER_LEN];
    read_full(rd, &mut header, silence).await?;
    let header = opener.open(&header)?;
    // Read straight into words (no byte buffer to copy from), a chunk at a time: memory
    // grows with what arrives, not with what the header claims.
    let mut payload: Vec<u64> = Vec::new();
    while payload.len() < header.words {
        let start = payload.len();
        payload.resize(header.words.min(start + CHUNK_WORDS), 0);
        read_full(rd, bytemuck::cast_slice_mut(&mut payload[start..]), silence).await?;
    }
    for w in &mut payload {
        *w = u64::from_le(*w);
    }
    Ok((header.kind, payload))
}

pub(super) async fn write_frame(
    wr: &mut (impl AsyncWrite + Unpin),
    frame: &[u8],
) -> std::io::Result<()> {
    wr.write_all(frame).await?;
    wr.flush().await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::Role;
    use crate::net::frame::{Sealer, SessionId};
    use std::pin::Pin;
    use std::task::{Context, Poll};
    use tokio::io::ReadBuf;

    /// Serves `bytes`, then the end of the stream, recording the largest read asked for.
    struct Source {
        bytes: Vec<u8>,
        at: usize,
        largest_ask: usize,
    }

    impl AsyncRead for Source {
        fn poll_read(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
            buf: &mut ReadBuf<'_>,
        ) -> Poll<std::io::Result<()>> {
            self.largest_ask = self.largest_ask.max(buf.remaining());
            let n = buf.remaining().min(self.bytes.len() - self.at);
            let at = self.at;
            buf.put_slice(&self.bytes[at..at + n]);
            self.at += n;
            Poll::Ready(Ok(()))
        }
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_header_alone_costs_a_chunk_not_what_it_announces() {
        let session = SessionId([7; 16]);
        let mut frame = Sealer::new(session).seal(Kind::Data, &[]).unwrap();
        // Announces 2^28 words (2 GiB), then sends 1 MiB and stops.
        frame[25..29].copy_from_slice(&(1u32 << 28).to_le_bytes());
        frame.resize(frame.len() + (1 << 20), 0);
        let mut source = Source {
            bytes: frame,
            at: 0,
            largest_ask: 0,
        };
        let mut opener = Opener::new(session, Role::Client);
        let e = read_frame(&mut source, &mut opener, Duration::from_secs(1))
            .await
            .unwrap_err();
        assert!(format!("{e:#}").contains("closed"), "{e:#}");
        assert_eq!(source.largest_ask, 8 * CHUNK_WORDS);
    }
}
