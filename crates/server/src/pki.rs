//! A certificate the province's own PKI issued, served in place of the authority's leaf
//! (`serve --tls-cert --tls-key`), and the hand-over that keeps the stations trusting it.
//!
//! Stations trust the authority pinned in their provisioning file and nothing else. The
//! hand-over (`ca --hand-over-to CA.pem --fingerprint HEX`) is the decision, kept in the
//! server's storage, that the province's authority (the one that issues the server's
//! certificate) may speak for this server. While it stands, the server's authority signs a
//! short-lived certificate for the province's authority (same name, same public key; it may
//! issue server certificates only, no further authority, and only for the names stations
//! reach this server by) and the server serves the province's chain followed by it: a
//! station finds its way from the province's leaf to the pinned authority; browsers and
//! monitoring find the province's own root. Nothing changes on the stations, and no other
//! certificate of the province's PKI (another host's, or one from another of its
//! authorities) is trusted by them. Withdrawn (`ca --withdraw-hand-over`), it lapses within
//! [`CROSS_DAYS`].

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};

use chrono::{DateTime, Utc};
use rcgen::{
    BasicConstraints, CertificateParams, CidrSubnet, DistinguishedName, DnType, DnValue,
    GeneralSubtree, IsCa, Issuer, KeyIdMethod, KeyPair, KeyUsagePurpose, NameConstraints,
    SubjectPublicKeyInfo,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use serde::{Deserialize, Serialize};
use x509_parser::prelude::{FromDer, ParsedExtension, X509Certificate};

use crate::db::{Backend, DbError, DbResult};
use crate::tls::{authority, known_names, CaInfo};

/// The hand-over, as kept (JSON of [`Record`]; empty once withdrawn).
const HANDOVER: &str = "tls.handover";

/// A month: how far ahead the end of a certificate the server cannot renew itself is warned.
pub const WARN_DAYS: i64 = 30;
/// How long each certificate the authority signs for the province's is valid: re-signed by
/// the running server a month before its end, so that a withdrawn hand-over lapses soon.
pub const CROSS_DAYS: i64 = 90;

fn pki_err(e: impl std::fmt::Display) -> DbError {
    DbError::Other(format!("TLS: {e}"))
}

fn parse(der: &[u8]) -> DbResult<X509Certificate<'_>> {
    X509Certificate::from_der(der)
        .map(|(_, c)| c)
        .map_err(|e| pki_err(format!("not a certificate: {e}")))
}

fn ends_of(cert: &X509Certificate<'_>) -> DateTime<Utc> {
    DateTime::from_timestamp(cert.validity().not_after.timestamp(), 0).unwrap_or_default()
}

/// The hand-over as kept: the province's authority and the names it may speak for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Record {
    ca_pem: String,
    names: Vec<String>,
    at: DateTime<Utc>,
}

fn record(db: &dyn Backend) -> DbResult<Option<Record>> {
    match db.meta_get(HANDOVER)? {
        Some(text) if !text.trim().is_empty() => serde_json::from_str(&text)
            .map(Some)
            .map_err(|e| pki_err(format!("the hand-over kept is unreadable: {e}"))),
        _ => Ok(None),
    }
}

/// What a hand-over says: to whom, until when, for which names.
#[derive(Debug, Clone)]
pub struct HandOver {
    /// The province authority's name, as its certificate gives it.
    pub subject: String,
    /// SHA-256 of the province authority's certificate (DER), as its PKI publishes it.
    pub fingerprint: String,
    /// When the province's authority ends (the hand-over with it).
    pub ends: DateTime<Utc>,
    /// The names it may speak for.
    pub names: Vec<String>,
    pub at: DateTime<Utc>,
}

fn describe(r: &Record) -> DbResult<HandOver> {
    let der = crate::tls::pem_der(&r.ca_pem)?;
    let cert = parse(&der)?;
    Ok(HandOver {
        subject: cert.subject().to_string(),
        fingerprint: crate::tls::fingerprint(&r.ca_pem)?,
        ends: ends_of(&cert),
        names: r.names.clone(),
        at: r.at,
    })
}

