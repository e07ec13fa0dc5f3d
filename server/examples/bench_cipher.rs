//! Throughput of the at-rest cipher: seals `--mib` MiB into the memory blob
//! store, opens it whole, and opens random 1 MiB ranges, printing MiB/s for
//! each (compare with the plaintext copy figure printed first).
//!
//!   cargo run --release -p bleepstore --example bench_cipher -- --mib 512
//!
//! Prints figures; asserts nothing about time.

use bleepstore::crypto::{read_sealed, seal_body};
use bleepstore::storage::{BlobId, BlobStore, BodyStream, MemoryBlobStore};
use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use std::time::Instant;

fn body(total: usize) -> BodyStream {
    let piece = Bytes::from(vec![7u8; 256 * 1024]);
    let count = total / piece.len();
    futures::stream::iter((0..count).map(move |_| Ok(piece.clone()))).boxed()
}

async fn drain(stream: BodyStream) -> std::io::Result<usize> {
    stream
        .try_fold(0usize, |n, b| async move { Ok(n + b.len()) })
        .await
}

fn rate(bytes: usize, start: Instant) -> f64 {
    bytes as f64 / (1 << 20) as f64 / start.elapsed().as_secs_f64()
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mib: usize = std::env::args()
        .skip_while(|a| a != "--mib")
        .nth(1)
        .and_then(|v| v.parse().ok())
        .unwrap_or(256);
    let total = mib << 20;
    let store = MemoryBlobStore::new();

    let start = Instant::now();
    let plain = BlobId::random();
    store.put(&plain, body(total)).await?;
    println!("plaintext put        {:8.0} MiB/s", rate(total, start));

    let start = Instant::now();
    let sealed = BlobId::random();
    let (stream, key) = seal_body(body(total))?;
    store.put(&sealed, stream).await?;
    println!("sealed put           {:8.0} MiB/s", rate(total, start));

    let start = Instant::now();
    let n = drain(
        read_sealed(
            |o, l| store.get(&sealed, o, l),
            &key,
            total as u64,
            0,
            total as u64,
        )
        .await?,
    )
    .await?;
    assert_eq!(n, total);
    println!("sealed get (whole)   {:8.0} MiB/s", rate(total, start));

    let ranges = 64;
    let start = Instant::now();
    let mut read = 0;
    for i in 0..ranges {
        let offset = (i * 7919 * 4096) % (total - (1 << 20));
        read += drain(
            read_sealed(
                |o, l| store.get(&sealed, o, l),
                &key,
                total as u64,
                offset as u64,
                1 << 20,
            )
            .await?,
        )
        .await?;
    }
    println!(
        "sealed get (1 MiB ranges) {:8.0} MiB/s over {ranges} ranges",
        rate(read, start)
    );
    Ok(())
}
