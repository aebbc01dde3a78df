//! Known-answer tests of the evaluation maths (`padsim::eval`) on synthetic feature matrices:
//! separable blobs and random labels for both probes, one SGD step computed by hand, L-BFGS on
//! a quadratic with a known minimum, the logistic fit's gradient by finite differences,
//! geometry on constructed clusters, PCA of a planted plane, and thread-count determinism.

use ndarray::{array, s, Array1, Array2, ArrayView2, Axis};
use ndarray_rand::rand::Rng;
use ndarray_rand::rand_distr::StandardNormal;
use ndarray_rand::RandomExt;
use padsim::eval::{
    fit_converged_probe, latent_geometry, minimise, pca_2d, train_sgd_probe, GeometryConfig,
    LbfgsConfig, LinearClassifier, LogisticConfig, ProbeConfig,
};
use padsim::rng;

fn gaussian(rows: usize, cols: usize, seed: u64, purpose: &str) -> Array2<f32> {
    Array2::random_using(
        (rows, cols),
        StandardNormal,
        &mut rng::stream(seed, purpose),
    )
}

fn random_labels(n: usize, classes: u8, seed: u64, purpose: &str) -> Vec<u8> {
    let mut stream = rng::stream(seed, purpose);
    (0..n).map(|_| stream.random_range(0..classes)).collect()
}

/// `n` points around 10 centres in 32-D, centres ~N(0, 5²) per coordinate (≈ 40 apart), unit
/// noise: linearly separable with a wide margin. Labels cycle 0..10.
fn blobs(n: usize, noise_purpose: &str) -> (Array2<f32>, Vec<u8>) {
    let centres = gaussian(10, 32, 1, "centres") * 5.0;
    let labels: Vec<u8> = (0..n).map(|i| (i % 10) as u8).collect();
    let mut x = gaussian(n, 32, 1, noise_purpose);
    for (mut row, &c) in x.rows_mut().into_iter().zip(&labels) {
        row += &centres.row(c as usize);
    }
    (x, labels)
}

#[test]
fn separable_blobs_are_classified_by_both_probes() {
    let (train_x, train_y) = blobs(2000, "train");
    let (test_x, test_y) = blobs(1000, "test");
    let sgd = train_sgd_probe(train_x.view(), &train_y, 10, &ProbeConfig::default());
    let sgd_accuracy = sgd.accuracy(test_x.view(), &test_y);
    assert!(sgd_accuracy >= 0.99, "SGD probe: {sgd_accuracy}");

    let converged = fit_converged_probe(train_x.view(), &train_y, 10, &LogisticConfig::default());
    assert!(converged.converged, "{} iterations", converged.iterations);
    let accuracy = converged.accuracy(test_x.view(), &test_y);
    assert!(accuracy >= 0.99, "converged probe: {accuracy}");
}

#[test]
fn random_labels_give_chance_on_held_out_features() {
    let train_x = gaussian(2000, 32, 2, "train");
    let train_y = random_labels(2000, 10, 2, "train labels");
    let test_x = gaussian(5000, 32, 2, "test");
    let test_y = random_labels(5000, 10, 2, "test labels");
    // Chance is 0.1; the std of an accuracy over 5000 independent guesses is 0.004.
    let sgd = train_sgd_probe(train_x.view(), &train_y, 10, &ProbeConfig::default());
    let sgd_accuracy = sgd.accuracy(test_x.view(), &test_y);
    assert!(
        (sgd_accuracy - 0.1).abs() < 0.03,
        "SGD probe: {sgd_accuracy}"
    );

    let converged = fit_converged_probe(train_x.view(), &train_y, 10, &LogisticConfig::default());
    assert!(converged.converged);
    let accuracy = converged.accuracy(test_x.view(), &test_y);
    assert!((accuracy - 0.1).abs() < 0.03, "converged probe: {accuracy}");
    // The probe does fit its training noise a little: more than chance on the training set.
    assert!(converged.accuracy(train_x.view(), &train_y) > 0.15);
}