/// The subject of `cert` as rcgen writes it, attribute by attribute with its string type,
/// so that the cross-certificate's name is byte for byte the one the province's
/// certificates name as their issuer. (A name repeating an attribute, such as several DC
/// parts, cannot be carried over by rcgen and is refused.)
fn same_name(cert: &X509Certificate<'_>) -> DbResult<DistinguishedName> {
    use x509_parser::der_parser::asn1_rs::Tag;
    let mut dn = DistinguishedName::new();
    for rdn in cert.subject().iter() {
        let mut attrs = rdn.iter();
        let (Some(attr), None) = (attrs.next(), attrs.next()) else {
            return Err(pki_err(
                "the authority's name has a part of several attributes, which cannot be carried over",
            ));
        };
        let oid: Vec<u64> = attr
            .attr_type()
            .iter()
            .ok_or_else(|| pki_err("the authority's name has an attribute not understood"))?
            .collect();
        let ty = DnType::from_oid(&oid);
        if dn.get(&ty).is_some() {
            return Err(pki_err(
                "the authority's name repeats an attribute (such as several DC parts), which cannot be carried over: hand over to an authority whose name does not",
            ));
        }
        let value = attr.attr_value();
        let data = value.data.to_vec();
        let text = || String::from_utf8(data.clone()).map_err(pki_err);
        let v = match value.header.tag() {
            Tag::Utf8String => DnValue::Utf8String(text()?),
            Tag::PrintableString => DnValue::PrintableString(text()?.try_into().map_err(pki_err)?),
            Tag::Ia5String => DnValue::Ia5String(text()?.try_into().map_err(pki_err)?),
            Tag::T61String => DnValue::TeletexString(text()?.try_into().map_err(pki_err)?),
            Tag::BmpString => DnValue::BmpString(
                rcgen::string::BmpString::from_utf16be(data.clone()).map_err(pki_err)?,
            ),
            Tag::UniversalString => DnValue::UniversalString(
                rcgen::string::UniversalString::from_utf32be(data.clone()).map_err(pki_err)?,
            ),
            other => return Err(pki_err(format!("the authority's name uses {other:?}"))),
        };
        dn.push(ty, v);
    }
    Ok(dn)
}

/// A name a hand-over may be constrained to: an address, or a host name of at least two
/// labels (or `localhost`), in ASCII, with no wildcard. An empty or one-label name would
/// open the constraint to every host, or to a whole domain.
fn check_name(n: &str) -> DbResult<()> {
    if n.parse::<IpAddr>().is_ok() {
        return Ok(());
    }
    let fine = n == "localhost"
        || (n.is_ascii()
            && !n.starts_with('.')
            && !n.ends_with('.')
            && !n.contains('*')
            && n.split('.').count() >= 2
            && n.split('.').all(|l| !l.is_empty())
            && ServerName::try_from(n.to_string()).is_ok());
    if fine {
        Ok(())
    } else {
        Err(pki_err(format!(
            "{n:?} is not a host name stations can reach this server by (a full name such as tinh.example.vn, or an address; no wildcard, no bare domain)"
        )))
    }
}

/// The names a hand-over is constrained to and a served certificate is checked against:
/// those stations were told (from enrolments) and the `--name`s given.
fn station_names(db: &dyn Backend, extra: &[String]) -> DbResult<Vec<String>> {
    let mut names = known_names(db)?;
    for n in extra {
        if !names.contains(n) {
            names.push(n.clone());
        }
    }
    Ok(names)
}

/// Hands the stations' trust over to the province's authority `province_ca_pem`, which
/// must be the one that issues the server's certificate (it is given no authority to
/// delegate), once `fingerprint` (read from the province's PKI, not from the file) matches
/// it: kept in the server's storage (and so in its backups), replacing any earlier one, for
/// the names the stations reach this server by (and loopback).
pub fn hand_over(
    db: &dyn Backend,
    province_ca_pem: &str,
    fingerprint: Option<&str>,
    extra: &[String],
) -> DbResult<HandOver> {
    let actual = crate::tls::fingerprint(province_ca_pem)?;
    match fingerprint.map(|f| f.trim().replace(':', "").to_ascii_lowercase()) {
        None => {
            return Err(pki_err(format!(
                "nothing handed over: the province authority's certificate has SHA-256 {actual}; compare it with the one the province's PKI publishes, then run again with --fingerprint {actual}"
            )))
        }
        Some(f) if f != actual => {
            return Err(pki_err(format!(
                "nothing handed over: the file's certificate has SHA-256 {actual}, not the {f} given: it is not the province's authority"
            )))
        }
        Some(_) => {}
    }
    let der = crate::tls::pem_der(province_ca_pem)?;
    let province = parse(&der)?;
    let is_ca = province
        .basic_constraints()
        .map_err(pki_err)?
        .is_some_and(|b| b.value.ca);
    if !is_ca {
        return Err(pki_err(
            "this certificate is not a certificate authority (no CA:TRUE): hand over to the authority that issues the server's certificate, not to the certificate itself",
        ));
    }
    let now = Utc::now();
    if ends_of(&province) <= now {
        return Err(pki_err(format!(
            "the province's authority ended on {}",
            ends_of(&province).date_naive()
        )));
    }
    let mut names = vec!["localhost".to_string(), "127.0.0.1".into(), "::1".into()];
    for n in station_names(db, extra)? {
        check_name(&n)?;
        if !names.contains(&n) {
            names.push(n);
        }
    }
    let record = Record {
        ca_pem: province_ca_pem.trim().to_string() + "\n",
        names,
        at: now,
    };
    // Signed once here, so that what cannot be signed is said now, not at the server's start.
    let (ca, ca_key_pem) = authority(db)?;
    cross_sign(&ca, &ca_key_pem, &record, now)?;
    db.meta_set(HANDOVER, &serde_json::to_string(&record).map_err(pki_err)?)?;
    let handover = describe(&record)?;
    tracing::info!(subject = %handover.subject, sha256 = %handover.fingerprint,
        names = ?handover.names, "the stations' trust is handed over to the province's authority");
    Ok(handover)
}

