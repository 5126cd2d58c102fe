//! The cancel token: a flag any thread can trip, which wakes the runs watching it at once.
//!
//! Owns: [`CancelToken`] and the registration of a run's wake-up. Not here: what cancel
//! means for a job (the supervisor trips the token on a cancel request or its own SIGTERM).

use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

type Waker = Box<dyn Fn() + Send>;

/// Cancels the runs it is passed to. Cheap to clone; all clones share one flag. Once
/// tripped it stays tripped: a run started with a tripped token spawns nothing.
///
/// [`CancelToken::cancel`] takes a lock, so it is not async-signal-safe: from a signal
/// handler, set a flag or write to a pipe and call `cancel` from a thread.
#[derive(Clone, Default)]
pub struct CancelToken {
    inner: Arc<Inner>,
}

#[derive(Default)]
struct Inner {
    canceled: AtomicBool,
    next_id: AtomicU64,
    wakers: Mutex<Vec<(u64, Waker)>>,
}

impl CancelToken {
    pub fn new() -> Self {
        Self::default()
    }

    /// Trips the flag and wakes every run waiting on this token.
    pub fn cancel(&self) {
        // The flag is set before the wakers run, and a run registers its waker before it
        // first reads the flag, so a cancel is never missed between the two.
        self.inner.canceled.store(true, Ordering::SeqCst);
        let wakers = self
            .inner
            .wakers
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        for (_, wake) in wakers.iter() {
            wake();
        }
    }

    pub fn is_canceled(&self) -> bool {
        self.inner.canceled.load(Ordering::SeqCst)
    }

    /// Calls `wake` on every later [`CancelToken::cancel`] until the returned guard drops.
    pub(crate) fn register(&self, wake: Waker) -> Registration {
        let id = self.inner.next_id.fetch_add(1, Ordering::Relaxed);
        self.inner
            .wakers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push((id, wake));
        Registration {
            token: self.clone(),
            id,
        }
    }
}

impl fmt::Debug for CancelToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CancelToken")
            .field("canceled", &self.is_canceled())
            .finish()
    }
}

/// Removes a run's waker from its token when the run ends.
pub(crate) struct Registration {
    token: CancelToken,
    id: u64,
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.token
            .inner
            .wakers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .retain(|(id, _)| *id != self.id);
    }
}
