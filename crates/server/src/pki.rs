//! A certificate the province's own PKI issued, served in place of the authority's leaf
//! (`serve --tls-cert --tls-key`), and the hand-over that keeps the stations trusting it.
//!
//! Stations trust the authority pinned in their provisioning file and nothing else. The
//! hand-over (`ca --hand-over-to CA.pem`) is that authority signing, explicitly, a
//! certificate for the province's authority: same name, same public key, constrained to
//! the names stations reach this server by. The server then serves the province's chain
//! followed by that cross-certificate, and a station finds its way from the province's
//! leaf to the pinned authority; browsers and monitoring find the province's own root.
//! Nothing changes on the stations, and no other certificate of the province's PKI (for
//! another host) is trusted by them.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use rcgen::{
    BasicConstraints, CertificateParams, CidrSubnet, DistinguishedName, DnType, DnValue,
    GeneralSubtree, IsCa, Issuer, KeyIdMethod, KeyPair, KeyUsagePurpose, NameConstraints,
    SubjectPublicKeyInfo,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use x509_parser::prelude::{FromDer, ParsedExtension, X509Certificate};

use crate::db::{Backend, DbError, DbResult};
use crate::tls::{authority, known_names, CaInfo};

/// The hand-over: the cross-certificate (PEM) the authority signed for the province's one.
const HANDOVER: &str = "tls.handover";

/// A month: how far ahead the end of a certificate the server cannot renew itself is warned.
pub const WARN_DAYS: i64 = 30;

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

/// What a hand-over says: to whom, until when.
#[derive(Debug, Clone)]
pub struct HandOver {
    pub cert_pem: String,
    /// The province authority's name, as its certificate gives it.
    pub subject: String,
    /// SHA-256 of the province authority's public key (its SubjectPublicKeyInfo): the same
    /// in the hand-over as in the authority's own certificate.
    pub fingerprint: String,
    pub ends: DateTime<Utc>,
    /// The names it is constrained to.
    pub names: Vec<String>,
}

/// The subject of `cert` as rcgen writes it, attribute by attribute with its string type,
/// so that the cross-certificate's name is byte for byte the one the province's
/// certificates name as their issuer.
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
                "the authority's name repeats an attribute, which cannot be carried over",
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

/// The names a hand-over is constrained to and a served certificate is checked against:
/// those stations were told (from enrolments), the `--name`s given, and loopback.
fn station_names(db: &dyn Backend, extra: &[String]) -> DbResult<Vec<String>> {
    let mut names = known_names(db)?;
    for n in extra {
        if !names.contains(n) {
            names.push(n.clone());
        }
    }
    Ok(names)
}

/// Hands the stations' trust over to the province's authority `province_ca_pem`: the
/// server's authority signs a certificate for it, constrained to the names the stations
/// reach this server by (and loopback), valid no longer than either authority. Kept in the
/// server's storage (and so in its backups), replacing any earlier hand-over.
pub fn hand_over(db: &dyn Backend, province_ca_pem: &str, extra: &[String]) -> DbResult<HandOver> {
    let der = CertificateDer::from_pem_slice(province_ca_pem.as_bytes()).map_err(|e| {
        pki_err(format!(
            "the province's authority is not a PEM certificate: {e}"
        ))
    })?;
    let province = parse(&der)?;
    let constraints = province
        .basic_constraints()
        .map_err(pki_err)?
        .map(|b| b.value.clone());
    let Some(constraints) = constraints.filter(|b| b.ca) else {
        return Err(pki_err(
            "this certificate is not a certificate authority (no CA:TRUE): hand over to the authority that issues the server's certificate, not to the certificate itself",
        ));
    };
    let now = Utc::now();
    if ends_of(&province) <= now {
        return Err(pki_err(format!(
            "the province's authority ended on {}",
            ends_of(&province).date_naive()
        )));
    }
    let (ca, ca_key_pem) = authority(db)?;
    let ours = crate::tls::authority_ends(&ca)?;

    let mut names = vec!["localhost".to_string(), "127.0.0.1".into(), "::1".into()];
    for n in station_names(db, extra)? {
        if !names.contains(&n) {
            names.push(n);
        }
    }
    let permitted = names
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
    params.is_ca = IsCa::Ca(match constraints.path_len_constraint {
        Some(n) => BasicConstraints::Constrained(n.min(u8::MAX as u32) as u8),
        None => BasicConstraints::Unconstrained,
    });
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
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
    let params_not_before = (now - chrono::Duration::days(1))
        .max(DateTime::from_timestamp(province.validity().not_before.timestamp(), 0).unwrap_or(now))
        .timestamp();
    params.not_before = unix(params_not_before)?;
    let ends = ends_of(&province).min(ours);
    params.not_after = unix(ends.timestamp())?;
    let spki = SubjectPublicKeyInfo::from_der(province.public_key().raw).map_err(|e| {
        pki_err(format!(
            "the province authority's key is of a kind that cannot be signed for ({e})"
        ))
    })?;
    let issuer = Issuer::from_ca_cert_pem(
        &ca.cert_pem,
        KeyPair::from_pem(&ca_key_pem).map_err(pki_err)?,
    )
    .map_err(pki_err)?;
    let cross = params.signed_by(&spki, &issuer).map_err(pki_err)?;
    db.meta_set(HANDOVER, &cross.pem())?;
    let handover = HandOver {
        cert_pem: cross.pem(),
        subject: province.subject().to_string(),
        fingerprint: hex::encode(<sha2::Sha256 as sha2::Digest>::digest(
            province.public_key().raw,
        )),
        ends,
        names,
    };
    tracing::info!(subject = %handover.subject, key_sha256 = %handover.fingerprint,
        until = %ends.date_naive(), "the stations' trust is handed over to the province's authority");
    Ok(handover)
}

