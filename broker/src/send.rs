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
    use std::sync::Arc;
    use tokio::io::AsyncReadExt;
    use tokio::net::TcpSocket;

    /// Socket buffer size asked for in tests (the kernel doubles it).
    const SMALL_BUFFER: u32 = 16 << 10;

    /// A file holding `data`, open for reading (the directory goes with the guard).
    fn file_with(data: &[u8]) -> (tempfile::TempDir, Arc<std::fs::File>) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("segment");
        std::fs::write(&path, data).unwrap();
        let file = Arc::new(std::fs::File::open(&path).unwrap());
        (dir, file)
    }

    /// Writes `pieces` on one end of a loopback connection and returns the result with
    /// every byte the other end read until the writer closed.
    ///
    /// Both ends have small socket buffers and `#[tokio::test]` runs one thread, so the
    /// reader only runs while the writer waits: a reply of a few MiB meets a full socket
    /// (`WouldBlock`, short writes) many times on the way.
    async fn write_and_read(mut pieces: Pieces) -> (io::Result<()>, Vec<u8>) {
        let socket = TcpSocket::new_v4().unwrap();
        socket.set_send_buffer_size(SMALL_BUFFER).unwrap();
        socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let listener = socket.listen(1).unwrap();
        let addr = listener.local_addr().unwrap();
        let reader = tokio::spawn(async move {
            let socket = TcpSocket::new_v4().unwrap();
            socket.set_recv_buffer_size(SMALL_BUFFER).unwrap();
            let mut s = socket.connect(addr).await.unwrap();
            let mut got = Vec::new();
            s.read_to_end(&mut got).await.unwrap();
            got
        });
        let (server, _) = listener.accept().await.unwrap();
        let (read_half, mut write) = server.into_split();
        let written = pieces.write_to(&mut write).await;
        if written.is_ok() {
            assert!(
                pieces.is_empty() && pieces.bytes() == 0,
                "written pieces are gone"
            );
        }
        drop((read_half, write));
        (written, reader.await.unwrap())
    }

    /// A reply of encoded pieces around file ranges arrives byte for byte, in order.
    #[tokio::test]
    async fn encoded_pieces_and_file_ranges_arrive_in_order() {
        let data: Vec<u8> = (0..(3 << 20) as u32).map(|i| (i * 7 % 251) as u8).collect();
        let (_dir, file) = file_with(&data);
        let file_piece = |from: usize, to: usize| Piece::File {
            view: Bytes::copy_from_slice(&data[from..to]),
            range: FileRange {
                file: file.clone(),
                position: from as u64,
            },
        };
        // A large encoded piece first, so vectored writes come out short too.
        let head = vec![b'h'; 1 << 20];
        let mut pieces = Pieces::default();
        pieces.add(Piece::Bytes(Bytes::from(head.clone())));
        pieces.add(file_piece(10, (2 << 20) + 10));
        pieces.add(Piece::Bytes(Bytes::from_static(b"mid")));
        pieces.add(Piece::Bytes(Bytes::new()));
        pieces.add(file_piece(5, 6));
        pieces.add(file_piece((2 << 20) + 10, 3 << 20));
        pieces.add(Piece::Bytes(Bytes::from_static(b"tail")));
        assert_eq!(pieces.len(), 6, "empty pieces are not kept");
        let (written, got) = write_and_read(pieces).await;
        written.unwrap();
        let mut want = head;
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
        let (_dir, file) = file_with(b"0123456789");
        let mut pieces = Pieces::default();
        pieces.add(Piece::File {
            view: Bytes::from_static(&[0; 20]),
            range: FileRange { file, position: 0 },
        });
        let (written, got) = write_and_read(pieces).await;
        assert_eq!(written.unwrap_err().kind(), io::ErrorKind::UnexpectedEof);
        assert_eq!(got, b"0123456789");
    }
}
