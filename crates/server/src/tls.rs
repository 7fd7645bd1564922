//! The server's own certificate authority. Created on first use and kept in the server's
//! storage (so every server process on one database presents the same authority), it signs
//! a fresh leaf certificate at each start for the names stations reach the server by.
//! Provisioning files carry the authority's certificate, and stations trust it and nothing
//! else: the pin.

use std::net::IpAddr;
use std::sync::Arc;

use chrono::Datelike;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType,
};
use sha2::{Digest, Sha256};

use crate::db::{Backend, DbError, DbResult};

/// The authority's certificate and key, stored together (two PEM blocks) so that one write
/// decides which authority a server has.
const CA: &str = "tls.ca";
const KEY_BEGIN: &str = "-----BEGIN PRIVATE KEY-----";
const NAMES: &str = "tls.names";

/// The authority's certificate (PEM) and its SHA-256 fingerprint, as the provisioning file
/// carries them.
#[derive(Debug, Clone, PartialEq)]
pub struct CaInfo {
    pub cert_pem: String,
    pub fingerprint: String,
}

fn tls_err(e: impl std::fmt::Display) -> DbError {
    DbError::Other(format!("TLS: {e}"))
}

/// The fingerprint an installer can read out over the phone: SHA-256 of the DER, in hex.
pub fn fingerprint(cert_pem: &str) -> DbResult<String> {
    let der = pem_der(cert_pem)?;
    Ok(hex::encode(Sha256::digest(&der)))
}

pub(crate) fn pem_der(cert_pem: &str) -> DbResult<Vec<u8>> {
    use rustls::pki_types::pem::PemObject;
    rustls::pki_types::CertificateDer::from_pem_slice(cert_pem.as_bytes())
        .map(|der| der.to_vec())
        .map_err(tls_err)
}

/// A validity bound: today (UTC) moved by `offset`, at midnight.
macro_rules! at {
    ($offset:expr) => {{
        let d = (chrono::Utc::now() + $offset).date_naive();
        rcgen::date_time_ymd(d.year(), d.month() as u8, d.day() as u8)
    }};
}

/// The authority, created the first time it is asked for. Two processes racing here agree:
/// the storage keeps the first one written.
pub fn ensure_ca(db: &dyn Backend) -> DbResult<CaInfo> {
    authority(db).map(|(ca, _)| ca)
}

/// The authority's certificate, and its key (PEM).
pub(crate) fn authority(db: &dyn Backend) -> DbResult<(CaInfo, String)> {
    let stored = match db.meta_get(CA)? {
        Some(s) => s,
        None => {
            let stored = db.meta_init(CA, &new_authority()?)?;
            tracing::info!("the server's certificate authority is ready");
            stored
        }
    };
    let at = stored
        .find(KEY_BEGIN)
        .ok_or_else(|| tls_err("the stored authority has no key"))?;
    let (cert_pem, key_pem) = stored.split_at(at);
    Ok((
        CaInfo {
            fingerprint: fingerprint(cert_pem)?,
            cert_pem: cert_pem.to_string(),
        },
        key_pem.to_string(),
    ))
}

/// A new self-signed authority: certificate then key, as PEM.
fn new_authority() -> DbResult<String> {
    let key = KeyPair::generate().map_err(tls_err)?;
    let mut params = CertificateParams::new(Vec::<String>::new()).map_err(tls_err)?;
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, "Bình Yên: máy chủ Công an tỉnh (CA)");
    dn.push(DnType::OrganizationName, "Bình Yên");
    params.distinguished_name = dn;
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params.not_before = at!(chrono::Duration::days(-1));
    params.not_after = at!(chrono::Duration::days(365 * 25));
    let cert = params.self_signed(&key).map_err(tls_err)?;
    Ok(format!("{}{}", cert.pem(), key.serialize_pem()))
}

/// Remembers a name stations are told to reach the server by (from `station enroll --url`),
/// so the next certificate covers it.
pub fn remember_name(db: &dyn Backend, name: &str) -> DbResult<()> {
    let mut names = known_names(db)?;
    if !names.iter().any(|n| n == name) {
        names.push(name.to_string());
        db.meta_set(NAMES, &names.join("\n"))?;
    }
    Ok(())
}

pub(crate) fn known_names(db: &dyn Backend) -> DbResult<Vec<String>> {
    Ok(db
        .meta_get(NAMES)?
        .map(|s| s.lines().map(str::to_string).collect())
        .unwrap_or_default())
}

/// The host part of a server address (`https://HOST:PORT/…`).
pub fn url_host(url: &str) -> Option<String> {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let authority = rest.split('/').next()?;
    let host = if let Some(v6) = authority.strip_prefix('[') {
        v6.split(']').next()?
    } else {
        authority.rsplit_once(':').map_or(authority, |(h, _)| h)
    };
    (!host.is_empty()).then(|| host.to_string())
}

