//! The configuration of a training run, read from TOML (every field has a default; unknown
//! keys are errors that name the key) and overridden from the command line.
//!
//! ```toml
//! seed = 0
//! dataset = "cifar10"            # cifar10 | svhn | mnist | fashion_mnist | synthetic
//!                                # | image_folder | npy (your own files, in data_dir)
//! data_dir = "/data/cifar-10-batches-bin"
//! condition = "full_pad"         # a preset; a [schedule] table replaces it
//! epochs = 50
//!
//! [model]
//! nf = 64
//! nz = 256
//!
//! [plasticity]                   # optional: exact backprop everywhere by default
//! feedforward = "feedback_alignment"
//! areas = { "E.dis" = "exact_backprop" }
//!
//! [optimiser.feedforward]        # optional: PAD's Adam for both pathways by default
//! kind = "sgd"                   # adam | sgd
//! lr = 0.01
//! momentum = 0.9
//!
//! [[schedule.phases]]            # optional: a custom cycle
//! state = "wake"
//! ```
//!
//! PAD equivalent: the reference's argparse options (dataset, epochs, batch size 64, lr 2e-4,
//! betas (0.5, 0.999), nz 256, ngf = ndf = 64, W/N/R switches).

use crate::brain::schedule::{Condition, Schedule};
use crate::brain::{Conductor, ReplayPolicy};
use crate::cortex::{Architecture, AreaSpec, PAD_LEAK};
use crate::data::{DatasetKind, LoadOptions};
use crate::eval::geometry::GeometryConfig;
use crate::eval::logistic::LogisticConfig;
use crate::eval::probe::ProbeConfig;
pub use crate::kernels::gemm::Precision;
use crate::plasticity::{Optimisers, PlasticityConfig};
use std::path::{Path, PathBuf};

/// Environment variable naming a directory that holds the data sets (used when `data_dir`
/// is not given): `$PADSIM_DATA/cifar-10-batches-bin`, `$PADSIM_DATA/svhn`, ...
pub const DATA_ENV: &str = "PADSIM_DATA";

/// Everything a training run needs to know.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Seed of every random stream of the run.
    pub seed: u64,
    /// Which data set.
    pub dataset: DatasetKind,
    /// Where its files are (see [`Config::resolved_data_dir`]).
    pub data_dir: Option<PathBuf>,
    /// The paper's condition; ignored when `schedule` is given.
    pub condition: Condition,
    /// A custom cycle replacing the condition's.
    pub schedule: Option<Schedule>,
    /// Passes over the training set.
    pub epochs: usize,
    /// Mini-batch size (PAD: 64). The last partial batch of an epoch is dropped.
    pub batch_size: usize,
    /// Stop each epoch after this many cycles (quick experiments); `None` = the whole set.
    pub max_cycles_per_epoch: Option<usize>,
    /// Worker threads; 0 = one per core.
    pub threads: usize,
    /// Operands of the synaptic products (convolutions): `f32`, or `bf16` (bfloat16 operands,
    /// f32 accumulation; weights, Adam state and everything else stay f32).
    pub precision: Precision,
    /// Directory that receives one folder per run.
    pub out_dir: PathBuf,
    /// The run's folder name; empty = `<dataset>_<condition>_seed<seed>`.
    pub run_name: String,
    /// Widths of the cortex.
    pub model: ModelConfig,
    /// The optimiser of each pathway (`[optimiser.feedforward]`, `[optimiser.feedback]`; a
    /// flat `[optimiser]` of Adam's keys sets both).
    pub optimiser: Optimisers,
    /// How errors travel back through each pathway's and area's synapses.
    pub plasticity: PlasticityConfig,
    /// The episodic buffer.
    pub hippocampus: HippocampusConfig,
    /// Per-state neuromodulation.
    pub conductor: Conductor,
    /// Loader options (MNIST resizing, synthetic set size).
    pub data: LoadOptions,
    /// What is recorded and how often.
    pub record: RecordConfig,
    /// How representations are evaluated, and how often during training.
    pub eval: EvalConfig,
}

