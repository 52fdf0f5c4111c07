//! Framing of one direction of a link. TLS already protects a connection's integrity; the
//! session id and sequence number additionally make a frame from another run, a replay or a
//! reordering (say, across a reconnect or a bug in a later persistent session) an error
//! instead of a silently wrong share.
//!
//! A frame is a 29-byte header, then `words` 64-bit little-endian payload words:
//!
//! | bytes | field |
//! |---|---|
//! | 1 | kind: 1 hello, 2 data, 3 heartbeat, 4 refusal |
//! | 16 | session id |
//! | 8 | sequence number, from 0 per link and direction, over every kind |
//! | 4 | payload length in words |

use super::Role;
use anyhow::{Context, Result, bail, ensure};
use std::fmt;
use std::time::Duration;

pub const HEADER_LEN: usize = 29;

/// Largest payload accepted in one frame (2 GiB), so a corrupt length cannot exhaust memory.
pub const MAX_WORDS: usize = 1 << 28;

/// Identifies one run; every role of a run must be given the same id.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct SessionId(pub [u8; 16]);

impl SessionId {
    /// A fresh id from the OS CSPRNG.
    pub fn random() -> Result<SessionId> {
        let mut id = [0; 16];
        getrandom::fill(&mut id).map_err(|e| anyhow::anyhow!("OS random source failed: {e}"))?;
        Ok(SessionId(id))
    }
}

impl fmt::Display for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

impl fmt::Debug for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SessionId({self})")
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Kind {
    /// First frame each way: the sender's role, so both ends agree on who is who.
    Hello = 1,
    Data = 2,
    /// Sent when a link is idle, so that silence means a lost peer.
    Heartbeat = 3,
    /// The last frame of a link whose sender ends the session on purpose: why, and whether
    /// to retry ([`Refusal`]).
    Refusal = 4,
}

impl Kind {
    fn from_byte(b: u8) -> Option<Kind> {
        [Kind::Hello, Kind::Data, Kind::Heartbeat, Kind::Refusal]
            .into_iter()
            .find(|k| *k as u8 == b)
    }
}

/// A checked header: what follows is `words` payload words of kind `kind`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    pub kind: Kind,
    pub words: usize,
}

/// Writes the frames of one direction of a link, numbering them.
pub struct Sealer {
    session: SessionId,
    next_seq: u64,
}

impl Sealer {
    pub fn new(session: SessionId) -> Sealer {
        Sealer {
            session,
            next_seq: 0,
        }
    }

    /// The whole frame, header and payload, ready to write.
    pub fn seal(&mut self, kind: Kind, words: &[u64]) -> Result<Vec<u8>> {
        ensure!(
            words.len() <= MAX_WORDS,
            "a message of {} words exceeds the frame limit of {MAX_WORDS}",
            words.len()
        );
        let mut frame = Vec::with_capacity(HEADER_LEN + 8 * words.len());
        frame.push(kind as u8);
        frame.extend_from_slice(&self.session.0);
        frame.extend_from_slice(&self.next_seq.to_le_bytes());
        frame.extend_from_slice(&(words.len() as u32).to_le_bytes());
        if cfg!(target_endian = "little") {
            // The wire order is the memory order: one copy instead of one per word.
            frame.extend_from_slice(bytemuck::cast_slice(words));
        } else {
            for w in words {
                frame.extend_from_slice(&w.to_le_bytes());
            }
        }
        self.next_seq += 1;
        Ok(frame)
    }
}

/// Checks the frames of one direction of a link, in order, as they arrive from `peer`.
pub struct Opener {
    /// `None` until the first frame names it, for a listener that serves many sessions.
    session: Option<SessionId>,
    peer: Role,
    next_seq: u64,
    max_words: usize,
}

impl Opener {
    pub fn new(session: SessionId, peer: Role) -> Opener {
        Opener {
            session: Some(session),
            peer,
            next_seq: 0,
            max_words: MAX_WORDS,
        }
    }

    /// An opener that takes the session of the link's first frame (the peer's hello), for
    /// a listener that serves many sessions; every later frame must belong to it.
    pub fn learning(peer: Role) -> Opener {
        Opener {
            session: None,
            ..Opener::new(SessionId([0; 16]), peer)
        }
    }

