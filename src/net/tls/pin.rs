//! Certificate pinning: each role accepts a peer only if it presents the certificate
//! configured for a role it expects (chaining to that role's CA when one is configured).

use crate::net::Role;
use crate::net::config::{Config, field_name};
use anyhow::{Context, Result, anyhow};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{
    CryptoProvider, WebPkiSupportedAlgorithms, verify_tls12_signature, verify_tls13_signature,
};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{
    CertificateError, DigitallySignedStruct, DistinguishedName, OtherError, RootCertStore,
    SignatureScheme,
};
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};
use std::sync::Arc;
use tokio::net::TcpStream;

struct Pin {
    role: Role,
    cert: CertificateDer<'static>,
    anchors: Option<RootCertStore>,
}

impl Pin {
    fn new(config: &Config, role: Role) -> Result<Pin> {
        let endpoint = config.endpoint(role)?;
        let anchors = match &endpoint.ca {
            None => None,
            Some(ca) => {
                let mut store = RootCertStore::empty();
                store.add(ca.clone()).with_context(|| {
                    format!(
                        "roles.{}.ca in {} is not a usable CA certificate",
                        field_name(role),
                        config.source().display()
                    )
                })?;
                Some(store)
            }
        };
        Ok(Pin {
            role,
            cert: endpoint.cert.clone(),
            anchors,
        })
    }
}

/// Every role's pinned certificate (and CA, when configured).
pub(super) struct Pins {
    me: Role,
    pins: Vec<Pin>,
    provider: Arc<CryptoProvider>,
}

impl Pins {
    /// The pins of every role of `config`, as `me` checks its peers.
    pub(super) fn new(config: &Config, me: Role) -> Result<Pins> {
        let pins = config
            .roles()
            .map(|role| Pin::new(config, role))
            .collect::<Result<Vec<_>>>()?;
        Ok(Pins {
            me,
            pins,
            provider: Arc::new(rustls::crypto::ring::default_provider()),
        })
    }

    /// The cryptography both sides of every handshake use.
    pub(super) fn provider(&self) -> Arc<CryptoProvider> {
        self.provider.clone()
    }

    pub(super) fn expecting(self: &Arc<Self>, roles: Vec<Role>) -> PinVerifier {
        PinVerifier {
            pins: self.clone(),
            expected: roles,
        }
    }

    /// The role whose pinned certificate the peer of an established connection presented.
    pub(super) fn identify(
        &self,
        tls: &tokio_rustls::server::TlsStream<TcpStream>,
    ) -> Result<Role> {
        let presented = tls
            .get_ref()
            .1
            .peer_certificates()
            .and_then(|c| c.first())
            .ok_or_else(|| anyhow!("a peer presented no certificate"))?;
        self.pins
            .iter()
            .find(|p| p.cert == *presented)
            .map(|p| p.role)
            .ok_or_else(|| anyhow!("a peer's certificate matches no role"))
    }
}

/// Why a certificate was refused; rustls shows it with `Debug`, hence the plain text there.
struct Refusal(String);

impl std::fmt::Debug for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Refusal {}

/// Accepts a peer only if it presents the pinned certificate of one of `expected`, chaining to
/// that role's CA when one is configured. Refusals are logged, without key material.
pub(super) struct PinVerifier {
    pins: Arc<Pins>,
    expected: Vec<Role>,
}

impl std::fmt::Debug for PinVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PinVerifier(expecting {:?})", self.expected)
    }
}

impl PinVerifier {
    fn check(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<(), rustls::Error> {
        self.reason_to_refuse(end_entity, intermediates, now)
            .map_or(Ok(()), |reason| {
                let me = self.pins.me;
                eprintln!("tfe-net: {me} refused a peer's certificate: {reason}");
                Err(rustls::Error::InvalidCertificate(CertificateError::Other(
                    OtherError(Arc::new(Refusal(reason))),
                )))
            })
    }

    fn algorithms(&self) -> WebPkiSupportedAlgorithms {
        self.pins.provider.signature_verification_algorithms
    }

    fn reason_to_refuse(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Option<String> {
        let inputters = (self.expected.iter())
            .filter(|r| matches!(r, Role::Inputter(_)))
            .count();
        // An aggregation may have thousands of inputters: they are counted, not listed.
        let expected = (self.expected.iter())
            .filter(|r| !matches!(r, Role::Inputter(_)))
            .map(|r| r.to_string())
            .chain((inputters > 0).then(|| format!("one of {inputters} inputter(s)")))
            .collect::<Vec<_>>()
            .join(" or ");
        let Some(pin) = self.pins.pins.iter().find(|p| p.cert == *end_entity) else {
            return Some(format!(
                "expected {expected}, got a certificate pinned for no role \
                 (another CA's, or an unknown one)"
            ));
        };
        if !self.expected.contains(&pin.role) {
            return Some(format!(
                "expected {expected}, got the certificate of {}",
                pin.role
            ));
        }
        let anchors = pin.anchors.as_ref()?;
        let parsed = match rustls::server::ParsedCertificate::try_from(end_entity) {
            Ok(p) => p,
            Err(e) => return Some(format!("{}'s certificate does not parse: {e}", pin.role)),
        };
        rustls::client::verify_server_cert_signed_by_trust_anchor(
            &parsed,
            anchors,
            intermediates,
            now,
            self.pins.provider.signature_verification_algorithms.all,
        )
        .err()
        .map(|e| format!("{}'s certificate fails against its CA: {e}", pin.role))
    }
}

/// The handshake-signature checks, the same whichever side of the handshake verifies. Each
/// method defers to the `rustls::crypto` function of the same name.
macro_rules! handshake_signatures {
    () => {
        handshake_signatures!(@check verify_tls12_signature);
        handshake_signatures!(@check verify_tls13_signature);

        fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
            self.algorithms().supported_schemes()
        }
    };
    (@check $check:ident) => {
        fn $check(
            &self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            $check(message, cert, dss, &self.algorithms())
        }
    };
}

impl ServerCertVerifier for PinVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        self.check(end_entity, intermediates, now)
            .map(|()| ServerCertVerified::assertion())
    }

    handshake_signatures!();
}

impl ClientCertVerifier for PinVerifier {
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        self.check(end_entity, intermediates, now)
            .map(|()| ClientCertVerified::assertion())
    }

    handshake_signatures!();
}
