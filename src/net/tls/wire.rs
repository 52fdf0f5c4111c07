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
