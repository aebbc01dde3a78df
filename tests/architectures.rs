//! Architectures as data: networks from TOML and from code, checked before any data is read,
//! trained like PAD's.

use padsim::brain::{Brain, Condition};
use padsim::cortex::{Activity, Architecture, AreaSpec};
use padsim::data::synthetic::{self, SyntheticConfig};
use padsim::experiment::{self, Config, TrainOptions};
use padsim::kernels::Activation;
use padsim::plasticity::AdamConfig;
use std::path::Path;

const FIVE_AREAS: &str = "examples/architectures/five_areas.toml";

fn options() -> TrainOptions {
    TrainOptions {
        resume: false,
        progress: false,
    }
}

/// A small network of every kind: conv and dense areas forward, dense then transposed
/// convolutions back.
fn mixed(nz: usize) -> Architecture {
    Architecture {
        image_channels: 3,
        image_side: 32,
        feedforward: vec![
            AreaSpec::conv("conv1", 4, 4, 2, 1).region("V1"),
            AreaSpec::conv("conv2", 8, 4, 4, 0).region("V2"),
            AreaSpec::dense("fc", 16).region("V4"),
        ],
        latent: AreaSpec::dense("latent", nz)
            .region("IT")
            .activation(Activation::Identity),
        discriminator: AreaSpec::dense("dis", 1).activation(Activation::Sigmoid),
        feedback: vec![
            AreaSpec::dense("fc", 8).side(4),
            AreaSpec::conv_transpose("up1", 4, 4, 4, 0),
            AreaSpec::conv_transpose("up2", 0, 4, 2, 1)
                .activation(Activation::Tanh)
                .image_channels(),
        ],
    }
}

fn parameter_bits(brain: &Brain) -> Vec<(String, Vec<u32>)> {
    brain
        .cortex
        .parameters()
        .iter()
        .map(|p| {
            (
                p.name.clone(),
                p.value.iter().map(|v| v.to_bits()).collect(),
            )
        })
        .collect()
}

#[test]
fn the_five_area_example_reads_checks_and_round_trips() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(FIVE_AREAS);
    let config = Config::from_file(&path).unwrap();
    config.validate().unwrap();
    assert_eq!(Config::from_toml(&config.to_toml()).unwrap(), config);
    let arch = config.architecture(3).unwrap();
    let names: Vec<String> = arch
        .layout()
        .unwrap()
        .into_iter()
        .map(|a| a.full_name)
        .collect();
    assert_eq!(names.len(), 11, "{names:?}");
    assert_eq!(names[3], "E.conv4");
    let brain = experiment::runner::build_brain(&config).unwrap();
    let params: Vec<String> = brain
        .cortex
        .parameters()
        .iter()
        .map(|p| p.name.clone())
        .collect();
    assert!(params.contains(&"E.conv4.weight".to_string()));
    assert!(params.contains(&"G.tconv1b.bias".to_string()));
}

#[test]
fn a_misspecified_architecture_is_named_before_any_data_is_read() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(FIVE_AREAS);
    let mut config = Config::from_file(&path).unwrap();
    config.dataset = padsim::data::DatasetKind::Cifar10;
    config.data_dir = Some("/nonexistent/cifar-10-batches-bin".into());
    config.model.feedforward[3].padding = 0; // TEO shrinks 4×4 to 2×2: the latent head no longer fits
    let err = experiment::train(&config, options())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("E.latent") && err.contains("192×2×2 from E.conv4") && err.contains("4×4"),
        "{err}"
    );
    assert!(
        !err.contains("nonexistent"),
        "the data were read first: {err}"
    );

    // A head table left out is named too, as are PAD's widths given with your own areas.
    let mut config = Config::from_file(&path).unwrap();
    config.model.discriminator = None;
    let err = config.validate().unwrap_err().to_string();
    assert!(err.contains("[model.discriminator]"), "{err}");
    let mut config = Config::from_file(&path).unwrap();
    config.model.nf = 32;
    assert!(config
        .validate()
        .unwrap_err()
        .to_string()
        .contains("model.nf"));
}