/// How long a leaf certificate is valid, and how long before its end a new one is issued.
const LEAF_DAYS: i64 = 397;
const RENEW_BEFORE_DAYS: i64 = 30;

/// A leaf for `names`, signed by the authority: the chain and key rustls serves, and the
/// end of its validity.
fn issue(
    ca: &CaInfo,
    ca_key_pem: &str,
    names: &[String],
) -> DbResult<(
    Arc<rustls::sign::CertifiedKey>,
    chrono::DateTime<chrono::Utc>,
)> {
    let ca_key = KeyPair::from_pem(ca_key_pem).map_err(tls_err)?;
    let issuer = Issuer::from_ca_cert_pem(&ca.cert_pem, ca_key).map_err(tls_err)?;
    let mut params = CertificateParams::new(Vec::<String>::new()).map_err(tls_err)?;
    for n in names {
        params.subject_alt_names.push(match n.parse::<IpAddr>() {
            Ok(ip) => SanType::IpAddress(ip),
            Err(_) => SanType::DnsName(n.clone().try_into().map_err(tls_err)?),
        });
    }
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, names[0].clone());
    params.distinguished_name = dn;
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.not_before = at!(chrono::Duration::days(-1));
    params.not_after = at!(chrono::Duration::days(LEAF_DAYS));
    let ends = (chrono::Utc::now() + chrono::Duration::days(LEAF_DAYS))
        .date_naive()
        .and_hms_opt(0, 0, 0)
        .unwrap_or_default()
        .and_utc();
    let leaf_key = KeyPair::generate().map_err(tls_err)?;
    let leaf = params.signed_by(&leaf_key, &issuer).map_err(tls_err)?;
    let chain = vec![
        leaf.der().clone(),
        rustls::pki_types::CertificateDer::from(pem_der(&ca.cert_pem)?),
    ];
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(leaf_key.serialize_der().into());
    let signing = rustls::crypto::ring::sign::any_supported_type(&key).map_err(tls_err)?;
    tracing::info!(names = ?names, until = %ends.date_naive(), "certificate issued");
    Ok((
        Arc::new(rustls::sign::CertifiedKey::new(chain, signing)),
        ends,
    ))
}

/// The leaf the server presents, issued anew a month before it ends: a server that runs for
/// years without a restart never serves an expired certificate.
#[derive(Debug)]
struct Renewing {
    ca: CaInfo,
    ca_key_pem: String,
    names: Vec<String>,
    current: std::sync::Mutex<(
        Arc<rustls::sign::CertifiedKey>,
        chrono::DateTime<chrono::Utc>,
    )>,
    /// The last failed attempt to renew: tried again an hour later, not at every handshake.
    failed_at: std::sync::Mutex<Option<chrono::DateTime<chrono::Utc>>>,
}

impl Renewing {
    /// The leaf to serve at `now`: the current one, or a new one once it is within a month
    /// of its end (the current one is kept if issuing fails, and the failure logged).
    fn at(&self, now: chrono::DateTime<chrono::Utc>) -> Arc<rustls::sign::CertifiedKey> {
        let mut current = self.current.lock().unwrap_or_else(|e| e.into_inner());
        let mut failed_at = self.failed_at.lock().unwrap_or_else(|e| e.into_inner());
        let waited = failed_at.is_none_or(|t| now - t >= chrono::Duration::hours(1));
        if now + chrono::Duration::days(RENEW_BEFORE_DAYS) >= current.1 && waited {
            match issue(&self.ca, &self.ca_key_pem, &self.names) {
                Ok(fresh) => {
                    *current = fresh;
                    *failed_at = None;
                }
                Err(e) => {
                    *failed_at = Some(now);
                    tracing::error!(error = %e, "the certificate could not be renewed; trying again in an hour");
                }
            }
        }
        current.0.clone()
    }
}

impl rustls::server::ResolvesServerCert for Renewing {
    fn resolve(
        &self,
        _hello: rustls::server::ClientHello<'_>,
    ) -> Option<Arc<rustls::sign::CertifiedKey>> {
        Some(self.at(chrono::Utc::now()))
    }
}

