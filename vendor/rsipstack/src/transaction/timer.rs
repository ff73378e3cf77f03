use crate::platform::atomic64::AtomicU64;
use crate::platform::sync::{Mutex, MutexGuard};
use crate::platform::{Instant, Notify};
use crate::prelude::*;
use core::sync::atomic::Ordering;

#[derive(Debug, PartialEq, Eq, Clone)]
struct TimerKey {
    task_id: u64,
    execute_at: Instant,
}

impl Ord for TimerKey {
    fn cmp(&self, other: &Self) -> core::cmp::Ordering {
        self.execute_at
            .cmp(&other.execute_at)
            .then_with(|| self.task_id.cmp(&other.task_id))
    }
}

impl PartialOrd for TimerKey {
    fn partial_cmp(&self, other: &Self) -> Option<core::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

/// The tick [`Timer::timeout_coarse`] rounds deadlines up to.
pub const COARSE_TICK: Duration = Duration::from_millis(100);

pub struct Timer<T> {
    state: Mutex<TimerState<T>>,
    notify: Notify,
    last_task_id: AtomicU64,
    /// Where the coarse ticks are counted from.
    epoch: Instant,
}

impl<T> Timer<T> {
    pub fn new() -> Self {
        Timer {
            state: Mutex::new(TimerState::new()),
            notify: Notify::new(),
            last_task_id: AtomicU64::new(1),
            epoch: Instant::now(),
        }
    }

    pub fn len(&self) -> usize {
        self.lock_state().tasks.len()
    }

    pub fn timeout(&self, duration: Duration, value: T) -> u64 {
        self.timeout_at(Instant::now() + duration, value)
    }

    /// Like [`Timer::timeout`], the deadline rounded up to the next [`COARSE_TICK`]: for
    /// timers that bound a wait from below (a transaction's lingering, its overall
    /// timeout), which may fire a little late but not early. Timers set within one tick
    /// share a deadline, so the task wakes once a tick for all of them, not once for each
    /// transaction. A zero duration (reliable transports' lingering) fires at once.
    pub fn timeout_coarse(&self, duration: Duration, value: T) -> u64 {
        let at = Instant::now() + duration;
        if duration.is_zero() {
            return self.timeout_at(at, value);
        }
        let since = at.checked_duration_since(self.epoch).unwrap_or_default();
        let tick = COARSE_TICK.as_nanos();
        let ticks = since.as_nanos().div_ceil(tick);
        let rounded = Duration::from_nanos((ticks * tick).min(u64::MAX as u128) as u64);
        self.timeout_at(self.epoch + rounded, value)
    }

    pub fn timeout_at(&self, execute_at: Instant, value: T) -> u64 {
        let task_id = self.last_task_id.fetch_add(1, Ordering::Relaxed);
        let mut state = self.lock_state();
        let key = TimerKey {
            task_id,
            execute_at,
        };
        let should_notify = match state.tasks.keys().next() {
            Some(head) => &key < head,
            None => true,
        };

        state.tasks.insert(key, value);
        state.id_to_tasks.insert(task_id, execute_at);
        drop(state);

        // Wake the waiter only when the earliest deadline moved earlier: a later timer is
        // found when the waiter wakes for the head anyway. `notify_one` keeps a permit, so
        // a waiter between reading the head and awaiting `notified()` still sees it.
        if should_notify {
            self.notify.notify_one();
        }
        task_id
    }

    pub fn cancel(&self, task_id: u64) -> Option<T> {
        let mut state = self.lock_state();
        let execute_at = state.id_to_tasks.remove(&task_id)?;

        let key = TimerKey {
            task_id,
            execute_at,
        };

        // No wake-up: a waiter sleeping until a cancelled head wakes once, finds nothing
        // due and sleeps until the new head (waking it now would cost the same wake-up
        // for every cancel, most of which are not the head).
        state.tasks.remove(&key)
    }

    pub fn poll(&self, now: Instant) -> Vec<T> {
        let mut state = self.lock_state();
        Self::collect_ready(&mut state, now)
    }

    pub async fn wait_for_ready(&self) -> Vec<T> {
        loop {
            let (ready, next_deadline) = {
                let mut state = self.lock_state();
                let now = Instant::now();
                let ready = Self::collect_ready(&mut state, now);
                let next_deadline = if ready.is_empty() {
                    state.tasks.keys().next().map(|key| key.execute_at)
                } else {
                    None
                };
                (ready, next_deadline)
            };

            if !ready.is_empty() {
                return ready;
            }

            match next_deadline {
                Some(deadline) => {
                    let now = Instant::now();
                    let wait_duration = deadline.checked_duration_since(now).unwrap_or_default();

                    let mut sleep_f = core::pin::pin!(crate::platform::sleep(wait_duration));
                    let mut notify_f = core::pin::pin!(self.notify.notified());
                    match crate::platform::select::select2(&mut sleep_f, &mut notify_f).await {
                        crate::platform::select::Either::A(()) => {}
                        crate::platform::select::Either::B(()) => {}
                    }
                }
                None => {
                    self.notify.notified().await;
                }
            }
        }
    }

