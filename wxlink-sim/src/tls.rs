//! TLS for the redirect listener: a throwaway certificate authority and a
//! server certificate for `127.0.0.1` and `localhost`, made fresh each time
//! a simulator starts.
//!
//! Clients poll `https://` + `redirect_host` after `scaned_but_redirect`
//! (`docs/protocol.md`, `get_qrcode_status`), so the listener that host names speaks TLS. The
//! keys live only in memory; a client trusts the CA's certificate
//! ([`Simulator::tls_root_der`](crate::Simulator::tls_root_der)) for the
//! simulator's lifetime and nothing else.

use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose, date_time_ymd,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio_rustls::TlsAcceptor;

use crate::error::SimError;

/// The names the server certificate is valid for.
const NAMES: [&str; 2] = ["127.0.0.1", "localhost"];

/// A started simulator's TLS material.
pub(crate) struct SimTls {
    /// The CA certificate (DER) a client must trust.
    pub(crate) root_der: Vec<u8>,
    /// Accepts TLS connections with the server certificate, offering
    /// HTTP/2 and HTTP/1.1 by ALPN.
    pub(crate) acceptor: TlsAcceptor,
}

/// Makes a new CA, a server certificate signed by it and the acceptor.
pub(crate) fn generate() -> Result<SimTls, SimError> {
    let ca_key = KeyPair::generate().map_err(tls_error)?;
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).map_err(tls_error)?;
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "wxlink-sim test CA");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca = CertifiedIssuer::self_signed(ca_params, ca_key).map_err(tls_error)?;

    let leaf_key = KeyPair::generate().map_err(tls_error)?;
    let mut leaf_params =
        CertificateParams::new(NAMES.map(str::to_owned).to_vec()).map_err(tls_error)?;
    leaf_params
        .distinguished_name
        .push(DnType::CommonName, "wxlink-sim redirect host");
    leaf_params.is_ca = IsCa::ExplicitNoCa;
    leaf_params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    leaf_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    leaf_params.use_authority_key_identifier_extension = true;
    // About two years around today, not rcgen's default of centuries:
    // some TLS stacks (Apple's, for one) refuse server certificates valid
    // for more than 825 days even under a private CA.
    let year = current_year();
    leaf_params.not_before = date_time_ymd(year - 1, 1, 1);
    leaf_params.not_after = date_time_ymd(year + 1, 1, 1);
    let leaf = leaf_params.signed_by(&leaf_key, &ca).map_err(tls_error)?;

    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf_key.serialize_der()));
    let chain: Vec<CertificateDer<'static>> = vec![leaf.der().clone(), ca.der().clone()];
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(tls_error)?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(tls_error)?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(SimTls {
        root_der: ca.der().to_vec(),
        acceptor: TlsAcceptor::from(Arc::new(config)),
    })
}

/// This year by the system clock, give or take one around New Year, which
/// the validity margins absorb.
fn current_year() -> i32 {
    const SECONDS_PER_YEAR: u64 = 31_556_952; // 365.2425 days.
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    1970 + i32::try_from(secs / SECONDS_PER_YEAR).unwrap_or(0)
}

fn tls_error(err: impl std::error::Error + Send + Sync + 'static) -> SimError {
    SimError::tls(err)
}
