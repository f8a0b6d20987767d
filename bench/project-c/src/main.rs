//! C-heavy benchmark program: fills an in-memory SQLite database with
//! synthetic records, queries it, compresses the result with zstd and prints
//! sizes and sums. The output depends only on `--records` and `--seed`.

use std::process::ExitCode;

use rusqlite::Connection;

/// A small deterministic generator (SplitMix64), so that the output does not
/// depend on a random-number crate.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

fn parse_args() -> Result<(usize, u64), String> {
    let (mut records, mut seed) = (1000usize, 1u64);
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let value = args.next().ok_or_else(|| format!("{arg} needs a value"))?;
        match arg.as_str() {
            "--records" => records = value.parse().map_err(|e| format!("--records: {e}"))?,
            "--seed" => seed = value.parse().map_err(|e| format!("--seed: {e}"))?,
            _ => return Err(format!("unknown argument {arg} (known: --records N, --seed S)")),
        }
    }
    Ok((records, seed))
}

fn run(records: usize, seed: u64) -> rusqlite::Result<()> {
    let db = Connection::open_in_memory()?;
    db.execute_batch(
        "CREATE TABLE record (id INTEGER PRIMARY KEY, level TEXT NOT NULL, value INTEGER NOT NULL, message TEXT NOT NULL);",
    )?;
    let mut rng = SplitMix(seed);
    {
        let mut insert = db.prepare("INSERT INTO record (level, value, message) VALUES (?1, ?2, ?3)")?;
        for i in 0..records {
            let r = rng.next();
            let level = ["debug", "info", "warn", "error"][(r % 4) as usize];
            let value = (r >> 8) % 10_000;
            insert.execute((level, value as i64, format!("record {i} with value {value}")))?;
        }
    }

    let mut per_level = db.prepare(
        "SELECT level, COUNT(*), SUM(value), MAX(length(message)) FROM record GROUP BY level ORDER BY level",
    )?;
    let rows = per_level.query_map([], |row| {
        Ok((row.get::<_, String>(0)?, row.get::<_, i64>(1)?, row.get::<_, i64>(2)?, row.get::<_, i64>(3)?))
    })?;
    for row in rows {
        let (level, count, sum, longest) = row?;
        println!("{level:<5} count={count} sum={sum} longest_message={longest}");
    }

    let mut dump = String::new();
    let mut all = db.prepare("SELECT id, level, value, message FROM record ORDER BY value, id")?;
    let mut rows = all.query([])?;
    while let Some(row) = rows.next()? {
        let (id, level, value, message): (i64, String, i64, String) =
            (row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?);
        dump.push_str(&format!("{id}\t{level}\t{value}\t{message}\n"));
    }
    let compressed = zstd::encode_all(dump.as_bytes(), 3).expect("zstd compresses a buffer");
    let restored = zstd::decode_all(compressed.as_slice()).expect("zstd decompresses its own output");
    assert_eq!(restored, dump.as_bytes(), "zstd round trip");
    let checksum = dump.bytes().fold(0u64, |acc, b| acc.wrapping_mul(31).wrapping_add(u64::from(b)));
    println!(
        "dump bytes={} zstd bytes={} checksum={checksum:016x} sqlite={} zstd={}",
        dump.len(),
        compressed.len(),
        rusqlite::version(),
        zstd::zstd_safe::version_number()
    );
    Ok(())
}

fn main() -> ExitCode {
    let (records, seed) = match parse_args() {
        Ok(v) => v,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    match run(records, seed) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
