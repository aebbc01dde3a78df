//! The error of every recording operation. Each names the file and what was being done to it,
//! because a long run writes several files and "HDF5 error" alone does not say which one failed.

use std::fmt::Display;
use std::path::{Path, PathBuf};

/// Result of a recording operation.
pub type Result<T, E = RecordError> = std::result::Result<T, E>;

/// A failed read or write of a run file, checkpoint or image.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    /// The HDF5 library refused an operation (missing object, corrupt or truncated file, ...).
    #[error("{}: {operation}: {source}", path.display())]
    Hdf5 {
        path: PathBuf,
        operation: String,
        #[source]
        source: hdf5::Error,
    },
    /// The operating system refused a file operation.
    #[error("{}: {operation}: {source}", path.display())]
    Io {
        path: PathBuf,
        operation: String,
        #[source]
        source: std::io::Error,
    },
    /// PNG encoding failed.
    #[error("{}: {operation}: {source}", path.display())]
    Png {
        path: PathBuf,
        operation: String,
        #[source]
        source: png::EncodingError,
    },
    /// The arguments or the file's contents do not have the expected form.
    #[error("{}: {operation}: {detail}", path.display())]
    Invalid {
        path: PathBuf,
        operation: String,
        detail: String,
    },
}

impl RecordError {
    pub(crate) fn hdf5(path: &Path, operation: impl Display, source: hdf5::Error) -> Self {
        Self::Hdf5 {
            path: path.to_path_buf(),
            operation: operation.to_string(),
            source,
        }
    }

    pub(crate) fn io(path: &Path, operation: impl Display, source: std::io::Error) -> Self {
        Self::Io {
            path: path.to_path_buf(),
            operation: operation.to_string(),
            source,
        }
    }

    pub(crate) fn invalid(path: &Path, operation: impl Display, detail: impl Display) -> Self {
        Self::Invalid {
            path: path.to_path_buf(),
            operation: operation.to_string(),
            detail: detail.to_string(),
        }
    }

    /// The file the failed operation was about.
    pub fn path(&self) -> &Path {
        match self {
            Self::Hdf5 { path, .. }
            | Self::Io { path, .. }
            | Self::Png { path, .. }
            | Self::Invalid { path, .. } => path,
        }
    }
}

/// Attaches the file and the operation to an HDF5 result. The operation is built lazily, so the
/// formatting cost is paid only on failure.
pub(crate) trait Hdf5Context<T> {
    fn context<D: Display>(self, path: &Path, operation: impl FnOnce() -> D) -> Result<T>;
}

impl<T> Hdf5Context<T> for hdf5::Result<T> {
    fn context<D: Display>(self, path: &Path, operation: impl FnOnce() -> D) -> Result<T> {
        self.map_err(|source| RecordError::hdf5(path, operation(), source))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_names_file_and_operation() {
        let error = RecordError::invalid(Path::new("/runs/a.h5"), "reading /losses/wake/kl", "2-D");
        assert_eq!(
            error.to_string(),
            "/runs/a.h5: reading /losses/wake/kl: 2-D"
        );
        assert_eq!(error.path(), Path::new("/runs/a.h5"));
    }
}
