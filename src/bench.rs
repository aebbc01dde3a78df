//! Throughput on this machine: whole wake–sleep cycles, the encoder alone, and the GEMM
//! ceiling both are compared with.
//!
//! ```text
//! cycles/s  = cycles timed / wall time          (median over repeats)
//! images/s  = batch · cycles/s                  (encoder: images encoded / wall time)
//! GFLOP/s   = GEMM FLOPs of one unit · units/s  (FLOPs counted by kernels::gemm)
//! share     = GFLOP/s / ceiling                 (ceiling: a 128×4096×1024 product, same threads)
//! steal     = Δ steal / Δ all CPU time of /proc/stat's `cpu` line, over the timed repeats
//! ```
//!
//! Steal is the machine-wide share of CPU time the hypervisor gave to other guests while the
//! repeats ran: on shared virtual machines a few percent of it costs a two-thread run far more
//! (a thread waits at every join while the other's vCPU is descheduled), so it says whether a
//! figure can be trusted.
//!
//! Inputs are random images in [-1, 1]; a cycle costs the same whatever the pixels.
//!
//! PAD equivalent: timing the body of the reference's training loop (one mini-batch through
//! Wake, NREM and REM) and its feature loop (`netE(x)` under `torch.no_grad()`).

use crate::brain::schedule::Condition;
use crate::brain::Brain;
use crate::cortex::{Activity, Architecture};
use crate::data::Dataset;
use crate::eval::features;
use crate::kernels::bf16::Bf16Path;
use crate::kernels::gemm::{self, Op, Precision};
use crate::plasticity::AdamConfig;
use ndarray::Array4;
use ndarray_rand::rand::Rng;
use ndarray_rand::rand_distr::Uniform;
use ndarray_rand::RandomExt;
use rayon::ThreadPool;
use std::time::Instant;

/// What one measurement runs.
#[derive(Clone, Copy, Debug)]
pub struct BenchSettings {
    /// Images per mini-batch.
    pub batch: usize,
    /// Worker threads (a rayon pool of this size).
    pub threads: usize,
    /// Units (cycles or encoder batches) timed per repeat.
    pub units: usize,
    /// Untimed units before the first repeat (page faults, caches, Adam state allocation).
    pub warmup: usize,
    /// Timed repeats; the median is reported.
    pub repeats: usize,
    /// Operands of the f32 products (set in every worker of the pool).
    pub precision: Precision,
}

/// The result of one measurement.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Throughput {
    /// The processor it ran on ([`cpu_model`]): machines of one kind are not always the same
    /// CPU, and absolute figures are only comparable on the same one.
    pub cpu: String,
    /// What was measured: `cycle` (with the condition) or `encoder`.
    pub what: String,
    /// The products' operands: `f32`, or `bf16` with the kernel path that ran (`bf16/amx`).
    pub precision: String,
    /// Images per mini-batch.
    pub batch: usize,
    /// Worker threads.
    pub threads: usize,
    /// Units per second of every repeat.
    pub per_second: Vec<f64>,
    /// Median of `per_second`.
    pub median_per_second: f64,
    /// `batch · median_per_second`.
    pub images_per_second: f64,
    /// GEMM work of one unit, GFLOP.
    pub gflop_per_unit: f64,
    /// Achieved GEMM rate at the median, GFLOP/s.
    pub gflops: f64,
    /// The measured GEMM ceiling on the same threads, GFLOP/s.
    pub ceiling_gflops: f64,
    /// `gflops / ceiling_gflops`.
    pub share_of_ceiling: f64,
    /// Machine-wide share of CPU time stolen by the hypervisor during the timed repeats
    /// ([`CpuTimes::steal_share_since`]); `None` where `/proc/stat` cannot be read.
    pub steal_share: Option<f64>,
}

/// Cumulative CPU time of the whole machine, in clock ticks, from the `cpu` line of
/// `/proc/stat`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CpuTimes {
    /// Ticks stolen by the hypervisor (the eighth number: `steal`).
    pub steal: u64,
    /// Ticks of every kind (user, nice, system, idle, iowait, irq, softirq, steal; guest time
    /// is already inside user and nice, so it is not counted twice).
    pub total: u64,
}