/// A Unix time as the date rcgen takes.
fn unix(t: i64) -> DbResult<time::OffsetDateTime> {
    time::OffsetDateTime::from_unix_timestamp(t).map_err(pki_err)
}

/// The hand-over kept, if any: the cross-certificate and what it says.
pub fn handover(db: &dyn Backend) -> DbResult<Option<HandOver>> {
    let Some(pem) = db.meta_get(HANDOVER)? else {
        return Ok(None);
    };
    let der = crate::tls::pem_der(&pem)?;
    let cert = parse(&der)?;
    let mut names = Vec::new();
    if let Ok(Some(nc)) = cert.name_constraints() {
        for sub in nc.value.permitted_subtrees.iter().flatten() {
            names.push(match &sub.base {
                x509_parser::extensions::GeneralName::DNSName(n) => n.to_string(),
                x509_parser::extensions::GeneralName::IPAddress(b) if b.len() == 8 => {
                    IpAddr::from(<[u8; 4]>::try_from(&b[..4]).unwrap_or_default()).to_string()
                }
                x509_parser::extensions::GeneralName::IPAddress(b) if b.len() == 32 => {
                    IpAddr::from(<[u8; 16]>::try_from(&b[..16]).unwrap_or_default()).to_string()
                }
                other => other.to_string(),
            });
        }
    }
    Ok(Some(HandOver {
        subject: cert.subject().to_string(),
        fingerprint: hex::encode(<sha2::Sha256 as sha2::Digest>::digest(
            cert.public_key().raw,
        )),
        ends: ends_of(&cert),
        cert_pem: pem,
        names,
    }))
}

/// A certificate and key from the province's PKI, checked as a station would check them.
#[derive(Debug)]
pub struct Loaded {
    pub key: Arc<rustls::sign::CertifiedKey>,
    pub subject: String,
    pub ends: DateTime<Utc>,
}

