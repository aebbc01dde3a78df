//! Evaluation of a trained (or untrained) feedforward pathway by the paper's measures, its
//! record in the run file, and the figures drawn from that record.
//!
//! For one encoder state:
//! - features z of every training and test image (encoder fixed);
//! - linear separability: the paper's SGD probe (lr 0.2, batch 64, 20 epochs) and a
//!   converged logistic-regression probe, train and test accuracy;
//! - occlusion robustness: both probes (trained on clean features) on test images with
//!   per-image tile masks, p = 0, 0.1, …, 1;
//! - latent geometry: intra/inter-class distance ratio and clean-vs-occluded distance over
//!   inter-class distance (p = 0.3);
//! - PCA of test latents to 2-D (occluded versions in the same plane).
//!
//! PAD equivalent: the reference's `linear_classif` evaluation and its occlusion and latent
//! analyses (Figs 4–6 of Deperrois et al. 2022).

use super::config::EvalConfig;
use crate::cortex::FeedforwardPathway;
use crate::data::Dataset;
use crate::data::Split;
use crate::eval::features::{encode, Occlusion};
use crate::eval::geometry::{latent_geometry, Geometry};
use crate::eval::logistic::fit_converged_probe_in_place;
use crate::eval::pca::pca_2d;
use crate::eval::probe::train_sgd_probe;
use crate::kernels::gemm::{thread_precision, with_pool_precision, Precision};
use crate::record::figures::{self, Series};
use crate::record::{RecordError, RunFile};
use ndarray::{s, Array2};
use std::path::Path;
use std::time::Instant;

/// Everything one evaluation measured.
#[derive(Clone, Debug)]
pub struct EvalReport {
    /// Epochs of training the encoder had (0 = untrained).
    pub epoch: usize,
    /// Classes the probes told apart (their output units; chance accuracy is 1/classes).
    pub classes: usize,
    /// SGD probe, training-set accuracy (fraction).
    pub linear_train_accuracy: f64,
    /// SGD probe, test-set accuracy.
    pub linear_test_accuracy: f64,
    /// Converged probe, training-set accuracy.
    pub converged_train_accuracy: f64,
    /// Converged probe, test-set accuracy.
    pub converged_test_accuracy: f64,
    /// L-BFGS iterations of the converged probe.
    pub converged_iterations: usize,
    /// Largest absolute component of its objective's gradient at the end.
    pub converged_gradient_norm: f64,
    /// Whether it reached its tolerance.
    pub converged: bool,
    /// Occlusion probabilities.
    pub occlusion_levels: Vec<f64>,
    /// SGD probe's test accuracy at each level.
    pub occlusion_linear: Vec<f64>,
    /// Converged probe's test accuracy at each level.
    pub occlusion_converged: Vec<f64>,
    /// Latent organisation.
    pub geometry: Geometry,
    /// PCA projection of the first test latents `[n, 2]`.
    pub pca: Array2<f64>,
    /// Their occluded versions in the same plane.
    pub pca_occluded: Array2<f64>,
    /// Their labels.
    pub pca_labels: Vec<u8>,
    /// Encoder throughput during feature extraction, images per second.
    pub images_per_second: f64,
    /// Wall time of the evaluation, seconds.
    pub seconds: f64,
}