#[test]
fn a_non_pad_network_learns_bit_identically_on_one_and_two_threads() {
    let data = synthetic::generate(&SyntheticConfig {
        seed: 3,
        train_size: 24,
        test_size: 8,
    });
    let run = |threads: usize| {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        pool.install(|| {
            let schedule = Condition::FullPad.schedule();
            let mut brain = Brain::new(&mixed(6), schedule, AdamConfig::default(), 5);
            for cycle in 0..3 {
                let indices: Vec<usize> = (cycle * 8..cycle * 8 + 8).collect();
                let x = Activity::from_nchw(data.train.batch_f32(&indices).view());
                for (state, losses) in brain.cycle(&x) {
                    assert!(
                        losses.iter().all(|(_, v)| v.is_finite()),
                        "{state}: {losses:?}"
                    );
                }
            }
            parameter_bits(&brain)
        })
    };
    let (one, two) = (run(1), run(2));
    assert_eq!(one, two);
    // And it learned: every parameter moved from its initial value.
    let fresh = Brain::new(
        &mixed(6),
        Condition::FullPad.schedule(),
        AdamConfig::default(),
        5,
    );
    for ((name, start), (_, end)) in parameter_bits(&fresh).iter().zip(&one) {
        assert_ne!(start, end, "{name} did not change");
    }
}

#[test]
fn a_brain_built_in_code_trains_through_train_brain_and_its_run_rebuilds_it() {
    let root = tempfile::tempdir().unwrap();
    let text = "dataset = \"synthetic\"\nepochs = 1\nbatch_size = 8\nmax_cycles_per_epoch = 3\n\
                threads = 1\nrun_name = \"in_code\"\n[data.synthetic]\ntrain_size = 32\n\
                test_size = 16\n[record]\nimages_every = 1\nimages = 4\n[eval]\nbefore_and_after = false\n";
    let mut config = Config::from_toml(text).unwrap();
    config.out_dir = root.path().to_path_buf();
    let brain = Brain::new(
        &mixed(5),
        config.resolved_schedule(),
        config.optimiser,
        config.seed,
    );
    let summary = experiment::train_brain(&config, brain, options()).unwrap();
    assert_eq!(summary.epochs_completed, 1);

    // The run folder's configuration describes the network, so the CLI can rebuild it.
    let stored = Config::from_file(&summary.run_dir.join("config.toml")).unwrap();
    assert_eq!(stored.architecture(3).unwrap(), mixed(5));
    let rebuilt = experiment::runner::build_brain(&stored).unwrap();
    let checkpoint =
        padsim::record::Checkpoint::read(summary.run_dir.join("checkpoint.h5")).unwrap();
    let mut restored = rebuilt;
    experiment::snapshot::restore(&mut restored, &checkpoint).unwrap();

    // The data follow the brain's image side: a brain for 16 × 16 images gets 16 × 16 shapes.
    let mut small = mixed(5);
    small.image_side = 16;
    small.feedforward[1] = AreaSpec::conv("conv2", 8, 4, 2, 0);
    small.feedback[1] = AreaSpec::conv_transpose("up1", 4, 2, 2, 0);
    let brain = Brain::new(&small, config.resolved_schedule(), config.optimiser, 0);
    config.run_name = "side_16".into();
    let summary = experiment::train_brain(&config, brain, options()).unwrap();
    let run = padsim::record::RunFile::open_read(summary.run_dir.join("run.h5")).unwrap();
    assert_eq!(
        run.read_images(0, "rem_dream").unwrap().dim(),
        (4, 3, 16, 16)
    );

    // A brain for grey images on colour data is refused, naming both shapes.
    let grey = mixed(5).with_image_channels(1);
    let brain = Brain::new(&grey, config.resolved_schedule(), config.optimiser, 0);
    config.run_name = "grey".into();
    let err = experiment::train_brain(&config, brain, options())
        .unwrap_err()
        .to_string();
    assert!(err.contains("1×32×32") && err.contains("3×32×32"), "{err}");
}

#[test]
fn every_plasticity_rule_runs_on_a_network_with_dense_areas() {
    use padsim::plasticity::{PlasticityConfig, RuleKind};
    let data = synthetic::generate(&SyntheticConfig {
        seed: 4,
        train_size: 8,
        test_size: 8,
    });
    let indices: Vec<usize> = (0..8).collect();
    let x = Activity::from_nchw(data.train.batch_f32(&indices).view());
    let kinds = [
        RuleKind::ExactBackprop,
        RuleKind::FeedbackAlignment,
        RuleKind::SignSymmetry,
        RuleKind::DirectFeedbackAlignment,
    ];
    for kind in kinds {
        let mut brain = Brain::new(
            &mixed(6),
            Condition::FullPad.schedule(),
            AdamConfig::default(),
            2,
        );
        let rules = PlasticityConfig {
            feedforward: kind,
            feedback: kind,
            // Per-area overrides take the specification's names.
            areas: [("E.fc".to_string(), RuleKind::ExactBackprop)].into(),
        };
        rules.install(&mut brain.cortex, 2).unwrap();
        for (state, losses) in brain.cycle(&x) {
            assert!(
                losses.iter().all(|(_, v)| v.is_finite()),
                "{kind:?} {state}: {losses:?}"
            );
        }
    }
}

