//! TLS client configuration with rustls: trust roots, `sslopt` verification modes, client
//! certificates, and errors classified the way Python's `ssl` module reports them.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};

/// `cert_reqs`: in client mode CERT_OPTIONAL means the same as CERT_REQUIRED (Python's docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CertReqs {
    None,
    Required,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TlsOptions {
    pub cert_reqs: CertReqs,
    pub check_hostname: bool,
    pub ca_certs: Option<PathBuf>,
    pub ca_cert_path: Option<PathBuf>,
    /// DER certificates to trust (from an `ssl.SSLContext`).
    pub ca_der: Vec<Vec<u8>>,
    pub certfile: Option<PathBuf>,
    pub keyfile: Option<PathBuf>,
    pub password: Option<Vec<u8>>,
    pub server_hostname: Option<String>,
    /// Minimum TLS version: 12 or 13.
    pub min_version: Option<u8>,
}

impl Default for TlsOptions {
    fn default() -> Self {
        TlsOptions {
            cert_reqs: CertReqs::Required,
            check_hostname: true,
            ca_certs: None,
            ca_cert_path: None,
            ca_der: Vec::new(),
            certfile: None,
            keyfile: None,
            password: None,
            server_hostname: None,
            min_version: None,
        }
    }
}

#[derive(Debug, Clone)]
pub enum TlsError {
    /// The certificate check failed: OpenSSL's verify code and reason, as Python reports.
    CertVerify { code: i64, reason: String },
    /// Any other TLS failure (alerts, protocol errors).
    Protocol(String),
    /// A bad option (missing file, bad PEM...).
    Config(String),
}

impl std::fmt::Display for TlsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TlsError::CertVerify { reason, .. } => {
                write!(f, "[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: {reason}")
            }
            TlsError::Protocol(m) | TlsError::Config(m) => f.write_str(m),
        }
    }
}

/// Classifies a rustls error; `host` is used in the hostname-mismatch message.
pub fn classify(e: &rustls::Error, host: &str) -> TlsError {
    match e {
        rustls::Error::InvalidCertificate(ce) => {
            let (code, reason) = match ce {
                CertificateError::UnknownIssuer => (20, "unable to get local issuer certificate".to_string()),
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
                    (62, format!("Hostname mismatch, certificate is not valid for '{host}'."))
                }
                CertificateError::Expired | CertificateError::ExpiredContext { .. } => (10, "certificate has expired".into()),
                CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
                    (9, "certificate is not yet valid".into())
                }
                CertificateError::Revoked => (23, "certificate revoked".into()),
                other => (0, format!("{other:?}")),
            };
            TlsError::CertVerify { code, reason }
        }
        other => TlsError::Protocol(format!("TLS error: {other}")),
    }
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    static P: OnceLock<Arc<rustls::crypto::CryptoProvider>> = OnceLock::new();
    P.get_or_init(|| Arc::new(rustls::crypto::ring::default_provider())).clone()
}

fn load_pem_certs(path: &std::path::Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs: Result<Vec<_>, _> = CertificateDer::pem_file_iter(path)
        .map_err(|e| TlsError::Config(format!("SSL CA certificate load failed: {}: {e}", path.display())))?
        .collect();
    certs.map_err(|e| TlsError::Config(format!("SSL CA certificate load failed: {}: {e}", path.display())))
}

/// The system's roots (rustls-native-certs honours SSL_CERT_FILE and SSL_CERT_DIR) plus
/// WEBSOCKET_CLIENT_CA_BUNDLE; cached per value of those variables.
fn system_roots() -> Result<Arc<RootCertStore>, TlsError> {
    static CACHE: OnceLock<Mutex<HashMap<Vec<Option<String>>, Arc<RootCertStore>>>> = OnceLock::new();
    let key: Vec<Option<String>> = ["SSL_CERT_FILE", "SSL_CERT_DIR", "WEBSOCKET_CLIENT_CA_BUNDLE"]
        .iter()
        .map(|k| std::env::var(k).ok())
        .collect();
    let cache = CACHE.get_or_init(|| Mutex::new(HashMap::new()));
    if let Some(s) = cache.lock().unwrap().get(&key) {
        return Ok(s.clone());
    }
    let mut store = RootCertStore::empty();
    let native = rustls_native_certs::load_native_certs();
    store.add_parsable_certificates(native.certs);
    if let Some(bundle) = &key[2] {
        let p = PathBuf::from(bundle);
        if p.is_dir() {
            add_dir(&mut store, &p)?;
        } else {
            store.add_parsable_certificates(load_pem_certs(&p)?);
        }
    }
    if store.is_empty() {
        // A machine without a CA store: fall back to the Mozilla roots compiled in.
        store.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    }
    let store = Arc::new(store);
    cache.lock().unwrap().insert(key, store.clone());
    Ok(store)
}

