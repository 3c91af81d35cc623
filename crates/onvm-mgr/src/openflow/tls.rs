//! TLS for OpenFlow connections (`ssl:HOST:PORT` controllers, a `pssl:PORT[:IP]`
//! listener), authenticated both ways as Open vSwitch does it.
//!
//! The switch holds one private key, its certificate, and the certificate of the CA
//! that signs its peers (`--ssl-private-key`, `--ssl-certificate`, `--ssl-ca-cert`, the
//! three files of `ovs-vsctl set-ssl`). Every connection, either way, is mutual TLS:
//! the switch presents its certificate, and the peer must present one that chains to
//! that CA, or the handshake fails. As in Open vSwitch, the CA is the whole trust: the
//! controller's host name or address is not compared with its certificate (the
//! certificates that `ovs-pki` makes name no host), so the CA should sign OpenFlow
//! peers only.
//!
//! Everything is read and checked once, at start-up ([`TlsConfig::load`]): a missing
//! file, bad PEM or a key that does not fit its certificate is an error naming the
//! file. The handshakes themselves run non-blocking in [`super::conn`].

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::server::WebPkiClientVerifier;
use rustls::{CertificateError, ClientConfig, ClientConnection, DigitallySignedStruct, RootCertStore, ServerConfig};
use rustls::{ServerConnection, SignatureScheme};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use thiserror::Error;

/// Why the TLS settings were refused; each names the file at fault.
#[derive(Debug, Error)]
pub enum TlsError {
    #[error("{what} {}: {source}", path.display())]
    Read {
        what: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{what} {}: not a PEM {expected}: {why}", path.display())]
    Pem {
        what: &'static str,
        path: PathBuf,
        expected: &'static str,
        why: String,
    },
    #[error("{what} {}: {why}", path.display())]
    Refused {
        what: &'static str,
        path: PathBuf,
        why: String,
    },
}

/// The client and server sides of the switch's TLS, built once from the three files.
#[derive(Clone, Debug)]
pub struct TlsConfig {
    client: Arc<ClientConfig>,
    server: Arc<ServerConfig>,
}

const KEY: &str = "OpenFlow TLS private key";
const CERT: &str = "OpenFlow TLS certificate";
const CA: &str = "OpenFlow TLS CA certificate";

/// The file's bytes; an error names it.
fn read(what: &'static str, path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        what,
        path: path.into(),
        source,
    })
}

/// Every certificate in a PEM file (at least one).
fn certificates(what: &'static str, path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let pem_err = |why: String| TlsError::Pem {
        what,
        path: path.into(),
        expected: "certificate",
        why,
    };
    let certs = CertificateDer::pem_slice_iter(&read(what, path)?)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| pem_err(e.to_string()))?;
    if certs.is_empty() {
        return Err(pem_err("no CERTIFICATE section".into()));
    }
    Ok(certs)
}

/// The crypto every config here uses: aws-lc-rs (rustls's default), named rather than taken from the
/// process default, which another crate's choice could change.
fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

impl TlsConfig {
    /// Reads and checks the switch's private key, its certificate (chain) and the CA
    /// certificate(s) its peers must be signed by, all PEM.
    pub fn load(private_key: &Path, certificate: &Path, ca_cert: &Path) -> Result<TlsConfig, TlsError> {
        let key = PrivateKeyDer::from_pem_slice(&read(KEY, private_key)?).map_err(|e| TlsError::Pem {
            what: KEY,
            path: private_key.into(),
            expected: "private key",
            why: e.to_string(),
        })?;
        let chain = certificates(CERT, certificate)?;
        let mut roots = RootCertStore::empty();
        for c in certificates(CA, ca_cert)? {
            roots.add(c).map_err(|e| TlsError::Refused {
                what: CA,
                path: ca_cert.into(),
                why: e.to_string(),
            })?;
        }
        let roots = Arc::new(roots);
        let refused = |path: &Path, e: rustls::Error| TlsError::Refused {
            what: CERT,
            path: path.into(),
            why: format!("{e} (with private key {})", private_key.display()),
        };
        let ca_refused = |e: String| TlsError::Refused {
            what: CA,
            path: ca_cert.into(),
            why: e,
        };

        let by_ca = WebPkiServerVerifier::builder_with_provider(roots.clone(), provider())
            .build()
            .map_err(|e| ca_refused(e.to_string()))?;
        let client = ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| ca_refused(e.to_string()))?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(SignedByCa(by_ca)))
            .with_client_auth_cert(chain.clone(), key.clone_key())
            .map_err(|e| refused(certificate, e))?;

        let peers = WebPkiClientVerifier::builder_with_provider(roots, provider())
            .build()
            .map_err(|e| ca_refused(e.to_string()))?;
        let server = ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| ca_refused(e.to_string()))?
            .with_client_cert_verifier(peers)
            .with_single_cert(chain, key)
            .map_err(|e| refused(certificate, e))?;
        Ok(TlsConfig {
            client: Arc::new(client),
            server: Arc::new(server),
        })
    }

    /// The client side of a connection to the controller at `addr`.
    pub(crate) fn client(&self, addr: SocketAddr) -> Result<ClientConnection, rustls::Error> {
        ClientConnection::new(self.client.clone(), ServerName::IpAddress(addr.ip().into()))
    }

    /// The server side of a connection to the `pssl:` listener.
    pub(crate) fn server(&self) -> Result<ServerConnection, rustls::Error> {
        ServerConnection::new(self.server.clone())
    }
}