/// A rustls configuration: a leaf for `extra` names, those remembered from enrolments, and
/// the loopback names, signed by the authority, renewed while the server runs; or, given
/// `province` (certificate and key files from the province's PKI), that certificate with
/// the hand-over that lets the stations trust it ([`crate::pki`]).
pub fn server_config(
    db: &Arc<dyn Backend>,
    extra: &[String],
    province: Option<(&std::path::Path, &std::path::Path)>,
) -> DbResult<Arc<rustls::ServerConfig>> {
    if let Some((cert, key)) = province {
        let served = Arc::new(crate::pki::Served::new(db.clone(), cert, key, extra)?);
        crate::pki::Served::watch(&served);
        return with_resolver(served);
    }
    let db = &**db;
    let (ca, ca_key_pem) = authority(db)?;
    let mut names: Vec<String> = vec!["localhost".into(), "127.0.0.1".into(), "::1".into()];
    for n in extra.iter().cloned().chain(known_names(db)?) {
        if !names.contains(&n) {
            names.push(n);
        }
    }
    let first = issue(&ca, &ca_key_pem, &names)?;
    let resolver = Renewing {
        ca,
        ca_key_pem,
        names,
        current: std::sync::Mutex::new(first),
        failed_at: std::sync::Mutex::new(None),
    };
    with_resolver(Arc::new(resolver))
}

fn with_resolver(
    resolver: Arc<dyn rustls::server::ResolvesServerCert>,
) -> DbResult<Arc<rustls::ServerConfig>> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(tls_err)?
        .with_no_client_auth()
        .with_cert_resolver(resolver);
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// When the authority's certificate ends, read from the certificate itself.
pub fn authority_ends(ca: &CaInfo) -> DbResult<chrono::DateTime<chrono::Utc>> {
    use x509_parser::prelude::FromDer;
    let der = pem_der(&ca.cert_pem)?;
    let (_, cert) = x509_parser::certificate::X509Certificate::from_der(&der).map_err(tls_err)?;
    chrono::DateTime::from_timestamp(cert.validity().not_after.timestamp(), 0)
        .ok_or_else(|| tls_err("the authority's end of validity is not a date"))
}

/// What `binhyen-server ca` says of the validity: the authority's end, the leaves' policy,
/// and a warning within a month of the authority's end.
pub fn validity_report(ca: &CaInfo, now: chrono::DateTime<chrono::Utc>) -> DbResult<String> {
    let ends = authority_ends(ca)?;
    let days = (ends - now).num_days();
    let mut out = format!(
        "authority valid until {} ({days} days); each start issues a certificate for {LEAF_DAYS} days, renewed {RENEW_BEFORE_DAYS} days before its end while the server runs",
        ends.date_naive()
    );
    if days <= RENEW_BEFORE_DAYS {
        out.push_str("\nWARNING: the authority ends within a month: the stations must be given a new one before then (a provisioning file each)");
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ca() -> (CaInfo, String) {
        let stored = new_authority().unwrap();
        let at = stored.find(KEY_BEGIN).unwrap();
        let (cert, key) = stored.split_at(at);
        (
            CaInfo {
                fingerprint: fingerprint(cert).unwrap(),
                cert_pem: cert.to_string(),
            },
            key.to_string(),
        )
    }

    #[test]
    fn the_leaf_is_renewed_a_month_before_it_ends_and_the_authority_says_when_it_ends() {
        let (ca, key) = ca();
        let names = vec!["localhost".to_string()];
        let first = issue(&ca, &key, &names).unwrap();
        let ends = first.1;
        let renewing = Renewing {
            ca: ca.clone(),
            ca_key_pem: key,
            names,
            current: std::sync::Mutex::new(first),
            failed_at: std::sync::Mutex::new(None),
        };
        let now = chrono::Utc::now();
        let a = renewing.at(now);
        assert!(Arc::ptr_eq(
            &a,
            &renewing.at(now + chrono::Duration::days(300))
        ));
        // Within a month of its end: a new one, valid another 397 days.
        let later = ends - chrono::Duration::days(10);
        let b = renewing.at(later);
        assert!(!Arc::ptr_eq(&a, &b));
        assert!(renewing.current.lock().unwrap().1 > ends - chrono::Duration::days(1));
        let report = validity_report(&ca, now).unwrap();
        assert!(report.starts_with("authority valid until"), "{report}");
        assert!(!report.contains("WARNING"));
        let near_end = authority_ends(&ca).unwrap() - chrono::Duration::days(20);
        assert!(validity_report(&ca, near_end).unwrap().contains("WARNING"));
    }

    #[test]
    fn hosts_are_read_from_addresses() {
        assert_eq!(
            url_host("https://tinh.example.vn:8443").as_deref(),
            Some("tinh.example.vn")
        );
        assert_eq!(
            url_host("https://10.0.0.5:8443/api").as_deref(),
            Some("10.0.0.5")
        );
        assert_eq!(url_host("https://[::1]:8443").as_deref(), Some("::1"));
        assert_eq!(url_host("https://may-chu").as_deref(), Some("may-chu"));
    }
}