/// Evaluates `encoder` (left unchanged but for its kept activity) on `split`.
pub fn evaluate(
    encoder: &mut FeedforwardPathway,
    split: &Split,
    config: &EvalConfig,
    seed: u64,
    epoch: usize,
) -> EvalReport {
    let started = Instant::now();
    // The activity and scratch kept from training are not needed again before the next
    // cycle; what they held goes back to the system for the evaluation's own matrices.
    for area in encoder.areas_mut() {
        area.forget();
    }
    crate::cortex::release_scratch();
    return_freed_memory();
    let classes = split
        .train
        .classes()
        .max(1 + split.train.labels().iter().copied().max().unwrap_or(0) as usize);
    let batch = config.feature_batch;
    // Features at the run's precision (its pool's); the probes, the geometry and the PCA, the
    // measuring instruments, always in f32.
    let precision = thread_precision();
    let features = |set: &Dataset, occlusion: Option<&Occlusion>| {
        with_pool_precision(precision, || encode(encoder, set, batch, occlusion))
    };
    with_pool_precision(Precision::F32, || {
        let train = features(&split.train, None);
        let test = features(&split.test, None);
        // The encoder's patch buffers are dead now; the probes need room.
        return_freed_memory();
        let extracted = (split.train.len() + split.test.len()) as f64;
        let images_per_second = extracted
            / (split.train.len() as f64 / train.images_per_second
                + split.test.len() as f64 / test.images_per_second);

        let (train_labels, test_labels) = (split.train.labels(), split.test.labels());
        let probe_config = crate::eval::probe::ProbeConfig {
            seed,
            ..config.probe.clone()
        };
        let linear = train_sgd_probe(train.z.view(), train_labels, classes, &probe_config);
        let linear_train_accuracy = linear.accuracy(train.z.view(), train_labels);
        // The training features are handed over: the probe standardises them in place.
        let (converged, converged_train_accuracy) =
            fit_converged_probe_in_place(train.z, train_labels, classes, &config.converged);
        let levels: Vec<f64> = (0..config.occlusion_levels)
            .map(|i| i as f64 / (config.occlusion_levels - 1) as f64)
            .collect();
        let mut occlusion_linear = Vec::with_capacity(levels.len());
        let mut occlusion_converged = Vec::with_capacity(levels.len());
        for (i, &p) in levels.iter().enumerate() {
            let z = if p == 0.0 {
                test.z.clone()
            } else {
                let occlusion = Occlusion {
                    tile: config.occlusion_tile,
                    p,
                    seed,
                    purpose: format!("eval/occlusion/{i}"),
                };
                features(&split.test, Some(&occlusion)).z
            };
            occlusion_linear.push(linear.accuracy(z.view(), test_labels));
            occlusion_converged.push(converged.accuracy(z.view(), test_labels));
        }

        let occlusion = Occlusion {
            tile: config.occlusion_tile,
            p: config.geometry_occlusion,
            seed,
            purpose: "eval/geometry".into(),
        };
        let test_occluded = features(&split.test, Some(&occlusion)).z;
        let geometry_config = crate::eval::geometry::GeometryConfig {
            seed,
            ..config.geometry.clone()
        };
        let geometry = latent_geometry(
            test.z.view(),
            test_labels,
            Some(test_occluded.view()),
            &geometry_config,
        );

        let n = config.pca_points.min(split.test.len());
        let pca = pca_2d(test.z.slice(s![..n, ..]));
        let pca_occluded = pca.project(test_occluded.slice(s![..n, ..]));
        EvalReport {
            epoch,
            classes,
            linear_train_accuracy,
            linear_test_accuracy: linear.accuracy(test.z.view(), test_labels),
            converged_train_accuracy,
            converged_test_accuracy: converged.accuracy(test.z.view(), test_labels),
            converged_iterations: converged.iterations,
            converged_gradient_norm: converged.final_gradient_norm,
            converged: converged.converged,
            occlusion_levels: levels,
            occlusion_linear,
            occlusion_converged,
            geometry,
            pca: pca.projection,
            pca_occluded,
            pca_labels: test_labels[..n].to_vec(),
            images_per_second,
            seconds: started.elapsed().as_secs_f64(),
        }
    })
}

