//! Identities and TLS configuration for the parties: a private CA, one certificate per role
//! (its SAN names the role, `p0.ksnn`, `p1.ksnn`, `p2.ksnn`), mutual authentication on every
//! connection, and the role check on the peer's certificate.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, RootCertStore, ServerConfig};
use thiserror::Error;

use crate::role::Role;

/// A certificate or configuration problem, naming the file.
#[derive(Debug, Error)]
pub enum TlsError {
    #[error("{path}: {reason}")]
    File { path: PathBuf, reason: String },
    #[error("TLS configuration: {0}")]
    Config(String),
}

/// The DNS name a role's certificate carries.
pub fn role_name(role: Role) -> &'static str {
    match role {
        Role::Client => "p0.ksnn",
        Role::Server => "p1.ksnn",
        Role::Helper => "p2.ksnn",
    }
}

/// The file stem of a role's certificate and key in a keygen directory.
pub fn role_file(role: Role) -> &'static str {
    match role {
        Role::Client => "p0",
        Role::Server => "p1",
        Role::Helper => "p2",
    }
}

/// One party's TLS identity: its role, certificate chain, key, and the CA it trusts.
#[derive(Clone)]
pub struct Identity {
    pub role: Role,
    chain: Vec<CertificateDer<'static>>,
    key: Arc<PrivateKeyDer<'static>>,
    roots: Arc<RootCertStore>,
}

fn file_err(path: &Path, reason: impl ToString) -> TlsError {
    TlsError::File {
        path: path.to_path_buf(),
        reason: reason.to_string(),
    }
}

impl Identity {
    /// Loads PEM files: the party's certificate, its private key and the CA certificate.
    pub fn load(role: Role, cert: &Path, key: &Path, ca: &Path) -> Result<Self, TlsError> {
        let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
            .map_err(|e| file_err(cert, format!("cannot read certificate: {e}")))?
            .collect::<Result<_, _>>()
            .map_err(|e| file_err(cert, format!("bad PEM certificate: {e}")))?;
        if chain.is_empty() {
            return Err(file_err(cert, "no certificate in the file"));
        }
        let leaf = webpki::EndEntityCert::try_from(&chain[0])
            .map_err(|e| file_err(cert, format!("unreadable certificate: {e}")))?;
        let name = ServerName::try_from(role_name(role)).expect("static name");
        leaf.verify_is_valid_for_subject_name(&name).map_err(|_| {
            file_err(
                cert,
                format!(
                    "this certificate is not for {role} (it does not name {})",
                    role_name(role)
                ),
            )
        })?;
        let key = PrivateKeyDer::from_pem_file(key)
            .map_err(|e| file_err(key, format!("cannot read private key: {e}")))?;
        let mut roots = RootCertStore::empty();
        for c in CertificateDer::pem_file_iter(ca)
            .map_err(|e| file_err(ca, format!("cannot read CA certificate: {e}")))?
        {
            let c = c.map_err(|e| file_err(ca, format!("bad PEM certificate: {e}")))?;
            roots
                .add(c)
                .map_err(|e| file_err(ca, format!("not a usable CA certificate: {e}")))?;
        }
        if roots.is_empty() {
            return Err(file_err(ca, "no CA certificate in the file"));
        }
        Ok(Self {
            role,
            chain,
            key: Arc::new(key),
            roots: Arc::new(roots),
        })
    }

    /// Loads `role`'s files from a directory written by [`generate`].
    pub fn from_dir(role: Role, dir: &Path) -> Result<Self, TlsError> {
        let stem = role_file(role);
        Self::load(
            role,
            &dir.join(format!("{stem}.pem")),
            &dir.join(format!("{stem}.key")),
            &dir.join("ca.pem"),
        )
    }

    fn provider() -> Arc<rustls::crypto::CryptoProvider> {
        Arc::new(rustls::crypto::ring::default_provider())
    }

    /// Accepting side: demands a client certificate from the same CA.
    pub fn server_config(&self) -> Result<Arc<ServerConfig>, TlsError> {
        let verifier =
            WebPkiClientVerifier::builder_with_provider(self.roots.clone(), Self::provider())
                .build()
                .map_err(|e| TlsError::Config(e.to_string()))?;
        let cfg = ServerConfig::builder_with_provider(Self::provider())
            .with_protocol_versions(&[&rustls::version::TLS13])
            .map_err(|e| TlsError::Config(e.to_string()))?
            .with_client_cert_verifier(verifier)
            .with_single_cert(self.chain.clone(), self.key.clone_key())
            .map_err(|e| TlsError::Config(e.to_string()))?;
        Ok(Arc::new(cfg))
    }

    /// Connecting side: presents our certificate and trusts only the CA.
    pub fn client_config(&self) -> Result<Arc<ClientConfig>, TlsError> {
        let cfg = ClientConfig::builder_with_provider(Self::provider())
            .with_protocol_versions(&[&rustls::version::TLS13])
            .map_err(|e| TlsError::Config(e.to_string()))?
            .with_root_certificates(self.roots.clone())
            .with_client_auth_cert(self.chain.clone(), self.key.clone_key())
            .map_err(|e| TlsError::Config(e.to_string()))?;
        Ok(Arc::new(cfg))
    }
}

/// Which of `allowed` the peer's (already CA-verified) certificate names, if any.
pub fn peer_role(certs: Option<&[CertificateDer<'_>]>, allowed: &[Role]) -> Option<Role> {
    let leaf = webpki::EndEntityCert::try_from(certs?.first()?).ok()?;
    allowed.iter().copied().find(|&r| {
        let name = ServerName::try_from(role_name(r)).expect("static name");
        leaf.verify_is_valid_for_subject_name(&name).is_ok()
    })
}

/// Writes a fresh CA (`ca.pem`; its key `ca.key`) and a certificate and key per role
/// (`p0.pem`/`p0.key`, …) into `dir`.
pub fn generate(dir: &Path) -> Result<Vec<PathBuf>, TlsError> {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
    let err = |e: rcgen::Error| TlsError::Config(format!("certificate generation: {e}"));
    std::fs::create_dir_all(dir).map_err(|e| file_err(dir, e))?;
    let ca_key = KeyPair::generate().map_err(err)?;
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).map_err(err)?;
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "ksnn parties CA");
    let ca_cert = ca_params.self_signed(&ca_key).map_err(err)?;
    let mut written = Vec::new();
    let mut write = |name: &str, text: String| -> Result<(), TlsError> {
        let path = dir.join(name);
        std::fs::write(&path, text).map_err(|e| file_err(&path, e))?;
        written.push(path);
        Ok(())
    };
    write("ca.pem", ca_cert.pem())?;
    write("ca.key", ca_key.serialize_pem())?;
    let issuer = Issuer::new(ca_params, ca_key);
    for role in Role::ALL {
        let key = KeyPair::generate().map_err(err)?;
        let mut params = CertificateParams::new(vec![role_name(role).to_string()]).map_err(err)?;
        params
            .distinguished_name
            .push(DnType::CommonName, format!("ksnn {}", role.short()));
        let cert = params.signed_by(&key, &issuer).map_err(err)?;
        write(&format!("{}.pem", role_file(role)), cert.pem())?;
        write(&format!("{}.key", role_file(role)), key.serialize_pem())?;
    }
    Ok(written)
}
