//! The syslog sink against real receivers on 127.0.0.1: UDP datagrams, TCP with octet
//! counting (including a receiver that hangs up between batches), and TLS.

#[cfg(test)]
#[path = "sink_support/mod.rs"]
mod support;

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    use crate::support::{append, fast, open_log, wait_for};
    use portcullis_audit::sink::{SinkSet, SinkSpec, SyslogTarget};
    use portcullis_store::testing;
    use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
    use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
    use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, BufReader};
    use tokio::net::{TcpListener, UdpSocket};
    use tokio_util::sync::CancellationToken;

    const SECRET: &str = "sk-live-syslog-7d1e0c";

    type Lines = Arc<Mutex<Vec<String>>>;

    fn seqs(lines: &Lines) -> BTreeSet<u64> {
        lines
            .lock()
            .unwrap()
            .iter()
            .map(|l| syslog_seq(l))
            .collect()
    }

    async fn udp_receiver() -> (String, Lines) {
        let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let address = socket.local_addr().unwrap().to_string();
        let lines: Lines = Arc::default();
        let sink = Arc::clone(&lines);
        tokio::spawn(async move {
            let mut buf = vec![0u8; 65_536];
            loop {
                let n = socket.recv(&mut buf).await.unwrap();
                sink.lock()
                    .unwrap()
                    .push(String::from_utf8(buf[..n].to_vec()).unwrap());
            }
        });
        (address, lines)
    }

    /// Reads octet-counted frames (`LEN SP MSG`) until the stream ends or `limit` frames.
    async fn read_frames<R: AsyncRead + Unpin>(stream: R, lines: &Lines, limit: usize) {
        let mut reader = BufReader::new(stream);
        for _ in 0..limit {
            let mut len = Vec::new();
            if reader.read_until(b' ', &mut len).await.unwrap() == 0 {
                return;
            }
            let len: usize = std::str::from_utf8(&len[..len.len() - 1])
                .unwrap()
                .parse()
                .unwrap();
            let mut message = vec![0u8; len];
            reader.read_exact(&mut message).await.unwrap();
            lines
                .lock()
                .unwrap()
                .push(String::from_utf8(message).unwrap());
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn udp_and_tcp_receivers_get_every_record() {
        let dir = tempfile::tempdir().unwrap();
        let store = testing::sqlite(dir.path()).await.unwrap();
        let log = open_log(&store, dir.path()).await;

        let (udp_address, udp_lines) = udp_receiver().await;
        let tcp = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let tcp_address = tcp.local_addr().unwrap().to_string();
        let tcp_lines: Lines = Arc::default();
        let connections = Arc::new(Mutex::new(0));
        // The receiver hangs up after the first connection's frames were read, once told to.
        let hang_up = Arc::new(tokio::sync::Notify::new());
        {
            let lines = Arc::clone(&tcp_lines);
            let connections = Arc::clone(&connections);
            let hang_up = Arc::clone(&hang_up);
            tokio::spawn(async move {
                loop {
                    let (stream, _) = tcp.accept().await.unwrap();
                    let first = {
                        let mut n = connections.lock().unwrap();
                        *n += 1;
                        *n == 1
                    };
                    let lines = Arc::clone(&lines);
                    let hang_up = Arc::clone(&hang_up);
                    tokio::spawn(async move {
                        if first {
                            tokio::select! {
                                () = read_frames(stream, &lines, usize::MAX) => {}
                                () = hang_up.notified() => {}
                            }
                        } else {
                            read_frames(stream, &lines, usize::MAX).await;
                        }
                    });
                }
            });
        }

        let shutdown = CancellationToken::new();
        let mut sinks = SinkSet::spawn(
            store.clone(),
            vec![
                SinkSpec::Syslog {
                    target: SyslogTarget::Udp(udp_address),
                },
                SinkSpec::Syslog {
                    target: SyslogTarget::Tcp(tcp_address),
                },
            ],
            fast(),
            shutdown.clone(),
        )
        .await
        .unwrap();
        sinks.follow(log.committed());

        append(&log, 0, 150, SECRET).await;
        wait_for(
            Duration::from_secs(15),
            "150 records over UDP and TCP",
            || seqs(&udp_lines) == expected(150) && seqs(&tcp_lines) == expected(150),
        )
        .await;

        // The receiver closes the connection; the next batch goes over a new one.
        hang_up.notify_one();
        tokio::time::sleep(Duration::from_millis(200)).await;
        append(&log, 150, 300, SECRET).await;
        wait_for(
            Duration::from_secs(15),
            "300 records over UDP and TCP",
            || seqs(&udp_lines) == expected(300) && seqs(&tcp_lines) == expected(300),
        )
        .await;
        assert_eq!(*connections.lock().unwrap(), 2, "the sink reconnected once");

        for line in udp_lines
            .lock()
            .unwrap()
            .iter()
            .chain(tcp_lines.lock().unwrap().iter())
        {
            assert!(
                line.starts_with('<') && line.contains(" portcullis "),
                "{line}"
            );
            assert!(
                !line.contains(SECRET),
                "a secret argument reached syslog: {line}"
            );
        }
        // A receiver can read a batch before its sender has recorded it as delivered.
        wait_for(
            Duration::from_secs(15),
            "both sinks reporting every record delivered",
            || {
                sinks
                    .status()
                    .iter()
                    .all(|s| s.lag == 0 && s.delivered_seq == 300)
            },
        )
        .await;
        shutdown.cancel();
        sinks.join().await;
        log.shutdown().await.unwrap();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn tls_receiver_gets_every_record() {
        let dir = tempfile::tempdir().unwrap();
        let store = testing::sqlite(dir.path()).await.unwrap();
        let log = open_log(&store, dir.path()).await;

        // A CA, and a certificate for "localhost" signed by it.
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
        let server_key = KeyPair::generate().unwrap();
        let server_cert = CertificateParams::new(vec!["localhost".to_owned()])
            .unwrap()
            .signed_by(&server_key, &ca)
            .unwrap();
        let ca_file = dir.path().join("ca.pem");
        std::fs::write(&ca_file, ca.pem()).unwrap();

        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let server_config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(
                vec![CertificateDer::from(server_cert.der().to_vec())],
                PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(server_key.serialize_der())),
            )
            .unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(server_config));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let lines: Lines = Arc::default();
        {
            let lines = Arc::clone(&lines);
            tokio::spawn(async move {
                loop {
                    let (stream, _) = listener.accept().await.unwrap();
                    let acceptor = acceptor.clone();
                    let lines = Arc::clone(&lines);
                    tokio::spawn(async move {
                        if let Ok(tls) = acceptor.accept(stream).await {
                            read_frames(tls, &lines, usize::MAX).await;
                        }
                    });
                }
            });
        }

        let shutdown = CancellationToken::new();
        let mut sinks = SinkSet::spawn(
            store.clone(),
            vec![SinkSpec::Syslog {
                target: SyslogTarget::Tls {
                    address: format!("127.0.0.1:{port}"),
                    server_name: "localhost".to_owned(),
                    ca: Some(ca_file),
                },
            }],
            fast(),
            shutdown.clone(),
        )
        .await
        .unwrap();
        sinks.follow(log.committed());
        append(&log, 0, 120, SECRET).await;
        wait_for(Duration::from_secs(15), "120 records over TLS", || {
            seqs(&lines) == expected(120)
        })
        .await;
        assert!(lines.lock().unwrap().iter().all(|l| !l.contains(SECRET)));
        shutdown.cancel();
        sinks.join().await;
        log.shutdown().await.unwrap();
    }

    #[tokio::test]
    async fn tls_refuses_a_certificate_from_another_ca() {
        let dir = tempfile::tempdir().unwrap();
        let store = testing::sqlite(dir.path()).await.unwrap();
        let log = open_log(&store, dir.path()).await;
        // The server presents a self-signed certificate the sink does not trust (public roots).
        let rcgen::CertifiedKey { cert, signing_key } =
            rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let server_config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(
                vec![cert.der().clone()],
                PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(signing_key.serialize_der())),
            )
            .unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(server_config));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let received = Arc::new(Mutex::new(0usize));
        {
            let received = Arc::clone(&received);
            tokio::spawn(async move {
                loop {
                    let (stream, _) = listener.accept().await.unwrap();
                    if let Ok(mut tls) = acceptor.accept(stream).await {
                        let mut buf = Vec::new();
                        let _ = tls.read_to_end(&mut buf).await;
                        *received.lock().unwrap() += buf.len();
                    }
                }
            });
        }
        let shutdown = CancellationToken::new();
        let sinks = SinkSet::spawn(
            store.clone(),
            vec![SinkSpec::Syslog {
                target: SyslogTarget::Tls {
                    address: format!("127.0.0.1:{port}"),
                    server_name: "localhost".to_owned(),
                    ca: None,
                },
            }],
            fast(),
            shutdown.clone(),
        )
        .await
        .unwrap();
        append(&log, 0, 5, SECRET).await;
        sinks.notify();
        wait_for(Duration::from_secs(10), "a failed delivery", || {
            sinks.status()[0].failures > 0
        })
        .await;
        let status = &sinks.status()[0];
        assert!(
            status.last_error.as_deref().unwrap().contains("TLS"),
            "{status:?}"
        );
        assert_eq!(status.delivered_seq, 0);
        assert_eq!(*received.lock().unwrap(), 0);
        shutdown.cancel();
        sinks.join().await;
        log.shutdown().await.unwrap();
    }

    fn expected(n: u64) -> BTreeSet<u64> {
        (1..=n).collect()
    }

    /// The `seq="N"` of an RFC 5424 line.
    fn syslog_seq(line: &str) -> u64 {
        let start = line.find("seq=\"").unwrap() + 5;
        let end = start + line[start..].find('"').unwrap();
        line[start..end].parse().unwrap()
    }
}
