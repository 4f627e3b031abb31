//! The syslog sink: RFC 5424 messages ([`crate::export::syslog_line`]) over UDP (RFC 5426, one
//! datagram a record), TCP (RFC 6587 octet counting: `LEN SP MSG`), TLS (RFC 5425, the same
//! framing inside rustls) or the local `/dev/log` socket.
//!
//! Syslog has no acknowledgements: a batch counts as delivered once written to the socket.
//! Before each batch on a kept TCP/TLS connection the sink checks whether the receiver
//! closed it (a receiver never sends), and on any write error the whole batch is sent again
//! on a new connection.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rustls::{ClientConfig, RootCertStore};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket, UnixDatagram};
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use super::SinkError;
use crate::export::{Origin, syslog_line};
use crate::record::Record;

/// Where and how syslog messages go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SyslogTarget {
    /// A local datagram socket (`/dev/log`).
    Local(PathBuf),
    /// `host:port` over UDP.
    Udp(String),
    /// `host:port` over TCP, octet-counting framing.
    Tcp(String),
    /// `host:port` over TLS; the certificate must be valid for `server_name`, signed by a CA
    /// in `ca` (PEM) or, without it, by a public root (webpki-roots).
    Tls {
        address: String,
        server_name: String,
        ca: Option<PathBuf>,
    },
}

impl SyslogTarget {
    pub fn transport(&self) -> &'static str {
        match self {
            SyslogTarget::Local(_) => "unix",
            SyslogTarget::Udp(_) => "udp",
            SyslogTarget::Tcp(_) => "tcp",
            SyslogTarget::Tls { .. } => "tls",
        }
    }

    /// `udp://host:port`, `unix:///dev/log`, …: no secrets, fit for logs and ids.
    pub fn describe(&self) -> String {
        match self {
            SyslogTarget::Local(path) => format!("unix://{}", path.display()),
            SyslogTarget::Udp(a) | SyslogTarget::Tcp(a) | SyslogTarget::Tls { address: a, .. } => {
                format!("{}://{a}", self.transport())
            }
        }
    }
}

/// An octet-counted frame (RFC 6587 §3.4.1): `LEN SP MSG`, LEN in bytes.
pub fn octet_frame(message: &str) -> String {
    format!("{} {message}", message.len())
}

enum Conn {
    Udp(UdpSocket),
    Unix(UnixDatagram),
    Tcp(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

/// Delivers batches to one syslog receiver, keeping the connection between batches.
pub struct SyslogSink {
    target: SyslogTarget,
    origin: Origin,
    tls: Option<Arc<ClientConfig>>,
    timeout: Duration,
    conn: Option<Conn>,
}

impl std::fmt::Debug for SyslogSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SyslogSink")
            .field("target", &self.target)
            .field("connected", &self.conn.is_some())
            .finish_non_exhaustive()
    }
}