/// A controller's certificate is good when it chains to the CA (webpki's checks:
/// signatures, validity, key usage); its names are not compared with the address
/// dialled, as in Open vSwitch (see the module doc).
#[derive(Debug)]
struct SignedByCa(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for SignedByCa {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
        {
            // webpki compares the name last, once the chain to the CA is verified: this
            // error means everything else held.
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

#[cfg(test)]
pub(crate) mod testing {
    //! Throwaway PKIs for the tests.

    use std::path::Path;

    use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair, KeyUsagePurpose};

    /// A CA that signs leaf certificates.
    pub struct Ca {
        issuer: CertifiedIssuer<'static, KeyPair>,
        pub pem: String,
    }

    impl Ca {
        pub fn new(name: &str) -> Ca {
            let mut p = CertificateParams::new(Vec::new()).unwrap();
            p.distinguished_name.push(rcgen::DnType::CommonName, name);
            p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
            p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
            let issuer = CertifiedIssuer::self_signed(p, KeyPair::generate().unwrap()).unwrap();
            Ca {
                pem: issuer.pem(),
                issuer,
            }
        }

        /// (certificate PEM, private key PEM) of a leaf named `name`.
        pub fn leaf(&self, name: &str) -> (String, String) {
            let mut p = CertificateParams::new(vec![name.to_string()]).unwrap();
            p.distinguished_name.push(rcgen::DnType::CommonName, name);
            let key = KeyPair::generate().unwrap();
            let cert = p.signed_by(&key, &self.issuer).unwrap();
            (cert.pem(), key.serialize_pem())
        }

        /// Writes `name`'s key, certificate and this CA into `dir`: their paths.
        pub fn write(&self, dir: &Path, name: &str) -> [std::path::PathBuf; 3] {
            let (cert, key) = self.leaf(name);
            let paths = [
                dir.join(format!("{name}-privkey.pem")),
                dir.join(format!("{name}-cert.pem")),
                dir.join(format!("{name}-cacert.pem")),
            ];
            for (path, text) in paths.iter().zip([key, cert, self.pem.clone()]) {
                std::fs::write(path, text).unwrap();
            }
            paths
        }

        /// A [`super::TlsConfig`] for `name`.
        pub fn config(&self, dir: &Path, name: &str) -> super::TlsConfig {
            let [k, c, ca] = self.write(dir, name);
            super::TlsConfig::load(&k, &c, &ca).unwrap()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::testing::Ca;
    use super::*;

    #[test]
    fn bad_files_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let ca = Ca::new("test CA");
        let [k, c, cacert] = ca.write(dir.path(), "switch");
        assert!(TlsConfig::load(&k, &c, &cacert).is_ok());

        let missing = dir.path().join("missing.pem");
        let e = TlsConfig::load(&missing, &c, &cacert).unwrap_err().to_string();
        assert!(e.contains("private key") && e.contains("missing.pem"), "{e}");
        let e = TlsConfig::load(&k, &c, &missing).unwrap_err().to_string();
        assert!(e.contains("CA certificate") && e.contains("missing.pem"), "{e}");

        // A key where a certificate belongs, and the other way round.
        let e = TlsConfig::load(&k, &k, &cacert).unwrap_err().to_string();
        assert!(
            e.contains("certificate") && e.contains("switch-privkey.pem") && e.contains("not a PEM"),
            "{e}"
        );
        let e = TlsConfig::load(&c, &c, &cacert).unwrap_err().to_string();
        assert!(e.contains("private key") && e.contains("switch-cert.pem"), "{e}");
        let garbage = dir.path().join("garbage.pem");
        std::fs::write(
            &garbage,
            "-----BEGIN CERTIFICATE-----\n!!!\n-----END CERTIFICATE-----\n",
        )
        .unwrap();
        let e = TlsConfig::load(&k, &c, &garbage).unwrap_err().to_string();
        assert!(e.contains("garbage.pem") && e.contains("not a PEM certificate"), "{e}");

        // Another key than the certificate's.
        let [other_key, _, _] = ca.write(dir.path(), "other");
        let e = TlsConfig::load(&other_key, &c, &cacert).unwrap_err().to_string();
        assert!(e.contains("switch-cert.pem") && e.contains("other-privkey.pem"), "{e}");
    }
}
