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
    Verify {
        #[arg(long, env = "FUSION_DATA_DIR")]
        data_dir: PathBuf,
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

pub fn run(command: JournalCommand, json: bool) -> anyhow::Result<()> {
    match command {
        JournalCommand::Verify { data_dir } => verify(&data_dir, json),
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
