//! One link of the networked mode: a TLS connection to one peer, with a reader and a writer
//! task. The writer sends queued messages as frames and heartbeats when idle; the reader
//! delivers each message, and finally why the link ended, to a [`Sink`]: the link's own
//! inbox, or a gate's events tagged with the caller.

use super::wire::{Stream, patiently, read_frame, write_frame};
use crate::net::Role;
use crate::net::frame::{Kind, Opener, Sealer};
use anyhow::Result;
use std::sync::{Arc, OnceLock, mpsc as std_mpsc};
use std::time::Duration;
use tokio::io::{AsyncWriteExt, ReadHalf, WriteHalf};
use tokio::runtime::Runtime;
use tokio::sync::{mpsc, oneshot};
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

pub(super) struct Link {
    outbox: Option<mpsc::UnboundedSender<Vec<u64>>>,
    /// Where `recv` takes messages from; `None` when they go to a [`Gate`]'s events.
    inbox: Option<std_mpsc::Receiver<Result<Vec<u64>, String>>>,
    /// Why the link died, as first seen by its reader or writer.
    failure: Arc<OnceLock<String>>,
    writer: tokio::task::JoinHandle<()>,
    /// Stops the reader when the link is hung up on.
    stop_reading: Option<oneshot::Sender<()>>,
}

/// Where a link's reader delivers messages, and finally why the link ended.
pub(super) enum Sink {
    /// The link's own inbox, read by `recv`.
    Own(std_mpsc::Sender<Result<Vec<u64>, String>>),
    /// A gate's events, tagged with the caller; at most `max_messages`, then the link
    /// ends, so that a caller cannot queue more than its part takes.
    Gate {
        caller: Caller,
        events: std_mpsc::Sender<Raw>,
        max_messages: usize,
    },
}

impl Sink {
    /// False once nobody listens any more.
    fn deliver(&self, message: Result<Vec<u64>, String>) -> bool {
        match self {
            Sink::Own(inbox) => inbox.send(message).is_ok(),
            Sink::Gate { caller, events, .. } => events
                .send(match message {
                    Ok(words) => Raw::Message(*caller, words),
                    Err(why) => Raw::Left(*caller, why),
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
        let (outbox, queued) = mpsc::unbounded_channel();
        let failure = Arc::new(OnceLock::new());
        let (stop_reading, stop) = oneshot::channel();
        let reader = read_loop(rd, opener, sink, silence, failure.clone(), stop);
        let writer = tokio::spawn(write_loop(wr, sealer, queued, silence, failure.clone()));
        let link = Link {
            outbox: Some(outbox),
            inbox: None,
            failure,
            writer,
            stop_reading: Some(stop_reading),
        };
        (link, reader)
    }

    /// A link whose messages `recv` takes, started on the current runtime.
    pub(super) fn spawn(stream: Stream, sealer: Sealer, opener: Opener, silence: Duration) -> Link {
        let (inbox, inbox_reader) = std_mpsc::channel();
        let (mut link, reader) = Link::open(stream, sealer, opener, silence, Sink::Own(inbox));
        link.inbox = Some(inbox_reader);
        tokio::spawn(reader);
        link
    }

    /// The next message, waiting for it, or why the link ended.
    pub(super) fn recv(&self) -> Result<Vec<u64>, String> {
        let inbox = self.inbox.as_ref().ok_or("its messages go to a gate")?;
        match inbox.recv() {
            Ok(message) => message,
            Err(_) => Err(self.failure_reason().to_string()),
        }
    }

    /// Why the link died, if it has.
    pub(super) fn failure(&self) -> Option<&String> {
        self.failure.get()
    }

    /// Queues `words` for the peer, or says why the link cannot take them.
    pub(super) fn send(&self, words: &[u64]) -> Result<(), String> {
        if let Some(why) = self.failure.get() {
            return Err(why.clone());
        }
        let outbox = self.outbox.as_ref().ok_or("the link is closed")?;
        outbox
            .send(words.to_vec())
            .map_err(|_| self.failure_reason().to_string())
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

    fn failure_reason(&self) -> &str {
        self.failure
            .get()
            .map_or("the link is closed", String::as_str)
    }
}

/// Sends queued messages as data frames, and a heartbeat whenever the link has been idle for
/// a quarter of the read time-out. Ends with a TLS close when the transport is dropped.
async fn write_loop(
    mut wr: WriteHalf<Stream>,
    mut sealer: Sealer,
    mut queued: mpsc::UnboundedReceiver<Vec<u64>>,
    silence: Duration,
    failure: Arc<OnceLock<String>>,
) {
    let result: Result<()> = async {
        loop {
            let frame = match timeout(silence / 4, queued.recv()).await {
                Ok(Some(words)) => sealer.seal(Kind::Data, &words)?,
                Ok(None) => break,
                Err(_) => sealer.seal(Kind::Heartbeat, &[])?,
            };
            patiently(silence, write_frame(&mut wr, &frame)).await?;
        }
        patiently(silence, wr.shutdown()).await
    }
    .await;
    if let Err(e) = result {
        let _ = failure.set(format!("sending failed: {e:#}"));
    }
}

/// Delivers data frames in order until the link fails, then delivers the reason; stops
/// without a word when told to.
async fn read_loop(
    mut rd: ReadHalf<Stream>,
    mut opener: Opener,
    sink: Sink,
    silence: Duration,
    failure: Arc<OnceLock<String>>,
    mut stop: oneshot::Receiver<()>,
) {
    let mut room = match &sink {
        Sink::Own(_) => usize::MAX,
        Sink::Gate { max_messages, .. } => *max_messages,
    };
    let reason = loop {
        let frame = tokio::select! {
            frame = read_frame(&mut rd, &mut opener, silence) => frame,
            _ = &mut stop => return,
        };
        match frame {
            Ok((Kind::Data, _)) if room == 0 => {
                break "it sent more messages than its part takes".to_string();
            }
            Ok((Kind::Data, words)) => {
                room -= 1;
                if !sink.deliver(Ok(words)) {
                    return;
                }
            }
            Ok((Kind::Heartbeat, _)) => {}
            Ok((Kind::Hello, _)) => break "a second hello on an open link".to_string(),
            Err(e) => break format!("{e:#}"),
        }
    };
    let _ = failure.set(reason.clone());
    sink.deliver(Err(reason));
}