impl CpuTimes {
    /// This machine's CPU times now, or `None` where `/proc/stat` cannot be read (not Linux).
    pub fn now() -> Option<Self> {
        Self::parse(&std::fs::read_to_string("/proc/stat").ok()?)
    }

    /// The times of the aggregate `cpu` line of a `/proc/stat` text (`None` without one).
    /// Kernels before 2.6.11 have no steal field; it counts as zero.
    pub fn parse(stat: &str) -> Option<Self> {
        let line = stat.lines().find(|line| line.starts_with("cpu "))?;
        let ticks: Vec<u64> = line
            .split_whitespace()
            .skip(1)
            .take(8)
            .map(str::parse)
            .collect::<Result<_, _>>()
            .ok()?;
        (ticks.len() >= 4).then(|| Self {
            steal: ticks.get(7).copied().unwrap_or(0),
            total: ticks.iter().sum(),
        })
    }

    /// Share of the CPU time since `earlier` that was stolen (0 when no time passed).
    pub fn steal_share_since(&self, earlier: &Self) -> f64 {
        let total = self.total.saturating_sub(earlier.total);
        let steal = self.steal.saturating_sub(earlier.steal);
        if total == 0 {
            0.0
        } else {
            steal as f64 / total as f64
        }
    }
}

/// Median of a non-empty sample (mean of the middle two for even sizes).
pub fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let mid = sorted.len() / 2;
    if sorted.len().is_multiple_of(2) {
        (sorted[mid - 1] + sorted[mid]) / 2.0
    } else {
        sorted[mid]
    }
}

fn pool(threads: usize, precision: Precision) -> ThreadPool {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .start_handler(move |_| gemm::set_thread_precision(precision))
        .build()
        .expect("a thread pool of the requested size")
}

/// `f32`, or `bf16/<path>` with the bfloat16 kernel path this CPU runs.
pub fn precision_name(precision: Precision) -> String {
    match precision {
        Precision::F32 => "f32".into(),
        Precision::Bf16 => format!("bf16/{}", Bf16Path::detect().name()),
    }
}

/// GEMM FLOPs performed so far by the threads of `pool` (the counters are per thread).
fn pool_flops(pool: &ThreadPool) -> u64 {
    pool.broadcast(|_| gemm::flops_performed()).iter().sum()
}

/// `len` random 3×32×32 images (one class), as the encoder sees a data set.
fn random_dataset(len: usize) -> Dataset {
    let mut rng = crate::rng::stream(0, "bench/dataset");
    let pixels = (0..len * 3 * 32 * 32).map(|_| rng.random()).collect();
    Dataset::new(
        "random",
        3,
        32,
        32,
        pixels,
        vec![0; len],
        vec!["noise".into()],
    )
    .expect("a well-formed data set")
}

/// A freshly initialised full-size brain running `condition`, and a batch of random images
/// in [-1, 1] (a cycle costs the same whatever the pixels).
pub fn brain_and_batch(condition: Condition, batch: usize) -> (Brain, Activity) {
    let arch = Architecture::default();
    let brain = Brain::new(&arch, condition.schedule(), AdamConfig::default(), 0);
    let mut rng = crate::rng::stream(0, "bench/images");
    let uniform = Uniform::new(-1.0f32, 1.0).expect("non-empty range");
    let shape = (batch, arch.image_channels, 32, 32);
    let images = Activity::from_nchw(Array4::random_using(shape, uniform, &mut rng).view());
    (brain, images)
}

/// What [`time_units`] measured: units per second of every repeat, the GEMM work of one
/// unit (GFLOP) and the steal share over the repeats.
struct Timing {
    per_second: Vec<f64>,
    gflop_per_unit: f64,
    steal_share: Option<f64>,
}

