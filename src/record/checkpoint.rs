//! Training checkpoints: everything needed to continue a run bit for bit, in an HDF5 file that is
//! replaced atomically, so a run killed at any moment leaves either the previous checkpoint or
//! the new one, never a mixture.
//!
//! PAD equivalent: the reference's `torch.save({'generator', 'discriminator', 'g_optim',
//! 'd_optim', <loss lists>}, 'trained.pth')` after every epoch. Unlike it, this also keeps the
//! hippocampus, the random streams and the position inside an epoch, and it never leaves a
//! half-written file in place of the last good one.
//!
//! ```text
//! /                                 attrs: format_version (= 1), config (TOML text), epoch, batch
//! /parameters/<name>                f32, the parameter's shape (e.g. E.conv1.weight)
//! /optimisers/<opt>/<name>/         attr: step (u64)
//!     <buffer>, ...                 f32, the parameter's shape (Adam: exp_avg, exp_avg_sq;
//!                                   SGD with momentum: momentum_buffer)
//! /hippocampus/memory_000, ...      f32 [batch, nz], newest first
//! /rng/<name>                       u8 [32], the ChaCha seed;
//!                                   attrs: stream, word_pos_hi, word_pos_lo (u64)
//! /extra/<name>                     f32, any shape
//! /scalars                          f64 [k]; attr names: the k names, one per line
//! ```
//!
//! Groups record link creation order, so lists come back in the order they were written.

use super::error::{Hdf5Context, RecordError, Result};
use super::{check_object_name, parent_dir, sibling_with_suffix, sync_dir};
use hdf5::file::FileCloseDegree;
use hdf5::plist::group_create::LinkCreationOrder;
use hdf5::types::VarLenUnicode;
use hdf5::{File, Group, IndexType, IterationOrder, Location};
use ndarray::{Array2, ArrayD, ArrayViewD};
use std::path::Path;
use std::str::FromStr;

/// Version of the layout above; [`Checkpoint::read`] refuses any other.
pub const CHECKPOINT_FORMAT_VERSION: u64 = 1;

/// Everything needed to resume training, as plain data.
#[derive(Clone, Debug, PartialEq)]
pub struct Checkpoint {
    /// The run's configuration as TOML text.
    pub config_toml: String,
    /// Epochs completed.
    pub epoch: u64,
    /// Batches completed within the current epoch.
    pub batch: u64,
    /// Parameter values by name, e.g. `E.conv1.weight`.
    pub parameters: Vec<(String, ArrayD<f32>)>,
    /// One entry per optimiser.
    pub optimisers: Vec<OptimiserState>,
    /// Hippocampal memories, newest first.
    pub memories: Vec<Array2<f32>>,
    /// Named random streams.
    pub rngs: Vec<RngState>,
    /// Other state by name, e.g. fixed feedback weights of a non-backprop plasticity rule.
    pub extra: Vec<(String, ArrayD<f32>)>,
    /// Named f64 values, e.g. running loss sums of a partly done epoch (names may contain `/`,
    /// not newlines).
    pub scalars: Vec<(String, f64)>,
}

/// Where a checkpoint stands, read by [`Checkpoint::read_header`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckpointHeader {
    /// The run's configuration as TOML text.
    pub config_toml: String,
    /// Epochs completed.
    pub epoch: u64,
    /// Batches completed within the current epoch.
    pub batch: u64,
}

/// Arrays with their names, in order.
pub type NamedArrays = Vec<(String, ArrayD<f32>)>;

/// The state of one optimiser.
#[derive(Clone, Debug, PartialEq)]
pub struct OptimiserState {
    /// Optimiser name, e.g. `feedforward` or `feedback`.
    pub name: String,
    /// Per parameter: name, steps taken, and the named buffers in the order written (Adam:
    /// `exp_avg`, `exp_avg_sq`; SGD with momentum: `momentum_buffer`).
    pub tensors: Vec<(String, u64, NamedArrays)>,
}

/// The position of one ChaCha random stream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RngState {
    /// Stream name, e.g. `shuffle`.
    pub name: String,
    /// The generator's seed.
    pub seed: [u8; 32],
    /// The generator's stream number.
    pub stream: u64,
    /// The generator's word position.
    pub word_pos: u128,
}

