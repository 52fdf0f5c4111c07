//! One compute party of a networked deployment as a long-running server: it holds its
//! weight shares from its file and runs one session per client, each on its own
//! connections and thread ([`serve_party`](super::serve_party) decides which run). A session meets its client
//! and the other two parties, checks that all hold files of one dealing, agrees on keys,
//! then serves requests until the client stops. Every wait has a deadline, so a client
//! that stalls or dies costs only its own session; a session that fails says why to the
//! others in a refusal, logs one line, and the party serves on.

use super::Progress;
use super::networked::{Explained, describe, fingerprint};
use super::party::{PartyWeight, PartyWeights, Terms, serve_requests, weight_values};
use crate::exec::MpcValue;
use crate::mpc::pond::PRODUCER;
use crate::mpc::{ArithShare, Party, Protocol};
use crate::net::config::Serving;
use crate::net::frame::{MAX_WORDS, Refusal, SessionId};
use crate::net::tls::{Connection, Node, Refused, TlsTransport, join};
use crate::net::{Role, Transport};
use crate::plan::{Holder, SharedPlan};
use anyhow::{Context, Result, anyhow, bail, ensure};
use ndarray::ArrayD;
use std::collections::BTreeMap;
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};

/// What a party tells the client to wait before retrying when it cannot reach a peer.
const PEER_RETRY: Duration = Duration::from_secs(1);

/// One compute party of a networked deployment, holding its weight shares from its file.
pub struct PartyServer {
    me: Role,
    file: SharedPlan,
    weights: PartyWeights,
    /// Told the steps done as each request runs.
    progress: Option<Progress>,
    serving: Serving,
}

impl PartyServer {
    /// Loads party `id`'s share file, refusing a file dealt to another role.
    pub fn load(mut file: SharedPlan, id: u8, name: &str) -> Result<PartyServer> {
        ensure!(
            file.holder == Holder::Party(id),
            "{name} holds the shares of {}, not of party{id}; give each party the .party{id}.plan file written for it",
            file.holder.name()
        );
        let mut kept = std::mem::take(&mut file.shares).into_iter();
        let protocol = file.protocol;
        let weights = weight_values(&file.plan, |w, _| {
            let share = match (protocol, kept.next()) {
                (Protocol::Aby3, Some(pair)) => {
                    let [cur, next]: [ArrayD<u64>; 2] = pair.try_into().map_err(|_| {
                        anyhow!("{name} does not hold two components of every weight")
                    })?;
                    ArithShare { cur, next }
                }
                (Protocol::Pond, Some(mut one)) if one.len() == 1 => {
                    ArithShare::additive(one.remove(0))
                }
                // Pond's producer holds shapes only.
                (Protocol::Pond, None) if id == PRODUCER as u8 => {
                    ArithShare::additive(ArrayD::zeros(w.data.shape()))
                }
                _ => bail!(
                    "{name} lacks the shares of weight {}",
                    file.plan.value(w.value).name
                ),
            };
            Ok(PartyWeight::Held(MpcValue::Secret(share)))
        })?;
        Ok(PartyServer {
            me: Role::Party(id),
            file,
            weights,
            progress: None,
            serving: Serving::default(),
        })
    }

    /// Tells `progress` the steps done as each request runs.
    pub fn with_progress(self, progress: Progress) -> PartyServer {
        PartyServer {
            progress: Some(progress),
            ..self
        }
    }

    /// Serves under `serving`'s limits (the configuration's `serve` section by default).
    pub fn with_serving(self, serving: Serving) -> PartyServer {
        PartyServer { serving, ..self }
    }

    /// The plan hash and dealing id of the loaded file, for logs.
    pub fn describe(&self) -> String {
        describe(&self.file)
    }

    pub fn serving(&self) -> Serving {
        self.serving
    }

    pub(super) fn me(&self) -> Role {
        self.me
    }

    /// The largest frame each role may send this party, checked before the payload is
    /// read: a client's largest message is an input at the largest batch.
    pub(super) fn frame_limits(&self) -> Result<BTreeMap<Role, usize>> {
        let plan = &self.file.plan;
        let max_batch = self.serving.max_batch;
        let mut client = fingerprint(&self.file).len();
        for input in &plan.inputs {
            let value = plan.value(input.value);
            let (_, len) = value.shape.checked_resolve(max_batch).with_context(|| {
                format!(
                    "serve.max_batch {max_batch} overflows input {} of shape {}; give a \
                     smaller --max-batch",
                    value.name, value.shape
                )
            })?;
            client = client.max(len);
        }
        let limits = (Role::PARTIES.into_iter().filter(|&p| p < self.me))
            .map(|p| (p, MAX_WORDS))
            .chain([(Role::Client, client.min(MAX_WORDS))]);
        Ok(limits.collect())
    }

