//! TLS to Postgres with rustls, honouring libpq's `sslmode` in the URL:
//!
//! | `sslmode` | encrypted | server certificate checked |
//! |---|---|---|
//! | `disable` | no | – |
//! | `prefer` (default) | if the server offers it | no |
//! | `require` | yes | no; with a CA file, its chain (as libpq does) |
//! | `verify-ca` | yes | its chain, against the CA file or the system's roots |
//! | `verify-full` | yes | its chain and that it names the host |
//!
//! tokio-postgres itself knows only `disable`, `prefer` and `require`: the verifying
//! modes are taken out of the URL here and become `require` plus a verifier.
//! `sslrootcert` in the URL, or the CA-file setting, names the CA bundle (PEM).

use std::sync::Arc;

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, verify_tls12_signature, verify_tls13_signature};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
};
use tokio_postgres_rustls::MakeRustlsConnect;

/// libpq's `sslmode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SslMode {
    Disable,
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

/// Why TLS to Postgres could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("sslmode must be disable, prefer, require, verify-ca or verify-full (got {0:?})")]
    Mode(String),
    #[error("could not read the CA file {0}")]
    CaFile(String, #[source] rustls::pki_types::pem::Error),
    #[error("the CA file {0} holds no certificate")]
    EmptyCa(String),
    #[error("could not build the TLS configuration")]
    Config(#[source] rustls::Error),
    #[error("could not build the certificate verifier")]
    Verifier(#[source] rustls::client::VerifierBuilderError),
}

/// A URL tokio-postgres understands, and what TLS it asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Split {
    pub url: String,
    pub mode: SslMode,
    pub root_cert: Option<String>,
}

/// Takes `sslmode` and `sslrootcert` out of a URL (`postgres://…?sslmode=…`) or a
/// key/value string (`host=… sslmode=…`), leaving a mode tokio-postgres knows.
///
/// # Errors
/// [`TlsError::Mode`] for an unknown `sslmode`.
pub fn split(url: &str) -> Result<Split, TlsError> {
    let mut mode = None;
    let mut root_cert = None;
    let mut take = |key: &str, value: &str| -> bool {
        match key {
            "sslmode" => {
                mode = Some(value.to_owned());
                true
            }
            "sslrootcert" => {
                root_cert = Some(value.to_owned());
                true
            }
            _ => false,
        }
    };
    let rest = if url.contains("://") {
        let (base, query) = url.split_once('?').unwrap_or((url, ""));
        let kept: Vec<&str> = query
            .split('&')
            .filter(|p| !p.is_empty())
            .filter(|p| {
                let (k, v) = p.split_once('=').unwrap_or((p, ""));
                !take(k, &percent_decode(v))
            })
            .collect();
        (base.to_owned(), kept.join("&"), '?', '&')
    } else {
        let kept: Vec<&str> = url
            .split_whitespace()
            .filter(|p| {
                let (k, v) = p.split_once('=').unwrap_or((p, ""));
                !take(k, v.trim_matches('\''))
            })
            .collect();
        (kept.join(" "), String::new(), ' ', ' ')
    };
    let mode = match mode.as_deref().unwrap_or("prefer") {
        "disable" => SslMode::Disable,
        "prefer" => SslMode::Prefer,
        "require" => SslMode::Require,
        "verify-ca" => SslMode::VerifyCa,
        "verify-full" => SslMode::VerifyFull,
        other => return Err(TlsError::Mode(other.to_owned())),
    };
    let tokio_mode = match mode {
        SslMode::Disable => "disable",
        SslMode::Prefer => "prefer",
        _ => "require",
    };
    let (base, query, first, sep) = rest;
    let url = if first == '?' {
        if query.is_empty() {
            format!("{base}?sslmode={tokio_mode}")
        } else {
            format!("{base}?{query}{sep}sslmode={tokio_mode}")
        }
    } else {
        format!("{base} sslmode={tokio_mode}")
    };
    Ok(Split {
        url,
        mode,
        root_cert,
    })
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let Some(b) = s
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The rustls connector for `mode`, trusting `ca_file` (PEM) or, without one, the
/// system's roots when a mode verifies.
///
/// # Errors
/// [`TlsError`] when the CA file cannot be read or the configuration is refused.
pub fn connector(mode: SslMode, ca_file: Option<&str>) -> Result<MakeRustlsConnect, TlsError> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let roots = || -> Result<Arc<RootCertStore>, TlsError> {
        let mut roots = RootCertStore::empty();
        match ca_file {
            Some(path) => {
                for cert in CertificateDer::pem_file_iter(path)
                    .map_err(|e| TlsError::CaFile(path.to_owned(), e))?
                {
                    let cert = cert.map_err(|e| TlsError::CaFile(path.to_owned(), e))?;
                    roots.add(cert).map_err(TlsError::Config)?;
                }
                if roots.is_empty() {
                    return Err(TlsError::EmptyCa(path.to_owned()));
                }
            }
            None => {
                for cert in rustls_native_certs::load_native_certs().certs {
                    let _ = roots.add(cert);
                }
            }
        }
        Ok(Arc::new(roots))
    };
    let verifier: Arc<dyn ServerCertVerifier> = match (mode, ca_file) {
        (SslMode::VerifyFull, _) => webpki(roots()?, &provider)?,
        (SslMode::VerifyCa, _) | (SslMode::Require, Some(_)) => {
            Arc::new(ChainOnly(webpki(roots()?, &provider)?))
        }
        _ => Arc::new(Unverified(Arc::clone(&provider))),
    };
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(TlsError::Config)?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    Ok(MakeRustlsConnect::new(config))
}

fn webpki(
    roots: Arc<RootCertStore>,
    provider: &Arc<CryptoProvider>,
) -> Result<Arc<WebPkiServerVerifier>, TlsError> {
    WebPkiServerVerifier::builder_with_provider(roots, Arc::clone(provider))
        .build()
        .map_err(TlsError::Verifier)
}

/// `verify-ca`: the chain must lead to a trusted root; the name need not match.
#[derive(Debug)]
struct ChainOnly(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for ChainOnly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp, now)
        {
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

/// `prefer` and `require` without a CA: encrypted, the certificate not checked (libpq's
/// meaning of those modes); the handshake signatures still are.
#[derive(Debug)]
struct Unverified(Arc<CryptoProvider>);

impl ServerCertVerifier for Unverified {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verifying_modes_become_require_and_the_rest_stays() {
        let s = split(
            "postgres://u@db:5432/x?sslmode=verify-full&sslrootcert=%2Fca.pem&application_name=a",
        )
        .ok();
        assert_eq!(
            s,
            Some(Split {
                url: "postgres://u@db:5432/x?application_name=a&sslmode=require".into(),
                mode: SslMode::VerifyFull,
                root_cert: Some("/ca.pem".into()),
            })
        );
        let s = split("postgres://u@db/x").ok();
        assert_eq!(
            s.map(|s| (s.url, s.mode)),
            Some(("postgres://u@db/x?sslmode=prefer".into(), SslMode::Prefer))
        );
        let s = split("host=db user=u sslmode=verify-ca").ok();
        assert_eq!(
            s.map(|s| (s.url, s.mode)),
            Some(("host=db user=u sslmode=require".into(), SslMode::VerifyCa))
        );
        assert!(matches!(
            split("postgres://db/x?sslmode=allow-all"),
            Err(TlsError::Mode(_))
        ));
    }
}
