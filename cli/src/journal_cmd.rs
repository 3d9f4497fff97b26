//! `fusion journal`: the node's signed, hash-chained journal, checked and exported offline
//! (`docs/JOURNAL.md`).

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Subcommand;
use fusion_node::domain::journal::hex;
use fusion_node::store::{self, VerifyError};

#[derive(Subcommand)]
pub enum JournalCommand {
    /// Check a stopped node's journal (or a backup's) from genesis: every event in its place,
    /// its hash chained to the one before, every checkpoint signed by the node's key, every
    /// event one its origin may write. Names the first bad record; exits 1 if there is one.
    ///
    /// With --hub-url and --origin it checks the journal of that origin as the hub holds it
    /// (`GET /journal/{origin}`), with --file an export; both by the same rules, offline from
    /// there on.
    Verify {
        #[arg(long, env = "FUSION_DATA_DIR", required_unless_present_any = ["hub_url", "file"])]
        data_dir: Option<PathBuf>,
        /// Base URL of a hub whose copy of --origin's journal to check.
        #[arg(long, requires = "origin", conflicts_with_all = ["data_dir", "file"])]
        hub_url: Option<String>,
        /// The origin (a till's node id, or one of the hub's) to fetch from --hub-url.
        #[arg(long)]
        origin: Option<String>,
        /// File holding the hub's token (else FUSION_TOKEN).
        #[arg(long)]
        token_file: Option<PathBuf>,
        /// An export (`fusion journal export`, `GET /journal/{origin}`) to check.
        #[arg(long, conflicts_with = "data_dir")]
        file: Option<PathBuf>,
        /// The origin's public key you trust (hex, its endpoint id): else the export's own.
        #[arg(long)]
        key: Option<String>,
    },
    /// Write an auditor's export of a stopped node's journal: JSON lines, a header with the
    /// origin and its public keys, then each event with its hash, the hash before it, its
    /// logged bytes and the checkpoint signatures. It runs on to the first checkpoint at or
    /// after --to, so that a signature covers every line.
    Export {
        #[arg(long, env = "FUSION_DATA_DIR")]
        data_dir: PathBuf,
        /// First seq [default: 1].
        #[arg(long, default_value_t = 1)]
        from: u64,
        /// Last seq wanted [default: the end].
        #[arg(long, default_value_t = u64::MAX)]
        to: u64,
        /// File to write [default: stdout].
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

pub async fn run(command: JournalCommand, json: bool) -> anyhow::Result<()> {
    match command {
        JournalCommand::Verify {
            data_dir: Some(data_dir),
            ..
        } => verify(&data_dir, json),
        JournalCommand::Verify {
            hub_url: Some(url),
            origin: Some(origin),
            token_file,
            key,
            ..
        } => {
            let client = crate::client::Client::new(&crate::client::Target {
                url: url.clone(),
                token_file,
                data_dir: None,
            })?;
            let path = format!("/journal/{origin}");
            let text = client
                .text::<()>(reqwest::Method::GET, &path, None)
                .await
                .with_context(|| format!("fetching {origin}'s journal from {url}"))?;
            verify_export_text(&text, key.as_deref(), &format!("{url}{path}"), json)
        }
        JournalCommand::Verify {
            file: Some(file),
            key,
            ..
        } => {
            let text = std::fs::read_to_string(&file)
                .with_context(|| format!("reading {}", file.display()))?;
            verify_export_text(&text, key.as_deref(), &file.display().to_string(), json)
        }
        JournalCommand::Verify { .. } => {
            anyhow::bail!("say which journal: --data-dir, --hub-url with --origin, or --file")
        }
        JournalCommand::Export {
            data_dir,
            from,
            to,
            out,
        } => export(&data_dir, from, to, out.as_deref()),
    }
}

fn verify(data_dir: &Path, json: bool) -> anyhow::Result<()> {
    match store::verify_journal(data_dir) {
        Ok(store::VerifiedJournal {
            origin,
            keys,
            report,
        }) => {
            if json {
                let keys: Vec<_> = keys
                    .iter()
                    .map(|(seq, k)| serde_json::json!({"fromSeq": seq, "publicKey": hex(k)}))
                    .collect();
                println!(
                    "{}",
                    serde_json::json!({
                        "ok": true,
                        "origin": origin.as_str(),
                        "events": report.head,
                        "signedUpTo": report.signed,
                        "checkpoints": report.checkpoints,
                        "keys": keys,
                    })
                );
            } else {
                println!(
                    "ok: journal of {origin}: {} events, chained from genesis, {} checkpoints, signed up to seq {}",
                    report.head, report.checkpoints, report.signed
                );
                for (seq, key) in keys {
                    println!("  signed from seq {seq} by key {}", hex(&key));
                }
            }
            Ok(())
        }
        Err(VerifyError::Journal(fault)) => {
            if json {
                println!(
                    "{}",
                    serde_json::json!({
                        "ok": false,
                        "seq": fault.seq(),
                        "rule": fault.rule(),
                        "error": fault.to_string(),
                    })
                );
            }
            anyhow::bail!(
                "the journal in {} is damaged at seq {}: {fault}",
                data_dir.display(),
                fault.seq()
            )
        }
        Err(other) => {
            Err(other).with_context(|| format!("checking the journal in {}", data_dir.display()))
        }
    }
}

fn export(data_dir: &Path, from: u64, to: u64, out: Option<&Path>) -> anyhow::Result<()> {
    let mut sink: Box<dyn Write> = match out {
        Some(path) => Box::new(std::io::BufWriter::new(
            std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?,
        )),
        None => Box::new(std::io::BufWriter::new(std::io::stdout().lock())),
    };
    let last = store::export_journal(data_dir, from, to, &mut sink)
        .with_context(|| format!("exporting the journal in {}", data_dir.display()))?;
    sink.flush().context("writing the export")?;
    if out.is_some() {
        eprintln!("exported seq {from} to {last}");
    }
    Ok(())
}

/// What an export proved.
#[derive(Debug, PartialEq, Eq)]
pub struct ExportReport {
    pub origin: String,
    pub from: u64,
    pub last: u64,
    pub checkpoints: u64,
}

/// Why an export does not verify, at its first bad line.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("seq {seq}: {reason}")]
pub struct ExportFault {
    pub seq: u64,
    pub reason: String,
}

/// Checks an export (`docs/JOURNAL.md`) by the rulebook's journal rules: every line in its
/// place, chained from the header's hash, its envelope hashing to its hash and naming its
/// place, its event one its origin may write, its JSON the envelope's; every checkpoint
/// signed by the key in force (or `trusted`, when given); the last line covered.
pub fn verify_export(text: &str, trusted: Option<&[u8; 32]>) -> Result<ExportReport, ExportFault> {
    use fusion_contracts::journal::{EXPORT_FORMAT, ExportHeader, ExportLine, unhex};
    use fusion_node::domain::journal::{Checkpoint, Verifier};
    let fault = |seq, reason: String| ExportFault { seq, reason };
    let mut lines = text.lines().filter(|l| !l.trim().is_empty());
    let header: ExportHeader = lines
        .next()
        .ok_or_else(|| fault(0, "the export is empty".into()))
        .and_then(|l| serde_json::from_str(l).map_err(|e| fault(0, format!("its header: {e}"))))?;
    if header.journal != EXPORT_FORMAT {
        return Err(fault(0, format!("it is not a {EXPORT_FORMAT} export")));
    }
    let origin = fusion_contracts::NodeId::new(header.origin.clone())
        .map_err(|e| fault(0, format!("its origin: {e}")))?;
    let bytes32 = |text: &str, what: &str, seq| -> Result<[u8; 32], ExportFault> {
        unhex(text)
            .and_then(|b| <[u8; 32]>::try_from(b).ok())
            .ok_or_else(|| fault(seq, format!("its {what} is not 32 bytes of hex")))
    };
    let mut keys = Vec::new();
    for k in &header.keys {
        keys.push((k.from_seq, bytes32(&k.public_key, "key", 0)?));
    }
    if let Some(key) = trusted {
        keys = vec![(1, *key)];
    }
    let first = header.from_seq.max(1);
    let mut verifier = Verifier::resume(origin, first - 1, bytes32(&header.prev, "prev", 0)?);
    let mut checkpoints = 0;
    for text in lines {
        let expected = verifier.head().0 + 1;
        let line: ExportLine = serde_json::from_str(text)
            .map_err(|e| fault(expected, format!("the line is not an export line: {e}")))?;
        if bytes32(&line.prev, "prev", line.seq)? != verifier.head().1 && line.seq == expected {
            return Err(fault(
                line.seq,
                "its prev is not the hash of the line before".into(),
            ));
        }
        let envelope = unhex(&line.envelope)
            .ok_or_else(|| fault(line.seq, "its envelope is not hex".into()))?;
        let hash = bytes32(&line.hash, "hash", line.seq)?;
        verifier
            .event(line.seq, &envelope, Some(&hash))
            .map_err(|f| fault(f.seq(), f.to_string()))?;
        let record = fusion_contracts::Envelope::decode(&envelope)
            .and_then(|e| e.to_record())
            .map_err(|e| fault(line.seq, e.to_string()))?;
        if record.event_id != line.event.event_id
            || record.payload.get() != line.event.payload.get()
        {
            return Err(fault(
                line.seq,
                "its JSON event is not the one its envelope holds".into(),
            ));
        }
        if let Some(signature) = &line.checkpoint {
            let signature = unhex(signature)
                .and_then(|b| <[u8; 64]>::try_from(b).ok())
                .ok_or_else(|| fault(line.seq, "its checkpoint is not 64 bytes of hex".into()))?;
            let key = *fusion_node::domain::journal::key_at(&keys, line.seq)
                .ok_or_else(|| fault(line.seq, "no key is in force at this seq".into()))?;
            let cp = Checkpoint {
                seq: line.seq,
                hash,
                signature,
            };
            verifier
                .checkpoint(&cp, &key)
                .map_err(|f| fault(f.seq(), f.to_string()))?;
            checkpoints += 1;
        }
    }
    let (last, _) = verifier.head();
    if verifier.signed() < last {
        return Err(fault(
            verifier.signed() + 1,
            format!(
                "no checkpoint covers seq {} to {last}",
                verifier.signed() + 1
            ),
        ));
    }
    Ok(ExportReport {
        origin: header.origin,
        from: first,
        last,
        checkpoints,
    })
}

fn verify_export_text(text: &str, key: Option<&str>, what: &str, json: bool) -> anyhow::Result<()> {
    let key = match key {
        Some(k) => Some(
            fusion_contracts::journal::unhex(k)
                .and_then(|b| <[u8; 32]>::try_from(b).ok())
                .context("--key must be 64 hex digits (an endpoint id)")?,
        ),
        None => None,
    };
    match verify_export(text, key.as_ref()) {
        Ok(report) => {
            if json {
                println!(
                    "{}",
                    serde_json::json!({
                        "ok": true,
                        "origin": report.origin,
                        "fromSeq": report.from,
                        "events": report.last,
                        "checkpoints": report.checkpoints,
                    })
                );
            } else {
                println!(
                    "ok: journal of {} from seq {} to {}: chained, {} checkpoints, every line signed",
                    report.origin, report.from, report.last, report.checkpoints
                );
            }
            Ok(())
        }
        Err(fault) => {
            if json {
                println!(
                    "{}",
                    serde_json::json!({ "ok": false, "seq": fault.seq, "error": fault.reason })
                );
            }
            anyhow::bail!("the journal in {what} is damaged at {fault}")
        }
    }
}
