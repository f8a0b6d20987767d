//! Sample application for the cargo-xcache benchmark.
//!
//! It is small on purpose: what matters for the benchmark is its dependency
//! graph (proc-macros, build scripts, ~125 compilation units). The code still
//! exercises every dependency so none of them is dead weight.

use std::io::Write as _;

use anyhow::{Context as _, Result};
use base64::Engine as _;
use bytes::{BufMut as _, BytesMut};
use chrono::{DateTime, Utc};
use clap::{Parser, ValueEnum};
use futures::stream::{self, StreamExt as _};
use indexmap::IndexMap;
use itertools::Itertools as _;
use rand::{Rng as _, SeedableRng as _};
use rayon::prelude::*;
use regex::Regex;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use tracing::{debug, info, instrument};
use uuid::Uuid;

#[derive(Debug, Clone, Copy, ValueEnum, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
enum Format {
    Json,
    Toml,
}

/// Generate, filter and summarise a batch of synthetic log records.
#[derive(Debug, Parser)]
#[command(name = "xcache-bench-project", version)]
struct Cli {
    /// How many records to generate.
    #[arg(long, default_value_t = 200, env = "BENCH_RECORDS")]
    records: usize,
    /// Only keep records whose message matches this regex.
    #[arg(long, default_value = r"^(GET|POST) /api/v\d+/")]
    filter: String,
    /// Output format of the summary.
    #[arg(long, value_enum, default_value_t = Format::Json)]
    format: Format,
    /// Seed of the random generator (the output is deterministic for a seed).
    #[arg(long, default_value_t = 42)]
    seed: u64,
}

#[derive(Debug, thiserror::Error)]
enum AppError {
    #[error("invalid filter regex `{pattern}`")]
    BadFilter {
        pattern: String,
        #[source]
        source: regex::Error,
    },
    #[error("no record matched the filter")]
    NothingMatched,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Record {
    id: Uuid,
    at: DateTime<Utc>,
    status: u16,
    message: String,
}

#[derive(Debug, Serialize, Deserialize)]
struct Summary {
    format: Format,
    kept: usize,
    by_status: IndexMap<String, usize>,
    digest: String,
    compressed_b64_len: usize,
    slowest_paths: Vec<String>,
}

fn generate(count: usize, seed: u64) -> Vec<Record> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let verbs = ["GET", "POST", "PUT", "DELETE"];
    let base = DateTime::<Utc>::from_timestamp(1_700_000_000, 0).expect("valid timestamp");
    (0..count)
        .map(|i| {
            let verb = verbs[rng.random_range(0..verbs.len())];
            let version = rng.random_range(1..=3);
            let status = [200u16, 201, 404, 500][rng.random_range(0..4)];
            let mut id_bytes = [0u8; 16];
            rng.fill(&mut id_bytes);
            Record {
                id: uuid::Builder::from_random_bytes(id_bytes).into_uuid(),
                at: base + chrono::Duration::milliseconds(i as i64 * 250),
                status,
                message: format!("{verb} /api/v{version}/items/{}", rng.random_range(0..1000)),
            }
        })
        .collect()
}

#[instrument(skip(records))]
fn digest(records: &[Record]) -> Result<String> {
    // Hash every record in parallel, then fold the hashes in order.
    let hashes: Vec<[u8; 32]> = records
        .par_iter()
        .map(|r| {
            let json = serde_json::to_vec(r).expect("record serialises");
            Sha256::digest(&json).into()
        })
        .collect();
    let mut total = Sha256::new();
    for h in &hashes {
        total.update(h);
    }
    Ok(hex::encode(total.finalize()))
}

fn compress(records: &[Record]) -> Result<Vec<u8>> {
    let mut buf = BytesMut::new();
    for r in records {
        buf.put_slice(r.message.as_bytes());
        buf.put_u8(b'\n');
    }
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(&buf.freeze())?;
    Ok(enc.finish()?)
}

async fn summarise(cli: &Cli, records: Vec<Record>) -> Result<Summary> {
    let re = Regex::new(&cli.filter).map_err(|source| AppError::BadFilter {
        pattern: cli.filter.clone(),
        source,
    })?;

    // Filter concurrently on the runtime, a few records per task.
    let kept: Vec<Record> = stream::iter(records.chunks(16).map(<[Record]>::to_vec))
        .map(|chunk| {
            let re = re.clone();
            tokio::spawn(async move {
                chunk
                    .into_iter()
                    .filter(|r| re.is_match(&r.message))
                    .collect::<Vec<_>>()
            })
        })
        .buffered(4)
        .map(|joined| joined.expect("filter task panicked"))
        .concat()
        .await;
    if kept.is_empty() {
        return Err(AppError::NothingMatched.into());
    }
    debug!(kept = kept.len(), "filtered records");

    let (tx, mut rx) = tokio::sync::mpsc::channel::<u16>(32);
    let statuses: Vec<u16> = kept.iter().map(|r| r.status).collect();
    let producer = tokio::spawn(async move {
        for s in statuses {
            tx.send(s).await.expect("receiver alive");
        }
    });
    let mut by_status = IndexMap::new();
    while let Some(s) = rx.recv().await {
        *by_status.entry(s.to_string()).or_insert(0usize) += 1;
    }
    producer.await?;
    by_status.sort_keys();

    let digest = digest(&kept)?;
    let compressed = tokio::task::spawn_blocking({
        let kept = kept.clone();
        move || compress(&kept)
    })
    .await??;
    let b64 = base64::engine::general_purpose::STANDARD.encode(&compressed);

    let slowest_paths = kept
        .iter()
        .sorted_by_key(|r| std::cmp::Reverse(r.at))
        .map(|r| r.message.split_whitespace().nth(1).unwrap_or_default().to_owned())
        .dedup()
        .take(3)
        .collect();

    Ok(Summary {
        format: cli.format,
        kept: kept.len(),
        by_status,
        digest,
        compressed_b64_len: b64.len(),
        slowest_paths,
    })
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();

    let cli = Cli::parse();
    info!(records = cli.records, seed = cli.seed, "generating");
    let records = generate(cli.records, cli.seed);
    let summary = summarise(&cli, records).await.context("summarising records")?;

    let out = match cli.format {
        Format::Json => serde_json::to_string_pretty(&summary)?,
        Format::Toml => toml::to_string(&summary)?,
    };
    println!("{out}");
    Ok(())
}

// What `cargo test` runs in the benchmark's test mode (XCACHE_BENCH_COMMAND=test).
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_gives_the_same_digest() {
        let a = digest(&generate(50, 7)).unwrap();
        let b = digest(&generate(50, 7)).unwrap();
        assert_eq!(a, b);
        assert_ne!(a, digest(&generate(50, 8)).unwrap());
    }

    #[test]
    fn records_compress() {
        assert!(!compress(&generate(50, 7)).unwrap().is_empty());
    }
}