impl Checkpoint {
    /// Reads only where a checkpoint stands (configuration, epoch, batch), without its arrays:
    /// enough to tell whether a run is finished, and far cheaper than [`Checkpoint::read`].
    pub fn read_header(path: impl AsRef<Path>) -> Result<CheckpointHeader> {
        let path = path.as_ref();
        let file = File::open(path).context(path, || "opening checkpoint")?;
        Reader { path }.header(&file)
    }

    /// Writes the checkpoint to `path` atomically: to `<path>.tmp` first, then synced, renamed
    /// over `path`, and the directory synced. A crash before the rename leaves the previous
    /// checkpoint untouched (and a stray `<path>.tmp`, which the next write replaces).
    pub fn write_atomic(&self, path: impl AsRef<Path>) -> Result<()> {
        let path = path.as_ref();
        let temporary = sibling_with_suffix(path, ".tmp");
        let written = self.write_hdf5(&temporary).and_then(|()| {
            // Closing the HDF5 file only hands the data to the OS; without this sync a crash
            // after the rename could leave a checkpoint with missing blocks.
            std::fs::File::open(&temporary)
                .and_then(|file| file.sync_all())
                .map_err(|source| RecordError::io(&temporary, "syncing checkpoint", source))?;
            std::fs::rename(&temporary, path).map_err(|source| {
                RecordError::io(path, "renaming temporary checkpoint into place", source)
            })
        });
        if written.is_err() {
            // Best effort: the original error is what the caller needs to see.
            let _ = std::fs::remove_file(&temporary);
        }
        written?;
        sync_dir(parent_dir(path))
    }

    /// Reads a checkpoint written by [`Checkpoint::write_atomic`].
    pub fn read(path: impl AsRef<Path>) -> Result<Checkpoint> {
        let path = path.as_ref();
        let file = File::open(path).context(path, || "opening checkpoint")?;
        let reader = Reader { path };
        let CheckpointHeader {
            config_toml,
            epoch,
            batch,
        } = reader.header(&file)?;
        let parameters = reader.arrays(&file, "parameters")?;
        let extra = reader.arrays(&file, "extra")?;
        let scalars = read_scalars(&file, path)?;

        let optimisers_group = reader.group(&file, "optimisers")?;
        let mut optimisers = Vec::new();
        for name in reader.names_in_order(&optimisers_group)? {
            let optimiser = reader.group(&optimisers_group, &name)?;
            let mut tensors = Vec::new();
            for tensor_name in reader.names_in_order(&optimiser)? {
                let tensor = reader.group(&optimiser, &tensor_name)?;
                let step = reader.u64_attribute(&tensor, "step")?;
                let buffers = reader
                    .names_in_order(&tensor)?
                    .into_iter()
                    .map(|buffer| Ok((buffer.clone(), reader.array(&tensor, &buffer)?)))
                    .collect::<Result<_>>()?;
                tensors.push((tensor_name, step, buffers));
            }
            optimisers.push(OptimiserState { name, tensors });
        }

        let hippocampus = reader.group(&file, "hippocampus")?;
        let memory_names = reader.names_in_order(&hippocampus)?;
        let mut memories = Vec::with_capacity(memory_names.len());
        for index in 0..memory_names.len() {
            // By index rather than by listing: the order of memories is their meaning.
            let name = memory_name(index);
            let memory = hippocampus
                .dataset(&name)
                .and_then(|dataset| dataset.read_2d::<f32>())
                .context(path, || format!("reading /hippocampus/{name}"))?;
            memories.push(memory);
        }

        let rng_group = reader.group(&file, "rng")?;
        let mut rngs = Vec::new();
        for name in reader.names_in_order(&rng_group)? {
            let operation = || format!("reading /rng/{name}");
            let dataset = rng_group.dataset(&name).context(path, operation)?;
            let seed_bytes = dataset.read_raw::<u8>().context(path, operation)?;
            let seed = <[u8; 32]>::try_from(seed_bytes.as_slice()).map_err(|_| {
                RecordError::invalid(
                    path,
                    operation(),
                    format!("seed has {} bytes, expected 32", seed_bytes.len()),
                )
            })?;
            let stream = reader.u64_attribute(&dataset, "stream")?;
            let high = reader.u64_attribute(&dataset, "word_pos_hi")?;
            let low = reader.u64_attribute(&dataset, "word_pos_lo")?;
            rngs.push(RngState {
                name,
                seed,
                stream,
                word_pos: (u128::from(high) << 64) | u128::from(low),
            });
        }

        Ok(Checkpoint {
            config_toml,
            epoch,
            batch,
            parameters,
            optimisers,
            memories,
            rngs,
            extra,
            scalars,
        })
    }