    /// One session, from its first connection (the client's at party 0, party 0's at the
    /// others), with `more` bringing the connections that join it later. Returns the
    /// number of requests served.
    pub(super) fn session(
        &self,
        node: &Node,
        first: Connection,
        more: &Receiver<Connection>,
    ) -> Result<u64> {
        let session = first.session();
        let mut net = node.transport(vec![first])?;
        // A peer that cannot be reached may be restarting, or too busy: worth a retry.
        let met = match self.dial_peers(node, &mut net, session) {
            Ok(()) => self.meet(node, &mut net, more, session).map_err(|e| {
                // A busy peer's hint is passed on.
                let hint = e
                    .downcast_ref::<Refused>()
                    .and_then(|r| r.refusal.retry_after);
                (e, hint)
            }),
            Err(e) => Err((e, Some(PEER_RETRY))),
        };
        if let Err((e, retry_after)) = met {
            net.ender().refuse(&Refusal {
                retry_after,
                reason: format!("{e:#}"),
            });
            return Err(e.context(format!("{} could not open session {session}", self.me)));
        }
        let ender = net.ender();
        let wait = net.wait();
        let serving = self.serving;
        let idle = move |idle: bool| wait.set(Some(if idle { serving.idle } else { serving.wait }));
        idle(false);
        let mut party = Party::setup(Box::new(Explained(net)), self.file.protocol)?;
        let masked = self.weights.masked_for(&mut party)?;
        let mut served = 0;
        let outcome = serve_requests(
            &self.file.plan,
            &mut party,
            masked.as_ref().unwrap_or(&self.weights),
            self.progress.as_ref(),
            Terms {
                max_batch: serving.max_batch,
                idle: &idle,
            },
            |party, profile, traffic| {
                served += 1;
                let mut report = vec![traffic.bytes_sent, traffic.messages_sent];
                report.extend(profile.to_words());
                party.send_role(Role::Client, &report)
            },
        );
        if let Err(e) = &outcome {
            // Sent while the links are still open: the party drops them next.
            ender.refuse(&Refusal {
                retry_after: None,
                reason: format!("{e:#}"),
            });
        }
        outcome.map(|()| served)
    }

    /// Dials the parties after this one for `session` (the lower index dials).
    fn dial_peers(&self, node: &Node, net: &mut TlsTransport, session: SessionId) -> Result<()> {
        for peer in Role::PARTIES.into_iter().filter(|&p| p > self.me) {
            join(net, node.dial(peer, session)?)?;
        }
        Ok(())
    }

    /// Waits for the session's other links (the parties before this one and the client)
    /// within the connect time-out, then checks that every role holds a file of this
    /// dealing.
    fn meet(
        &self,
        node: &Node,
        net: &mut TlsTransport,
        more: &Receiver<Connection>,
        session: SessionId,
    ) -> Result<()> {
        let me = self.me;
        let deadline = Instant::now() + node.patience();
        let expected = Role::PARTIES.into_iter().filter(|&p| p < me);
        let mut missing: Vec<Role> = (expected.chain([Role::Client]))
            .filter(|&r| !net.has_link(r))
            .collect();
        while !missing.is_empty() {
            let left = deadline.saturating_duration_since(Instant::now());
            let Ok(connection) = more.recv_timeout(left) else {
                let missing: Vec<String> = missing.iter().map(Role::to_string).collect();
                return Err(anyhow!(
                    "{me} waited the connect time-out for {} to join session {session}",
                    missing.join(" and ")
                ));
            };
            match missing.iter().position(|&r| r == connection.peer()) {
                Some(i) => {
                    missing.remove(i);
                    join(net, connection)?;
                }
                None => connection.refuse(Refusal {
                    retry_after: None,
                    reason: format!("a second connection to {me} in session {session}"),
                }),
            }
        }
        net.wait().set(Some(node.patience()));
        let mine = fingerprint(&self.file);
        let hello = net
            .recv(Role::Client)
            .context("waiting for the client's hello")?;
        ensure!(
            hello.len() == mine.len(),
            "the client sent a malformed hello"
        );
        let others: Vec<Role> = Role::PARTIES.into_iter().filter(|&r| r != me).collect();
        for &role in others.iter().chain([&Role::Client]) {
            net.send(role, &mine)?;
        }
        ensure!(
            hello == mine,
            "the client's plan file is not from the dealing of {me}'s file ({}); give the client the .client.plan written with these shares",
            describe(&self.file)
        );
        for peer in others {
            ensure!(
                net.recv(peer)? == mine,
                "{peer} holds shares of another dealing than {me}'s file ({}); give every party its file of one tfe-convert --share run",
                describe(&self.file)
            );
        }
        Ok(())
    }
}
