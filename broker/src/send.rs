//! Writing replies to a client socket: encoded bytes with vectored writes, record data
//! with `sendfile` straight from the segment files.
//!
//! A fetch reply is a few encoded pieces around the record data of each partition. The
//! record data is a [`Bytes`] view of a segment map that also knows where it lies in its
//! file ([`storage::FileRange`]); the writer hands that range to the kernel with
//! `sendfile`, so the broker never copies record data through user space and never faults
//! the mapped pages in (measured here, 1 MiB request/response over loopback from page-cache
//! data: 2.4-3.5 GiB/s and 0.8 CPU-seconds per 2 GiB with `sendfile`, against
//! 1.9-2.1 GiB/s and 1.3 s with `writev` from the map). The view stays held until the
//! kernel has taken the bytes, so the log cannot shrink or rewrite the file under it.
//!
//! ```text
//!  [encoded][encoded]  [file range]  [encoded][encoded]...
//!  └──── writev ────┘  └ sendfile ┘  └────── writev ─────┘
//! ```

use bytes::{Buf, Bytes};
use std::io::{self, IoSlice};
use storage::FileRange;
use tokio::io::{AsyncWriteExt, Interest};
use tokio::net::tcp::OwnedWriteHalf;
use tokio::net::TcpStream;

/// Most bytes gathered for one round of writes.
pub const MAX_WRITE_BYTES: usize = 4 << 20;
/// Most pieces gathered into one vectored write (well under `IOV_MAX`).
pub const MAX_WRITE_PIECES: usize = 256;

/// One piece of a reply.
#[derive(Debug)]
pub enum Piece {
    /// Encoded bytes (or data that is not in a file).
    Bytes(Bytes),
    /// Record data: `view` holds the bytes (and keeps their map alive); `range` says where
    /// they lie in their segment file.
    File { view: Bytes, range: FileRange },
}

