//! Figures (record/figures.rs): every function writes a decodable PNG of the documented size that
//! is not blank, survives empty and non-finite input, and leaves no temporary file behind.
//!
//! Set `PADSIM_FIGURES_PREVIEW=<dir>` to keep the figures in `<dir>` for looking at them: the
//! realistic ones at the top, edge cases in subdirectories.

use padsim::record::figures::{
    accuracy_plot, bar_chart, line_plot, loss_curves, occlusion_band_plot, occlusion_plot,
    pca_scatter, BandSeries, Bar, BarPanel, BarSeries, Series, FIGURE_SIZE, LOSS_PANEL_SIZE,
    PALETTE,
};
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use tempfile::TempDir;

struct Image {
    width: u32,
    height: u32,
    pixels: Vec<[u8; 3]>,
}

impl Image {
    fn decode(path: &Path) -> Image {
        let file = std::io::BufReader::new(std::fs::File::open(path).unwrap());
        let mut reader = png::Decoder::new(file).read_info().unwrap();
        let mut bytes = vec![0; reader.output_buffer_size().unwrap()];
        let info = reader.next_frame(&mut bytes).unwrap();
        assert_eq!(info.color_type, png::ColorType::Rgb, "{}", path.display());
        bytes.truncate(info.buffer_size());
        Image {
            width: info.width,
            height: info.height,
            pixels: bytes.chunks_exact(3).map(|c| [c[0], c[1], c[2]]).collect(),
        }
    }

    fn distinct_colours(&self) -> usize {
        self.pixels.iter().collect::<HashSet<_>>().len()
    }

    fn count(&self, colour: [u8; 3]) -> usize {
        self.pixels.iter().filter(|&&p| p == colour).count()
    }

    /// Fraction of pixels that are not the white background.
    fn ink(&self) -> f64 {
        let inked = self.pixels.iter().filter(|&&p| p != [255; 3]).count();
        inked as f64 / self.pixels.len() as f64
    }
}

/// Checks what every figure must be, and returns it decoded.
fn check_figure(dir: &Path, name: &str, size: (u32, u32)) -> Image {
    let path = dir.join(name);
    let image = Image::decode(&path);
    assert_eq!((image.width, image.height), size, "{name}");
    assert!(
        image.distinct_colours() >= 8,
        "{name}: only {} colours",
        image.distinct_colours()
    );
    assert!(image.ink() > 0.01, "{name}: almost blank ({})", image.ink());
    assert_eq!(image.pixels[0], [255; 3], "{name}: background is white");
    image
}

