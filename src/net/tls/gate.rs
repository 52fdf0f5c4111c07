//! Late joiners: a compute party's listener stays open after its mesh is up and admits the
//! roles that join at their own time (an aggregation's inputters and result receiver). Each
//! connection is reported as events, from one queue, so that one thread can serve many
//! callers without waiting on any of them; frames are bounded, and so is the number of
//! connections open at once.

pub use super::link::Caller;
use super::link::{Link, Raw, Sink, close_links};
use super::mesh::{Door, Established};
use crate::net::{Meter, Stats};
use anyhow::{Result, anyhow};
use std::collections::BTreeMap;
use std::sync::{Arc, mpsc as std_mpsc};
use std::time::{Duration, Instant};
use tokio::runtime::Runtime;
use tokio::sync::Semaphore;
use tokio::task::JoinHandle;

/// What happened at the gate.
#[derive(Debug)]
pub enum Event {
    /// A caller connected and authenticated.
    Joined(Caller),
    Message(Caller, Vec<u64>),
    /// The caller's link ended (it closed, went silent or broke the framing), with why.
    Left(Caller, String),
    /// Another thread of the party called [`Waker::wake`].
    Woken,
}

/// Wakes a thread waiting in [`Gate::next`], from another thread.
#[derive(Clone)]
pub struct Waker(std_mpsc::Sender<Raw>);

impl Waker {
    pub fn wake(&self) {
        let _ = self.0.send(Raw::Wake);
    }
}

/// Connections open at once per late role (more than one per role only while a caller
/// retries or misbehaves).
const OPEN_PER_ROLE: usize = 2;

/// The open door of a compute party: late joiners' connections and their messages.
/// Dropping it stops listening and closes every caller's link after flushing it.
pub struct Gate {
    events: std_mpsc::Receiver<Raw>,
    waker: Waker,
    links: BTreeMap<Caller, Link>,
    /// The writers of hung-up links, still sending what was queued.
    closing: Vec<JoinHandle<()>>,
    runtime: Option<Arc<Runtime>>,
    forwarder: JoinHandle<()>,
    patience: Duration,
    meter: Meter,
}

impl Gate {
    pub(super) fn open(runtime: Arc<Runtime>, door: Door, patience: Duration) -> Gate {
        let (sender, events) = std_mpsc::channel();
        let open = Arc::new(Semaphore::new(OPEN_PER_ROLE * door.late.roles.len() + 1));
        let waker = Waker(sender.clone());
        let forwarder = runtime.spawn(forward(door, sender, open, patience));
        Gate {
            events,
            waker,
            links: BTreeMap::new(),
            closing: vec![],
            runtime: Some(runtime),
            forwarder,
            patience,
            meter: Meter::default(),
        }
    }

    /// The next event, waiting until `until` at most (`None` then).
    /// Nothing more is reported of a caller after [`Gate::hang_up`].
    pub fn next(&mut self, until: Instant) -> Option<Event> {
        loop {
            let wait = until.saturating_duration_since(Instant::now());
            match self.events.recv_timeout(wait).ok()? {
                Raw::Joined(caller, link) => {
                    self.links.insert(caller, link);
                    return Some(Event::Joined(caller));
                }
                Raw::Message(caller, words) if self.links.contains_key(&caller) => {
                    return Some(Event::Message(caller, words));
                }
                Raw::Left(caller, why) if self.links.remove(&caller).is_some() => {
                    return Some(Event::Left(caller, why));
                }
                Raw::Wake => return Some(Event::Woken),
                Raw::Message(..) | Raw::Left(..) => {}
            }
        }
    }

    pub fn waker(&self) -> Waker {
        self.waker.clone()
    }

    /// Queues `words` for `to`.
    pub fn send(&mut self, to: Caller, words: &[u64]) -> Result<()> {
        let link = (self.links.get(&to)).ok_or_else(|| anyhow!("{} has left", to.role))?;
        (link.send(words)).map_err(|why| anyhow!("lost {}: {why}", to.role))?;
        self.meter.on_send(words.len());
        Ok(())
    }

    /// What was sent to callers (payload bytes and messages, as a transport meters them).
    pub fn stats(&self) -> Stats {
        self.meter.stats()
    }

    /// Closes the link to `caller` once what was sent to it is written; nothing more is
    /// heard from it.
    pub fn hang_up(&mut self, caller: Caller) {
        if let Some(link) = self.links.remove(&caller) {
            self.closing.retain(|writer| !writer.is_finished());
            self.closing.push(link.hang_up());
        }
    }
}

impl Drop for Gate {
    fn drop(&mut self) {
        self.forwarder.abort();
        if let Some(runtime) = self.runtime.take() {
            let links = std::mem::take(&mut self.links).into_values();
            let mut writers: Vec<_> = links.map(Link::hang_up).collect();
            writers.append(&mut self.closing);
            close_links(runtime, writers, self.patience);
        }
    }
}

/// Turns the door's arrivals into links that report to `events`, refusing roles that may
/// not join late and connections beyond `open`'s permits.
async fn forward(
    mut door: Door,
    events: std_mpsc::Sender<Raw>,
    open: Arc<Semaphore>,
    silence: Duration,
) {
    let mut next_id = 0;
    let late = door.late.roles.clone();
    let max_messages = door.late.max_messages;
    let mut admit = |(role, (stream, sealer, opener)): Established| {
        if !late.contains(&role) {
            eprintln!("tfe-net: ignored a connection from {role}, which is already connected");
            return true;
        }
        let Ok(permit) = open.clone().try_acquire_owned() else {
            eprintln!("tfe-net: hung up on {role}: too many connections are open");
            return true;
        };
        let caller = Caller { role, id: next_id };
        next_id += 1;
        let sink = Sink::Gate {
            caller,
            events: events.clone(),
            max_messages,
        };
        let (link, reader) = Link::open(stream, sealer, opener, silence, sink);
        if events.send(Raw::Joined(caller, link)).is_err() {
            return false;
        }
        // Started only now, so that the caller's messages follow its arrival.
        tokio::spawn(async move {
            reader.await;
            drop(permit);
        });
        true
    };
    for arrival in std::mem::take(&mut door.early) {
        if !admit(arrival) {
            return;
        }
    }
    while let Some(arrival) = door.arrivals.recv().await {
        match arrival {
            Ok(arrival) => {
                if !admit(arrival) {
                    return;
                }
            }
            Err(e) => eprintln!("tfe-net: {e:#}"),
        }
    }
}