#[test]
fn one_full_batch_sgd_step_matches_the_formula() {
    // Two samples, three features, two classes; batch larger than the data set, one epoch:
    // exactly one SGD step on the mean cross-entropy of both samples, in whatever order.
    let x = array![[0.5f32, -1.0, 2.0], [1.5, 0.25, -0.75]];
    let labels = [1u8, 0];
    let config = ProbeConfig {
        lr: 0.2,
        batch_size: 64,
        epochs: 1,
        seed: 11,
        ..ProbeConfig::default()
    };
    let init = LinearClassifier::pytorch_default(2, 3, config.seed);
    let trained = train_sgd_probe(x.view(), &labels, 2, &config);

    // By hand, in f64: a = W x + b, p = softmax(a), ∂L/∂a = (p − onehot)/n,
    // W −= lr Σ_i ∂L/∂a_i x_iᵀ, b −= lr Σ_i ∂L/∂a_i.
    let n = 2.0;
    let mut weight = init.weight.mapv(f64::from);
    let mut bias = init.bias.mapv(f64::from);
    let mut grad_weight = Array2::<f64>::zeros((2, 3));
    let mut grad_bias = Array1::<f64>::zeros(2);
    for (i, &label) in labels.iter().enumerate() {
        let xi = x.row(i).mapv(f64::from);
        let a: Vec<f64> = (0..2).map(|c| weight.row(c).dot(&xi) + bias[c]).collect();
        let total: f64 = a.iter().map(|v| v.exp()).sum();
        for c in 0..2 {
            let target = if c == label as usize { 1.0 } else { 0.0 };
            let delta = (a[c].exp() / total - target) / n;
            grad_bias[c] += delta;
            for j in 0..3 {
                grad_weight[[c, j]] += delta * xi[j];
            }
        }
    }
    weight.scaled_add(-0.2, &grad_weight);
    bias.scaled_add(-0.2, &grad_bias);

    assert!(grad_weight.iter().all(|g| g.abs() > 1e-3), "a real step");
    for (got, want) in trained.weight.iter().zip(&weight) {
        assert!((*got as f64 - want).abs() < 1e-6, "weight {got} vs {want}");
    }
    for (got, want) in trained.bias.iter().zip(&bias) {
        assert!((*got as f64 - want).abs() < 1e-6, "bias {got} vs {want}");
    }
}

#[test]
fn lbfgs_finds_the_minimum_of_a_convex_quadratic() {
    // f(x) = ½ (x − x*)ᵀ A (x − x*), A = MᵀM + I (eigenvalues ≥ 1): minimum 0 at x*.
    let m = array![
        [2.0, -1.0, 0.0, 0.5, 1.0, 0.0],
        [0.0, 3.0, 1.0, 0.0, -2.0, 0.5],
        [1.0, 0.0, 0.5, -1.0, 0.0, 2.0],
        [0.0, 1.0, 0.0, 4.0, 1.0, -1.0],
    ];
    let a = m.t().dot(&m) + Array2::<f64>::eye(6);
    let x_star = array![1.0, -2.0, 3.0, 0.5, -0.25, 10.0];
    let objective = |x: &[f64], g: &mut [f64]| {
        let d = Array1::from(x.to_vec()) - &x_star;
        let ad = a.dot(&d);
        g.copy_from_slice(ad.as_slice().unwrap());
        0.5 * d.dot(&ad)
    };
    let config = LbfgsConfig {
        gradient_tolerance: 1e-11,
        ..LbfgsConfig::default()
    };
    let min = minimise(objective, vec![0.0; 6], &config);
    assert!(min.converged, "{min:?}");
    for (x, want) in min.x.iter().zip(&x_star) {
        assert!((x - want).abs() < 1e-8, "{x} vs {want}");
    }
    assert!(min.value < 1e-16);
    assert!(min.iterations < 50, "{} iterations", min.iterations);
}

/// J(W, b) = mean CE + λ/2 ‖W‖² written out from the formula, on already standardised rows.
fn logistic_objective_by_hand(
    u: ArrayView2<f64>,
    labels: &[u8],
    weight: &Array2<f64>,
    bias: &Array1<f64>,
    lambda: f64,
) -> f64 {
    let mut ce = 0.0;
    for (row, &label) in u.rows().into_iter().zip(labels) {
        let a: Vec<f64> = (0..weight.nrows())
            .map(|c| weight.row(c).dot(&row) + bias[c])
            .collect();
        let log_total = a.iter().map(|v| v.exp()).sum::<f64>().ln();
        ce += log_total - a[label as usize];
    }
    ce / u.nrows() as f64 + 0.5 * lambda * weight.iter().map(|w| w * w).sum::<f64>()
}

