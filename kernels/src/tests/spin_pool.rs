//! The spinning helpers run every index once, on any thread count, and pass panics on.

use std::sync::atomic::{AtomicUsize, Ordering};

use crate::spin_pool::run;

/// How often each index of `0..total` was called by one `run`.
fn counts(threads: usize, total: usize) -> Vec<usize> {
    let calls: Vec<AtomicUsize> = (0..total).map(|_| AtomicUsize::new(0)).collect();
    run(threads, total, &|i| {
        calls[i].fetch_add(1, Ordering::Relaxed);
    });
    calls.into_iter().map(AtomicUsize::into_inner).collect()
}

#[test]
fn every_index_runs_exactly_once() {
    for threads in [1, 2, 3, 8] {
        for total in [0, 1, 2, 7, 64, 1000] {
            // Many jobs in a row: a helper still inside the previous job would show up as a
            // double count or a missed index.
            for _ in 0..50 {
                assert_eq!(counts(threads, total), vec![1; total], "{threads} threads, {total} indices");
            }
        }
    }
}

#[test]
fn a_job_started_inside_a_job_runs_on_rayon() {
    let inner = AtomicUsize::new(0);
    run(2, 4, &|_| {
        assert_eq!(counts(2, 5), vec![1; 5]);
        inner.fetch_add(1, Ordering::Relaxed);
    });
    assert_eq!(inner.into_inner(), 4);
}

#[test]
fn jobs_from_several_threads_do_not_mix() {
    std::thread::scope(|s| {
        for t in 0..4 {
            s.spawn(move || {
                for round in 0..200 {
                    let total = 1 + (t * 31 + round) % 40;
                    assert_eq!(counts(2, total), vec![1; total]);
                }
            });
        }
    });
}

#[test]
fn a_panicking_job_panics_the_caller_and_the_pool_keeps_working() {
    let outcome = std::panic::catch_unwind(|| {
        run(2, 64, &|i| {
            if i % 7 == 3 {
                panic!("index {i}");
            }
        })
    });
    assert!(outcome.is_err());
    assert_eq!(counts(2, 64), vec![1; 64]);
}

#[test]
fn a_step_of_any_size_visits_every_item_once() {
    let pool = rayon::ThreadPoolBuilder::new().num_threads(3).build().unwrap();
    for rows in [1, 4, 5, 512] {
        let mut items: Vec<(usize, usize)> = (0..37).map(|i| (i, 0)).collect();
        pool.install(|| crate::for_each_in_step(rows, &mut items, |(i, seen)| *seen += *i + 1));
        assert!(items.iter().all(|&(i, seen)| seen == i + 1), "{rows} rows");
    }
}