/// No `*.tmp` left in `dir`.
fn assert_no_temporaries(dir: &Path) {
    let leftovers: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|e| e == "tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

/// Deterministic pseudo-random numbers (SplitMix64) and Gaussians (Box–Muller) for fake data.
struct Noise(u64);

impl Noise {
    fn uniform(&mut self) -> f64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        ((z >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    }

    fn gaussian(&mut self) -> f64 {
        let (u, v) = (self.uniform(), self.uniform());
        (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
    }
}

fn cifar_names() -> Vec<String> {
    padsim::data::cifar10::CLASS_NAMES
        .iter()
        .map(|n| n.to_string())
        .collect()
}

/// Accuracy rising from `start` to `end` over 10 epochs, saturating, with a little noise.
fn accuracy_curve(label: &str, start: f64, end: f64, noise: &mut Noise) -> Series {
    let points = (1..=10)
        .map(|epoch| {
            let progress = 1.0 - (-(epoch as f64 - 1.0) / 3.5).exp();
            let scale = 1.0 - (-9.0f64 / 3.5).exp();
            let value = start + (end - start) * progress / scale + 0.006 * noise.gaussian();
            (epoch as f64, value)
        })
        .collect();
    Series::new(label, points)
}

/// Accuracy falling from `clean` at p = 0 towards chance at p = 1.
fn occlusion_curve(label: &str, clean: f64, steepness: f64) -> Series {
    let points = (0..=10)
        .map(|step| {
            let p = step as f64 / 10.0;
            let decay = ((-steepness * p).exp() - (-steepness).exp()) / (1.0 - (-steepness).exp());
            (p, 0.1 + (clean - 0.1) * decay)
        })
        .collect();
    Series::new(label, points)
}

fn loss_data(noise: &mut Noise) -> Vec<(String, String, Vec<f64>)> {
    let curve = |noise: &mut Noise, start: f64, end: f64, rate: f64| -> Vec<f64> {
        (0..30)
            .map(|epoch| {
                let value = end + (start - end) * (-(epoch as f64) / rate).exp();
                value * (1.0 + 0.02 * noise.gaussian())
            })
            .collect()
    };
    vec![
        ("wake".into(), "kl".into(), curve(noise, 0.45, 0.08, 4.0)),
        (
            "wake".into(),
            "reconstruction".into(),
            curve(noise, 0.30, 0.05, 6.0),
        ),
        (
            "wake".into(),
            "external".into(),
            curve(noise, 0.69, 0.45, 10.0),
        ),
        (
            "nrem".into(),
            "latent_reconstruction".into(),
            curve(noise, 0.9, 0.25, 8.0),
        ),
        (
            "rem".into(),
            "internal".into(),
            curve(noise, 0.69, 0.52, 12.0),
        ),
    ]
}

/// Ten Gaussian blobs in 2-D (100 points each) and their occluded versions, pulled towards the
/// origin and jittered, as PCA of clean and occluded latents tends to look.
/// Clean points, their labels, and the occluded points.
type PcaData = (Vec<(f64, f64)>, Vec<u8>, Vec<(f64, f64)>);

fn pca_data(noise: &mut Noise) -> PcaData {
    let mut clean = Vec::new();
    let mut labels = Vec::new();
    let mut occluded = Vec::new();
    for class in 0..10u8 {
        let angle = std::f64::consts::TAU * class as f64 / 10.0;
        let (cx, cy) = (6.0 * angle.cos(), 4.0 * angle.sin());
        for _ in 0..100 {
            let point = (cx + noise.gaussian(), cy + 0.8 * noise.gaussian());
            clean.push(point);
            labels.push(class);
            occluded.push((
                0.6 * point.0 + 0.6 * noise.gaussian() + 0.8,
                0.6 * point.1 + 0.6 * noise.gaussian() - 0.5,
            ));
        }
    }
    (clean, labels, occluded)
}

/// Where a test writes its figures: `$PADSIM_FIGURES_PREVIEW/<subdirectory>` if that variable
/// is set (to look at them afterwards), else a temporary directory removed with the guard.
fn output_dir(subdirectory: &str) -> (Option<TempDir>, PathBuf) {
    match std::env::var_os("PADSIM_FIGURES_PREVIEW") {
        Some(preview) => {
            let dir = PathBuf::from(preview).join(subdirectory);
            std::fs::create_dir_all(&dir).unwrap();
            (None, dir)
        }
        None => {
            let temporary = TempDir::new().unwrap();
            let dir = temporary.path().to_path_buf();
            (Some(temporary), dir)
        }
    }
}

/// Every figure with realistic data.
#[test]
fn realistic_figures() {
    let (_guard, dir) = output_dir("");
    let dir = dir.as_path();
    let mut noise = Noise(7);

    let conditions = [
        accuracy_curve("full PAD", 0.30, 0.55, &mut noise),
        accuracy_curve("no REM", 0.28, 0.44, &mut noise),
    ];
    accuracy_plot(
        &dir.join("accuracy.png"),
        "Linear separability (CIFAR-10, test set)",
        &conditions,
        10,
    )
    .unwrap();
    check_figure(dir, "accuracy.png", FIGURE_SIZE);

    let occlusion: Vec<Series> = [(1, 0.38, 4.5), (5, 0.50, 3.5), (10, 0.55, 2.8)]
        .iter()
        .map(|&(epoch, clean, steepness)| {
            occlusion_curve(&format!("epoch {epoch}"), clean, steepness)
        })
        .collect();
    occlusion_plot(
        &dir.join("occlusion.png"),
        "Occlusion robustness (full PAD)",
        &occlusion,
        10,
    )
    .unwrap();
    check_figure(dir, "occlusion.png", FIGURE_SIZE);

    let (clean, labels, occluded) = pca_data(&mut noise);
    pca_scatter(
        &dir.join("pca.png"),
        "Latent space, PCA (epoch 10)",
        &clean,
        &labels,
        Some(&occluded),
        &cifar_names(),
    )
    .unwrap();
    let image = check_figure(dir, "pca.png", FIGURE_SIZE);
    for (class, colour) in PALETTE.iter().enumerate() {
        // Far more than the legend's swatch: the points themselves are drawn in this colour.
        let count = image.count(*colour);
        assert!(count > 300, "class {class}: {count} pixels of {colour:?}");
    }

    loss_curves(
        &dir.join("losses.png"),
        "Losses per brain state (full PAD)",
        &loss_data(&mut noise),
    )
    .unwrap();
    let (panel_width, panel_height) = LOSS_PANEL_SIZE;
    check_figure(dir, "losses.png", (3 * panel_width, panel_height));

    let values: Vec<(f64, f64)> = (0..50)
        .map(|i| (i as f64 * 0.1, (i as f64 * 0.1).sin()))
        .collect();
    line_plot(
        &dir.join("line.png"),
        "Generic line plot, fixed y range",
        "time (s)",
        "amplitude",
        &[
            Series::new("sin", values.clone()),
            Series::new(
                "2 sin (clipped)",
                values.iter().map(|&(x, y)| (x, 2.0 * y)).collect(),
            ),
        ],
        Some((-1.2, 1.2)),
    )
    .unwrap();
    check_figure(dir, "line.png", FIGURE_SIZE);

    assert_no_temporaries(dir);
}

#[test]
fn series_get_palette_colours_in_order() {
    let dir = TempDir::new().unwrap();
    let series: Vec<Series> = (0..3)
        .map(|i| {
            Series::new(
                format!("s{i}"),
                (0..5).map(|x| (x as f64, (x * (i + 1)) as f64)).collect(),
            )
        })
        .collect();
    line_plot(&dir.path().join("p.png"), "t", "x", "y", &series, None).unwrap();
    let image = check_figure(dir.path(), "p.png", FIGURE_SIZE);
    for colour in &PALETTE[..3] {
        assert!(image.count(*colour) > 100, "{colour:?}");
    }
    // A fourth colour is not used.
    assert!(image.count(PALETTE[3]) < 10);
}

#[test]
fn empty_and_non_finite_input_does_not_panic() {
    let (_guard, dir) = output_dir("empty");
    let d = dir.as_path();
    let nan_series = [
        Series::new("empty", vec![]),
        Series::new("all NaN", vec![(f64::NAN, f64::NAN); 3]),
        Series::new(
            "holes",
            vec![
                (1.0, 0.3),
                (2.0, f64::NAN),
                (3.0, 0.4),
                (f64::INFINITY, 0.5),
                (5.0, f64::NEG_INFINITY),
                (6.0, 0.45),
            ],
        ),
    ];
    let only_empty = [Series::new("empty", vec![]), Series::new("", vec![])];

    line_plot(&d.join("none.png"), "", "", "", &[], None).unwrap();
    line_plot(&d.join("empty.png"), "empty", "x", "y", &only_empty, None).unwrap();
    line_plot(
        &d.join("nan.png"),
        "nan",
        "x",
        "y",
        &nan_series,
        Some((0.0, 1.0)),
    )
    .unwrap();
    accuracy_plot(&d.join("acc_none.png"), "no series", &[], 10).unwrap();
    accuracy_plot(&d.join("acc_nan.png"), "NaN", &nan_series, 0).unwrap();
    occlusion_plot(&d.join("occ_none.png"), "no series", &only_empty, 10).unwrap();
    occlusion_plot(&d.join("occ_nan.png"), "NaN", &nan_series, 3).unwrap();
    pca_scatter(&d.join("pca_none.png"), "none", &[], &[], None, &[]).unwrap();
    pca_scatter(
        &d.join("pca_none_occ.png"),
        "none",
        &[],
        &[],
        Some(&[]),
        &[],
    )
    .unwrap();
    pca_scatter(
        &d.join("pca_nan.png"),
        "NaN",
        &[(f64::NAN, 1.0), (1.0, 2.0), (f64::INFINITY, 0.0)],
        &[0, 12, 200],
        Some(&[(0.5, f64::NAN), (1.5, 2.5), (3.0, 3.0)]),
        &["only one name".to_string()],
    )
    .unwrap();
    loss_curves(&d.join("loss_none.png"), "nothing", &[]).unwrap();
    loss_curves(
        &d.join("loss_nan.png"),
        "NaN and empty",
        &[
            ("wake".into(), "kl".into(), vec![]),
            ("wake".into(), "reconstruction".into(), vec![f64::NAN; 4]),
            ("nrem".into(), "latent".into(), vec![0.5, f64::NAN, 0.3]),
            ("rem".into(), "internal".into(), vec![0.7]),
        ],
    )
    .unwrap();

    for name in [
        "none.png",
        "empty.png",
        "nan.png",
        "acc_none.png",
        "acc_nan.png",
        "occ_none.png",
        "occ_nan.png",
        "pca_none.png",
        "pca_none_occ.png",
        "pca_nan.png",
    ] {
        let image = Image::decode(&d.join(name));
        assert_eq!((image.width, image.height), FIGURE_SIZE, "{name}");
        // Axes and a note are drawn even without data.
        assert!(image.distinct_colours() >= 4, "{name}");
    }
    for name in ["loss_none.png", "loss_nan.png"] {
        let image = Image::decode(&d.join(name));
        assert_eq!((image.width, image.height), (1500, 450), "{name}");
    }
    assert_no_temporaries(d);
}

#[test]
fn extreme_values_and_constant_series() {
    let (_guard, dir) = output_dir("extreme");
    let d = dir.as_path();
    let cases = [
        vec![(0.0, 1e300), (1.0, -1e300)],
        vec![(0.0, f64::MAX), (1.0, f64::MIN)],
        vec![(0.0, 1e-300), (1.0, 2e-300)],
        vec![(3.0, 0.25), (3.0, 0.25)],
        vec![(-1e12, 5.0), (1e12, 5.0)],
    ];
    for (i, points) in cases.into_iter().enumerate() {
        let name = format!("case{i}.png");
        line_plot(
            &d.join(&name),
            "extreme",
            "x",
            "y",
            &[Series::new("s", points.clone())],
            None,
        )
        .unwrap();
        check_figure(d, &name, FIGURE_SIZE);
        pca_scatter(
            &d.join(format!("pca{i}.png")),
            "extreme",
            &points,
            &[1, 2],
            None,
            &[],
        )
        .unwrap();
        let values = points.iter().map(|p| p.1).collect();
        loss_curves(
            &d.join(format!("loss{i}.png")),
            "extreme",
            &[("wake".into(), "kl".into(), values)],
        )
        .unwrap();
    }
    // A very long title and labels are shortened, not an error.
    let long = "a very long label ".repeat(20);
    line_plot(
        &d.join("long.png"),
        &long,
        &long,
        &long,
        &[Series::new(long.clone(), vec![(0.0, 1.0), (1.0, 2.0)])],
        None,
    )
    .unwrap();
    check_figure(d, "long.png", FIGURE_SIZE);
    assert_no_temporaries(d);
}

#[test]
fn more_series_and_states_than_colours() {
    let (_guard, dir) = output_dir("many");
    let d = dir.as_path();
    let series: Vec<Series> = (0..25)
        .map(|i| {
            Series::new(
                format!("epoch {}", i + 1),
                (0..=10)
                    .map(|s| (s as f64 / 10.0, 0.6 - 0.05 * s as f64 + 0.004 * i as f64))
                    .collect(),
            )
        })
        .collect();
    occlusion_plot(&d.join("many.png"), "25 curves", &series, 10).unwrap();
    check_figure(d, "many.png", FIGURE_SIZE);

    let losses: Vec<(String, String, Vec<f64>)> = ["wake", "nrem", "rem", "extra_state"]
        .iter()
        .map(|state| (state.to_string(), "loss".to_string(), vec![1.0, 0.5, 0.25]))
        .collect();
    loss_curves(&d.join("four.png"), "four states", &losses).unwrap();
    let (panel_width, panel_height) = LOSS_PANEL_SIZE;
    check_figure(d, "four.png", (4 * panel_width, panel_height));
}

#[test]
fn invalid_arguments_are_errors_and_write_nothing() {
    let dir = TempDir::new().unwrap();
    let d = dir.path();
    let points = [(0.0, 0.0), (1.0, 1.0)];
    let series = [Series::new("s", points.to_vec())];
    for range in [
        (1.0, 0.0),
        (0.0, 0.0),
        (f64::NAN, 1.0),
        (0.0, f64::INFINITY),
        (f64::MIN, f64::MAX),
    ] {
        let error = line_plot(&d.join("r.png"), "t", "x", "y", &series, Some(range)).unwrap_err();
        assert!(error.to_string().contains("r.png"), "{error}");
    }
    let error = pca_scatter(&d.join("l.png"), "t", &points, &[0], None, &[]).unwrap_err();
    assert!(
        error.to_string().contains("1 labels for 2 points"),
        "{error}"
    );
    let error = pca_scatter(
        &d.join("o.png"),
        "t",
        &points,
        &[0, 1],
        Some(&points[..1]),
        &[],
    )
    .unwrap_err();
    assert!(error.to_string().contains("occluded"), "{error}");
    let missing = d.join("no/such/dir/f.png");
    let error = accuracy_plot(&missing, "t", &series, 10).unwrap_err();
    assert!(error.to_string().contains("f.png"), "{error}");
    assert_eq!(std::fs::read_dir(d).unwrap().count(), 0, "nothing written");
}

/// Grouped bars of `conditions` × data sets, one bar per data set, with per-seed points.
fn bar_panel(title: &str, conditions: &[&str], datasets: &[&str], noise: &mut Noise) -> BarPanel {
    BarPanel {
        title: title.into(),
        y_label: "test accuracy (%)".into(),
        categories: conditions.iter().map(|c| c.to_string()).collect(),
        series: datasets
            .iter()
            .enumerate()
            .map(|(d, dataset)| BarSeries {
                label: dataset.to_string(),
                bars: (0..conditions.len())
                    .map(|c| {
                        let points: Vec<f64> = (0..4)
                            .map(|_| {
                                40.0 + 15.0 * d as f64 - 2.0 * c as f64 + 3.0 * noise.uniform()
                            })
                            .collect();
                        let mean = points.iter().sum::<f64>() / 4.0;
                        Bar {
                            value: mean,
                            error: 0.8,
                            points,
                        }
                    })
                    .collect(),
            })
            .collect(),
        reference: Some((10.0, "chance (10%)".into())),
    }
}

/// The colour of `colour` drawn at `alpha` over white.
fn over_white(colour: [u8; 3], alpha: f64) -> [u8; 3] {
    colour.map(|c| (255.0 * (1.0 - alpha) + c as f64 * alpha).round() as u8)
}

#[test]
fn summary_figures_draw_bars_whiskers_and_bands() {
    let (_guard, dir) = output_dir("summary");
    let d = dir.as_path();
    let mut noise = Noise(11);
    let conditions = [
        "full PAD",
        "no NREM",
        "no REM",
        "Wake only",
        "no memory mix",
        "reversed sleep",
        "NREM mixed memories",
        "REM noise only",
        "REM memories only",
    ];
    let panels = [
        bar_panel("SGD probe", &conditions, &["cifar10", "svhn"], &mut noise),
        bar_panel(
            "converged probe",
            &conditions,
            &["cifar10", "svhn"],
            &mut noise,
        ),
    ];
    bar_chart(&d.join("bars.png"), "Linear separability", &panels).unwrap();
    let image = Image::decode(&d.join("bars.png"));
    assert_eq!(image.height, FIGURE_SIZE.1);
    check_figure(d, "bars.png", (image.width, image.height));
    for colour in &PALETTE[..2] {
        // Two panels of nine bars each, every bar tens of pixels wide and hundreds high.
        assert!(
            image.count(*colour) > 50_000,
            "{colour:?}: {}",
            image.count(*colour)
        );
    }
    assert!(
        image.count(PALETTE[2]) < 10,
        "a third series colour is not used"
    );

    let curves: Vec<BandSeries> = conditions[..4]
        .iter()
        .enumerate()
        .map(|(i, label)| BandSeries {
            label: label.to_string(),
            points: (0..=10)
                .map(|s| {
                    let p = s as f64 / 10.0;
                    (p, (0.55 - 0.1 * i as f64) * (1.0 - p) + 0.1 * p, 0.02)
                })
                .collect(),
        })
        .collect();
    occlusion_band_plot(&d.join("bands.png"), "Occlusion robustness", &curves, 10).unwrap();
    let image = check_figure(d, "bands.png", FIGURE_SIZE);
    // The translucent band around the first curve (18% of its colour over white).
    let band = over_white(PALETTE[0], 0.18);
    let near = |p: &[u8; 3]| p.iter().zip(&band).all(|(a, b)| a.abs_diff(*b) <= 2);
    let band_pixels = image.pixels.iter().filter(|p| near(p)).count();
    assert!(band_pixels > 1_000, "{band_pixels} band pixels");

    // Missing bars and errors, empty panels, NaN curves: drawn, not failed.
    let mut holes = bar_panel("holes", &conditions[..3], &["cifar10"], &mut noise);
    holes.series[0].bars[1] = Bar {
        value: f64::NAN,
        error: f64::NAN,
        points: vec![],
    };
    holes.series[0].bars[2].error = f64::NAN;
    holes.series[0].bars[2].points = vec![f64::NAN, 30.0];
    let empty = BarPanel {
        title: "empty".into(),
        ..BarPanel::default()
    };
    bar_chart(&d.join("holes.png"), "holes", &[holes, empty]).unwrap();
    let image = Image::decode(&d.join("holes.png"));
    assert!(image.distinct_colours() >= 4);
    let nan_curves = [
        BandSeries {
            label: "NaN".into(),
            points: vec![(0.0, f64::NAN, 0.1), (0.5, 0.5, f64::NAN), (1.0, 0.4, 0.05)],
        },
        BandSeries::default(),
    ];
    occlusion_band_plot(&d.join("nan_bands.png"), "NaN", &nan_curves, 10).unwrap();
    assert_eq!(
        (
            Image::decode(&d.join("nan_bands.png")).width,
            Image::decode(&d.join("nan_bands.png")).height
        ),
        FIGURE_SIZE
    );
    assert_no_temporaries(d);
}

#[test]
fn bar_charts_refuse_mismatched_bars() {
    let dir = TempDir::new().unwrap();
    let d = dir.path();
    let error = bar_chart(&d.join("none.png"), "t", &[]).unwrap_err();
    assert!(error.to_string().contains("no panel"), "{error}");
    let panel = BarPanel {
        title: "p".into(),
        categories: vec!["a".into(), "b".into()],
        series: vec![BarSeries {
            label: "s".into(),
            bars: vec![Bar::default()],
        }],
        ..BarPanel::default()
    };
    let error = bar_chart(&d.join("short.png"), "t", &[panel]).unwrap_err();
    assert!(
        error.to_string().contains("1 bars for 2 categories"),
        "{error}"
    );
    assert_eq!(std::fs::read_dir(d).unwrap().count(), 0, "nothing written");
}