#[test]
fn logistic_fit_stops_where_the_finite_difference_gradient_is_below_tolerance() {
    // Overlapping classes (not separable), so the optimum is interior and well defined.
    let (classes, dim, n) = (3, 4, 60);
    let labels = random_labels(n, classes as u8, 3, "labels");
    let mut x = gaussian(n, dim, 3, "features") * 2.0 + 1.0;
    for (mut row, &c) in x.rows_mut().into_iter().zip(&labels) {
        row[c as usize] += 1.5;
    }
    let config = LogisticConfig::default();
    let probe = fit_converged_probe(x.view(), &labels, classes, &config);
    assert!(probe.converged && probe.final_gradient_norm < config.tolerance);

    // Standardise independently: population mean and std per feature.
    let x64 = x.mapv(f64::from);
    let mean = x64.mean_axis(Axis(0)).unwrap();
    let std = x64.std_axis(Axis(0), 0.0);
    for j in 0..dim {
        assert!((mean[j] - probe.feature_mean[j]).abs() < 1e-12);
        assert!((std[j] - probe.feature_std[j]).abs() < 1e-12);
    }
    // The probe keeps standardised features in f32 (computed in f64): round them the same way.
    let u = ((&x64 - &mean) / &std).mapv(|v| f64::from(v as f32));
    let objective = |w: &Array2<f64>, b: &Array1<f64>| {
        logistic_objective_by_hand(u.view(), &labels, w, b, config.lambda)
    };
    let at_fit = objective(&probe.weight, &probe.bias);
    assert!((at_fit - probe.objective).abs() < 1e-12);

    // Central differences: truncation error ~h²·J''' ≈ 1e-10, rounding ~1e-16/h ≈ 1e-11.
    let h = 1e-5;
    let mut largest: f64 = 0.0;
    for k in 0..classes * (dim + 1) {
        let (mut w_plus, mut b_plus) = (probe.weight.clone(), probe.bias.clone());
        let (mut w_minus, mut b_minus) = (probe.weight.clone(), probe.bias.clone());
        if k < classes * dim {
            w_plus[[k / dim, k % dim]] += h;
            w_minus[[k / dim, k % dim]] -= h;
        } else {
            b_plus[k - classes * dim] += h;
            b_minus[k - classes * dim] -= h;
        }
        let derivative = (objective(&w_plus, &b_plus) - objective(&w_minus, &b_minus)) / (2.0 * h);
        largest = largest.max(derivative.abs());
    }
    assert!(
        largest < config.tolerance + 1e-8,
        "finite-difference gradient {largest} at the fit"
    );
    // And the fit is not trivially at the start: the weights moved.
    assert!(probe.weight.iter().any(|w| w.abs() > 0.1));
}

#[test]
fn identical_clean_and_occluded_latents_are_zero_apart() {
    let z = gaussian(300, 16, 4, "latents");
    let labels = random_labels(300, 10, 4, "labels");
    let g = latent_geometry(
        z.view(),
        &labels,
        Some(z.view()),
        &GeometryConfig::default(),
    );
    assert_eq!(g.clean_occluded, Some(0.0));
    assert_eq!(g.clean_occluded_ratio, Some(0.0));
    assert!(g.inter > 0.0);
}

#[test]
fn occlusion_by_a_fixed_shift_is_that_shift_apart() {
    let z = gaussian(100, 4, 5, "latents");
    let labels = random_labels(100, 3, 5, "labels");
    // Shift every latent by (0.3, 0.4, 0, 0): distance exactly 0.5 (up to f32 rounding).
    let shifted = &z + &array![0.3f32, 0.4, 0.0, 0.0];
    let g = latent_geometry(
        z.view(),
        &labels,
        Some(shifted.view()),
        &GeometryConfig::default(),
    );
    let d = g.clean_occluded.unwrap();
    assert!((d - 0.5).abs() < 1e-6, "{d}");
    assert_eq!(g.clean_occluded_ratio, Some(d / g.inter));
}

