//! `fusion node backup|restore|verify`: consistent copies of a serving node's store, and checks.

use std::path::Path;

use anyhow::{Context, anyhow};
use fusion_node::store::{self, DB_FILE};

use crate::client::{Client, Target};

/// Fetches a snapshot of the serving node into `out/fusion.redb` and verifies it.
pub async fn backup(out: &Path, target: &Target) -> anyhow::Result<()> {
    let dest = out.join(DB_FILE);
    if dest.exists() {
        return Err(anyhow!("{} already holds a store", out.display()));
    }
    create_private_dir(out)?;
    let client = Client::new(target)?;
    let partial = out.join(format!("{DB_FILE}.partial"));
    let mut shown = 0u64;
    let (bytes, headers) = client
        .download("/backup", &partial, |done, total| {
            // A line per 16 MiB (and the last): long backups show they progress.
            if done - shown >= 16 << 20 || Some(done) == total {
                shown = done;
                match total {
                    Some(t) => eprintln!("backup: {} / {} MiB", done >> 20, t >> 20),
                    None => eprintln!("backup: {} MiB", done >> 20),
                }
            }
        })
        .await?;
    std::fs::rename(&partial, &dest)
        .with_context(|| format!("moving the backup into {}", dest.display()))?;
    let last_seq = headers
        .get("x-fusion-last-seq")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("?")
        .to_string();
    let report = store::verify(out).context("the backup does not verify")?;
    println!(
        "backup {}: {bytes} bytes, events 1..={last_seq}, {} products, {} documents; verified",
        dest.display(),
        report.products,
        report.documents
    );
    Ok(())
}

/// Copies a verified backup into a new data dir.
pub fn restore(from: &Path, into: &Path) -> anyhow::Result<()> {
    let report = store::verify(from).context("the backup does not verify")?;
    let dest = into.join(DB_FILE);
    if dest.exists() {
        return Err(anyhow!(
            "{} already holds a store; restore into a new data dir",
            into.display()
        ));
    }
    create_private_dir(into)?;
    let partial = into.join(format!("{DB_FILE}.partial"));
    std::fs::copy(from.join(DB_FILE), &partial)
        .with_context(|| format!("copying into {}", into.display()))?;
    std::fs::File::open(&partial)
        .and_then(|f| f.sync_all())
        .with_context(|| format!("syncing {}", partial.display()))?;
    std::fs::rename(&partial, &dest)?;
    println!(
        "restored {} events into {}. The node there keeps the original's node id and tokens; \
         its sync identity (identity.key) is not part of a backup: a new one is made at first \
         start, to enroll at the hub again. Run it instead of the original, never beside it.",
        report.events,
        into.display()
    );
    Ok(())
}

pub fn verify(data_dir: &Path) -> anyhow::Result<()> {
    let report = store::verify(data_dir)
        .with_context(|| format!("{} does not verify", data_dir.display()))?;
    println!(
        "ok: {} events without a gap, projections equal a replay, {} products equal their documents ({} documents)",
        report.events, report.products, report.documents
    );
    Ok(())
}

fn create_private_dir(dir: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .with_context(|| format!("creating {}", dir.display()))
}