    pub fn next_deadline(&self) -> Option<Instant> {
        self.lock_state()
            .tasks
            .iter()
            .next()
            .map(|(key, _)| key.execute_at)
    }
}

#[test]
fn test_timer() {
    use core::time::Duration;
    let timer = Timer::new();
    let now = Instant::now();
    let task_id = timer.timeout_at(now, "task1");
    assert_eq!(task_id, 1);
    assert_eq!(timer.cancel(task_id), Some("task1"));
    assert_eq!(timer.cancel(task_id), None);

    timer.timeout_at(now, "task2");
    let must_hass_task_2 = timer.poll(now + Duration::from_secs(1));
    assert_eq!(must_hass_task_2.len(), 1);

    timer.timeout_at(now + Duration::from_millis(1001), "task3");
    let non_tasks = timer.poll(now + Duration::from_secs(1));
    assert_eq!(non_tasks.len(), 0);
    assert_eq!(timer.len(), 1);
}

/// Coarse timers set at different moments within a tick share one deadline, never before
/// the one asked for nor a tick after it; a zero duration is not delayed.
#[test]
fn coarse_timers_share_a_tick() {
    use core::time::Duration;
    let timer = Timer::new();
    let asked = Instant::now() + Duration::from_secs(5);
    timer.timeout_coarse(Duration::from_secs(5), "first");
    std::thread::sleep(Duration::from_millis(3));
    timer.timeout_coarse(Duration::from_secs(5), "second");
    let deadline = timer.next_deadline().expect("a deadline");
    assert!(deadline >= asked);
    assert!(deadline.checked_duration_since(asked).unwrap() <= COARSE_TICK);
    let on_time = timer.poll(deadline);
    // Both, unless the 3 ms straddled a tick (then the second comes one tick later).
    if on_time != vec!["first", "second"] {
        assert_eq!(on_time, vec!["first"]);
        assert_eq!(timer.poll(deadline + COARSE_TICK), vec!["second"]);
    }

    let now = Instant::now();
    timer.timeout_coarse(Duration::ZERO, "at once");
    assert!(timer.next_deadline().unwrap() <= Instant::now());
    assert_eq!(timer.poll(now + Duration::from_millis(1)), vec!["at once"]);
}

#[cfg(all(test, feature = "platform-tokio"))]
mod tokio_tests {
    use super::*;

    #[tokio::test]
    async fn wait_for_ready_async_returns_ready() {
        let timer = Timer::new();
        timer.timeout(Duration::from_millis(50), "ready");

        let ready = tokio::time::timeout(Duration::from_secs(1), timer.wait_for_ready())
            .await
            .expect("wait_for_ready_async timed out");
        assert_eq!(ready, vec!["ready"]);
    }

    #[tokio::test]
    async fn wait_for_ready_async_wakes_on_new_timer() {
        let timer = Arc::new(Timer::new());
        timer.timeout(Duration::from_secs(5), "late");

        let worker = Arc::clone(&timer);
        let wait_handle = tokio::spawn(async move { worker.wait_for_ready().await });

        tokio::time::sleep(Duration::from_millis(100)).await;
        timer.timeout(Duration::from_millis(200), "early");

        let ready = tokio::time::timeout(Duration::from_secs(2), wait_handle)
            .await
            .expect("wait_for_ready_async task timed out")
            .expect("wait_for_ready_async task panicked");

        assert_eq!(ready, vec!["early"]);
    }

    #[tokio::test]
    async fn wait_for_ready_sleeps_through_a_cancelled_head() {
        let timer = Arc::new(Timer::new());
        let head = timer.timeout(Duration::from_millis(100), "cancelled");
        timer.timeout(Duration::from_millis(300), "kept");

        let worker = Arc::clone(&timer);
        let wait_handle = tokio::spawn(async move { worker.wait_for_ready().await });
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert_eq!(timer.cancel(head), Some("cancelled"));

        let ready = tokio::time::timeout(Duration::from_secs(2), wait_handle)
            .await
            .expect("wait_for_ready task timed out")
            .expect("wait_for_ready task panicked");
        assert_eq!(ready, vec!["kept"]);
    }
}

impl<T> Timer<T> {
    fn lock_state(&self) -> MutexGuard<'_, TimerState<T>> {
        self.state.lock()
    }

    fn collect_ready(state: &mut TimerState<T>, now: Instant) -> Vec<T> {
        let mut ready = Vec::new();

        while let Some(key) = state.tasks.keys().next().cloned() {
            if key.execute_at > now {
                break;
            }

            if let Some(value) = state.tasks.remove(&key) {
                state.id_to_tasks.remove(&key.task_id);
                ready.push(value);
            }
        }

        ready
    }
}

struct TimerState<T> {
    tasks: BTreeMap<TimerKey, T>,
    id_to_tasks: BTreeMap<u64, Instant>,
}

impl<T> TimerState<T> {
    fn new() -> Self {
        Self {
            tasks: BTreeMap::new(),
            id_to_tasks: BTreeMap::new(),
        }
    }
}
