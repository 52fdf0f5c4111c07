//! A long-running party's door: which sessions run, which clients wait, which are refused,
//! and where each arriving connection goes. One thread decides, from one queue of events
//! (connections from the listener, sessions ending), and never waits on a client or a
//! peer, so nothing one of them does can stop the party from serving the others.
//!
//! Party 0 admits: a client's connection starts a session while fewer than
//! `serve.max_sessions` run, else waits in a queue of `serve.max_queue` (for at most
//! `serve.queue_ms`), else is refused as busy with a hint of when to retry. Parties 1 and
//! 2 follow party 0: a session starts there when party 0's connection for it arrives, and
//! the other connections of a session not started yet wait (bounded, for at most the
//! connect time-out). Admitting at one party only keeps the three in step: two parties
//! each running a different session while queueing the other's could not both proceed.

use super::party_server::PartyServer;
use crate::net::Role;
use crate::net::config::Config;
use crate::net::frame::{Refusal, SessionId};
use crate::net::tls::{Connection, Node};
use anyhow::Result;
use std::collections::{BTreeMap, VecDeque};
use std::sync::mpsc::{Sender, channel};
use std::time::{Duration, Instant};

/// What the door hears.
enum Event {
    Arrived(Result<Connection>),
    Ended {
        session: SessionId,
        outcome: Result<u64>,
        time: Duration,
    },
}

/// How often the door looks for queued clients and waiting connections that expired.
const SWEEP: Duration = Duration::from_millis(250);

/// Serves clients of `config` with `server` until the process stops (or, with `once`,
/// until one session ends: its outcome is returned). `log` gets one line per event worth
/// knowing (a session started, ended or failed, a connection refused). Fails only when
/// the party cannot listen.
pub fn serve_party(
    server: &PartyServer,
    config: &Config,
    once: bool,
    log: &(dyn Fn(&str) + Sync),
) -> Result<()> {
    let me = server.me();
    let mut node = Node::new(config, me)?;
    let (events_to, events) = channel();
    let arrived = events_to.clone();
    node.listen(server.frame_limits()?, move |c| {
        let _ = arrived.send(Event::Arrived(c));
    })?;
    let mut door = Door::new(server, &node, once);
    std::thread::scope(|scope| {
        let node = &node;
        let start = |door: &mut Door, first: Connection| {
            let session = first.session();
            let (more_to, more) = channel();
            for waiting in door.started(session, more_to) {
                door.route(waiting);
            }
            log(&format!("{me} joined session {session}"));
            let ended = events_to.clone();
            scope.spawn(move || {
                let began = Instant::now();
                let outcome = server.session(node, first, &more);
                let time = began.elapsed();
                let _ = ended.send(Event::Ended {
                    session,
                    outcome,
                    time,
                });
            });
        };
        loop {
            match events.recv_timeout(SWEEP) {
                Ok(Event::Arrived(Err(e))) => log(&format!("{e:#}")),
                Ok(Event::Arrived(Ok(connection))) => {
                    if let Some(first) = door.arrive(connection, log) {
                        start(&mut door, first);
                    }
                }
                Ok(Event::Ended {
                    session,
                    outcome,
                    time,
                }) => {
                    door.ended(session, time);
                    let seconds = time.as_secs_f64();
                    match &outcome {
                        Ok(n) => log(&format!(
                            "{me} ended session {session} after {n} request(s) in {seconds:.1} s"
                        )),
                        Err(e) => log(&format!(
                            "{me} ended session {session} after {seconds:.1} s: {e:#}"
                        )),
                    }
                    if once {
                        return outcome.map(|_| ());
                    }
                }
                Err(_) => {}
            }
            door.sweep(log);
            while let Some(first) = door.next_queued() {
                start(&mut door, first);
            }
        }
    })
}

/// The door's state: sessions running, clients queued, connections waiting for their
/// session to start.
struct Door {
    me: Role,
    max_sessions: usize,
    max_queue: usize,
    queue_wait: Duration,
    patience: Duration,
    /// Each running session, where its later connections go, and how many went there.
    running: BTreeMap<SessionId, (Sender<Connection>, usize)>,
    queue: VecDeque<(Connection, Instant)>,
    waiting: Vec<(Connection, Instant)>,
    /// A running average of how long sessions last, for the busy refusal's retry hint.
    typical: Option<Duration>,
}

impl Door {
    fn new(server: &PartyServer, node: &Node, once: bool) -> Door {
        let serving = server.serving();
        let me = server.me();
        Door {
            me,
            max_sessions: if once { 1 } else { serving.max_sessions },
            // Parties 1 and 2 queue nothing: they follow party 0.
            max_queue: if once || me != Role::Party(0) {
                0
            } else {
                serving.max_queue
            },
            queue_wait: serving.queue,
            patience: node.patience(),
            running: BTreeMap::new(),
            queue: VecDeque::new(),
            waiting: vec![],
            typical: None,
        }
    }

