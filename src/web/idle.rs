//! Idle detection for a connection: the time its last byte moved, in either direction, and the
//! deadline of the HTTP/1 request head it waits for.
//!
//! hyper's HTTP/1 header timeout covers a client that is slow to send a request, but nothing
//! covers an HTTP/2 connection that sits open with no streams, or a client that stops reading
//! a response. [`Tracked`] wraps the socket (or TLS stream) and stamps every successful read
//! and write; the connection task closes the connection when the stamp grows older than
//! `web.idle_timeout` (nginx's keepalive and send timeouts in one). Waiting for a response to
//! be made (a slow upstream within its `response_timeout`, a handler) is not idleness: a
//! [`Busy`] guard is held meanwhile, and the idle time counts from its end.
//!
//! The header timeout (`web.header_read_timeout`) is hyper's, on a timer of the connection's
//! own ([`HeadTimer`]): hyper starts a timer each time it waits for a request head and drops
//! it when the head is in. On tokio's timer that is an insertion into and a removal from the
//! timer wheel per request; here the timer only writes its deadline into the connection's
//! [`Activity`], and the connection task, which already keeps one timer for the idle timeout,
//! wakes for whichever deadline comes first (`server::drive`).

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Instant;

/// No request head is awaited.
const NO_HEAD: u64 = u64::MAX;

/// The shared "last activity" stamp of one connection, and the deadline of the request head
/// it waits for.
#[derive(Debug, Clone)]
pub(crate) struct Activity {
    origin: Instant,
    stamps: Arc<Stamps>,
}

#[derive(Debug)]
struct Stamps {
    /// The last byte moved, in milliseconds since `origin`.
    last_ms: AtomicU64,
    /// When the awaited request head is due, in milliseconds since `origin` (rounded up);
    /// [`NO_HEAD`] when none is awaited.
    head_ms: AtomicU64,
    /// Requests whose response head is being made ([`Busy`]).
    busy: AtomicU32,
}

impl Activity {
    /// A stamp set to now.
    pub fn new() -> Self {
        Self {
            origin: Instant::now(),
            stamps: Arc::new(Stamps {
                last_ms: AtomicU64::new(0),
                head_ms: AtomicU64::new(NO_HEAD),
                busy: AtomicU32::new(0),
            }),
        }
    }

    /// Stamps now.
    pub fn touch(&self) {
        let ms = u64::try_from(self.origin.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.stamps.last_ms.store(ms, Ordering::Relaxed);
    }

    /// When `timeout` without activity is up (the stamp as it is now).
    pub fn idle_deadline(&self, timeout: Duration) -> Instant {
        self.origin + Duration::from_millis(self.stamps.last_ms.load(Ordering::Relaxed)) + timeout
    }

    /// A request's response is being made (a handler, an upstream's answer) until the guard
    /// is dropped: waiting for it is not idleness, and the idle time counts from its end.
    pub fn busy(&self) -> Busy {
        self.stamps.busy.fetch_add(1, Ordering::Relaxed);
        Busy(self.clone())
    }

    /// Whether a request's response is being made ([`Activity::busy`]).
    pub fn is_busy(&self) -> bool {
        self.stamps.busy.load(Ordering::Relaxed) > 0
    }

    /// When the awaited request head is due, if one is awaited.
    pub fn head_deadline(&self) -> Option<Instant> {
        match self.stamps.head_ms.load(Ordering::Relaxed) {
            NO_HEAD => None,
            ms => Some(self.origin + Duration::from_millis(ms)),
        }
    }

    /// A request head is awaited until `deadline` (the fast path's head timer, see `fast`).
    pub fn await_head(&self, deadline: Instant) {
        let ms = self.ms(deadline);
        self.stamps.head_ms.store(ms, Ordering::Relaxed);
    }

    /// The awaited request head is in (or no longer awaited).
    pub fn head_in(&self) {
        self.stamps.head_ms.store(NO_HEAD, Ordering::Relaxed);
    }

    /// `deadline` in milliseconds since the origin, rounded up (never early).
    fn ms(&self, deadline: Instant) -> u64 {
        let since = deadline.saturating_duration_since(self.origin);
        let ms = since.as_millis() + u128::from(!since.subsec_nanos().is_multiple_of(1_000_000));
        u64::try_from(ms).unwrap_or(NO_HEAD - 1).min(NO_HEAD - 1)
    }
}

/// A response being made on the connection ([`Activity::busy`]).
#[derive(Debug)]
pub(crate) struct Busy(Activity);

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.stamps.busy.fetch_sub(1, Ordering::Relaxed);
        self.0.touch();
    }
}