/// Times `unit` on `pool` (`settings.warmup` untimed calls, then `settings.repeats` ×
/// `settings.units` timed ones) and counts the GEMM FLOPs of one call.
fn time_units(
    pool: &ThreadPool,
    settings: &BenchSettings,
    mut unit: impl FnMut() + Send,
) -> Timing {
    let mut unit = move || pool.install(&mut unit);
    for _ in 0..settings.warmup {
        unit();
    }
    let before = pool_flops(pool);
    unit();
    let flop_per_unit = (pool_flops(pool) - before) as f64;
    let cpu_before = CpuTimes::now();
    let per_second = (0..settings.repeats.max(1))
        .map(|_| {
            let started = Instant::now();
            for _ in 0..settings.units.max(1) {
                unit();
            }
            settings.units.max(1) as f64 / started.elapsed().as_secs_f64().max(1e-12)
        })
        .collect();
    let steal_share = cpu_before
        .zip(CpuTimes::now())
        .map(|(before, after)| after.steal_share_since(&before));
    Timing {
        per_second,
        gflop_per_unit: flop_per_unit * 1e-9,
        steal_share,
    }
}

fn summarise(
    what: String,
    settings: &BenchSettings,
    timing: Timing,
    ceiling_gflops: f64,
) -> Throughput {
    let Timing {
        per_second,
        gflop_per_unit,
        steal_share,
    } = timing;
    let median_per_second = median(&per_second);
    let gflops = gflop_per_unit * median_per_second;
    Throughput {
        cpu: cpu_model(),
        what,
        precision: precision_name(settings.precision),
        batch: settings.batch,
        threads: settings.threads,
        per_second,
        median_per_second,
        images_per_second: settings.batch as f64 * median_per_second,
        gflop_per_unit,
        gflops,
        ceiling_gflops,
        share_of_ceiling: gflops / ceiling_gflops,
        steal_share,
    }
}

/// This machine's processor as the kernel describes it: the first `model name` of
/// `/proc/cpuinfo` with its `cpu family` and `model` numbers (virtual machines often show only
/// a generic name), or `unknown CPU` where there is none (not Linux, or no such field).
pub fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|text| describe_cpu(&text))
        .unwrap_or_else(|| "unknown CPU".into())
}

/// `model name (family F, model M)` from the first processor of a `/proc/cpuinfo` text.
fn describe_cpu(cpuinfo: &str) -> Option<String> {
    let first = cpuinfo.split("\n\n").next()?;
    let field = |name: &str| {
        first.lines().find_map(|line| {
            let (key, value) = line.split_once(':')?;
            (key.trim() == name).then(|| value.trim().to_string())
        })
    };
    let name = field("model name")?;
    Some(match (field("cpu family"), field("model")) {
        (Some(family), Some(model)) => format!("{name} (family {family}, model {model})"),
        _ => name,
    })
}

/// Whole cycles of `condition` at PAD's full size, with Adam as in the paper.
pub fn cycles(condition: Condition, settings: &BenchSettings, ceiling_gflops: f64) -> Throughput {
    let (mut brain, images) = brain_and_batch(condition, settings.batch);
    let timing = time_units(
        &pool(settings.threads, settings.precision),
        settings,
        || {
            brain.cycle(&images);
        },
    );
    summarise(
        format!("cycle ({condition})"),
        settings,
        timing,
        ceiling_gflops,
    )
}

/// The feedforward pathway alone, as feature extraction runs it (no learning): `units`
/// passes over a data set of `batch` random images.
pub fn encoder(settings: &BenchSettings, ceiling_gflops: f64) -> Throughput {
    let (brain, _) = brain_and_batch(Condition::FullPad, 0);
    let data = random_dataset(settings.batch);
    let timing = time_units(
        &pool(settings.threads, settings.precision),
        settings,
        || {
            features::encode(&brain.cortex.feedforward, &data, settings.batch, None);
        },
    );
    summarise("encoder".into(), settings, timing, ceiling_gflops)
}

/// Shape of the ceiling product: as large as conv2's (C_out 128, K = 64·4·4), wide enough to
/// keep every thread busy.
const CEILING_SHAPE: (usize, usize, usize) = (128, 4096, 1024);

