//! Threads that are to run beside the one that starts them, now.
//!
//! On a machine whose other CPUs are idle, Linux often starts a new thread
//! on its parent's CPU, where it waits until the parent blocks or the load
//! balancer moves it, up to a scheduler tick later. Measured on a 2-CPU
//! machine: a thread spawned beside 2 ms of work started after the 2 ms, so
//! work meant to overlap ran one after the other. [`spawn_beside`] lets the
//! new thread run at once and move itself to another CPU, then gives it back
//! every CPU it may use.

use std::io;
use std::thread::JoinHandle;

/// Spawn `f` on a thread named `name` that runs on another CPU than this
/// one, when there is one; otherwise (one CPU, no affinity calls) a thread as
/// any other.
pub fn spawn_beside<F, T>(name: &str, f: F) -> io::Result<JoinHandle<T>>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    let handle = std::thread::Builder::new()
        .name(name.to_owned())
        .spawn(move || {
            move_off_this_cpu();
            f()
        })?;
    // The new thread moves itself as soon as it runs: let it run.
    std::thread::yield_now();
    Ok(handle)
}

/// Move the calling thread off the CPU it runs on, then allow it every CPU
/// it was allowed (the move stays: a thread is not moved back to a CPU it
/// may use). Best effort: any failure leaves the thread where it is.
#[cfg(target_os = "linux")]
fn move_off_this_cpu() {
    use rustix::thread::{sched_getaffinity, sched_getcpu, sched_setaffinity};
    let Ok(allowed) = sched_getaffinity(None) else {
        return;
    };
    let mut elsewhere = allowed;
    elsewhere.unset(sched_getcpu());
    if elsewhere.count() > 0 && sched_setaffinity(None, &elsewhere).is_ok() {
        let _ = sched_setaffinity(None, &allowed);
    }
}

/// Elsewhere the thread starts where the scheduler puts it.
#[cfg(not(target_os = "linux"))]
fn move_off_this_cpu() {}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    #[test]
    fn the_thread_runs_its_work_and_keeps_every_cpu_it_was_allowed() {
        let allowed = rustix::thread::sched_getaffinity(None).expect("affinity");
        let h = spawn_beside("runbook-test", || {
            let mine = rustix::thread::sched_getaffinity(None).expect("affinity");
            (mine.count(), 42)
        })
        .expect("spawned");
        assert_eq!(h.join().expect("joined"), (allowed.count(), 42));
    }
}
