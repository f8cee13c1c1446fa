//! The vault's public error type.
//!
//! Rules: every public function of the vault returns [`Result`]; the kind says
//! what went wrong in terms a user (and an exit code, and an errno) can act
//! on, and the message names the object (file, pack, blob id) involved.
//! Damage is never downgraded to "not found".

use std::io;

use crate::crypto::CryptoError;
use crate::id::Id;

/// What kind of failure, for exit codes and errno mapping.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// No key file could be opened with the password.
    WrongPassword,
    /// The path is not a repository (no `config`).
    NotARepository,
    /// A stored object is damaged: MAC mismatch, bad hash, malformed header
    /// or JSON, size mismatch.
    Damaged,
    /// A referenced object (blob, pack, snapshot, tree) does not exist.
    Missing,
    /// The user asked for something that does not exist (snapshot, path).
    NotFound,
    /// A user argument is invalid or ambiguous.
    InvalidInput,
    /// The repository uses something we do not support.
    Unsupported,
    /// The repository is locked by someone else.
    Locked,
    /// An I/O error from the backend or the local filesystem.
    Io,
}

/// A vault error: a kind plus a message naming the object involved.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct Error {
    kind: ErrorKind,
    message: String,
    #[source]
    source: Option<Box<dyn std::error::Error + Send + Sync + 'static>>,
}

/// Shorthand for results of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// An error of `kind` with a message.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Error {
        Error {
            kind,
            message: message.into(),
            source: None,
        }
    }

    /// An error of `kind` with a message and an underlying cause.
    pub fn with_source(
        kind: ErrorKind,
        message: impl Into<String>,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Error {
        Error {
            kind,
            message: message.into(),
            source: Some(Box::new(source)),
        }
    }

    /// A damaged object.
    pub fn damaged(message: impl Into<String>) -> Error {
        Error::new(ErrorKind::Damaged, message)
    }

    /// A missing object.
    pub fn missing(message: impl Into<String>) -> Error {
        Error::new(ErrorKind::Missing, message)
    }

    /// A backend I/O error while doing `what`; a missing file becomes `Missing`.
    pub fn io(what: impl std::fmt::Display, e: io::Error) -> Error {
        let kind = match e.kind() {
            io::ErrorKind::NotFound => ErrorKind::Missing,
            io::ErrorKind::UnexpectedEof => ErrorKind::Damaged,
            _ => ErrorKind::Io,
        };
        Error {
            kind,
            message: format!("{what}: {e}"),
            source: None,
        }
    }

    /// A decryption failure of the object `what`.
    pub fn crypto(what: impl std::fmt::Display, e: CryptoError) -> Error {
        Error::with_source(ErrorKind::Damaged, format!("{what}: {e}"), e)
    }

    /// A blob whose plaintext does not hash to its id.
    pub fn hash_mismatch(what: impl std::fmt::Display, want: &Id, got: &Id) -> Error {
        Error::damaged(format!(
            "{what}: content hash {} does not match id {}",
            got.short(),
            want
        ))
    }

    /// The kind.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// A copy with the same kind and message (the source is not kept), for
    /// errors remembered and reported again, like a damaged directory's.
    pub fn duplicate(&self) -> Error {
        Error::new(self.kind, self.message.clone())
    }

    /// Adds context in front of the message.
    pub fn context(mut self, what: impl std::fmt::Display) -> Error {
        self.message = format!("{what}: {}", self.message);
        self
    }
}

impl From<Error> for io::Error {
    fn from(e: Error) -> io::Error {
        let kind = match e.kind {
            ErrorKind::NotFound => io::ErrorKind::NotFound,
            ErrorKind::InvalidInput => io::ErrorKind::InvalidInput,
            ErrorKind::Unsupported => io::ErrorKind::Unsupported,
            _ => io::ErrorKind::Other,
        };
        io::Error::new(kind, e)
    }
}
