//! One link of the networked mode: a TLS connection to one peer, with a reader and a writer
//! task. The writer sends queued messages as frames and heartbeats when idle; the reader
//! delivers each message, and finally why the link ended, to a [`Sink`]: the link's own
//! inbox (bounded: a full inbox stops the reader, and TCP holds the sender back), or a
//! gate's events tagged with the caller. A link with its own inbox also bounds what its
//! sender may queue ([`crate::net::backlog`]), so that neither end holds much more than
//! [`BACKLOG_WORDS`] of a peer that runs ahead.

use super::wire::{Stream, patiently, read_frame, write_frame};
use crate::net::Role;
use crate::net::backlog::{BACKLOG_WORDS, Backlog};
use crate::net::frame::{Kind, Opener, Refusal, Sealer};
use anyhow::Result;
use std::fmt;
use std::sync::{Arc, OnceLock, mpsc as std_mpsc};
use std::time::Duration;
use tokio::io::{AsyncWriteExt, ReadHalf, WriteHalf};
use tokio::runtime::{Handle, Runtime};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, oneshot};
use tokio::time::timeout;

/// One connection of a late joiner to a gate; two connections of one role are told apart.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Caller {
    pub role: Role,
    pub(super) id: u64,
}

/// What reaches a gate from the network tasks: a new link travels with its event.
pub(super) enum Raw {
    Joined(Caller, Link),
    Message(Caller, Vec<u64>),
    Left(Caller, String),
    Wake,
}

/// Messages a link's own inbox holds before its reader waits (and at most
/// [`BACKLOG_WORDS`] words in them): only a role that never receives (Pond's producer)
/// runs this far ahead of a peer, and then it waits for the peer.
const INBOX: usize = 64;

/// A message in a link's own inbox, holding its room there until taken.
pub(super) struct Delivery {
    words: Vec<u64>,
    _room: OwnedSemaphorePermit,
}

type Inbound = Result<Delivery, Ended>;

/// What a link's writer sends.
pub(super) enum Out {
    Data(Vec<u64>),
    /// The last frame: the link closes after it.
    Refusal(Refusal),
}

/// Why `recv` got no message.
#[derive(Clone, Debug)]
pub(super) enum Ended {
    /// The link failed (closed, silent, or broke the framing).
    Failed(String),
    /// The peer ended the session on purpose and said why.
    Refused(Refusal),
    /// The link is up, but no message came within the wait given to `recv`.
    Waited(Duration),
}

impl fmt::Display for Ended {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Ended::Failed(why) => write!(f, "{why}"),
            Ended::Refused(refusal) => write!(f, "it refused: {refusal}"),
            Ended::Waited(wait) => write!(f, "no message within {:.1} s", wait.as_secs_f64()),
        }
    }
}

pub(super) struct Link {
    outbox: Option<mpsc::UnboundedSender<Out>>,
    /// The words queued in `outbox` and not yet written, on a link with its own inbox.
    queued: Option<Arc<Backlog>>,
    /// Where `recv` takes messages from; `None` when they go to a [`Gate`]'s events.
    inbox: Option<mpsc::Receiver<Inbound>>,
    /// The runtime of the link's tasks, on which `recv` waits.
    handle: Handle,
    /// Why the link died, as first seen by its reader or writer.
    failure: Arc<OnceLock<Ended>>,
    writer: tokio::task::JoinHandle<()>,
    /// Stops the reader when the link is hung up on.
    stop_reading: Option<oneshot::Sender<()>>,
}

/// Where a link's reader delivers messages, and finally why the link ended.
pub(super) enum Sink {
    /// The link's own inbox, read by `recv`, and the room left in it, in words.
    Own {
        inbox: mpsc::Sender<Inbound>,
        room: Arc<Semaphore>,
    },
    /// A gate's events, tagged with the caller; at most `max_messages`, then the link
    /// ends, so that a caller cannot queue more than its part takes.
    Gate {
        caller: Caller,
        events: std_mpsc::Sender<Raw>,
        max_messages: usize,
    },
}

