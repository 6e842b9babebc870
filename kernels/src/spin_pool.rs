//! Helper threads that spin between decode products instead of sleeping.
//!
//! A decode step runs a few hundred small matrix-vector products with a little serial work
//! between them. Rayon's idle workers yield a few dozen times and then sleep on a futex, so on a
//! two-core machine the second worker fell asleep between most products and every product waited
//! for it to wake (about 100 context switches per token, decode speed swinging between 10 and 21
//! tokens per second from run to run on Qwen2.5-Coder-1.5B). These helpers spin for a while after
//! each product, so the next one finds them awake, and park once the engine goes quiet.
//!
//! One caller at a time posts a job of `total` indices; the caller and the helpers claim indices
//! from a shared counter until none is left. `state` packs the job's generation, a closed flag
//! and how many helpers are inside the job: a helper may only join an open job of the generation
//! it saw, and the caller closes the job once it runs out of indices and then waits for the
//! helpers inside to leave, so no helper touches a job after `run` returns.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant};

/// Bits of `state` below the generation.
const GENERATION_SHIFT: u32 = 16;
/// Set once the caller has run out of indices: no helper may join any more.
const CLOSED: usize = 1 << 15;
/// How many helpers are inside the job.
const ACTIVE: usize = CLOSED - 1;
/// How long an idle helper spins before it parks: long enough to cover the serial work between
/// two products of one decode step, short enough that an idle engine stops using the cores.
const SPIN: Duration = Duration::from_millis(5);
/// The most helpers a pool starts; more threads than this fall back to rayon.
const MAX_HELPERS: usize = ACTIVE;

/// A job: the function every index of `0..total` is passed to.
type Job<'a> = &'a (dyn Fn(usize) + Sync);

struct Shared {
    /// Generation, closed flag and active helpers; see the module documentation.
    state: AtomicUsize,
    /// The current job, as the address of a `Job` on the caller's stack.
    job: AtomicUsize,
    /// Indices in the current job.
    total: AtomicUsize,
    /// The next index to claim.
    next: AtomicUsize,
    /// Helpers with an index below this take part in the current job.
    wanted: AtomicUsize,
    /// Set when a helper's call of the job panicked; the caller panics in turn.
    panicked: AtomicBool,
    /// Helpers parked, waiting on `wake`.
    parked: Mutex<usize>,
    wake: Condvar,
}

/// The process's helpers; `run` posts to them.
struct SpinPool {
    shared: &'static Shared,
    /// Helpers started so far; held while a job runs, so jobs never overlap.
    helpers: Mutex<usize>,
}

fn pool() -> &'static SpinPool {
    static POOL: OnceLock<SpinPool> = OnceLock::new();
    POOL.get_or_init(|| SpinPool {
        shared: Box::leak(Box::new(Shared {
            state: AtomicUsize::new(0),
            job: AtomicUsize::new(0),
            total: AtomicUsize::new(0),
            next: AtomicUsize::new(0),
            wanted: AtomicUsize::new(0),
            panicked: AtomicBool::new(false),
            parked: Mutex::new(0),
            wake: Condvar::new(),
        })),
        helpers: Mutex::new(0),
    })
}

/// Calls `f` on each item with its partner `with[i]` (the two zipped, as rayon's `zip` would),
/// on as many threads as the current rayon pool has, through `run`.
pub(crate) fn for_each_with<T: Send, W: Sync>(items: Vec<T>, with: &[W], f: impl Fn(&mut T, &W) + Sync) {
    // The pairs are built in their locks: one allocation per call, as decode makes hundreds of
    // these calls a token.
    let pairs: Vec<Mutex<(T, &W)>> = items.into_iter().zip(with).map(Mutex::new).collect();
    for_each_locked(&pairs, |(item, with)| f(item, with));
}

/// Calls `f` on every item, on as many threads as the current rayon pool has, through `run`.
pub(crate) fn for_each_mut<T: Send>(items: &mut [T], f: impl Fn(&mut T) + Sync) {
    let items: Vec<Mutex<&mut T>> = items.iter_mut().map(Mutex::new).collect();
    for_each_locked(&items, |item| f(item));
}

/// Calls `f` on the content of every lock, through `run`. A lock per item hands each index its
/// own `&mut T`; each is taken once, uncontended.
fn for_each_locked<T: Send>(items: &[Mutex<T>], f: impl Fn(&mut T) + Sync) {
    run(rayon::current_num_threads().max(1), items.len(), &|i| {
        let mut item = items[i].lock().unwrap_or_else(PoisonError::into_inner);
        f(&mut item);
    });
}