#[test]
fn well_separated_clusters_have_small_intra_inter_ratio() {
    let (z, labels) = blobs(1000, "geometry");
    let g = latent_geometry(z.view(), &labels, None, &GeometryConfig::default());
    // Within a blob: ~√(2·32) ≈ 8 apart; across: ~√(2·32·(25 + 1)) ≈ 41.
    assert!(g.intra_inter_ratio < 0.25, "{g:?}");
    assert!((g.intra / 8.0 - 1.0).abs() < 0.05, "{g:?}");
    assert_eq!(g.intra_inter_ratio, g.intra / g.inter);
    assert_eq!(g.clean_occluded_ratio, None);
}

#[test]
fn intra_class_pairs_never_pair_an_image_with_itself() {
    // Each class is two images exactly d apart (d = 1, 2, 4): any self-pair (distance 0)
    // would pull the mean below (1 + 2 + 4)/3.
    let z = array![
        [0.0f32, 0.0],
        [1.0, 0.0],
        [50.0, 0.0],
        [50.0, 2.0],
        [-50.0, 0.0],
        [-46.0, 0.0]
    ];
    let labels = [0u8, 0, 1, 1, 2, 2];
    let g = latent_geometry(z.view(), &labels, None, &GeometryConfig::default());
    assert!((g.intra - 7.0 / 3.0).abs() < 1e-12, "{}", g.intra);
}

#[test]
fn geometry_is_a_function_of_the_seed() {
    let z = gaussian(500, 8, 6, "latents");
    let labels = random_labels(500, 10, 6, "labels");
    let occluded = &z + &gaussian(500, 8, 6, "noise");
    let config = GeometryConfig {
        seed: 9,
        ..GeometryConfig::default()
    };
    let run =
        |config: &GeometryConfig| latent_geometry(z.view(), &labels, Some(occluded.view()), config);
    assert_eq!(run(&config), run(&config));
    let other = run(&GeometryConfig {
        seed: 10,
        ..config.clone()
    });
    assert_ne!(run(&config), other);
    // Another sample of pairs estimates the same mean closely.
    assert!((run(&config).inter / other.inter - 1.0).abs() < 0.02);
}

#[test]
fn pca_recovers_a_planted_plane() {
    // Points (a, b) on a plane spanned by orthonormal u, v in 20-D, offset, plus tiny noise.
    let n = 200;
    let plane = gaussian(n, 2, 7, "plane coordinates").mapv(f64::from) * 3.0;
    let basis = gaussian(2, 20, 7, "basis").mapv(f64::from);
    let u = &basis.row(0) / basis.row(0).dot(&basis.row(0)).sqrt();
    let v = &basis.row(1) - &(&u * u.dot(&basis.row(1)));
    let v = &v / v.dot(&v).sqrt();
    let offset = gaussian(1, 20, 7, "offset").mapv(f64::from) * 10.0;
    let noise = gaussian(n, 20, 7, "noise").mapv(f64::from) * 1e-4;
    let mut x = Array2::<f64>::zeros((n, 20));
    for i in 0..n {
        let point = &u * plane[[i, 0]] + &v * plane[[i, 1]] + offset.row(0) + noise.row(i);
        x.row_mut(i).assign(&point);
    }
    let x = x.mapv(|v| v as f32);
    let pca = pca_2d(x.view());

    let explained: f64 = pca.explained_variance_ratio.iter().sum();
    assert!(explained > 0.99, "{explained}");
    assert!(pca.explained_variance_ratio[0] >= pca.explained_variance_ratio[1]);
    // Components are orthonormal.
    let gram = pca.components.dot(&pca.components.t());
    assert!((&gram - &Array2::<f64>::eye(2))
        .iter()
        .all(|d| d.abs() < 1e-10));
    // The plane is recovered up to rotation and reflection: pairwise distances survive.
    let mut worst: f64 = 0.0;
    for i in 0..n {
        for j in 0..i {
            let planar = (&plane.row(i) - &plane.row(j)).mapv(|d| d * d).sum().sqrt();
            let pr = &pca.projection;
            let projected = (&pr.row(i) - &pr.row(j)).mapv(|d| d * d).sum().sqrt();
            worst = worst.max((planar - projected).abs());
        }
    }
    assert!(worst < 1e-3, "largest distance error {worst}");
    // Occluded latents land in the same plane: the same points project to the same place.
    let again = pca.project(x.slice(s![..10, ..]));
    assert!((&again - &pca.projection.slice(s![..10, ..]))
        .iter()
        .all(|d| d.abs() < 1e-9));
}