/// Hands the heap memory freed so far back to the system. glibc keeps freed blocks of a grown
/// heap resident (large blocks too, once its adaptive mmap threshold has risen), so without
/// this an evaluation after training carried ~100 MB of dead training buffers.
fn return_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only returns free pages to the kernel; it takes no pointers.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Writes a report into the run file: the row of its epoch in `/eval` (a new row, or the
/// existing one when this epoch was evaluated before).
pub fn record(run_file: &RunFile, report: &EvalReport) -> Result<(), RecordError> {
    let epochs = run_file.read_i64_1d("eval/epoch").unwrap_or_default();
    let row = epochs
        .iter()
        .position(|&e| e == report.epoch as i64)
        .unwrap_or(epochs.len());
    run_file.write_i64_at("eval/epoch", row, report.epoch as i64)?;
    run_file.write_i64_at("eval/classes", row, report.classes as i64)?;
    for (path, value) in [
        ("eval/linear/train_accuracy", report.linear_train_accuracy),
        ("eval/linear/test_accuracy", report.linear_test_accuracy),
        (
            "eval/converged/train_accuracy",
            report.converged_train_accuracy,
        ),
        (
            "eval/converged/test_accuracy",
            report.converged_test_accuracy,
        ),
        (
            "eval/converged/iterations",
            report.converged_iterations as f64,
        ),
        (
            "eval/converged/final_gradient_norm",
            report.converged_gradient_norm,
        ),
        ("eval/geometry/intra", report.geometry.intra),
        ("eval/geometry/inter", report.geometry.inter),
        (
            "eval/geometry/intra_inter_ratio",
            report.geometry.intra_inter_ratio,
        ),
        (
            "eval/geometry/clean_occluded",
            report.geometry.clean_occluded.unwrap_or(f64::NAN),
        ),
        (
            "eval/geometry/clean_occluded_ratio",
            report.geometry.clean_occluded_ratio.unwrap_or(f64::NAN),
        ),
        ("eval/features/images_per_second", report.images_per_second),
    ] {
        run_file.write_f64_at(path, row, value)?;
    }
    run_file.write_f64_2d(
        "eval/occlusion/levels",
        Array2::from_shape_vec(
            (1, report.occlusion_levels.len()),
            report.occlusion_levels.clone(),
        )
        .expect("one row")
        .view(),
    )?;
    run_file.append_row_f64(
        "eval/occlusion/test_accuracy",
        &report.occlusion_linear,
        row,
    )?;
    run_file.append_row_f64(
        "eval/occlusion/converged_test_accuracy",
        &report.occlusion_converged,
        row,
    )?;
    let name = format!("eval/pca/epoch_{:04}", report.epoch);
    run_file.write_f64_2d(&name, report.pca.view())?;
    run_file.write_f64_2d(&format!("{name}_occluded"), report.pca_occluded.view())?;
    run_file.write_i64_1d(
        &format!("{name}_labels"),
        &report
            .pca_labels
            .iter()
            .map(|&l| l as i64)
            .collect::<Vec<_>>(),
    )?;
    run_file.flush()
}

/// Draws the run's figures into `dir` from what its run file holds: accuracy vs epoch,
/// occlusion curves, the PCA of the latest evaluation (`pca_latest` clean, occluded,
/// labels) and per-state loss curves.
pub fn render_figures(
    run_file: &RunFile,
    dir: &Path,
    class_names: &[String],
    latest: &EvalReport,
) -> Result<(), RecordError> {
    std::fs::create_dir_all(dir)
        .map_err(|e| RecordError::io(dir, "creating the figures folder", e))?;
    let classes = class_names.len().max(2);
    let epochs: Vec<f64> = run_file
        .read_i64_1d("eval/epoch")
        .unwrap_or_default()
        .iter()
        .map(|&e| e as f64)
        .collect();
    let series = |label: &str, path: &str| -> Result<Series, RecordError> {
        let values = run_file.read_f64_1d(path)?;
        Ok(Series {
            label: label.into(),
            points: epochs.iter().copied().zip(values).collect(),
        })
    };
    figures::accuracy_plot(
        &dir.join("accuracy.png"),
        "Linear separability",
        &[
            series("SGD probe, test", "eval/linear/test_accuracy")?,
            series("SGD probe, train", "eval/linear/train_accuracy")?,
            series("converged probe, test", "eval/converged/test_accuracy")?,
            series("converged probe, train", "eval/converged/train_accuracy")?,
        ],
        classes,
    )?;

    let levels = &latest.occlusion_levels;
    let curves = run_file.read_f64_2d("eval/occlusion/test_accuracy")?;
    let occlusion: Vec<Series> = curves
        .outer_iter()
        .zip(&epochs)
        .map(|(row, epoch)| Series {
            label: format!("epoch {epoch}"),
            points: levels.iter().copied().zip(row.iter().copied()).collect(),
        })
        .collect();
    figures::occlusion_plot(
        &dir.join("occlusion.png"),
        "Occlusion robustness (SGD probe)",
        &occlusion,
        classes,
    )?;

    let points = |a: &Array2<f64>| a.outer_iter().map(|r| (r[0], r[1])).collect::<Vec<_>>();
    figures::pca_scatter(
        &dir.join("pca.png"),
        &format!(
            "PCA of test latents, epoch {} (hollow: occluded, p = 0.3)",
            latest.epoch
        ),
        &points(&latest.pca),
        &latest.pca_labels,
        Some(&points(&latest.pca_occluded)),
        class_names,
    )?;

    let mut losses = Vec::new();
    for (state, term) in run_file.loss_names()? {
        let values = run_file.read_losses(&state, &term)?;
        losses.push((state, term, values));
    }
    if !losses.is_empty() {
        figures::loss_curves(&dir.join("losses.png"), "Losses per brain state", &losses)?;
    }
    Ok(())
}

/// One line per measure, for terminals and logs.
pub fn summary(report: &EvalReport) -> String {
    let pct = |v: f64| format!("{:.1}%", 100.0 * v);
    let curve: Vec<String> = report
        .occlusion_linear
        .iter()
        .map(|&a| format!("{:.1}", 100.0 * a))
        .collect();
    format!(
        "epoch {}: linear probe test {} (train {}), converged probe test {} (train {}, {} L-BFGS iterations, |grad| {:.1e}{})\n  \
         occlusion curve (SGD probe, %, p = 0..1): {}\n  \
         intra/inter-class distance {:.3}, clean-vs-occluded / inter-class {:.3}\n  \
         features {:.0} images/s; evaluation took {:.1} s",
        report.epoch,
        pct(report.linear_test_accuracy),
        pct(report.linear_train_accuracy),
        pct(report.converged_test_accuracy),
        pct(report.converged_train_accuracy),
        report.converged_iterations,
        report.converged_gradient_norm,
        if report.converged { "" } else { ", not converged" },
        curve.join(" "),
        report.geometry.intra_inter_ratio,
        report.geometry.clean_occluded_ratio.unwrap_or(f64::NAN),
        report.images_per_second,
        report.seconds,
    )
}