    /// Whether `connection` starts a session at this party: a client's at party 0, party
    /// 0's at the others.
    fn starts_session(&self, connection: &Connection) -> bool {
        let starter = match self.me {
            Role::Party(0) => Role::Client,
            _ => Role::Party(0),
        };
        connection.peer() == starter
    }

    /// Where `connection` goes: returned when it starts a session now; otherwise to its
    /// running session, the queue, the connections waiting for their session, or refused.
    fn arrive(&mut self, connection: Connection, log: &dyn Fn(&str)) -> Option<Connection> {
        if self.running.contains_key(&connection.session()) || !self.starts_session(&connection) {
            self.route(connection);
            return None;
        }
        // Parties 1 and 2 follow party 0, with room for sessions that it has ended and
        // they are still closing.
        let room = match self.me {
            Role::Party(0) => self.max_sessions,
            _ => 2 * self.max_sessions,
        };
        if self.running.len() < room && self.queue.is_empty() {
            return Some(connection);
        }
        if self.queue.len() < self.max_queue {
            self.queue.push_back((connection, Instant::now()));
            return None;
        }
        let refusal = self.busy();
        log(&format!(
            "{} refused {} of session {}: {}",
            self.me,
            connection.peer(),
            connection.session(),
            refusal
        ));
        connection.refuse(refusal);
        None
    }

    /// The busy refusal, with a hint of when a slot should be free.
    fn busy(&self) -> Refusal {
        let typical = self.typical.unwrap_or(Duration::from_secs(1));
        let ahead = (self.queue.len() + 1) as u32;
        let hint = typical * ahead / self.max_sessions.max(1) as u32;
        Refusal {
            retry_after: Some(hint.clamp(Duration::from_millis(100), Duration::from_secs(30))),
            reason: format!(
                "{} is busy: {} session(s) running (serve.max_sessions {}) and {} client(s) \
                 waiting (serve.max_queue {})",
                self.me,
                self.running.len(),
                self.max_sessions,
                self.queue.len(),
                self.max_queue
            ),
        }
    }

    /// A connection of a session other than its first: to the session if it runs, else
    /// kept until it starts (bounded: a stranger cannot fill the party with them).
    fn route(&mut self, connection: Connection) {
        if let Some((session, routed)) = self.running.get_mut(&connection.session()) {
            // A session takes two (the client and a party, at party 2); a client that
            // dials again and again is refused, not queued.
            *routed += 1;
            if *routed > 4 {
                connection.refuse(Refusal {
                    retry_after: None,
                    reason: format!("too many connections to {} in one session", self.me),
                });
                return;
            }
            // A session that has ended drops it, which closes it.
            let _ = session.send(connection);
        } else if self.waiting.len() < 4 * (self.max_sessions + self.max_queue) {
            self.waiting.push((connection, Instant::now()));
        } else {
            connection.refuse(Refusal {
                retry_after: None,
                reason: format!("{} has too many connections waiting for sessions", self.me),
            });
        }
    }

    /// Records that `session` started; returns the connections that waited for it.
    fn started(&mut self, session: SessionId, more: Sender<Connection>) -> Vec<Connection> {
        self.running.insert(session, (more, 0));
        let (mine, others) = std::mem::take(&mut self.waiting)
            .into_iter()
            .partition(|(c, _)| c.session() == session);
        self.waiting = others;
        mine.into_iter().map(|(c, _)| c).collect()
    }

    fn ended(&mut self, session: SessionId, time: Duration) {
        self.running.remove(&session);
        self.typical = Some(match self.typical {
            None => time,
            Some(typical) => (typical * 4 + time) / 5,
        });
    }

    /// The next queued client, when a session slot is free.
    fn next_queued(&mut self) -> Option<Connection> {
        if self.running.len() >= self.max_sessions {
            return None;
        }
        self.queue.pop_front().map(|(c, _)| c)
    }

    /// Drops queued clients that left, refuses those that waited too long, and closes
    /// connections whose session never started.
    fn sweep(&mut self, log: &dyn Fn(&str)) {
        let now = Instant::now();
        self.queue.retain(|(c, _)| !c.is_lost());
        while let Some((_, since)) = self.queue.front() {
            if now.duration_since(*since) < self.queue_wait {
                break;
            }
            let refusal = self.busy();
            let (c, _) = self.queue.pop_front().expect("a front");
            log(&format!(
                "{} refused {} of session {} after it waited {:.1} s (serve.queue_ms)",
                self.me,
                c.peer(),
                c.session(),
                self.queue_wait.as_secs_f64()
            ));
            c.refuse(refusal);
        }
        let patience = self.patience;
        let (expired, kept) = std::mem::take(&mut self.waiting)
            .into_iter()
            .partition(|(_, since)| now.duration_since(*since) >= patience);
        self.waiting = kept;
        for (c, _) in expired {
            log(&format!(
                "{} closed a connection from {} for session {}, which never started",
                self.me,
                c.peer(),
                c.session()
            ));
            let reason = format!("session {} never started at {}", c.session(), self.me);
            c.refuse(Refusal {
                retry_after: None,
                reason,
            });
        }
    }
}