    /// The session of this link, once known.
    pub fn session(&self) -> Option<SessionId> {
        self.session
    }

    /// The peer whose frames this opens.
    pub fn peer(&self) -> Role {
        self.peer
    }

    /// Refuses frames of more than `max_words` payload words (a peer that is not trusted
    /// to stay within [`MAX_WORDS`] on its own, such as a client joining a long-running
    /// party, cannot make it allocate more).
    pub fn with_limit(self, max_words: usize) -> Opener {
        Opener {
            max_words: max_words.min(MAX_WORDS),
            ..self
        }
    }

    /// Accepts the header only if it is the next frame of this session on this link.
    pub fn open(&mut self, header: &[u8; HEADER_LEN]) -> Result<Header> {
        let peer = self.peer;
        let Some(kind) = Kind::from_byte(header[0]) else {
            bail!("frame of unknown kind {} from {peer}", header[0]);
        };
        let session = SessionId(header[1..17].try_into().expect("16 bytes"));
        let mine = *self.session.get_or_insert(session);
        ensure!(
            session == mine,
            "frame from {peer} belongs to session {session}, not to this session {mine}"
        );
        let seq = u64::from_le_bytes(header[17..25].try_into().expect("8 bytes"));
        let expected = self.next_seq;
        ensure!(
            seq >= expected,
            "replayed frame from {peer}: sequence number {seq} was already received \
             (expected {expected})"
        );
        ensure!(
            seq == expected,
            "frame from {peer} out of order: sequence number {seq}, expected {expected}"
        );
        let words = u32::from_le_bytes(header[25..29].try_into().expect("4 bytes")) as usize;
        ensure!(
            words <= self.max_words,
            "frame from {peer} claims {words} words, over the limit of {}",
            self.max_words
        );
        self.next_seq += 1;
        Ok(Header { kind, words })
    }
}

/// Why a peer ended a session on purpose, sent as its link's last frame: the peer is busy
/// (then `retry_after` says when to try again) or refused something it was sent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    pub retry_after: Option<Duration>,
    pub reason: String,
}

/// Longest reason a refusal carries; longer ones are cut.
const MAX_REASON: usize = 2048;

impl Refusal {
    pub fn to_words(&self) -> Vec<u64> {
        let retry = self
            .retry_after
            .map_or(0, |d| (d.as_millis() as u64).max(1));
        let mut reason = self.reason.as_str();
        while reason.len() > MAX_REASON {
            reason = &reason[..reason.floor_char_boundary(MAX_REASON)];
        }
        [vec![retry], text_words(reason)].concat()
    }

    pub fn from_words(words: &[u64]) -> Result<Refusal> {
        let (&retry, text) = words.split_first().context("an empty refusal")?;
        Ok(Refusal {
            retry_after: (retry > 0).then(|| Duration::from_millis(retry)),
            reason: words_text(text)?,
        })
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.retry_after {
            Some(wait) => write!(
                f,
                "{} (retry after {:.1} s)",
                self.reason,
                wait.as_secs_f64()
            ),
            None => write!(f, "{}", self.reason),
        }
    }
}

/// A text as words: its length in bytes, then the UTF-8 bytes, padded.
pub fn text_words(text: &str) -> Vec<u64> {
    let mut bytes = text.as_bytes().to_vec();
    bytes.resize(bytes.len().next_multiple_of(8), 0);
    let mut words = vec![text.len() as u64];
    words.extend(words_of(&bytes));
    words
}

/// [`text_words`] back into the text.
pub fn words_text(words: &[u64]) -> Result<String> {
    let (len, rest) = words.split_first().context("an empty text")?;
    let bytes: Vec<u8> = rest.iter().flat_map(|w| w.to_le_bytes()).collect();
    let text = bytes
        .get(..*len as usize)
        .context("a text shorter than its length")?;
    Ok(String::from_utf8(text.to_vec())?)
}

/// Payload bytes (little-endian words) back into words.
pub fn words_of(payload: &[u8]) -> Vec<u64> {
    payload
        .chunks_exact(8)
        .map(|c| u64::from_le_bytes(c.try_into().expect("8-byte chunk")))
        .collect()
}
