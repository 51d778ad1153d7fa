//! TLS to the collector for both transports (feature `tls`): the system's roots plus the PEM
//! file of `OTEL_EXPORTER_OTLP_CERTIFICATE`, and for mutual TLS the client certificate and key.

use std::sync::Arc;

use rustls_pki_types::pem::PemObject as _;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use crate::config::{ConfigError, ExporterConfig};

fn read(path: &str) -> Result<Vec<u8>, ConfigError> {
    std::fs::read(path).map_err(|source| ConfigError::Certificate {
        path: path.to_owned(),
        source,
    })
}

fn not_pem(path: &str) -> ConfigError {
    ConfigError::Certificate {
        path: path.to_owned(),
        source: std::io::Error::new(std::io::ErrorKind::InvalidData, "no PEM item"),
    }
}

/// tonic's TLS settings for the gRPC channel.
pub(crate) fn grpc(
    config: &ExporterConfig,
) -> Result<tonic::transport::ClientTlsConfig, ConfigError> {
    let mut tls = tonic::transport::ClientTlsConfig::new().with_enabled_roots();
    if let Some(path) = config.certificate_file() {
        tls = tls.ca_certificate(tonic::transport::Certificate::from_pem(read(path)?));
    }
    if let Some((cert, key)) = config.client_identity_files() {
        tls = tls.identity(tonic::transport::Identity::from_pem(
            read(cert)?,
            read(key)?,
        ));
    }
    Ok(tls)
}

/// rustls' client settings for the HTTP transport.
pub(crate) fn http(config: &ExporterConfig) -> Result<rustls::ClientConfig, ConfigError> {
    let url = config.url();
    let mut roots = rustls::RootCertStore::empty();
    // Unreadable system certificates are skipped, as tonic's native roots do.
    let native = rustls_native_certs::load_native_certs();
    roots.add_parsable_certificates(native.certs);
    if let Some(path) = config.certificate_file() {
        let pem = read(path)?;
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&pem)
            .collect::<Result<_, _>>()
            .map_err(|_| not_pem(path))?;
        if certs.is_empty() {
            return Err(not_pem(path));
        }
        roots.add_parsable_certificates(certs);
    }
    let builder = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|_| ConfigError::Tls { url: url.clone() })?
    .with_root_certificates(roots);
    match config.client_identity_files() {
        None => Ok(builder.with_no_client_auth()),
        Some((cert, key)) => {
            let pem = read(cert)?;
            let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&pem)
                .collect::<Result<_, _>>()
                .map_err(|_| not_pem(cert))?;
            if chain.is_empty() {
                return Err(not_pem(cert));
            }
            let key_der = PrivateKeyDer::from_pem_slice(&read(key)?).map_err(|_| not_pem(key))?;
            builder
                .with_client_auth_cert(chain, key_der)
                .map_err(|_| ConfigError::Tls { url })
        }
    }
}

/// Settings for a connector that only ever speaks plain HTTP.
pub(crate) fn unused() -> rustls::ClientConfig {
    rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map(|b| {
            b.with_root_certificates(rustls::RootCertStore::empty())
                .with_no_client_auth()
        })
        // The ring provider supports the default versions; this arm is not reached.
        .unwrap_or_else(|_| {
            rustls::ClientConfig::builder()
                .with_root_certificates(rustls::RootCertStore::empty())
                .with_no_client_auth()
        })
}
