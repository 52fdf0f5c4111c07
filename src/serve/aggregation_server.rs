//! Secure aggregation as a networked deployment, a compute party's side: it meets the other
//! parties, checks that all three run the same round under the same rules, then holds the
//! round open for the inputters (until each of those whose pieces it takes has submitted,
//! or the deadline), agrees with the others on who submitted, enforces the minimum and
//! sends its term of the sum to the result receiver.
//!
//! One thread answers every caller from the gate's events, so no caller can hold up
//! another or the round: a caller can only make the party refuse it. The agreement with the
//! other parties, which waits for them, runs on a second thread while callers are still
//! answered (a duplicate submission is refused at once even then).

use super::aggregation::{AggregateOp, Prepared};
use super::aggregation_net::{ACCEPTED, MAX_TEXT_WORDS, RoundRules, SESSION, refusal};
use super::networked::Explained;
use crate::aggregate::{self, Piece, Round};
use crate::mpc::Party;
use crate::net::config::Config;
use crate::net::frame::words_text;
use crate::net::tls::{Caller, Event, Gate, Late, Waker, serve};
use crate::net::{Role, Stats};
use anyhow::{Result, bail};
use std::collections::BTreeMap;
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// How a round ended at this party.
pub struct Served {
    /// The inputters in the revealed sum, by name.
    pub included: Vec<String>,
    /// Sent by this party.
    pub traffic: Stats,
    /// From the mesh being up to the result sent.
    pub time: Duration,
}

/// Runs `rules`' round as compute party `id` of `config`; `log` is told what happens
/// (submissions, refusals, the close). Fails, revealing nothing, when fewer inputters than
/// the minimum submitted.
pub fn serve_round(
    config: &Config,
    id: u8,
    rules: &RoundRules,
    log: &dyn Fn(&str),
) -> Result<Served> {
    let prepared = rules.prepare(AggregateOp::Sum)?;
    config.endpoint(Role::Receiver)?;
    let round = &prepared.round;
    let me = Role::Party(id);
    let late = Late {
        roles: [&round.inputters[..], &[Role::Receiver]].concat(),
        max_words: round.ring.words(round.len).max(MAX_TEXT_WORDS),
        // The round's name, then an inputter's piece.
        max_messages: 2,
    };
    let others: Vec<Role> = Role::PARTIES.into_iter().filter(|&r| r != me).collect();
    let (mesh, gate) = serve(config, me, SESSION, &others, late)?;
    let started = Instant::now();
    let mut party = Party::setup(Box::new(Explained(mesh)), rules.protocol)?;
    check_rules(&mut party, rules)?;
    log(&format!("opened {}", rules.describe()));
    let mut desk = Desk {
        gate,
        config,
        rules,
        prepared: &prepared,
        id: id as usize,
        pieces: (0..round.inputters.len()).map(|_| None).collect(),
        submitted: vec![false; round.inputters.len()],
        callers: BTreeMap::new(),
        open: true,
        receiver: None,
        log,
    };
    let (pieces_to, pieces) = mpsc::channel::<Vec<Option<Piece>>>();
    let (outcome_to, outcome) = mpsc::channel();
    let waker = WakeWhenDone(desk.gate.waker());
    std::thread::scope(|scope| {
        scope.spawn(move || {
            let _waker = waker;
            let Ok(pieces) = pieces.recv() else { return };
            let agreed = aggregate::agree(&mut party, round, &pieces).map(|included| {
                let term = aggregate::reveal(&mut party, round, pieces, &included);
                (included, term, party.stats())
            });
            let _ = outcome_to.send(agreed);
        });
        {
            let pieces_to = pieces_to;
            desk.hold_open(started + Duration::from_millis(rules.deadline_ms));
            let _ = pieces_to.send(std::mem::take(&mut desk.pieces));
        }
        let outcome = desk.await_outcome(&outcome)?;
        desk.deliver(outcome, started)
    })
}

/// Wakes the party's gate when the agreement thread ends, however it ends.
struct WakeWhenDone(Waker);

impl Drop for WakeWhenDone {
    fn drop(&mut self) {
        self.0.wake();
    }
}

/// The three parties must run the same round under the same rules.
fn check_rules(party: &mut Party, rules: &RoundRules) -> Result<()> {
    let mine = rules.to_words();
    for offset in [1, 2] {
        party.send_to(party.peer(offset), &mine)?;
    }
    for offset in [1, 2] {
        let peer = party.peer(offset);
        let theirs = party.recv_role(Role::Party(peer as u8))?;
        if theirs != mine {
            let described = words_text(&theirs).unwrap_or_else(|_| "unreadable rules".into());
            bail!(
                "party {peer} runs other rules ({described}) than party {} ({}); start the three \
                 parties with the same --aggregate round, rules and configuration",
                party.id(),
                serde_json::to_string(rules)?
            );
        }
    }
    Ok(())
}

