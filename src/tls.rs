//! Inbound TLS: a rustls server config from the PEM material loaded with the
//! config, advertising h2 and http/1.1 over ALPN.

use std::sync::Arc;

use tokio_rustls::TlsAcceptor;

use crate::config::TlsConfig;

/// Builds the acceptor; fails when the key does not match the certificate.
/// With a client CA, a client must present a certificate from it.
pub fn acceptor(config: &TlsConfig) -> Result<TlsAcceptor, rustls::Error> {
    let builder = rustls::ServerConfig::builder();
    let builder = match &config.client_ca {
        None => builder.with_no_client_auth(),
        Some(cas) => {
            let mut roots = rustls::RootCertStore::empty();
            for ca in cas {
                roots.add(ca.clone())?;
            }
            let verifier = rustls::server::WebPkiClientVerifier::builder(Arc::new(roots))
                .build()
                .map_err(|e| rustls::Error::General(e.to_string()))?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let mut server = builder.with_single_cert(config.certs.clone(), config.key.clone_key())?;
    server.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(server)))
}