/// Reads `cert` (the server's certificate then any intermediates, PEM) and `key` (PEM),
/// adds the hand-over to the chain, and checks that a station pinned to the authority
/// accepts it for each of `names` (or the certificate's own names when none is known):
/// what the stations would refuse is refused here, before it is served.
pub fn load(
    ca: &CaInfo,
    handover: Option<&str>,
    cert: &Path,
    key: &Path,
    names: &[String],
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
    let mut leaf_names: Vec<String> = Vec::new();
    if let Ok(Some(san)) = leaf.subject_alternative_name() {
        for n in &san.value.general_names {
            match n {
                x509_parser::extensions::GeneralName::DNSName(d) => leaf_names.push(d.to_string()),
                x509_parser::extensions::GeneralName::IPAddress(b) => {
                    if let Ok(v4) = <[u8; 4]>::try_from(*b) {
                        leaf_names.push(IpAddr::from(v4).to_string());
                    } else if let Ok(v6) = <[u8; 16]>::try_from(*b) {
                        leaf_names.push(IpAddr::from(v6).to_string());
                    }
                }
                _ => {}
            }
        }
    }
    drop(leaf);
    if let Some(h) = handover {
        let der = CertificateDer::from(crate::tls::pem_der(h)?);
        if !chain.contains(&der) {
            chain.push(der);
        }
    }
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
        leaf_names
    } else {
        names.to_vec()
    };
    if checked.is_empty() {
        return Err(pki_err(format!(
            "the certificate in {} names no host (no subjectAltName)",
            cert.display()
        )));
    }
    for name in &checked {
        let server_name = ServerName::try_from(name.clone()).map_err(pki_err)?;
        use rustls::client::danger::ServerCertVerifier;
        if let Err(e) = verifier.verify_server_cert(
            &certified.cert[0],
            &certified.cert[1..],
            &server_name,
            &[],
            UnixTime::now(),
        ) {
            let why = if handover.is_none() {
                "the stations trust only the authority they were provisioned with: hand their trust over to the authority that issued this certificate first (binhyen-server ca --hand-over-to ITS-CA.pem)".to_string()
            } else if matches!(
                e,
                rustls::Error::InvalidCertificate(rustls::CertificateError::NotValidForName)
                    | rustls::Error::InvalidCertificate(
                        rustls::CertificateError::NotValidForNameContext { .. }
                    )
            ) {
                format!("stations reach this server as {name}, which the certificate does not name")
            } else {
                format!("a station would refuse it ({e}): is the hand-over to the authority that issued it, and is its chain (intermediates) in the file?")
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
    })
}

/// What `binhyen-server ca` adds about the province's PKI: the hand-over and, given the
/// served certificate, its end, each warned about a month ahead.
pub fn report(
    db: &dyn Backend,
    served: Option<&Path>,
    now: DateTime<Utc>,
) -> DbResult<Vec<String>> {
    let mut out = Vec::new();
    if let Some(h) = handover(db)? {
        let days = (h.ends - now).num_days();
        out.push(format!(
            "trust handed over to {} until {} ({days} days), for {}",
            h.subject,
            h.ends.date_naive(),
            h.names.join(", ")
        ));
        if days <= WARN_DAYS {
            out.push("WARNING: the hand-over ends within a month: hand over again (ca --hand-over-to) to the province's renewed authority".into());
        }
    }
    if let Some(path) = served {
        let bytes = std::fs::read(path)
            .map_err(|e| pki_err(format!("cannot read {}: {e}", path.display())))?;
        let der = CertificateDer::from_pem_slice(&bytes)
            .map_err(|e| pki_err(format!("{}: {e}", path.display())))?;
        let leaf = parse(&der)?;
        let ends = ends_of(&leaf);
        let days = (ends - now).num_days();
        out.push(format!(
            "served certificate {} ({}) valid until {} ({days} days)",
            path.display(),
            leaf.subject(),
            ends.date_naive()
        ));
        if days <= WARN_DAYS {
            out.push("WARNING: the served certificate ends within a month: ask the province's PKI for a new one and put it in place (the server reads it again without a restart)".into());
        }
    }
    Ok(out)
}

/// The province's certificate as served: read again when either file changes (checked at
/// most once a minute), so a renewed certificate is served without a restart; a renewal
/// that does not load is logged and the current certificate kept. Its end is warned about
/// once a day from a month ahead.
#[derive(Debug)]
pub struct Served {
    ca: CaInfo,
    handover: Option<String>,
    cert: PathBuf,
    key: PathBuf,
    names: Vec<String>,
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    loaded: Loaded,
    stamp: (Option<std::time::SystemTime>, Option<std::time::SystemTime>),
    checked: DateTime<Utc>,
    warned: Option<DateTime<Utc>>,
}

fn stamp(
    cert: &Path,
    key: &Path,
) -> (Option<std::time::SystemTime>, Option<std::time::SystemTime>) {
    let m = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    (m(cert), m(key))
}

