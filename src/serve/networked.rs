//! The networked deployment: each compute party and the client in its own process, over
//! mutually authenticated TLS (`net::tls`). The model owner deals the weights to files once
//! ([`deal`](super::deal)); a party serves requests on its file's shares with the party
//! role's loop, and the client sends requests with the client role's code.
//!
//! A run starts with a bootstrap on a mesh under a fixed session id, which carries one
//! message each way: the client sends a fresh random session id and the fingerprint of its
//! file, the parties check the fingerprints among themselves and answer with theirs. Then
//! every role drops the bootstrap mesh and connects again under the client's session id, so
//! a frame of another run (or a replay) is refused by the framing layer.

use super::encoding::prepare;
use super::party::{PartyWeight, PartyWeights, serve_requests, weight_values};
use super::{Prediction, Progress, Session, Setup, client};
use crate::exec::{MpcValue, Profile, REVEAL_OP, REVEAL_STEP};
use crate::mpc::share::Dealer;
use crate::mpc::{ArithShare, Party};
use crate::net::config::Config;
use crate::net::frame::{SessionId, words_of};
use crate::net::tls::{TlsTransport, connect};
use crate::net::{Role, Stats, Transport};
use crate::plan::{Holder, Plan, SharedPlan};
use anyhow::{Context, Result, anyhow, ensure};
use ndarray::ArrayD;
use sha2::{Digest, Sha256};
use std::time::Instant;

/// The session id of the bootstrap mesh, which carries only the hello and its answers.
const BOOTSTRAP: SessionId = SessionId(*b"tfe-bootstrap-v1");

/// What every file of one dealing has in common, as protocol words.
fn fingerprint(file: &SharedPlan) -> Vec<u64> {
    let digest = Sha256::digest(format!("{}/{}", file.plan_sha256, file.dealing));
    words_of(&digest)
}

fn describe(file: &SharedPlan) -> String {
    format!("plan sha256 {}, dealing {}", file.plan_sha256, file.dealing)
}

/// A TLS transport whose errors also list every peer lost so far: a party that fails
/// because another died closes its links too, and the list names the one that died.
pub(super) struct Explained(pub(super) TlsTransport);

impl Explained {
    fn explain(&self, e: anyhow::Error) -> anyhow::Error {
        let lost: Vec<String> = self
            .0
            .lost_peers()
            .into_iter()
            .map(|(peer, why)| format!("{peer}: {why}"))
            .collect();
        if lost.is_empty() {
            e
        } else {
            anyhow!("{e:#} (links lost so far: {})", lost.join("; "))
        }
    }
}

impl Transport for Explained {
    fn me(&self) -> Role {
        self.0.me()
    }

    fn send(&mut self, to: Role, words: &[u64]) -> Result<()> {
        self.0.send(to, words).map_err(|e| self.explain(e))
    }

    fn recv(&mut self, from: Role) -> Result<Vec<u64>> {
        self.0.recv(from).map_err(|e| self.explain(e))
    }

    fn stats(&self) -> Stats {
        self.0.stats()
    }
}

/// One compute party of a networked deployment, holding its weight shares from its file.
pub struct PartyServer {
    me: Role,
    file: SharedPlan,
    weights: PartyWeights,
    /// Told the steps done as each request runs.
    progress: Option<Progress>,
}

impl PartyServer {
    /// Loads party `id`'s share file, refusing a file dealt to another role.
    pub fn load(mut file: SharedPlan, id: u8, name: &str) -> Result<PartyServer> {
        ensure!(
            file.holder == Holder::Party(id),
            "{name} holds the shares of {}, not of party{id}; give each party the .party{id}.plan file written for it",
            file.holder.name()
        );
        let mut pairs = std::mem::take(&mut file.shares).into_iter();
        let weights = weight_values(&file.plan, |_| {
            let [cur, next] = pairs
                .next()
                .with_context(|| format!("{name} lacks the shares of a weight"))?;
            Ok(PartyWeight::Held(MpcValue::Secret(ArithShare {
                cur,
                next,
            })))
        })?;
        Ok(PartyServer {
            me: Role::Party(id),
            file,
            weights,
            progress: None,
        })
    }

    /// Tells `progress` the steps done as each request runs.
    pub fn with_progress(self, progress: Progress) -> PartyServer {
        PartyServer {
            progress: Some(progress),
            ..self
        }
    }

    /// The plan hash and dealing id of the loaded file, for logs.
    pub fn describe(&self) -> String {
        describe(&self.file)
    }