/// Withdraws the hand-over: a server serving the province's certificate refuses to start
/// again, and what it signed lapses within [`CROSS_DAYS`]. Says whether there was one.
pub fn withdraw(db: &dyn Backend) -> DbResult<bool> {
    let had = record(db)?.is_some();
    if had {
        db.meta_set(HANDOVER, "")?;
        tracing::warn!("the hand-over to the province's authority is withdrawn");
    }
    Ok(had)
}

/// The hand-over in force, if any.
pub fn handover(db: &dyn Backend) -> DbResult<Option<HandOver>> {
    record(db)?.as_ref().map(describe).transpose()
}

/// The certificate the authority signs for the province's, valid [`CROSS_DAYS`] at most
/// (no longer than either authority): same name and key, no authority to delegate
/// (path length 0), server certificates only, constrained to the hand-over's names.
fn cross_sign(
    ca: &CaInfo,
    ca_key_pem: &str,
    record: &Record,
    now: DateTime<Utc>,
) -> DbResult<(CertificateDer<'static>, DateTime<Utc>)> {
    let der = crate::tls::pem_der(&record.ca_pem)?;
    let province = parse(&der)?;
    let permitted = record
        .names
        .iter()
        .map(|n| match n.parse::<IpAddr>() {
            Ok(ip) => GeneralSubtree::IpAddress(CidrSubnet::from_addr_prefix(
                ip,
                if ip.is_ipv4() { 32 } else { 128 },
            )),
            Err(_) => GeneralSubtree::DnsName(n.clone()),
        })
        .collect();
    let mut params = CertificateParams::default();
    params.distinguished_name = same_name(&province)?;
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
    params.name_constraints = Some(NameConstraints {
        permitted_subtrees: permitted,
        excluded_subtrees: Vec::new(),
    });
    // The province's own key identifier, so that verifiers matching identifiers find it.
    for ext in province.extensions() {
        if let ParsedExtension::SubjectKeyIdentifier(id) = ext.parsed_extension() {
            params.key_identifier_method = KeyIdMethod::PreSpecified(id.0.to_vec());
        }
    }
    let starts = (now - chrono::Duration::days(1)).max(
        DateTime::from_timestamp(province.validity().not_before.timestamp(), 0).unwrap_or(now),
    );
    let ends = (now + chrono::Duration::days(CROSS_DAYS))
        .min(ends_of(&province))
        .min(crate::tls::authority_ends(ca)?);
    params.not_before = unix(starts.timestamp())?;
    params.not_after = unix(ends.timestamp())?;
    let spki = SubjectPublicKeyInfo::from_der(province.public_key().raw).map_err(|e| {
        pki_err(format!(
            "the province authority's key is of a kind that cannot be signed for ({e})"
        ))
    })?;
    let issuer = Issuer::from_ca_cert_pem(
        &ca.cert_pem,
        KeyPair::from_pem(ca_key_pem).map_err(pki_err)?,
    )
    .map_err(pki_err)?;
    let cross = params.signed_by(&spki, &issuer).map_err(pki_err)?;
    Ok((cross.der().clone(), ends))
}

/// A Unix time as the date rcgen takes.
fn unix(t: i64) -> DbResult<time::OffsetDateTime> {
    time::OffsetDateTime::from_unix_timestamp(t).map_err(pki_err)
}

/// A certificate and key from the province's PKI, with the certificate signed for the
/// province's authority, checked as a station would check them.
#[derive(Debug)]
pub struct Loaded {
    pub key: Arc<rustls::sign::CertifiedKey>,
    pub subject: String,
    /// When the served certificate ends.
    pub ends: DateTime<Utc>,
    /// When the certificate signed for the province's authority ends (re-signed before).
    pub cross_ends: DateTime<Utc>,
}

/// The host names and addresses a certificate names (subjectAltName).
fn names_in(cert: &X509Certificate<'_>) -> Vec<String> {
    let mut out = Vec::new();
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        for n in &san.value.general_names {
            match n {
                x509_parser::extensions::GeneralName::DNSName(d) => out.push(d.to_string()),
                x509_parser::extensions::GeneralName::IPAddress(b) => {
                    if let Ok(v4) = <[u8; 4]>::try_from(*b) {
                        out.push(IpAddr::from(v4).to_string());
                    } else if let Ok(v6) = <[u8; 16]>::try_from(*b) {
                        out.push(IpAddr::from(v6).to_string());
                    }
                }
                _ => {}
            }
        }
    }
    out
}

