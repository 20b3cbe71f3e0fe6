//! A client's TCP stream that can tell when the kernel received what it reads: with stamps
//! on, every read is a `recvmsg` that also returns the arrival time of the newest segment it
//! took from (`SO_TIMESTAMPNS`). `--cues` uses it so that a cue's arrival is when it reached
//! the phone's socket, not when this generator's busy thread got round to reading it (a real
//! phone has its own CPU); the time the frame was read is reported beside it.
//!
//! A read that takes several frames at once carries the newest segment's time, so a stamp
//! is never earlier than the frame's true arrival: late, if anything, never early.
//!
//! Must never: block, or change what is read (the bytes are those a plain read returns).

use std::io;
use std::os::fd::AsRawFd;
use std::pin::Pin;
use std::sync::OnceLock;
use std::task::{ready, Context, Poll};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tokio::io::{AsyncRead, AsyncWrite, Interest, ReadBuf};
use tokio::net::TcpStream;

use crate::sys::{enable_rx_stamps, recv_stamped};

/// A TCP stream, with the kernel's arrival time of the last read when stamps are on.
pub(crate) struct Stamped {
    inner: TcpStream,
    stamps: bool,
    /// Unix nanoseconds of the newest segment the last stamped read took from.
    last_rx_ns: Option<i128>,
}

impl Stamped {
    /// `stream`, stamping its reads when `stamps` (an error turning them on is returned).
    pub fn new(inner: TcpStream, stamps: bool) -> io::Result<Stamped> {
        if stamps {
            enable_rx_stamps(inner.as_raw_fd())?;
        }
        Ok(Stamped {
            inner,
            stamps,
            last_rx_ns: None,
        })
    }

    /// When the kernel received what the last read returned, on this process's monotonic
    /// clock (`None` with stamps off, or before the first stamped read).
    pub fn last_rx(&self) -> Option<Instant> {
        self.last_rx_ns.map(instant_of_unix_ns)
    }
}

/// The monotonic instant of a wall-clock time (Unix nanoseconds), through one pair of
/// readings of both clocks taken the first time it is asked.
fn instant_of_unix_ns(ns: i128) -> Instant {
    static BASE: OnceLock<(i128, Instant)> = OnceLock::new();
    let (base_ns, base) = *BASE.get_or_init(|| {
        let wall = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos() as i128;
        (wall, Instant::now())
    });
    let d = ns - base_ns;
    let abs = Duration::from_nanos(d.unsigned_abs().min(u128::from(u64::MAX)) as u64);
    if d >= 0 {
        base + abs
    } else {
        base.checked_sub(abs).unwrap_or(base)
    }
}

impl AsyncRead for Stamped {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if !this.stamps {
            return Pin::new(&mut this.inner).poll_read(cx, buf);
        }
        loop {
            ready!(this.inner.poll_read_ready(cx))?;
            let fd = this.inner.as_raw_fd();
            let dst = buf.initialize_unfilled();
            match this
                .inner
                .try_io(Interest::READABLE, || recv_stamped(fd, dst))
            {
                Ok((n, stamp)) => {
                    buf.advance(n);
                    if stamp.is_some() {
                        this.last_rx_ns = stamp;
                    }
                    return Poll::Ready(Ok(()));
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
    }
}

impl AsyncWrite for Stamped {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// The stamp is when the bytes arrived, not when they were read: read 200 ms after
    /// they were sent, it is still at the send.
    #[tokio::test]
    async fn a_stamp_is_the_arrival_not_the_read() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (client, server) = tokio::join!(TcpStream::connect(addr), listener.accept());
        let mut reader = Stamped::new(client.unwrap(), true).unwrap();
        let (mut writer, _) = server.unwrap();
        let mut buf = [0u8; 16];
        // The kernel turns receive stamping on for the whole machine a little after the
        // first socket asks (deferred work): exchange a byte until one comes stamped.
        for _ in 0..500 {
            writer.write_all(b".").await.unwrap();
            assert_eq!(reader.read(&mut buf).await.unwrap(), 1);
            if reader.last_rx().is_some() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        assert!(reader.last_rx().is_some(), "no read was ever stamped");
        let before = Instant::now();
        writer.write_all(b"cue").await.unwrap();
        let after = Instant::now();
        tokio::time::sleep(Duration::from_millis(200)).await;
        let read_at = Instant::now();
        let n = reader.read(&mut buf).await.unwrap();
        assert_eq!(&buf[..n], b"cue");
        let rx = reader.last_rx().expect("a stamp");
        // The two clocks were paired once; allow a millisecond either side for that.
        let slack = Duration::from_millis(1);
        assert!(
            rx + slack >= before && rx <= after + slack,
            "{rx:?} not within the send"
        );
        assert!(
            rx + Duration::from_millis(150) < read_at,
            "the stamp is the read's time"
        );
        // Without stamps, a plain read and no stamp.
        let (client, server) = tokio::join!(TcpStream::connect(addr), listener.accept());
        let mut plain = Stamped::new(client.unwrap(), false).unwrap();
        server.unwrap().0.write_all(b"x").await.unwrap();
        assert_eq!(plain.read(&mut buf).await.unwrap(), 1);
        assert!(plain.last_rx().is_none());
    }
}