    /// Waits for a client on the bootstrap mesh and checks that every role holds a file of
    /// the same dealing; returns the client's session id.
    pub fn await_client(&self, config: &Config) -> Result<SessionId> {
        let me = self.me;
        let mut boot = connect(config, me, BOOTSTRAP)?;
        let mine = fingerprint(&self.file);
        let hello = boot
            .recv(Role::Client)
            .context("waiting for the client's hello")?;
        ensure!(
            hello.len() == 2 + mine.len(),
            "the client sent a malformed hello"
        );
        let others: Vec<Role> = Role::PARTIES.into_iter().filter(|&r| r != me).collect();
        for &role in others.iter().chain([&Role::Client]) {
            boot.send(role, &mine)?;
        }
        ensure!(
            hello[2..] == mine[..],
            "the client's plan file is not from the dealing of {me}'s file ({}); give the client the .client.plan written with these shares",
            describe(&self.file)
        );
        for peer in others {
            ensure!(
                boot.recv(peer)? == mine,
                "{peer} holds shares of another dealing than {me}'s file ({}); give every party its file of one tfe-convert --share run",
                describe(&self.file)
            );
        }
        Ok(session_of(&hello[..2]))
    }

    /// Serves one session after [`PartyServer::await_client`]: the mesh under the client's
    /// session id, key agreement, then requests until the client stops. Returns the number of
    /// requests served.
    pub fn serve(&self, config: &Config, session: SessionId) -> Result<u64> {
        let net = Explained(connect(config, self.me, session)?);
        let mut party = Party::setup(Box::new(net))?;
        let mut served = 0;
        serve_requests(
            &self.file.plan,
            &mut party,
            &self.weights,
            self.progress.as_ref(),
            |party, profile, traffic| {
                served += 1;
                let mut report = vec![traffic.bytes_sent, traffic.messages_sent];
                report.extend(profile.to_words());
                party.send_role(Role::Client, &report)
            },
        )?;
        Ok(served)
    }
}

/// The (node, op) names of the steps a party profiles: the plan's, then the reveal.
fn step_names(plan: &Plan) -> Vec<(&str, &str)> {
    plan.steps
        .iter()
        .map(|s| (s.node.as_str(), s.op.name()))
        .chain([(REVEAL_STEP, REVEAL_OP)])
        .collect()
}

fn session_of(words: &[u64]) -> SessionId {
    let mut id = [0; 16];
    id[..8].copy_from_slice(&words[0].to_le_bytes());
    id[8..].copy_from_slice(&words[1].to_le_bytes());
    SessionId(id)
}

/// The client of a networked deployment: connected to the three parties, sending only
/// shares of its inputs and reconstructing the outputs itself.
pub struct NetworkedSession {
    net: Explained,
    dealer: Dealer,
    plan: Plan,
    setup: Setup,
}

impl NetworkedSession {
    /// Says hello with a fresh session id, then connects the mesh under it.
    pub fn connect(config: &Config, file: &SharedPlan, name: &str) -> Result<NetworkedSession> {
        ensure!(
            file.holder == Holder::Client,
            "{name} holds the shares of {}; the client needs the .client.plan file",
            file.holder.name()
        );
        let started = Instant::now();
        let session = SessionId::random()?;
        let mine = fingerprint(file);
        {
            let mut boot = Explained(connect(config, Role::Client, BOOTSTRAP)?);
            let hello: Vec<u64> = words_of(&session.0)
                .into_iter()
                .chain(mine.iter().copied())
                .collect();
            for role in Role::PARTIES {
                boot.send(role, &hello)?;
            }
            for role in Role::PARTIES {
                ensure!(
                    boot.recv(role)? == mine,
                    "{role} holds shares of another dealing than {name} ({}); give every role its file of one tfe-convert --share run",
                    describe(file)
                );
            }
        }
        let net = Explained(connect(config, Role::Client, session)?);
        Ok(NetworkedSession {
            net,
            dealer: Dealer::from_os()?,
            plan: file.plan.clone(),
            setup: Setup {
                traffic: Stats::default(),
                time: started.elapsed(),
            },
        })
    }
}

impl Session for NetworkedSession {
    /// Connecting: the bootstrap, the mesh and the TLS handshakes (the weights are on disk).
    fn setup(&self) -> Setup {
        self.setup
    }

    /// The traffic is every role's for this request, and the profile every party's per
    /// step, as the parties report them.
    fn predict(&mut self, inputs: &[ArrayD<f32>]) -> Result<Prediction> {
        let (batch, encoded) = prepare(&self.plan, inputs)?;
        let started = Instant::now();
        let (outputs, client) =
            client::request(&mut self.net, &mut self.dealer, &self.plan, &encoded, batch)?;
        let names = step_names(&self.plan);
        let mut reports = vec![];
        for role in Role::PARTIES {
            let report = self.net.recv(role)?;
            let malformed = || anyhow!("{role} sent a malformed report");
            let (totals, steps) = report.split_at_checked(2).ok_or_else(malformed)?;
            let profile = Profile::from_words(steps, &names).ok_or_else(malformed)?;
            let traffic = Stats {
                bytes_sent: totals[0],
                messages_sent: totals[1],
                rounds: 0,
            };
            reports.push((profile, traffic));
        }
        Ok(client::prediction(outputs, batch, client, reports, started))
    }

    /// Tells the parties this client is done; they end the session cleanly.
    fn close(mut self: Box<Self>) -> Result<()> {
        client::stop(&mut self.net)
    }
}
