//! In-process benchmarks: instantiate and replay the seed MFA recovery
//! journal, against a yardstick measured in the same run (instantiate and
//! call `yardstick`, a runbook that does nothing, under the same engine);
//! one host call through check, journal and dispatch to a no-op backend, at
//! 10 and at 10,000 calls a run (the slope from 0 calls of `bench-calls`), so
//! a cost that grows with the run shows; and journal verification
//! throughput. `scripts/bench` runs these and the whole-process comparison,
//! and prints the ratios.

use std::collections::BTreeMap;
use std::path::PathBuf;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use runbook_host::backend::Scripted;
use runbook_host::cache::Cache;
use runbook_host::journal::{Journal, JournalWriter, Mode};
use runbook_host::project::Project;
use runbook_host::replay::Replayer;
use runbook_host::request::{CallResult, Request, Response};
use runbook_host::sandbox::{self, Consent, Limits, Loaded, RunSpec, Runtime};

fn project() -> Project {
    Project::find(None)
        .expect("run from the checkout")
        .expect("the checkout holds runbooks/")
}

fn load(rt: &Runtime, wasm: PathBuf) -> Loaded {
    let bytes = std::fs::read(&wasm).unwrap_or_else(|e| {
        panic!(
            "{}: {e}; build the runbooks first (scripts/bench does)",
            wasm.display()
        )
    });
    rt.load(&wasm.display().to_string(), &bytes).unwrap()
}

fn no_backend() -> Box<Scripted<impl FnMut(&Request) -> CallResult + Send>> {
    Box::new(Scripted(|_: &Request| -> CallResult {
        Ok(Response::MfaDevices(vec![]))
    }))
}

fn spec(params: BTreeMap<String, String>, replay: Option<Replayer>) -> RunSpec {
    RunSpec {
        params,
        mode: if replay.is_some() {
            Mode::Replay
        } else {
            Mode::Live
        },
        target: BTreeMap::new(),
        backend: no_backend(),
        consent: Consent::Given,
        limits: Limits::default(),
        journal: JournalWriter::in_memory(),
        echo: false,
        replay: replay.map(|r| Box::new(r) as Box<dyn runbook_host::backend::Recording>),
        grant: None,
        resumes: None,
        signed_by: None,
        world: runbook_host::sandbox::WasiWorld::LEGACY,
        caller: None,
    }
}

/// A run of `bench-calls` making `n` calls (up to 20,000: past the default
/// limit of 1,000).
fn calls_spec(n: u64) -> RunSpec {
    RunSpec {
        limits: Limits {
            max_calls: 20_000,
            ..Limits::default()
        },
        ..spec(
            BTreeMap::from([
                ("user".to_owned(), "mfa-test".to_owned()),
                ("calls".to_owned(), n.to_string()),
            ]),
            None,
        )
    }
}

fn benches(c: &mut Criterion) {
    let project = project();
    // Run after run in one process, as the harness does: the deadline
    // ticker's thread is kept between runs (a command that runs once starts
    // one per run, about 50 us, counted in the whole-process figures).
    let rt = Runtime::with_cache(Cache::disabled())
        .unwrap()
        .keep_ticking(std::time::Duration::from_secs(1));
    let seed_path = project
        .root()
        .join("tests/fixtures/seed-case/journal.jsonl");
    let seed = Journal::read(&seed_path).unwrap();
    let mfa = load(&rt, project.wasm_path("mfa-recovery"));
    let calls = load(&rt, project.wasm_path("bench-calls"));
    let yardstick = load(&rt, project.wasm_path("yardstick"));

    c.bench_function("yardstick", |b| {
        b.iter(|| {
            let report = sandbox::run(&rt, &yardstick, spec(BTreeMap::new(), None)).unwrap();
            assert_eq!(report.exit_code, 0);
        })
    });

    c.bench_function("replay_seed_journal", |b| {
        b.iter(|| {
            let replayer = Replayer::new("seed", &seed);
            let report = sandbox::run(
                &rt,
                &mfa,
                spec(seed.header.parameters.clone(), Some(replayer)),
            )
            .unwrap();
            assert_eq!(report.exit_code, 0);
        })
    });

    let mut group = c.benchmark_group("host_calls");
    for n in [0u64, 10, 10_000] {
        group.throughput(Throughput::Elements(n.max(1)));
        if n >= 10_000 {
            group.sample_size(10);
        }
        group.bench_function(n.to_string(), |b| {
            b.iter(|| {
                let report = sandbox::run(&rt, &calls, calls_spec(n)).unwrap();
                assert_eq!(report.exit_code, 0);
            })
        });
    }
    group.finish();

    // A journal of 10,000 calls, verified from text.
    let report = sandbox::run(&rt, &calls, calls_spec(10_000)).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big.jsonl");
    let mut w = JournalWriter::create(&path).unwrap();
    for r in report.journal.records() {
        w.append(r.clone()).unwrap();
    }
    let text = std::fs::read_to_string(&path).unwrap();
    let mut group = c.benchmark_group("journal_verify");
    group.throughput(Throughput::Bytes(text.len() as u64));
    group.bench_function("10k_calls", |b| {
        b.iter(|| Journal::parse("big", &text).unwrap())
    });
    group.finish();
}

criterion_group!(name = all; config = Criterion::default().sample_size(30); targets = benches);
criterion_main!(all);