impl Sink {
    /// False once nobody listens any more. Waits while the link's own inbox is full.
    async fn deliver(&self, message: Result<Vec<u64>, Ended>) -> bool {
        match self {
            Sink::Own { inbox, room } => {
                let inbound = match message {
                    Ok(words) => {
                        let wanted = words.len().min(BACKLOG_WORDS) as u32;
                        match room.clone().acquire_many_owned(wanted).await {
                            Ok(room) => Ok(Delivery { words, _room: room }),
                            Err(_) => return false,
                        }
                    }
                    Err(why) => Err(why),
                };
                inbox.send(inbound).await.is_ok()
            }
            Sink::Gate { caller, events, .. } => events
                .send(match message {
                    Ok(words) => Raw::Message(*caller, words),
                    Err(why) => Raw::Left(*caller, why.to_string()),
                })
                .is_ok(),
        }
    }
}

/// Lets the writers of hung-up links flush their queues and close (bounded by `patience`,
/// in case a peer is gone), then stops the runtime unless another owner still uses it.
pub(super) fn close_links(
    runtime: Arc<Runtime>,
    writers: Vec<tokio::task::JoinHandle<()>>,
    patience: Duration,
) {
    runtime.block_on(async {
        for writer in writers {
            let _ = timeout(patience, writer).await;
        }
    });
    if let Ok(runtime) = Arc::try_unwrap(runtime) {
        runtime.shutdown_background();
    }
}

impl Link {
    /// Starts the link's writer (on the current runtime) and returns the reader, for the
    /// caller to spawn once it is ready for what the reader delivers to `sink`.
    pub(super) fn open(
        stream: Stream,
        sealer: Sealer,
        opener: Opener,
        silence: Duration,
        sink: Sink,
    ) -> (Link, impl Future<Output = ()> + Send + 'static) {
        let (rd, wr) = tokio::io::split(stream);
        let (outbox, to_write) = mpsc::unbounded_channel();
        // A gate serves many callers and must not wait on any of them: only a link with its
        // own inbox holds its sender back.
        let queued =
            matches!(sink, Sink::Own { .. }).then(|| Arc::new(Backlog::new(BACKLOG_WORDS)));
        let failure = Arc::new(OnceLock::new());
        let (stop_reading, stop) = oneshot::channel();
        let reader = read_loop(rd, opener, sink, silence, failure.clone(), stop);
        let writing = Writing {
            to_write,
            queued: queued.clone(),
            silence,
            failure: failure.clone(),
        };
        let writer = tokio::spawn(write_loop(wr, sealer, writing));
        let link = Link {
            outbox: Some(outbox),
            queued,
            inbox: None,
            handle: Handle::current(),
            failure,
            writer,
            stop_reading: Some(stop_reading),
        };
        (link, reader)
    }

    /// A link whose messages `recv` takes, started on the current runtime.
    pub(super) fn spawn(stream: Stream, sealer: Sealer, opener: Opener, silence: Duration) -> Link {
        let (inbox, inbox_reader) = mpsc::channel(INBOX);
        let room = Arc::new(Semaphore::new(BACKLOG_WORDS));
        let sink = Sink::Own { inbox, room };
        let (mut link, reader) = Link::open(stream, sealer, opener, silence, sink);
        link.inbox = Some(inbox_reader);
        tokio::spawn(reader);
        link
    }

    /// The next message, waiting for it (for at most `wait`, when given), or why there is
    /// none. Called from outside the runtime.
    pub(super) fn recv(&mut self, wait: Option<Duration>) -> Result<Vec<u64>, Ended> {
        let inbox =
            (self.inbox.as_mut()).ok_or(Ended::Failed("its messages go to a gate".into()))?;
        let message = match wait {
            None => self.handle.block_on(inbox.recv()),
            // The timer is made inside the runtime, whose clock it needs.
            Some(wait) => (self
                .handle
                .block_on(async { timeout(wait, inbox.recv()).await }))
            .map_err(|_| Ended::Waited(wait))?,
        };
        match message {
            Some(inbound) => inbound.map(|delivery| delivery.words),
            None => Err(self.failure_reason()),
        }
    }

    /// Why the link died, if it has.
    pub(super) fn failure(&self) -> Option<String> {
        self.failure.get().map(Ended::to_string)
    }

    /// Queues `words` for the peer, or says why the link cannot take them (a refusal
    /// among them, so that a busy peer's hint reaches the sender too). Waits while the
    /// link's own queue is full ([`BACKLOG_WORDS`]). Called from outside the runtime.
    pub(super) fn send(&self, words: &[u64]) -> Result<(), Ended> {
        if let Some(why) = self.failure.get() {
            return Err(why.clone());
        }
        if let Some(queued) = &self.queued
            && !queued.admit(words.len())
        {
            return Err(self.failure_reason());
        }
        let outbox =
            (self.outbox.as_ref()).ok_or_else(|| Ended::Failed("the link is closed".into()))?;
        outbox
            .send(Out::Data(words.to_vec()))
            .map_err(|_| self.failure_reason())
    }