/// Reads `cert` (the server's certificate then any intermediates, PEM) and `key` (PEM),
/// adds the certificate the authority signs for the province's (under `handed`), and checks
/// that a station pinned to the authority accepts it for each of `names` (or the
/// certificate's own names when none is known): what the stations would refuse is refused
/// here, before it is served.
fn load(
    ca: &CaInfo,
    ca_key_pem: &str,
    handed: Option<&Record>,
    cert: &Path,
    key: &Path,
    names: &[String],
    now: DateTime<Utc>,
) -> DbResult<Loaded> {
    let read = |p: &Path| {
        std::fs::read(p).map_err(|e| pki_err(format!("cannot read {}: {e}", p.display())))
    };
    let cert_bytes = read(cert)?;
    let mut chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&cert_bytes)
        .collect::<Result<_, _>>()
        .map_err(|e| pki_err(format!("{}: {e}", cert.display())))?;
    if chain.is_empty() {
        return Err(pki_err(format!("{} holds no certificate", cert.display())));
    }
    let key_der = PrivateKeyDer::from_pem_slice(&read(key)?)
        .map_err(|e| pki_err(format!("{} holds no private key: {e}", key.display())))?;
    let leaf = parse(&chain[0])?;
    let subject = leaf.subject().to_string();
    let ends = ends_of(&leaf);
    let leaf_names = names_in(&leaf);
    drop(leaf);
    let Some(handed) = handed else {
        return Err(pki_err(format!(
            "{} is not trusted by the stations: they trust only the authority they were provisioned with; hand their trust over to the authority that issued this certificate first (binhyen-server ca --hand-over-to ITS-CA.pem --fingerprint …)",
            cert.display()
        )));
    };
    let (cross, cross_ends) = cross_sign(ca, ca_key_pem, handed, now)?;
    chain.push(cross);
    let signing = rustls::crypto::ring::sign::any_supported_type(&key_der)
        .map_err(|e| pki_err(format!("{}: {e}", key.display())))?;
    let certified = rustls::sign::CertifiedKey::new(chain, signing);
    certified.keys_match().map_err(|_| {
        pki_err(format!(
            "the key in {} is not the key of the certificate in {}",
            key.display(),
            cert.display()
        ))
    })?;

    // As a station checks it: the pinned authority the only root.
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from(crate::tls::pem_der(&ca.cert_pem)?))
        .map_err(pki_err)?;
    let verifier = rustls::client::WebPkiServerVerifier::builder_with_provider(
        Arc::new(roots),
        Arc::new(rustls::crypto::ring::default_provider()),
    )
    .build()
    .map_err(pki_err)?;
    let checked: Vec<String> = if names.is_empty() {
        leaf_names.clone()
    } else {
        names.to_vec()
    };
    if checked.is_empty() {
        return Err(pki_err(format!(
            "the certificate in {} names no host (no subjectAltName)",
            cert.display()
        )));
    }
    let at =
        UnixTime::since_unix_epoch(std::time::Duration::from_secs(now.timestamp().max(0) as u64));
    for name in &checked {
        let server_name = ServerName::try_from(name.clone()).map_err(pki_err)?;
        use rustls::client::danger::ServerCertVerifier;
        if let Err(e) = verifier.verify_server_cert(
            &certified.cert[0],
            &certified.cert[1..],
            &server_name,
            &[],
            at,
        ) {
            let outside: Vec<&String> = leaf_names
                .iter()
                .filter(|n| !handed.names.contains(n))
                .collect();
            let why = if format!("{e:?}").contains("NameConstraint") {
                format!(
                    "it names {} beyond what the hand-over allows ({}): the province's PKI must issue a certificate naming only those",
                    outside.iter().map(|n| n.as_str()).collect::<Vec<_>>().join(", "),
                    handed.names.join(", ")
                )
            } else if matches!(
                e,
                rustls::Error::InvalidCertificate(rustls::CertificateError::NotValidForName)
                    | rustls::Error::InvalidCertificate(
                        rustls::CertificateError::NotValidForNameContext { .. }
                    )
            ) {
                format!("stations reach this server as {name}, which the certificate does not name")
            } else {
                format!("a station would refuse it ({e}): was the hand-over to the authority that issued it (not its root), and are its intermediates in the file?")
            };
            return Err(pki_err(format!(
                "{} is not trusted by the stations for {name}: {why}",
                cert.display()
            )));
        }
    }
    Ok(Loaded {
        key: Arc::new(certified),
        subject,
        ends,
        cross_ends,
    })
}