impl Piece {
    pub fn len(&self) -> usize {
        match self {
            Piece::Bytes(b) | Piece::File { view: b, .. } => b.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The piece's bytes, whichever way they are sent.
    pub fn bytes(&self) -> &Bytes {
        match self {
            Piece::Bytes(b) | Piece::File { view: b, .. } => b,
        }
    }
}

/// Reply pieces waiting to be written, in order.
#[derive(Debug, Default)]
pub struct Pieces {
    pieces: Vec<Piece>,
    bytes: usize,
}

impl Pieces {
    pub fn add(&mut self, piece: Piece) {
        if !piece.is_empty() {
            self.bytes += piece.len();
            self.pieces.push(piece);
        }
    }

    /// Bytes gathered.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Pieces gathered.
    pub fn len(&self) -> usize {
        self.pieces.len()
    }

    pub fn is_empty(&self) -> bool {
        self.pieces.is_empty()
    }

    /// Writes every piece, in order, and empties the list: runs of encoded pieces with one
    /// vectored write each (resuming after short writes), file ranges with `sendfile`.
    pub async fn write_to(&mut self, write: &mut OwnedWriteHalf) -> io::Result<()> {
        let mut first = 0;
        while first < self.pieces.len() {
            if let Piece::File { view, range } = &self.pieces[first] {
                send_file(write.as_ref(), range, view.len()).await?;
                first += 1;
                continue;
            }
            let slices: Vec<IoSlice<'_>> = self.pieces[first..]
                .iter()
                .take(MAX_WRITE_PIECES)
                .map_while(|p| match p {
                    Piece::Bytes(b) => Some(IoSlice::new(b)),
                    Piece::File { .. } => None,
                })
                .collect();
            let mut n = write.write_vectored(&slices).await?;
            if n == 0 {
                return Err(io::ErrorKind::WriteZero.into());
            }
            // Only encoded pieces were in the write, so a partial one is encoded too.
            while n > 0 {
                let len = self.pieces[first].len();
                if n >= len {
                    n -= len;
                    first += 1;
                } else {
                    if let Piece::Bytes(b) = &mut self.pieces[first] {
                        b.advance(n);
                    }
                    n = 0;
                }
            }
        }
        self.pieces.clear();
        self.bytes = 0;
        Ok(())
    }
}

/// Sends `len` bytes of `range`'s file from its position with `sendfile`, waiting for the
/// socket to take them.
async fn send_file(stream: &TcpStream, range: &FileRange, len: usize) -> io::Result<()> {
    let mut position = range.position;
    let end = position + len as u64;
    while position < end {
        stream.writable().await?;
        let sent = stream.try_io(Interest::WRITABLE, || {
            let count = (end - position) as usize;
            rustix::fs::sendfile(stream, &*range.file, Some(&mut position), count)
                .map_err(io::Error::from)
        });
        match sent {
            // The file ends before the range does: it was cut under a live view, which the
            // log never does; the reply cannot be completed.
            Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
                ) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::sync::Arc;
    use tokio::io::AsyncReadExt;
    use tokio::net::TcpListener;

    /// A reply of encoded pieces around file ranges arrives byte for byte, in order, also
    /// when the peer reads slowly (short writes and `WouldBlock` from a full socket).
    #[tokio::test]
    async fn encoded_pieces_and_file_ranges_arrive_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("segment");
        let data: Vec<u8> = (0..(3 << 20) as u32).map(|i| (i * 7 % 251) as u8).collect();
        std::fs::File::create(&path)
            .unwrap()
            .write_all(&data)
            .unwrap();
        let file = Arc::new(std::fs::File::open(&path).unwrap());
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let client = tokio::spawn(async move {
            let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
            let mut got = Vec::new();
            let mut buf = vec![0u8; 4096];
            loop {
                // Read slowly at first so the sender meets a full socket.
                if got.len() < (1 << 20) {
                    tokio::task::yield_now().await;
                }
                match s.read(&mut buf).await.unwrap() {
                    0 => break got,
                    n => got.extend_from_slice(&buf[..n]),
                }
            }
        });
        let (server, _) = listener.accept().await.unwrap();
        let (_read, mut write) = server.into_split();
        let view = |from: usize, to: usize| Bytes::copy_from_slice(&data[from..to]);
        let file_piece = |from: usize, to: usize| Piece::File {
            view: view(from, to),
            range: FileRange {
                file: file.clone(),
                position: from as u64,
            },
        };
        let mut pieces = Pieces::default();
        pieces.add(Piece::Bytes(Bytes::from_static(b"head")));
        pieces.add(file_piece(10, (2 << 20) + 10));
        pieces.add(Piece::Bytes(Bytes::from_static(b"mid")));
        pieces.add(Piece::Bytes(Bytes::new()));
        pieces.add(file_piece(5, 6));
        pieces.add(file_piece((2 << 20) + 10, 3 << 20));
        pieces.add(Piece::Bytes(Bytes::from_static(b"tail")));
        assert_eq!(pieces.len(), 6, "empty pieces are not kept");
        pieces.write_to(&mut write).await.unwrap();
        assert!(pieces.is_empty() && pieces.bytes() == 0);
        drop(write);
        drop(_read);
        let got = client.await.unwrap();
        let mut want = b"head".to_vec();
        want.extend_from_slice(&data[10..(2 << 20) + 10]);
        want.extend_from_slice(b"mid");
        want.extend_from_slice(&data[5..6]);
        want.extend_from_slice(&data[(2 << 20) + 10..3 << 20]);
        want.extend_from_slice(b"tail");
        assert_eq!(got.len(), want.len());
        assert!(got == want, "bytes differ");
    }

    /// A range past the end of its file is an error, not a hang or a short reply passed
    /// off as whole.
    #[tokio::test]
    async fn a_range_past_the_end_of_the_file_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("short");
        std::fs::write(&path, b"0123456789").unwrap();
        let file = Arc::new(std::fs::File::open(&path).unwrap());
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let client = tokio::spawn(async move {
            let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
            let mut got = Vec::new();
            s.read_to_end(&mut got).await.unwrap();
            got
        });
        let (server, _) = listener.accept().await.unwrap();
        let (_read, mut write) = server.into_split();
        let mut pieces = Pieces::default();
        pieces.add(Piece::File {
            view: Bytes::from_static(&[0; 20]),
            range: FileRange { file, position: 0 },
        });
        let err = pieces.write_to(&mut write).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
        drop(write);
        drop(_read);
        assert_eq!(client.await.unwrap(), b"0123456789");
    }
}
