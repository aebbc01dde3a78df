//! Records of a training run: an HDF5 run file (losses, image samples, evaluation results),
//! PNG image grids, and crash-safe training checkpoints.
//!
//! PAD equivalent: the reference keeps per-epoch mean losses in Python lists that live inside its
//! checkpoint (`trained.pth`, rewritten by `torch.save` each epoch) and draws them with
//! `save_fig_losses`; it saves reconstructions and REM dreams with
//! `torchvision.utils.save_image(unorm(x), nrow=8)`. Here losses and samples go to one HDF5 file
//! per run that h5py can read (layout in DESIGN.md section 3), and checkpoints are separate files
//! replaced atomically, so a run killed mid-write resumes from the last complete epoch.
//!
//! - [`RunFile`]: `/losses/<state>/<term>`, `/images/epoch_NNNN/<name>`, and generic extendible
//!   datasets for evaluation results;
//! - [`to_u8`], [`save_grid_png`]: images in [-1, 1] to bytes, and tiled grids on disk;
//! - [`Checkpoint`]: weights, Adam moments, hippocampus, RNG streams and progress.

mod checkpoint;
mod error;
pub mod figures;
mod images;
mod run_file;

pub use checkpoint::{Checkpoint, OptimiserState, RngState, CHECKPOINT_FORMAT_VERSION};
pub use error::{RecordError, Result};
pub use images::{save_grid_png, to_u8};
pub use run_file::{RunAttributes, RunFile};

use std::path::{Path, PathBuf};

/// A sibling of `path` named `<file name><suffix>`: in the same directory, so a rename onto
/// `path` never crosses file systems and is atomic.
fn sibling_with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(suffix);
    path.with_file_name(name)
}

/// The directory holding `path` (`.` for a bare file name).
fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    }
}

/// Makes a completed rename inside `dir` durable: the rename is a change to the directory, which
/// a crash can lose unless the directory itself is synced.
fn sync_dir(dir: &Path) -> Result<()> {
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|source| RecordError::io(dir, "syncing directory", source))
}

/// Refuses names HDF5 would not store as one object in a group: empty, containing `/` (a path),
/// or `.`/`..` (which resolve to a group rather than name a new object).
fn check_object_name(file: &Path, kind: &str, name: &str) -> Result<()> {
    if name.is_empty() || name.contains('/') || name == "." || name == ".." {
        return Err(RecordError::invalid(
            file,
            format!("using {kind} name {name:?}"),
            "names must be non-empty, without '/', and not . or ..",
        ));
    }
    Ok(())
}