/// Where a caller is in its exchange with the party.
enum Stage {
    /// Connected; its first message names the round.
    Request,
    /// An inputter accepted for the round, whose piece is due.
    Piece(usize),
    /// The result receiver, waiting for the result.
    Receiver,
}

/// The party's side of the callers: who is where, the pieces taken so far, and whether
/// the round still takes submissions.
struct Desk<'a> {
    gate: Gate,
    config: &'a Config,
    rules: &'a RoundRules,
    prepared: &'a Prepared,
    id: usize,
    /// Taken by the agreement when the round closes.
    pieces: Vec<Option<Piece>>,
    submitted: Vec<bool>,
    callers: BTreeMap<Caller, Stage>,
    open: bool,
    receiver: Option<Caller>,
    log: &'a dyn Fn(&str),
}

/// Who is in the sum, this party's term of it (none at Pond's producer) and what the
/// agreement sent.
type Outcome = Result<(Vec<bool>, Option<Vec<u64>>, Stats)>;

impl Desk<'_> {
    fn round(&self) -> &Round {
        &self.prepared.round
    }

    /// Whether this party takes a piece of inputter `k`'s vector.
    fn holds(&self, k: usize) -> bool {
        let (mask_at, value_at) = aggregate::holders(self.rules.protocol, k);
        self.id == mask_at || self.id == value_at
    }

    /// Answers callers until every inputter whose pieces this party takes has submitted, or
    /// `deadline`; then closes the round.
    fn hold_open(&mut self, deadline: Instant) {
        let n = self.round().inputters.len();
        while (0..n).any(|k| self.holds(k) && !self.submitted[k]) {
            match self.gate.next(deadline) {
                Some(event) => self.handle(event),
                None => break,
            }
        }
        self.open = false;
        let late: Vec<Caller> = (self.callers.iter())
            .filter(|(_, stage)| matches!(stage, Stage::Piece(_)))
            .map(|(c, _)| *c)
            .collect();
        for caller in late {
            self.refuse(caller, "the round closed before its piece arrived");
        }
        let missing: Vec<String> = (0..n)
            .filter(|&k| self.holds(k) && !self.submitted[k])
            .map(|k| self.config.name(Role::Inputter(k as u16)))
            .collect();
        (self.log)(&if !self.rules.protocol.holds(self.id) {
            "takes no pieces (the crypto producer, under pond): waits for the servers' agreement"
                .to_string()
        } else if missing.is_empty() {
            "closed the round: every inputter it takes pieces from has submitted".to_string()
        } else {
            format!(
                "closed the round at its deadline; missing: {}",
                missing.join(", ")
            )
        });
    }

    /// Answers callers until the agreement with the other parties is done.
    fn await_outcome(&mut self, outcome: &mpsc::Receiver<Outcome>) -> Result<Outcome> {
        loop {
            match outcome.try_recv() {
                Ok(outcome) => return Ok(outcome),
                Err(mpsc::TryRecvError::Empty) => {}
                Err(mpsc::TryRecvError::Disconnected) => bail!("the agreement thread stopped"),
            }
            // The agreement thread wakes the gate when it is done; the hour only bounds a
            // wait that a wake-up always ends.
            if let Some(event) = self.gate.next(Instant::now() + Duration::from_secs(3600)) {
                self.handle(event);
            }
        }
    }

    /// Sends the receiver the outcome (the term, or why there is none) once it is
    /// connected, waiting for it at most the connect time-out.
    fn deliver(&mut self, outcome: Outcome, started: Instant) -> Result<Served> {
        let deadline = Instant::now() + self.config.timeouts().connect;
        let receiver = loop {
            if let Some(receiver) = self.receiver {
                break receiver;
            }
            match self.gate.next(deadline) {
                Some(event) => self.handle(event),
                None => {
                    outcome?;
                    bail!(
                        "the result receiver did not connect within the connect time-out ({:.1} s) after the round closed",
                        self.config.timeouts().connect.as_secs_f64()
                    )
                }
            }
        };
        let (included, term, traffic) = match outcome {
            Ok(agreed) => agreed,
            Err(e) => {
                let _ = self.gate.send(receiver, &refusal(&format!("{e:#}")));
                return Err(e);
            }
        };
        self.gate.send(receiver, &[ACCEPTED])?;
        if let Some(term) = term {
            self.gate.send(receiver, &term)?;
        }
        self.gate.hang_up(receiver);
        let names = (included.iter().enumerate())
            .filter(|(_, i)| **i)
            .map(|(k, _)| self.config.name(Role::Inputter(k as u16)))
            .collect();
        Ok(Served {
            included: names,
            // The callers' links are the gate's, metered apart from the mesh.
            traffic: traffic + self.gate.stats(),
            time: started.elapsed(),
        })
    }

    fn handle(&mut self, event: Event) {
        match event {
            Event::Woken => {}
            Event::Joined(caller) => {
                self.callers.insert(caller, Stage::Request);
            }
            Event::Left(caller, why) => {
                let name = self.config.name(caller.role);
                match self.callers.remove(&caller) {
                    Some(Stage::Piece(_)) => {
                        (self.log)(&format!("{name} left before sending its piece: {why}"))
                    }
                    Some(Stage::Receiver) => {
                        self.receiver = None;
                        (self.log)(&format!("the result receiver left: {why}"));
                    }
                    _ => {}
                }
            }
            Event::Message(caller, words) => {
                let answered = match self.callers.get(&caller) {
                    Some(Stage::Request) => self.request(caller, &words),
                    Some(Stage::Piece(k)) => self.piece(caller, *k, words),
                    _ => Err("a message out of turn".to_string()),
                };
                if let Err(why) = answered {
                    self.refuse(caller, &why);
                }
            }
        }
    }

    /// A caller names its round: accepted with the rules, or refused with why.
    fn request(&mut self, caller: Caller, words: &[u64]) -> Result<(), String> {
        let asked = words_text(words).map_err(|e| format!("an unreadable request: {e}"))?;
        let round = &self.rules.round;
        if asked != *round {
            return Err(format!(
                "party {} runs round {round:?}, not {asked:?}",
                self.id
            ));
        }
        let stage = match caller.role {
            Role::Receiver if self.receiver.is_some() => {
                return Err("the result receiver is already connected".into());
            }
            Role::Receiver => {
                self.receiver = Some(caller);
                Stage::Receiver
            }
            Role::Inputter(k) => {
                self.may_submit(k as usize)?;
                Stage::Piece(k as usize)
            }
            role => return Err(format!("{role} takes no part in an aggregation")),
        };
        self.gate
            .send(caller, &[vec![ACCEPTED], self.rules.to_words()].concat())
            .map_err(|e| format!("{e:#}"))?;
        self.callers.insert(caller, stage);
        Ok(())
    }

    /// Why inputter `k` may not submit now, if it may not.
    fn may_submit(&self, k: usize) -> Result<(), String> {
        let (name, round) = (
            self.config.name(Role::Inputter(k as u16)),
            &self.rules.round,
        );
        if !self.holds(k) {
            return Err(format!(
                "party {} takes none of {name}'s pieces; it submits to parties {:?}",
                self.id,
                aggregate::holders(self.rules.protocol, k)
            ));
        }
        if self.submitted[k] {
            return Err(format!(
                "{name} already submitted to round {round:?}; a second submission is refused"
            ));
        }
        if (self.callers.values()).any(|s| matches!(s, Stage::Piece(j) if *j == k)) {
            return Err(format!(
                "{name} is already submitting to round {round:?} on another connection"
            ));
        }
        if !self.open {
            return Err(format!(
                "round {round:?} is closed (every inputter submitted, or its deadline passed)"
            ));
        }
        Ok(())
    }

    /// Inputter `k`'s piece: checked, kept and confirmed.
    fn piece(&mut self, caller: Caller, k: usize, words: Vec<u64>) -> Result<(), String> {
        let piece = (self.round().piece(self.id, k, words))
            .map_err(|e| format!("{e:#}"))?
            .ok_or_else(|| "no piece was due".to_string())?;
        self.pieces[k] = Some(piece);
        self.submitted[k] = true;
        self.callers.remove(&caller);
        let _ = self.gate.send(caller, &[ACCEPTED]);
        self.gate.hang_up(caller);
        (self.log)(&format!(
            "{} submitted",
            self.config.name(Role::Inputter(k as u16))
        ));
        Ok(())
    }

    /// Tells `caller` why it is refused, logs it and hangs up.
    fn refuse(&mut self, caller: Caller, why: &str) {
        let _ = self.gate.send(caller, &refusal(why));
        self.gate.hang_up(caller);
        self.callers.remove(&caller);
        if self.receiver == Some(caller) {
            self.receiver = None;
        }
        (self.log)(&format!("refused {}: {why}", self.config.name(caller.role)));
    }
}