    fn write_hdf5(&self, path: &Path) -> Result<()> {
        // `Semi` makes closing fail if any object is still open, instead of silently keeping
        // the file open, so "closed" really means every byte was handed to the OS before the sync.
        let file = File::with_options()
            .with_fapl(|fapl| fapl.fclose_degree(FileCloseDegree::Semi))
            .create(path)
            .context(path, || "creating checkpoint")?;
        {
            let writer = Writer { path };
            writer.u64_attribute(&file, "format_version", CHECKPOINT_FORMAT_VERSION)?;
            writer.string_attribute(&file, "config", &self.config_toml)?;
            writer.u64_attribute(&file, "epoch", self.epoch)?;
            writer.u64_attribute(&file, "batch", self.batch)?;
            writer.arrays(&file, "parameters", &self.parameters)?;
            writer.arrays(&file, "extra", &self.extra)?;
            write_scalars(&file, path, &self.scalars)?;

            let optimisers = writer.ordered_group(&file, "optimisers")?;
            for optimiser in &self.optimisers {
                let group = writer.ordered_group(&optimisers, &optimiser.name)?;
                for (name, step, buffers) in &optimiser.tensors {
                    let tensor = writer.ordered_group(&group, name)?;
                    writer.u64_attribute(&tensor, "step", *step)?;
                    for (buffer, values) in buffers {
                        writer.array(&tensor, buffer, values.view())?;
                    }
                }
            }

            let hippocampus = writer.ordered_group(&file, "hippocampus")?;
            for (index, memory) in self.memories.iter().enumerate() {
                writer.array(&hippocampus, &memory_name(index), memory.view().into_dyn())?;
            }

            let rngs = writer.ordered_group(&file, "rng")?;
            for rng in &self.rngs {
                check_object_name(path, "random stream", &rng.name)?;
                let dataset = rngs
                    .new_dataset_builder()
                    .with_data(&rng.seed[..])
                    .create(rng.name.as_str())
                    .context(path, || format!("writing /rng/{}", rng.name))?;
                writer.u64_attribute(&dataset, "stream", rng.stream)?;
                writer.u64_attribute(&dataset, "word_pos_hi", (rng.word_pos >> 64) as u64)?;
                writer.u64_attribute(&dataset, "word_pos_lo", rng.word_pos as u64)?;
            }
        }
        file.close().context(path, || "closing checkpoint")
    }
}

fn write_scalars(file: &File, path: &Path, scalars: &[(String, f64)]) -> Result<()> {
    if let Some((name, _)) = scalars.iter().find(|(name, _)| name.contains('\n')) {
        return Err(RecordError::invalid(
            path,
            "writing /scalars",
            format!("name {name:?} contains a newline"),
        ));
    }
    let values: Vec<f64> = scalars.iter().map(|(_, v)| *v).collect();
    let names: Vec<&str> = scalars.iter().map(|(n, _)| n.as_str()).collect();
    let dataset = file
        .new_dataset_builder()
        .with_data(&values[..])
        .create("scalars")
        .context(path, || "writing /scalars")?;
    let names = VarLenUnicode::from_str(&names.join("\n"))
        .map_err(|e| RecordError::invalid(path, "writing /scalars", e.to_string()))?;
    dataset
        .new_attr::<VarLenUnicode>()
        .create("names")
        .and_then(|attr| attr.write_scalar(&names))
        .context(path, || "writing /scalars names")
}

fn read_scalars(file: &File, path: &Path) -> Result<Vec<(String, f64)>> {
    let dataset = file
        .dataset("scalars")
        .context(path, || "reading /scalars")?;
    let values = dataset
        .read_raw::<f64>()
        .context(path, || "reading /scalars")?;
    let names = dataset
        .attr("names")
        .and_then(|attr| attr.read_scalar::<VarLenUnicode>())
        .context(path, || "reading /scalars names")?;
    let names: Vec<String> = if values.is_empty() {
        Vec::new()
    } else {
        names.as_str().split('\n').map(str::to_owned).collect()
    };
    if names.len() != values.len() {
        return Err(RecordError::invalid(
            path,
            "reading /scalars",
            format!("{} names for {} values", names.len(), values.len()),
        ));
    }
    Ok(names.into_iter().zip(values).collect())
}

/// Memory names sort in order up to 1000 memories; readers use the index anyway.
fn memory_name(index: usize) -> String {
    format!("memory_{index:03}")
}