/// What `binhyen-server ca` adds about the province's PKI: the hand-over and, given the
/// served certificate, its end, each warned about a month ahead. A line per fact; what
/// cannot be read is said on its line.
pub fn report(db: &dyn Backend, served: Option<&Path>, now: DateTime<Utc>) -> Vec<String> {
    let mut out = Vec::new();
    match handover(db) {
        Ok(Some(h)) => {
            let days = (h.ends - now).num_days();
            out.push(format!(
                "trust handed over on {} to {} (SHA-256 {}), whose certificate ends {} ({days} days), for {}",
                h.at.date_naive(),
                h.subject,
                h.fingerprint,
                h.ends.date_naive(),
                h.names.join(", ")
            ));
            if days <= WARN_DAYS {
                out.push("WARNING: the province's authority ends within a month: hand over again (ca --hand-over-to) to its successor".into());
            }
        }
        Ok(None) => {}
        Err(e) => out.push(format!("WARNING: {e}")),
    }
    if let Some(path) = served {
        let leaf = std::fs::read(path)
            .map_err(|e| pki_err(format!("cannot read {}: {e}", path.display())))
            .and_then(|bytes| {
                CertificateDer::from_pem_slice(&bytes)
                    .map_err(|e| pki_err(format!("{}: {e}", path.display())))
            })
            .and_then(|der| {
                let leaf = parse(&der)?;
                Ok((leaf.subject().to_string(), ends_of(&leaf)))
            });
        match leaf {
            Ok((subject, ends)) => {
                let days = (ends - now).num_days();
                out.push(format!(
                    "served certificate {} ({subject}) valid until {} ({days} days)",
                    path.display(),
                    ends.date_naive()
                ));
                if days <= WARN_DAYS {
                    out.push("WARNING: the served certificate ends within a month: ask the province's PKI for a new one and put it in place (the server reads it again within a minute, without a restart)".into());
                }
            }
            Err(e) => out.push(format!("WARNING: {e}")),
        }
    }
    out
}

/// The province's certificate as served. The handshake only reads the current one;
/// [`Served::refresh`], run every minute by a thread of its own ([`Served::watch`]), loads
/// it again when its files or the hand-over change, re-signs the certificate for the
/// province's authority a month before it ends, and warns once a day from a month before
/// the served certificate ends. A change that does not load is logged and tried again the
/// next minute; the current certificate is kept meanwhile.
pub struct Served {
    current: RwLock<Arc<rustls::sign::CertifiedKey>>,
    watch: Mutex<Watch>,
}

impl std::fmt::Debug for Served {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Served")
    }
}

struct Watch {
    db: Arc<dyn Backend>,
    ca: CaInfo,
    ca_key_pem: String,
    cert: PathBuf,
    key: PathBuf,
    extra: Vec<String>,
    /// The files as they were when last loaded.
    stamp: Stamp,
    record: Option<Record>,
    ends: DateTime<Utc>,
    cross_ends: DateTime<Utc>,
    warned: Option<DateTime<Utc>>,
    last_error: Option<String>,
}

/// What tells that a file changed: its time, size and inode.
type Stamp = Vec<Option<(std::time::SystemTime, u64, u64)>>;

fn stamp(files: &[&Path]) -> Stamp {
    use std::os::unix::fs::MetadataExt;
    files
        .iter()
        .map(|p| {
            std::fs::metadata(p)
                .ok()
                .and_then(|m| Some((m.modified().ok()?, m.len(), m.ino())))
        })
        .collect()
}

impl Served {
    /// Loads the certificate (refusing what the stations would refuse) for serving.
    pub fn new(
        db: Arc<dyn Backend>,
        cert: &Path,
        key: &Path,
        extra: &[String],
    ) -> DbResult<Served> {
        let (ca, ca_key_pem) = authority(&*db)?;
        let record = record(&*db)?;
        let names = station_names(&*db, extra)?;
        let now = Utc::now();
        let stamp = stamp(&[cert, key]);
        let loaded = load(&ca, &ca_key_pem, record.as_ref(), cert, key, &names, now)?;
        tracing::info!(subject = %loaded.subject, until = %loaded.ends.date_naive(),
            "serving the certificate from the province's PKI");
        let served = Served {
            current: RwLock::new(loaded.key),
            watch: Mutex::new(Watch {
                db,
                ca,
                ca_key_pem,
                cert: cert.to_path_buf(),
                key: key.to_path_buf(),
                extra: extra.to_vec(),
                stamp,
                record,
                ends: loaded.ends,
                cross_ends: loaded.cross_ends,
                warned: None,
                last_error: None,
            }),
        };
        served.warn_of_end(now);
        Ok(served)
    }