/// Calls `f(i)` for every `i` in `0..total`, on the calling thread and on up to `threads - 1`
/// spinning helpers. Falls back to rayon when another job is running (a nested or concurrent
/// call), or when no helper can be started.
pub(crate) fn run(threads: usize, total: usize, f: &(dyn Fn(usize) + Sync)) {
    use rayon::prelude::*;
    let helpers_wanted = threads.saturating_sub(1).min(total.saturating_sub(1));
    if helpers_wanted == 0 {
        (0..total).for_each(f);
        return;
    }
    let pool = pool();
    if let Ok(mut started) = pool.helpers.try_lock() {
        while *started < helpers_wanted.min(MAX_HELPERS) {
            let (shared, index) = (pool.shared, *started);
            let spawned =
                std::thread::Builder::new().name(format!("hearth-spin-{index}")).spawn(move || helper(shared, index));
            if spawned.is_err() {
                break;
            }
            *started += 1;
        }
        if *started > 0 {
            pool.shared.post(helpers_wanted.min(*started), total, f);
            return;
        }
    }
    (0..total).into_par_iter().for_each(f);
}

impl Shared {
    /// Runs one job; the caller holds the pool's `helpers` lock.
    fn post(&self, wanted: usize, total: usize, f: Job<'_>) {
        self.job.store(&raw const f as usize, Ordering::Relaxed);
        self.total.store(total, Ordering::Relaxed);
        self.next.store(0, Ordering::Relaxed);
        self.wanted.store(wanted, Ordering::Relaxed);
        // A panic the previous job's caller unwound past before reading it belongs to that job.
        self.panicked.store(false, Ordering::Relaxed);
        let generation = (self.state.load(Ordering::Relaxed) >> GENERATION_SHIFT).wrapping_add(1);
        // Publishes the job's fields above to every helper that reads this generation.
        self.state.store(generation << GENERATION_SHIFT, Ordering::SeqCst);
        if *self.parked.lock().unwrap_or_else(PoisonError::into_inner) > 0 {
            self.wake.notify_all();
        }
        // Closes the job and waits for the helpers inside it even if `f` panics here.
        struct Close<'s>(&'s Shared);
        impl Drop for Close<'_> {
            fn drop(&mut self) {
                self.0.state.fetch_or(CLOSED, Ordering::AcqRel);
                while self.0.state.load(Ordering::Acquire) & ACTIVE != 0 {
                    std::hint::spin_loop();
                }
            }
        }
        let close = Close(self);
        self.claim(f, total);
        drop(close);
        if self.panicked.swap(false, Ordering::AcqRel) {
            panic!("a spinning helper thread panicked inside a matrix product");
        }
    }

    /// Claims and runs indices of the current job until none is left.
    fn claim(&self, f: Job<'_>, total: usize) {
        loop {
            let i = self.next.fetch_add(1, Ordering::Relaxed);
            if i >= total {
                break;
            }
            f(i);
        }
    }

    /// Joins the job of `generation` if it is still open; true when joined.
    fn join(&self, generation: usize) -> bool {
        let mut state = self.state.load(Ordering::Acquire);
        loop {
            if state >> GENERATION_SHIFT != generation || state & CLOSED != 0 {
                return false;
            }
            match self.state.compare_exchange_weak(state, state + 1, Ordering::Acquire, Ordering::Acquire) {
                Ok(_) => return true,
                Err(now) => state = now,
            }
        }
    }
}

/// A helper's loop: wait for a new generation (spinning, then parked), take part if wanted.
fn helper(shared: &'static Shared, index: usize) {
    let mut seen = shared.state.load(Ordering::Acquire) >> GENERATION_SHIFT;
    loop {
        let generation = wait_for_job(shared, seen);
        seen = generation;
        if index >= shared.wanted.load(Ordering::Relaxed) || !shared.join(generation) {
            continue;
        }
        // SAFETY: joining succeeded, so the job is open and its caller is inside `post`, which
        // does not return (and so keeps `job` alive) until this helper leaves below.
        let job = unsafe { *(shared.job.load(Ordering::Relaxed) as *const Job<'_>) };
        let total = shared.total.load(Ordering::Relaxed);
        if catch_unwind(AssertUnwindSafe(|| shared.claim(job, total))).is_err() {
            shared.panicked.store(true, Ordering::Release);
        }
        shared.state.fetch_sub(1, Ordering::Release);
    }
}

/// The next generation after `seen`: spins for `SPIN`, then parks until a caller posts one.
fn wait_for_job(shared: &Shared, seen: usize) -> usize {
    let generation = || shared.state.load(Ordering::Acquire) >> GENERATION_SHIFT;
    let started = Instant::now();
    let mut spins = 0u32;
    loop {
        let now = generation();
        if now != seen {
            return now;
        }
        std::hint::spin_loop();
        spins = spins.wrapping_add(1);
        if spins.is_multiple_of(1024) {
            if started.elapsed() > SPIN {
                break;
            }
            // Lets another thread on this core (the grammar's mask, say) run while nothing is
            // posted; the scheduler returns at once when there is none.
            std::thread::yield_now();
        }
    }
    let mut parked = shared.parked.lock().unwrap_or_else(PoisonError::into_inner);
    *parked += 1;
    // The caller stores the generation before it looks at `parked` under this lock, so either it
    // sees this helper parked and notifies, or this check sees the new generation.
    while generation() == seen {
        parked = shared.wake.wait(parked).unwrap_or_else(PoisonError::into_inner);
    }
    *parked -= 1;
    generation()
}
