//! One HDF5 file per training run: per-epoch losses, image samples and evaluation results, laid
//! out as in docs/model.md#run-file so that h5py (or any HDF5 reader) opens it directly.
//!
//! PAD equivalent: the reference's `d_losses`, `g_losses`, `r_losses_real`, `r_losses_fake` and
//! `kl_losses` lists (one mean per epoch, plotted by `save_fig_losses`) and its per-epoch
//! `recon_NNN.png` / `fake_NNN.png` samples.
//!
//! ```text
//! /                          attrs: padsim_version, config, seed, dataset, condition, plasticity,
//!                                   optimiser, created
//! /losses/<state>/<term>     f64 [epochs], extendible; entry e = mean over epoch e (0-based)
//! /images/epoch_NNNN/<name>  u8 [n, C, H, W]
//! /eval/...                  written with the generic helpers (write_f64_at, append_row_f64, ...)
//! ```
//!
//! Every per-epoch dataset is indexed by epoch rather than appended to, so re-recording an epoch
//! after a resume overwrites it instead of duplicating it. Entries never written (a term that
//! appears only from a later epoch) read as NaN, or -1 for integer datasets.

use super::check_object_name;
use super::error::{Hdf5Context, RecordError, Result};
use hdf5::types::{TypeDescriptor, VarLenAscii, VarLenUnicode};
use hdf5::{Dataset, Extent, File, Group, H5Type};
use ndarray::{s, Array2, Array4, ArrayView, ArrayView2, ArrayView4, Dimension};
use std::path::{Path, PathBuf};
use std::str::FromStr;

/// Root attributes of a run file: what produced the numbers inside it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunAttributes {
    /// Version of padsim that trained the run.
    pub padsim_version: String,
    /// The run's full configuration as TOML text (stored as attribute `config`).
    pub config_toml: String,
    /// The run's seed.
    pub seed: u64,
    /// Data set name, e.g. `cifar10`.
    pub dataset: String,
    /// Condition name, e.g. `pad` or `no_rem`.
    pub condition: String,
    /// The plasticity rules, one line, e.g. `feedforward=feedback_alignment feedback=exact_backprop`.
    pub plasticity: String,
    /// The optimisers, one line, e.g. `feedforward=adam feedback=adam unused_parameters=skip`.
    pub optimiser: String,
    /// Creation time, as the caller formats it (RFC 3339 recommended).
    pub created: String,
}

/// An open run file. Writes go to the HDF5 library's cache; call [`RunFile::flush`] after each
/// epoch so a crash loses at most the epoch in progress. Dropping the value closes the file, which
/// also flushes it.
///
/// While a run file is open for writing, HDF5 (1.10+) locks it, and other processes (h5py
/// included) fail to open it. To peek at a running run, open it with
/// `HDF5_USE_FILE_LOCKING=FALSE` set in the reader's environment; what it sees is the state at
/// the last flush.
#[derive(Debug)]
pub struct RunFile {
    file: File,
    path: PathBuf,
}

/// Rows per chunk of an extendible dataset. Extendible datasets must be chunked; one chunk of 64
/// rows holds a typical run's per-epoch values, and a small chunk keeps short runs small.
const ROWS_PER_CHUNK: usize = 64;

/// Rows per chunk of an extendible 2-D dataset: evaluations happen every few epochs, so fewer rows
/// are written than for per-epoch losses.
const ROWS_PER_CHUNK_2D: usize = 16;

/// Marks an f64 entry that was never written (HDF5 would otherwise fill gaps with 0.0, which looks
/// like a real loss).
const MISSING_F64: f64 = f64::NAN;
/// Marks an i64 entry that was never written.
const MISSING_I64: i64 = -1;