    /// The certificate served now.
    pub fn current(&self) -> Arc<rustls::sign::CertifiedKey> {
        self.current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Loads again what changed (see [`Served`]): `Ok(true)` when a new certificate is
    /// served from now on, `Ok(false)` when nothing needed it.
    pub fn refresh(&self, now: DateTime<Utc>) -> DbResult<bool> {
        let mut w = self.watch.lock().unwrap_or_else(|e| e.into_inner());
        let stamp = stamp(&[&w.cert, &w.key]);
        let record = record(&*w.db)?;
        let due = stamp != w.stamp
            || record != w.record
            || w.cross_ends - now <= chrono::Duration::days(WARN_DAYS);
        if !due {
            drop(w);
            self.warn_of_end(now);
            return Ok(false);
        }
        let names = station_names(&*w.db, &w.extra)?;
        let loaded = load(
            &w.ca,
            &w.ca_key_pem,
            record.as_ref(),
            &w.cert,
            &w.key,
            &names,
            now,
        )?;
        tracing::info!(subject = %loaded.subject, until = %loaded.ends.date_naive(),
            "serving the province's certificate as loaded again");
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = loaded.key;
        if loaded.ends != w.ends {
            w.warned = None;
        }
        (w.stamp, w.record, w.ends, w.cross_ends, w.last_error) =
            (stamp, record, loaded.ends, loaded.cross_ends, None);
        drop(w);
        self.warn_of_end(now);
        Ok(true)
    }

    /// Once a day from a month before the served certificate ends.
    fn warn_of_end(&self, now: DateTime<Utc>) {
        let mut w = self.watch.lock().unwrap_or_else(|e| e.into_inner());
        let left = w.ends - now;
        if left <= chrono::Duration::days(WARN_DAYS)
            && w.warned
                .is_none_or(|t| now - t >= chrono::Duration::days(1))
        {
            w.warned = Some(now);
            tracing::warn!(until = %w.ends.date_naive(), days = left.num_days(),
                "the province's certificate ends within a month: ask the province's PKI for a new one");
        }
    }

    /// Runs [`Served::refresh`] every minute on a thread of its own, for the server's life;
    /// a failure is logged when it first happens (and again if it changes).
    pub fn watch(served: &Arc<Served>) {
        let served = served.clone();
        std::thread::spawn(move || loop {
            std::thread::sleep(std::time::Duration::from_secs(60));
            if let Err(e) = served.refresh(Utc::now()) {
                let text = e.to_string();
                let mut w = served.watch.lock().unwrap_or_else(|e| e.into_inner());
                if w.last_error.as_deref() != Some(text.as_str()) {
                    tracing::error!(error = %text,
                        "the province's certificate changed but cannot be served; the current one is kept and it is tried again each minute");
                    w.last_error = Some(text);
                }
            }
        });
    }
}

impl rustls::server::ResolvesServerCert for Served {
    fn resolve(
        &self,
        _hello: rustls::server::ClientHello<'_>,
    ) -> Option<Arc<rustls::sign::CertifiedKey>> {
        Some(self.current())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::SqliteBackend;
    use rcgen::{ExtendedKeyUsagePurpose, SanType};

    /// A province's PKI: a root, an intermediate under it, and leaves from the intermediate.
    struct Pki {
        root: rcgen::Certificate,
        inter: rcgen::Certificate,
        inter_issuer: Issuer<'static, KeyPair>,
    }

    fn ca_params(cn: &str) -> CertificateParams {
        let mut p = CertificateParams::default();
        p.distinguished_name.push(
            DnType::CountryName,
            DnValue::PrintableString("VN".try_into().unwrap()),
        );
        p.distinguished_name
            .push(DnType::OrganizationName, "Công an tỉnh Đắk Lắk");
        p.distinguished_name.push(DnType::CommonName, cn);
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        p
    }

    fn pki() -> Pki {
        let root_key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384).unwrap();
        let root_params = ca_params("PKI tỉnh: gốc");
        let root = root_params.self_signed(&root_key).unwrap();
        let root_issuer = Issuer::new(root_params, root_key);
        let inter_key = KeyPair::generate().unwrap();
        let inter_params = ca_params("PKI tỉnh: trung gian");
        let inter = inter_params.signed_by(&inter_key, &root_issuer).unwrap();
        Pki {
            root,
            inter,
            inter_issuer: Issuer::new(inter_params, inter_key),
        }
    }

    impl Pki {
        /// A server certificate for `names`: (chain PEM, key PEM).
        fn leaf(&self, names: &[&str]) -> (String, String) {
            let key = KeyPair::generate().unwrap();
            let mut p = CertificateParams::default();
            p.distinguished_name.push(DnType::CommonName, names[0]);
            for n in names {
                p.subject_alt_names.push(match n.parse::<IpAddr>() {
                    Ok(ip) => SanType::IpAddress(ip),
                    Err(_) => SanType::DnsName((*n).try_into().unwrap()),
                });
            }
            p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
            let cert = p.signed_by(&key, &self.inter_issuer).unwrap();
            (
                format!("{}{}", cert.pem(), self.inter.pem()),
                key.serialize_pem(),
            )
        }
    }

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    fn hand(db: &dyn Backend, pem: &str, extra: &[String]) -> DbResult<HandOver> {
        hand_over(db, pem, Some(&crate::tls::fingerprint(pem).unwrap()), extra)
    }

