//! TLS to the database, with rustls: `sslmode=require` (or `verify-full`) in the URL makes
//! farol speak TLS and check the server's certificate and name, against the CA certificates in
//! `sslrootcert=PATH` (PEM) or else the system's. Without it, farol connects in the clear.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use percent_encoding::percent_decode_str;
use postgres::tls::{ChannelBinding, MakeTlsConnect, TlsConnect, TlsStream};
use postgres::{Client, NoTls};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::{Result, StoreError};

/// Where to connect and how: the URL the PostgreSQL client reads, with farol's TLS settings
/// taken out of it and their CA certificates read.
pub(super) struct Target {
    url: String,
    /// `None`: in the clear.
    tls: Option<Rustls>,
}

impl Target {
    pub(super) fn new(url: &str) -> Result<Target> {
        let (url, asked) = split(url)?;
        let tls = match asked {
            Asked::Clear => None,
            Asked::Tls { roots } => Some(Rustls::new(roots.as_deref())?),
        };
        Ok(Target { url, tls })
    }

    pub(super) fn connect(&self) -> Result<Client> {
        let client = match &self.tls {
            Some(tls) => Client::connect(&self.url, tls.clone()),
            None => Client::connect(&self.url, NoTls),
        };
        // The caller names the server (`Location`'s display leaves the password out).
        client.map_err(|e| StoreError::Schema(format!("cannot connect: {}", farol_model::error_chain(&e))))
    }
}

/// Whether `url` is one that farol can connect with, without connecting or reading files.
pub(crate) fn check(url: &str) -> Result<()> {
    let (url, _) = split(url)?;
    url.parse::<postgres::Config>().map_err(|e| StoreError::Schema(e.to_string()))?;
    Ok(())
}

/// What a URL asks of the connection.
#[derive(Debug, PartialEq)]
enum Asked {
    Clear,
    /// TLS, checked against the CA certificates of this file, or else the system's.
    Tls {
        roots: Option<String>,
    },
}

/// The URL for the client (without `sslrootcert`, which it does not know) and what it asks.
fn split(url: &str) -> Result<(String, Asked)> {
    let (base, query) = url.split_once('?').unwrap_or((url, ""));
    let (mut verify, mut roots) = (false, None);
    let mut kept = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        match pair.split_once('=').unwrap_or((pair, "")) {
            ("sslrootcert", path) => roots = Some(percent_decode_str(path).decode_utf8_lossy().into_owned()),
            ("sslmode", "require" | "verify-full") => {
                verify = true;
                kept.push("sslmode=require");
            }
            ("sslmode", "disable" | "prefer") => {}
            ("sslmode", other) => {
                return Err(StoreError::Schema(format!(
                    "sslmode={other}: farol knows disable (the default) and require (TLS, the server's \
                     certificate and name checked)"
                )));
            }
            _ => kept.push(pair),
        }
    }
    if roots.is_some() && !verify {
        return Err(StoreError::Schema("sslrootcert without sslmode=require: add sslmode=require".into()));
    }
    let url = if kept.is_empty() { base.to_owned() } else { format!("{base}?{}", kept.join("&")) };
    Ok((url, if verify { Asked::Tls { roots } } else { Asked::Clear }))
}

/// The TLS side of a connection to the database.
#[derive(Clone)]
pub(super) struct Rustls(Arc<rustls::ClientConfig>);

impl Rustls {
    fn new(roots: Option<&str>) -> Result<Rustls> {
        let mut store = rustls::RootCertStore::empty();
        match roots {
            Some(path) => {
                let certs = CertificateDer::pem_file_iter(path)
                    .and_then(|certs| certs.collect::<std::result::Result<Vec<_>, _>>())
                    .map_err(|e| StoreError::Schema(format!("sslrootcert={path}: {e}")))?;
                let (added, _) = store.add_parsable_certificates(certs);
                if added == 0 {
                    return Err(StoreError::Schema(format!("sslrootcert={path}: no CA certificate in it")));
                }
            }
            None => {
                store.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
            }
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| StoreError::Schema(format!("TLS: {e}")))?
            .with_root_certificates(store)
            .with_no_client_auth();
        Ok(Rustls(Arc::new(config)))
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin + Send + 'static> MakeTlsConnect<S> for Rustls {
    type Stream = Stream<S>;
    type TlsConnect = Connect;
    type Error = io::Error;

    fn make_tls_connect(&mut self, host: &str) -> io::Result<Connect> {
        let name = ServerName::try_from(host.to_owned()).map_err(io::Error::other)?;
        Ok(Connect(tokio_rustls::TlsConnector::from(Arc::clone(&self.0)), name))
    }
}

pub(super) struct Connect(tokio_rustls::TlsConnector, ServerName<'static>);

impl<S: AsyncRead + AsyncWrite + Unpin + Send + 'static> TlsConnect<S> for Connect {
    type Stream = Stream<S>;
    type Error = io::Error;
    type Future = Pin<Box<dyn Future<Output = io::Result<Stream<S>>> + Send>>;

    fn connect(self, stream: S) -> Self::Future {
        Box::pin(async move { self.0.connect(self.1, stream).await.map(Stream) })
    }
}

pub(super) struct Stream<S>(tokio_rustls::client::TlsStream<S>);

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for Stream<S> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for Stream<S> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> TlsStream for Stream<S> {
    fn channel_binding(&self) -> ChannelBinding {
        ChannelBinding::none()
    }
}

#[cfg(test)]
mod tests {
    use super::{Asked, Target, split};

    #[test]
    fn the_url_keeps_what_the_client_reads_and_farol_takes_the_tls_settings() {
        let search = "postgres://u@db/farol?options=-c%20search_path%3Dx";
        assert_eq!(split(search).unwrap(), (search.to_owned(), Asked::Clear));
        assert_eq!(
            split("postgres://u@db/farol?sslmode=disable").unwrap(),
            ("postgres://u@db/farol".into(), Asked::Clear)
        );
        assert_eq!(
            split("postgres://u@db/farol?sslmode=verify-full&application_name=farol&sslrootcert=%2Fetc%2Fca.pem")
                .unwrap(),
            (
                "postgres://u@db/farol?sslmode=require&application_name=farol".into(),
                Asked::Tls { roots: Some("/etc/ca.pem".into()) }
            )
        );
        let missing = Target::new("postgres://u@db/f?sslmode=require&sslrootcert=%2Fnowhere%2Fca.pem").err().unwrap();
        assert!(missing.to_string().contains("sslrootcert=/nowhere/ca.pem"), "{missing}");
        let alone = split("postgres://u@db/f?sslrootcert=ca.pem").err().unwrap();
        assert!(alone.to_string().contains("add sslmode=require"), "{alone}");
        assert!(split("postgres://u@db/f?sslmode=allow").is_err());
    }
}
