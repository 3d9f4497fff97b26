//! The till's receipt printer (`--printer`): ESC/POS bytes sent to a network printer's raw
//! port (TCP, usually 9100 — what every ESC/POS network printer listens on) or written to a
//! device file (a USB printer's `/dev/usb/lp0`). The register's "Send to printer" uses it
//! through `POST /orders/{id}/receipt/prints?send=printer`.
//!
//! The printer is opened before the print is recorded: an unplugged printer records nothing,
//! so the next try is still the original, not a DUPLICATE.

use std::path::PathBuf;
use std::time::Duration;

use tokio::io::AsyncWriteExt;

/// How long opening the printer and sending one receipt may take.
const TIMEOUT: Duration = Duration::from_secs(5);

/// Where receipts are printed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Printer {
    /// `HOST:PORT` of a network printer's raw port.
    Network(String),
    /// A printer's device file.
    Device(PathBuf),
}

impl std::str::FromStr for Printer {
    type Err = String;

    /// `/dev/usb/lp0` (an absolute path) or `HOST:PORT` (optionally `tcp://HOST:PORT`).
    fn from_str(text: &str) -> Result<Self, String> {
        let text = text.trim();
        if text.starts_with('/') {
            return Ok(Printer::Device(PathBuf::from(text)));
        }
        let address = text.strip_prefix("tcp://").unwrap_or(text);
        match address.rsplit_once(':') {
            Some((host, port)) if !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p > 0) => {
                Ok(Printer::Network(address.to_string()))
            }
            _ => Err(format!(
                "{text:?} is neither HOST:PORT (a network printer, e.g. 192.168.1.50:9100) nor \
                 an absolute device path (e.g. /dev/usb/lp0)"
            )),
        }
    }
}

impl std::fmt::Display for Printer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Printer::Network(address) => write!(f, "tcp://{address}"),
            Printer::Device(path) => write!(f, "{}", path.display()),
        }
    }
}

/// An opened printer, ready for one receipt's bytes.
pub enum Opened {
    Network(tokio::net::TcpStream),
    Device(tokio::fs::File),
}

impl Printer {
    /// Connects to (or opens) the printer; an error says why it cannot print now.
    pub async fn open(&self) -> std::io::Result<Opened> {
        let opening = async {
            match self {
                Printer::Network(address) => {
                    let stream = tokio::net::TcpStream::connect(address.as_str()).await?;
                    stream.set_nodelay(true)?;
                    Ok(Opened::Network(stream))
                }
                // Never created: a missing device is an unplugged printer, not a new file.
                Printer::Device(path) => tokio::fs::OpenOptions::new()
                    .append(true)
                    .open(path)
                    .await
                    .map(Opened::Device),
            }
        };
        timed(opening).await
    }
}

impl Opened {
    /// Sends `bytes` and waits until the printer (or the device) took them all.
    pub async fn send(self, bytes: &[u8]) -> std::io::Result<()> {
        let sending = async {
            match self {
                Opened::Network(mut stream) => {
                    stream.write_all(bytes).await?;
                    stream.shutdown().await
                }
                Opened::Device(mut file) => {
                    file.write_all(bytes).await?;
                    file.flush().await?;
                    // A character device cannot be synced (EINVAL): it took the bytes already.
                    match file.sync_all().await {
                        Err(e) if e.kind() == std::io::ErrorKind::InvalidInput => Ok(()),
                        done => done,
                    }
                }
            }
        };
        timed(sending).await
    }
}

async fn timed<T>(
    work: impl std::future::Future<Output = std::io::Result<T>>,
) -> std::io::Result<T> {
    tokio::time::timeout(TIMEOUT, work)
        .await
        .unwrap_or_else(|_| {
            Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!("the printer did not answer within {} s", TIMEOUT.as_secs()),
            ))
        })
}

#[cfg(test)]
mod tests {
    use super::Printer;

    #[test]
    fn printer_addresses() {
        let cases: &[(&str, Result<Printer, ()>)] = &[
            (
                "192.168.1.50:9100",
                Ok(Printer::Network("192.168.1.50:9100".into())),
            ),
            (
                "tcp://printer.local:9100",
                Ok(Printer::Network("printer.local:9100".into())),
            ),
            ("[::1]:9100", Ok(Printer::Network("[::1]:9100".into()))),
            ("/dev/usb/lp0", Ok(Printer::Device("/dev/usb/lp0".into()))),
            ("printer.local", Err(())),
            ("printer:0", Err(())),
            (":9100", Err(())),
            ("lp0", Err(())),
            ("host:99999", Err(())),
        ];
        for (text, expected) in cases {
            let parsed = text.parse::<Printer>().map_err(|_| ());
            assert_eq!(&parsed, expected, "{text}");
        }
    }
}