    #[test]
    fn a_hand_over_makes_the_province_certificate_trusted_for_the_servers_names_only() {
        let dir = tempfile::tempdir().unwrap();
        let db = SqliteBackend::open(&dir.path().join("server.db")).unwrap();
        crate::tls::remember_name(&db, "tinh.example.vn").unwrap();
        let (ca, ca_key) = authority(&db).unwrap();
        let pki = pki();
        let (chain, key) = pki.leaf(&["tinh.example.vn"]);
        let cert = write(dir.path(), "cert.pem", &chain);
        let key = write(dir.path(), "key.pem", &key);
        let names = station_names(&db, &[]).unwrap();
        let now = Utc::now();

        // Before the hand-over, the stations would refuse it: so does the server.
        let err = load(&ca, &ca_key, None, &cert, &key, &names, now)
            .unwrap_err()
            .to_string();
        assert!(err.contains("ca --hand-over-to"), "{err}");

        // Nothing is handed over until the fingerprint read from the PKI matches the file.
        let inter = pki.inter.pem();
        let err = hand_over(&db, &inter, None, &[]).unwrap_err().to_string();
        assert!(
            err.contains(&format!(
                "--fingerprint {}",
                crate::tls::fingerprint(&inter).unwrap()
            )),
            "{err}"
        );
        let err = hand_over(&db, &inter, Some(&"ab".repeat(32)), &[])
            .unwrap_err()
            .to_string();
        assert!(err.contains("not the province's authority"), "{err}");
        assert!(handover(&db).unwrap().is_none());
        // A server certificate is not an authority to hand over to.
        let leaf_only = chain
            .split_inclusive("-----END CERTIFICATE-----\n")
            .next()
            .unwrap();
        let err = hand(&db, leaf_only, &[]).unwrap_err().to_string();
        assert!(err.contains("not a certificate authority"), "{err}");
        // Names that would open the constraint to a whole domain, or to every host.
        for bad in ["vn", "", ".example.vn", "*.example.vn", "côngan.vn"] {
            let err = hand(&db, &inter, &[bad.to_string()])
                .unwrap_err()
                .to_string();
            assert!(err.contains("is not a host name"), "{bad}: {err}");
        }

        let h = hand(&db, &inter, &[]).unwrap();
        assert!(
            h.names.contains(&"tinh.example.vn".to_string()),
            "{:?}",
            h.names
        );
        assert!(h.names.contains(&"127.0.0.1".to_string()), "{:?}", h.names);
        assert!(h.subject.contains("PKI tỉnh: trung gian"), "{}", h.subject);
        assert_eq!(h.fingerprint, crate::tls::fingerprint(&inter).unwrap());
        let handed = record(&db).unwrap().unwrap();
        let loaded = load(&ca, &ca_key, Some(&handed), &cert, &key, &names, now).unwrap();
        let refused = |cert: &Path, key: &Path, names: &[String]| {
            load(&ca, &ca_key, Some(&handed), cert, key, names, now)
                .unwrap_err()
                .to_string()
        };
        assert_eq!(
            loaded.key.cert.len(),
            3,
            "leaf, intermediate, the authority's signature"
        );
        let lasts = loaded.cross_ends - now;
        assert!(lasts <= chrono::Duration::days(CROSS_DAYS), "{lasts}");

        // Another host's certificate from the same PKI is not trusted by the stations: the
        // hand-over names this server only.
        let (other_chain, other_key) = pki.leaf(&["thu-dien-tu.example.vn"]);
        let other = write(dir.path(), "other.pem", &other_chain);
        let other_key_file = write(dir.path(), "other.key", &other_key);
        let other_names = vec!["thu-dien-tu.example.vn".to_string()];
        let err = refused(&other, &other_key_file, &other_names);
        assert!(err.contains("beyond what the hand-over allows"), "{err}");
        // Nor this server's, if it also names another host.
        let (wide_chain, wide_key) = pki.leaf(&["tinh.example.vn", "mail.example.vn"]);
        let wide = write(dir.path(), "wide.pem", &wide_chain);
        let wide_key = write(dir.path(), "wide.key", &wide_key);
        let err = refused(&wide, &wide_key, &names);
        assert!(err.contains("mail.example.vn"), "{err}");
        // A certificate that does not name the host the stations use.
        let err = refused(&other, &other_key_file, &names);
        assert!(err.contains("tinh.example.vn"), "{err}");
        // A key that is not the certificate's.
        let err = refused(&cert, &other_key_file, &names);
        assert!(err.contains("is not the key"), "{err}");

        // Handed over to the root, the intermediate that issued the certificate is not
        // trusted: the hand-over gives no authority to delegate.
        hand(&db, &pki.root.pem(), &[]).unwrap();
        let to_root = record(&db).unwrap().unwrap();
        let err = load(&ca, &ca_key, Some(&to_root), &cert, &key, &names, now)
            .unwrap_err()
            .to_string();
        assert!(err.contains("not its root"), "{err}");

        // Another server's authority handing over the same PKI: not these stations' trust.
        let dir2 = tempfile::tempdir().unwrap();
        let db2 = SqliteBackend::open(&dir2.path().join("server.db")).unwrap();
        crate::tls::remember_name(&db2, "tinh.example.vn").unwrap();
        hand(&db2, &inter, &[]).unwrap();
        let (ca2, ca2_key) = authority(&db2).unwrap();
        let foreign = load(&ca2, &ca2_key, Some(&handed), &cert, &key, &names, now).unwrap();
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(CertificateDer::from(
                crate::tls::pem_der(&ca.cert_pem).unwrap(),
            ))
            .unwrap();
        let station = rustls::client::WebPkiServerVerifier::builder_with_provider(
            Arc::new(roots),
            Arc::new(rustls::crypto::ring::default_provider()),
        )
        .build()
        .unwrap();
        use rustls::client::danger::ServerCertVerifier;
        assert!(station
            .verify_server_cert(
                &foreign.key.cert[0],
                &foreign.key.cert[1..],
                &ServerName::try_from("tinh.example.vn").unwrap(),
                &[],
                UnixTime::now(),
            )
            .is_err());

        // ca's report: the hand-over and the served certificate, each warned a month ahead.
        hand(&db, &inter, &[]).unwrap();
        let report = report(&db, Some(&cert), now).join("\n");
        assert!(report.contains("trust handed over on"), "{report}");
        assert!(report.contains("served certificate"), "{report}");
        assert!(!report.contains("WARNING"), "{report}");
        let late =
            super::report(&db, Some(&cert), loaded.ends - chrono::Duration::days(10)).join("\n");
        assert!(late.contains("WARNING: the served certificate"), "{late}");
        let unreadable = super::report(&db, Some(&dir.path().join("none.pem")), now).join("\n");
        assert!(
            unreadable.contains("WARNING: TLS: cannot read"),
            "{unreadable}"
        );

        // Withdrawn: nothing to serve it with.
        assert!(withdraw(&db).unwrap());
        assert!(handover(&db).unwrap().is_none());
        assert!(!withdraw(&db).unwrap());
    }

