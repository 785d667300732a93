//! Inbound TLS: a rustls server config from the PEM material loaded with the
//! config, advertising h2 and http/1.1 over ALPN.

use std::sync::Arc;

use tokio_rustls::TlsAcceptor;

use crate::config::TlsConfig;

/// Builds the acceptor; fails when the key does not match the certificate.
pub fn acceptor(config: &TlsConfig) -> Result<TlsAcceptor, rustls::Error> {
    let mut server = rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(config.certs.clone(), config.key.clone_key())?;
    server.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(server)))
}
