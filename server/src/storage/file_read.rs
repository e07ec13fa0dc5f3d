//! Reading part of a local blob file as a stream of chunks: each chunk is
//! one positioned read on the blocking pool straight into the buffer that
//! goes out to the client. (Through tokio's `File` every read lands in a
//! buffer of the file's own first and is copied out, so each chunk in
//! flight costs twice the memory and one more copy; and a seek costs a
//! blocking-pool hop of its own.)

use super::{BodyStream, StorageError, blocking};
use bytes::BytesMut;
use futures::StreamExt;
use std::fs::File;
use std::io::ErrorKind;
use std::os::unix::fs::FileExt;
use std::sync::Arc;

/// Opens `path` and streams `length` bytes from `offset` (fewer when the
/// file ends first) in chunks of at most `chunk` bytes. The open and the
/// size check are one blocking call.
pub async fn open_range(
    path: std::path::PathBuf,
    offset: u64,
    length: u64,
    chunk: usize,
) -> Result<Option<BodyStream>, StorageError> {
    let opened = blocking(move || match File::open(&path) {
        Ok(file) => {
            let size = file.metadata()?.len();
            Ok(Some((file, size)))
        }
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e.into()),
    })
    .await?;
    let Some((file, size)) = opened else {
        return Ok(None);
    };
    let length = length.min(size.saturating_sub(offset));
    Ok(Some(chunks(Arc::new(file), offset, length, chunk)))
}

fn chunks(file: Arc<File>, offset: u64, length: u64, chunk: usize) -> BodyStream {
    futures::stream::try_unfold((offset, length), move |(offset, remaining)| {
        let file = file.clone();
        async move {
            if remaining == 0 {
                return Ok(None);
            }
            let want = usize::try_from(remaining).unwrap_or(usize::MAX).min(chunk);
            // Allocated here on the async thread, so the buffers come from
            // that thread's allocator arena rather than from one arena per
            // blocking thread.
            let mut buffer = BytesMut::zeroed(want);
            let (mut buffer, read) = blocking(move || {
                let read = read_at_most(&file, &mut buffer, offset)?;
                Ok((buffer, read))
            })
            .await
            .map_err(std::io::Error::other)?;
            if read == 0 {
                // The file is shorter than it was when opened: end here, as
                // a reader of a shorter file would (callers check lengths).
                return Ok(None);
            }
            buffer.truncate(read);
            Ok(Some((
                buffer.freeze(),
                (offset + read as u64, remaining - read as u64),
            )))
        }
    })
    .boxed()
}

/// Fills `buffer` from `offset` until it is full or the file ends.
fn read_at_most(file: &File, buffer: &mut [u8], offset: u64) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buffer.len() {
        match file.read_at(&mut buffer[filled..], offset + filled as u64) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::TryStreamExt;

    async fn read(path: &std::path::Path, offset: u64, length: u64, chunk: usize) -> Vec<Vec<u8>> {
        open_range(path.to_path_buf(), offset, length, chunk)
            .await
            .unwrap()
            .expect("the file exists")
            .map_ok(|b| b.to_vec())
            .try_collect()
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn ranges_come_in_chunks_and_stop_at_the_end_of_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("blob");
        let data: Vec<u8> = (0..10_000u32).map(|i| (i % 251) as u8).collect();
        std::fs::write(&path, &data).unwrap();

        let whole = read(&path, 0, u64::MAX, 4096).await;
        assert_eq!(
            whole.iter().map(Vec::len).collect::<Vec<_>>(),
            [4096, 4096, 1808]
        );
        assert_eq!(whole.concat(), data);

        assert_eq!(read(&path, 100, 50, 4096).await.concat(), &data[100..150]);
        assert_eq!(read(&path, 9_990, 100, 4096).await.concat(), &data[9_990..]);
        assert!(read(&path, 20_000, 10, 4096).await.is_empty());
        assert!(read(&path, 0, 0, 4096).await.is_empty());
    }

    #[tokio::test]
    async fn a_missing_file_is_none() {
        let dir = tempfile::tempdir().unwrap();
        let opened = open_range(dir.path().join("absent"), 0, 10, 4096)
            .await
            .unwrap();
        assert!(opened.is_none());
    }
}