impl RunFile {
    /// Creates a new run file holding `attributes`. Fails if `path` already exists: a finished
    /// run is never overwritten by accident; delete it, or [`RunFile::open`] it to resume.
    pub fn create(path: impl AsRef<Path>, attributes: &RunAttributes) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        let file = File::create_excl(&path).context(&path, || "creating run file")?;
        let run = Self { file, path };
        run.write_string_attribute("padsim_version", &attributes.padsim_version)?;
        run.write_string_attribute("config", &attributes.config_toml)?;
        run.file
            .new_attr::<u64>()
            .create("seed")
            .and_then(|attr| attr.write_scalar(&attributes.seed))
            .context(&run.path, || "writing attribute seed")?;
        run.write_string_attribute("dataset", &attributes.dataset)?;
        run.write_string_attribute("condition", &attributes.condition)?;
        run.write_string_attribute("plasticity", &attributes.plasticity)?;
        run.write_string_attribute("optimiser", &attributes.optimiser)?;
        run.write_string_attribute("created", &attributes.created)?;
        run.flush()?;
        Ok(run)
    }

    /// Opens an existing run file for reading and writing (to resume a run).
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        let file = File::open_rw(&path).context(&path, || "opening run file for writing")?;
        Ok(Self { file, path })
    }

    /// Opens an existing run file read-only.
    pub fn open_read(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        let file = File::open(&path).context(&path, || "opening run file")?;
        Ok(Self { file, path })
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Pushes everything written so far to the operating system.
    pub fn flush(&self) -> Result<()> {
        self.file.flush().context(&self.path, || "flushing")
    }

    /// Closes the file, reporting errors that dropping it would ignore.
    pub fn close(self) -> Result<()> {
        let path = self.path;
        self.file.close().context(&path, || "closing")
    }

    /// A root attribute as text (numbers are formatted), e.g. `attribute("seed")`.
    pub fn attribute(&self, name: &str) -> Result<String> {
        let operation = || format!("reading attribute {name}");
        let attr = self.file.attr(name).context(&self.path, operation)?;
        let descriptor = attr
            .dtype()
            .and_then(|dtype| dtype.to_descriptor())
            .context(&self.path, operation)?;
        let text = match descriptor {
            TypeDescriptor::VarLenUnicode => attr
                .read_scalar::<VarLenUnicode>()
                .map(|s| s.as_str().to_owned()),
            TypeDescriptor::VarLenAscii => attr
                .read_scalar::<VarLenAscii>()
                .map(|s| s.as_str().to_owned()),
            TypeDescriptor::Unsigned(_) => attr.read_scalar::<u64>().map(|v| v.to_string()),
            TypeDescriptor::Integer(_) => attr.read_scalar::<i64>().map(|v| v.to_string()),
            TypeDescriptor::Float(_) => attr.read_scalar::<f64>().map(|v| v.to_string()),
            other => {
                return Err(RecordError::invalid(
                    &self.path,
                    operation(),
                    format!("unsupported attribute type {other}"),
                ))
            }
        };
        text.context(&self.path, operation)
    }

    /// Records one epoch's losses: each `(state, term, value)` goes to `/losses/<state>/<term>`
    /// at index `epoch` (0-based), overwriting what a previous attempt at that epoch wrote.
    pub fn record_losses<S: AsRef<str>, T: AsRef<str>>(
        &self,
        epoch: usize,
        losses: &[(S, T, f64)],
    ) -> Result<()> {
        for (state, term, value) in losses {
            let path = loss_path(&self.path, state.as_ref(), term.as_ref())?;
            self.write_f64_at(&path, epoch, *value)?;
        }
        Ok(())
    }

    /// Forgets every loss recorded for epochs `epochs` and later: resuming from a checkpoint
    /// taken after `epochs` epochs, those entries belong to the abandoned attempt.
    pub fn truncate_epochs(&self, epochs: usize) -> Result<()> {
        for (state, term) in self.loss_names()? {
            let path = format!("losses/{state}/{term}");
            let dataset = self.dataset(&path)?;
            let length = dataset.shape().first().copied().unwrap_or(0);
            if length > epochs {
                dataset
                    .resize(epochs)
                    .context(&self.path, || format!("truncating /{path} to {epochs}"))?;
            }
        }
        Ok(())
    }

    /// The recorded values of `/losses/<state>/<term>`, one per epoch.
    pub fn read_losses(&self, state: &str, term: &str) -> Result<Vec<f64>> {
        self.read_f64_1d(&loss_path(&self.path, state, term)?)
    }

    /// Every `(state, term)` with a loss dataset, sorted by state then term.
    pub fn loss_names(&self) -> Result<Vec<(String, String)>> {
        let operation = || "listing /losses";
        if !self.file.link_exists("losses") {
            return Ok(Vec::new());
        }
        let losses = self.file.group("losses").context(&self.path, operation)?;
        let mut names = Vec::new();
        for state in losses.member_names().context(&self.path, operation)? {
            let group = losses.group(&state).context(&self.path, operation)?;
            for term in group.member_names().context(&self.path, operation)? {
                names.push((state.clone(), term));
            }
        }
        Ok(names)
    }

    /// Stores image samples `[n, C, H, W]` as `/images/epoch_NNNN/<name>`, replacing earlier ones.
    pub fn record_images(&self, epoch: usize, name: &str, images: ArrayView4<u8>) -> Result<()> {
        self.replace_dataset(&image_path(&self.path, epoch, name)?, images)
    }

    /// The image samples stored by [`RunFile::record_images`].
    pub fn read_images(&self, epoch: usize, name: &str) -> Result<Array4<u8>> {
        let path = image_path(&self.path, epoch, name)?;
        self.dataset(&path)?
            .read()
            .context(&self.path, || format!("reading /{path}"))
    }

    /// Writes `value` at `index` of the 1-D extendible f64 dataset `path` (e.g.
    /// `eval/linear/test_accuracy`), creating it and its groups on first use.
    pub fn write_f64_at(&self, path: &str, index: usize, value: f64) -> Result<()> {
        self.write_extendible_1d(path, index, value, MISSING_F64)
    }

    /// Writes `value` at `index` of the 1-D extendible i64 dataset `path` (e.g. `eval/epoch`),
    /// creating it and its groups on first use.
    pub fn write_i64_at(&self, path: &str, index: usize, value: i64) -> Result<()> {
        self.write_extendible_1d(path, index, value, MISSING_I64)
    }

    /// Writes row `row` of the 2-D extendible f64 dataset `path` of shape `[k, values.len()]`
    /// (e.g. `eval/occlusion/test_accuracy`), creating it and its groups on first use. Every row
    /// of a dataset has the same length.
    pub fn append_row_f64(&self, path: &str, values: &[f64], row: usize) -> Result<()> {
        let operation = || format!("writing row {row} of {path}");
        let width = values.len();
        if width == 0 {
            return Err(RecordError::invalid(
                &self.path,
                operation(),
                "a row needs at least one value",
            ));
        }
        let (group, leaf) = self.parent_group(path, true)?;
        let dataset = if group.link_exists(leaf) {
            group.dataset(leaf)
        } else {
            group
                .new_dataset::<f64>()
                .chunk((ROWS_PER_CHUNK_2D, width))
                .shape([Extent::resizable(0), Extent::fixed(width)])
                .fill_value(MISSING_F64)
                .create(leaf)
        }
        .context(&self.path, operation)?;
        let shape = dataset.shape();
        if shape.len() != 2 || shape[1] != width {
            return Err(RecordError::invalid(
                &self.path,
                operation(),
                format!("dataset has shape {shape:?}, row has {width} values"),
            ));
        }
        if row >= shape[0] {
            dataset
                .resize((row + 1, width))
                .context(&self.path, operation)?;
        }
        let values = ArrayView2::from_shape((1, width), values).expect("one row of width values");
        dataset
            .write_slice(values, s![row..row + 1, ..])
            .context(&self.path, operation)
    }

    /// Writes `values` as the fixed f64 dataset `path`, replacing any dataset there (e.g.
    /// `eval/pca/epoch_0010`).
    pub fn write_f64_2d(&self, path: &str, values: ArrayView2<f64>) -> Result<()> {
        self.replace_dataset(path, values)
    }

    /// Writes `values` as the fixed 1-D i64 dataset `path`, replacing any dataset there (e.g. the
    /// labels beside a PCA projection).
    pub fn write_i64_1d(&self, path: &str, values: &[i64]) -> Result<()> {
        self.replace_dataset(path, ArrayView::from(values))
    }

    /// Whether an object (group or dataset) exists at `path`, e.g. `eval/epoch`.
    pub fn contains(&self, path: &str) -> bool {
        let Ok(components) = object_path_components(&self.path, path) else {
            return false;
        };
        let mut group: Group = (*self.file).clone();
        for (depth, name) in components.iter().enumerate() {
            if !group.link_exists(name) {
                return false;
            }
            if depth + 1 < components.len() {
                match group.group(name) {
                    Ok(inner) => group = inner,
                    Err(_) => return false,
                }
            }
        }
        true
    }

    /// The 1-D f64 dataset at `path`.
    pub fn read_f64_1d(&self, path: &str) -> Result<Vec<f64>> {
        self.dataset(path)?
            .read_raw()
            .context(&self.path, || format!("reading {path}"))
    }

    /// The 1-D i64 dataset at `path`.
    pub fn read_i64_1d(&self, path: &str) -> Result<Vec<i64>> {
        self.dataset(path)?
            .read_raw()
            .context(&self.path, || format!("reading {path}"))
    }

    /// The 2-D f64 dataset at `path`.
    pub fn read_f64_2d(&self, path: &str) -> Result<Array2<f64>> {
        self.dataset(path)?
            .read_2d()
            .context(&self.path, || format!("reading {path}"))
    }

    fn write_string_attribute(&self, name: &str, value: &str) -> Result<()> {
        let operation = || format!("writing attribute {name}");
        // Variable-length UTF-8, so h5py returns `str` rather than bytes.
        let value = VarLenUnicode::from_str(value)
            .map_err(|e| RecordError::invalid(&self.path, operation(), e))?;
        self.file
            .new_attr::<VarLenUnicode>()
            .create(name)
            .and_then(|attr| attr.write_scalar(&value))
            .context(&self.path, operation)
    }

    fn write_extendible_1d<T: H5Type + Copy>(
        &self,
        path: &str,
        index: usize,
        value: T,
        missing: T,
    ) -> Result<()> {
        let operation = || format!("writing {path}[{index}]");
        let (group, leaf) = self.parent_group(path, true)?;
        let dataset = if group.link_exists(leaf) {
            group.dataset(leaf)
        } else {
            group
                .new_dataset::<T>()
                .chunk(ROWS_PER_CHUNK)
                .shape(0..)
                .fill_value(missing)
                .create(leaf)
        }
        .context(&self.path, operation)?;
        let shape = dataset.shape();
        if shape.len() != 1 {
            return Err(RecordError::invalid(
                &self.path,
                operation(),
                format!("dataset has shape {shape:?}, expected 1-D"),
            ));
        }
        if index >= shape[0] {
            dataset.resize(index + 1).context(&self.path, operation)?;
        }
        dataset
            .write_slice(&[value], index..index + 1)
            .context(&self.path, operation)
    }

    fn replace_dataset<T: H5Type + Clone, D: Dimension>(
        &self,
        path: &str,
        values: ArrayView<T, D>,
    ) -> Result<()> {
        let operation = || format!("writing {path}");
        let (group, leaf) = self.parent_group(path, true)?;
        if group.link_exists(leaf) {
            group.unlink(leaf).context(&self.path, operation)?;
        }
        let values = values.as_standard_layout();
        group
            .new_dataset_builder()
            .with_data(values.view())
            .create(leaf)
            .context(&self.path, operation)?;
        Ok(())
    }

    fn dataset(&self, path: &str) -> Result<Dataset> {
        let (group, leaf) = self.parent_group(path, false)?;
        group
            .dataset(leaf)
            .context(&self.path, || format!("opening dataset {path}"))
    }

    /// The group holding the object at `path` (relative to the root; a leading `/` is allowed)
    /// and the object's own name. With `create`, missing groups along the way are created.
    fn parent_group<'p>(&self, path: &'p str, create: bool) -> Result<(Group, &'p str)> {
        let components = object_path_components(&self.path, path)?;
        let (leaf, groups) = components.split_last().expect("at least one component");
        let mut group: Group = (*self.file).clone();
        for name in groups {
            group = if create && !group.link_exists(name) {
                group.create_group(name)
            } else {
                group.group(name)
            }
            .context(&self.path, || format!("opening group {name} of {path}"))?;
        }
        Ok((group, leaf))
    }
}

