//! Node-to-node TLS (DESIGN §7: the internal API goes over TLS when the
//! server has TLS). Every call carries the cluster secret, so a node must
//! know it talks to a member before it sends one: the peer's certificate is
//! accepted if it is this node's own (one Secret mounted on every pod, self-
//! signed or not), or if it chains to a trusted certificate — those in
//! `server.tls.cert_file` and `cluster.tls_ca_file` — and names either the
//! peer's own address or a name this node's certificate carries (so a shared
//! certificate for the S3 endpoint keeps working across a rotation, when
//! old and new certificates meet during a rolling restart).

use crate::tls::{TlsFileError, read_certificates};
use bleepstore_config::TlsConfig;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::{VerifierBuilderError, WebPkiServerVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, RootCertStore, SignatureScheme};
use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;
use x509_cert::der::Decode;
use x509_cert::ext::pkix::SubjectAltName;
use x509_cert::ext::pkix::name::GeneralName;

#[derive(Debug, thiserror::Error)]
pub enum PeerTlsError {
    #[error("{0}")]
    File(#[from] TlsFileError),
    #[error("no usable trust anchor among the certificates: {0}")]
    Anchors(#[from] VerifierBuilderError),
    #[error("{0}")]
    Rustls(#[from] rustls::Error),
}

/// The client side of peer TLS: how this node verifies the nodes it calls.
pub fn client_config(
    server_tls: &TlsConfig,
    ca_file: Option<&Path>,
) -> Result<rustls::ClientConfig, PeerTlsError> {
    let provider = crate::tls::provider();
    let mut trusted = read_certificates("server.tls.cert_file", &server_tls.cert_file)?;
    // This node's own certificate: the first in its file (never empty).
    let own = trusted[0].clone();
    if let Some(path) = ca_file {
        trusted.extend(read_certificates("cluster.tls_ca_file", path)?);
    }
    let verifier = PeerVerifier::new(own, trusted, provider.clone())?;
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth())
}

/// A client configuration for a transport that never dials TLS.
pub fn plain_placeholder() -> Result<rustls::ClientConfig, PeerTlsError> {
    Ok(
        rustls::ClientConfig::builder_with_provider(crate::tls::provider())
            .with_safe_default_protocol_versions()?
            .with_root_certificates(RootCertStore::empty())
            .with_no_client_auth(),
    )
}

/// The names (DNS names without wildcards, IP addresses) a certificate is
/// issued for; none if it cannot be parsed.
fn certificate_names(certificate: &CertificateDer<'_>) -> Vec<ServerName<'static>> {
    let Ok(parsed) = x509_cert::Certificate::from_der(certificate.as_ref()) else {
        return Vec::new();
    };
    let Ok(Some((_, SubjectAltName(names)))) =
        parsed.tbs_certificate().get_extension::<SubjectAltName>()
    else {
        return Vec::new();
    };
    names
        .iter()
        .filter_map(|name| match name {
            GeneralName::DnsName(dns) if !dns.as_str().starts_with('*') => {
                ServerName::try_from(dns.as_str().to_string()).ok()
            }
            GeneralName::IpAddress(octets) => {
                let ip = match octets.as_bytes().len() {
                    4 => <[u8; 4]>::try_from(octets.as_bytes())
                        .ok()
                        .map(IpAddr::from),
                    16 => <[u8; 16]>::try_from(octets.as_bytes())
                        .ok()
                        .map(IpAddr::from),
                    _ => None,
                }?;
                Some(ServerName::IpAddress(ip.into()))
            }
            _ => None,
        })
        .collect()
}

#[derive(Debug)]
struct PeerVerifier {
    /// This node's own certificate (the first in its file).
    own: CertificateDer<'static>,
    /// The names this node's certificate carries.
    own_names: Vec<ServerName<'static>>,
    chains: Arc<WebPkiServerVerifier>,
    algorithms: WebPkiSupportedAlgorithms,
}

impl PeerVerifier {
    fn new(
        own: CertificateDer<'static>,
        trusted: Vec<CertificateDer<'static>>,
        provider: Arc<CryptoProvider>,
    ) -> Result<Self, PeerTlsError> {
        let mut roots = RootCertStore::empty();
        roots.add_parsable_certificates(trusted);
        let chains = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
            .build()?;
        Ok(PeerVerifier {
            own_names: certificate_names(&own),
            own,
            chains,
            algorithms: provider.signature_verification_algorithms,
        })
    }
}

impl ServerCertVerifier for PeerVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        // The handshake signature, checked separately, proves the peer holds
        // the key of the certificate it showed.
        if end_entity.as_ref() == self.own.as_ref() {
            return Ok(ServerCertVerified::assertion());
        }
        let mut refusal = None;
        for name in std::iter::once(server_name).chain(&self.own_names) {
            match self.chains.verify_server_cert(
                end_entity,
                intermediates,
                name,
                ocsp_response,
                now,
            ) {
                Ok(verified) => return Ok(verified),
                Err(e) => refusal = refusal.or(Some(e)),
            }
        }
        Err(refusal.unwrap_or(rustls::Error::InvalidCertificate(
            rustls::CertificateError::NotValidForName,
        )))
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustls::pki_types::pem::PemObject;

    /// Test certificates (`testdata/`): a CA, and certificates it issued for
    /// the S3 endpoint's name (two, as before and after a rotation), for one
    /// peer's address and for an unrelated name; two self-signed ones.
    fn certificate(name: &str) -> CertificateDer<'static> {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("src/cluster/testdata")
            .join(format!("{name}.pem"));
        CertificateDer::from_pem_file(&path).unwrap()
    }

    fn verifier(own: &str, ca: bool) -> PeerVerifier {
        let own = certificate(own);
        let mut trusted = vec![own.clone()];
        if ca {
            trusted.push(certificate("ca"));
        }
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        PeerVerifier::new(own, trusted, provider).unwrap()
    }

    fn accepts(verifier: &PeerVerifier, peer: &str, address: &str) -> bool {
        let name = ServerName::try_from(address.to_string()).unwrap();
        verifier
            .verify_server_cert(&certificate(peer), &[], &name, &[], UnixTime::now())
            .is_ok()
    }

    #[test]
    fn a_peer_showing_this_nodes_own_certificate_is_trusted() {
        let v = verifier("self-signed", false);
        assert!(accepts(&v, "self-signed", "127.0.0.1"));
        assert!(accepts(&v, "self-signed", "node-2.peers.test"));
    }

    #[test]
    fn another_self_signed_certificate_for_the_same_address_is_not() {
        let v = verifier("self-signed", false);
        assert!(!accepts(&v, "stranger", "127.0.0.1"));
    }

    #[test]
    fn a_rotated_endpoint_certificate_from_the_trusted_ca_is_trusted() {
        let v = verifier("endpoint-old", true);
        assert_eq!(v.own_names.len(), 2, "{:?}", v.own_names);
        assert!(accepts(&v, "endpoint-new", "node-2.peers.test"));
    }

    #[test]
    fn a_certificate_naming_the_peers_own_address_is_trusted() {
        let v = verifier("endpoint-old", true);
        assert!(accepts(&v, "node-1", "node-1.peers.test"));
        assert!(!accepts(&v, "node-1", "node-2.peers.test"));
    }

    #[test]
    fn a_certificate_from_the_ca_for_other_names_is_not() {
        let v = verifier("endpoint-old", true);
        assert!(!accepts(&v, "elsewhere", "node-1.peers.test"));
    }

    #[test]
    fn without_the_ca_only_this_nodes_own_chain_is_trusted() {
        let v = verifier("endpoint-old", false);
        assert!(!accepts(&v, "endpoint-new", "node-2.peers.test"));
    }
}