/// Evaluation settings (docs/model.md#evaluation). Random draws (probe initialisation and
/// order, occlusion masks, pairs) follow the run's seed; the `seed` fields of the nested
/// tables are replaced by it.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EvalConfig {
    /// Evaluate before training and every this many epochs (and after the last); 0 = no
    /// evaluation between the first and the last (see `before_and_after`).
    pub every: usize,
    /// Evaluate the untrained encoder and the trained one after the last epoch even when
    /// `every` is 0; `false` with `every = 0`: only with `padsim eval`.
    pub before_and_after: bool,
    /// The paper's SGD probe.
    pub probe: ProbeConfig,
    /// The converged logistic-regression probe.
    pub converged: LogisticConfig,
    /// Pair counts of the latent geometry.
    pub geometry: GeometryConfig,
    /// Tile side of the evaluation's occlusion masks on 32 × 32 images (scaled with the side:
    /// [`crate::data::occlusion::eval_tile`]).
    pub occlusion_tile: usize,
    /// Occlusion probabilities 0, 1/(levels−1), …, 1.
    pub occlusion_levels: usize,
    /// Occlusion probability of the clean-vs-occluded distance.
    pub geometry_occlusion: f64,
    /// Test images projected by PCA (the first ones of the test set).
    pub pca_points: usize,
    /// Images per encoder batch during feature extraction.
    pub feature_batch: usize,
}

impl Default for EvalConfig {
    fn default() -> Self {
        EvalConfig {
            every: 0,
            before_and_after: true,
            probe: ProbeConfig::default(),
            converged: LogisticConfig::default(),
            geometry: GeometryConfig::default(),
            occlusion_tile: 4,
            occlusion_levels: 11,
            geometry_occlusion: 0.3,
            pca_points: 1000,
            feature_batch: 250,
        }
    }
}

impl Config {
    /// A pool of `threads` workers whose f32 products run at this configuration's precision.
    pub fn thread_pool(&self) -> rayon::ThreadPool {
        let precision = self.precision;
        rayon::ThreadPoolBuilder::new()
            .num_threads(self.threads)
            .start_handler(move |_| crate::kernels::gemm::set_thread_precision(precision))
            .build()
            .expect("a thread pool of the requested size")
    }
}

impl EvalConfig {
    /// Whether the run evaluates after `epochs_done` epochs of a run of `epochs` (0: the
    /// untrained encoder).
    pub fn due_after(&self, epochs_done: usize, epochs: usize) -> bool {
        let first_or_last = epochs_done == 0 || epochs_done == epochs;
        if self.every == 0 {
            self.before_and_after && first_or_last
        } else {
            first_or_last || epochs_done.is_multiple_of(self.every)
        }
    }
}

/// The network: PAD's, shaped by `nf`, `nz` and `leak`, or your own areas
/// (`[[model.feedforward]]`, `[model.latent]`, `[model.discriminator]`,
/// `[[model.feedback]]`; see [`AreaSpec`]). Image channels follow the data set.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ModelConfig {
    /// PAD's V1 maps (V2: 2·nf, V4: 4·nf).
    pub nf: usize,
    /// PAD's latent size.
    pub nz: usize,
    /// PAD's LeakyReLU slope.
    pub leak: f64,
    /// Height and width of the images the network sees; data of another size are resized to
    /// it (PAD: 32).
    pub image_side: usize,
    /// Your own feedforward trunk, input side first (replaces PAD's network with the three
    /// tables below).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub feedforward: Vec<AreaSpec>,
    /// Your own latent head.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub latent: Option<AreaSpec>,
    /// Your own discriminator head.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub discriminator: Option<AreaSpec>,
    /// Your own feedback pathway, latent side first.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub feedback: Vec<AreaSpec>,
}

impl Default for ModelConfig {
    fn default() -> Self {
        ModelConfig {
            nf: 64,
            nz: 256,
            leak: PAD_LEAK,
            image_side: 32,
            feedforward: Vec::new(),
            latent: None,
            discriminator: None,
            feedback: Vec::new(),
        }
    }
}

impl ModelConfig {
    /// The areas of `arch` as a model configuration (for a run of a brain built in code).
    pub fn from_architecture(arch: &Architecture) -> Self {
        ModelConfig {
            image_side: arch.image_side,
            feedforward: arch.feedforward.clone(),
            latent: Some(arch.latent.clone()),
            discriminator: Some(arch.discriminator.clone()),
            feedback: arch.feedback.clone(),
            ..ModelConfig::default()
        }
    }