#[test]
fn same_seed_gives_the_same_bits_with_one_and_two_threads() {
    // 5000 rows: several row blocks of the converged probe's objective, summed across threads.
    let (x, labels) = blobs(5000, "determinism");
    let noisy_labels: Vec<u8> = labels
        .iter()
        .zip(random_labels(5000, 10, 8, "flip"))
        .enumerate()
        .map(|(i, (&l, r))| if i % 3 == 0 { r } else { l })
        .collect();
    let run = |threads: usize| {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        pool.install(|| {
            let sgd = train_sgd_probe(x.view(), &noisy_labels, 10, &ProbeConfig::default());
            let converged =
                fit_converged_probe(x.view(), &noisy_labels, 10, &LogisticConfig::default());
            let pca = pca_2d(x.view());
            let bits32 = |a: &[f32]| a.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
            let bits64 = |a: &[f64]| a.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
            (
                bits32(sgd.weight.as_slice().unwrap()),
                bits32(sgd.bias.as_slice().unwrap()),
                bits64(converged.weight.as_slice().unwrap()),
                bits64(converged.bias.as_slice().unwrap()),
                converged.iterations,
                bits64(pca.projection.as_slice().unwrap()),
            )
        })
    };
    assert_eq!(run(1), run(2));
}

/// The paper's scale: 50 000 × 256 features, 10 classes. Prints how long each probe takes
/// (speed is measured, never asserted) and checks that the converged probe still converges.
/// Run with `cargo test --release --test eval_math -- --ignored --nocapture`.
#[test]
#[ignore = "takes seconds; run explicitly to time the probes at CIFAR-10 scale"]
fn probes_at_cifar10_scale() {
    let (n, dim) = (50_000, 256);
    let x = gaussian(n, dim, 12, "features");
    let labels = random_labels(n, 10, 12, "labels");
    let start = std::time::Instant::now();
    let sgd = train_sgd_probe(x.view(), &labels, 10, &ProbeConfig::default());
    let sgd_time = start.elapsed();
    let start = std::time::Instant::now();
    let converged = fit_converged_probe(x.view(), &labels, 10, &LogisticConfig::default());
    let converged_time = start.elapsed();
    println!(
        "{n} x {dim}, 10 classes, {} rayon threads: train_sgd_probe {sgd_time:.2?} \
         (train accuracy {:.4}); fit_converged_probe {converged_time:.2?} ({} iterations, \
         |grad|_inf {:.2e}, converged {}, objective {:.6}, train accuracy {:.4})",
        rayon::current_num_threads(),
        sgd.accuracy(x.view(), &labels),
        converged.iterations,
        converged.final_gradient_norm,
        converged.converged,
        converged.objective,
        converged.accuracy(x.view(), &labels),
    );
    assert!(converged.converged);

    // Harder: class structure in a few directions and strongly correlated features (a rank-32
    // mixture plus weak isotropic noise), as encoder latents tend to be. Standardisation cannot
    // undo the correlations, so the problem is ill-conditioned and needs many more iterations.
    let mixing = gaussian(32, dim, 13, "mixing");
    let centres = gaussian(10, 32, 13, "centres") * 0.7;
    let mut hidden = gaussian(n, 32, 13, "hidden");
    for (mut row, &c) in hidden.rows_mut().into_iter().zip(&labels) {
        row += &centres.row(c as usize);
    }
    let structured = hidden.dot(&mixing) + gaussian(n, dim, 13, "isotropic") * 0.05;
    let start = std::time::Instant::now();
    let sgd = train_sgd_probe(structured.view(), &labels, 10, &ProbeConfig::default());
    let sgd_time = start.elapsed();
    let start = std::time::Instant::now();
    let converged = fit_converged_probe(structured.view(), &labels, 10, &LogisticConfig::default());
    let converged_time = start.elapsed();
    println!(
        "structured {n} x {dim}: train_sgd_probe {sgd_time:.2?} (train accuracy {:.4}); \
         fit_converged_probe {converged_time:.2?} ({} iterations, {} evaluations, \
         |grad|_inf {:.2e}, converged {}, objective {:.6}, train accuracy {:.4})",
        sgd.accuracy(structured.view(), &labels),
        converged.iterations,
        converged.evaluations,
        converged.final_gradient_norm,
        converged.converged,
        converged.objective,
        converged.accuracy(structured.view(), &labels),
    );
    assert!(converged.converged);
}