    /// A handle that can end the link with a refusal later, without keeping it open.
    pub(super) fn ender(&self) -> Option<mpsc::WeakUnboundedSender<Out>> {
        self.outbox.as_ref().map(mpsc::UnboundedSender::downgrade)
    }

    /// Stops reading, and lets the writer send what is queued, then close the link; returns
    /// the writer, which ends when it has.
    pub(super) fn hang_up(mut self) -> tokio::task::JoinHandle<()> {
        self.outbox = None;
        if let Some(stop) = self.stop_reading.take() {
            let _ = stop.send(());
        }
        self.writer
    }

    fn failure_reason(&self) -> Ended {
        (self.failure.get().cloned()).unwrap_or_else(|| Ended::Failed("the link is closed".into()))
    }
}

/// What a link's writer takes its messages from and reports to.
struct Writing {
    to_write: mpsc::UnboundedReceiver<Out>,
    /// Told of every message written, and that no more will be, where the sender waits.
    queued: Option<Arc<Backlog>>,
    silence: Duration,
    failure: Arc<OnceLock<Ended>>,
}

/// Sends queued messages as data frames, and a heartbeat whenever the link has been idle for
/// a quarter of the read time-out. Ends with a TLS close when the transport is dropped.
async fn write_loop(mut wr: WriteHalf<Stream>, mut sealer: Sealer, writing: Writing) {
    let Writing {
        mut to_write,
        queued,
        silence,
        failure,
    } = writing;
    let result: Result<()> = async {
        loop {
            let (frame, last) = match timeout(silence / 4, to_write.recv()).await {
                Ok(Some(Out::Data(words))) => {
                    if let Some(queued) = &queued {
                        queued.take(words.len());
                    }
                    (sealer.seal(Kind::Data, &words)?, false)
                }
                Ok(Some(Out::Refusal(refusal))) => {
                    (sealer.seal(Kind::Refusal, &refusal.to_words())?, true)
                }
                Ok(None) => break,
                Err(_) => (sealer.seal(Kind::Heartbeat, &[])?, false),
            };
            patiently(silence, write_frame(&mut wr, &frame)).await?;
            if last {
                let _ = failure.set(Ended::Failed("this end refused the session".into()));
                break;
            }
        }
        patiently(silence, wr.shutdown()).await
    }
    .await;
    if let Err(e) = result {
        let _ = failure.set(Ended::Failed(format!("sending failed: {e:#}")));
    }
    if let Some(queued) = &queued {
        queued.close();
    }
}

/// Delivers data frames in order until the link fails, then delivers the reason; stops
/// without a word when told to.
async fn read_loop(
    mut rd: ReadHalf<Stream>,
    mut opener: Opener,
    sink: Sink,
    silence: Duration,
    failure: Arc<OnceLock<Ended>>,
    mut stop: oneshot::Receiver<()>,
) {
    let mut room = match &sink {
        Sink::Own { .. } => usize::MAX,
        Sink::Gate { max_messages, .. } => *max_messages,
    };
    let reason = loop {
        let frame = tokio::select! {
            frame = read_frame(&mut rd, &mut opener, silence) => frame,
            _ = &mut stop => return,
        };
        match frame {
            Ok((Kind::Data, _)) if room == 0 => {
                break Ended::Failed("it sent more messages than its part takes".into());
            }
            Ok((Kind::Data, words)) => {
                room -= 1;
                let delivered = tokio::select! {
                    delivered = sink.deliver(Ok(words)) => delivered,
                    _ = &mut stop => return,
                };
                if !delivered {
                    return;
                }
            }
            Ok((Kind::Heartbeat, _)) => {}
            Ok((Kind::Refusal, words)) => {
                break match Refusal::from_words(&words) {
                    Ok(refusal) => Ended::Refused(refusal),
                    Err(e) => Ended::Failed(format!("an unreadable refusal: {e:#}")),
                };
            }
            Ok((Kind::Hello, _)) => break Ended::Failed("a second hello on an open link".into()),
            Err(e) => break Ended::Failed(format!("{e:#}")),
        }
    };
    let _ = failure.set(reason.clone());
    tokio::select! {
        _ = sink.deliver(Err(reason)) => {}
        _ = &mut stop => {}
    }
}
