//! Writes a new blob file around the page cache (`O_DIRECT`): the bytes go
//! from a pooled, block-aligned buffer straight to the device. A buffered
//! write first copies every byte into newly allocated page-cache pages —
//! measured on the development VM at 1–2.4 ms of kernel CPU per MiB, against
//! 0.1 ms for the direct write, more than the MD5 of the same bytes — and
//! fills the cache with blobs that are mostly written once and read later,
//! if at all. The first read of a blob therefore comes from the device (and
//! from then on from the cache). A file system that refuses `O_DIRECT`
//! (tmpfs before Linux 6.6, some FUSE mounts) gets buffered writes instead.
//!
//! While one buffer is written on the blocking pool the next one fills, so
//! receiving and writing overlap without a second copy of the data.

use super::{BodyStream, StorageError};
use futures::StreamExt;
use std::fs::File;
use std::io::Write;
use std::path::Path;
use std::sync::Mutex;

/// `O_DIRECT` wants buffer addresses, file offsets and lengths in multiples
/// of the device's logical block; 4 KiB covers every common one.
const ALIGN: usize = 4096;
/// Bytes written per system call.
const CHUNK: usize = 256 * 1024;
/// Buffers kept for reuse. Reused buffers are already faulted in, which is
/// the point; a bound keeps a burst of writes from pinning memory for good.
const POOL_LIMIT: usize = 16;

static POOL: Mutex<Vec<AlignedBuf>> = Mutex::new(Vec::new());

/// `CHUNK` bytes at a block-aligned address inside an ordinary `Vec`.
struct AlignedBuf {
    raw: Vec<u8>,
    start: usize,
    len: usize,
}

impl AlignedBuf {
    fn take() -> Self {
        let pooled = POOL.lock().unwrap_or_else(|e| e.into_inner()).pop();
        pooled.unwrap_or_else(|| {
            let raw = vec![0u8; CHUNK + ALIGN];
            let start = raw.as_ptr().align_offset(ALIGN);
            AlignedBuf { raw, start, len: 0 }
        })
    }

    fn give_back(mut self) {
        self.len = 0;
        let mut pool = POOL.lock().unwrap_or_else(|e| e.into_inner());
        if pool.len() < POOL_LIMIT {
            pool.push(self);
        }
    }

    /// Copies as much of `bytes` as fits; returns how much that was.
    fn fill(&mut self, bytes: &[u8]) -> usize {
        let n = bytes.len().min(CHUNK - self.len);
        let at = self.start + self.len;
        self.raw[at..at + n].copy_from_slice(&bytes[..n]);
        self.len += n;
        n
    }

    fn is_full(&self) -> bool {
        self.len == CHUNK
    }

    /// The filled bytes, zero-padded to a whole block when `pad` is set.
    fn writable(&mut self, pad: bool) -> &[u8] {
        let end = if pad {
            let padded = self.len.div_ceil(ALIGN) * ALIGN;
            self.raw[self.start + self.len..self.start + padded].fill(0);
            padded
        } else {
            self.len
        };
        &self.raw[self.start..self.start + end]
    }
}

/// A file being written, with whether it is open for direct I/O.
struct Target {
    file: File,
    direct: bool,
}

impl Target {
    fn create(path: &Path) -> std::io::Result<Self> {
        use std::os::unix::fs::OpenOptionsExt;
        let direct = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .custom_flags(libc::O_DIRECT)
            .open(path);
        match direct {
            Ok(file) => Ok(Target { file, direct: true }),
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
                // The file system refused the flag; the file may exist by
                // now, and is opened again (and emptied) without it.
                let file = std::fs::OpenOptions::new()
                    .write(true)
                    .create(true)
                    .truncate(true)
                    .open(path)?;
                Ok(Target {
                    file,
                    direct: false,
                })
            }
            Err(e) => Err(e),
        }
    }

    /// Writes a buffer; only the last may be partial (and is padded to a
    /// block when direct, the padding cut off again by [`Target::finish`]).
    fn write(&mut self, buf: &mut AlignedBuf) -> std::io::Result<()> {
        let last = !buf.is_full();
        self.file.write_all(buf.writable(self.direct && last))
    }

    fn finish(&mut self, length: u64) -> std::io::Result<()> {
        if self.direct {
            self.file.set_len(length)?;
        }
        // Data, length and the block allocation: what a reader after a
        // crash needs. The caller makes the rename durable.
        self.file.sync_data()
    }
}

