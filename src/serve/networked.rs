//! The networked deployment: each compute party and the client in its own process, over
//! mutually authenticated TLS (`net::tls`). The model owner deals the weights to files once
//! ([`deal`](super::deal)); a party serves requests on its file's shares with the party
//! role's loop, and the client sends requests with the client role's code.
//!
//! Each client session has its own connections, named by a fresh random session id in
//! their hellos, so a frame of another session (or a replay) is refused by the framing
//! layer. The client dials party 0 first, which admits it (`admission.rs`), then the other
//! two; it sends each the fingerprint of its file, and every party answers with its own
//! after checking them among themselves (`party_server.rs`).

use super::encoding::prepare;
use super::{Prediction, Session, Setup, client};
use crate::exec::{Profile, REVEAL_OP, REVEAL_STEP};
use crate::mpc::Protocol;
use crate::mpc::share::Dealer;
use crate::net::config::Config;
use crate::net::frame::{SessionId, words_of};
use crate::net::tls::{Node, Refused, TlsTransport, join};
use crate::net::{Role, Stats, Transport};
use crate::plan::{Holder, Plan, SharedPlan};
use anyhow::{Result, anyhow, ensure};
use ndarray::ArrayD;
use sha2::{Digest, Sha256};
use std::time::{Duration, Instant};

/// What every file of one dealing has in common, as protocol words: the client's hello.
pub fn fingerprint(file: &SharedPlan) -> Vec<u64> {
    let digest = Sha256::digest(format!("{}/{}", file.plan_sha256, file.dealing));
    words_of(&digest)
}

pub(super) fn describe(file: &SharedPlan) -> String {
    format!("plan sha256 {}, dealing {}", file.plan_sha256, file.dealing)
}

/// A TLS transport whose errors also list every peer lost so far: a party that fails
/// because another died closes its links too, and the list names the one that died.
pub(super) struct Explained(pub(super) TlsTransport);

impl Explained {
    fn explain(&self, e: anyhow::Error) -> anyhow::Error {
        if e.downcast_ref::<Refused>().is_some() {
            // The refusal says why itself, and callers look for it.
            return e;
        }
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

/// The (node, op) names of the steps a party profiles: the plan's, then the reveal.
fn step_names(plan: &Plan) -> Vec<(&str, &str)> {
    plan.steps
        .iter()
        .map(|s| (s.node.as_str(), s.op.name()))
        .chain([(REVEAL_STEP, REVEAL_OP)])
        .collect()
}

/// The client of a networked deployment: connected to the three parties, sending only
/// shares of its inputs and reconstructing the outputs itself.
pub struct NetworkedSession {
    net: Explained,
    /// The dealing's protocol, as the client's file says.
    protocol: Protocol,
    dealer: Dealer,
    plan: Plan,
    setup: Setup,
}

impl NetworkedSession {
    /// Joins a session of the three parties of `config`: party 0 first, which admits the
    /// client (it may wait in party 0's queue), then the other two. A busy deployment's
    /// refusal is retried up to `retries` times, waiting what the refusal suggests, doubled
    /// at each attempt.
    pub fn connect(
        config: &Config,
        file: &SharedPlan,
        name: &str,
        retries: u32,
    ) -> Result<NetworkedSession> {
        ensure!(
            file.holder == Holder::Client,
            "{name} holds the shares of {}; the client needs the .client.plan file",
            file.holder.name()
        );
        let started = Instant::now();
        let node = Node::new(config, Role::Client)?;
        let mut attempt = 0;
        let net = loop {
            let error = match join_session(&node, file, name) {
                Ok(net) => break net,
                Err(e) => e,
            };
            let busy = (error.downcast_ref::<Refused>()).and_then(|r| r.refusal.retry_after);
            match busy {
                Some(wait) if attempt < retries => {
                    std::thread::sleep(backoff(wait, attempt));
                    attempt += 1;
                }
                Some(_) if retries > 0 => {
                    return Err(error.context(format!("gave up after {} attempts", retries + 1)));
                }
                _ => return Err(error),
            }
        };
        Ok(NetworkedSession {
            net: Explained(net),
            dealer: Dealer::from_os(file.protocol)?,
            protocol: file.protocol,
            plan: file.plan.clone(),
            setup: Setup {
                traffic: Stats::default(),
                time: started.elapsed(),
            },
        })
    }
}

/// One attempt at a session: a fresh session id, party 0's admission, then the others;
/// every party must answer with the fingerprint of `file`'s dealing.
fn join_session(node: &Node, file: &SharedPlan, name: &str) -> Result<TlsTransport> {
    let session = SessionId::random()?;
    let mine = fingerprint(file);
    let check = |net: &mut TlsTransport, role: Role| {
        ensure!(
            net.recv(role)? == mine,
            "{role} holds shares of another dealing than {name} ({}); give every role its file of one tfe-convert --share run",
            describe(file)
        );
        Ok(())
    };
    let first = Role::Party(0);
    let mut net = node.transport(vec![node.dial(first, session)?])?;
    net.send(first, &mine)?;
    check(&mut net, first)?;
    let others = [Role::Party(1), Role::Party(2)];
    for role in others {
        join(&mut net, node.dial(role, session)?)?;
        net.send(role, &mine)?;
    }
    for role in others {
        check(&mut net, role)?;
    }
    Ok(net)
}

/// The wait before retry `attempt` (from 0): the party's hint, doubled each time (at most
/// a minute), with a random quarter more so that clients refused together spread out.
fn backoff(hint: Duration, attempt: u32) -> Duration {
    let wait = (hint * 2u32.saturating_pow(attempt)).min(Duration::from_secs(60));
    let mut byte = [0u8];
    let _ = getrandom::fill(&mut byte);
    wait + wait / 4 * byte[0] as u32 / 255
}

impl Session for NetworkedSession {
    /// Connecting: admission, the TLS handshakes and the fingerprints (the weights are on
    /// disk).
    fn setup(&self) -> Setup {
        self.setup
    }

    /// The traffic is every role's for this request, and the profile every party's per
    /// step, as the parties report them.
    fn predict(&mut self, inputs: &[ArrayD<f32>]) -> Result<Prediction> {
        let (batch, encoded) = prepare(&self.plan, inputs)?;
        let started = Instant::now();
        let (outputs, client) = client::request(
            &mut self.net,
            self.protocol,
            &mut self.dealer,
            &self.plan,
            &encoded,
            batch,
        )?;
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