fn add_dir(store: &mut RootCertStore, dir: &std::path::Path) -> Result<(), TlsError> {
    let entries = std::fs::read_dir(dir).map_err(|e| TlsError::Config(format!("SSL CA path load failed: {}: {e}", dir.display())))?;
    for entry in entries.flatten() {
        let p = entry.path();
        if p.is_file() {
            if let Ok(certs) = load_pem_certs(&p) {
                store.add_parsable_certificates(certs);
            }
        }
    }
    Ok(())
}

fn roots(opts: &TlsOptions) -> Result<Arc<RootCertStore>, TlsError> {
    if opts.ca_certs.is_none() && opts.ca_cert_path.is_none() && opts.ca_der.is_empty() {
        return system_roots();
    }
    let mut store = RootCertStore::empty();
    if let Some(p) = &opts.ca_certs {
        store.add_parsable_certificates(load_pem_certs(p)?);
    }
    if let Some(d) = &opts.ca_cert_path {
        add_dir(&mut store, d)?;
    }
    store.add_parsable_certificates(opts.ca_der.iter().map(|d| CertificateDer::from(d.clone())));
    Ok(Arc::new(store))
}

/// Wraps the WebPKI verifier to implement CERT_NONE and `check_hostname=False`.
#[derive(Debug)]
struct Verifier {
    inner: Arc<WebPkiServerVerifier>,
    verify_chain: bool,
    verify_name: bool,
}

impl ServerCertVerifier for Verifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if !self.verify_chain {
            return Ok(ServerCertVerified::assertion());
        }
        match self.inner.verify_server_cert(end_entity, intermediates, server_name, ocsp, now) {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) if !self.verify_name => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }
    fn verify_tls12_signature(&self, m: &[u8], c: &CertificateDer<'_>, d: &DigitallySignedStruct) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(m, c, d)
    }
    fn verify_tls13_signature(&self, m: &[u8], c: &CertificateDer<'_>, d: &DigitallySignedStruct) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(m, c, d)
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// Builds (and caches) the client configuration for these options.
pub fn client_config(opts: &TlsOptions) -> Result<Arc<ClientConfig>, TlsError> {
    static CACHE: OnceLock<Mutex<HashMap<(TlsOptions, Vec<Option<String>>), Arc<ClientConfig>>>> = OnceLock::new();
    let env: Vec<Option<String>> = ["SSL_CERT_FILE", "SSL_CERT_DIR", "WEBSOCKET_CLIENT_CA_BUNDLE", "SSLKEYLOGFILE"]
        .iter()
        .map(|k| std::env::var(k).ok())
        .collect();
    let key = (opts.clone(), env);
    let cache = CACHE.get_or_init(|| Mutex::new(HashMap::new()));
    if let Some(c) = cache.lock().unwrap().get(&key) {
        return Ok(c.clone());
    }
    if opts.cert_reqs == CertReqs::None && opts.check_hostname {
        return Err(TlsError::Config("Cannot set verify_mode to CERT_NONE when check_hostname is enabled.".into()));
    }
    let roots = roots(opts)?;
    let webpki = WebPkiServerVerifier::builder_with_provider(roots, provider())
        .build()
        .map_err(|e| TlsError::Config(format!("SSL verifier setup failed: {e}")))?;
    let verifier = Arc::new(Verifier {
        inner: webpki,
        verify_chain: opts.cert_reqs != CertReqs::None,
        verify_name: opts.check_hostname,
    });
    let versions: &[&rustls::SupportedProtocolVersion] = match opts.min_version {
        Some(13) => &[&rustls::version::TLS13],
        _ => rustls::DEFAULT_VERSIONS,
    };
    let builder = ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(versions)
        .map_err(|e| TlsError::Config(format!("{e}")))?
        .dangerous()
        .with_custom_certificate_verifier(verifier);
    let mut config = match &opts.certfile {
        Some(certfile) => {
            let chain = load_pem_certs(certfile)?;
            let keypath = opts.keyfile.as_ref().unwrap_or(certfile);
            if opts.password.is_some() {
                let pem = std::fs::read_to_string(keypath).unwrap_or_default();
                if pem.contains("ENCRYPTED") {
                    return Err(TlsError::Config(
                        "SSL client certificate load failed: encrypted private keys are not supported yet; decrypt the key file".into(),
                    ));
                }
            }
            let key = PrivateKeyDer::from_pem_file(keypath)
                .map_err(|e| TlsError::Config(format!("SSL client key load failed: {}: {e}", keypath.display())))?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| TlsError::Config(format!("SSL client certificate load failed: {e}")))?
        }
        None => builder.with_no_client_auth(),
    };
    config.key_log = Arc::new(rustls::KeyLogFile::new());
    let config = Arc::new(config);
    cache.lock().unwrap().insert(key, config.clone());
    Ok(config)
}

pub fn server_name(host: &str) -> Result<ServerName<'static>, TlsError> {
    let h = host.trim_start_matches('[').trim_end_matches(']');
    ServerName::try_from(h.to_string()).map_err(|e| TlsError::Config(format!("invalid server hostname {host:?}: {e}")))
}
