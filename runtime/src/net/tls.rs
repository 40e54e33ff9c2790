//! Identities and TLS configuration for the parties: a private CA, one certificate per role
//! (its SAN names the role, `p0.ksnn`, `p1.ksnn`, `p2.ksnn`), mutual authentication on every
//! connection, and the role check on the peer's certificate.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, CertificateRevocationListDer, PrivateKeyDer, ServerName};
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, RootCertStore, ServerConfig};
use thiserror::Error;

use crate::role::Role;

/// A certificate or configuration problem, naming the file.
#[derive(Debug, Error)]
pub enum TlsError {
    /// A certificate, key, CA or CRL file could not be read or parsed.
    #[error("{path}: {reason}")]
    File {
        /// The offending file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// A problem not tied to one file: rustls refused the assembled configuration, a
    /// certificate could not be generated, or a client name is invalid.
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
    /// The role this party plays; [`Identity::load`] checks that the certificate names it
    /// ([`role_name`]), and peers check the same name on their side.
    pub role: Role,
    chain: Vec<CertificateDer<'static>>,
    key: Arc<PrivateKeyDer<'static>>,
    roots: Arc<RootCertStore>,
    /// Revocation lists peers' certificates are checked against.
    crls: Vec<CertificateRevocationListDer<'static>>,
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
            crls: Vec::new(),
        })
    }

    /// Also refuses peers whose certificates the revocation list at `path` (PEM, from
    /// `keygen --revoke`) names.
    pub fn with_crl(mut self, path: &Path) -> Result<Self, TlsError> {
        let crls: Vec<CertificateRevocationListDer<'static>> =
            CertificateRevocationListDer::pem_file_iter(path)
                .map_err(|e| file_err(path, format!("cannot read the revocation list: {e}")))?
                .collect::<Result<_, _>>()
                .map_err(|e| file_err(path, format!("bad PEM revocation list: {e}")))?;
        if crls.is_empty() {
            return Err(file_err(path, "no revocation list in the file"));
        }
        self.crls = crls;
        Ok(self)
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
                .with_crls(self.crls.clone())
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

/// How long certificates from [`generate`] are valid unless told otherwise.
pub const DEFAULT_DAYS: u32 = 365;

/// The DNS-name suffix that carries a client certificate's name (`alice.client.ksnn`).
const CLIENT_SUFFIX: &str = ".client.ksnn";

/// The name in a client certificate from [`issue_client`], if it has one.
pub fn client_name(certs: Option<&[CertificateDer<'_>]>) -> Option<String> {
    let leaf = webpki::EndEntityCert::try_from(certs?.first()?).ok()?;
    leaf.valid_dns_names()
        .find_map(|n| n.strip_suffix(CLIENT_SUFFIX).map(str::to_string))
}

/// Writes a fresh CA (`ca.pem`; its key `ca.key`) and a certificate and key per role
/// (`p0.pem`/`p0.key`, …) into `dir`, valid for [`DEFAULT_DAYS`].
pub fn generate(dir: &Path) -> Result<Vec<PathBuf>, TlsError> {
    generate_for(dir, DEFAULT_DAYS)
}

/// [`generate`] with a validity of `days`. Private keys are written readable by the owner only.
pub fn generate_for(dir: &Path, days: u32) -> Result<Vec<PathBuf>, TlsError> {
    std::fs::create_dir_all(dir).map_err(|e| file_err(dir, e))?;
    let existing = dir.join("ca.key");
    if existing.exists() {
        return Err(file_err(
            &existing,
            "a CA is already here; renew its certificates (--renew), add a client (--client), \
             or write a new CA into another directory",
        ));
    }
    let ca_key = rcgen::KeyPair::generate().map_err(gen_err)?;
    let ca_cert = ca_params()?.self_signed(&ca_key).map_err(gen_err)?;
    let mut written = vec![
        write_file(&dir.join("ca.pem"), &ca_cert.pem(), false)?,
        write_file(&dir.join("ca.key"), &ca_key.serialize_pem(), true)?,
    ];
    written.extend(issue_roles(dir, ca_key, days)?);
    Ok(written)
}

/// Re-issues the three role certificates (new keys, a new validity of `days`) with the CA in
/// `dir`, which stays the same, so peers need no new `ca.pem`.
pub fn renew(dir: &Path, days: u32) -> Result<Vec<PathBuf>, TlsError> {
    let ca_key = read_ca_key(dir)?;
    issue_roles(dir, ca_key, days)
}

/// Issues a certificate for one client (a P0 identity with its own name, shown in the
/// daemons' logs) with the CA in `dir`: `clients/NAME.pem` and `clients/NAME.key`.
pub fn issue_client(dir: &Path, name: &str, days: u32) -> Result<Vec<PathBuf>, TlsError> {
    let ok = !name.is_empty()
        && name.len() <= 63
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.starts_with('-')
        && !name.ends_with('-');
    if !ok {
        return Err(TlsError::Config(format!(
            "client name `{name}`: use 1 to 63 lowercase letters, digits and inner hyphens"
        )));
    }
    let ca_key = read_ca_key(dir)?;
    let issuer = rcgen::Issuer::new(ca_params()?, ca_key);
    let out = dir.join("clients");
    std::fs::create_dir_all(&out).map_err(|e| file_err(&out, e))?;
    let names = vec![
        role_name(Role::Client).to_string(),
        format!("{name}{CLIENT_SUFFIX}"),
    ];
    let (cert, key) = leaf(
        names,
        &format!("ksnn P0 {name}"),
        Role::Client,
        days,
        &issuer,
    )?;
    Ok(vec![
        write_file(&out.join(format!("{name}.pem")), &cert, false)?,
        write_file(&out.join(format!("{name}.key")), &key, true)?,
    ])
}

/// Revokes the client certificate `clients/NAME.pem` (or a role's, `p0`): adds its serial to
/// `revoked.list` and rewrites `crl.pem`, signed by the CA, valid for `days`. Daemons given
/// the list (`crl` in their configuration) refuse the certificate from their next start.
pub fn revoke(dir: &Path, name: &str, days: u32) -> Result<Vec<PathBuf>, TlsError> {
    let cert_path = if Role::ALL.iter().any(|r| role_file(*r) == name) {
        dir.join(format!("{name}.pem"))
    } else {
        dir.join("clients").join(format!("{name}.pem"))
    };
    let der = CertificateDer::from_pem_file(&cert_path)
        .map_err(|e| file_err(&cert_path, format!("cannot read the certificate: {e}")))?;
    let leaf = webpki::EndEntityCert::try_from(&der)
        .map_err(|e| file_err(&cert_path, format!("unreadable certificate: {e}")))?;
    let serial: String = leaf.serial().iter().map(|b| format!("{b:02x}")).collect();
    let list = dir.join("revoked.list");
    let mut entries = std::fs::read_to_string(&list).unwrap_or_default();
    if !entries
        .lines()
        .any(|l| l.split_whitespace().next() == Some(serial.as_str()))
    {
        entries.push_str(&format!("{serial} {name}\n"));
    }
    let revoked = entries
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .map(|hex| {
            let bytes: Option<Vec<u8>> = (0..hex.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok())
                .collect();
            let bytes = bytes.ok_or_else(|| file_err(&list, format!("bad serial `{hex}`")))?;
            Ok(rcgen::RevokedCertParams {
                serial_number: rcgen::SerialNumber::from_slice(&bytes),
                revocation_time: day(today() - 1),
                reason_code: Some(rcgen::RevocationReason::CessationOfOperation),
                invalidity_date: None,
            })
        })
        .collect::<Result<Vec<_>, TlsError>>()?;
    let issuer = rcgen::Issuer::new(ca_params()?, read_ca_key(dir)?);
    let crl = rcgen::CertificateRevocationListParams {
        this_update: day(today() - 1),
        next_update: day(today() + i64::from(days)),
        crl_number: rcgen::SerialNumber::from(today() as u64),
        issuing_distribution_point: None,
        revoked_certs: revoked,
        key_identifier_method: rcgen::KeyIdMethod::Sha256,
    }
    .signed_by(&issuer)
    .map_err(gen_err)?;
    let pem = crl.pem().map_err(gen_err)?;
    Ok(vec![
        write_file(&list, &entries, false)?,
        write_file(&dir.join("crl.pem"), &pem, false)?,
    ])
}

fn gen_err(e: rcgen::Error) -> TlsError {
    TlsError::Config(format!("certificate generation: {e}"))
}

/// The CA's parameters. Its name and constraints are fixed, so an issuer rebuilt from them
/// and `ca.key` signs certificates that chain to the `ca.pem` written first.
fn ca_params() -> Result<rcgen::CertificateParams, TlsError> {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyUsagePurpose};
    let mut p = CertificateParams::new(Vec::<String>::new()).map_err(gen_err)?;
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    p.distinguished_name
        .push(DnType::CommonName, "ksnn parties CA");
    // The CA outlives the certificates it signs, so renewing them needs no new ca.pem.
    set_validity(&mut p, 10 * 365);
    Ok(p)
}

fn read_ca_key(dir: &Path) -> Result<rcgen::KeyPair, TlsError> {
    let path = dir.join("ca.key");
    let pem = std::fs::read_to_string(&path)
        .map_err(|e| file_err(&path, format!("cannot read the CA key: {e}")))?;
    rcgen::KeyPair::from_pem(&pem).map_err(|e| file_err(&path, format!("not a key: {e}")))
}

fn issue_roles(dir: &Path, ca_key: rcgen::KeyPair, days: u32) -> Result<Vec<PathBuf>, TlsError> {
    let issuer = rcgen::Issuer::new(ca_params()?, ca_key);
    let mut written = Vec::new();
    for role in Role::ALL {
        let names = vec![role_name(role).to_string()];
        let (cert, key) = leaf(
            names,
            &format!("ksnn {}", role.short()),
            role,
            days,
            &issuer,
        )?;
        written.push(write_file(
            &dir.join(format!("{}.pem", role_file(role))),
            &cert,
            false,
        )?);
        written.push(write_file(
            &dir.join(format!("{}.key", role_file(role))),
            &key,
            true,
        )?);
    }
    Ok(written)
}

/// A certificate and key (PEM) for `role` with `names`, valid for `days`, with the extended
/// key usages the role needs: P0 only connects, P1 only accepts, P2 does both.
fn leaf(
    names: Vec<String>,
    common_name: &str,
    role: Role,
    days: u32,
    issuer: &rcgen::Issuer<'_, rcgen::KeyPair>,
) -> Result<(String, String), TlsError> {
    use rcgen::{CertificateParams, DnType, ExtendedKeyUsagePurpose as Eku, KeyPair};
    let key = KeyPair::generate().map_err(gen_err)?;
    let mut params = CertificateParams::new(names).map_err(gen_err)?;
    params
        .distinguished_name
        .push(DnType::CommonName, common_name);
    params.extended_key_usages = match role {
        Role::Client => vec![Eku::ClientAuth],
        Role::Server => vec![Eku::ServerAuth],
        Role::Helper => vec![Eku::ServerAuth, Eku::ClientAuth],
    };
    set_validity(&mut params, days);
    let cert = params.signed_by(&key, issuer).map_err(gen_err)?;
    Ok((cert.pem(), key.serialize_pem()))
}

/// Days since 1970-01-01.
fn today() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() / 86_400)
        .unwrap_or(0) as i64
}

