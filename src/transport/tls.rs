//! TLS client configuration with rustls: trust roots, `sslopt` verification modes, client
//! certificates, and errors classified the way Python's `ssl` module reports them.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};

use super::keys;

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
    /// Minimum and maximum TLS versions: 12 or 13.
    pub min_version: Option<u8>,
    pub max_version: Option<u8>,
    /// Where to append TLS secrets for Wireshark (SSLKEYLOGFILE, `keylog_filename`).
    pub keylog: Option<PathBuf>,
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
            max_version: None,
            keylog: None,
        }
    }
}

#[derive(Debug, Clone)]
pub enum TlsError {
    /// The certificate check failed: OpenSSL's verify code and reason, as Python reports.
    CertVerify { code: i64, reason: String },
    /// Any other TLS failure (alerts, protocol errors).
    Protocol(String),
    /// The peer closed the connection during the handshake (Python's SSLEOFError).
    Eof(String),
    /// A bad option (missing file, bad PEM...).
    Config(String),
}

impl std::fmt::Display for TlsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TlsError::CertVerify { reason, .. } => {
                write!(f, "[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: {reason}")
            }
            TlsError::Protocol(m) | TlsError::Eof(m) | TlsError::Config(m) => f.write_str(m),
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
    let env: Vec<Option<String>> = ["SSL_CERT_FILE", "SSL_CERT_DIR", "WEBSOCKET_CLIENT_CA_BUNDLE"]
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
    let versions: &[&rustls::SupportedProtocolVersion] = match (opts.min_version, opts.max_version) {
        (Some(13), Some(12)) => {
            return Err(TlsError::Config("SSL version configuration failed: minimum TLS 1.3 is above maximum TLS 1.2".into()))
        }
        (Some(13), _) => &[&rustls::version::TLS13],
        (_, Some(12)) => &[&rustls::version::TLS12],
        _ => rustls::DEFAULT_VERSIONS,
    };
    let builder = ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(versions)
        .map_err(|e| TlsError::Config(format!("{e}")))?
        .dangerous()
        .with_custom_certificate_verifier(verifier);
    let mut config = match &opts.certfile {
        Some(certfile) => {
            let chain = load_pem_certs(certfile).map_err(|_| {
                TlsError::Config(match std::fs::read(certfile) {
                    Err(e) => format!("SSL client certificate loading failed: {}: {e}", certfile.display()),
                    Ok(_) => format!("SSL client certificate loading failed: {}: bad PEM certificate", certfile.display()),
                })
            })?;
            if chain.is_empty() {
                return Err(TlsError::Config(format!(
                    "SSL client certificate loading failed: {}: no certificate found",
                    certfile.display()
                )));
            }
            let keypath = opts.keyfile.as_ref().unwrap_or(certfile);
            let key = keys::load_private_key(keypath, opts.password.as_deref())
                .map_err(|m| TlsError::Config(format!("SSL client certificate loading failed: {}: {m}", keypath.display())))?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| TlsError::Config(format!("SSL client certificate load failed: {e}")))?
        }
        None => builder.with_no_client_auth(),
    };
    if let Some(path) = &opts.keylog {
        config.key_log = Arc::new(KeyLogPath { path: path.clone(), file: Mutex::new(None) });
    }
    let config = Arc::new(config);
    cache.lock().unwrap().insert(key, config.clone());
    Ok(config)
}

/// NSS key log lines appended to a file, as OpenSSL's `keylog_filename` writes them.
struct KeyLogPath {
    path: PathBuf,
    file: Mutex<Option<std::fs::File>>,
}

impl std::fmt::Debug for KeyLogPath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "KeyLogPath({})", self.path.display())
    }
}

impl rustls::KeyLog for KeyLogPath {
    fn log(&self, label: &str, client_random: &[u8], secret: &[u8]) {
        use std::fmt::Write as _;
        use std::io::Write as _;
        let mut line = String::with_capacity(label.len() + 2 * (client_random.len() + secret.len()) + 3);
        line.push_str(label);
        line.push(' ');
        for b in client_random {
            let _ = write!(line, "{b:02x}");
        }
        line.push(' ');
        for b in secret {
            let _ = write!(line, "{b:02x}");
        }
        line.push('\n');
        let mut guard = self.file.lock().unwrap_or_else(|p| p.into_inner());
        if guard.is_none() {
            *guard = std::fs::OpenOptions::new().create(true).append(true).open(&self.path).ok();
        }
        if let Some(f) = guard.as_mut() {
            let _ = f.write_all(line.as_bytes());
        }
    }
}

pub fn server_name(host: &str) -> Result<ServerName<'static>, TlsError> {
    let h = host.trim_start_matches('[').trim_end_matches(']');
    ServerName::try_from(h.to_string()).map_err(|e| TlsError::Config(format!("invalid server hostname {host:?}: {e}")))
}