/// Writing helpers that name the file in their errors.
struct Writer<'p> {
    path: &'p Path,
}

impl Writer<'_> {
    fn u64_attribute(&self, location: &Location, name: &str, value: u64) -> Result<()> {
        location
            .new_attr::<u64>()
            .create(name)
            .and_then(|attr| attr.write_scalar(&value))
            .context(self.path, || {
                format!("writing attribute {name} of {}", location.name())
            })
    }

    fn string_attribute(&self, location: &Location, name: &str, value: &str) -> Result<()> {
        let operation = || format!("writing attribute {name} of {}", location.name());
        // Variable-length UTF-8, so h5py returns `str` rather than bytes.
        let value = VarLenUnicode::from_str(value)
            .map_err(|e| RecordError::invalid(self.path, operation(), e))?;
        location
            .new_attr::<VarLenUnicode>()
            .create(name)
            .and_then(|attr| attr.write_scalar(&value))
            .context(self.path, operation)
    }

    fn ordered_group(&self, parent: &Group, name: &str) -> Result<Group> {
        check_object_name(self.path, "group", name)?;
        parent
            .create_group_builder()
            .with_gcpl(|gcpl| gcpl.link_creation_order(LinkCreationOrder::Tracked))
            .create(name)
            .context(self.path, || {
                format!("creating group {name} in {}", parent.name())
            })
    }

    fn array(&self, group: &Group, name: &str, array: ArrayViewD<f32>) -> Result<()> {
        check_object_name(self.path, "array", name)?;
        let array = array.as_standard_layout();
        group
            .new_dataset_builder()
            .with_data(array.view())
            .create(name)
            .context(self.path, || format!("writing {}/{name}", group.name()))?;
        Ok(())
    }

    fn arrays(&self, parent: &Group, name: &str, arrays: &[(String, ArrayD<f32>)]) -> Result<()> {
        let group = self.ordered_group(parent, name)?;
        for (array_name, array) in arrays {
            self.array(&group, array_name, array.view())?;
        }
        Ok(())
    }
}

/// Reading helpers that name the file in their errors.
struct Reader<'p> {
    path: &'p Path,
}

impl Reader<'_> {
    /// The root attributes: format version (checked), configuration, epoch and batch.
    fn header(&self, file: &File) -> Result<CheckpointHeader> {
        let path = self.path;
        let format_version = self.u64_attribute(file, "format_version")?;
        if format_version != CHECKPOINT_FORMAT_VERSION {
            return Err(RecordError::invalid(
                path,
                "reading checkpoint",
                format!(
                    "format version {format_version}; this padsim reads version {CHECKPOINT_FORMAT_VERSION}"
                ),
            ));
        }
        let config_toml = file
            .attr("config")
            .and_then(|attr| attr.read_scalar::<VarLenUnicode>())
            .context(path, || "reading attribute config")?
            .as_str()
            .to_owned();
        Ok(CheckpointHeader {
            config_toml,
            epoch: self.u64_attribute(file, "epoch")?,
            batch: self.u64_attribute(file, "batch")?,
        })
    }

    fn u64_attribute(&self, location: &Location, name: &str) -> Result<u64> {
        location
            .attr(name)
            .and_then(|attr| attr.read_scalar::<u64>())
            .context(self.path, || {
                format!("reading attribute {name} of {}", location.name())
            })
    }

    fn group(&self, parent: &Group, name: &str) -> Result<Group> {
        parent.group(name).context(self.path, || {
            format!("opening group {name} in {}", parent.name())
        })
    }

    fn names_in_order(&self, group: &Group) -> Result<Vec<String>> {
        group
            .member_names_by(IndexType::CreationOrder, IterationOrder::Increasing)
            .context(self.path, || format!("listing {}", group.name()))
    }

    fn array(&self, group: &Group, name: &str) -> Result<ArrayD<f32>> {
        group
            .dataset(name)
            .and_then(|dataset| dataset.read_dyn::<f32>())
            .context(self.path, || format!("reading {}/{name}", group.name()))
    }

    fn arrays(&self, parent: &Group, name: &str) -> Result<Vec<(String, ArrayD<f32>)>> {
        let group = self.group(parent, name)?;
        self.names_in_order(&group)?
            .into_iter()
            .map(|array_name| {
                let array = self.array(&group, &array_name)?;
                Ok((array_name, array))
            })
            .collect()
    }
}