/// Day `n` since 1970-01-01 as a certificate time.
fn day(n: i64) -> time::OffsetDateTime {
    let (y, m, d) = civil_from_days(n);
    rcgen::date_time_ymd(y, m, d)
}

/// Valid from yesterday (clock skew) to `days` from now.
fn set_validity(p: &mut rcgen::CertificateParams, days: u32) {
    p.not_before = day(today() - 1);
    p.not_after = day(today() + i64::from(days));
}

/// The calendar date of a day count since 1970-01-01 (Howard Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i32, u8, u8) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u8;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u8;
    let y = (yoe + era * 400 + i64::from(m <= 2)) as i32;
    (y, m, d)
}

/// Writes `text` to `path`; a private key readable and writable by its owner only.
fn write_file(path: &Path, text: &str, private: bool) -> Result<PathBuf, TlsError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let _ = std::fs::remove_file(path);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(if private { 0o600 } else { 0o644 })
        .open(path)
        .map_err(|e| file_err(path, e))?;
    f.write_all(text.as_bytes())
        .map_err(|e| file_err(path, e))?;
    Ok(path.to_path_buf())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    /// A full TLS 1.3 handshake between two identities, in memory.
    fn try_handshake(server: &Identity, client: &Identity) -> Result<(), rustls::Error> {
        let mut s = rustls::ServerConnection::new(server.server_config().unwrap()).unwrap();
        let name = ServerName::try_from(role_name(server.role)).unwrap();
        let mut c = rustls::ClientConnection::new(client.client_config().unwrap(), name).unwrap();
        for _ in 0..10 {
            let mut buf = Vec::new();
            c.write_tls(&mut buf).unwrap();
            s.read_tls(&mut &buf[..]).unwrap();
            s.process_new_packets()?;
            let mut buf = Vec::new();
            s.write_tls(&mut buf).unwrap();
            c.read_tls(&mut &buf[..]).unwrap();
            c.process_new_packets()?;
            if !s.is_handshaking() && !c.is_handshaking() {
                return Ok(());
            }
        }
        panic!("the handshake did not finish");
    }

    fn handshake(server: &Identity, client: &Identity) {
        try_handshake(server, client).expect("the handshake succeeds");
    }

    #[test]
    fn a_revoked_client_is_refused_and_the_others_are_not() {
        let dir = std::env::temp_dir().join(format!("ksnn-crl-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        generate_for(&dir, 30).unwrap();
        issue_client(&dir, "alice", 30).unwrap();
        issue_client(&dir, "bob", 30).unwrap();
        revoke(&dir, "alice", 30).unwrap();
        revoke(&dir, "alice", 30).unwrap(); // twice is once
        let client = |name: &str| {
            Identity::load(
                Role::Client,
                &dir.join(format!("clients/{name}.pem")),
                &dir.join(format!("clients/{name}.key")),
                &dir.join("ca.pem"),
            )
            .unwrap()
        };
        let server = Identity::from_dir(Role::Server, &dir)
            .unwrap()
            .with_crl(&dir.join("crl.pem"))
            .unwrap();
        let err = try_handshake(&server, &client("alice")).unwrap_err();
        assert!(err.to_string().contains("Revoked"), "{err}");
        handshake(&server, &client("bob"));
        let list = std::fs::read_to_string(dir.join("revoked.list")).unwrap();
        assert_eq!(list.lines().count(), 1, "{list}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn dates_from_day_counts() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
        assert_eq!(civil_from_days(20_787), (2026, 11, 30));
    }

    #[test]
    fn keys_are_private_and_renewal_and_clients_chain_to_the_same_ca() {
        let dir = std::env::temp_dir().join(format!("ksnn-tls-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        generate_for(&dir, 30).unwrap();
        for key in ["ca.key", "p0.key", "p1.key", "p2.key"] {
            let mode = std::fs::metadata(dir.join(key))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600, "{key}");
        }
        let before = std::fs::read(dir.join("p1.pem")).unwrap();
        renew(&dir, 30).unwrap();
        assert_ne!(before, std::fs::read(dir.join("p1.pem")).unwrap());
        issue_client(&dir, "alice", 30).unwrap();
        assert!(issue_client(&dir, "Bad Name", 30).is_err());
        // The renewed server and the named client still trust each other through ca.pem.
        let server = Identity::from_dir(Role::Server, &dir).unwrap();
        let alice = Identity::load(
            Role::Client,
            &dir.join("clients/alice.pem"),
            &dir.join("clients/alice.key"),
            &dir.join("ca.pem"),
        )
        .unwrap();
        handshake(&server, &alice);
        let chain: Vec<CertificateDer<'static>> =
            CertificateDer::pem_file_iter(dir.join("clients/alice.pem"))
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap();
        assert_eq!(client_name(Some(&chain)), Some("alice".to_string()));
        assert_eq!(peer_role(Some(&chain), &[Role::Client]), Some(Role::Client));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