    /// Whether the configuration gives its own areas rather than PAD's.
    pub fn is_custom(&self) -> bool {
        !self.feedforward.is_empty()
            || self.latent.is_some()
            || self.discriminator.is_some()
            || !self.feedback.is_empty()
    }

    /// The network for images of `image_channels` channels.
    pub fn architecture(&self, image_channels: usize) -> Result<Architecture, String> {
        if !self.is_custom() {
            let mut arch = Architecture::pad(self.nf, self.nz)
                .with_leak(self.leak)
                .with_image_channels(image_channels);
            arch.image_side = self.image_side;
            return Ok(arch);
        }
        let pad = ModelConfig::default();
        if (self.nf, self.nz, self.leak) != (pad.nf, pad.nz, pad.leak) {
            return Err(
                "model.nf, model.nz and model.leak shape PAD's network; with your own areas, each area gives its channels and activation"
                    .into(),
            );
        }
        let head = |area: &Option<AreaSpec>, table: &str| {
            area.clone()
                .ok_or_else(|| format!("your own network needs [model.{table}] too (with [[model.feedforward]] and [[model.feedback]])"))
        };
        Ok(Architecture {
            image_channels,
            image_side: self.image_side,
            feedforward: self.feedforward.clone(),
            latent: head(&self.latent, "latent")?,
            discriminator: head(&self.discriminator, "discriminator")?,
            feedback: self.feedback.clone(),
        })
    }
}

/// The hippocampus' capacity and replay policy.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HippocampusConfig {
    /// Wake batches kept.
    pub capacity: usize,
    /// Which older memory joins a mix.
    pub policy: ReplayPolicy,
    /// Forget every memory at the start of each epoch, so the first REM dream of an epoch is
    /// `0.5 z + 0.5 n` again. A quirk of the reference (its `z_prev` restarts with each
    /// epoch's loop); off by default.
    pub forget_each_epoch: bool,
}

impl Default for HippocampusConfig {
    fn default() -> Self {
        HippocampusConfig {
            capacity: 2,
            policy: ReplayPolicy::Previous,
            forget_each_epoch: false,
        }
    }
}

/// What goes into the run file besides the losses.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RecordConfig {
    /// Save image grids (HDF5 + PNG) every this many epochs (and after the last); 0 = never.
    pub images_every: usize,
    /// Images per grid.
    pub images: usize,
    /// Keep a copy of the checkpoint every this many epochs (`checkpoints/epoch_NNNN.h5`), so
    /// `padsim eval --epoch N` can return to it; 0 = keep only the latest.
    pub keep_checkpoints_every: usize,
}

impl Default for RecordConfig {
    fn default() -> Self {
        RecordConfig {
            images_every: 1,
            images: 64,
            keep_checkpoints_every: 0,
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            seed: 0,
            dataset: DatasetKind::Synthetic,
            data_dir: None,
            condition: Condition::FullPad,
            schedule: None,
            epochs: 2,
            batch_size: 64,
            max_cycles_per_epoch: None,
            threads: 0,
            precision: Precision::F32,
            out_dir: PathBuf::from("runs"),
            run_name: String::new(),
            model: ModelConfig::default(),
            optimiser: Optimisers::default(),
            plasticity: PlasticityConfig::default(),
            hippocampus: HippocampusConfig::default(),
            conductor: Conductor::default(),
            data: LoadOptions::default(),
            record: RecordConfig::default(),
            eval: EvalConfig::default(),
        }
    }
}

/// A configuration that cannot be used, with the reason.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("{path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The TOML is malformed, has an unknown key or a value of the wrong type.
    #[error("{path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The TOML parser's message (line, column, key).
        message: String,
    },
    /// The values are inconsistent.
    #[error("invalid configuration: {0}")]
    Invalid(String),
}

