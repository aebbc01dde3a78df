//! Records of a training run: an HDF5 run file (losses, image samples, evaluation results),
//! PNG image grids, and crash-safe training checkpoints.
//!
//! PAD equivalent: the reference keeps per-epoch mean losses in Python lists that live inside its
//! checkpoint (`trained.pth`, rewritten by `torch.save` each epoch) and draws them with
//! `save_fig_losses`; it saves reconstructions and REM dreams with
//! `torchvision.utils.save_image(unorm(x), nrow=8)`. Here losses and samples go to one HDF5 file
//! per run that h5py can read (layout in docs/model.md#run-file), and checkpoints are separate
//! files replaced atomically, so a run killed mid-write resumes from the last complete epoch.
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

pub use checkpoint::{
    Checkpoint, CheckpointHeader, NamedArrays, OptimiserState, RngState, CHECKPOINT_FORMAT_VERSION,
};
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

/// Writes `bytes` (a `what`, for error messages) to a temporary sibling of `path`, syncs it,
/// then renames it over `path`: readers see the old file or the new one, never a torn one.
fn write_atomically(path: &Path, bytes: &[u8], what: &str) -> Result<()> {
    use std::io::Write;
    use std::sync::atomic::{AtomicU64, Ordering};
    // The process id and a counter keep two processes, or two threads, writing the same file
    // from sharing a temporary file.
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let unique = NEXT.fetch_add(1, Ordering::Relaxed);
    let temporary = sibling_with_suffix(path, &format!(".{}.{unique}.tmp", std::process::id()));
    let written = std::fs::File::create(&temporary)
        .and_then(|mut file| {
            file.write_all(bytes)?;
            file.sync_all()
        })
        .map_err(|source| RecordError::io(&temporary, format!("writing temporary {what}"), source))
        .and_then(|()| {
            std::fs::rename(&temporary, path).map_err(|source| {
                RecordError::io(
                    path,
                    format!("renaming temporary {what} into place"),
                    source,
                )
            })
        });
    if written.is_err() {
        // Best effort: the original error is what the caller needs to see.
        let _ = std::fs::remove_file(&temporary);
    }
    written?;
    sync_dir(parent_dir(path))
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