/// Who holds the file: nobody (between writes) or a write in flight.
enum Writer {
    Idle(Target),
    Busy(tokio::task::JoinHandle<Result<(Target, AlignedBuf), StorageError>>),
}

impl Writer {
    /// The file back, once no write is in flight, with a buffer to fill.
    async fn reclaim(self) -> Result<(Target, AlignedBuf), StorageError> {
        match self {
            Writer::Idle(target) => Ok((target, AlignedBuf::take())),
            Writer::Busy(task) => super::joined(task).await,
        }
    }

    fn start(mut target: Target, mut buf: AlignedBuf) -> Self {
        Writer::Busy(tokio::task::spawn_blocking(move || {
            target.write(&mut buf)?;
            buf.len = 0;
            Ok((target, buf))
        }))
    }
}

/// Streams `body` into a file at `path` (created, or emptied) and makes it
/// durable; returns the byte count. On error the caller removes the file.
pub async fn write_file(path: &Path, mut body: BodyStream) -> Result<u64, StorageError> {
    let create = path.to_path_buf();
    let target = super::blocking(move || Ok(Target::create(&create)?)).await?;
    let mut writer = Writer::Idle(target);
    let mut filling = AlignedBuf::take();
    let mut written = 0u64;
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(StorageError::Body)?;
        written += chunk.len() as u64;
        let mut rest = &chunk[..];
        while !rest.is_empty() {
            rest = &rest[filling.fill(rest)..];
            if filling.is_full() {
                let (target, spare) = writer.reclaim().await?;
                writer = Writer::start(target, std::mem::replace(&mut filling, spare));
            }
        }
    }
    let (mut target, spare) = writer.reclaim().await?;
    spare.give_back();
    super::blocking(move || {
        if filling.len > 0 {
            target.write(&mut filling)?;
        }
        filling.give_back();
        target.finish(written)?;
        Ok(())
    })
    .await?;
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn write(path: &Path, pieces: Vec<Vec<u8>>) -> u64 {
        let body =
            futures::stream::iter(pieces.into_iter().map(|p| Ok(bytes::Bytes::from(p)))).boxed();
        write_file(path, body).await.expect("written")
    }

    #[tokio::test]
    async fn every_length_round_trips_exactly() {
        let dir = tempfile::tempdir().expect("temp dir");
        // Around the block and chunk boundaries, in odd-sized pieces.
        for (i, len) in [
            0,
            1,
            4095,
            4096,
            4097,
            CHUNK - 1,
            CHUNK,
            CHUNK + 1,
            3 * CHUNK + 12345,
        ]
        .into_iter()
        .enumerate()
        {
            let data: Vec<u8> = (0..len).map(|b| (b % 251) as u8).collect();
            let pieces = data.chunks(7777).map(<[u8]>::to_vec).collect();
            let path = dir.path().join(format!("blob{i}"));
            assert_eq!(write(&path, pieces).await, len as u64);
            assert_eq!(
                std::fs::read(&path).expect("read back"),
                data,
                "length {len}"
            );
        }
    }

    #[tokio::test]
    async fn a_file_left_by_an_interrupted_write_is_replaced_whole() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("retried.part");
        std::fs::write(&path, vec![7u8; 3 * CHUNK]).expect("seed");
        assert_eq!(write(&path, vec![b"short".to_vec()]).await, 5);
        assert_eq!(std::fs::read(&path).expect("read back"), b"short");
    }

    #[test]
    fn buffers_are_block_aligned() {
        let mut buf = AlignedBuf::take();
        assert_eq!(buf.raw[buf.start..].as_ptr().align_offset(ALIGN), 0);
        buf.fill(b"abc");
        assert_eq!(buf.writable(true).len(), ALIGN);
        assert_eq!(buf.writable(false), b"abc");
        buf.give_back();
    }

    #[tokio::test]
    async fn a_file_system_without_direct_io_gets_buffered_writes() {
        // tmpfs refused O_DIRECT until Linux 6.6; either way the bytes land.
        let Ok(dir) = tempfile::tempdir_in("/dev/shm") else {
            return;
        };
        let data = vec![42u8; CHUNK + 100];
        let path = dir.path().join("blob");
        assert_eq!(write(&path, vec![data.clone()]).await, data.len() as u64);
        assert_eq!(std::fs::read(&path).expect("read back"), data);
    }
}