impl Config {
    /// Reads a TOML file.
    pub fn from_file(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.into(),
            source,
        })?;
        Config::from_toml(&text).map_err(|message| ConfigError::Parse {
            path: path.into(),
            message,
        })
    }

    /// Parses TOML text; the error carries the parser's message.
    pub fn from_toml(text: &str) -> Result<Config, String> {
        toml::from_str(text).map_err(|e| e.to_string())
    }

    /// The configuration as TOML (stored in run files and checkpoints).
    pub fn to_toml(&self) -> String {
        toml::to_string(self).expect("every config field serialises")
    }

    /// The cycle: the custom schedule if given, else the condition's preset.
    pub fn resolved_schedule(&self) -> Schedule {
        self.schedule
            .clone()
            .unwrap_or_else(|| self.condition.schedule())
    }

    /// The network for images of `image_channels` channels (the loaded data set's
    /// [`crate::data::Dataset::channels`]; [`DatasetKind::channels`] when known beforehand),
    /// its shapes checked: errors name the area, the shape it gets and the shape it needs.
    pub fn architecture(&self, image_channels: usize) -> Result<Architecture, ConfigError> {
        let arch = self
            .model
            .architecture(image_channels)
            .map_err(ConfigError::Invalid)?;
        arch.layout()
            .map_err(|e| ConfigError::Invalid(format!("model: {e}")))?;
        Ok(arch)
    }

    /// The images' channels as known before any data is read: the data set's, or for a set
    /// whose channels follow its files those the last feedback area names, else 3.
    pub fn image_channels_before_loading(&self) -> usize {
        self.dataset.channels().unwrap_or_else(|| {
            let last = self.model.feedback.last();
            last.and_then(|a| a.channels).unwrap_or(3)
        })
    }

    /// Name of the run's folder.
    pub fn resolved_run_name(&self) -> String {
        if !self.run_name.is_empty() {
            return self.run_name.clone();
        }
        let condition = if self.schedule.is_some() {
            "custom".to_string()
        } else {
            self.condition.to_string()
        };
        format!("{}_{}_seed{}", self.dataset, condition, self.seed)
    }

    /// The run's folder.
    pub fn run_dir(&self) -> PathBuf {
        self.out_dir.join(self.resolved_run_name())
    }

    /// The data directory: `data_dir`, else `$PADSIM_DATA/<the data set's usual folder>`
    /// (your own sets, `image_folder` and `npy`, need `data_dir`).
    pub fn resolved_data_dir(&self) -> Result<PathBuf, ConfigError> {
        if let Some(dir) = &self.data_dir {
            return Ok(dir.clone());
        }
        if self.dataset == DatasetKind::Synthetic {
            return Ok(PathBuf::new());
        }
        if self.dataset.is_own_data() {
            let layout = match self.dataset {
                DatasetKind::ImageFolder => {
                    "train/ and test/, one sub-folder of PNG images per class"
                }
                _ => "train_images.npy, train_labels.npy, test_images.npy and test_labels.npy",
            };
            return Err(ConfigError::Invalid(format!(
                "dataset '{}' reads your own files: set data_dir (or pass --data-dir DIR) to the folder holding {layout}",
                self.dataset
            )));
        }
        let folder = self
            .dataset
            .conventional_dir()
            .expect("every data set but the synthetic one has a folder");
        match std::env::var_os(DATA_ENV) {
            Some(root) => Ok(PathBuf::from(root).join(folder)),
            None => Err(ConfigError::Invalid(format!(
                "dataset '{}' needs its files: pass --data-dir DIR or set {DATA_ENV} to a folder containing '{folder}'",
                self.dataset
            ))),
        }
    }

    /// Checks values that serde cannot.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad = |m: String| Err(ConfigError::Invalid(m));
        if self.batch_size < 2 {
            return bad(format!(
                "batch_size must be at least 2 (the KL term needs a batch std), got {}",
                self.batch_size
            ));
        }
        if self.model.nf == 0 || self.model.nz == 0 {
            return bad("model.nf and model.nz must be positive".into());
        }
        // The shapes, before any data is read (and again once loaded, for a set whose channels
        // follow its files).
        self.architecture(self.image_channels_before_loading())?;
        if self.hippocampus.capacity == 0 {
            return bad("hippocampus.capacity must be at least 1".into());
        }
        if self.eval.occlusion_levels < 2 {
            return bad(format!(
                "eval.occlusion_levels must be at least 2 (p = 0 and p = 1), got {}",
                self.eval.occlusion_levels
            ));
        }
        if self.eval.occlusion_tile == 0 || self.eval.feature_batch == 0 {
            return bad("eval.occlusion_tile and eval.feature_batch must be positive".into());
        }
        self.optimiser.validate().map_err(ConfigError::Invalid)?;
        if self.max_cycles_per_epoch == Some(0) {
            return bad("max_cycles_per_epoch must be at least 1 when given".into());
        }
        let schedule = self.resolved_schedule();
        schedule.validate().map_err(ConfigError::Invalid)?;
        schedule
            .check_conductor(&self.conductor)
            .map_err(ConfigError::Invalid)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_toml_gives_the_defaults_and_round_trips() {
        let c = Config::from_toml("").unwrap();
        assert_eq!(c, Config::default());
        assert_eq!(Config::from_toml(&c.to_toml()).unwrap(), c);
    }

    #[test]
    fn evaluations_fall_before_training_every_k_epochs_and_after_the_last() {
        let due = |every, before_and_after| -> Vec<usize> {
            let eval = EvalConfig {
                every,
                before_and_after,
                ..EvalConfig::default()
            };
            (0..=7).filter(|&e| eval.due_after(e, 7)).collect()
        };
        assert_eq!(due(0, true), [0, 7]);
        assert_eq!(due(0, false), Vec::<usize>::new());
        assert_eq!(due(3, false), [0, 3, 6, 7]);
        assert_eq!(due(3, true), [0, 3, 6, 7]);
    }

    #[test]
    fn unknown_keys_are_named() {
        let err = Config::from_toml("epochz = 3").unwrap_err();
        assert!(err.contains("epochz"), "{err}");
        let err = Config::from_toml("[model]\nwidth = 3").unwrap_err();
        assert!(err.contains("width"), "{err}");
    }

    #[test]
    fn custom_schedule_replaces_the_condition() {
        let c =
            Config::from_toml("condition = \"no_rem\"\n[[schedule.phases]]\nstate = \"wake\"\n")
                .unwrap();
        assert_eq!(c.resolved_schedule().phases.len(), 1);
        assert!(c.resolved_run_name().contains("custom"));
        c.validate().unwrap();
    }

    #[test]
    fn plasticity_is_chosen_per_pathway_and_area() {
        use crate::plasticity::RuleKind;
        let c = Config::from_toml(
            "[plasticity]\nfeedforward = \"feedback_alignment\"\nareas = { \"G.tconv1\" = \"sign_symmetry\" }\n",
        )
        .unwrap();
        assert_eq!(c.plasticity.feedforward, RuleKind::FeedbackAlignment);
        assert_eq!(c.plasticity.feedback, RuleKind::ExactBackprop);
        assert_eq!(c.plasticity.areas["G.tconv1"], RuleKind::SignSymmetry);
        assert_eq!(Config::from_toml(&c.to_toml()).unwrap(), c);
        let err = Config::from_toml("[plasticity]\nfeedforward = \"hebb\"").unwrap_err();
        assert!(err.contains("hebb"), "{err}");
        let err = Config::from_toml("[plasticity]\nfeedforwards = \"sign_symmetry\"").unwrap_err();
        assert!(err.contains("feedforwards"), "{err}");
    }

    #[test]
    fn custom_schedules_and_conductors_survive_the_round_trip_resume_relies_on() {
        let text = r#"
            [[schedule.phases]]
            state = "wake"
            latent_noise = 0.3
            [[schedule.phases]]
            state = "rem"
            dream = { current = 0.1, older = 0.2, noise = 0.7 }
            [conductor.rem]
            feedforward_plastic = true
            feedback_plastic = true
            feedback_sign = 1.0
            discriminator = "internal"
        "#;
        let c = Config::from_toml(text).unwrap();
        assert_eq!(Config::from_toml(&c.to_toml()).unwrap(), c);
        assert_eq!(c.conductor.get("rem").unwrap().feedback_sign, 1.0);
    }

    #[test]
    fn own_data_sets_need_a_data_dir_and_take_channels_from_their_files() {
        let c = Config::from_toml("dataset = \"image_folder\"").unwrap();
        let err = c.resolved_data_dir().unwrap_err().to_string();
        assert!(
            err.contains("image_folder") && err.contains("data_dir"),
            "{err}"
        );
        assert_eq!(c.dataset.channels(), None);
        let c = Config::from_toml("dataset = \"npy\"\ndata_dir = \"/d\"").unwrap();
        assert_eq!(c.resolved_data_dir().unwrap(), PathBuf::from("/d"));
        assert_eq!(c.architecture(1).unwrap().image_channels, 1);
    }

    #[test]
    fn invalid_values_are_explained() {
        let c = Config {
            batch_size: 1,
            ..Config::default()
        };
        assert!(c.validate().unwrap_err().to_string().contains("batch_size"));
    }
}
