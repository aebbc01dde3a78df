//! Whole wake–sleep cycles of full PAD at full size: batch 64 and 256, 1 and 2 threads.
//!
//! `cargo bench --bench cycle`; criterion's time is one cycle (Wake, NREM, REM with their Adam
//! steps) and "elem/s" is images per second. `padsim bench` prints the same measurement with
//! cycles/s, GFLOP/s and the share of the GEMM ceiling.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use padsim::bench::brain_and_batch;
use padsim::brain::schedule::Condition;
use std::time::Duration;

fn cycles(c: &mut Criterion) {
    let mut group = c.benchmark_group("cycle");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(3))
        .measurement_time(Duration::from_secs(15));
    for threads in [1, 2] {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .expect("thread pool");
        for batch in [64, 256] {
            let (mut brain, images) = brain_and_batch(Condition::FullPad, batch);
            group.throughput(Throughput::Elements(batch as u64));
            group.bench_with_input(
                BenchmarkId::new(format!("full_pad/threads{threads}"), batch),
                &batch,
                |b, _| pool.install(|| b.iter(|| brain.cycle(&images))),
            );
        }
    }
    group.finish();
}

criterion_group!(benches, cycles);
criterion_main!(benches);