/// hyper's timer for one HTTP/1 connection: its sleeps are the request head's deadline,
/// written into the connection's [`Activity`]. They never wake the task themselves: the
/// connection task keeps a timer for the earliest deadline and polls hyper when it passes.
#[derive(Debug, Clone)]
pub(crate) struct HeadTimer(pub Activity);

impl hyper::rt::Timer for HeadTimer {
    fn sleep(&self, duration: Duration) -> Pin<Box<dyn hyper::rt::Sleep>> {
        self.sleep_until((Instant::now() + duration).into_std())
    }

    fn sleep_until(&self, deadline: std::time::Instant) -> Pin<Box<dyn hyper::rt::Sleep>> {
        let deadline = Instant::from_std(deadline);
        let ms = self.0.ms(deadline);
        self.0.stamps.head_ms.store(ms, Ordering::Relaxed);
        Box::pin(HeadSleep {
            deadline,
            ms,
            activity: self.0.clone(),
        })
    }

    fn reset(&self, sleep: &mut Pin<Box<dyn hyper::rt::Sleep>>, new_deadline: std::time::Instant) {
        match sleep.as_mut().downcast_mut_pin::<HeadSleep>() {
            Some(mut sleep) => {
                let deadline = Instant::from_std(new_deadline);
                let ms = self.0.ms(deadline);
                self.0.stamps.head_ms.store(ms, Ordering::Relaxed);
                sleep.deadline = deadline;
                sleep.ms = ms;
            }
            None => *sleep = self.sleep_until(new_deadline),
        }
    }
}

/// A request head's deadline: ready once it has passed. Dropped (the head is in), it is no
/// longer awaited.
#[derive(Debug)]
struct HeadSleep {
    deadline: Instant,
    /// `deadline` as written into the [`Activity`].
    ms: u64,
    activity: Activity,
}

impl Future for HeadSleep {
    type Output = ();

    fn poll(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<()> {
        // No waker is kept: the connection task wakes at the deadline (`server::drive`).
        if Instant::now() >= self.deadline {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    }
}

impl hyper::rt::Sleep for HeadSleep {}

impl Drop for HeadSleep {
    fn drop(&mut self) {
        // Unless a newer deadline took its place.
        let _ = self.activity.stamps.head_ms.compare_exchange(
            self.ms,
            NO_HEAD,
            Ordering::Relaxed,
            Ordering::Relaxed,
        );
    }
}

/// An I/O object whose reads and writes stamp an [`Activity`].
#[derive(Debug)]
pub(crate) struct Tracked<T> {
    inner: T,
    activity: Activity,
}

impl<T> Tracked<T> {
    /// Wraps `inner`.
    pub fn new(inner: T, activity: Activity) -> Self {
        Self { inner, activity }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Tracked<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let result = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(result, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.activity.touch();
        }
        result
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Tracked<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let result = Pin::new(&mut self.inner).poll_write(cx, buf);
        if matches!(result, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch();
        }
        result
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let result = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if matches!(result, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch();
        }
        result
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyper::rt::Timer;

    #[tokio::test]
    async fn the_head_timer_keeps_its_deadline_in_the_activity_until_dropped() {
        let activity = Activity::new();
        let timer = HeadTimer(activity.clone());
        assert_eq!(activity.head_deadline(), None);
        let due = Instant::now() + Duration::from_secs(10);
        let mut sleep = timer.sleep_until(due.into_std());
        let kept = activity.head_deadline().expect("a head is awaited");
        assert!(
            kept >= due && kept < due + Duration::from_millis(2),
            "rounded up, not early"
        );
        let later = due + Duration::from_secs(5);
        timer.reset(&mut sleep, later.into_std());
        assert!(activity.head_deadline().expect("still awaited") >= later);
        let mut cx = Context::from_waker(std::task::Waker::noop());
        assert!(sleep.as_mut().poll(&mut cx).is_pending());
        drop(sleep);
        assert_eq!(activity.head_deadline(), None, "the head is in");
        let mut past = timer.sleep(Duration::ZERO);
        assert!(past.as_mut().poll(&mut cx).is_ready());
    }
}