#[test]
fn a_network_for_64x64_images_trains_evaluates_and_draws_through_the_runner() {
    // Four halvings to 4×4, then the heads; the feedback pathway mirrors it. The built-in
    // shapes are drawn at 64 × 64.
    let root = tempfile::tempdir().unwrap();
    let conv = |name: &str, c: usize| {
        format!("[[model.feedforward]]\nname = \"{name}\"\nkind = \"conv\"\nchannels = {c}\nkernel = 4\nstride = 2\npadding = 1\n")
    };
    let tconv = |name: &str, c: &str, k: usize, s: usize, p: usize, act: &str| {
        format!("[[model.feedback]]\nname = \"{name}\"\nkind = \"conv_transpose\"\n{c}kernel = {k}\nstride = {s}\npadding = {p}\nactivation = {act}\n")
    };
    let lrelu = "{ leaky_relu = 0.2 }";
    let text = [
        "dataset = \"synthetic\"\nepochs = 1\nbatch_size = 8\nmax_cycles_per_epoch = 2\nthreads = 2\n".to_string(),
        "[data.synthetic]\ntrain_size = 64\ntest_size = 32\n[record]\nimages = 4\n".into(),
        "[eval]\npca_points = 16\nfeature_batch = 16\n[eval.converged]\nmax_iterations = 20\n".into(),
        "[model]\nimage_side = 64\n".into(),
        conv("conv1", 4),
        conv("conv2", 8),
        conv("conv3", 8),
        conv("conv4", 8),
        "[model.latent]\nname = \"latent\"\nkind = \"dense\"\nchannels = 6\nactivation = \"identity\"\n".into(),
        "[model.discriminator]\nname = \"dis\"\nkind = \"dense\"\nchannels = 1\nactivation = \"sigmoid\"\n".into(),
        tconv("up1", "channels = 8\n", 4, 1, 0, lrelu),
        tconv("up2", "channels = 8\n", 4, 2, 1, lrelu),
        tconv("up3", "channels = 8\n", 4, 2, 1, lrelu),
        tconv("up4", "channels = 4\n", 4, 2, 1, lrelu),
        tconv("up5", "", 4, 2, 1, "\"tanh\""),
    ]
    .concat();
    let mut config = Config::from_toml(&text).unwrap();
    config.out_dir = root.path().to_path_buf();
    let summary = experiment::train(&config, options()).unwrap();
    let run = padsim::record::RunFile::open_read(summary.run_dir.join("run.h5")).unwrap();
    for name in ["input", "wake_reconstruction", "nrem_dream", "rem_dream"] {
        let images = run.read_images(0, name).unwrap();
        assert_eq!(images.dim(), (4, 3, 64, 64), "{name}");
    }
    let accuracy = run.read_f64_1d("eval/linear/test_accuracy").unwrap();
    assert_eq!(
        accuracy.len(),
        2,
        "evaluated before and after: {accuracy:?}"
    );
    let occluded = run.read_f64_2d("eval/occlusion/test_accuracy").unwrap();
    assert_eq!(occluded.nrows(), 2);
    assert!(summary.run_dir.join("figures").is_dir());
}

/// `padsim model` builds a network for own data with the channels its last feedback area names
/// (as `train` validates it), not with three.
#[test]
fn padsim_model_shows_a_grey_network_for_own_data_with_its_named_channels() {
    let dir = tempfile::tempdir().unwrap();
    let example = std::fs::read_to_string(FIVE_AREAS).unwrap();
    let grey = format!(
        "dataset = \"npy\"\ndata_dir = \"/nonexistent\"\n{}\nchannels = 1\n",
        example
            .lines()
            .filter(|l| !l.starts_with("dataset") && !l.starts_with("data_dir"))
            .collect::<Vec<_>>()
            .join("\n")
    );
    let config = dir.path().join("grey.toml");
    std::fs::write(&config, grey).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_padsim"))
        .args(["model", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("for 1×32×32 images"), "{stdout}");
    assert!(stdout.contains("1×32×32 → 48×16×16"), "{stdout}");
}