/// Best GEMM rate (GFLOP/s) of a `128×4096×1024` product on `threads` threads at
/// `precision` (bf16: both operands packed inside the timed product, as a convolution does):
/// the practical ceiling of any convolution here.
pub fn gemm_ceiling(threads: usize, repeats: usize, precision: Precision) -> f64 {
    let (m, n, k) = CEILING_SHAPE;
    pool(threads, precision).install(|| {
        let a = vec![0.5f32; m * k];
        let b = vec![0.25f32; k * n];
        let mut c = vec![0.0f32; m * n];
        let mut product = || gemm::matmul(m, n, k, &a, Op::Plain, &b, Op::Plain, 0.0, &mut c);
        product();
        (0..repeats.max(1))
            .map(|_| {
                let started = Instant::now();
                for _ in 0..10 {
                    product();
                }
                10.0 * 2.0 * (m * n * k) as f64 * 1e-9 / started.elapsed().as_secs_f64()
            })
            .fold(0.0, f64::max)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_and_even_samples() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), 2.5);
    }

    #[test]
    fn the_cpu_is_described_by_the_first_processors_name_family_and_model() {
        let cpuinfo = "processor\t: 0\nvendor_id\t: AuthenticAMD\ncpu family\t: 26\n\
                       model\t\t: 2\nmodel name\t: AMD EPYC 9R45 \nflags\t\t: fpu\n\n\
                       processor\t: 1\nmodel name\t: other\n";
        assert_eq!(
            describe_cpu(cpuinfo).as_deref(),
            Some("AMD EPYC 9R45 (family 26, model 2)")
        );
        assert_eq!(
            describe_cpu("model name\t: Some CPU\n").as_deref(),
            Some("Some CPU")
        );
        assert_eq!(describe_cpu("processor\t: 0\nmodel\t: 2\n"), None);
        assert!(!cpu_model().is_empty());
    }

    #[test]
    fn steal_is_read_from_the_aggregate_cpu_line() {
        let stat = "cpu  100 5 40 800 10 1 2 42 7 0\ncpu0 50 2 20 400 5 0 1 21 3 0\nintr 1 2\n";
        let times = CpuTimes::parse(stat).expect("a cpu line");
        assert_eq!(
            times,
            CpuTimes {
                steal: 42,
                total: 100 + 5 + 40 + 800 + 10 + 1 + 2 + 42
            }
        );
        let later = CpuTimes::parse("cpu  150 5 50 830 10 1 2 52 7 0\n").expect("a cpu line");
        assert_eq!(later.steal_share_since(&times), 10.0 / 100.0);
        assert_eq!(times.steal_share_since(&times), 0.0);
        // Old kernels have no steal field; garbled or missing lines give nothing.
        assert_eq!(CpuTimes::parse("cpu  1 2 3 4\n").map(|t| t.steal), Some(0));
        assert_eq!(CpuTimes::parse("cpu  1 x 3 4\n"), None);
        assert_eq!(CpuTimes::parse("cpu0 1 2 3 4\n"), None);
    }

    #[test]
    fn a_cycle_counts_the_models_gemm_work() {
        let settings = BenchSettings {
            batch: 2,
            threads: 1,
            units: 1,
            warmup: 0,
            repeats: 1,
            precision: Precision::F32,
        };
        let t = cycles(Condition::FullPad, &settings, 100.0);
        // One full PAD cycle at batch 64 is 37.5 GFLOP; the work scales with the batch.
        let expected = 37.5 * 2.0 / 64.0;
        assert!(
            (t.gflop_per_unit - expected).abs() < 0.05 * expected,
            "{} GFLOP per cycle at batch 2, expected about {expected}",
            t.gflop_per_unit
        );
        assert!(t.median_per_second > 0.0 && t.images_per_second == 2.0 * t.median_per_second);
        if cfg!(target_os = "linux") {
            let steal = t.steal_share.expect("/proc/stat on Linux");
            assert!((0.0..=1.0).contains(&steal), "steal share {steal}");
        }
    }
}