/// The rustls client configuration (aws-lc-rs) trusting `ca` or the public roots.
pub fn tls_client_config(ca: Option<&Path>) -> Result<Arc<ClientConfig>, SinkError> {
    let mut roots = RootCertStore::empty();
    match ca {
        Some(path) => {
            let certs = CertificateDer::pem_file_iter(path).map_err(|e| {
                SinkError::Tls(format!("cannot read CA file {}: {e}", path.display()))
            })?;
            for cert in certs {
                let cert = cert.map_err(|e| {
                    SinkError::Tls(format!("bad certificate in {}: {e}", path.display()))
                })?;
                roots
                    .add(cert)
                    .map_err(|e| SinkError::Tls(format!("CA in {}: {e}", path.display())))?;
            }
            if roots.is_empty() {
                return Err(SinkError::Tls(format!(
                    "no certificate in CA file {}",
                    path.display()
                )));
            }
        }
        None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| SinkError::Tls(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

impl SyslogSink {
    pub fn new(target: SyslogTarget, timeout: Duration) -> Result<SyslogSink, SinkError> {
        let tls = match &target {
            SyslogTarget::Tls { ca, .. } => Some(tls_client_config(ca.as_deref())?),
            _ => None,
        };
        Ok(SyslogSink {
            target,
            origin: Origin::local(),
            tls,
            timeout,
            conn: None,
        })
    }

    async fn connect(&self) -> Result<Conn, SinkError> {
        Ok(match &self.target {
            SyslogTarget::Local(_) => Conn::Unix(UnixDatagram::unbound()?),
            SyslogTarget::Udp(address) => {
                let peer = resolve(address).await?;
                let local = if peer.is_ipv4() {
                    "0.0.0.0:0"
                } else {
                    "[::]:0"
                };
                let socket = UdpSocket::bind(local).await?;
                socket.connect(peer).await?;
                Conn::Udp(socket)
            }
            SyslogTarget::Tcp(address) => {
                let stream = TcpStream::connect(resolve(address).await?).await?;
                stream.set_nodelay(true)?;
                Conn::Tcp(stream)
            }
            SyslogTarget::Tls {
                address,
                server_name,
                ..
            } => {
                let Some(config) = self.tls.clone() else {
                    return Err(SinkError::Tls("no TLS configuration".to_owned()));
                };
                let name = ServerName::try_from(server_name.clone())
                    .map_err(|e| SinkError::Tls(format!("server name {server_name:?}: {e}")))?;
                let stream = TcpStream::connect(resolve(address).await?).await?;
                stream.set_nodelay(true)?;
                let tls = TlsConnector::from(config)
                    .connect(name, stream)
                    .await
                    .map_err(|e| SinkError::Tls(e.to_string()))?;
                Conn::Tls(Box::new(tls))
            }
        })
    }

    /// Sends `batch`; on error the connection is dropped and the next call reconnects.
    pub async fn deliver(&mut self, batch: &[Record]) -> Result<(), SinkError> {
        let result = tokio::time::timeout(self.timeout, self.send(batch)).await;
        match result {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => {
                self.conn = None;
                Err(e)
            }
            Err(_) => {
                self.conn = None;
                Err(SinkError::Timeout(self.timeout))
            }
        }
    }

    async fn send(&mut self, batch: &[Record]) -> Result<(), SinkError> {
        if self.conn.as_ref().is_some_and(peer_closed) {
            self.conn = None;
        }
        if self.conn.is_none() {
            self.conn = Some(self.connect().await?);
        }
        let messages = batch.iter().map(|r| syslog_line(r, &self.origin));
        match &mut self.conn {
            Some(Conn::Udp(socket)) => {
                for message in messages {
                    socket.send(message.as_bytes()).await?;
                }
            }
            Some(Conn::Unix(socket)) => {
                let SyslogTarget::Local(path) = &self.target else {
                    return Err(SinkError::Io(io::Error::other(
                        "unix socket without a path",
                    )));
                };
                for message in messages {
                    socket.send_to(message.as_bytes(), path).await?;
                }
            }
            Some(Conn::Tcp(stream)) => write_frames(stream, messages).await?,
            Some(Conn::Tls(stream)) => write_frames(stream.as_mut(), messages).await?,
            None => return Err(SinkError::Io(io::Error::other("not connected"))),
        }
        Ok(())
    }
}

async fn write_frames<W: AsyncWrite + Unpin>(
    stream: &mut W,
    messages: impl Iterator<Item = String>,
) -> Result<(), SinkError> {
    let mut buffer = Vec::new();
    for message in messages {
        buffer.extend_from_slice(octet_frame(&message).as_bytes());
    }
    stream.write_all(&buffer).await?;
    stream.flush().await?;
    Ok(())
}

/// Whether the receiver closed a stream connection (it never sends, so anything readable —
/// end of stream, a TLS alert — means it is going away).
fn peer_closed(conn: &Conn) -> bool {
    let stream = match conn {
        Conn::Tcp(stream) => stream,
        Conn::Tls(tls) => tls.get_ref().0,
        Conn::Udp(_) | Conn::Unix(_) => return false,
    };
    let mut byte = [0u8; 1];
    !matches!(stream.try_read(&mut byte), Err(e) if e.kind() == io::ErrorKind::WouldBlock)
}

async fn resolve(address: &str) -> Result<std::net::SocketAddr, SinkError> {
    tokio::net::lookup_host(address)
        .await?
        .next()
        .ok_or_else(|| SinkError::Resolve(address.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::octet_frame;

    #[test]
    fn frames_count_bytes_not_chars() {
        let rows = [
            ("abc", "3 abc"),
            ("", "0 "),
            ("ü", "2 ü"),
            ("a b\n", "4 a b\n"),
        ];
        for (message, want) in rows {
            assert_eq!(octet_frame(message), want);
        }
    }
}