/// Splits an object path into names, refusing empty names and `.`/`..`, which HDF5 would
/// resolve as the current group rather than create.
fn object_path_components<'p>(file: &Path, path: &'p str) -> Result<Vec<&'p str>> {
    let components: Vec<&str> = path.strip_prefix('/').unwrap_or(path).split('/').collect();
    if components
        .iter()
        .any(|name| name.is_empty() || *name == "." || *name == "..")
    {
        return Err(RecordError::invalid(
            file,
            format!("resolving object path {path:?}"),
            "path components must be non-empty and not . or ..",
        ));
    }
    Ok(components)
}

fn loss_path(file: &Path, state: &str, term: &str) -> Result<String> {
    check_object_name(file, "state", state)?;
    check_object_name(file, "loss term", term)?;
    Ok(format!("losses/{state}/{term}"))
}

fn image_path(file: &Path, epoch: usize, name: &str) -> Result<String> {
    check_object_name(file, "image set", name)?;
    Ok(format!("images/epoch_{epoch:04}/{name}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn object_paths_reject_empty_and_dot_components() {
        let file = Path::new("run.h5");
        assert_eq!(
            object_path_components(file, "/eval/linear/test_accuracy").unwrap(),
            ["eval", "linear", "test_accuracy"]
        );
        for bad in ["", "/", "eval//x", "eval/./x", "eval/..", "eval/"] {
            assert!(object_path_components(file, bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn loss_and_image_paths() {
        let file = Path::new("run.h5");
        assert_eq!(loss_path(file, "wake", "kl").unwrap(), "losses/wake/kl");
        assert!(loss_path(file, "wake/x", "kl").is_err());
        assert!(loss_path(file, "wake", "").is_err());
        assert_eq!(
            image_path(file, 7, "rem_dream").unwrap(),
            "images/epoch_0007/rem_dream"
        );
        assert_eq!(
            image_path(file, 12345, "x").unwrap(),
            "images/epoch_12345/x"
        );
    }
}