impl Served {
    /// Loads the certificate (refusing what the stations would refuse) for serving.
    pub fn new(db: &dyn Backend, cert: &Path, key: &Path, extra: &[String]) -> DbResult<Served> {
        let (ca, _) = authority(db)?;
        let handover = db.meta_get(HANDOVER)?;
        let names = station_names(db, extra)?;
        let loaded = load(&ca, handover.as_deref(), cert, key, &names)?;
        tracing::info!(subject = %loaded.subject, until = %loaded.ends.date_naive(),
            "serving the certificate from the province's PKI");
        let served = Served {
            ca,
            handover,
            cert: cert.to_path_buf(),
            key: key.to_path_buf(),
            names,
            state: Mutex::new(State {
                loaded,
                stamp: stamp(cert, key),
                checked: Utc::now(),
                warned: None,
            }),
        };
        served.at(Utc::now());
        Ok(served)
    }

    /// The certificate to serve at `now`.
    fn at(&self, now: DateTime<Utc>) -> Arc<rustls::sign::CertifiedKey> {
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if now - st.checked >= chrono::Duration::seconds(60) {
            st.checked = now;
            let current = stamp(&self.cert, &self.key);
            if current != st.stamp {
                st.stamp = current;
                match load(
                    &self.ca,
                    self.handover.as_deref(),
                    &self.cert,
                    &self.key,
                    &self.names,
                ) {
                    Ok(fresh) => {
                        tracing::info!(subject = %fresh.subject, until = %fresh.ends.date_naive(),
                            "the province's certificate was replaced: serving the new one");
                        st.loaded = fresh;
                        st.warned = None;
                    }
                    Err(e) => tracing::error!(error = %e,
                        "the province's certificate changed but cannot be served; the current one is kept"),
                }
            }
        }
        let left = st.loaded.ends - now;
        if left <= chrono::Duration::days(WARN_DAYS)
            && st
                .warned
                .is_none_or(|w| now - w >= chrono::Duration::days(1))
        {
            st.warned = Some(now);
            tracing::warn!(until = %st.loaded.ends.date_naive(), days = left.num_days(),
                "the province's certificate ends within a month: ask the province's PKI for a new one");
        }
        st.loaded.key.clone()
    }
}

