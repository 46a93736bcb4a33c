//! The executor hyper runs HTTP/2 streams on: each stream's future is polled once where hyper
//! accepts it, in the connection's own task, and spawned as a task of its own only if it has
//! to wait.
//!
//! hyper hands every HTTP/2 stream (request and response body) to its executor. Spawning a
//! task for each costs an allocation and a trip through the scheduler, and the stream's
//! response then wakes the connection's task once per stream, so that the connection writes
//! each response on its own. Most streams do not wait at all (a file from the cache, a
//! redirect, a refusal): polled at once, their responses are queued before the connection
//! writes, and go out together (see `cork`). A stream that waits (the application, a proxied
//! upstream, a large file) continues on a task of its own, as before.
//!
//! A panic in that first poll is caught here and ends that stream alone (hyper resets it), as
//! it would in a spawned task.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::task::{Context, Waker};

/// Polls a future once at once, then spawns it on the current tokio runtime if it is pending.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct InlineFirst;

impl<F> hyper::rt::Executor<F> for InlineFirst
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    fn execute(&self, future: F) {
        let mut future = Box::pin(future);
        // A no-op waker: if the future waits, the spawned task polls it again at once with
        // its own waker, which is the one it keeps.
        let mut cx = Context::from_waker(Waker::noop());
        match std::panic::catch_unwind(AssertUnwindSafe(|| future.as_mut().poll(&mut cx))) {
            Ok(std::task::Poll::Ready(_)) => {}
            Ok(std::task::Poll::Pending) => {
                tokio::spawn(future);
            }
            Err(_) => tracing::error!("an HTTP/2 stream's handler panicked; the stream is reset"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyper::rt::Executor;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[tokio::test]
    async fn a_ready_future_runs_inline_and_a_waiting_one_finishes_on_a_task() {
        let done = Arc::new(AtomicUsize::new(0));
        let counter = done.clone();
        InlineFirst.execute(async move {
            counter.fetch_add(1, Ordering::SeqCst);
        });
        assert_eq!(
            done.load(Ordering::SeqCst),
            1,
            "ran before execute returned"
        );
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let counter = done.clone();
        InlineFirst.execute(async move {
            let _ = rx.await;
            counter.fetch_add(1, Ordering::SeqCst);
        });
        assert_eq!(done.load(Ordering::SeqCst), 1);
        tx.send(()).expect("send");
        for _ in 0..100 {
            if done.load(Ordering::SeqCst) == 2 {
                return;
            }
            tokio::task::yield_now().await;
        }
        panic!("the waiting future never finished");
    }

    #[tokio::test]
    async fn a_panicking_future_is_dropped() {
        InlineFirst.execute(async { panic!("boom") });
    }
}