    #[test]
    fn the_served_certificate_is_loaded_again_when_its_files_or_the_hand_over_change() {
        let dir = tempfile::tempdir().unwrap();
        let db: Arc<dyn Backend> =
            Arc::new(SqliteBackend::open(&dir.path().join("server.db")).unwrap());
        crate::tls::remember_name(&*db, "tinh.example.vn").unwrap();
        let pki = pki();
        hand(&*db, &pki.inter.pem(), &[]).unwrap();
        let (chain, key) = pki.leaf(&["tinh.example.vn"]);
        let cert = write(dir.path(), "cert.pem", &chain);
        let key_file = write(dir.path(), "key.pem", &key);
        let served = Served::new(db.clone(), &cert, &key_file, &[]).unwrap();
        let now = Utc::now();
        let first = served.current();
        // Unchanged: the same certificate.
        assert!(!served.refresh(now).unwrap());
        assert!(Arc::ptr_eq(&first, &served.current()));

        // The province's PKI renews it: served from the next check on.
        let (chain2, key2) = pki.leaf(&["tinh.example.vn"]);
        std::fs::write(&key_file, key2).unwrap();
        std::fs::write(&cert, chain2).unwrap();
        assert!(served.refresh(now).unwrap());
        let second = served.current();
        assert!(!Arc::ptr_eq(&first, &second));

        // A certificate the stations would refuse is not served: the current one is kept,
        // and it is tried again (not forgotten) at the next check.
        let (bad_chain, bad_key) = pki.leaf(&["khac.example.vn"]);
        std::fs::write(&key_file, &bad_key).unwrap();
        std::fs::write(&cert, &bad_chain).unwrap();
        assert!(served.refresh(now).is_err());
        assert!(Arc::ptr_eq(&second, &served.current()));
        assert!(served.refresh(now).is_err(), "tried again");
        let (chain3, key3) = pki.leaf(&["tinh.example.vn"]);
        std::fs::write(&key_file, key3).unwrap();
        std::fs::write(&cert, chain3).unwrap();
        assert!(served.refresh(now).unwrap());
        let third = served.current();

        // The certificate signed for the province's authority is signed again a month
        // before it ends.
        assert!(!served.refresh(now + chrono::Duration::days(10)).unwrap());
        assert!(served
            .refresh(now + chrono::Duration::days(CROSS_DAYS - 20))
            .unwrap());
        assert!(!Arc::ptr_eq(&third, &served.current()));

        // Withdrawn: the next load is refused and the current certificate kept until the
        // server stops (it then refuses to start with it).
        withdraw(&*db).unwrap();
        assert!(served.refresh(now).is_err());
        assert!(Served::new(db.clone(), &cert, &key_file, &[]).is_err());
    }
}