impl rustls::server::ResolvesServerCert for Served {
    fn resolve(
        &self,
        _hello: rustls::server::ClientHello<'_>,
    ) -> Option<Arc<rustls::sign::CertifiedKey>> {
        Some(self.at(Utc::now()))
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

    #[test]
    fn a_hand_over_makes_the_province_certificate_trusted_for_the_servers_names_only() {
        let dir = tempfile::tempdir().unwrap();
        let db = SqliteBackend::open(&dir.path().join("server.db")).unwrap();
        crate::tls::remember_name(&db, "tinh.example.vn").unwrap();
        let (ca, _) = authority(&db).unwrap();
        let pki = pki();
        let (chain, key) = pki.leaf(&["tinh.example.vn"]);
        let cert = write(dir.path(), "cert.pem", &chain);
        let key = write(dir.path(), "key.pem", &key);
        let names = station_names(&db, &[]).unwrap();

        // Before the hand-over, the stations would refuse it: so does the server.
        let err = load(&ca, None, &cert, &key, &names)
            .unwrap_err()
            .to_string();
        assert!(err.contains("ca --hand-over-to"), "{err}");
        assert!(Served::new(&db, &cert, &key, &[]).is_err());

        // A server certificate is not an authority to hand over to.
        let leaf_only = chain
            .split_inclusive("-----END CERTIFICATE-----\n")
            .next()
            .unwrap();
        let err = hand_over(&db, leaf_only, &[]).unwrap_err().to_string();
        assert!(err.contains("not a certificate authority"), "{err}");

        let h = hand_over(&db, &pki.root.pem(), &[]).unwrap();
        assert!(
            h.names.contains(&"tinh.example.vn".to_string()),
            "{:?}",
            h.names
        );
        assert!(h.subject.contains("PKI tỉnh: gốc"), "{}", h.subject);
        let kept = handover(&db).unwrap().unwrap();
        assert_eq!(kept.cert_pem, h.cert_pem);
        assert_eq!(kept.fingerprint, h.fingerprint);
        assert!(
            kept.names.contains(&"tinh.example.vn".to_string()),
            "{:?}",
            kept.names
        );
        assert!(
            kept.names.contains(&"127.0.0.1".to_string()),
            "{:?}",
            kept.names
        );

        let loaded = load(&ca, Some(&h.cert_pem), &cert, &key, &names).unwrap();
        assert_eq!(loaded.key.cert.len(), 3, "leaf, intermediate, hand-over");

        // Another host's certificate from the same PKI is not trusted by the stations: the
        // hand-over names this server only.
        let (other_chain, other_key) = pki.leaf(&["thu-dien-tu.example.vn"]);
        let other = write(dir.path(), "other.pem", &other_chain);
        let other_key_file = write(dir.path(), "other.key", &other_key);
        let other_names = vec!["thu-dien-tu.example.vn".to_string()];
        assert!(load(
            &ca,
            Some(&h.cert_pem),
            &other,
            &other_key_file,
            &other_names
        )
        .is_err());
        // A certificate that does not name the host the stations use.
        let err = load(&ca, Some(&h.cert_pem), &other, &other_key_file, &names)
            .unwrap_err()
            .to_string();
        assert!(err.contains("tinh.example.vn"), "{err}");
        // A key that is not the certificate's.
        let err = load(&ca, Some(&h.cert_pem), &cert, &other_key_file, &names)
            .unwrap_err()
            .to_string();
        assert!(err.contains("is not the key"), "{err}");

        // Another server's authority handing over the same PKI: not this station's trust.
        let dir2 = tempfile::tempdir().unwrap();
        let db2 = SqliteBackend::open(&dir2.path().join("server.db")).unwrap();
        crate::tls::remember_name(&db2, "tinh.example.vn").unwrap();
        let foreign = hand_over(&db2, &pki.root.pem(), &[]).unwrap();
        assert!(load(&ca, Some(&foreign.cert_pem), &cert, &key, &names).is_err());

        // ca's report: the hand-over and the served certificate, each warned a month ahead.
        let now = Utc::now();
        let report = report(&db, Some(&cert), now).unwrap().join("\n");
        assert!(report.contains("trust handed over to"), "{report}");
        assert!(report.contains("served certificate"), "{report}");
        assert!(!report.contains("WARNING"), "{report}");
        let late = super::report(&db, Some(&cert), loaded.ends - chrono::Duration::days(10))
            .unwrap()
            .join("\n");
        assert!(late.contains("WARNING: the served certificate"), "{late}");
    }

    #[test]
    fn a_renewed_certificate_is_served_without_a_restart_and_a_bad_one_is_not() {
        let dir = tempfile::tempdir().unwrap();
        let db = SqliteBackend::open(&dir.path().join("server.db")).unwrap();
        crate::tls::remember_name(&db, "tinh.example.vn").unwrap();
        let pki = pki();
        hand_over(&db, &pki.root.pem(), &[]).unwrap();
        let (chain, key) = pki.leaf(&["tinh.example.vn"]);
        let cert = write(dir.path(), "cert.pem", &chain);
        let key_file = write(dir.path(), "key.pem", &key);
        let served = Served::new(&db, &cert, &key_file, &[]).unwrap();
        let now = Utc::now();
        let first = served.at(now);
        // Unchanged files: the same certificate.
        assert!(Arc::ptr_eq(
            &first,
            &served.at(now + chrono::Duration::seconds(61))
        ));

        // The province's PKI renews it: served from the next check on.
        let (chain2, key2) = pki.leaf(&["tinh.example.vn"]);
        std::fs::write(&key_file, key2).unwrap();
        std::fs::write(&cert, chain2).unwrap();
        assert!(
            Arc::ptr_eq(&first, &served.at(now + chrono::Duration::seconds(70))),
            "checked at most once a minute"
        );
        let second = served.at(now + chrono::Duration::seconds(125));
        assert!(!Arc::ptr_eq(&first, &second));

        // A certificate the stations would refuse is not served: the current one is kept.
        let (bad_chain, bad_key) = pki.leaf(&["khac.example.vn"]);
        std::fs::write(&key_file, bad_key).unwrap();
        std::fs::write(&cert, bad_chain).unwrap();
        assert!(Arc::ptr_eq(
            &second,
            &served.at(now + chrono::Duration::seconds(200))
        ));
    }
}
